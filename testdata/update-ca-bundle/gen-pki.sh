#!/bin/sh
# Generates the PKI of the golden cases of update-ca-bundle and render-service-entries into
# pki.json (name -> PEM): EC P-256 root CAs with fixed validity dates (so the cases never age,
# given their now.txt), an expired and a not-yet-valid root, a non-CA certificate, and Ed25519
# public keys. Run it from this directory, then ./make-cases.py and review the cases.
set -eu
work=$(mktemp -d)
out=$work/out
mkdir "$out"
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
cert() { # name cn start end ext
  : > "$work/index.txt"; echo 01 > "$work/serial"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/$1.key" 2>/dev/null
  openssl req -new -key "$work/$1.key" -subj "/O=istio-hooks tests/CN=$2" -config "$work/ca.cnf" -out "$work/$1.csr"
  openssl ca -batch -notext -selfsign -config "$work/ca.cnf" -keyfile "$work/$1.key" -in "$work/$1.csr" \
    -startdate "$3" -enddate "$4" -extensions "$5" -out "$out/$1.pem" 2>/dev/null
}
cert root-local "cluster.local root" 20260101000000Z 20360101000000Z v3_ca
cert root-b "cluster-b.local root" 20260101000000Z 20360101000000Z v3_ca
cert root-c "cluster-c.local root" 20260101000000Z 20360101000000Z v3_ca
cert root-shared "shared root" 20260101000000Z 20360101000000Z v3_ca
cert root-mc "multicluster peer root" 20260101000000Z 20360101000000Z v3_ca
cert root-expired "expired root" 20200101000000Z 20210101000000Z v3_ca
cert root-future "future root" 20300101000000Z 20400101000000Z v3_ca
cert leaf-nonca "not a CA" 20260101000000Z 20360101000000Z v3_leaf
for k in key-b key-c key-d key-mc; do
  openssl genpkey -algorithm ed25519 -out "$work/$k" 2>/dev/null
  openssl pkey -in "$work/$k" -pubout -out "$out/$k.pub.pem"
done
python3 - "$out" > pki.json <<'PY'
import json, os, sys
d = sys.argv[1]
print(json.dumps({f[:-4]: open(os.path.join(d, f)).read() for f in sorted(os.listdir(d))}, indent=2))
PY
