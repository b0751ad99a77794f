"""A small client for the real kube-apiserver of the stack: client-certificate auth over HTTPS,
list/get/apply (server-side apply)/patch/delete and TokenRequest. The harness uses it instead of
forking kubectl once a second; the tests use kubectl itself where what an operator types matters."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request

import yaml

# (group/version, plural, namespaced) by kind, for what the harness touches.
KINDS = {
    "Namespace": ("v1", "namespaces", False),
    "ServiceAccount": ("v1", "serviceaccounts", True),
    "Secret": ("v1", "secrets", True),
    "ConfigMap": ("v1", "configmaps", True),
    "Service": ("v1", "services", True),
    "Node": ("v1", "nodes", False),
    "Pod": ("v1", "pods", True),
    "Deployment": ("apps/v1", "deployments", True),
    "DaemonSet": ("apps/v1", "daemonsets", True),
    "EndpointSlice": ("discovery.k8s.io/v1", "endpointslices", True),
    "Ingress": ("networking.k8s.io/v1", "ingresses", True),
    "IstioFederation": ("deckhouse.io/v1alpha1", "istiofederations", False),
    "IstioMulticluster": ("deckhouse.io/v1alpha1", "istiomulticlusters", False),
    "IstioMulticloud": ("deckhouse.io/v1alpha1", "istiomulticlouds", False),
    "ServiceEntry": ("networking.istio.io/v1", "serviceentries", True),
    "DestinationRule": ("networking.istio.io/v1", "destinationrules", True),
    "Gateway": ("networking.istio.io/v1", "gateways", True),
    "Sidecar": ("networking.istio.io/v1", "sidecars", True),
    "CustomResourceDefinition": ("apiextensions.k8s.io/v1", "customresourcedefinitions", False),
}


class ApiError(Exception):
    def __init__(self, code, body, what):
        super().__init__(f"{what}: HTTP {code}: {body[:400]}")
        self.code, self.body = code, body


class Kube:
    def __init__(self, server, ca, cert, key):
        self.server = server.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.load_cert_chain(cert, key)

    def path(self, kind, name=None, namespace=None, sub=None):
        gv, plural, namespaced = KINDS[kind]
        base = "/api/v1" if gv == "v1" else f"/apis/{gv}"
        if namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base

    def request(self, method, path, body=None, content_type="application/json", timeout=10):
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method, headers={"Content-Type": content_type, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
                raw = r.read()
                return json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raise ApiError(e.code, e.read().decode(errors="replace"), f"{method} {path}") from None

    def ready(self):
        """True once /readyz answers 200 (its body is text, not JSON)."""
        try:
            with urllib.request.urlopen(self.server + "/readyz", context=self.ctx, timeout=5) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def get(self, kind, name, namespace=None):
        try:
            return self.request("GET", self.path(kind, name, namespace))
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    def list(self, kind, namespace=None, selector=None):
        q = "?" + urllib.parse.urlencode({"labelSelector": selector}) if selector else ""
        try:
            return self.request("GET", self.path(kind, None, namespace) + q).get("items", [])
        except ApiError as e:
            if e.code == 404:
                return []
            raise

    def apply(self, obj, manager="istio-hooks-stack", sub=None):
        """Server-side apply of one object (force: the harness owns what it applies)."""
        md = obj["metadata"]
        kind = obj["kind"]
        path = self.path(kind, md["name"], md.get("namespace"), sub) + "?" + urllib.parse.urlencode({"fieldManager": manager, "force": "true"})
        return self.request("PATCH", path, yaml.safe_dump(obj).encode(), "application/apply-patch+yaml")

    def merge_patch(self, kind, name, patch, namespace=None, sub=None):
        return self.request("PATCH", self.path(kind, name, namespace, sub), patch, "application/merge-patch+json")

    def delete(self, kind, name, namespace=None):
        try:
            return self.request("DELETE", self.path(kind, name, namespace))
        except ApiError as e:
            if e.code != 404:
                raise

    def token(self, namespace, service_account, audiences=None, seconds=3600):
        """A bound ServiceAccount token from the TokenRequest API, as the kubelet gets one."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": seconds}}
        if audiences:
            body["spec"]["audiences"] = audiences
        out = self.request("POST", self.path("ServiceAccount", service_account, namespace, "token"), body)
        return out["status"]["token"]
