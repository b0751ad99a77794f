#!/usr/bin/env python3
"""`make bench-scale`: cluster a of the real federation stack (`stack/clusters.py`) federated with
N extra peers, each publishing S public services x 2 ports over 1-3 ingress gateways, measured on
the real components (issue 14).

Each peer is a real `istio-hooks metadata-exporter` process serving that peer's documents over
HTTPS (a bench CA, host `scale-peers.bench` on the bridge address, one port per peer), verifying
a's real EdDSA JWTs against a's published key; each has its own root CA and authn key. For every
size the harness applies the N `IstioFederation` objects to a's kube-apiserver and measures:

- convergence: objects applied -> every host of every peer in istiod a's registry (istiod's own
  `pilot_services` gauge polled, then the hosts checked once in `/debug/registryz`);
- one `fetch-remote-metadata` poll with all peers unchanged: wall and CPU from addon-operator's
  own per-hook metrics, bytes to and from the peers' exporters (the bridge's host end) during it;
- every hook's runs under addon-operator (addon_operator_module_hook_run_* metrics, deltas over
  the size's run) and standalone on the live objects (the hook's binding context built from the
  apiserver's objects through the hook's own jqFilter, timed with /usr/bin/time);
- the Helm release's stored size (the Secret addon-operator's Helm writes, limit 1 MiB);
- object count and JSON bytes of IstioFederations, ServiceEntries, DestinationRules;
- istiod a's resident memory;
- one service added in one peer -> in istiod a.

The imported ServiceEntries are the hook's own objects (`istio.federation.serviceEntriesManagedBy:
Hook`, the mode for large federations); `--managed-by Helm` (or MANAGED_BY=Helm) measures the
chart-rendered mode, whose Helm release stops fitting its 1 MiB Secret near 50,000 hostnames.

Envoy holds ~220 KB per imported host of 2 ports: the harness scopes foo's `Sidecar` egress to
its own namespace and bar's host (as an operator does at this scale, docs/OPERATIONS.md) so that
its sidecar does not carry the bench's hosts; `--default-sidecar` keeps Istio's `*/*`. Cluster a's
ingress gateway (a router: Istio gives it a cluster per host its namespace sees, and Sidecar
resources do not apply to it) would need ~22 GB at 100,000 hosts, beyond this machine: at sizes of
50,000 hosts and more the harness unschedules it for the size's run (the module's
`alliance.ingressGateway.nodeSelector` set to a label no node has) and restores it afterwards; it
carries only inbound traffic, none in this bench. `--keep-gateway` leaves it running.

Usage: bench/scale.py [--sizes 10x100,100x1000,...] [--managed-by Hook|Helm] [--keep]
[--default-sidecar] [--keep-gateway]. Needs `make clusters
SCENARIO=federation` up (started here when it is not). Writes out/bench-scale/results.json and
prints Markdown rows for docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(REPO, "stack"))
import clusters as S  # noqa: E402
import pki  # noqa: E402

OUT = os.path.join(REPO, "out", "bench-scale")
HOST = "scale-peers.bench"
BRIDGE = "10.210.0.1"
PORT0 = 21000
PORTS = [{"name": "http", "port": 8080}, {"name": "grpc", "port": 9090}]
LABEL = {"bench": "scale"}
# From this many imported hosts on, a's ingress gateway is unscheduled for the size's run.
GATEWAY_OFF_HOSTS = 50_000
NO_NODE = {"istio-hooks.bench/no-such-node": "true"}


def log(msg):
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(*cmd, **kw):
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True, **kw).stdout


def netns_get(ns, url, cacert=None, timeout=60):
    cmd = ["ip", "netns", "exec", ns, "curl", "-sS", "--max-time", str(timeout)]
    if cacert:
        cmd += ["--cacert", cacert]
    return subprocess.run(cmd + [url], check=True, capture_output=True, timeout=timeout + 5).stdout


def metrics(ns, url):
    """Prometheus text -> {(name, frozenset(labels)): value}."""
    out = {}
    for line in netns_get(ns, url).decode(errors="replace").splitlines():
        if not line or line[0] == "#":
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)', line)
        if not m:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        try:
            out[(m.group(1), labels)] = float(m.group(3))
        except ValueError:
            pass
    return out


class Stack:
    def __init__(self):
        self.st = json.load(open(os.path.join(S.OUT, "a", "stack.json")))
        self.cl = S.Cluster("a", self.st["scenario"])
        self.cl.make_pki()
        self.kube = self.cl.kube
        self.ns = self.st["netns"]

    def istiod(self):
        return metrics(self.ns, f"{self.st['istiodDebug']}/metrics")

    def pilot_services(self):
        return int(sum(v for (n, _), v in self.istiod().items() if n == "pilot_services"))

    def addon_operator(self):
        return metrics(self.ns, f"http://{self.st['addresses']['apiserver']}:9650/metrics")

    def registry_hosts(self):
        body = netns_get(self.ns, f"{self.st['istiodDebug']}/debug/registryz", timeout=300)
        return {s["hostname"] for s in json.loads(body)}

    def pids(self):
        out = {}
        for line in open(os.path.join(S.OUT, "pids")):
            pid, c, name = line.split()[:3]
            if c == "a" and os.path.exists(f"/proc/{pid}"):
                out[name] = int(pid)
        return out

    def tree_rss_mb(self, pid):
        """Resident memory of a process and its descendants (pilot-agent and its Envoy)."""
        children = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(d))
        total, todo = 0.0, [pid]
        while todo:
            p = todo.pop()
            try:
                total += self.rss_mb(p)[0]
            except (OSError, AttributeError):
                pass
            todo += children.get(p, [])
        return round(total)

    def memory(self):
        names = {"istiod": "istiod", "addon-operator": "addon-operator", "kube-apiserver": "kube-apiserver", "etcd": "etcd",
                 "foo sidecar (pilot-agent + Envoy)": "pod-foo-istio-proxy", "ingress gateway (pilot-agent + Envoy)": "pod-ingressgateway"}
        pids = self.pids()
        return {label: self.tree_rss_mb(pids[n]) for label, n in names.items() if n in pids}

    def rss_mb(self, pid):
        status = open(f"/proc/{pid}/status").read()
        get = lambda k: int(re.search(rf"^{k}:\s+(\d+) kB", status, re.M).group(1)) / 1024
        return get("VmRSS"), get("VmHWM")


def ensure_stack():
    """The running federation stack, else one brought up here: (stack, brought up here)."""
    path = os.path.join(S.OUT, "a", "stack.json")
    if os.path.exists(path):
        try:
            st = Stack()
            if st.kube.ready():
                return st, False
        except Exception:  # noqa: BLE001 - brought up below
            pass
    log("bringing up the federation stack (make clusters SCENARIO=federation)")
    subprocess.run([sys.executable, os.path.join(REPO, "stack", "clusters.py"), "up", "--scenario", "federation"], check=True)
    return Stack(), True


def make_pki(n):
    d = os.path.join(OUT, "pki")
    os.makedirs(d, exist_ok=True)
    ca = pki.ca(d, "bench-ca", "/O=istio-hooks bench/CN=scale peers CA")
    server = pki.leaf(d, "server", f"/CN={HOST}", ca, sans=[HOST])
    peers = []
    for i in range(n):
        key, crt = os.path.join(d, f"root-{i}.key"), os.path.join(d, f"root-{i}.pem")
        if not os.path.exists(crt):
            sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
               "-out", crt, "-days", "3650", "-subj", f"/O=istio-hooks bench/CN=root of peer {i}",
               "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        akey, apub = os.path.join(d, f"authn-{i}.key"), os.path.join(d, f"authn-{i}.pub")
        if not os.path.exists(apub):
            sh("openssl", "genpkey", "-algorithm", "ed25519", "-out", akey)
            sh("openssl", "pkey", "-in", akey, "-pubout", "-out", apub)
        peers.append({"root": open(crt).read(), "pub": open(apub).read()})
    return ca[0], server, peers


def uuid(i):
    return f"5ca1e000-0000-4000-8000-{i:012d}"


def domain(i):
    return f"peer-{i:04d}.scale"


def hosts_of(i, s):
    return [f"svc-{j}.ns-{j % 10}.svc.{domain(i)}" for j in range(s)]


def local_metadata(i, s, peer, extra=()):
    gws = [{"address": f"198.18.{i // 200}.{(i % 200) + 1}", "port": 15443 + g} for g in range(1 + i % 3)]
    services = [{"hostname": h, "ports": PORTS} for h in [*hosts_of(i, s), *extra]]
    return {"public": {"clusterUUID": uuid(i), "authnKeyPub": peer["pub"], "rootCA": peer["root"]},
            "federation": {"ingressGateways": gws, "publicServices": services}}


def write_json(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


class Peers:
    """N exporter processes on the bridge address, one port each."""

    def __init__(self, stack, n, s, ca, server, peers):
        self.n, self.s, self.procs, self.dirs = n, s, [], []
        a_public = json.loads(netns_get(stack.ns, stack.st["exporter"] + "public/public.json", cacert=stack.st["publicCA"]))
        self.a_public = a_public
        remote = {a_public["clusterUUID"]: a_public}
        binary = os.path.join(REPO, "target", "release", "istio-hooks")
        for i in range(n):
            d = os.path.join(OUT, "peers", str(i))
            os.makedirs(d, exist_ok=True)
            write_json(os.path.join(d, "local-metadata.json"), local_metadata(i, s, peers[i]))
            write_json(os.path.join(d, "remote-public-metadata.json"), remote)
            self.dirs.append(d)
            self.procs.append(S.spawn(f"scale-exporter-{i}", [binary, "metadata-exporter", "--data-dir", d,
                                                               "--listen", f"{BRIDGE}:{PORT0 + i}",
                                                               "--tls-cert", server[0], "--tls-key", server[1]],
                                      env={"RUST_LOG": "warn"}))
        for i in range(n):
            S.wait_for(f"exporter {i}", lambda i=i: S.port_open(BRIDGE, PORT0 + i), timeout=60)

    @staticmethod
    def io_bytes():
        """Bytes through the host end of the bridge (rx + tx of `ih-br` in the root namespace):
        traffic between the clusters and processes of the root namespace, i.e. the peers'
        exporters; frames forwarded between the clusters' own interfaces are not counted there."""
        for line in open("/proc/net/dev"):
            if ":" in line and line.split(":", 1)[0].strip() == "ih-br":
                f = line.split(":", 1)[1].split()
                return int(f[0]) + int(f[8])
        return 0

    def stop(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def add_hosts_entry(stack):
    path = stack.st["hosts"]
    text = open(path).read()
    if HOST not in text:
        with open(path, "a") as f:  # in place: the file is bind-mounted into running processes
            f.write(f"{BRIDGE} {HOST}\n")


def federation(i, ca_pem):
    return {"apiVersion": "deckhouse.io/v1alpha1", "kind": "IstioFederation",
            "metadata": {"name": f"scale-{i:04d}", "labels": LABEL},
            "spec": {"trustDomain": domain(i), "metadataEndpoint": f"https://{HOST}:{PORT0 + i}/metadata/",
                     "metadata": {"ca": ca_pem}}}


def scope_sidecar(stack):
    """foo's Sidecar egress: its namespace and bar's host only (not the bench's peers)."""
    o = stack.kube.get("Sidecar", "foo", "abc")
    if not o:
        return
    o["spec"]["egress"][0]["hosts"] = ["./*", "d8-istio/bar.xyz.svc.cluster-b.local"]
    stack.kube.apply({"apiVersion": o["apiVersion"], "kind": "Sidecar", "metadata": {"name": "foo", "namespace": "abc"}, "spec": o["spec"]})


def module_settings(stack):
    """The module's settings (the `istio` key of addon-operator's ConfigMap) as text."""
    return stack.kube.get("ConfigMap", "addon-operator", "d8-system")["data"]["istio"]


def set_module_settings(stack, text, why):
    """Writes the module's settings and waits for addon-operator to deploy the next release."""
    cm = stack.kube.get("ConfigMap", "addon-operator", "d8-system")
    if cm["data"]["istio"] == text:
        return
    v0 = helm_release(stack).get("version", 0)
    cm["data"]["istio"] = text
    stack.kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "addon-operator", "namespace": "d8-system"},
                      "data": cm["data"]})
    S.wait_for(f"module istio deployed again ({why})",
               lambda: (lambda r: r.get("version", 0) > v0 and r.get("status") == "deployed")(helm_release(stack)), 600)


