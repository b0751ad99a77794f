#!/usr/bin/env python3
"""Writes the inputs of the `discovery` golden cases (testdata/discovery/<case>/): binding
contexts shaped exactly as addon-operator sends them for this hook (beforeHelm with the
snapshots of every kubernetes binding, items carrying the jqFilter projection as filterResult)
plus values. Expected outputs are produced by `UPDATE_GOLDEN=1 cargo test --test golden` and
reviewed by hand."""
import base64, json, os, shutil

ROOT = os.path.join(os.path.dirname(__file__), "..", "testdata")
FIX = os.path.join(ROOT, "fixtures")
rd = lambda n: open(os.path.join(FIX, n)).read()
b64 = lambda s: base64.b64encode(s.encode()).decode()

ROOT_A, ROOT_B = rd("root-a.pem"), rd("root-b.pem")
PUB, PRIV = rd("ed25519-a.pub"), rd("ed25519-a.key")

def values(fed=True, mc=True, **alliance):
    v = {"global": {"discovery": {"clusterUUID": "2f4a7c1e-0b1d-4c3e-9a55-7d2e8f6a1b3c", "clusterDomain": "cluster-a.local"},
                    "modules": {"publicDomainTemplate": "%s.a.example.com"}},
         "istio": {"federation": {"enabled": fed}, "multicluster": {"enabled": mc}, "internal": {}}}
    if alliance:
        v["istio"]["alliance"] = alliance
    return v

def keypair_item(pub=PUB, priv=PRIV):
    return {"filterResult": {"metadata": {"name": "d8-remote-authn-keypair"}, "data": {"pub.pem": b64(pub), "priv.pem": b64(priv)}}}

def root_item(pem=ROOT_A):
    return {"filterResult": {"metadata": {"name": "istio-ca-root-cert"}, "data": {"root-cert.pem": pem}}}

def lb_service(name, ingress, port=15443, extra_ports=()):
    ports = [{"name": "tls", "port": port, "nodePort": 31443}] + list(extra_ports)
    return {"filterResult": {"metadata": {"name": name, "namespace": "d8-istio"}, "spec": {"type": "LoadBalancer", "ports": ports},
                             "status": {"loadBalancer": {"ingress": ingress}}}}

def pod(name, node, phase="Running"):
    return {"filterResult": {"metadata": {"name": name, "namespace": "d8-istio"}, "spec": {"nodeName": node}, "status": {"phase": phase}}}

