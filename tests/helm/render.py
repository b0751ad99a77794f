#!/usr/bin/env python3
"""Real-Helm template tests of the chart (Chart.yaml, templates/, openapi/, crds/).

For every testdata/templates/<case>/ (module values `{global, istio}` in values.yaml, or a `base`
case's values with case.yaml's `values` merged over them):
  * validates `istio` against openapi/ (config-values + values merged, objects closed, as
    addon-operator does) — expected to pass unless the case's case.yaml says `schema: invalid`,
    in which case every path in `schemaMustReject` must be rejected;
  * renders the chart with Helm's own engine (helm-python-sdk, no cluster) as for a cluster of
    Kubernetes KUBE_VERSION serving API_VERSIONS (case.yaml `kubeVersion`/`apiVersions` override
    them: e.g. an older Istio without networking.istio.io/v1, no cert-manager) and compares the
    output with rendered.yaml (UPDATE_GOLDEN=1 rewrites it); case.yaml `renderFails: <text>`
    expects the render to fail with a message containing <text> instead;
  * checks the objects: they parse, carry the common labels, networking.istio.io objects
    validate against Istio's CRD schemas (testdata/schemas/istio-crds.yaml), what is rendered
    matches the enabled features and the internal values (ServiceEntries, gateway Service,
    trust bundle, meshNetworks, exporter data, the gateway workload (DaemonSet selected by the
    gateway Service, settings, sni-dnat router env with the cluster ID/network, ServiceAccount,
    PodDisruptionBudget), remote secrets whose kubeconfigs `kubectl config
    view` must parse to the right server/token/context, read-only api-proxy RBAC, ingress TLS of
    the HTTPS mode and the legacy metadata host, the Istio API version the cluster serves, the
    admission policy with the feature flags baked in, alert rules and PodMonitor);
  * hostile case: no injected key anywhere, every hostile string survives as one exact string.
Then checks the CRDs (crds/) against sample objects. Prints one line per case and a final
`N passed, M failed`; exits non-zero on any failure.

    .venv/bin/python tests/helm/render.py
"""

from __future__ import annotations

import base64
import copy
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Iterator

import helm_python as helm
import jsonschema
import yaml
from helm_python import _native
from helm_python.chart import _dumps

ROOT = pathlib.Path(__file__).resolve().parents[2]
CASES = ROOT / "testdata" / "templates"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
KUBECTL = shutil.which("kubectl") or ("/usr/bin/kubectl" if os.path.exists("/usr/bin/kubectl") else None)
# The cluster a case renders for unless its case.yaml says otherwise: a current Kubernetes with
# Istio ≥ 1.22 (networking.istio.io/v1), cert-manager and prometheus-operator.
KUBE_VERSION = "v1.33.0"
API_VERSIONS = ["networking.istio.io/v1", "networking.istio.io/v1beta1", "cert-manager.io/v1", "monitoring.coreos.com/v1"]
CLUSTER_SCOPED = ("ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")


class CaseFailure(Exception):
    pass


# ---------------------------------------------------------------- schemas


def values_schema() -> dict:
    """config-values.yaml + values.yaml properties, objects closed where unspecified."""
    config = yaml.safe_load((ROOT / "openapi" / "config-values.yaml").read_text())
    values = yaml.safe_load((ROOT / "openapi" / "values.yaml").read_text())
    merged = copy.deepcopy(config)
    merged["properties"].update(values.get("properties", {}))

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for k, child in node.items():
                if k not in ("default", "x-examples", "example"):
                    close(child)
        elif isinstance(node, list):
            for child in node:
                close(child)

    close(merged)
    return {k: v for k, v in merged.items() if not k.startswith("x-")}