def with_setting(text, path, value):
    """Settings text with `path` (dotted) set to `value`."""
    doc = yaml.safe_load(text) or {}
    node = doc
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    return yaml.safe_dump(doc)


def delete_federations(stack):
    for o in stack.kube.list("IstioFederation", selector="bench=scale"):
        stack.kube.delete("IstioFederation", o["metadata"]["name"])


def hook_stats(before, after):
    """Per hook: runs, wall s, CPU s, max RSS from addon-operator's metric deltas."""
    out = {}
    for (name, labels), v in after.items():
        if not name.startswith("addon_operator_module_hook_run"):
            continue
        d = dict(labels)
        hook = d.get("hook", "")
        if "istio" not in d.get("module", "istio"):
            continue
        key = re.sub(r"\.sh$", "", re.sub(r"^.*/", "", hook))
        delta = v - before.get((name, labels), 0.0)
        o = out.setdefault(key, {"runs": 0, "wall": 0.0, "cpu": 0.0})
        if name == "addon_operator_module_hook_run_seconds_count":
            o["runs"] += delta
        elif name == "addon_operator_module_hook_run_seconds_sum":
            o["wall"] += delta
        elif name in ("addon_operator_module_hook_run_user_cpu_seconds_sum", "addon_operator_module_hook_run_sys_cpu_seconds_sum"):
            o["cpu"] += delta
    for (name, labels), v in after.items():
        if name in ("addon_operator_module_helm_seconds_count", "addon_operator_module_helm_seconds_sum") and dict(labels).get("module") == "istio":
            o = out.setdefault("(Helm upgrade)", {"runs": 0, "wall": 0.0, "cpu": 0.0})
            o["runs" if name.endswith("count") else "wall"] += v - before.get((name, labels), 0.0)
    return {k: v for k, v in out.items() if v["runs"]}


