#!/usr/bin/env python3
"""Writes the inputs of the golden cases of update-ca-bundle and render-service-entries
(binding-context.json, values.json, config-values.json, now.txt) from pki.json (made by
`testdata/gen-pki.sh update-ca-bundle`).

Binding contexts look like what addon-operator sends: snapshot items carry the jqFilter
projection of each CR as `filterResult` (PUBLIC_CACHE_JQ_FILTER for update-ca-bundle,
FEDERATION_TTL_JQ_FILTER for render-service-entries: absent fields are null). Expected outputs
are then written by `UPDATE_GOLDEN=1 cargo test --test golden` and reviewed by eye.
"""

import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.dirname(HERE)
PKI = json.load(open(os.path.join(HERE, "pki.json")))

LOCAL_UUID = "c0ffee00-0000-4000-8000-000000000001"
LOCAL_DOMAIN = "cluster.local"


def public(uuid, key="key-b.pub", *roots):
    return {"clusterUUID": uuid, "authnKeyPub": PKI[key], "rootCA": "".join(PKI[r] for r in roots)}


def fed_private(gateways, services):
    return {"ingressGateways": gateways, "publicServices": services}


def gw(address, port=15443):
    return {"address": address, "port": port}


def svc(hostname, *ports):
    return {"hostname": hostname, "ports": [{"name": n, "port": p} for n, p in ports]}


def cr(name, spec, pub=None, priv=None, ts=None, ttl_projection=False):
    """A CR as the jqFilter projects it: PUBLIC_CACHE_JQ_FILTER (update-ca-bundle reads only the
    cached public metadata) or, with ttl_projection, FEDERATION_TTL_JQ_FILTER."""
    cache = {"public": pub}
    if ttl_projection:
        cache["private"] = priv
        cache["privateLastFetchTimestamp"] = ts[:16] if isinstance(ts, str) else None
    return {"metadata": {"name": name}, "spec": spec, "status": {"metadataCache": cache}}


def fed_spec(name, trust_domain, **meta):
    spec = {"trustDomain": trust_domain, "metadataEndpoint": f"https://istio-metadata.{name}.example.com/metadata/"}
    if meta:
        spec["metadata"] = meta
    return spec


def mc_spec(name, enable_ig=True):
    return {"metadataEndpoint": f"https://istio-metadata.{name}.example.com/metadata/", "enableIngressGateway": enable_ig}


def item(o):
    """A snapshot item: the projection, or a full object (key "object") when it carries apiVersion."""
    return {"object": o, "filterResult": None} if "apiVersion" in o else {"filterResult": o}


def context(snapshots, binding="beforeHelm", **extra):
    ctx = {"binding": binding, **extra, "snapshots": {k: [item(o) for o in v] for k, v in snapshots.items()}}
    return [ctx]


def values(local_root=True):
    v = {
        "global": {
            "discovery": {"clusterUUID": LOCAL_UUID, "clusterDomain": LOCAL_DOMAIN},
            "modules": {"publicDomainTemplate": "%s.example.com"},
        },
        # addon-operator fills internal values with their openapi defaults.
        "istio": {"internal": {"remotePublicMetadata": {}, "trustBundle": [], "federations": [], "federationServiceEntries": []}},
    }
    if local_root:
        v["istio"]["internal"]["localMetadata"] = {
            "public": {"clusterUUID": LOCAL_UUID, "authnKeyPub": PKI["key-d.pub"], "rootCA": PKI["root-local"]}
        }
    return v


def config(federation=True, multicluster=True, multicloud=None, ttl=None):
    istio = {"federation": {"enabled": federation}, "multicluster": {"enabled": multicluster}}
    if multicloud is not None:
        istio["multicloud"] = {"enabled": multicloud}
    if ttl is not None:
        istio["alliance"] = {"staleEndpointsTTL": ttl}
    return {"istio": istio}