def istio_crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) → openAPIV3Schema of the Istio CRDs kept in testdata/schemas."""
    out = {}
    for crd in yaml.safe_load_all((ROOT / "testdata" / "schemas" / "istio-crds.yaml").read_text()):
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            out[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return out


def schema_errors(schema: dict, instance: Any) -> list[tuple[str, str]]:
    validator = jsonschema.Draft7Validator(schema)
    return [("/" + "/".join(str(p) for p in e.absolute_path), e.message) for e in validator.iter_errors(instance)]


# ---------------------------------------------------------------- rendering


def render(chart: helm.Chart, values: dict, api_versions: list[str] | None = None, kube_version: str | None = None) -> str:
    """The chart's manifests as Helm would apply them to a cluster of `kube_version` serving
    `api_versions` (.Capabilities); the SDK's Python wrapper does not expose these two render
    options of the native library, so it is called directly."""
    opts = {"name": "istio", "namespace": "d8-istio", "kube_version": kube_version or KUBE_VERSION,
            "api_versions": API_VERSIONS if api_versions is None else api_versions}
    manifests = json.loads(_native.call_string("helm_render", chart._raw(), _dumps(values), json.dumps(opts)))
    parts = []
    for path in sorted(manifests):
        text = manifests[path].strip()
        while text.startswith("---"):
            text = text[3:].lstrip("\n")
        if text:
            parts.append(f"---\n# Source: {path}\n{text}\n")
    return "".join(parts)


def documents(rendered: str) -> list[dict]:
    try:
        docs = [d for d in yaml.safe_load_all(rendered) if d is not None]
    except yaml.YAMLError as e:
        raise CaseFailure(f"rendered output is not valid YAML (a value was spliced in raw?): {e}") from e
    for d in docs:
        if not isinstance(d, dict) or not d.get("kind") or not d.get("apiVersion"):
            raise CaseFailure(f"rendered document is not a Kubernetes object: {str(d)[:200]}")
    return docs


def find(docs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[dict], kind: str, name: str) -> dict:
    found = find(docs, kind, name)
    if len(found) != 1:
        raise CaseFailure(f"expected exactly one {kind} {name}, found {len(found)}")
    return found[0]


def absent(docs: list[dict], kind: str, name: str | None = None) -> None:
    if find(docs, kind, name):
        raise CaseFailure(f"{kind} {name or ''} rendered although its feature is off")


def decode(secret: dict, key: str) -> str:
    try:
        return base64.b64decode(secret["data"][key], validate=True).decode()
    except Exception as e:  # noqa: BLE001 - any decoding problem is a failure of the case
        raise CaseFailure(f"Secret {secret['metadata']['name']} key {key!r}: not base64 of UTF-8: {e}") from e


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise CaseFailure(message)


# ---------------------------------------------------------------- checks


def check_common(docs: list[dict], crd_schemas: dict | None) -> None:
    """Labels, namespaces, uniqueness, pod security; Istio objects against Istio's CRD schemas
    (skipped with crd_schemas=None for values the openapi schema rejects anyway)."""
    seen = set()
    for d in docs:
        meta = d.get("metadata") or {}
        ident = (d["apiVersion"], d["kind"], meta.get("namespace"), meta.get("name"))
        expect(ident not in seen, f"duplicate object {ident}")
        seen.add(ident)
        labels = meta.get("labels") or {}
        expect(labels.get("heritage") == "deckhouse" and labels.get("module") == "istio",
               f"{d['kind']} {meta.get('name')}: missing labels heritage=deckhouse, module=istio")
        if d["kind"] not in CLUSTER_SCOPED:
            expect(meta.get("namespace") == "d8-istio", f"{d['kind']} {meta.get('name')}: namespace must be d8-istio")
        if crd_schemas is not None and d["apiVersion"].startswith("networking.istio.io/"):
            schema = crd_schemas.get((d["apiVersion"], d["kind"]))
            expect(schema is not None, f"no Istio CRD schema for {d['apiVersion']} {d['kind']}")
            errors = schema_errors(schema, d)
            expect(not errors, f"{d['kind']} {meta.get('name')} fails the Istio CRD schema: {errors[:3]}")
    for workload in find(docs, "Deployment") + find(docs, "DaemonSet"):
        kind, name = workload["kind"], workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        expect(pod["securityContext"].get("runAsNonRoot") is True, f"{kind} {name}: not runAsNonRoot")
        for c in pod["containers"]:
            sc = c.get("securityContext") or {}
            expect(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
                   and sc.get("capabilities") == {"drop": ["ALL"]},
                   f"{kind} {name}: container {c['name']} must be read-only, no escalation, no capabilities")


def check_federation(docs: list[dict], istio: dict, enabled: bool) -> None:
    entries = (istio.get("internal") or {}).get("federationServiceEntries") or []
    if not enabled:
        absent(docs, "ServiceEntry")
        absent(docs, "DestinationRule")
        return
    expect(len(find(docs, "ServiceEntry")) == len(entries), "one ServiceEntry per federationServiceEntries item")
    single = [e for e in entries if "hostname" in e and "hosts" not in e]
    domains = sorted({f["trustDomain"] for f in (istio.get("internal") or {}).get("federations") or []}) if entries else []
    expect(len(find(docs, "DestinationRule")) == len(single) + len(domains),
           "one DestinationRule per single-hostname item and one per federated trust domain")
    wildcard = {d["spec"]["host"] for d in find(docs, "DestinationRule") if d["spec"]["host"].startswith("*.")}
    expect(wildcard == {f"*.svc.{d}" for d in domains}, f"wildcard DestinationRules: {wildcard} for {domains}")
    for d in find(docs, "DestinationRule"):
        expect(d["spec"].get("trafficPolicy") == {"tls": {"mode": "ISTIO_MUTUAL"}}, f"DestinationRule {d['metadata']['name']}: ISTIO_MUTUAL")
    seen = set()
    for e in entries:
        se = one(docs, "ServiceEntry", e["name"])
        spec = se["spec"]
        hosts = e.get("hosts") or [e["hostname"]]
        expect(spec["hosts"] == hosts, f"ServiceEntry {e['name']}: hosts")
        for h in hosts:
            for p in e["ports"]:
                expect((h, p["port"]) not in seen, f"({h}, {p['port']}) served by more than one ServiceEntry")
                seen.add((h, p["port"]))
            expect(any(h.endswith(w[1:]) for w in wildcard) or any(x is e for x in single),
                   f"{h}: no ISTIO_MUTUAL DestinationRule covers it")
        expect(spec["location"] == "MESH_INTERNAL" and spec["resolution"] == e["resolution"], f"ServiceEntry {e['name']}: location/resolution")
        expect(spec["ports"] == [{"name": p["name"], "number": p["port"], "protocol": p["protocol"]} for p in e["ports"]],
               f"ServiceEntry {e['name']}: ports")
        # a non-integer port (hostile case only) renders as 0 through `int`
        want_eps = [{"address": ep["address"], "ports": {p["name"]: ep["port"] if isinstance(ep["port"], int) else 0 for p in e["ports"]}}
                    for ep in e["endpoints"]]
        expect(spec["endpoints"] == want_eps, f"ServiceEntry {e['name']}: endpoints must map every port name to the gateway port")
        if e in single:
            dr = one(docs, "DestinationRule", e["name"])
            expect(dr["spec"] == {"host": e["hostname"], "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}},
                   f"DestinationRule {e['name']}: host / ISTIO_MUTUAL")


def check_alliance(docs: list[dict], values: dict, fed: bool, mc: bool) -> None:
    istio, glob = values["istio"], values.get("global") or {}
    internal = istio.get("internal") or {}
    alliance = fed or mc
    names = [("Gateway", "ingressgateway"), ("ConfigMap", "istio-alliance-mesh-config"),
             ("Secret", "d8-remote-clusters-public-metadata"), ("Secret", "metadata-exporter-data"),
             ("Deployment", "metadata-exporter"), ("Service", "metadata-exporter"), ("Ingress", "metadata-exporter"),
             ("PodDisruptionBudget", "metadata-exporter"), ("ServiceAccount", "metadata-exporter")]
    if not alliance:
        for kind, name in names:
            absent(docs, kind, name)
        absent(docs, "Service", "ingressgateway")
        return
    gw = one(docs, "Gateway", "ingressgateway")["spec"]["servers"][0]
    domain = glob["discovery"]["clusterDomain"]
    expect(gw["port"] == {"number": 15443, "name": "tls", "protocol": "TLS"} and gw["tls"] == {"mode": "AUTO_PASSTHROUGH"}
           and gw["hosts"] == [f"*.{domain}"], "Gateway: port 15443 TLS AUTO_PASSTHROUGH for *.<clusterDomain>")

    need_svc = fed or (mc and internal.get("multiclustersNeedIngressGateway"))
    settings = (istio.get("alliance") or {}).get("ingressGateway") or {}
    if need_svc:
        svc = one(docs, "Service", "ingressgateway")
        inlet = settings.get("inlet", "LoadBalancer")
        expect(svc["spec"]["type"] == inlet, f"gateway Service type must be {inlet}")
        port = svc["spec"]["ports"][0]
        expect(port["name"] == "tls" and port["port"] == 15443, "gateway Service port tls/15443")
        if inlet == "NodePort" and (settings.get("nodePort") or {}).get("port"):
            expect(port.get("nodePort") == settings["nodePort"]["port"], "gateway Service nodePort")
        expect((svc["metadata"].get("annotations") or {}) == (settings.get("serviceAnnotations") or {}), "gateway Service annotations")
        expect(svc["metadata"]["labels"].get("app") == "ingressgateway", "gateway Service must be labelled app=ingressgateway")
    else:
        absent(docs, "Service", "ingressgateway")

    cm = one(docs, "ConfigMap", "istio-alliance-mesh-config")["data"]
    mesh = yaml.safe_load(cm["mesh"])
    want_roots = [{"pem": r["pem"], "trustDomains": r["trustDomains"]} for r in internal.get("trustBundle") or []]
    expect(mesh == {"caCertificates": want_roots}, "ConfigMap mesh: caCertificates must equal the trust bundle")
    if mc:
        networks: dict[str, dict] = {}
        for peer in internal.get("multiclusters") or []:
            if peer["enableIngressGateway"]:
                n = networks.setdefault(peer["networkName"], {"endpoints": [], "gateways": []})
                n["endpoints"].append({"fromRegistry": peer["name"]})
                n["gateways"] += [{"address": g["address"], "port": g["port"]} for g in peer["ingressGateways"]]
        expect(yaml.safe_load(cm["meshNetworks"]) == {"networks": networks}, "ConfigMap meshNetworks")
    else:
        expect("meshNetworks" not in cm, "meshNetworks rendered without multicluster")

    remote = json.loads(decode(one(docs, "Secret", "d8-remote-clusters-public-metadata"), "remote-public-metadata.json"))
    expect(remote == (internal.get("remotePublicMetadata") or {}), "remote-public-metadata.json must be the JSON of remotePublicMetadata")
    local = json.loads(decode(one(docs, "Secret", "metadata-exporter-data"), "local-metadata.json"))
    expect(local == (internal.get("localMetadata") or {}), "local-metadata.json must be the JSON of localMetadata")

    dep = one(docs, "Deployment", "metadata-exporter")["spec"]["template"]["spec"]
    c = dep["containers"][0]
    expect(c["args"] == ["metadata-exporter", "--data-dir", "/data", "--listen", "0.0.0.0:8080"], "metadata-exporter args")
    sources = {s["secret"]["name"] for v in dep["volumes"] if "projected" in v for s in v["projected"]["sources"]}
    expect(sources == {"metadata-exporter-data", "d8-remote-clusters-public-metadata"}, "exporter data: one projected volume of both Secrets")
    for rule in one(docs, "Ingress", "metadata-exporter")["spec"]["rules"]:
        expect(rule["http"]["paths"][0]["path"] == "/metadata/", f"exporter Ingress {rule['host']}: path /metadata/")


def https_settings(values: dict) -> tuple[str | None, str | None, str | None]:
    """(mode, ClusterIssuer, custom Secret) as the chart resolves them: istio.https over
    global.modules.https (the custom Secret only from istio.https)."""
    module = values["istio"].get("https") or {}
    glob = ((values.get("global") or {}).get("modules") or {}).get("https") or {}
    mode = module.get("mode") or glob.get("mode")
    issuer = (module.get("certManager") or {}).get("clusterIssuerName") or (glob.get("certManager") or {}).get("clusterIssuerName")
    return mode, issuer, (module.get("customCertificate") or {}).get("secretName")


def check_ingress_tls(docs: list[dict], values: dict, fed: bool, mc: bool) -> None:
    """Both Ingresses serve TLS from the configured mode's Secret (none with OnlyInURI), the
    exporter also under the legacy istio.<domain> host unless turned off, and CertManager mode
    renders exactly the Certificates for those hosts (no ingress-shim annotation besides)."""
    if not (fed or mc):
        absent(docs, "Certificate")
        return
    mode, issuer, secret = https_settings(values)
    template = values["global"]["modules"]["publicDomainTemplate"]
    legacy = ((values["istio"].get("alliance") or {}).get("legacyMetadataHost", True))
    meta_hosts = [template.replace("%s", "istio-metadata")] + ([template.replace("%s", "istio")] if legacy else [])
    api_host = template.replace("%s", "istio-api-proxy")
    names = {"CertManager": ("istio-ingress-tls", "api-proxy-ingress-tls"), "CustomCertificate": (secret, secret)}
    ingresses = [("metadata-exporter", meta_hosts, 0)] + ([("api-proxy", [api_host], 1)] if mc else [])
    for name, hosts, i in ingresses:
        ing = one(docs, "Ingress", name)
        expect([r["host"] for r in ing["spec"]["rules"]] == hosts, f"Ingress {name}: hosts {hosts}")
        expect(not any(k.startswith("cert-manager.io/") for k in ing["metadata"].get("annotations") or {}),
               f"Ingress {name}: no cert-manager annotation (the chart renders the Certificates)")
        if mode == "OnlyInURI":
            expect("tls" not in ing["spec"], f"Ingress {name}: no TLS with OnlyInURI")
        else:
            expect(ing["spec"].get("tls") == [{"hosts": hosts, "secretName": names[mode][i]}],
                   f"Ingress {name}: TLS for {hosts} from Secret {names[mode][i]}")
    certs = find(docs, "Certificate")
    if mode == "CertManager":
        want = [("metadata-exporter", "istio-ingress-tls", meta_hosts)] + ([("api-proxy", "api-proxy-ingress-tls", [api_host])] if mc else [])
        got = [(c["metadata"]["name"], c["spec"]["secretName"], c["spec"]["dnsNames"]) for c in certs]
        expect(got == want, f"Certificates {got} != {want}")
        for c in certs:
            expect(c["apiVersion"] == "cert-manager.io/v1" and c["spec"]["issuerRef"] == {"kind": "ClusterIssuer", "name": issuer},
                   f"Certificate {c['metadata']['name']}: cert-manager.io/v1 issued by ClusterIssuer {issuer}")
    else:
        expect(not certs, f"Certificates rendered in mode {mode}")


def gateway_schema() -> dict:
    """openapi/config-values.yaml's alliance.ingressGateway properties (for the defaults)."""
    config = yaml.safe_load((ROOT / "openapi" / "config-values.yaml").read_text())
    return config["properties"]["alliance"]["properties"]["ingressGateway"]["properties"]


