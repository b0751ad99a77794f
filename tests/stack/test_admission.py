#!/usr/bin/env python3
"""The chart's admission policy for the peer CRs, tested in a real kube-apiserver.

`check_admission(kubeconfig, kubectl)` renders the chart (real Helm, as tests/helm/render.py
does) with both features off and then on, applies the CRDs and the rendered
ValidatingAdmissionPolicy + binding each time, and checks with server-side dry runs (admission
runs, nothing is stored) that bad objects are refused with the policy's message and good ones are
accepted: an IstioFederation / IstioMulticluster / IstioMulticloud while its feature is off, a
metadataEndpoint that is not https:// (the CRD's own pattern refuses it first where the CRD is
current; either refusal counts, and which one is reported), a federation trustDomain equal to the
cluster domain (also in other letter case). It also checks that an object created while a
feature was on can still be updated after the feature is turned off.

The policy and binding are applied under a suffixed name (`-test` by default) and deleted at the
end, so that a module-managed policy of the same cluster is never overwritten; run it against a
throwaway apiserver or one where the module's own policy allows both kinds.

`throwaway_apiserver(bin_dir)` starts etcd + kube-apiserver on 127.0.0.77 (static admin token,
self-signed serving certificate) for a self-contained run, which also repeats the checks with the
CRDs' https:// pattern removed, so that the policy's own check is seen refusing (`make test-admission STACK_BIN=…`):

    .venv/bin/python tests/stack/test_admission.py --kubeconfig KUBECONFIG --kubectl kubectl
    .venv/bin/python tests/stack/test_admission.py --start /work/main/.cache/stack/bin
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Iterator

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "helm"))
import render as chart_render  # noqa: E402

POLICY = "istio-alliance-peers.deckhouse.io"
DOMAIN = "cluster-a.local"


# ---------------------------------------------------------------- chart


def module_values(federation: bool, multicluster: bool, domain: str = DOMAIN) -> dict:
    return {"global": {"discovery": {"clusterUUID": "0b6f3c1e-6f5a-4d7e-9a47-1c2d3e4f5a6b", "clusterDomain": domain},
                       "modules": {"publicDomainTemplate": "%s.k8s-a.example.com",
                                   "https": {"mode": "CustomCertificate"}}},
            "istio": {"federation": {"enabled": federation}, "multicluster": {"enabled": multicluster},
                      "https": {"customCertificate": {"secretName": "istio-alliance-tls"}}}}


def rendered_policy(federation: bool, multicluster: bool, suffix: str, domain: str = DOMAIN) -> list[dict]:
    """The chart's ValidatingAdmissionPolicy and binding for these settings, renamed with `suffix`."""
    chart = chart_render.helm.Chart.load(str(ROOT))
    docs = chart_render.documents(chart_render.render(chart, module_values(federation, multicluster, domain)))
    out = [copy.deepcopy(d) for d in docs if d["kind"] in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")]
    if len(out) != 2:
        raise AssertionError(f"expected the policy and its binding in the render, got {[d['kind'] for d in out]}")
    for d in out:
        d["metadata"]["name"] = POLICY + suffix
        if d["kind"] == "ValidatingAdmissionPolicyBinding":
            d["spec"]["policyName"] = POLICY + suffix
    return out


# ---------------------------------------------------------------- kubectl


class Kube:
    def __init__(self, kubeconfig: str, kubectl: str):
        self.kubeconfig, self.kubectl = kubeconfig, kubectl

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run([self.kubectl, "--kubeconfig", self.kubeconfig, *args], input=stdin,
                             capture_output=True, text=True, timeout=120)
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {res.stderr.strip()}")
        return res

    def apply(self, objs: list[dict]) -> None:
        self.run("apply", "-f", "-", stdin=yaml.safe_dump_all(objs))

    def create(self, obj: dict, dry_run: bool = True) -> tuple[bool, str]:
        """(accepted, error text) of creating `obj` (server-side dry run: admission runs, nothing is stored)."""
        args = ["create", "-o", "name", "-f", "-"] + (["--dry-run=server"] if dry_run else [])
        res = self.run(*args, stdin=json.dumps(obj), check=False)
        return res.returncode == 0, res.stderr.strip()


def peer(kind: str, name: str, endpoint: str = "https://istio-metadata.k8s-b.example.com/metadata/", trust_domain: str | None = None) -> dict:
    spec: dict = {"metadataEndpoint": endpoint}
    if kind == "IstioFederation":
        spec["trustDomain"] = trust_domain or "cluster-b.local"
    return {"apiVersion": "deckhouse.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def wait_for(what: str, probe, timeout: float = 60.0) -> None:
    """Policies take effect asynchronously (the apiserver's policy informers): poll `probe`."""
    deadline = time.monotonic() + timeout
    while True:
        if probe():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.5)


# ---------------------------------------------------------------- the test


def check_admission(kubeconfig: str, kubectl: str, domain: str = DOMAIN, suffix: str = "-test",
                    without_crd_pattern: bool = False) -> list[str]:
    """Runs every check; returns one line per check passed, raises AssertionError on the first
    failure. `without_crd_pattern` (throwaway apiservers only) installs the CRDs without their
    https:// pattern on spec.metadataEndpoint, so that the policy's own check is what refuses."""
    k = Kube(kubeconfig, kubectl)
    results: list[str] = []

    def refused(obj: dict, *fragments: str) -> str:
        ok, err = k.create(obj)
        what = f"{obj['kind']} {obj['metadata']['name']}"
        if ok:
            raise AssertionError(f"{what} was accepted, expected a refusal mentioning {fragments}")
        hit = [f for f in fragments if f in err]
        if not hit:
            raise AssertionError(f"{what} refused, but without {fragments}: {err}")
        by = "admission policy" if "ValidatingAdmissionPolicy" in err else "CRD schema"
        results.append(f"refused {what} ({by}): {hit[0]!r}")
        return err

    def accepted(obj: dict) -> None:
        ok, err = k.create(obj)
        if not ok:
            raise AssertionError(f"{obj['kind']} {obj['metadata']['name']} refused: {err}")
        results.append(f"accepted {obj['kind']} {obj['metadata']['name']}")

    crds = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "crds").glob("*.yaml"))]
    if without_crd_pattern:
        for crd in crds:
            for version in crd["spec"]["versions"]:
                spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
                spec["metadataEndpoint"].pop("pattern", None)
    k.apply(crds)
    for crd in crds:
        k.run("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd['metadata']['name']}")
    created: list[dict] = []
    try:
        # Both features off: every peer kind is refused on create.
        k.apply(rendered_policy(False, False, suffix, domain))
        wait_for("the policy refuses an IstioFederation", lambda: not k.create(peer("IstioFederation", "probe"))[0])
        refused(peer("IstioFederation", "fed-while-off"), "can only be created while federation is enabled")
        refused(peer("IstioMulticluster", "mc-while-off"), "can only be created while multicluster is enabled")
        refused(peer("IstioMulticloud", "mcloud-while-off"), "can only be created while multicluster is enabled")

        # Both on: good objects pass, broken specs are refused with what to do.
        k.apply(rendered_policy(True, True, suffix, domain))
        wait_for("the policy accepts an IstioFederation", lambda: k.create(peer("IstioFederation", "probe"))[0])
        accepted(peer("IstioFederation", "fed-good"))
        accepted(peer("IstioMulticluster", "mc-good"))
        accepted(peer("IstioMulticloud", "mcloud-good"))
        refused(peer("IstioFederation", "fed-own-domain", trust_domain=domain), "must be the peer's cluster domain")
        refused(peer("IstioFederation", "fed-own-domain-case", trust_domain=domain.upper()), "must be the peer's cluster domain")
        for kind in ("IstioFederation", "IstioMulticluster"):
            fragments = ("must be an https:// URL",) if without_crd_pattern else ("must be an https:// URL", "spec.metadataEndpoint")
            refused(peer(kind, f"{kind.lower()}-plain-http", endpoint="http://istio-metadata.k8s-b.example.com/metadata/"), *fragments)

        # An object created while the feature was on stays editable after it is turned off.
        obj = peer("IstioFederation", "fed-kept")
        ok, err = k.create(obj, dry_run=False)
        if not ok:
            raise AssertionError(f"creating {obj['metadata']['name']}: {err}")
        created.append(obj)
        k.apply(rendered_policy(False, False, suffix, domain))
        wait_for("the policy refuses an IstioFederation again", lambda: not k.create(peer("IstioFederation", "probe"))[0])
        res = k.run("label", "--overwrite", "istiofederation", "fed-kept", "example.com/edited=true", check=False)
        if res.returncode != 0:
            raise AssertionError(f"updating an existing IstioFederation while federation is off was refused: {res.stderr.strip()}")
        results.append("accepted an update of IstioFederation fed-kept while federation is off")
        patch = json.dumps({"spec": {"metadataEndpoint": "http://plain.example.com/metadata/"}})
        res = k.run("patch", "istiofederation", "fed-kept", "--type=merge", "-p", patch, "--dry-run=server", check=False)
        if res.returncode == 0:
            raise AssertionError("an update to a plain-http metadataEndpoint was accepted")
        results.append("refused an update of IstioFederation fed-kept to a plain-http metadataEndpoint")
    finally:
        for obj in created:
            k.run("delete", obj["kind"].lower(), obj["metadata"]["name"], "--ignore-not-found", check=False)
        k.run("delete", "validatingadmissionpolicybinding", POLICY + suffix, "--ignore-not-found", check=False)
        k.run("delete", "validatingadmissionpolicy", POLICY + suffix, "--ignore-not-found", check=False)
    return results