def node(name, ready=True, unschedulable=False, taints=(), addresses=()):
    return {"filterResult": {"metadata": {"name": name},
                             "spec": {"unschedulable": unschedulable, "taints": [{"key": k, "effect": "NoSchedule"} for k in taints]},
                             "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                                        "addresses": [{"type": t, "address": a} for t, a in addresses]}}}

def public_service(name, ns, ports, type_="ClusterIP"):
    return {"filterResult": {"metadata": {"name": name, "namespace": ns}, "spec": {"type": type_, "ports": ports}}}

def snapshots(**kw):
    base = {"keypair": [keypair_item()], "rootCA": [root_item()], "gatewayServices": [], "gatewayPods": [], "nodes": [], "publicServices": []}
    base.update(kw)
    return base

def ctx(snaps, binding="beforeHelm"):
    if binding == "beforeHelm":
        return [{"binding": "beforeHelm", "snapshots": snaps}]
    return [{"binding": binding, "type": "Group", "groupName": "main", "snapshots": snaps}]

LB = [lb_service("ingressgateway", [{"ip": "203.0.113.10"}])]
SERVICES = [public_service("bar", "xyz", [{"name": "http", "port": 8080}, {"name": "grpc-api", "port": 9090}]),
            public_service("alpha", "web", [{"name": "https", "port": 443}])]

CASES = {
    "no-keypair": (ctx(snapshots(keypair=[], gatewayServices=LB, publicServices=SERVICES)), values(), ["/0/value/public/authnKeyPub", "/1/value/priv", "/1/value/pub"]),
    "existing-keypair": (ctx(snapshots(gatewayServices=LB)), values(), None),
    "keypair-secret-garbage-keeps-values": (ctx(snapshots(keypair=[keypair_item(pub="garbage", priv="junk")], gatewayServices=LB)),
        {**values(), "istio": {**values()["istio"], "internal": {"remoteAuthnKeypair": {"pub": rd("ed25519-b.pub"), "priv": rd("ed25519-b.key")}}}}, None),
    "loadbalancer-ip": (ctx(snapshots(gatewayServices=LB + [lb_service("ingressgateway-2", [{"ip": "198.51.100.7"}, {"ip": "198.51.100.8"}])]), "gateways"), values(), None),
    "loadbalancer-hostname": (ctx(snapshots(gatewayServices=[lb_service("ingressgateway", [{"hostname": "gw.a.example.com"}]),
                                                             lb_service("pending", [])])), values(), None),
    "loadbalancer-no-tls-port": (ctx(snapshots(gatewayServices=[{"filterResult": {"metadata": {"name": "ingressgateway", "namespace": "d8-istio"},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80}]}, "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}}}])), values(), None),
    "nodeport-nodes": (ctx(snapshots(
        gatewayServices=[lb_service("ingressgateway", [])],
        gatewayPods=[pod("ig-1", "good-ext"), pod("ig-2", "good-int"), pod("ig-3", "not-ready"), pod("ig-4", "cordoned"),
                     pod("ig-5", "tainted"), pod("ig-6", "finished", phase="Succeeded")],
        nodes=[node("cordoned", unschedulable=True, addresses=[("InternalIP", "10.0.0.4")]),
               node("finished", addresses=[("InternalIP", "10.0.0.6")]),
               node("good-ext", addresses=[("InternalIP", "10.0.0.1"), ("ExternalIP", "192.0.2.1")]),
               node("good-int", addresses=[("InternalIP", "10.0.0.2"), ("Hostname", "good-int")]),
               node("no-gateway", addresses=[("ExternalIP", "192.0.2.9")]),
               node("not-ready", ready=False, addresses=[("InternalIP", "10.0.0.3")]),
               node("tainted", taints=["node.kubernetes.io/unschedulable"], addresses=[("InternalIP", "10.0.0.5")])]), "nodes"),
        values(inlet_placeholder=None) if False else values(ingressGateway={"inlet": "NodePort"}), None),
    "advertise-override": (ctx(snapshots(gatewayServices=LB)),
        values(ingressGateway={"advertise": [{"address": "gw.edge.example.com", "port": 443}, {"address": "192.0.2.50", "port": 15443}]}), None),
    "public-services": (ctx(snapshots(gatewayServices=LB, publicServices=SERVICES + [
            public_service("unnamed", "xyz", [{"port": 80}]),
            public_service("external", "xyz", [{"name": "http", "port": 80}], type_="ExternalName"),
            public_service("noports", "xyz", [])]), "publicServices"), values(mc=False), None),
    "federation-only": (ctx(snapshots(gatewayServices=LB, publicServices=SERVICES)), values(mc=False), None),
    "multicloud-alias": (ctx(snapshots(gatewayServices=LB)),
        {**values(fed=False, mc=False), "istio": {**values(fed=False, mc=False)["istio"], "multicloud": {"enabled": True}}}, None),
    "feature-disabled": (ctx(snapshots(gatewayServices=LB, publicServices=SERVICES)), values(fed=False, mc=False), None),
    "malformed-objects": (ctx(snapshots(
        gatewayServices=[{"filterResult": {"metadata": {"name": "x"}, "spec": {"ports": "not-a-list"}}}, {"object": None, "filterResult": None}] + LB,
        publicServices=[{"filterResult": {"metadata": {"name": "bad"}, "spec": {"ports": [{"name": "http", "port": "eighty"}]}}}] + SERVICES,
        nodes=[{"filterResult": 42}])), values(), None),
    "root-ca-excludes-remote-roots": (ctx(snapshots(rootCA=[root_item(ROOT_A + ROOT_B)], gatewayServices=LB)),
        {**values(), "istio": {**values()["istio"], "internal": {"trustBundle": [{"pem": ROOT_B, "trustDomains": ["cluster-b.local"],
            "fingerprintSHA256": "@ROOT_B_FP@", "notAfter": "2046-01-01T00:00:00Z"}]}}}, None),
    "root-ca-missing-keeps-previous": (ctx(snapshots(rootCA=[], gatewayServices=LB)),
        {**values(), "istio": {**values()["istio"], "internal": {"localMetadata": {"public": {"clusterUUID": "2f4a7c1e-0b1d-4c3e-9a55-7d2e8f6a1b3c", "authnKeyPub": PUB, "rootCA": ROOT_A}}}}}, None),
    "bad-values": (ctx(snapshots()), {**values(), "istio": {"federation": {"enabled": "yes"}}}, None),
    "missing-cluster-uuid": (ctx(snapshots()), {"global": {"discovery": {"clusterDomain": "cluster-a.local"}}, "istio": {"federation": {"enabled": True}}}, None),
}

def fingerprint(pem):
    import subprocess
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=pem.encode(), capture_output=True, check=True).stdout.decode()
    return out.strip().split("=", 1)[1].replace(":", "").lower()

for name, (bc, vals, masks) in CASES.items():
    d = os.path.join(ROOT, "discovery", name)
    os.makedirs(d, exist_ok=True)
    text = json.dumps(vals, indent=2).replace("@ROOT_B_FP@", fingerprint(ROOT_B))
    open(os.path.join(d, "binding-context.json"), "w").write(json.dumps(bc, indent=2) + "\n")
    open(os.path.join(d, "values.json"), "w").write(text + "\n")
    if masks:
        open(os.path.join(d, "mask.json"), "w").write(json.dumps(masks) + "\n")
# A binding-context file of the wrong shape and one of broken JSON.
for name, text in {"wrong-shape-binding-context": '{"binding": "beforeHelm"}\n', "broken-json-binding-context": '[{"binding": "beforeHelm", "snapshots": {\n'}.items():
    d = os.path.join(ROOT, "discovery", name)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "binding-context.json"), "w").write(text)
    open(os.path.join(d, "values.json"), "w").write(json.dumps(values(), indent=2) + "\n")
print("ok")