def check_gateway_workload(docs: list[dict], values: dict, fed: bool, mc: bool) -> None:
    """SPEC §7.5: with the gateway Service, the DaemonSet it selects (settings rendered, Istio's
    proxy as an sni-dnat router carrying the hook's cluster ID and network), its ServiceAccount
    and PodDisruptionBudget; none of them without the Service."""
    import zlib
    istio, glob = values["istio"], values.get("global") or {}
    internal = istio.get("internal") or {}
    names = [("DaemonSet", "ingressgateway"), ("ServiceAccount", "ingressgateway"), ("PodDisruptionBudget", "ingressgateway")]
    if not (fed or (mc and internal.get("multiclustersNeedIngressGateway"))):
        for kind, name in names:
            absent(docs, kind, name)
        return
    settings = (istio.get("alliance") or {}).get("ingressGateway") or {}
    defaults = gateway_schema()
    svc = one(docs, "Service", "ingressgateway")
    ds = one(docs, "DaemonSet", "ingressgateway")
    sa = one(docs, "ServiceAccount", "ingressgateway")
    pdb = one(docs, "PodDisruptionBudget", "ingressgateway")
    expect(ds["apiVersion"] == "apps/v1" and pdb["apiVersion"] == "policy/v1", "DaemonSet apps/v1, PDB policy/v1")
    expect(ds["metadata"]["labels"] == {"heritage": "deckhouse", "module": "istio", "app": "ingressgateway"}, "DaemonSet labels")
    template = ds["spec"]["template"]
    pod_labels = template["metadata"]["labels"]
    selector = svc["spec"]["selector"]
    expect(all(pod_labels.get(k) == v for k, v in selector.items()), f"Service selector {selector} must select the pods {pod_labels}")
    expect(all(pod_labels.get(k) == v for k, v in ds["spec"]["selector"]["matchLabels"].items()), "DaemonSet selector matches its pods")
    expect(pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "ingressgateway"}}}, "PDB: maxUnavailable 1 of app=ingressgateway")
    expect(pod_labels.get("heritage") == "deckhouse" and pod_labels.get("module") == "istio", "gateway pods carry the standard labels")
    expect(pod_labels.get("sidecar.istio.io/inject") == "false", "gateway pods are never injected")
    pod = template["spec"]
    expect(pod["serviceAccountName"] == sa["metadata"]["name"] == "ingressgateway", "gateway ServiceAccount ingressgateway")
    expect(pod.get("automountServiceAccountToken") is False and sa.get("automountServiceAccountToken") is False,
           "gateway: no API token (only the istio-ca token)")
    expect(pod.get("nodeSelector") == (settings.get("nodeSelector") or None), f"nodeSelector {settings.get('nodeSelector')}")
    expect(pod.get("tolerations") == (settings.get("tolerations") or None), f"tolerations {settings.get('tolerations')}")
    (c,) = pod["containers"]
    expect(c["image"] == settings.get("proxyImage", defaults["proxyImage"]["default"]), "proxy image: the setting, else the schema default")
    res = settings.get("resources") or {}
    rdef = defaults["resources"]["properties"]
    want_res = {"requests": {k: (res.get("requests") or {}).get(k, rdef["requests"]["properties"][k]["default"]) for k in ("cpu", "memory")},
                "limits": {"memory": (res.get("limits") or {}).get("memory", rdef["limits"]["properties"]["memory"]["default"])}}
    if (res.get("limits") or {}).get("cpu"):
        want_res["limits"]["cpu"] = res["limits"]["cpu"]
    expect(c["resources"] == want_res, f"resources {c['resources']} != {want_res}")
    domain = glob["discovery"]["clusterDomain"]
    expect(c["args"][:4] == ["proxy", "router", "--domain", f"$(POD_NAMESPACE).svc.{domain}"], f"args: pilot-agent proxy router --domain ...{domain}")
    env = {e["name"]: e for e in c["env"]}
    value = lambda name: env[name].get("value")  # noqa: E731
    field = lambda name: env[name]["valueFrom"]["fieldRef"]["fieldPath"]  # noqa: E731
    computed = f"{domain.replace('.', '-')}-{zlib.adler32(glob['discovery']['clusterUUID'].encode())}"
    published = (internal.get("localMetadata") or {}).get("multicluster") or {}
    cluster_id = published.get("clusterID") or computed
    network = published.get("networkName") or f"network-{cluster_id}"
    expect(value("ISTIO_META_ROUTER_MODE") == "sni-dnat", "ISTIO_META_ROUTER_MODE=sni-dnat")
    expect(value("ISTIO_META_CLUSTER_ID") == cluster_id, f"ISTIO_META_CLUSTER_ID {value('ISTIO_META_CLUSTER_ID')} != {cluster_id}")
    expect(value("ISTIO_META_NETWORK") == value("ISTIO_META_REQUESTED_NETWORK_VIEW") == network, f"network {network}")
    expect(value("TRUST_DOMAIN") == domain, "TRUST_DOMAIN = clusterDomain")
    expect(value("ISTIO_META_WORKLOAD_NAME") == "ingressgateway", "ISTIO_META_WORKLOAD_NAME")
    expect(value("CA_ADDR") == json.loads(value("PROXY_CONFIG"))["discoveryAddress"] == "istiod.d8-istio.svc:15012",
           "CA_ADDR and PROXY_CONFIG.discoveryAddress: istiod.d8-istio.svc:15012")
    for name, path in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace"), ("INSTANCE_IP", "status.podIP"),
                       ("HOST_IP", "status.hostIP"), ("SERVICE_ACCOUNT", "spec.serviceAccountName")):
        expect(field(name) == path, f"env {name} from {path}")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    expect(ports == {"tls": 15443, "status-port": 15021, "http-envoy-prom": 15090}, f"container ports {ports}")
    expect(all(p["targetPort"] in (ports.get(p["name"]), p["name"]) for p in svc["spec"]["ports"]), "Service targetPort is the pods' tls port")
    probe = c["readinessProbe"]["httpGet"]
    expect(probe["path"] == "/healthz/ready" and probe["port"] == 15021, "readiness /healthz/ready on 15021")
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    expect(set(mounts) <= set(volumes), "every mount has a volume")
    token = volumes["istio-token"]["projected"]["sources"][0]["serviceAccountToken"]
    expect(token["audience"] == "istio-ca" and token["path"] == "istio-token" and mounts["istio-token"] == "/var/run/secrets/tokens",
           "istio-token: projected, audience istio-ca, /var/run/secrets/tokens/istio-token")
    expect(volumes["istiod-ca-cert"]["configMap"]["name"] == "istio-ca-root-cert" and mounts["istiod-ca-cert"] == "/var/run/secrets/istio",
           "istio-ca-root-cert at /var/run/secrets/istio")