def helm_release(stack):
    secrets = stack.kube.list("Secret", "d8-system", "owner=helm,name=istio")
    if not secrets:
        return {}
    latest = max(secrets, key=lambda s: int(s["metadata"]["labels"].get("version", "0")))
    raw = base64.b64decode(latest["data"]["release"])  # what etcd holds: base64 of gzip of JSON
    import gzip
    body = json.loads(gzip.decompress(base64.b64decode(raw)))
    return {"version": int(latest["metadata"]["labels"]["version"]), "status": latest["metadata"]["labels"].get("status"),
            "secretBytes": len(json.dumps(latest)), "releaseFieldBytes": len(raw),
            "manifestBytes": len(body.get("manifest", "")), "valuesBytes": len(json.dumps(body.get("config", {})))}


def objects(stack):
    out = {}
    for kind, ns in (("IstioFederation", None), ("ServiceEntry", "d8-istio"), ("DestinationRule", "d8-istio")):
        items = stack.kube.list(kind, ns)
        out[kind] = {"count": len(items), "bytes": sum(len(json.dumps(o)) for o in items)}
    return out


def standalone(stack, hooks=("render-service-entries", "update-ca-bundle")):
    """Each hook on the live IstioFederations, projected through its own jqFilter, as one
    beforeHelm context; /usr/bin/time wall and peak RSS (fetch-remote-metadata is network-bound:
    measured under addon-operator only)."""
    binary = os.path.join(REPO, "target", "release", "istio-hooks")
    feds = stack.kube.list("IstioFederation")
    tmp = tempfile.mkdtemp()
    res = {}
    values = json.loads(open(os.path.join(REPO, "bench", "values.json")).read()
                        .replace('"@PUB@"', json.dumps(open(os.path.join(REPO, "testdata/fixtures/ed25519-a.pub")).read()))
                        .replace('"@PRIV@"', json.dumps(open(os.path.join(REPO, "testdata/fixtures/ed25519-a.key")).read())))
    vpath = os.path.join(tmp, "values.json")
    json.dump(values, open(vpath, "w"))
    try:
        for hook in hooks:
            cfg = json.loads(sh(binary, hook, "--config"))
            snaps = {}
            for b in cfg.get("kubernetes", []):
                if b.get("kind") != "IstioFederation":
                    continue
                src = os.path.join(tmp, "objs.json")
                json.dump(feds, open(src, "w"))
                projected = json.loads(sh("jq", "-c", f"[.[] | {b['jqFilter']}]", src)) if b.get("jqFilter") else feds
                snaps[b["name"]] = [{"filterResult": p} for p in projected]
            bc = os.path.join(tmp, f"{hook}.json")
            json.dump([{"binding": "beforeHelm", "snapshots": snaps}], open(bc, "w"))
            t = os.path.join(tmp, "time")
            subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", t, binary, hook, "--values", vpath, "--metrics-out", "/dev/null"],
                           stdin=open(bc), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            e, u, s_, m = open(t).read().split()[-4:]
            subprocess.run(["/usr/bin/time", "-f", "%e", "-o", t, "jq", "-c", "."], stdin=open(bc), stdout=subprocess.DEVNULL, check=True)
            res[hook] = {"inputMB": os.path.getsize(bc) / 1048576, "wall": float(e), "cpu": float(u) + float(s_),
                         "rssMB": int(m) / 1024, "jqWall": float(open(t).read().split()[-1])}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def run_size(stack, n, s, ca, server, peers, timeout, keep_gateway=False):
    log(f"size {n} peers x {s} services x 2 ports")
    r = {"peers": n, "services": s, "hosts": n * s, "managedBy": yaml.safe_load(module_settings(stack)).get("federation", {}).get("serviceEntriesManagedBy", "Helm")}
    settings0 = module_settings(stack)
    if n * s >= GATEWAY_OFF_HOSTS and not keep_gateway:
        set_module_settings(stack, with_setting(settings0, "alliance.ingressGateway.nodeSelector", NO_NODE), "a's ingress gateway unscheduled")
        r["ingressGatewayUnscheduled"] = True
    base = stack.pilot_services()
    ao0 = stack.addon_operator()
    ex = Peers(stack, n, s, ca, server, peers)
    try:
        ca_pem = open(ca).read()
        t0 = time.time()
        for i in range(n):
            stack.kube.apply(federation(i, ca_pem))
        r["applySeconds"] = round(time.time() - t0, 1)
        want = base + n * s
        last = -1
        while time.time() - t0 < timeout:
            try:
                now = stack.pilot_services()
            except Exception:  # noqa: BLE001 - istiod busy
                now = last
            if now != last:
                log(f"  istiod a: {now}/{want} services after {time.time() - t0:.0f}s")
                last = now
            if now >= want:
                break
            time.sleep(2)
        r["convergeSeconds"] = round(time.time() - t0, 1) if last >= want else None
        if r["convergeSeconds"] is None:
            log(f"  not converged within {timeout}s ({last}/{want})")
            r["pilotServices"] = last
        else:
            hosts = stack.registry_hosts()
            missing = [h for i in range(n) for h in hosts_of(i, s) if h not in hosts]
            r["registryMissing"] = len(missing)
            log(f"  converged in {r['convergeSeconds']}s; registryz: {len(missing)} hosts missing")
        ao1 = stack.addon_operator()
        r["hooksUnderAddonOperator"] = hook_stats(ao0, ao1)
        # One poll with every peer unchanged: the next scheduled fetch-remote-metadata run.
        time.sleep(5)
        m0, b0 = stack.addon_operator(), ex.io_bytes()
        count = lambda m: sum(v for (k, lab), v in m.items() if k == "addon_operator_module_hook_run_seconds_count"
                              and "fetch" in dict(lab).get("hook", ""))
        c0, tq = count(m0), time.time()
        while count(stack.addon_operator()) <= c0 and time.time() - tq < 60:
            time.sleep(0.5)
        m1, b1 = stack.addon_operator(), ex.io_bytes()
        r["unchangedPoll"] = {**hook_stats(m0, m1).get("fetch-remote-metadata", {}), "exporterBytes": b1 - b0}
        r["helmRelease"] = helm_release(stack)
        r["objects"] = objects(stack)
        pid = stack.pids()["istiod"]
        rss, hwm = stack.rss_mb(pid)
        r["istiodRssMB"], r["istiodPeakRssMB"] = round(rss), round(hwm)
        r["memoryMB"] = stack.memory()
        r["standalone"] = standalone(stack)
        # One service added in peer 0.
        if r["convergeSeconds"] is not None:
            before = stack.pilot_services()
            write_json(os.path.join(ex.dirs[0], "local-metadata.json"), local_metadata(0, s, peers[0], extra=[f"added.ns-0.svc.{domain(0)}"]))
            t1 = time.time()
            while time.time() - t1 < 180 and stack.pilot_services() <= before:
                time.sleep(0.5)
            r["serviceAddedSeconds"] = round(time.time() - t1, 1) if stack.pilot_services() > before else None
            log(f"  one service added in peer 0 -> istiod a after {r['serviceAddedSeconds']}s")
    finally:
        t2 = time.time()
        delete_federations(stack)
        ex.stop()
        try:
            S.wait_for("istiod back to its baseline", lambda: stack.pilot_services() <= base, timeout=timeout)
            r["cleanupSeconds"] = round(time.time() - t2, 1)
        except Exception as e:  # noqa: BLE001
            log(f"  cleanup: {e}")
        set_module_settings(stack, settings0, "settings restored")
    log(f"  {json.dumps(r)}")
    return r


