#!/usr/bin/env bash
# metadata-exporter under load on loopback (release binary, plain HTTP, wrk with 64 connections):
# /healthz as the baseline, public metadata, private metadata with a valid EdDSA token (minted
# here with the openssl CLI from the test key), then a flood of random 4 KB tokens with the
# exporter's RSS before and after. Prints Markdown. DURATION (default 10s) per load.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${ISTIO_HOOKS_BIN:-target/release/istio-hooks}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
command -v wrk >/dev/null || { echo "wrk is required (apt-get install -y wrk)"; exit 1; }
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
A=00000000-0000-0000-0000-00000000000a B=00000000-0000-0000-0000-00000000000b
python3 - "$tmp" "$A" "$B" <<'PY'
import json, sys
d, a, b = sys.argv[1:]
r = lambda p: open(p).read()
local = {"public": {"clusterUUID": b, "authnKeyPub": r("testdata/fixtures/ed25519-b.pub"), "rootCA": r("testdata/fixtures/root-a.pem")},
         "federation": {"ingressGateways": [{"address": "10.0.0.%d" % i, "port": 15443} for i in range(1, 4)],
                        "publicServices": [{"hostname": "svc-%d.ns.svc.cluster.local" % i, "ports": [{"name": "http", "port": 8080}]} for i in range(20)]}}
remote = {a: {"clusterUUID": a, "authnKeyPub": r("testdata/fixtures/ed25519-a.pub"), "rootCA": r("testdata/fixtures/root-b.pem")}}
json.dump(local, open(d + "/local-metadata.json", "w")); json.dump(remote, open(d + "/remote-public-metadata.json", "w"))
PY
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" metadata-exporter --data-dir "$tmp" --listen "127.0.0.1:$port" 2>"$tmp/exporter.log" &
pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fs "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$url/metadata/public/public.json" >/dev/null
# Token: header.payload signed with Ed25519 by openssl (scope private-federation, 1 h).
b64() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
h=$(printf '{"alg":"EdDSA","typ":"JWT"}' | b64)
p=$(printf '{"iss":"d8-istio","sub":"%s","aud":"%s","scope":"private-federation","nbf":%d,"exp":%d}' "$A" "$B" "$((now - 5))" "$((now + 3600))" | b64)
printf '%s.%s' "$h" "$p" > "$tmp/signing-input"
s=$(openssl pkeyutl -sign -inkey testdata/fixtures/ed25519-a.key -rawin -in "$tmp/signing-input" | b64)
token="$h.$p.$s"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$url/metadata/private/federation.json")
[ "$code" = 200 ] || { echo "private endpoint answered $code to a valid token"; cat "$tmp/exporter.log"; exit 1; }
cat > "$tmp/auth.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
LUA
cat > "$tmp/flood.lua" <<'LUA'
-- A pool of random 4 KB three-part tokens, one per request, round robin.
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local pool, n = {}, 0
math.randomseed(os.time())
local function rnd(len)
  local t = {}
  for i = 1, len do local k = math.random(1, #alphabet); t[i] = alphabet:sub(k, k) end
  return table.concat(t)
end
for i = 1, 256 do pool[i] = "Bearer " .. rnd(1000) .. "." .. rnd(2000) .. "." .. rnd(1090) end
request = function()
  n = n % #pool + 1
  return wrk.format("GET", "/metadata/private/federation.json", { ["Authorization"] = pool[n] })
end
LUA
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
load() { # label path [lua]
  local out
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency ${3:+-s "$3"} "$url$2")
  local rps p99 total errs non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  errs=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  echo "| $1 | \`$2\` | ${rps} | ${p99} | ${total} | ${errs:-0} | ${non2xx:-0} |"
}
echo "| load | path | req/s | p99 latency | requests | socket errors | non-2xx |"
echo "|---|---|---|---|---|---|---|"
load "baseline" /healthz
load "public" /metadata/public/public.json
load "private (JWT verified)" /metadata/private/federation.json "$tmp/auth.lua"
before=$(rss)
load "invalid 4 KB tokens (401 expected)" /metadata/private/federation.json "$tmp/flood.lua"
after=$(rss)
sleep 2
settled=$(rss)
echo
echo "Exporter RSS: ${before} KB before the invalid-token flood, ${after} KB right after, ${settled} KB 2 s later."