def check_istio_api_version(docs: list[dict], api_versions: list[str]) -> None:
    want = "networking.istio.io/v1" if "networking.istio.io/v1" in api_versions else "networking.istio.io/v1beta1"
    for d in docs:
        if d["apiVersion"].startswith("networking.istio.io/"):
            expect(d["apiVersion"] == want, f"{d['kind']} {d['metadata']['name']}: {d['apiVersion']}, the cluster serves {want}")


def check_admission(docs: list[dict], values: dict, fed: bool, mc: bool, kube_version: str) -> None:
    """The peer-CR admission policy and its Deny binding on Kubernetes ≥ 1.30, with this render's
    feature flags and cluster domain baked into the CEL expressions (their behaviour is tested
    against a real apiserver by tests/stack/test_admission.py)."""
    major, minor = (int(x) for x in kube_version.lstrip("v").split(".")[:2])
    name = "istio-alliance-peers.deckhouse.io"
    if (major, minor) < (1, 30):
        absent(docs, "ValidatingAdmissionPolicy")
        absent(docs, "ValidatingAdmissionPolicyBinding")
        return
    policy = one(docs, "ValidatingAdmissionPolicy", name)
    binding = one(docs, "ValidatingAdmissionPolicyBinding", name)
    expect(policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1", "admission policy: admissionregistration.k8s.io/v1")
    expect(binding["spec"] == {"policyName": name, "validationActions": ["Deny"]}, "binding: Deny with the policy")
    rule = policy["spec"]["matchConstraints"]["resourceRules"][0]
    expect(rule["resources"] == ["istiofederations", "istiomulticlusters", "istiomulticlouds"] and rule["apiGroups"] == ["deckhouse.io"],
           "policy matches the three peer CRDs")
    exprs = [v["expression"] for v in policy["spec"]["validations"]]
    expect(exprs[0].endswith(f"|| {str(fed).lower()}") and exprs[1].endswith(f"|| {str(mc).lower()}"),
           f"feature flags baked in: federation={fed}, multicluster={mc}")
    domain = (values.get("global") or {}).get("discovery", {}).get("clusterDomain", "cluster.local")
    expect(exprs[3].endswith(json.dumps(domain.lower())), f"trustDomain check against {domain}")
    expect(all(v.get("message") for v in policy["spec"]["validations"]), "every validation has a message")


def check_monitoring(docs: list[dict], values: dict, fed: bool, mc: bool, api_versions: list[str]) -> None:
    """PrometheusRule (the rules file verbatim) when a feature is on and prometheus-operator is
    served; a PodMonitor for the gateway whenever its Service is rendered; none for the servers,
    which have no metrics endpoint."""
    served = "monitoring.coreos.com/v1" in api_versions
    if (fed or mc) and served:
        rule = one(docs, "PrometheusRule", "istio-alliance")
        want = yaml.safe_load((ROOT / "monitoring" / "prometheus-rules" / "alliance.yaml").read_text())
        expect(rule["spec"] == want, "PrometheusRule spec must be monitoring/prometheus-rules/alliance.yaml")
        expect(rule["metadata"]["labels"].get("prometheus") == "main", "PrometheusRule labelled prometheus: main")
    else:
        absent(docs, "PrometheusRule")
    monitors = find(docs, "PodMonitor")
    if served and find(docs, "Service", "ingressgateway"):
        pm = one(docs, "PodMonitor", "ingressgateway")["spec"]
        expect(pm["selector"] == {"matchLabels": {"app": "ingressgateway"}} and pm["podMetricsEndpoints"][0]["port"] == "http-envoy-prom",
               "gateway PodMonitor: app=ingressgateway, port http-envoy-prom")
        expect(len(monitors) == 1, "only the gateway has a metrics endpoint")
        pod_ports = [p.get("name") for c in one(docs, "DaemonSet", "ingressgateway")["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])]
        expect("http-envoy-prom" in pod_ports, "the gateway pods name their Envoy metrics port http-envoy-prom")
    else:
        expect(not monitors, "PodMonitor without a gateway or without prometheus-operator")


def kubectl_view(kubeconfig: str) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".kubeconfig", delete=False) as f:
        f.write(kubeconfig)
    try:
        out = subprocess.run([KUBECTL, "config", "view", "--kubeconfig", f.name, "--raw", "-o", "json"],
                             capture_output=True, text=True, timeout=60, env={"PATH": os.environ.get("PATH", ""), "HOME": tempfile.gettempdir()})
    finally:
        os.unlink(f.name)
    if out.returncode != 0:
        raise CaseFailure(f"kubectl config view rejected a remote-secret kubeconfig: {out.stderr.strip()}")
    return json.loads(out.stdout)


def check_multicluster(docs: list[dict], values: dict, enabled: bool, notes: list[str]) -> None:
    internal = values["istio"].get("internal") or {}
    peers = internal.get("multiclusters") or []
    remote_secrets = [d for d in find(docs, "Secret") if (d["metadata"].get("labels") or {}).get("istio/multiCluster") == "true"]
    if not enabled:
        expect(not remote_secrets, "remote secrets rendered although multicluster is off")
        for kind in ("Deployment", "Service", "Ingress", "ServiceAccount", "PodDisruptionBudget"):
            absent(docs, kind, "api-proxy")
        absent(docs, "ClusterRole")
        return
    expect(len(remote_secrets) == len(peers), "one remote secret per multiclusters item")
    for peer in peers:
        s = one(docs, "Secret", f"istio-remote-secret-{peer['name']}")
        expect(s["metadata"]["labels"]["istio/multiCluster"] == "true", "remote secret label istio/multiCluster")
        expect(s["metadata"]["annotations"] == {"networking.istio.io/cluster": peer["name"]}, "remote secret annotation")
        expect(list(s["data"]) == [peer["name"]], "remote secret data key = peer name")
        text = decode(s, peer["name"])
        if KUBECTL is None:
            if "kubectl not found" not in " ".join(notes):
                notes.append("SKIP kubectl parse: kubectl not found on PATH or at /usr/bin/kubectl (checked with PyYAML instead)")
            cfg = yaml.safe_load(text)
        else:
            cfg = kubectl_view(text)
        cluster = cfg["clusters"][0]["cluster"]
        expect(cluster["server"] == f"https://{peer['apiHost']}", f"kubeconfig server https://<apiHost> for {peer['name']!r}")
        expect(cfg["users"][0]["user"]["token"] == peer["apiJWT"], "kubeconfig token = apiJWT")
        expect(cfg["current-context"] == peer["name"], "kubeconfig current-context")
        ctx = cfg["contexts"][0]
        expect(ctx["name"] == peer["name"] and ctx["context"] == {"cluster": peer["name"], "user": peer["name"]}, "kubeconfig context")
        ca = cluster.get("certificate-authority-data")
        if peer["metadataExporterCA"]:
            expect(ca is not None and base64.b64decode(ca).decode() == peer["metadataExporterCA"], "kubeconfig CA = metadataExporterCA")
        else:
            expect(ca is None, "kubeconfig without CA when metadataExporterCA is empty")
        expect(bool(cluster.get("insecure-skip-tls-verify")) == bool(peer["insecureSkipVerify"]), "kubeconfig insecure-skip-tls-verify")
    if KUBECTL is not None and peers:
        notes.append(f"kubectl parsed {len(peers)} kubeconfig(s)")

    dep = one(docs, "Deployment", "api-proxy")["spec"]["template"]["spec"]
    c = dep["containers"][0]
    expect(c["args"] == ["api-proxy", "--remote-metadata", "/remote/remote-public-metadata.json", "--listen", "0.0.0.0:4443"], "api-proxy args")
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    expect(env.get("CLUSTER_UUID") == values["global"]["discovery"]["clusterUUID"], "api-proxy env CLUSTER_UUID")
    expect(dep.get("automountServiceAccountToken") is True and dep["serviceAccountName"] == "api-proxy", "api-proxy SA token mounted")
    ing = one(docs, "Ingress", "api-proxy")
    host = values["global"]["modules"]["publicDomainTemplate"].replace("%s", "istio-api-proxy")
    expect(ing["spec"]["rules"][0]["host"] == host, f"api-proxy Ingress host {host}")
    expect(ing["metadata"]["annotations"].get("nginx.ingress.kubernetes.io/backend-protocol") == "HTTPS", "api-proxy backend HTTPS")
    one(docs, "Service", "api-proxy")
    # Exactly what a stock remote istiod reads through the api-proxy (the real stack's audit
    # log; tests/stack/e2e.py checks the same list against it): no more, no less.
    role = one(docs, "ClusterRole", "d8:istio:multicluster:api-proxy")
    granted = {(g, r, tuple(sorted(rule["verbs"])), tuple(rule.get("resourceNames") or ()))
               for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    expect(granted == {(g, r, ("get", "list", "watch"), ()) for g, r in API_PROXY_CLUSTER_READS},
           f"api-proxy ClusterRole grants exactly {sorted(API_PROXY_CLUSTER_READS)}, got {sorted(granted)}")
    ns_role = one(docs, "Role", "d8:istio:multicluster:api-proxy")
    expect(ns_role["metadata"]["namespace"] == "d8-istio" and ns_role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["istio"], "verbs": ["get", "list", "watch"]}],
        f"api-proxy Role in d8-istio reads only the istio ConfigMap, got {ns_role['rules']}")
    binding = one(docs, "ClusterRoleBinding", "d8:istio:multicluster:api-proxy")
    expect(binding["subjects"] == [{"kind": "ServiceAccount", "name": "api-proxy", "namespace": "d8-istio"}], "api-proxy binding")


# (apiGroup, resource) a stock remote istiod lists and watches cluster-wide through the api-proxy.
API_PROXY_CLUSTER_READS = {("", "namespaces"), ("", "pods"), ("", "services"), ("", "nodes"), ("", "secrets"),
                           ("discovery.k8s.io", "endpointslices"), ("apiextensions.k8s.io", "customresourcedefinitions"),
                           ("networking.istio.io", "workloadentries")}


def strings(node: Any) -> Iterator[tuple[str, str]]:
    """Every (role, string) in a parsed document; roles are 'key' or 'value'. Secret and
    ConfigMap payloads (base64, JSON, YAML) are opened and searched as well."""
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(k, str):
                yield "key", k
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)
    elif isinstance(node, str):
        yield "value", node