def write(hook, case, bc, vals=None, cfg=None, now=None):
    d = os.path.join(TESTDATA, hook, case)
    os.makedirs(d, exist_ok=True)
    for name, doc in (("binding-context.json", bc), ("values.json", vals), ("config-values.json", cfg)):
        path = os.path.join(d, name)
        if doc is None:
            if os.path.exists(path):
                os.remove(path)
            continue
        with open(path, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
    path = os.path.join(d, "now.txt")
    if now:
        with open(path, "w") as f:
            f.write(now + "\n")
    elif os.path.exists(path):
        os.remove(path)


# ---------------------------------------------------------------- shared fixtures

B = "cluster-b.local"
C = "cluster-c.local"
GW_B = [gw("10.0.1.1"), gw("10.0.1.2")]
SERVICES_B = [svc(f"bar.xyz.svc.{B}", ("http", 8080), ("grpc-api", 9090)), svc(f"foo.xyz.svc.{B}", ("https", 443))]


def cache_fulfillment(ttl_projection):
    """Deckhouse's merge test (reference §8.3): federations with different cache fulfilment."""
    p = ttl_projection
    feds = [
        cr("federation-empty", fed_spec("e", B), ttl_projection=p),
        cr("federation-full-0", fed_spec("f0", B), public("f0-uuid", "key-b.pub", "root-b"),
           fed_private(GW_B, SERVICES_B), ttl_projection=p),
        cr("federation-full-1", fed_spec("f1", C, insecureSkipVerify=True), public("f1-uuid", "key-c.pub", "root-c"),
           fed_private([gw("10.0.2.1")], [svc(f"baz.abc.svc.{C}", ("tcp-db", 5432))]), ttl_projection=p),
        cr("federation-full-empty-ig-0", fed_spec("fe", B), public("fe-uuid", "key-b.pub", "root-shared"),
           fed_private([], SERVICES_B), ttl_projection=p),
        cr("federation-only-ingress", fed_spec("oi", B), public("oi-uuid", "key-b.pub", "root-shared"),
           {"ingressGateways": GW_B}, ttl_projection=p),
        cr("federation-only-public", fed_spec("op", B), public("op-uuid", "key-c.pub", "root-shared"), ttl_projection=p),
        cr("federation-only-services", fed_spec("os", B), public("os-uuid", "key-b.pub", "root-shared"),
           {"publicServices": SERVICES_B}, ttl_projection=p),
        cr("federation-ours", fed_spec("ours", LOCAL_DOMAIN), public("ours-uuid", "key-c.pub", "root-c"),
           fed_private(GW_B, [svc(f"evil.default.svc.{LOCAL_DOMAIN}", ("https", 443))]), ttl_projection=p),
    ]
    return feds


# ---------------------------------------------------------------- update-ca-bundle

H = "update-ca-bundle"
write(H, "minimal-settings", context({}), None, None)
write(H, "empty-cluster", context({"federations": [], "multiclusters": [], "multiclouds": []}), values(), config())

mc_full = cr("multicluster-full-0", mc_spec("m0"), public("m0-uuid", "key-mc.pub", "root-mc"),
             {"ingressGateways": [gw("10.0.9.1")], "apiHost": "istio-api-proxy.m0.example.com", "networkName": "network-m0"})
mc_no_public = cr("multicluster-no-public", mc_spec("m1"))
write(H, "features-disabled",
      context({"federations": cache_fulfillment(False), "multiclusters": [mc_full]}),
      values(), config(federation=False, multicluster=False))
write(H, "cache-fulfillment",
      context({"federations": cache_fulfillment(False), "multiclusters": [mc_full, mc_no_public], "multiclouds": []}),
      values(), config())
write(H, "multicluster-only",
      context({"federations": cache_fulfillment(False), "multiclusters": [mc_full]}),
      values(), config(federation=False))
write(H, "multicloud-alias",
      context({"multiclouds": [cr("cloud-a", mc_spec("ca"), public("ca-uuid", "key-mc.pub", "root-mc"))]}),
      values(), config(federation=False, multicluster=False, multicloud=True))
write(H, "shared-root",
      context({
          "federations": [
              cr("b", fed_spec("b", B), public("b-uuid", "key-b.pub", "root-shared", "root-b")),
              cr("c", fed_spec("c", C), public("c-uuid", "key-c.pub", "root-shared")),
          ],
          "multiclusters": [cr("m", mc_spec("m"), public("m-uuid", "key-mc.pub", "root-shared"))],
      }),
      values(), config())
write(H, "untrusted-roots",
      context({"federations": [
          cr("expired-in-bundle", fed_spec("x", B), public("x-uuid", "key-b.pub", "root-b", "root-expired")),
          cr("future", fed_spec("f", B), public("f-uuid", "key-b.pub", "root-future")),
          cr("not-a-ca", fed_spec("n", C), public("n-uuid", "key-c.pub", "leaf-nonca")),
      ]}),
      values(), config())
write(H, "local-root-published-back",
      context({
          "federations": [cr("c", fed_spec("c", C), public("c-uuid", "key-c.pub", "root-local", "root-c"))],
          "multiclusters": [cr("m", mc_spec("m"), public("m-uuid", "key-mc.pub", "root-local"))],
      }),
      values(), config())
write(H, "duplicate-cluster-uuid",
      context({
          "federations": [
              cr("a-first", fed_spec("a", B), public("same-uuid", "key-b.pub", "root-b")),
              cr("b-second", fed_spec("b", C), public("same-uuid", "key-c.pub", "root-c")),
              cr("c-claims-local", fed_spec("c", C), public(LOCAL_UUID, "key-c.pub", "root-shared")),
          ],
          "multiclusters": [cr("m-third", mc_spec("m"), public("same-uuid", "key-mc.pub", "root-mc"))],
      }),
      values(), config())
hostile_publics = [
    cr("garbage-pem", fed_spec("g", B), {"clusterUUID": "g-uuid", "authnKeyPub": PKI["key-b.pub"], "rootCA": "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"}),
    cr("key-as-root", fed_spec("k", B), {"clusterUUID": "k-uuid", "authnKeyPub": PKI["key-b.pub"], "rootCA": PKI["key-c.pub"]}),
    cr("root-as-key", fed_spec("r", B), {"clusterUUID": "r-uuid", "authnKeyPub": PKI["root-b"], "rootCA": PKI["root-b"]}),
    cr("uuid-number", fed_spec("u", B), {"clusterUUID": 42, "authnKeyPub": PKI["key-b.pub"], "rootCA": PKI["root-b"]}),
    cr("uuid-yaml", fed_spec("y", B), {"clusterUUID": "a: b\n- {{ .Values }}", "authnKeyPub": PKI["key-b.pub"], "rootCA": PKI["root-b"]}),
    cr("public-is-string", fed_spec("s", B), "{\"clusterUUID\": \"s-uuid\"}"),
    cr("public-is-list", fed_spec("l", B), [public("l-uuid", "key-b.pub", "root-b")]),
    cr("valid", fed_spec("v", C), public("v-uuid", "key-c.pub", "root-c")),
]
write(H, "hostile-public", context({"federations": hostile_publics}), values(), config())
write(H, "no-local-root",
      context({"federations": [cr("c", fed_spec("c", C), public("c-uuid", "key-c.pub", "root-local", "root-c"))]}),
      values(local_root=False), config())

# A trusted root 10 days before its notAfter (root-c ends 2036-01-01): it stays in the bundle,
# and its notAfter gauge lets an alert warn in time.
write(H, "root-expires-soon",
      context({"federations": [cr("c", fed_spec("c", C), public("c-uuid", "key-c.pub", "root-c"))]}),
      values(), config(), now="2035-12-22T00:00:00Z")

# ---------------------------------------------------------------- render-service-entries

H = "render-service-entries"
write(H, "minimal-settings", context({}), None, None)
write(H, "empty-cluster", context({"federations": []}), values(), config())
write(H, "federation-disabled", context({"federations": cache_fulfillment(True)}), values(), config(federation=False))
write(H, "cache-fulfillment", context({"federations": cache_fulfillment(True)}), values(), config(multicluster=False))

shared = [
    # a and b are two clusters of the same domain publishing the same services.
    cr("a", fed_spec("a", B), public("a-uuid", "key-b.pub", "root-b"),
       fed_private([gw("10.0.1.1")], [
           svc(f"bar.xyz.svc.{B}", ("http", 8080), ("grpc", 9090)),
           svc(f"only-a.xyz.svc.{B}", ("tcp", 1234)),
           svc(f"split.xyz.svc.{B}", ("http", 80), ("tcp-db", 5432)),
           svc(f"clash.xyz.svc.{B}", ("http", 8080)),
       ]), ttl_projection=True),
    cr("b", fed_spec("b", B), public("b-uuid", "key-c.pub", "root-shared"),
       fed_private([gw("10.0.2.1"), gw("10.0.2.2")], [
           svc(f"bar.xyz.svc.{B}", ("http", 8080), ("grpc", 9090)),
           svc(f"split.xyz.svc.{B}", ("http", 80), ("https", 443)),
           svc(f"clash.xyz.svc.{B}", ("tcp-other", 8080), ("http2", 8081)),
       ]), ttl_projection=True),
    cr("c", fed_spec("c", C), public("c-uuid", "key-c.pub", "root-c"),
       fed_private([gw("10.0.3.1")], [svc(f"bar.xyz.svc.{C}", ("http", 8080))]), ttl_projection=True),
]
write(H, "shared-hostname", context({"federations": shared}), values(), config())

dns = [
    cr("dns", fed_spec("dns", B), public("dns-uuid", "key-b.pub", "root-b"),
       fed_private([gw("gw-1.cluster-b.example.com"), gw("gw-2.cluster-b.example.com", 30443)],
                   [svc(f"bar.xyz.svc.{B}", ("http", 8080))]), ttl_projection=True),
    cr("mixed", fed_spec("mixed", C, ca=PKI["root-c"]), public("mixed-uuid", "key-c.pub", "root-c"),
       fed_private([gw("gw.cluster-c.example.com"), gw("192.0.2.10"), gw("2001:db8::10")],
                   [svc(f"baz.abc.svc.{C}", ("tcp", 5432))]), ttl_projection=True),
    cr("v6", fed_spec("v6", "cluster-d.local"), public("v6-uuid", "key-b.pub", "root-b"),
       fed_private([gw("2001:db8::1"), gw("2001:db8::2")], [svc("qux.def.svc.cluster-d.local", ("grpc-web", 8443))]),
       ttl_projection=True),
]
write(H, "dns-gateways", context({"federations": dns}), values(), config())

hostile = [
    cr("h1-garbage-public", fed_spec("h1", B), {"clusterUUID": "h1-uuid", "authnKeyPub": PKI["key-b.pub"], "rootCA": "garbage"},
       fed_private(GW_B, SERVICES_B), ttl_projection=True),
    cr("h2-gateways-object", fed_spec("h2", B), public("h2-uuid", "key-b.pub", "root-b"),
       {"ingressGateways": {"address": "10.0.0.1", "port": 15443}, "publicServices": SERVICES_B}, ttl_projection=True),
    cr("h3-services-string", fed_spec("h3", B), public("h3-uuid", "key-b.pub", "root-b"),
       {"ingressGateways": GW_B, "publicServices": "bar.xyz.svc.cluster-b.local"}, ttl_projection=True),
    cr("h4-mixed-items", fed_spec("h4", B), public("h4-uuid", "key-b.pub", "root-b"),
       {"ingressGateways": [
           gw("10.0.4.1"),
           {"address": "10.0.4.2", "port": "15443"},
           {"address": "1.2.3.4\n- evil: {{ .Values }}", "port": 15443},
           {"address": "10.0.4.3", "port": 0},
           {"address": "10.0.4.4", "port": 70000},
           {"port": 15443},
           "10.0.4.5:15443",
           None,
       ],
        "publicServices": [
            svc(f"good.xyz.svc.{B}", ("http", 8080), ("Bad Name", 8081), ("tcp", "8082"), ("tcp: {x}", 8083), ("", 8084), ("https", 8080)),
            svc("kubernetes.default.svc.cluster.local", ("https", 443)),
            svc(f"other.ns.svc.{C}", ("http", 80)),
            svc(f"evil.svc.{B}.attacker.io", ("http", 80)),
            svc(f"foo: bar.svc.{B}", ("http", 80)),
            svc(f"{{{{ .Values.x }}}}.svc.{B}", ("http", 80)),
            svc(f"UPPER.ns.svc.{B}", ("http", 80)),
            {"hostname": f"noports.ns.svc.{B}", "ports": []},
            {"hostname": f"portsobject.ns.svc.{B}", "ports": {"name": "http", "port": 80}},
            {"hostname": 42, "ports": [{"name": "http", "port": 80}]},
            svc(f"good.xyz.svc.{B}", ("tcp", 9999)),
            "just-a-string",
        ]}, ttl_projection=True),
    cr("h5-private-null-fields", fed_spec("h5", B), public("h5-uuid", "key-b.pub", "root-b"),
       {"ingressGateways": None, "publicServices": None}, ttl_projection=True),
]
write(H, "hostile-status", context({"federations": hostile}), values(), config())

# TTL 1h, now 12:00: fresh (11:30), stale (10:00), never fetched (no timestamp); a and stale share
# a hostname, so the stale peer's gateway leaves the merged entry.
ttl_feds = [
    cr("fresh", fed_spec("fresh", B), public("fresh-uuid", "key-b.pub", "root-b"),
       fed_private([gw("10.0.1.1")], [svc(f"bar.xyz.svc.{B}", ("http", 8080))]), "2026-11-22T11:30:12Z", True),
    cr("just-in-time", fed_spec("jit", B), public("jit-uuid", "key-b.pub", "root-b"),
       fed_private([gw("10.0.1.3")], [svc(f"jit.xyz.svc.{B}", ("http", 8080))]), "2026-11-22T10:59:59Z", True),
    cr("never", fed_spec("never", C), public("never-uuid", "key-c.pub", "root-c"),
       fed_private([gw("10.0.3.1")], [svc(f"baz.abc.svc.{C}", ("http", 8080))]), None, True),
    cr("stale", fed_spec("stale", B), public("stale-uuid", "key-c.pub", "root-shared"),
       fed_private([gw("10.0.2.1")], [svc(f"bar.xyz.svc.{B}", ("http", 8080))]), "2026-11-22T10:58:59Z", True),
    # A full object (no projection): the timestamp keeps its seconds.
    {"apiVersion": "deckhouse.io/v1alpha1", "kind": "IstioFederation",
     "metadata": {"name": "whole-object", "uid": "5f1c3a52-0000-4000-8000-000000000009", "resourceVersion": "42"},
     "spec": fed_spec("whole", "cluster-e.local"),
     "status": {"metadataCache": {"public": public("whole-uuid", "key-b.pub", "root-b"),
                                  "private": fed_private([gw("10.0.5.1")], [svc("web.app.svc.cluster-e.local", ("http", 80))]),
                                  "publicLastFetchTimestamp": "2026-11-22T11:59:45Z",
                                  "privateLastFetchTimestamp": "2026-11-22T11:00:30Z"},
                "conditions": [{"type": "PrivateMetadataExchangeReady", "status": "True", "reason": "Succeeded", "message": "",
                                "lastTransitionTime": "2026-11-22T09:00:00Z", "lastProbeTime": "2026-11-22T11:59:45Z"}]}},
]
write(H, "stale-endpoints-ttl",
      context({"federations": ttl_feds}, binding="staleEndpoints", type="Group", groupName="main"),
      values(), config(ttl="1h"), now="2026-11-22T12:00:00Z")
write(H, "stale-endpoints-ttl-off",
      context({"federations": ttl_feds}, binding="staleEndpoints", type="Group", groupName="main"),
      values(), config(), now="2026-11-22T12:00:00Z")
