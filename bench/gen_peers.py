#!/usr/bin/env python3
"""Generates a beforeHelm binding context with N peers whose status caches hold S public services
of P ports each, as addon-operator sends it to the values hooks (items are the jqFilter
projections). Usage: gen_peers.py KIND N S P > bc.json, KIND = federation | multicluster.
Roots and keys are real (a few distinct ones, reused), so validation does its full work."""
import json, os, subprocess, sys, tempfile

kind, n, s, p = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
fix = os.path.join(os.path.dirname(__file__), "..", "testdata", "fixtures")
roots = [open(os.path.join(fix, f)).read() for f in ("root-a.pem", "root-b.pem")]
keys = [open(os.path.join(fix, f)).read() for f in ("ed25519-a.pub", "ed25519-b.pub")]
items = []
for i in range(n):
    uuid = f"00000000-0000-4000-8000-{i:012d}"
    public = {"clusterUUID": uuid, "authnKeyPub": keys[i % 2], "rootCA": roots[i % 2]}
    gws = [{"address": f"10.{i // 250}.{i % 250}.{g}", "port": 15443} for g in (1, 2)]
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
    items.append({"filterResult": {"metadata": {"name": f"peer-{i:05d}"}, "spec": spec,
                                   "status": {"metadataCache": {"public": public, "private": private,
                                                                "privateLastFetchTimestamp": "2026-11-22T00:00:00Z"}}}})
binding = "federations" if kind == "federation" else "multiclusters"
snaps = {binding: items}
if kind == "federation":
    snaps.update({"multiclusters": [], "multiclouds": []})
else:
    snaps.update({"multiclouds": [], "remoteSecrets": [], "federations": []})
json.dump([{"binding": "beforeHelm", "snapshots": snaps}], sys.stdout)