def payloads(doc: dict) -> Iterator[Any]:
    yield doc
    if doc["kind"] in ("Secret", "ConfigMap"):
        for value in (doc.get("data") or {}).values():
            text = base64.b64decode(value).decode() if doc["kind"] == "Secret" else value
            yield text
            try:
                yield yaml.safe_load(text)  # JSON is YAML
            except yaml.YAMLError as e:
                raise CaseFailure(f"{doc['kind']} {doc['metadata']['name']}: payload does not parse: {e}") from e


def check_hostile(docs: list[dict], case: dict) -> None:
    found: set[str] = set()
    for doc in docs:
        for payload in payloads(doc):
            for role, s in strings(payload):
                expect(not (role == "key" and s == case["forbiddenKey"]),
                       f"{doc['kind']} {doc['metadata'].get('name')!r}: a remote string injected key {s!r}")
                found.add(s)
    missing = [s for s in case.get("mustContain", []) if s not in found]
    expect(not missing, f"hostile strings not carried exactly: {missing}")


# ---------------------------------------------------------------- static template checks

CONTROL = ("if ", "else", "end", "range ", "with ", "define ", "fail ", "/*", "- /*")
SAFE_ENDINGS = ("| toJson", "| int", "| toString | toJson")
STATIC_HELPERS = ('include "istio.labels"', 'include "istio.podSecurityContext"', 'include "istio.containerSecurityContext"')


