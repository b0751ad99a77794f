"""Certificates of the real stack, made with the openssl command: per cluster an apiserver serving
certificate and client CA (admin client certificate in group system:masters), a ServiceAccount
signing key, and an Istio plug-in CA (root-cert.pem, ca-cert.pem, ca-key.pem, cert-chain.pem);
for the whole stack one "public" CA that signs the Ingress certificates of the exporter and the
api-proxy hosts (what cert-manager would issue; peers trust it through spec.metadata.ca)."""

from __future__ import annotations

import os
import subprocess


def _run(*args, cwd=None):
    subprocess.run(list(args), check=True, capture_output=True, cwd=cwd)


def _ext(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def ca(d, name, subject, days=3650):
    """A self-signed CA: (cert, key)."""
    os.makedirs(d, exist_ok=True)
    key, crt = os.path.join(d, f"{name}.key"), os.path.join(d, f"{name}.pem")
    if not os.path.exists(crt):
        _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", str(days),
             "-subj", subject, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")
    return crt, key


def leaf(d, name, subject, issuer, sans=(), client=False, ca_ext=False, days=3650):
    """A certificate signed by issuer=(cert, key): (cert, key). `ca_ext` makes an intermediate CA."""
    os.makedirs(d, exist_ok=True)
    key, csr, crt = (os.path.join(d, f"{name}.{x}") for x in ("key", "csr", "pem"))
    if os.path.exists(crt):
        return crt, key
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", subject)
    lines = []
    if ca_ext:
        lines += ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"]
    else:
        lines += ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment",
                  "extendedKeyUsage=" + ("clientAuth" if client else "serverAuth,clientAuth")]
    if sans:
        lines.append("subjectAltName=" + ",".join(("IP:" if s[0].isdigit() else "DNS:") + s for s in sans))
    ext = _ext(os.path.join(d, f"{name}.ext"), "\n".join(lines) + "\n")
    _run("openssl", "x509", "-req", "-in", csr, "-CA", issuer[0], "-CAkey", issuer[1], "-CAcreateserial", "-out", crt,
         "-days", str(days), "-extfile", ext, "-sha256")
    return crt, key


def cluster_pki(d, name, domain, api_ip):
    """Everything one cluster needs; idempotent."""
    os.makedirs(d, exist_ok=True)
    out = {}
    kube_ca = ca(d, "kube-ca", f"/CN=kubernetes-ca-{name}")
    out["kubeCA"] = kube_ca[0]
    out["apiserver"] = leaf(d, "apiserver", "/CN=kube-apiserver", kube_ca,
                            sans=(api_ip, "kubernetes", "kubernetes.default", "kubernetes.default.svc", f"kubernetes.default.svc.{domain}", "10.96.0.1"))
    out["admin"] = leaf(d, "admin", "/O=system:masters/CN=stack-admin", kube_ca, client=True)
    sa_key = os.path.join(d, "sa.key")
    if not os.path.exists(sa_key):
        _run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", sa_key)
        _run("openssl", "pkey", "-in", sa_key, "-pubout", "-out", os.path.join(d, "sa.pub"))
    out["saKey"], out["saPub"] = sa_key, os.path.join(d, "sa.pub")
    # Istio plug-in CA: a root of this cluster's own and an intermediate istiod signs with.
    cacerts = os.path.join(d, "cacerts")
    root = ca(cacerts, "root", f"/O=Istio {name}/CN=Root CA of cluster {name}")
    inter = leaf(cacerts, "intermediate", f"/O=Istio {name}/CN=Intermediate CA of cluster {name}", root, ca_ext=True)
    files = {"root-cert.pem": open(root[0]).read(), "ca-cert.pem": open(inter[0]).read(), "ca-key.pem": open(inter[1]).read()}
    files["cert-chain.pem"] = files["ca-cert.pem"] + files["root-cert.pem"]
    for fname, text in files.items():
        with open(os.path.join(cacerts, fname), "w") as f:
            f.write(text)
    out["cacerts"] = cacerts
    out["root"] = os.path.join(cacerts, "root-cert.pem")
    return out
