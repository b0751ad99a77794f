#!/bin/sh
# Regenerates the PEM fixtures of the fetch-remote-metadata golden cases (run once; the
# outputs are committed). Needs OpenSSL 3. Dates are fixed so that the golden clock
# (2026-11-22T00:00:00Z) sits inside the valid CAs' lifetime and after the expired one's.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/db"
: > "$tmp/db/index.txt"
echo 01 > "$tmp/db/serial"
cat > "$tmp/ca.cnf" <<CNF
[ ca ]
default_ca = self
[ self ]
database = $tmp/db/index.txt
serial = $tmp/db/serial
new_certs_dir = $tmp/db
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
organizationName = optional
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ v3_leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
CNF
# selfsigned NAME CN START END EXTENSIONS
selfsigned() {
  openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/$1.key" 2>/dev/null
  openssl req -new -key "$tmp/$1.key" -subj "/O=istio-hooks tests/CN=$2" -out "$tmp/$1.csr"
  openssl ca -batch -notext -config "$tmp/ca.cnf" -selfsign -keyfile "$tmp/$1.key" -in "$tmp/$1.csr" \
    -startdate "$3" -enddate "$4" -extensions "$5" -out "$1.pem" 2>/dev/null
}
for i in 0 1 2; do selfsigned "root-ca-$i" "peer $i root CA" 20240101000000Z 20500101000000Z v3_ca; done
selfsigned expired-ca "expired root CA" 20200101000000Z 20210101000000Z v3_ca
selfsigned non-ca "not a CA" 20240101000000Z 20500101000000Z v3_leaf
# The local keypair (signs our tokens) and the peers' public keys, labelled as Deckhouse does.
openssl genpkey -algorithm ed25519 -out "$tmp/local.key"
sed 's/PRIVATE KEY/ED25519 PRIVATE KEY/' "$tmp/local.key" > local-priv.pem
openssl pkey -in "$tmp/local.key" -pubout | sed 's/PUBLIC KEY/ED25519 PUBLIC KEY/' > local-pub.pem
for i in 0 1 2; do
  openssl genpkey -algorithm ed25519 -out "$tmp/peer-$i.key"
  openssl pkey -in "$tmp/peer-$i.key" -pubout | sed 's/PUBLIC KEY/ED25519 PUBLIC KEY/' > "peer-$i-pub.pem"
done