def template_checks() -> list[tuple[str, list[str]]]:
    """Every output action in templates/ either serialises its value (toJson, int, toYaml of a
    built dict) or includes a helper that emits constants: no value is ever spliced in raw."""
    import re
    problems = []
    for path in sorted((ROOT / "templates").rglob("*.yaml")):
        text = path.read_text()
        for m in re.finditer(r"{{-?\s*(.*?)\s*-?}}", text, re.S):
            action = m.group(1).strip()
            if action.startswith(CONTROL) or re.match(r"^\$[\w]*\s*:?=", action):
                continue
            line = text.count("\n", 0, m.start()) + 1
            ok = action.endswith(SAFE_ENDINGS) or (
                re.search(r"\| nindent \d+$", action) and (action.startswith(STATIC_HELPERS) or "| toYaml |" in action))
            if not ok:
                problems.append(f"{path.relative_to(ROOT)}:{line}: output not serialised: {{{{ {action} }}}}")
    return [("templates: every output serialised", problems)]


def lint_checks() -> list[tuple[str, list[str]]]:
    """`helm lint --strict` of the chart, with no values and with a case that enables everything."""
    problems = []
    full = yaml.safe_load((CASES / "11-both-features" / "values.yaml").read_text())
    # lint offers no API versions (no cert-manager.io/v1): use the custom-certificate mode
    full["istio"]["https"] = {"mode": "CustomCertificate", "customCertificate": {"secretName": "istio-alliance-tls"}}
    for label, values in (("no values", None), ("11-both-features", full)):
        report = helm.lint(str(ROOT), values, strict=True, namespace="d8-istio")
        problems += [f"{label}: {m['path']}: {m['error']}" for m in report.get("messages", []) if m.get("severity", 0) >= 2]
        problems += [f"{label}: {e}" for e in report.get("errors", [])]
    return [("helm lint --strict", problems)]


