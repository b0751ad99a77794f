#!/usr/bin/env python3
"""Writes the INPUT files of the fetch-remote-metadata golden cases (binding contexts, values,
canned HTTP answers) from the PEM fixtures next to this script (made by
`testdata/gen-pki.sh fetch-remote-metadata`).

Expected outputs are produced by `UPDATE_GOLDEN=1 cargo test --test golden` and reviewed by
eye; this script never touches them. Run it after editing a case here:
    python3 testdata/fetch-remote-metadata/make-cases.py
"""
import base64
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent


def pem(name):
    return (HERE / name).read_text()


LOCAL = {"pub": pem("local-pub.pem"), "priv": pem("local-priv.pem")}
ROOT = [pem(f"root-ca-{i}.pem") for i in range(3)]
KEY = [pem(f"peer-{i}-pub.pem") for i in range(3)]
EXPIRED_CA = pem("expired-ca.pem")
NON_CA = pem("non-ca.pem")

GLOBAL = {
    "discovery": {"clusterUUID": "deadbeef-mycluster", "clusterDomain": "my.cluster"},
    "modules": {"publicDomainTemplate": "%s.example.com"},
}
BINDINGS = {"IstioFederation": "federations", "IstioMulticluster": "multiclusters", "IstioMulticloud": "multiclouds"}


def public(i, uuid=None):
    return {"clusterUUID": uuid or f"proper-uuid-{i}", "authnKeyPub": KEY[i % 3], "rootCA": ROOT[i % 3]}


def peer(name, endpoint, trust_domain=None, cache=None, conditions=None, metadata=None, **spec):
    """The jqFilter projection of a peer CR (PEER_JQ_FILTER)."""
    s = {"metadataEndpoint": endpoint}
    if trust_domain is not None:
        s["trustDomain"] = trust_domain
    if metadata is not None:
        s["metadata"] = metadata
    s.update(spec)
    return {
        "metadata": {"name": name},
        "spec": s,
        "status": {"metadataCache": cache or {}, "conditions": conditions or []},
    }


def fed(name, i=0, host=None, **kw):
    host = host or name
    return peer(name, f"https://{host}/metadata/", kw.pop("trust_domain", f"p.f{i}"), **kw)


def mc(name, host=None, **kw):
    host = host or name
    return peer(name, f"https://{host}/metadata/", None, **kw)


def ok(body):
    return {"status": 200, "body": body}


def fed_private(i, services=None):
    return {
        "ingressGateways": [{"address": f"10.0.{i}.1", "port": 15443}, {"address": f"gw-{i}.example.com", "port": 443}],
        "publicServices": services
        if services is not None
        else [
            {"hostname": f"foo.bar.svc.p.f{i}", "ports": [{"name": "ppp", "port": 111}, {"name": "https-ppp", "port": 222}]},
            {"hostname": f"baz.bar.svc.p.f{i}", "ports": [{"name": "grpc-ppp", "port": 333}, {"name": "http-ppp", "port": 444}]},
        ],
    }


def mc_private(i, **extra):
    d = {
        "ingressGateways": [{"address": f"10.1.{i}.1", "port": 15443}],
        "apiHost": f"api-host-{i}",
        "networkName": f"network-peer-{i}",
    }
    d.update(extra)
    return d


def answers_for_fed(name, i, private=None, host=None):
    host = host or name
    return {
        f"https://{host}/metadata/public/public.json": ok(public(i)),
        f"https://{host}/metadata/private/federation.json": ok(private if private is not None else fed_private(i)),
    }


def answers_for_mc(name, i, private=None, version=None, host=None):
    host = host or name
    p = private if private is not None else mc_private(i)
    a = {
        f"https://{host}/metadata/public/public.json": ok(public(i)),
        f"https://{host}/metadata/private/multicluster.json": ok(p),
    }
    if isinstance(p, dict) and "apiHost" in p:
        a[f"https://{p['apiHost']}/version"] = version or ok({"major": "1", "minor": "31"})
    return a


def remote_secret(name, token):
    """An istio-remote-secret-<name> as the remoteSecrets binding projects it (kubeconfig in data)."""
    kc = (f"apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: https://api-host\n"
          f"contexts:\n- name: {name}\n  context: {{cluster: {name}, user: {name}}}\ncurrent-context: {name}\n"
          f"users:\n- name: {name}\n  user:\n    token: {token}\n")
    return {"metadata": {"name": f"istio-remote-secret-{name}", "annotations": {"networking.istio.io/cluster": name}},
            "data": {name: base64.b64encode(kc.encode()).decode()}}