def markdown(results):
    rows = ["| peers × services × 2 ports | hosts | CRs → all hosts in istiod | unchanged poll: wall / CPU / bytes | one service added → istiod | Helm release Secret (manifest / values) | ServiceEntries / DestinationRules (bytes) | istiod RSS (peak) |",
            "|---|---|---|---|---|---|---|---|"]
    for r in results:
        p = r.get("unchangedPoll", {})
        h = r.get("helmRelease", {})
        o = r.get("objects", {})
        se, dr = o.get("ServiceEntry", {}), o.get("DestinationRule", {})
        conv = f"{r['convergeSeconds']} s" if r.get("convergeSeconds") is not None else f"not within the timeout ({r.get('pilotServices')} services)"
        poll = f"{p.get('wall', 0):.2f} s / {p.get('cpu', 0):.2f} s / {p.get('exporterBytes', 0) / 1024:.0f} KiB" if p else "n/a"
        rel = (f"{h.get('releaseFieldBytes', 0) / 1048576:.2f} MiB (v{h.get('version')}, {h.get('status')}; "
               f"{h.get('manifestBytes', 0) / 1048576:.1f} / {h.get('valuesBytes', 0) / 1048576:.1f} MiB)") if h else "n/a"
        rows.append(f"| {r['peers']} × {r['services']} | {r['hosts']:,} | {conv} | {poll} | {r.get('serviceAddedSeconds')} s | {rel} | "
                    f"{se.get('count')} / {dr.get('count')} ({(se.get('bytes', 0) + dr.get('bytes', 0)) / 1048576:.1f} MiB) | "
                    f"{r.get('istiodRssMB')} MB ({r.get('istiodPeakRssMB')} MB) |")
    rows += ["", "| peers × services | hook | runs under addon-operator | mean wall s | mean CPU s (hook process) | standalone wall s (jq -c . s) | standalone peak RSS MB |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        sa = r.get("standalone", {})
        for hook, st in sorted(r.get("hooksUnderAddonOperator", {}).items()):
            runs = st["runs"] or 1
            alone = sa.get(hook)
            a = f"{alone['wall']:.2f} ({alone['jqWall']:.2f})" if alone else "–"
            cpu = f"{st['cpu'] / runs:.2f}" if not hook.startswith("(") else "–"
            rss = f"{alone['rssMB']:.0f}" if alone else "–"
            rows.append(f"| {r['peers']} × {r['services']} | {hook} | {st['runs']:.0f} | {st['wall'] / runs:.2f} | {cpu} | {a} | {rss} |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=os.environ.get("SIZES", "10x100,10x1000,100x100,100x1000,200x100,200x1000"))
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("SCALE_TIMEOUT", "600")))
    ap.add_argument("--keep", action="store_true", help="leave the stack up afterwards")
    ap.add_argument("--default-sidecar", action="store_true", help="keep foo's Sidecar egress at */* (Envoy memory grows with every host)")
    ap.add_argument("--managed-by", choices=["Hook", "Helm"], default=os.environ.get("MANAGED_BY", "Hook"),
                    help="istio.federation.serviceEntriesManagedBy during the run (restored afterwards)")
    ap.add_argument("--keep-gateway", action="store_true", help=f"keep a's ingress gateway at every size (else unscheduled from {GATEWAY_OFF_HOSTS} hosts)")
    args = ap.parse_args()
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    os.makedirs(OUT, exist_ok=True)
    stack, started = ensure_stack()
    add_hosts_entry(stack)
    if not args.default_sidecar:
        scope_sidecar(stack)
    ca, server, peers = make_pki(max(n for n, _ in sizes))
    results = []
    original = module_settings(stack)
    try:
        set_module_settings(stack, with_setting(original, "federation.serviceEntriesManagedBy", args.managed_by),
                            f"serviceEntriesManagedBy: {args.managed_by}")
        for n, s in sizes:
            results.append(run_size(stack, n, s, ca, server, peers, args.timeout, args.keep_gateway))
            json.dump(results, open(os.path.join(OUT, "results.json"), "w"), indent=2)
    finally:
        if not started or args.keep:
            set_module_settings(stack, original, "settings restored")
        if started and not args.keep:
            subprocess.run([sys.executable, os.path.join(REPO, "stack", "clusters.py"), "down"], check=False)
    print(markdown(results))


if __name__ == "__main__":
    main()