# ---------------------------------------------------------------- a throwaway apiserver


@contextlib.contextmanager
def throwaway_apiserver(bin_dir: str, address: str = "127.0.0.77") -> Iterator[tuple[str, str]]:
    """etcd + kube-apiserver from `bin_dir` on `address` (ports 2379/2380/6443), admin by static
    token; yields (kubeconfig, kubectl) and stops both processes (only these) on exit."""
    work = pathlib.Path(tempfile.mkdtemp(prefix="admission-apiserver-"))
    procs: list[subprocess.Popen] = []
    try:
        subprocess.run(["openssl", "genrsa", "-out", str(work / "sa.key"), "2048"], check=True, capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", str(work / "sa.key"), "-pubout", "-out", str(work / "sa.pub")], check=True, capture_output=True)
        token = os.urandom(16).hex()
        (work / "tokens.csv").write_text(f'{token},admin,admin,"system:masters"\n')
        log = open(work / "etcd.log", "w")
        procs.append(subprocess.Popen([
            f"{bin_dir}/etcd", "--name", "default", "--data-dir", str(work / "etcd"),
            "--listen-client-urls", f"http://{address}:2379", "--advertise-client-urls", f"http://{address}:2379",
            "--listen-peer-urls", f"http://{address}:2380", "--initial-advertise-peer-urls", f"http://{address}:2380",
            "--initial-cluster", f"default=http://{address}:2380"], stdout=log, stderr=log))
        log = open(work / "kube-apiserver.log", "w")
        procs.append(subprocess.Popen([
            f"{bin_dir}/kube-apiserver", f"--etcd-servers=http://{address}:2379", f"--bind-address={address}",
            f"--advertise-address={address}", "--secure-port=6443", f"--cert-dir={work / 'pki'}",
            f"--token-auth-file={work / 'tokens.csv'}", "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc", f"--service-account-key-file={work / 'sa.pub'}",
            f"--service-account-signing-key-file={work / 'sa.key'}", "--service-cluster-ip-range=10.96.0.0/16"],
            stdout=log, stderr=log))
        kubeconfig = work / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "admin",
            "clusters": [{"name": "t", "cluster": {"server": f"https://{address}:6443", "insecure-skip-tls-verify": True}}],
            "users": [{"name": "admin", "user": {"token": token}}],
            "contexts": [{"name": "admin", "context": {"cluster": "t", "user": "admin"}}]}))
        kubectl = shutil.which("kubectl", path=bin_dir) or shutil.which("kubectl") or "kubectl"
        k = Kube(str(kubeconfig), kubectl)
        deadline = time.monotonic() + 120
        while k.run("get", "--raw", "/readyz", check=False).returncode != 0:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"kube-apiserver did not become ready; logs in {work}")
            time.sleep(1)
        yield str(kubeconfig), kubectl
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kubeconfig", help="kubeconfig of the apiserver to test against")
    ap.add_argument("--kubectl", default="kubectl")
    ap.add_argument("--start", metavar="BIN_DIR", help="start a throwaway etcd + kube-apiserver from BIN_DIR instead")
    ap.add_argument("--cluster-domain", default=DOMAIN)
    args = ap.parse_args()
    try:
        if args.start:
            with throwaway_apiserver(args.start) as (kubeconfig, kubectl):
                # With the CRDs as shipped (their pattern refuses plain http first), then without
                # that pattern (the policy's own https:// check refuses).
                results = check_admission(kubeconfig, kubectl, args.cluster_domain)
                results += check_admission(kubeconfig, kubectl, args.cluster_domain, without_crd_pattern=True)
        elif args.kubeconfig:
            results = check_admission(args.kubeconfig, args.kubectl, args.cluster_domain)
        else:
            ap.error("--kubeconfig or --start is required")
    except AssertionError as e:
        print(f"FAIL admission: {e}")
        return 1
    for line in results:
        print(f"  {line}")
    print(f"PASS admission: {len(results)} checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