def case(name, peers, http=None, config=None, keypair=LOCAL, now=None, global_=GLOBAL, secrets=None):
    d = HERE / name
    d.mkdir(exist_ok=True)
    snaps = {b: [] for b in BINDINGS.values()}
    for kind, item in peers:
        snaps[BINDINGS[kind]].append({"filterResult": item})
    if secrets is not None:
        snaps["remoteSecrets"] = [{"filterResult": s} for s in secrets]
    # All bindings share group "main" (runtime/config.rs), so every run is a Group context.
    ctx = [{"binding": "main", "type": "Group", "groupName": "main", "snapshots": snaps}]
    write(d / "binding-context.json", ctx)
    istio = {"internal": {"remoteAuthnKeypair": keypair}} if keypair is not None else {"internal": {}}
    write(d / "values.json", {"global": global_, "istio": istio})
    write(d / "config-values.json", {"istio": config if config is not None else {"federation": {"enabled": True}}})
    write(d / "http.json", http or {})
    if now:
        (d / "now.txt").write_text(now + "\n")


def write(path, value):
    path.write_text(json.dumps(value, indent=2) + "\n")


F, M, C = "IstioFederation", "IstioMulticluster", "IstioMulticloud"
BOTH = {"federation": {"enabled": True}, "multicluster": {"enabled": True}}
MULTI = {"multicluster": {"enabled": True}}

# 1. Feature disabled: nothing is fetched, metrics are the expire op only.
case("disabled", [(F, fed("proper-federation-0"))], config={"federation": {"enabled": False}},
     http=answers_for_fed("proper-federation-0", 0))

# 2. Enabled, no CRs.
case("enabled-empty", [], config=BOTH)

# 3. Three proper federations; #1 has a stale cache (same uuid, old key/CA, stale lists and a
#    key the peer no longer publishes), #2 stale lists. Ports gain protocols.
stale1 = {
    "public": {"clusterUUID": "proper-uuid-1", "authnKeyPub": KEY[0], "rootCA": ROOT[0]},
    "private": {
        "ingressGateways": [{"address": "192.168.0.1", "port": 1}],
        "publicServices": [{"hostname": "old.bar.svc.p.f1", "ports": [{"name": "http", "port": 80, "protocol": "HTTP"}]}],
        "legacyKey": "gone",
    },
    "publicLastFetchTimestamp": "2026-11-21T23:00:00Z",
    "privateLastFetchTimestamp": "2026-11-21T23:00:00Z",
}
stale2 = {"private": {"ingressGateways": [], "publicServices": []}, "privateLastFetchTimestamp": "not a time"}
http = {}
for i in range(3):
    http.update(answers_for_fed(f"proper-federation-{i}", i))
case("federations-proper", [
    (F, fed("proper-federation-0", 0)),
    (F, fed("proper-federation-1", 1, cache=stale1)),
    (F, fed("proper-federation-2", 2, cache=stale2)),
], http=http)

# 4. A federation of the local trust domain is skipped: no request, no status, no metric.
http = answers_for_fed("proper-federation-0", 0)
http.update(answers_for_fed("local-federation", 1))
case("local-trust-domain-skipped", [
    (F, fed("local-federation", trust_domain="my.cluster")),
    (F, fed("proper-federation-0", 0)),
], http=http)

# 5. Public failures.
names = {
    "public-internal-error": {"status": 500, "body": "oops"},
    "public-bad-json": {"status": 200, "body": "{\"zzz"},
    "public-wrong-format": ok({"wrong": "format"}),
    "public-too-large": {"error": "too-large"},
    "public-timeout": {"error": "timeout"},
    "public-tls-error": {"error": "error sending request for url (https://public-tls-error/metadata/public/public.json): client error (Connect): error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:ssl/statem/statem_clnt.c:1889: (unable to get local issuer certificate)"},
    "public-not-found": {"status": 404, "body": "not found"},
}
case("public-failures", [(F, fed(n, 0)) for n in sorted(names)],
     http={f"https://{n}/metadata/public/public.json": a for n, a in names.items()})