# ---------------------------------------------------------------- CRDs


def crd_checks() -> list[tuple[str, list[str]]]:
    """Each CRD is structural (every node typed) and accepts/rejects sample objects."""
    results = []
    crds = {}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        crds[crd["spec"]["names"]["kind"]] = crd
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    conditions = [{"type": "PublicMetadataExchangeReady", "status": "True", "reason": "Succeeded", "message": "ok",
                   "lastTransitionTime": "2026-11-22T06:00:00Z", "lastProbeTime": "2026-11-22T06:01:00Z"}]
    public = {"clusterUUID": "u-1", "authnKeyPub": pem, "rootCA": pem}
    samples = {
        "IstioFederation": (
            {"spec": {"trustDomain": "cluster-b.local", "metadataEndpoint": "https://istio-metadata.b.example.com:8443/metadata/",
                      "metadata": {"ca": pem, "insecureSkipVerify": False}},
             "status": {"metadataCache": {"public": public, "publicLastFetchTimestamp": "2026-11-22T06:00:00Z",
                                          "private": {"ingressGateways": [{"address": "1.2.3.4", "port": 15443}],
                                                      "publicServices": [{"hostname": "a.b.svc.cluster-b.local",
                                                                          "ports": [{"name": "http", "port": 80, "protocol": "HTTP"}]}]},
                                          "privateLastFetchTimestamp": "2026-11-22T06:00:00Z",
                                          "publicETag": '"0123456789abcdef0123456789abcdef"', "privateETag": '"fedcba"'},
                        "conditions": conditions}},
            [{"spec": {"trustDomain": "cluster-b.local", "metadataEndpoint": "http://plain.example.com/metadata/"}},
             {"spec": {"trustDomain": "bad domain", "metadataEndpoint": "https://x.example.com/metadata/"}},
             {"spec": {"metadataEndpoint": "https://x.example.com/metadata/"}},
             {"spec": {"trustDomain": "b.local", "metadataEndpoint": "https://x.example.com/metadata/\nevil"}},
             {"spec": {"trustDomain": "b.local", "metadataEndpoint": "https://x.example.com/metadata/"},
              "status": {"metadataCache": {"privateETag": '"' + "a" * 129 + '"'}}}]),
        "IstioMulticluster": (
            {"spec": {"metadataEndpoint": "https://istio-metadata.b.example.com/metadata/", "enableIngressGateway": False},
             "status": {"metadataCache": {"public": public, "private": {"ingressGateways": [], "apiHost": "istio-api-proxy.b.example.com",
                                                                        "networkName": "network-x", "clusterID": "x"}},
                        "conditions": conditions + [dict(conditions[0], type="RemoteAPIServerReady", status="Unknown")]}},
            [{"spec": {"metadataEndpoint": "file:///etc/passwd"}}, {"spec": {}},
             {"spec": {"metadataEndpoint": "https://x.example.com/"}, "status": {"conditions": [{"type": "A", "status": "Maybe"}]}}]),
    }
    samples["IstioMulticloud"] = samples["IstioMulticluster"]

    def untyped(node: dict, path: str) -> list[str]:
        bad = [] if "type" in node or node.get("x-kubernetes-preserve-unknown-fields") else [path]
        for k, child in (node.get("properties") or {}).items():
            bad += untyped(child, f"{path}.{k}")
        if isinstance(node.get("items"), dict):
            bad += untyped(node["items"], f"{path}[]")
        return bad

    for kind in ("IstioFederation", "IstioMulticluster", "IstioMulticloud"):
        problems = []
        crd = crds.get(kind)
        if crd is None:
            results.append((f"crd {kind}", ["CRD missing"]))
            continue
        spec = crd["spec"]
        if spec["group"] != "deckhouse.io" or spec["scope"] != "Cluster":
            problems.append("must be deckhouse.io, cluster-scoped")
        if crd["metadata"].get("labels", {}).get("heritage") != "deckhouse" or crd["metadata"]["labels"].get("module") != "istio":
            problems.append("labels heritage/module")
        (version,) = spec["versions"]
        if version["name"] != "v1alpha1" or version.get("subresources") != {"status": {}}:
            problems.append("v1alpha1 with a status subresource")
        schema = version["schema"]["openAPIV3Schema"]
        problems += [f"untyped schema node {p}" for p in untyped(schema, "")]
        good, bads = samples[kind]
        problems += [f"valid sample rejected at {p}: {m}" for p, m in schema_errors(schema, dict(good, apiVersion="deckhouse.io/v1alpha1", kind=kind))]
        for bad in bads:
            if not schema_errors(schema, bad):
                problems.append(f"invalid sample accepted: {json.dumps(bad)[:120]}")
        results.append((f"crd {kind}", problems))
    multicluster, multicloud = crds.get("IstioMulticluster"), crds.get("IstioMulticloud")
    if multicluster and multicloud and multicluster["spec"]["versions"] != multicloud["spec"]["versions"]:
        results.append(("crd IstioMulticloud schema", ["IstioMulticloud must have the IstioMulticluster schema"]))
    return results


