#!/usr/bin/env python3
"""One-off generator of testdata/templates/<case>/values.yaml (+ case.yaml).

Makes real PKI with openssl (EC P-256 root CAs, Ed25519 authn keys, EdDSA `api` JWTs signed with
the local key) and builds the internal values the hooks would write for each scenario, including
the ServiceEntry names of SPEC §7.1 (fnv32a + safe-encode). Running it again regenerates every
key and certificate, so the golden renders must then be rewritten (UPDATE_GOLDEN=1 render.py). Cases that only vary
settings or cluster capabilities of a generated case are not generated here: their case.yaml
names a `base` case and the `values` merged over it (see render.py).

    .venv/bin/python tests/helm/gen_cases.py
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import ipaddress
import json
import pathlib
import subprocess
import tempfile
import zlib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "testdata" / "templates"
LOCAL_UUID = "0b6f3c1e-6f5a-4d7e-9a47-1c2d3e4f5a6b"
NOW = 1795000000  # fixed issue time of the generated JWTs (2026-11-18)


def sh(*args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(args, input=data, check=True, capture_output=True).stdout


class Pki:
    def __init__(self, tmp: pathlib.Path):
        self.tmp = tmp

    def root(self, name: str) -> dict:
        key, crt = self.tmp / f"{name}.key", self.tmp / f"{name}.crt"
        sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-keyout", str(key), "-out", str(crt), "-days", "3650", "-subj", f"/O=d8-istio/CN={name} root",
           "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        fp = sh("openssl", "x509", "-in", str(crt), "-noout", "-fingerprint", "-sha256").decode()
        end = sh("openssl", "x509", "-in", str(crt), "-noout", "-enddate").decode().strip().split("=", 1)[1]
        not_after = dt.datetime.strptime(end, "%b %d %H:%M:%S %Y %Z").strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"pem": crt.read_text(), "fingerprintSHA256": fp.split("=", 1)[1].strip().replace(":", "").lower(),
                "notAfter": not_after}

    def ed25519(self, name: str) -> dict:
        key = self.tmp / f"{name}.ed.key"
        sh("openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key))
        pub = sh("openssl", "pkey", "-in", str(key), "-pubout").decode()
        return {"pub": pub, "priv": key.read_text(), "path": str(key)}

    def jwt(self, key_path: str, aud: str) -> str:
        b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
        header = b64(json.dumps({"alg": "EdDSA"}, separators=(",", ":")).encode())
        claims = {"iss": "d8-istio", "sub": LOCAL_UUID, "aud": aud, "scope": "api",
                  "nbf": NOW, "exp": NOW + 366 * 86400}
        payload = b64(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{header}.{payload}".encode()
        msg = self.tmp / "msg"
        msg.write_bytes(signing_input)
        sig = sh("openssl", "pkeyutl", "-sign", "-inkey", key_path, "-rawin", "-in", str(msg))
        return f"{header}.{payload}.{b64(sig)}"


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(n: int) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[ord(c) % len(alphabet)] for c in str(n))


def is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def protocol(name: str) -> str:
    base = name.split("-")[0]
    if "https" in base or "tls" in base:
        return "TLS"
    if "http2" in base or "grpc" in base:
        return "HTTP2"
    return "HTTP" if "http" in base else "TCP"


def service_entries(federations: list[dict]) -> list[dict]:
    """SPEC §7.1 merge, as the render-service-entries hook computes it."""
    ports: dict[tuple[str, int], dict] = {}
    endpoints: dict[tuple[str, int], set] = {}
    for fed in federations:
        gws = {(g["address"], g["port"]) for g in fed["ingressGateways"]}
        for svc in fed["publicServices"]:
            for p in svc["ports"]:
                k = (svc["hostname"], p["port"])
                ports.setdefault(k, p)
                endpoints.setdefault(k, set()).update(gws)
    groups: dict[tuple[str, tuple], list] = {}
    for (host, port), p in ports.items():
        groups.setdefault((host, tuple(sorted(endpoints[(host, port)]))), []).append(p)
    singles = []
    for (host, eps), ps in groups.items():
        singles.append({
            "hostname": host,
            "resolution": "STATIC" if all(is_ip(a) for a, _ in eps) else "DNS",
            "ports": sorted(ps, key=lambda p: p["port"]),
            "endpoints": [{"address": a, "port": p} for a, p in eps],
        })
    return group(singles)


MAX_HOSTS = 256  # Istio's CRD: spec.hosts maxItems
TARGET_HOSTS = 224


def group(singles: list[dict]) -> list[dict]:
    """SPEC §7.1 grouping, as the hook's `render_service_entries::group` does it: hostnames of
    one trust domain with equal resolution, ports and endpoints share an item with `hosts`,
    split into n buckets by fnv32a(hostname) mod n, n = ceil(len / TARGET_HOSTS) raised until no
    bucket holds more than MAX_HOSTS."""
    groups: dict[tuple, list[str]] = {}
    for e in singles:
        host = e["hostname"]
        domain = host[host.rfind(".svc.") + 5:] if ".svc." in host else host
        key = (domain, e["resolution"], json.dumps(e["ports"]), json.dumps(e["endpoints"]))
        groups.setdefault(key, []).append(host)
    out = []
    for (domain, resolution, ports_json, eps_json), hosts in sorted(groups.items()):
        ports, eps = json.loads(ports_json), json.loads(eps_json)
        buckets = max(1, -(-len(hosts) // TARGET_HOSTS))
        while max(sum(1 for h in hosts if fnv32a(h.encode()) % buckets == b) for b in range(buckets)) > MAX_HOSTS:
            buckets += 1
        key = "|".join([resolution, ",".join(f"{p['name']}:{p['port']}:{p['protocol']}" for p in ports),
                        ",".join(f"{e['address']}:{e['port']}" for e in eps)])
        suffix = safe_encode(fnv32a(key.encode()))
        for b in range(buckets):
            hs = sorted(h for h in hosts if fnv32a(h.encode()) % buckets == b)
            if hs:
                tail = f"-{suffix}" + (f"-{b}-of-{buckets}" if buckets > 1 else "")
                out.append({"name": domain.replace(".", "-")[:253 - len(tail)].rstrip("-") + tail, "hosts": hs,
                            "resolution": resolution, "ports": ports, "endpoints": eps})
    return sorted(out, key=lambda e: e["name"])


def svc(host: str, *ports: tuple[str, int]) -> dict:
    return {"hostname": host, "ports": [{"name": n, "port": p, "protocol": protocol(n)} for n, p in ports]}


def hostile(base: dict) -> tuple[dict, dict]:
    """The both-features values with remote strings full of YAML metacharacters and newlines
    (marker INJECTED), plus case.yaml: paths the schema must reject, strings the render must
    carry exactly."""
    v = copy.deepcopy(base)
    i = v["istio"]["internal"]
    H = {
     'seName': 'evil\nINJECTED: name',
     'hostname': 'a: b\n- c\nINJECTED: host',
     'resolution': 'STATIC\nINJECTED: res',
     'portName': 'http": 1, "INJECTED": "port',
     'protocol': 'TCP}\nINJECTED: proto',
     'address': '1.2.3.4\n    INJECTED: addr',
     'pem': '-----BEGIN CERTIFICATE-----\nINJECTED: pem\n-----END CERTIFICATE-----\n',
     'trustDomain': 'td\n- INJECTED: td',
     'uuid': 'uuid": {"INJECTED": 1}, "x',
     'authnKeyPub': 'k"\nINJECTED: k',
     'mcName': 'b\nINJECTED: mcname',
     'apiHost': 'h.example.com\n- INJECTED: apihost',
     'networkName': 'net: {INJECTED: net}',
     'apiJWT': 'tok\nINJECTED: jwt',
     'ca': 'ca\n INJECTED: ca',
     'gwAddress': '10.0.0.1"\nINJECTED: gw',
     'localHost': "x'\nINJECTED: local",
     'annKey': 'a\nINJECTED: ann',
     'annValue': 'v: {x}\nINJECTED: annv',
    }
    se = i['federationServiceEntries'][0]
    se.pop('hosts', None)  # the single-hostname form of an item, hostile
    se.update(name=H['seName'], hostname=H['hostname'], resolution=H['resolution'])
    se['ports'][0].update(name=H['portName'], protocol=H['protocol'])
    se['endpoints'][0].update(address=H['address'], port='15443\nINJECTED: port')
    i['trustBundle'][0].update(pem=H['pem'], trustDomains=[H['trustDomain']])
    i['remotePublicMetadata'] = {H['uuid']: {'clusterUUID': H['uuid'], 'authnKeyPub': H['authnKeyPub'], 'rootCA': H['pem']}}
    mc = i['multiclusters'][0]
    mc.update(name=H['mcName'], apiHost=H['apiHost'], networkName=H['networkName'], apiJWT=H['apiJWT'], metadataExporterCA=H['ca'])
    mc['ingressGateways'][0]['address'] = H['gwAddress']
    i['localMetadata']['federation']['publicServices'][0]['hostname'] = H['localHost']
    v['istio']['alliance'] = {'ingressGateway': {'serviceAnnotations': {H['annKey']: H['annValue']}}}
    case = {
     'description': 'hostile peer data',
     'schema': 'invalid',
     'schemaMustReject': ['/internal/federationServiceEntries/0/name', '/internal/federationServiceEntries/0/hostname',
       '/internal/federationServiceEntries/0/resolution', '/internal/federationServiceEntries/0/ports/0/name',
       '/internal/federationServiceEntries/0/ports/0/protocol', '/internal/federationServiceEntries/0/endpoints/0/address',
       '/internal/federationServiceEntries/0/endpoints/0/port', '/internal/trustBundle/0/trustDomains/0',
       '/internal/remotePublicMetadata/' + H['uuid'].replace('~','~0').replace('/','~1') + '/clusterUUID',
       '/internal/multiclusters/0/name', '/internal/multiclusters/0/apiHost', '/internal/multiclusters/0/networkName',
       '/internal/multiclusters/0/apiJWT', '/internal/multiclusters/0/ingressGateways/0/address',
       '/internal/localMetadata/federation/publicServices/0/hostname'],
     'forbiddenKey': 'INJECTED',
     'mustContain': [H[k] for k in ['seName','hostname','resolution','portName','protocol','address','pem','trustDomain','uuid',
       'authnKeyPub','mcName','networkName','apiJWT','gwAddress','localHost','annKey','annValue']]
       + ['https://' + H['apiHost'], 'istio-remote-secret-' + H['mcName']],
    }
    return v, case


class Dumper(yaml.SafeDumper):
    """Block literals for PEMs, no anchors for shared sub-objects."""

    def ignore_aliases(self, data: object) -> bool:
        return True


Dumper.add_representer(
    str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))


def main() -> None:
    with tempfile.TemporaryDirectory() as t:
        pki = Pki(pathlib.Path(t))
        local = pki.ed25519("local")
        local_root = pki.root("cluster-a")
        roots = {n: pki.root(n) for n in ["cluster-b-1", "cluster-b-2", "cluster-c", "k8s-b", "k8s-c"]}
        keys = {n: pki.ed25519(n) for n in roots}
        uuids = {"cluster-b-1": "5d3c1a2b-0001-4b6e-8f00-00000000b001", "cluster-b-2": "5d3c1a2b-0002-4b6e-8f00-00000000b002",
                 "cluster-c": "7a9e2f10-0003-4c11-9d00-00000000c003", "k8s-b": "9f1b7c44-0004-4e22-a100-00000000d004",
                 "k8s-c": "9f1b7c44-0005-4e22-a100-00000000d005"}
        metadata_ca = pki.root("metadata-ca")["pem"]
        jwts = {n: pki.jwt(local["path"], uuids[n]) for n in ["k8s-b", "k8s-c"]}

        def public(n: str) -> dict:
            return {"clusterUUID": uuids[n], "authnKeyPub": keys[n]["pub"], "rootCA": roots[n]["pem"]}

        def fed(name: str, td: str, gws: list, svcs: list, **kw) -> dict:
            return {"name": name, "trustDomain": td, "clusterUUID": uuids[name], "rootCA": roots[name]["pem"],
                    "ingressGateways": [{"address": a, "port": p} for a, p in gws], "publicServices": svcs,
                    "insecureSkipVerify": kw.get("insecure", False), "metadataExporterCA": kw.get("ca", "")}

        def mc(name: str, ig: bool, gws: list, **kw) -> dict:
            return {"name": name, "clusterUUID": uuids[name], "apiHost": f"istio-api-proxy.{name}.example.com",
                    "networkName": f"network-cluster-local-{zlib.adler32(uuids[name].encode())}",
                    "clusterID": kw.get("cid", f"cluster-local-{zlib.adler32(uuids[name].encode())}"),
                    "enableIngressGateway": ig, "ingressGateways": [{"address": a, "port": p} for a, p in gws],
                    "insecureSkipVerify": kw.get("insecure", False), "metadataExporterCA": kw.get("ca", ""), "apiJWT": jwts[name]}

        def bundle(*items: tuple[str, list]) -> list:
            return [dict(roots[n], trustDomains=tds) for n, tds in items]

        def local_md(fed_on: bool, mc_on: bool, domain: str) -> dict:
            md = {"public": {"clusterUUID": LOCAL_UUID, "authnKeyPub": local["pub"], "rootCA": local_root["pem"]}}
            gws = [{"address": "203.0.113.10", "port": 15443}]
            if fed_on:
                md["federation"] = {"ingressGateways": gws, "publicServices": [
                    {"hostname": f"productpage.bookinfo.svc.{domain}", "ports": [{"name": "http", "port": 9080}]}]}
            if mc_on:
                cid = f"{domain.replace('.', '-')}-{zlib.adler32(LOCAL_UUID.encode())}"
                md["multicluster"] = {"ingressGateways": gws, "apiHost": "istio-api-proxy.k8s-a.example.com",
                                      "networkName": f"network-{cid}", "clusterID": cid}
            return md

        def values(domain: str, fed_on: bool = False, mc_on: bool = False, settings: dict | None = None, **internal) -> dict:
            istio = {"federation": {"enabled": fed_on}, "multicluster": {"enabled": mc_on}}
            istio.update(settings or {})
            base = {"remoteAuthnKeypair": {"pub": local["pub"], "priv": local["priv"]},
                    "localMetadata": local_md(fed_on, mc_on or bool((settings or {}).get("multicloud", {}).get("enabled")), domain)
                    if (fed_on or mc_on or (settings or {}).get("multicloud")) else {},
                    "remotePublicMetadata": {}, "trustBundle": [], "federations": [], "federationServiceEntries": [],
                    "multiclusters": [], "multiclustersNeedIngressGateway": False}
            base.update(internal)
            istio["internal"] = base
            return {"global": {"discovery": {"clusterUUID": LOCAL_UUID, "clusterDomain": domain},
                               "modules": {"publicDomainTemplate": "%s.k8s-a.example.com",
                                           "https": {"mode": "CertManager", "certManager": {"clusterIssuerName": "letsencrypt"}}}},
                    "istio": istio}

        cases: dict[str, tuple[str, dict]] = {}
        cases["01-federation-disabled"] = ("Both features off: only the authn keypair Secret is rendered.", values("cluster-a.local"))
        cases["02-federation-enabled-empty"] = ("Federation on, no peers yet: gateway, exporter, empty trust.",
                                                values("cluster-a.local", fed_on=True))

        b1 = fed("cluster-b-1", "cluster-b.local", [("198.51.100.11", 15443)],
                 [svc("reviews.bookinfo.svc.cluster-b.local", ("http", 9080), ("grpc-api", 9090)),
                  svc("details.bookinfo.svc.cluster-b.local", ("http-web", 9080))])
        b2 = fed("cluster-b-2", "cluster-b.local", [("198.51.100.21", 15443), ("198.51.100.22", 15443)],
                 [svc("reviews.bookinfo.svc.cluster-b.local", ("http", 9080), ("tcp-metrics", 15090)),
                  svc("ratings.bookinfo.svc.cluster-b.local", ("https", 443))])
        feds = [b1, b2]
        cases["03-federation-shared-hostname"] = (
            "Two federations of one trust domain both export reviews: the shared port gets the union of gateways.",
            values("cluster-a.local", fed_on=True, federations=feds, federationServiceEntries=service_entries(feds),
                   remotePublicMetadata={uuids[n]: public(n) for n in ["cluster-b-1", "cluster-b-2"]},
                   trustBundle=bundle(("cluster-b-1", ["cluster-b.local"]), ("cluster-b-2", ["cluster-b.local"]))))

        c = fed("cluster-c", "cluster-c.local", [("gw-1.k8s-c.example.com", 15443), ("203.0.113.77", 15443)],
                [svc("api.shop.svc.cluster-c.local", ("grpc", 8443), ("http2-admin", 8081))])
        cases["04-federation-dns-gateways"] = (
            "A peer publishes a DNS-named gateway: resolution DNS.",
            values("cluster-a.local", fed_on=True, federations=[c], federationServiceEntries=service_entries([c]),
                   remotePublicMetadata={uuids["cluster-c"]: public("cluster-c")},
                   trustBundle=bundle(("cluster-c", ["cluster-c.local"]))))

        np_fed = fed("cluster-c", "cluster-c.local", [("192.0.2.31", 30443), ("192.0.2.32", 30443)],
                     [svc("web.shop.svc.cluster-c.local", ("http", 80))])
        cases["05-nodeport-inlet"] = (
            "NodePort inlet with a static node port and service annotations; the peer publishes node ports too.",
            values("cluster-a.local", fed_on=True,
                   settings={"alliance": {"ingressGateway": {"inlet": "NodePort", "nodePort": {"port": 30443},
                                                             "serviceAnnotations": {"example.com/owner": "mesh-team", "example.com/weight": "10"},
                                                             "nodeSelector": {"node-role.kubernetes.io/frontend": ""}}}},
                   federations=[np_fed], federationServiceEntries=service_entries([np_fed]),
                   remotePublicMetadata={uuids["cluster-c"]: public("cluster-c")},
                   trustBundle=bundle(("cluster-c", ["cluster-c.local"]))))

        cases["07-trust-bundle-two-roots"] = (
            "Two distinct remote roots, one trusted for two trust domains.",
            values("cluster-a.local", fed_on=True,
                   remotePublicMetadata={uuids[n]: public(n) for n in ["cluster-b-1", "cluster-c"]},
                   trustBundle=bundle(("cluster-b-1", ["cluster-b.local", "cluster-b-legacy.local"]), ("cluster-c", ["cluster-c.local"]))))

        mcb = mc("k8s-b", True, [("198.51.100.40", 15443), ("198.51.100.41", 15443)])
        mcc = mc("k8s-c", False, [], cid="")
        mc_pub = {uuids[n]: public(n) for n in ["k8s-b", "k8s-c"]}
        mc_bundle = bundle(("k8s-b", ["cluster.local"]), ("k8s-c", ["cluster.local"]))
        cases["08-multicluster-full"] = (
            "Two multicluster peers, one on a flat network (enableIngressGateway false, no clusterID).",
            values("cluster.local", mc_on=True, multiclusters=[mcb, mcc], multiclustersNeedIngressGateway=True,
                   remotePublicMetadata=mc_pub, trustBundle=mc_bundle))
        cases["09-multicluster-insecure-and-ca"] = (
            "One peer with insecureSkipVerify, one with a metadata-exporter CA (certificate-authority-data).",
            values("cluster.local", mc_on=True,
                   multiclusters=[mc("k8s-b", True, [("198.51.100.40", 15443)], insecure=True),
                                  mc("k8s-c", True, [("lb.k8s-c.example.com", 15443)], ca=metadata_ca)],
                   multiclustersNeedIngressGateway=True, remotePublicMetadata=mc_pub, trustBundle=mc_bundle))
        v = values("cluster.local", settings={"multicloud": {"enabled": True}}, multiclusters=[mcb],
                   multiclustersNeedIngressGateway=True, remotePublicMetadata={uuids["k8s-b"]: public("k8s-b")},
                   trustBundle=bundle(("k8s-b", ["cluster.local"])))
        cases["10-multicloud-alias"] = ("Only the deprecated multicloud.enabled is set: multicluster objects render.", v)
        both_fed = fed("cluster-c", "cluster-c.local", [("203.0.113.90", 15443)], [svc("search.shop.svc.cluster-c.local", ("http", 8080))])
        cases["11-both-features"] = (
            "Federation and multicluster at once.",
            values("cluster-a.local", fed_on=True, mc_on=True, federations=[both_fed],
                   federationServiceEntries=service_entries([both_fed]), multiclusters=[mcb],
                   multiclustersNeedIngressGateway=True,
                   remotePublicMetadata={uuids[n]: public(n) for n in ["cluster-c", "k8s-b"]},
                   trustBundle=bundle(("cluster-c", ["cluster-c.local"]), ("k8s-b", ["cluster-a.local"]))))
        cases["12-multicluster-flat-network"] = (
            "Multicluster with only flat-network peers: no gateway Service, empty meshNetworks.",
            values("cluster.local", mc_on=True, multiclusters=[mcc], multiclustersNeedIngressGateway=False,
                   remotePublicMetadata={uuids["k8s-c"]: public("k8s-c")}, trustBundle=bundle(("k8s-c", ["cluster.local"]))))

        for name, (desc, vals) in cases.items():
            d = OUT / name
            d.mkdir(parents=True, exist_ok=True)
            (d / "values.yaml").write_text(f"# {desc}\n" + yaml.dump(vals, Dumper=Dumper, sort_keys=False, width=120))
        hv, hcase = hostile(cases["11-both-features"][1])
        d = OUT / "06-hostile-peer-data"
        d.mkdir(parents=True, exist_ok=True)
        (d / "values.yaml").write_text(
            "# Remote strings full of YAML metacharacters and newlines (marker INJECTED): the schema must\n"
            "# reject them, and the render must still carry each one as exactly one string value.\n"
            + yaml.dump(hv, Dumper=Dumper, sort_keys=False, width=120))
        (d / "case.yaml").write_text(yaml.dump(hcase, Dumper=Dumper, sort_keys=False, width=120))
        print(f"wrote {len(cases) + 1} cases to {OUT}")


if __name__ == "__main__":
    main()
