#!/bin/sh
# Regenerates the PKI fixtures of the golden cases; the outputs are committed, then the folder's
# make-cases.py writes the case inputs from them. Needs OpenSSL 3. Certificates are EC P-256,
# self-signed, subject O=istio-hooks tests, with fixed validity dates so that the cases never
# age given their clock (now.txt, else the runner's 2026-11-22T00:00:00Z).
#   testdata/gen-pki.sh fetch-remote-metadata   PEM files next to its make-cases.py: three valid
#                                               roots, an expired one, a non-CA certificate, our
#                                               Ed25519 keypair and three peers' public keys
#   testdata/gen-pki.sh update-ca-bundle        update-ca-bundle/pki.json (name -> PEM), for the
#                                               update-ca-bundle and render-service-entries cases:
#                                               roots (one expired, one not yet valid), a non-CA
#                                               certificate and Ed25519 public keys
# Without an argument: both.
set -eu
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/ca.cnf" <<CNF
[ ca ]
default_ca = d
[ d ]
dir = $work
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
default_md = sha256
policy = p
copy_extensions = none
unique_subject = no
[ p ]
commonName = supplied
organizationName = optional
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ v3_leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
CNF

# cert OUT CN START END EXTENSIONS: a self-signed certificate (v3_ca or v3_leaf) into OUT.
cert() {
  : > "$work/index.txt"; echo 01 > "$work/serial"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/cert.key" 2>/dev/null
  openssl req -new -key "$work/cert.key" -subj "/O=istio-hooks tests/CN=$2" -config "$work/ca.cnf" -out "$work/cert.csr"
  openssl ca -batch -notext -selfsign -config "$work/ca.cnf" -keyfile "$work/cert.key" -in "$work/cert.csr" \
    -startdate "$3" -enddate "$4" -extensions "$5" -out "$1" 2>/dev/null
}

# ed25519 NAME: a fresh Ed25519 private key (PKCS#8) in $work/NAME.key.
ed25519() {
  openssl genpkey -algorithm ed25519 -out "$work/$1.key" 2>/dev/null
}

# deckhouse_pub NAME: the public key of ed25519 NAME, labelled as Deckhouse labels it.
deckhouse_pub() {
  openssl pkey -in "$work/$1.key" -pubout | sed 's/PUBLIC KEY/ED25519 PUBLIC KEY/'
}

fetch_remote_metadata() {
  d=fetch-remote-metadata
  for i in 0 1 2; do
    cert "$d/root-ca-$i.pem" "peer $i root CA" 20240101000000Z 20500101000000Z v3_ca
  done
  cert "$d/expired-ca.pem" "expired root CA" 20200101000000Z 20210101000000Z v3_ca
  cert "$d/non-ca.pem" "not a CA" 20240101000000Z 20500101000000Z v3_leaf
  # The local keypair (signs our tokens) and the peers' public keys.
  ed25519 local
  sed 's/PRIVATE KEY/ED25519 PRIVATE KEY/' "$work/local.key" > "$d/local-priv.pem"
  deckhouse_pub local > "$d/local-pub.pem"
  for i in 0 1 2; do
    ed25519 "peer-$i"
    deckhouse_pub "peer-$i" > "$d/peer-$i-pub.pem"
  done
}

update_ca_bundle() {
  out=$work/pki
  mkdir "$out"
  cert "$out/root-local.pem" "cluster.local root" 20260101000000Z 20360101000000Z v3_ca
  cert "$out/root-b.pem" "cluster-b.local root" 20260101000000Z 20360101000000Z v3_ca
  cert "$out/root-c.pem" "cluster-c.local root" 20260101000000Z 20360101000000Z v3_ca
  cert "$out/root-shared.pem" "shared root" 20260101000000Z 20360101000000Z v3_ca
  cert "$out/root-mc.pem" "multicluster peer root" 20260101000000Z 20360101000000Z v3_ca
  cert "$out/root-expired.pem" "expired root" 20200101000000Z 20210101000000Z v3_ca
  cert "$out/root-future.pem" "future root" 20300101000000Z 20400101000000Z v3_ca
  cert "$out/leaf-nonca.pem" "not a CA" 20260101000000Z 20360101000000Z v3_leaf
  for k in key-b key-c key-d key-mc; do
    ed25519 "$k"
    openssl pkey -in "$work/$k.key" -pubout -out "$out/$k.pub.pem"
  done
  python3 - "$out" > update-ca-bundle/pki.json <<'PY'
import json, os, sys
d = sys.argv[1]
print(json.dumps({f[:-4]: open(os.path.join(d, f)).read() for f in sorted(os.listdir(d))}, indent=2))
PY
}

case "${1:-all}" in
  fetch-remote-metadata) fetch_remote_metadata ;;
  update-ca-bundle) update_ca_bundle ;;
  all) fetch_remote_metadata; update_ca_bundle ;;
  *) echo "usage: $0 [fetch-remote-metadata | update-ca-bundle]" >&2; exit 2 ;;
esac
