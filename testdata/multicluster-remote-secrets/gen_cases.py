#!/usr/bin/env python3
"""Writes the inputs of the multicluster-remote-secrets golden cases (binding-context.json,
values.json, config-values.json, now.txt) from the fixtures next to this script.

Fixtures (fixture-* next to this script, made once, see README.md): Ed25519 keys from `openssl genpkey -algorithm ed25519`,
root CAs from `openssl req -x509`, and fixture-tokens.json, minted by the Rust signer
(`cargo test --lib multicluster_remote_secrets::tests::mint_fixture_tokens -- --ignored`).
Expected outputs are then written by `UPDATE_GOLDEN=1 cargo test --test golden` and reviewed.
"""
import base64
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
CASES = HERE
OWN = "11111111-1111-4111-8111-111111111111"
B = "22222222-2222-4222-8222-222222222222"
C = "33333333-3333-4333-8333-333333333333"
NOW = "2026-12-01T00:00:00Z"


def read(name):
    return (HERE / f"fixture-{name}").read_text()


TOKENS = json.loads(read("tokens.json"))
KEYPAIR = {"pub": read("own-pub.pem"), "priv": read("own-priv.pem")}


def public(uuid, key, ca):
    return {"clusterUUID": uuid, "authnKeyPub": read(key), "rootCA": read(ca)}


PUBLIC_B = public(B, "peer-b-pub.pem", "ca-b.pem")
PUBLIC_C = public(C, "peer-c-pub.pem", "ca-c.pem")
PRIVATE_B = {
    "ingressGateways": [{"address": "203.0.113.20", "port": 15443}, {"address": "203.0.113.10", "port": 15443}],
    "apiHost": "istio-api-proxy.b.example.com",
    "networkName": "network-cluster-b-local-1234567",
    "clusterID": "cluster-b-local-1234567",
}
PRIVATE_C = {
    "ingressGateways": [{"address": "gw.c.example.com", "port": 31443}],
    "apiHost": "istio-api-proxy.c.example.com:8443",
    "networkName": "network-cluster-c-local-7654321",
}


def peer(name, public=None, private=None, spec=None):
    """A peer CR as PEER_CACHE_JQ_FILTER projects it (absent cache parts are null)."""
    s = {"metadataEndpoint": f"https://istio-metadata.{name}.example.com/metadata/"}
    s.update(spec or {})
    return {"metadata": {"name": name}, "spec": s,
            "status": {"metadataCache": {"public": public, "private": private}}}


def kubeconfig(name, token):
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- cluster:\n    server: https://istio-api-proxy.{name}.example.com\n"
        "    insecure-skip-tls-verify: false\n"
        f"  name: {name}\n"
        f"contexts:\n- context:\n    cluster: {name}\n    user: {name}\n  name: {name}\n"
        f"current-context: {name}\npreferences: {{}}\n"
        f"users:\n- name: {name}\n  user:\n    token: {token}\n"
    )


def b64(s):
    return base64.b64encode(s.encode()).decode()


def secret(name, kubeconfig_text):
    """A remote secret as the binding's jqFilter projects it; data values are base64 as in the API."""
    return {"metadata": {"name": f"istio-remote-secret-{name}",
                         "annotations": {"networking.istio.io/cluster": name}},
            "data": {name: b64(kubeconfig_text)}}


def context(multiclusters=(), multiclouds=(), secrets=(), binding="beforeHelm"):
    item = lambda v: {"filterResult": v}
    return [{"binding": binding, "snapshots": {
        "multiclusters": [item(p) for p in multiclusters],
        "multiclouds": [item(p) for p in multiclouds],
        "remoteSecrets": [item(s) for s in secrets],
    }}]


def values(keypair=True, uuid=True):
    v = {"global": {"discovery": {"clusterDomain": "cluster.local"},
                    "modules": {"publicDomainTemplate": "%s.a.example.com"}},
         "istio": {"internal": {}}}
    if uuid:
        v["global"]["discovery"]["clusterUUID"] = OWN
    if keypair:
        v["istio"]["internal"]["remoteAuthnKeypair"] = KEYPAIR
    return v


MULTICLUSTER_ON = {"istio": {"multicluster": {"enabled": True}}}
FULL_B = peer("b", PUBLIC_B, PRIVATE_B, {"metadata": {"ca": read("ca-b.pem")}})
SIMPLE_B = peer("b", PUBLIC_B, PRIVATE_B)


def case(name, ctx, vals=None, config=MULTICLUSTER_ON):
    d = CASES / name
    d.mkdir(exist_ok=True)
    dump = lambda f, v: (d / f).write_text(json.dumps(v, indent=2) + "\n")
    dump("binding-context.json", ctx)
    dump("values.json", vals if vals is not None else values())
    dump("config-values.json", config)
    (d / "now.txt").write_text(NOW + "\n")


