#!/usr/bin/env python3
"""What grouping saves in the Helm release (issue 14): renders the chart with Helm's own engine
(helm-python-sdk) for N peers x S services x 2 ports, once with one item per hostname (the
ungrouped form, one ServiceEntry and one DestinationRule each) and once grouped as the hook
groups them, and prints the objects, the manifest and the release as Helm's Secret driver stores
it (gzip of the release JSON, base64: what counts against the Secret's 1 MiB).
Usage: .venv/bin/python bench/release_size.py [N S]..., e.g. 10 1000 100 100."""
import base64
import gzip
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "helm"))
import gen_cases  # noqa: E402
import render  # noqa: E402


def values(n, s, grouped):
    base = render.yaml.safe_load((ROOT / "testdata/templates/03-federation-shared-hostname/values.yaml").read_text())
    internal = base["istio"]["internal"]
    ports = [{"name": "http", "port": 8080, "protocol": "HTTP"}, {"name": "grpc", "port": 9090, "protocol": "HTTP2"}]
    feds, singles = [], []
    proto = internal["federations"][0]
    for i in range(n):
        td = f"peer-{i:04d}.scale"
        gws = [{"address": f"198.18.{i // 200}.{(i % 200) + 1}", "port": 15443 + g} for g in range(1 + i % 3)]
        hosts = [f"svc-{j}.ns-{j % 10}.svc.{td}" for j in range(s)]
        feds.append(dict(proto, name=f"scale-{i:04d}", trustDomain=td, ingressGateways=gws,
                         publicServices=[{"hostname": h, "ports": ports} for h in hosts]))
        singles += [{"hostname": h, "resolution": "STATIC", "ports": ports, "endpoints": gws} for h in hosts]
    # Ungrouped: the single-hostname form, named as the hook named it before grouping.
    entries = gen_cases.group(singles) if grouped else [{"name": f"{e['hostname'].replace('.', '-')}-x", **e} for e in singles]
    internal["federations"], internal["federationServiceEntries"] = feds, entries
    return base


def main():
    args = [int(a) for a in sys.argv[1:]] or [10, 1000]
    chart = render.helm.Chart.load(str(ROOT))
    print("| peers × services × 2 ports | form | ServiceEntries / DestinationRules | manifest | values | release as stored (limit 1 MiB) |")
    print("|---|---|---|---|---|---|")
    for n, s in zip(args[::2], args[1::2]):
        for grouped in (False, True):
            v = values(n, s, grouped)
            manifest = render.render(chart, v)
            docs = render.documents(manifest)
            se = sum(1 for d in docs if d.get("kind") == "ServiceEntry")
            dr = sum(1 for d in docs if d.get("kind") == "DestinationRule")
            release = json.dumps({"name": "istio", "config": v, "manifest": manifest}).encode()
            stored = base64.b64encode(gzip.compress(release))
            print(f"| {n} × {s} | {'grouped' if grouped else 'one per hostname'} | {se:,} / {dr:,} | {len(manifest) / 1048576:.1f} MiB | "
                  f"{len(json.dumps(v)) / 1048576:.1f} MiB | {len(stored) / 1048576:.2f} MiB |", flush=True)


if __name__ == "__main__":
    main()
