#!/usr/bin/env python3
"""Generates a beforeHelm binding context with N peers whose status caches hold S public services
of P ports each, as addon-operator sends it to the values hooks.
Usage: gen_peers.py KIND N S P [HOOK [BIN]] > bc.json, KIND = federation | multicluster.
GATEWAYS (environment, default 2) sets how many ingress gateways every peer publishes.

Each peer is first built as the whole custom resource (metadata, spec, status with both cached
documents, fetch timestamps and conditions). With HOOK, every item's `filterResult` is that
resource projected through the hook's real jqFilter for the binding, read from
`BIN HOOK --config` (BIN defaults to target/release/istio-hooks) and applied with `jq`, so the
benchmark measures exactly what the hook receives (update-ca-bundle, for one, never sees the
private document). Without HOOK, the projection is the whole resource.
Roots and keys are real (a few distinct ones, reused), so validation does its full work."""
import json, os, subprocess, sys

kind, n, s, p = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
hook = sys.argv[5] if len(sys.argv) > 5 else None
gateways = int(os.environ.get("GATEWAYS", "2"))
here = os.path.dirname(os.path.abspath(__file__))
binary = sys.argv[6] if len(sys.argv) > 6 else os.path.join(here, "..", "target", "release", "istio-hooks")
fix = os.path.join(here, "..", "testdata", "fixtures")
roots = [open(os.path.join(fix, f)).read() for f in ("root-a.pem", "root-b.pem")]
keys = [open(os.path.join(fix, f)).read() for f in ("ed25519-a.pub", "ed25519-b.pub")]
cr_kind = "IstioFederation" if kind == "federation" else "IstioMulticluster"
binding = "federations" if kind == "federation" else "multiclusters"
objects = []
for i in range(n):
    uuid = f"00000000-0000-4000-8000-{i:012d}"
    public = {"clusterUUID": uuid, "authnKeyPub": keys[i % 2], "rootCA": roots[i % 2]}
    gws = [{"address": f"10.{i // 250}.{i % 250}.{g}", "port": 15443} for g in range(1, gateways + 1)]
    if kind == "federation":
        domain = f"cluster-{i}.local"
        services = [{"hostname": f"svc-{j}.ns-{j % 10}.svc.{domain}",
                     "ports": [{"name": ("http", "grpc-api", "tcp-db", "https")[k % 4] + f"-{k}", "port": 8000 + k, "protocol": "TCP"} for k in range(p)]}
                    for j in range(s)]
        spec = {"trustDomain": domain, "metadataEndpoint": f"https://istio-metadata.c{i}.example.com/metadata/"}
        private = {"ingressGateways": gws, "publicServices": services}
    else:
        spec = {"metadataEndpoint": f"https://istio-metadata.c{i}.example.com/metadata/", "enableIngressGateway": True}
        private = {"ingressGateways": gws, "apiHost": f"istio-api-proxy.c{i}.example.com", "networkName": f"network-c{i}", "clusterID": f"c{i}"}
    conditions = [{"type": t, "status": "True", "reason": "Fetched", "message": "",
                   "lastTransitionTime": "2026-11-22T00:00:00Z", "lastProbeTime": "2026-11-22T00:00:00Z"}
                  for t in ("PublicMetadataFetched", "PrivateMetadataFetched")]
    objects.append({"apiVersion": "deckhouse.io/v1alpha1", "kind": cr_kind,
                    "metadata": {"name": f"peer-{i:05d}", "uid": f"00000000-0000-4000-9000-{i:012d}",
                                 "resourceVersion": str(1000 + i), "generation": 1},
                    "spec": spec,
                    "status": {"metadataCache": {"public": public, "private": private,
                                                 "publicLastFetchTimestamp": "2026-11-22T00:00:00Z",
                                                 "privateLastFetchTimestamp": "2026-11-22T00:00:00Z"},
                               "conditions": conditions}})
if hook:
    config = json.loads(subprocess.run([binary, hook, "--config"], check=True, capture_output=True, text=True).stdout)
    jq_filter = next(b["jqFilter"] for b in config["kubernetes"] if b["name"] == binding)
    projected = subprocess.run(["jq", "-c", f"[.[] | {jq_filter}]"], input=json.dumps(objects),
                               check=True, capture_output=True, text=True).stdout
    objects = json.loads(projected)
items = [{"filterResult": o} for o in objects]
snaps = {binding: items}
if kind == "federation":
    snaps.update({"multiclusters": [], "multiclouds": []})
else:
    snaps.update({"multiclouds": [], "remoteSecrets": [], "federations": []})
json.dump([{"binding": "beforeHelm", "snapshots": snaps}], sys.stdout)