# ---------------------------------------------------------------- driver


def merge(base: Any, over: Any) -> Any:
    """`over` deep-merged into `base`; a null in `over` removes the key."""
    if not (isinstance(base, dict) and isinstance(over, dict)):
        return copy.deepcopy(over)
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v)
    return out


def case_values(case_dir: pathlib.Path, case: dict) -> dict:
    if "base" in case:
        return merge(yaml.safe_load((CASES / case["base"] / "values.yaml").read_text()), case.get("values") or {})
    return yaml.safe_load((case_dir / "values.yaml").read_text())


def run_case(chart: helm.Chart, case_dir: pathlib.Path, vschema: dict, crd_schemas: dict) -> list[str]:
    case = yaml.safe_load((case_dir / "case.yaml").read_text()) if (case_dir / "case.yaml").exists() else {}
    values = case_values(case_dir, case)
    api_versions = case.get("apiVersions", API_VERSIONS)
    kube_version = case.get("kubeVersion", KUBE_VERSION)
    notes: list[str] = []
    errors = schema_errors(vschema, values.get("istio", {}))
    if case.get("schema", "valid") == "valid":
        expect(not errors, f"values fail openapi/: {errors[:5]}")
    else:
        rejected = {p for p, _ in errors}
        missing = [p for p in case.get("schemaMustReject", []) if p not in rejected]
        expect(not missing, f"schema accepted hostile values at {missing}")
        notes.append(f"schema rejected {len(rejected)} paths")

    try:
        rendered = render(chart, values, api_versions, kube_version)
    except helm.HelmError as e:
        if "renderFails" in case:
            expect(case["renderFails"] in str(e), f"render failed, but not with {case['renderFails']!r}: {e}")
            return [f"render refused: {case['renderFails']}"]
        raise CaseFailure(f"helm render failed: {e}") from e
    expect("renderFails" not in case, f"render succeeded, expected a failure with {case.get('renderFails')!r}")
    golden = case_dir / "rendered.yaml"
    if UPDATE:
        golden.write_text(rendered)
    elif not golden.exists():
        raise CaseFailure("rendered.yaml missing (run with UPDATE_GOLDEN=1)")
    elif golden.read_text() != rendered:
        import difflib
        diff = "".join(difflib.unified_diff(golden.read_text().splitlines(True), rendered.splitlines(True), "rendered.yaml", "actual", n=1))
        raise CaseFailure(f"render differs from rendered.yaml:\n{diff[:3000]}")

    docs = documents(rendered)
    istio = values.get("istio") or {}
    fed = bool((istio.get("federation") or {}).get("enabled"))
    mc = bool((istio.get("multicluster") or {}).get("enabled") or (istio.get("multicloud") or {}).get("enabled"))
    check_common(docs, crd_schemas if case.get("schema", "valid") == "valid" else None)
    check_federation(docs, istio, fed)
    check_alliance(docs, values, fed, mc)
    check_gateway_workload(docs, values, fed, mc)
    check_multicluster(docs, values, mc, notes)
    check_ingress_tls(docs, values, fed, mc)
    check_istio_api_version(docs, api_versions)
    check_admission(docs, values, fed, mc, kube_version)
    check_monitoring(docs, values, fed, mc, api_versions)
    if "forbiddenKey" in case:
        check_hostile(docs, case)
        notes.append(f"{len(case.get('mustContain', []))} hostile strings carried exactly")
    keypair = (istio.get("internal") or {}).get("remoteAuthnKeypair") or {}
    if keypair.get("pub") and keypair.get("priv"):
        s = one(docs, "Secret", "d8-remote-authn-keypair")
        expect(decode(s, "pub.pem") == keypair["pub"] and decode(s, "priv.pem") == keypair["priv"], "authn keypair Secret")
    notes.insert(0, f"{len(docs)} objects")
    return notes


def main() -> int:
    chart = helm.Chart.load(str(ROOT))
    vschema, crd_schemas = values_schema(), istio_crd_schemas()
    passed = failed = 0
    for case_dir in sorted(p for p in CASES.iterdir() if (p / "values.yaml").exists() or (p / "case.yaml").exists()):
        try:
            notes = run_case(chart, case_dir, vschema, crd_schemas)
            print(f"PASS {case_dir.name}: {'; '.join(notes)}")
            passed += 1
        except (CaseFailure, KeyError, TypeError, IndexError, ValueError) as e:
            print(f"FAIL {case_dir.name}: {type(e).__name__ if not isinstance(e, CaseFailure) else ''}{e}")
            failed += 1
    for name, problems in template_checks() + lint_checks() + crd_checks():
        if problems:
            print(f"FAIL {name}: {'; '.join(problems)}")
            failed += 1
        else:
            print(f"PASS {name}")
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
