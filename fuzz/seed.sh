#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets from testdata: binding contexts, values, remote
# metadata documents (every http.json body), PEM files, and tokens minted with the openssl CLI
# from the test keys (plus a few hostile variants). Writes fuzz/corpus/<target>/<sha1>; idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
out=fuzz/corpus
mkdir -p "$out"/{binding_context,values_patch,remote_metadata,jwt,pem_cert}
put() { # target < content
  local tmp; tmp=$(mktemp); cat > "$tmp"
  mv "$tmp" "$out/$1/$(sha1sum "$tmp" | cut -c1-16)"
}
# Binding contexts (small ones; the big generated ones add nothing for coverage).
while IFS= read -r f; do put binding_context < "$f"; done < <(find testdata -name binding-context.json -size -64k | sort)
# Values: the /istio subtree of every values file, paired with {} and with the next one.
prev='{}'
while IFS= read -r f; do
  cur=$(jq -c '.istio // {}' "$f")
  printf '%s\n%s\n' "$cur" '{}' | put values_patch
  printf '%s\n%s\n' "$prev" "$cur" | put values_patch
  prev=$cur
done < <(find testdata -name values.json -size -64k | sort | head -40)
# Remote documents: every canned body that is JSON (objects are served as JSON, strings as-is).
while IFS= read -r f; do
  jq -c '.[] | select(.body != null) | .body | if type == "string" then . else tojson end' "$f" |
    while IFS= read -r body; do jq -rj . <<<"$body" | put remote_metadata; done
done < <(find testdata -name http.json | sort)
# PEM: certificates and keys.
while IFS= read -r f; do put pem_cert < "$f"; done < <(find testdata -name '*.pem' -o -name '*.pub' -o -name '*.key' | sort)
# Tokens: EdDSA JWTs signed with the test keys by the openssl CLI, as Authorization headers.
tmpd=$(mktemp -d); trap 'rm -rf "$tmpd"' EXIT
b64() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
mint() { # key header-json payload-json
  local h p s
  h=$(printf '%s' "$2" | b64); p=$(printf '%s' "$3" | b64)
  printf '%s.%s' "$h" "$p" > "$tmpd/in"
  s=$(openssl pkeyutl -sign -inkey "$1" -rawin -in "$tmpd/in" | b64)
  printf 'Bearer %s.%s.%s' "$h" "$p" "$s"
}
A=00000000-0000-0000-0000-00000000000a B=00000000-0000-0000-0000-00000000000b
hdr='{"alg":"EdDSA","typ":"JWT"}'
claims() { printf '{"iss":"d8-istio","sub":"%s","aud":"%s","scope":"%s","nbf":1699999000,"exp":%s}' "$1" "$2" "$3" "$4"; }
mint testdata/fixtures/ed25519-a.key "$hdr" "$(claims $A $B private-federation 1700000060)" | put jwt
mint testdata/fixtures/ed25519-a.key "$hdr" "$(claims $A $B api 1731536000)" | put jwt
mint testdata/fixtures/ed25519-b.key "$hdr" "$(claims $A $B private-federation 1700000060)" | put jwt # wrong key
mint testdata/fixtures/ed25519-a.key "$hdr" "$(claims $A $B private-federation 1600000000)" | put jwt # expired
mint testdata/fixtures/ed25519-a.key '{"alg":"none"}' "$(claims $A $B api 1731536000)" | put jwt
printf 'Bearer %s.%s.' "$(printf '{"alg":"none"}' | b64)" "$(claims $A $B api 1731536000 | b64)" | put jwt
printf 'Bearer a.b.c' | put jwt
printf 'Basic dXNlcjpwYXNz' | put jwt
echo "seeded: $(for t in "$out"/*; do printf '%s=%s ' "${t##*/}" "$(ls "$t" | wc -l)"; done)"
du -sh "$out"