case("disabled", context([FULL_B]), config={"istio": {"multicluster": {"enabled": False}}})
case("enabled-empty", context())
case("full-peer", context([FULL_B]))
case("two-peers-one-without-gateways", context([
    SIMPLE_B,
    peer("c", PUBLIC_C, dict(PRIVATE_C, ingressGateways=[]), {"enableIngressGateway": False}),
], binding="daily"))
case("no-gateways-kept", context([peer("b", PUBLIC_B, dict(PRIVATE_B, ingressGateways=[]))]))
case("missing-api-host", context([peer("b", PUBLIC_B, {k: v for k, v in PRIVATE_B.items() if k != "apiHost"})]))
case("missing-network-name", context([peer("b", PUBLIC_B, {k: v for k, v in PRIVATE_B.items() if k != "networkName"})]))
case("no-public", context([peer("b", None, PRIVATE_B), peer("c", None, None)]))
case("multicloud-only", context(multiclouds=[peer("c", PUBLIC_C, PRIVATE_C)]),
     config={"istio": {"multicloud": {"enabled": True}}})
case("duplicate-name-across-kinds", context([SIMPLE_B], multiclouds=[peer("b", PUBLIC_C, PRIVATE_C)]))
case("no-keypair", context([SIMPLE_B]), vals=values(keypair=False))
case("error-no-cluster-uuid", context([SIMPLE_B]), vals=values(uuid=False))
case("reuse-valid-tokens", context(
    [SIMPLE_B, peer("c", PUBLIC_C, PRIVATE_C)],
    secrets=[secret("b", kubeconfig("b", TOKENS["valid-b"])),
             secret("c", b64(kubeconfig("c", TOKENS["valid-c"])))]))
case("reissue-expiring", context([SIMPLE_B], secrets=[secret("b", kubeconfig("b", TOKENS["expiring-b"]))]))
case("reissue-foreign-key", context([SIMPLE_B], secrets=[secret("b", kubeconfig("b", TOKENS["foreign-b"]))]))
case("reissue-wrong-aud", context([SIMPLE_B], secrets=[secret("b", kubeconfig("b", TOKENS["wrong-aud-b"]))]))
case("garbage-remote-secret", context([SIMPLE_B], secrets=[
    secret("b", "this is: not: a kubeconfig: [\x00"),
    {"metadata": {"name": "istio-remote-secret-x"}, "data": {"x": "%%% not base64"}},
    {"metadata": {"name": "unrelated-secret"}, "data": None},
    {"metadata": {"name": 5}},
]))
case("hostile-status", context([
    peer("b", PUBLIC_B, dict(PRIVATE_B, networkName="n" * 70)),
    peer("c", PUBLIC_C, dict(PRIVATE_C, apiHost="istio api proxy.c.example.com")),
    peer("d", dict(PUBLIC_B, clusterUUID="evil uuid\n"), PRIVATE_B),
    peer("e", dict(PUBLIC_B, rootCA="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), PRIVATE_B),
    peer("f", PUBLIC_B, {"ingressGateways": "all of them", "apiHost": "a.example.com", "networkName": "n"}),
    peer("g", PUBLIC_B, dict(PRIVATE_B, ingressGateways=[{"address": "evil host", "port": 1}, {"address": "198.51.100.1", "port": 70000}])),
]))
# The secret is not rendered yet but values already hold a valid token from an earlier run: kept
# (the stale apiHost in values is replaced).
case("reuse-token-from-values", context([SIMPLE_B]), vals=dict(values(), istio={"internal": {
    "remoteAuthnKeypair": KEYPAIR,
    "multiclusters": [{"name": "b", "clusterUUID": B, "apiHost": "old-api.b.example.com",
                       "networkName": PRIVATE_B["networkName"], "clusterID": PRIVATE_B["clusterID"],
                       "enableIngressGateway": True, "ingressGateways": PRIVATE_B["ingressGateways"],
                       "insecureSkipVerify": False, "metadataExporterCA": "", "apiJWT": TOKENS["valid-b"]}],
    "multiclustersNeedIngressGateway": True}}))
# The secret exists but its token was altered (here: signed by another key) while values still
# hold the good one: a new token, so that the values change and Helm rewrites the Secret istiod
# reads (reusing the values token would leave the broken Secret in place).
case("reissue-tampered-secret-values-valid", context([SIMPLE_B], secrets=[secret("b", kubeconfig("b", TOKENS["foreign-b"]))]),
     vals=dict(values(), istio={"internal": {
         "remoteAuthnKeypair": KEYPAIR,
         "multiclusters": [{"name": "b", "clusterUUID": B, "apiHost": PRIVATE_B["apiHost"],
                            "networkName": PRIVATE_B["networkName"], "clusterID": PRIVATE_B["clusterID"],
                            "enableIngressGateway": True, "ingressGateways": PRIVATE_B["ingressGateways"],
                            "insecureSkipVerify": False, "metadataExporterCA": "", "apiJWT": TOKENS["valid-b"]}],
         "multiclustersNeedIngressGateway": True}}))
# IstioMulticluster objects come before IstioMulticloud ones whatever their names.
case("kind-order", context([peer("c", PUBLIC_C, PRIVATE_C, {"metadata": {"insecureSkipVerify": True}})],
                           multiclouds=[SIMPLE_B]))
# Public fetched, private not yet.
case("no-private", context([peer("b", PUBLIC_B, None)]))