# 6. Public metadata whose rootCA must not be trusted: expired CA, non-CA certificate, a bundle
#    with one good and one expired CA, and a non-Ed25519 / garbage authnKeyPub.
bad_roots = {
    "expired-ca": dict(public(0), rootCA=EXPIRED_CA),
    "non-ca-cert": dict(public(0), rootCA=NON_CA),
    "bundle-with-expired-ca": dict(public(0), rootCA=ROOT[0] + EXPIRED_CA),
    "garbage-authn-key": dict(public(0), authnKeyPub="-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
}
case("public-untrusted-roots", [(F, fed(n, 0)) for n in sorted(bad_roots)],
     http={f"https://{n}/metadata/public/public.json": ok(d) for n, d in bad_roots.items()})

# 7. Private failures: public is cached, private is not.
priv = {
    "private-internal-error": {"status": 500, "body": "oops"},
    "private-bad-json": {"status": 200, "body": "{\"zzz"},
    "private-wrong-format": ok({"wrong": "format"}),
    "private-null-lists": ok({"ingressGateways": None, "publicServices": []}),
    "private-unauthorized": {"status": 401, "body": "JWT is signed for unknown source cluster"},
    "private-too-large": {"error": "too-large"},
    "private-timeout": {"error": "timeout"},
}
http = {}
for n, a in priv.items():
    http[f"https://{n}/metadata/public/public.json"] = ok(public(0))
    http[f"https://{n}/metadata/private/federation.json"] = a
case("private-failures", [(F, fed(n, 0)) for n in sorted(priv)], http=http)

# 8. The peer's clusterUUID changed: cache untouched, no token, no private request.
pinned = {"public": {"clusterUUID": "pinned-uuid", "authnKeyPub": KEY[0], "rootCA": ROOT[0]},
          "publicLastFetchTimestamp": "2026-11-21T23:59:00Z"}
http = {}
http.update(answers_for_fed("changed-federation", 0))
http.update(answers_for_mc("changed-multicluster", 1))
case("cluster-uuid-changed", [
    (F, fed("changed-federation", 0, cache=pinned)),
    (M, mc("changed-multicluster", cache=pinned)),
], http=http, config=BOTH)

# 9. Hostnames outside the peer's domain are dropped and counted.
services = [
    {"hostname": "good.ns.svc.p.f0", "ports": [{"name": "http", "port": 80}]},
    {"hostname": "kubernetes.default.svc.cluster.local", "ports": [{"name": "https", "port": 443}]},
    {"hostname": "istiod.d8-istio.svc.my.cluster", "ports": [{"name": "grpc", "port": 15012}]},
    {"hostname": "other-peer.ns.svc.p.f1", "ports": [{"name": "http", "port": 80}]},
    {"hostname": "evil.svc.p.f0.attacker.io", "ports": [{"name": "http", "port": 80}]},
    {"hostname": "svc.p.f0", "ports": [{"name": "http", "port": 80}]},
]
case("foreign-hostnames-dropped", [(F, fed("federation-0", 0))],
     http=answers_for_fed("federation-0", 0, private=fed_private(0, services)))

# 10. YAML/template metacharacters: rejected by validation where a name is expected, carried
#     as JSON where free text is allowed (the PEMs' newlines).
meta_services = [
    {"hostname": "ok.ns.svc.p.f0", "ports": [{"name": "http", "port": 80}, {"name": "x: {y}", "port": 81}]},
    {"hostname": "a.ns.svc.p.f0\n- hostname: injected.svc.p.f0", "ports": [{"name": "http", "port": 80}]},
    {"hostname": "{{ .Values.global }}.svc.p.f0", "ports": [{"name": "http", "port": 80}]},
    {"hostname": "b.ns.svc.p.f0", "ports": [{"name": "'; &anchor *alias", "port": 80}]},
]
meta_gws = [{"address": "10.0.0.1\n  port: 1", "port": 15443}, {"address": "10.0.0.2", "port": 15443}]
http = {}
http.update(answers_for_fed("meta-private", 0, private={"ingressGateways": meta_gws, "publicServices": meta_services}))
http["https://meta-public/metadata/public/public.json"] = ok(dict(public(0), clusterUUID="uuid: {evil}"))
http.update(answers_for_mc("meta-api-host", 1, private=mc_private(1, apiHost="api.example.com\nkind: Secret")))
http.update(answers_for_mc("meta-network", 2, private=mc_private(2, networkName="{{ .Values }}")))
case("yaml-metacharacters", [
    (F, fed("meta-private", 0)),
    (F, fed("meta-public", 0)),
    (M, mc("meta-api-host")),
    (M, mc("meta-network")),
], http=http, config=BOTH)

# 11. lastTransitionTime: kept when status and reason are unchanged (even if the message
#     changed), reset otherwise; foreign conditions are kept after ours; an unparsable prior
#     time is replaced.
T0 = "2026-11-01T10:00:00Z"
prior = [
    {"type": "DataplaneConnectionReady", "status": "True", "reason": "Connected", "message": "", "lastTransitionTime": T0, "lastProbeTime": T0},
    {"type": "PublicMetadataExchangeReady", "status": "True", "reason": "Succeeded", "message": "an older message", "lastTransitionTime": T0, "lastProbeTime": T0},
    {"type": "PrivateMetadataExchangeReady", "status": "True", "reason": "Succeeded", "message": "Private metadata exchange succeeded.", "lastTransitionTime": T0, "lastProbeTime": T0},
    # Rewritten by a successful private fetch (time kept: same status and reason), kept as it
    # was when the private fetch fails.
    {"type": "IngressGatewaysPublished", "status": "True", "reason": "Published", "message": "The peer publishes 2 ingress gateway(s).", "lastTransitionTime": T0, "lastProbeTime": T0},
]
prior_garbage = [
    {"type": "PublicMetadataExchangeReady", "status": "True", "reason": "Succeeded", "message": "", "lastTransitionTime": "yesterday", "lastProbeTime": T0},
    {"type": "PrivateMetadataExchangeReady", "status": "False", "reason": "FetchFailed", "message": "", "lastTransitionTime": T0, "lastProbeTime": T0},
]
http = {}
http.update(answers_for_fed("kept", 0))
http["https://changed/metadata/public/public.json"] = ok(public(0))
http["https://changed/metadata/private/federation.json"] = {"status": 503, "body": ""}
http.update(answers_for_fed("garbage-time", 0))
case("condition-transitions", [
    (F, fed("changed", 0, conditions=prior, cache={"public": public(0)})),
    (F, fed("garbage-time", 0, conditions=prior_garbage, cache={"public": public(0)})),
    (F, fed("kept", 0, conditions=prior, cache={"public": public(0)})),
], http=http)

# 12. Multicluster peers: full success with a stale clusterID removed; a peer whose api-proxy
#     does not accept our token yet; an unreachable api-proxy; clusterID published.
http = {}
http.update(answers_for_mc("proper-multicluster-0", 0, private=mc_private(0, clusterID="peer-0-id")))
http.update(answers_for_mc("proper-multicluster-1", 1))
http.update(answers_for_mc("api-unauthorized", 2, version={"status": 401, "body": "JWT is signed for unknown source cluster"}))
http.update(answers_for_mc("api-unreachable", 0, private=mc_private(3)))
http["https://api-host-3/version"] = {"error": "error sending request for url (https://api-host-3/version): client error (Connect): tcp connect error: Connection refused (os error 111)"}
stale_mc = {"public": public(1), "private": dict(mc_private(9), clusterID="stale-id", ambientGateways=[{"address": "10.9.9.9", "port": 15008}])}
case("multicluster-peers", [
    (M, mc("api-unauthorized")),
    (M, mc("api-unreachable")),
    (M, mc("proper-multicluster-0")),
    (M, mc("proper-multicluster-1", cache=stale_mc, enableIngressGateway=True)),
], http=http, config=MULTI)

# 12b. RemoteAPIServerReady probes with the token stored in the remote secret (what istiod
#      uses): accepted for peer 0; refused for peer 1, whose stored token the peer no longer takes.
http = answers_for_mc("proper-multicluster-0", 0)
http.update(answers_for_mc("proper-multicluster-1", 1))
http["https://api-host-0/version"]["requireBearer"] = "stored-token-0"
http["https://api-host-1/version"]["requireBearer"] = "a-token-the-peer-still-accepts"
case("multicluster-stored-token", [
    (M, mc("proper-multicluster-0")),
    (M, mc("proper-multicluster-1")),
], http=http, config=MULTI, secrets=[remote_secret("proper-multicluster-0", "stored-token-0"),
                                     remote_secret("proper-multicluster-1", "revoked-token-1")])

# 13. Multicluster failures: public failure leaves private and the API Unknown; private failure
#     leaves the API AwaitingPrivate.
http = {
    "https://mc-public-down/metadata/public/public.json": {"status": 502, "body": ""},
    "https://mc-private-invalid/metadata/public/public.json": ok(public(1)),
    "https://mc-private-invalid/metadata/private/multicluster.json": ok({"ingressGateways": [], "apiHost": "", "networkName": "n"}),
}
case("multicluster-failures", [(M, mc("mc-private-invalid")), (M, mc("mc-public-down"))], http=http, config=MULTI)

# 13b. Peers that publish no ingress gateways are kept (cache, Succeeded conditions, trust) and
#      condition IngressGatewaysPublished says why nothing of them is imported/reachable: a
#      federation, a multicluster peer reached through gateways, and one on a flat network
#      (enableIngressGateway: false), for which no gateway is needed.
http = {}
http.update(answers_for_fed("fed-no-gateways", 0, private=dict(fed_private(0), ingressGateways=[])))
http.update(answers_for_mc("mc-no-gateways", 1, private=mc_private(1, ingressGateways=[])))
http.update(answers_for_mc("mc-flat-no-gateways", 2, private=mc_private(2, ingressGateways=[])))
case("no-ingress-gateways", [
    (F, fed("fed-no-gateways", 0)),
    (M, mc("mc-flat-no-gateways", enableIngressGateway=False)),
    (M, mc("mc-no-gateways")),
], http=http, config=BOTH)

# 14. IstioMulticloud objects, enabled through the deprecated alias.
case("multicloud-object", [(C, mc("legacy-multicloud"))], http=answers_for_mc("legacy-multicloud", 0),
     config={"multicloud": {"enabled": True}})

# 15. No keypair yet: nothing fetched, expire only.
case("keypair-missing", [(F, fed("proper-federation-0", 0))], http=answers_for_fed("proper-federation-0", 0), keypair=None)

# 16. A keypair that cannot sign: public succeeds, private TokenGenerationFailed, no private GET.
case("keypair-invalid", [(F, fed("proper-federation-0", 0))], http=answers_for_fed("proper-federation-0", 0),
     keypair={"pub": LOCAL["pub"], "priv": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"})

# 17. Hand-edited status: wrong types everywhere must not hide the peer; an invalid cached
#     clusterUUID does not pin.
weird = peer("weird-status", "https://weird-status/metadata", "p.f0")
weird["status"] = {"metadataCache": {"public": {"clusterUUID": "not a uuid!"}, "private": "a string",
                                     "publicLastFetchTimestamp": 5},
                   "conditions": [7, {"type": "Foreign"}, {"status": "True"}]}
case("hand-edited-status", [(F, weird)], http=answers_for_fed("weird-status", 0))

# 18. Endpoints that are not https:// are refused without a request; trailing slashes vary.
http = answers_for_fed("slashes", 0)
http["http://plain/metadata/public/public.json"] = ok(public(0))
plain = peer("plain-http", "http://plain/metadata/", "p.f0")
slashes = peer("slashes", "https://slashes/metadata///", "p.f0")
case("endpoint-forms", [(F, plain), (F, slashes)], http=http)

# 19. Both features on: both kinds are processed, federations first.
http = answers_for_fed("proper-federation-0", 0)
http.update(answers_for_mc("proper-multicluster-1", 1))
case("both-features", [(F, fed("proper-federation-0", 0)), (M, mc("proper-multicluster-1"))], http=http, config=BOTH)

# 20. Enabled without global.discovery.clusterUUID: the run fails (nothing to sign tokens as).
case("cluster-uuid-missing", [(F, fed("proper-federation-0", 0))], http=answers_for_fed("proper-federation-0", 0),
     global_={"discovery": {"clusterDomain": "my.cluster"}})

# 21. Many invalid items: every one is counted, only the first ten are logged.
many = [{"hostname": f"s{i}.ns.svc.elsewhere", "ports": [{"name": "http", "port": 80}]} for i in range(25)]
case("many-dropped-items", [(F, fed("federation-0", 0))],
     http=answers_for_fed("federation-0", 0, private=fed_private(0, many)))

# 22-24. Conditional requests (ETag / If-None-Match → 304). A cache as the hook writes it: the
#        validated documents (ports with protocols, services sorted by hostname).
PROTO = {"ppp": "TCP", "https-ppp": "TLS", "grpc-ppp": "HTTP2", "http-ppp": "HTTP"}


def fed_private_cached(i):
    d = fed_private(i)
    for s in d["publicServices"]:
        s["ports"] = [dict(p, protocol=PROTO[p["name"]]) for p in s["ports"]]
    d["publicServices"].sort(key=lambda s: s["hostname"])
    return d


def tagged(answer, tag):
    return dict(answer, etag=tag)


OLD = "2026-11-21T23:59:45Z"


def cache_of(pub, priv, ptag=None, vtag=None):
    c = {"public": pub, "private": priv, "publicLastFetchTimestamp": OLD, "privateLastFetchTimestamp": OLD}
    if ptag is not None:
        c["publicETag"] = ptag
    if vtag is not None:
        c["privateETag"] = vtag
    return c


# 22. Unchanged peers answer 304 to both documents: no document in the patch, only the
#     timestamps and conditions; the multicluster API probe still runs. A peer whose public
#     document changed sends a 200 with a new tag, its private part is still a 304.
http = {}
for name, i in [("nm-federation", 0), ("changed-public", 2)]:
    a = answers_for_fed(name, i)
    pub, priv = (f"https://{name}/metadata/{p}" for p in ("public/public.json", "private/federation.json"))
    http[pub] = tagged(a[pub], f'"pub-{i}-v2"' if name == "changed-public" else f'"pub-{i}"')
    http[priv] = tagged(a[priv], f'"fed-{i}"')
a = answers_for_mc("nm-multicluster", 1)
for url, ans in a.items():
    if "/metadata/" in url:
        http[url] = tagged(ans, '"mc-1-' + ("pub" if "public" in url else "priv") + '"')
    else:
        http[url] = ans
case("etag-not-modified", [
    (F, fed("changed-public", 2, cache=cache_of(public(2), fed_private_cached(2), '"pub-2"', '"fed-2"'))),
    (F, fed("nm-federation", 0, cache=cache_of(public(0), fed_private_cached(0), '"pub-0"', '"fed-0"'))),
    (M, mc("nm-multicluster", cache=cache_of(public(1), mc_private(1), '"mc-1-pub"', '"mc-1-priv"'))),
], http=http, config=BOTH)

# 23. Tags that must not be sent: no cached document, an invalid cached document, a cached
#     private document that validation trims (a dropped item), malformed tags (weak, unquoted,
#     too long, control character, not a string). Malformed stored tags are removed when the
#     peer answers without an ETag (a Deckhouse peer); a private document with dropped items
#     gets no stored tag.
foreign = fed_private_cached(0)
foreign["publicServices"].append({"hostname": "x.ns.svc.elsewhere", "ports": [{"name": "http", "port": 80, "protocol": "HTTP"}]})
peers = {
    "tag-without-cache": {"publicETag": '"pub-0"', "privateETag": '"fed-0"'},
    "tag-cache-invalid": dict(cache_of(dict(public(0), rootCA=NON_CA), {"ingressGateways": "no"}, '"pub-0"', '"fed-0"')),
    "tag-private-trimmed": cache_of(public(0), foreign, '"pub-0"', '"fed-0"'),
    "weak-and-unquoted": cache_of(public(0), fed_private_cached(0), 'W/"pub-0"', "fed-0"),
    "too-long-and-control": cache_of(public(0), fed_private_cached(0), '"' + "a" * 129 + '"', '"fed\t0"'),
    "not-a-string": cache_of(public(0), fed_private_cached(0), 7, {"tag": '"fed-0"'}),
}
http = {}
for name in peers:
    a = answers_for_fed(name, 0)
    for url, ans in a.items():
        # Peers with malformed stored tags do not send ETags (the stored ones are removed).
        http[url] = ans if name in ("weak-and-unquoted", "too-long-and-control", "not-a-string") else tagged(
            ans, '"pub-0"' if "public" in url else '"fed-0"')
http["https://private-drops/metadata/public/public.json"] = tagged(ok(public(0)), '"pub-0"')
http["https://private-drops/metadata/private/federation.json"] = tagged(ok(fed_private(0, services=foreign["publicServices"])), '"fed-drops"')
case("etag-not-sent", [(F, fed(n, 0, cache=c)) for n, c in sorted(peers.items())]
     + [(F, fed("private-drops", 0, cache=cache_of(public(0), fed_private_cached(0), '"pub-0"', '"fed-old"')))], http=http)

# 24. A 304 to a request without If-None-Match is a NonOKResponse (public, then private); a
#     304 naming another tag than ours is retried once without the header (and the retry's 304
#     fails the same way).
http = {
    "https://unasked-public/metadata/public/public.json": {"status": 304},
    "https://unasked-private/metadata/public/public.json": ok(public(0)),
    "https://unasked-private/metadata/private/federation.json": {"status": 304},
    "https://other-tag/metadata/public/public.json": {"status": 304, "etag": '"someone-else"'},
}
case("etag-unasked-304", [
    (F, fed("other-tag", 0, cache=cache_of(public(0), fed_private_cached(0), '"pub-0"', '"fed-0"'))),
    (F, fed("unasked-private", 0)),
    (F, fed("unasked-public", 0)),
], http=http)
