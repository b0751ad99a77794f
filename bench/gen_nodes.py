#!/usr/bin/env python3
"""Generates a discovery binding context for N NodePort ingress-gateway nodes (one gateway pod per
node, every 10th node not Ready), as addon-operator sends it (beforeHelm with all snapshots)."""
import json, sys
n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
nodes, pods = [], []
for i in range(n):
    nodes.append({"filterResult": {"metadata": {"name": f"node-{i:05d}"}, "spec": {"unschedulable": False, "taints": []},
                  "status": {"conditions": [{"type": "Ready", "status": "False" if i % 10 == 0 else "True"}],
                             "addresses": [{"type": "InternalIP", "address": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"}]}}})
    pods.append({"filterResult": {"metadata": {"name": f"ig-{i:05d}", "namespace": "d8-istio"}, "spec": {"nodeName": f"node-{i:05d}"}, "status": {"phase": "Running"}}})
svc = [{"filterResult": {"metadata": {"name": "ingressgateway", "namespace": "d8-istio"}, "spec": {"type": "NodePort", "ports": [{"name": "tls", "port": 15443, "nodePort": 31443}]}, "status": {"loadBalancer": {"ingress": []}}}}]
json.dump([{"binding": "beforeHelm", "snapshots": {"keypair": [], "rootCA": [], "gatewayServices": svc, "gatewayPods": pods, "nodes": nodes, "publicServices": []}}], sys.stdout)
