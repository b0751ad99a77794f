#!/usr/bin/env bash
# metadata-exporter under load on loopback (release binary, plain HTTP, wrk with 64 connections):
# /healthz as the baseline, public metadata, private metadata with one fixed valid EdDSA token
# (minted here with the openssl CLI from the test key; mostly answered by the verified-token
# cache), private metadata with a fresh token on every request (what polling peers send: a pool
# of TOKENS distinct valid tokens from PEERS peers, each with its own Ed25519 key listed in
# remote-public-metadata.json, minted before the load by examples/mint_tokens.rs and never sent
# twice), then a flood of random 4 KB tokens with the exporter's RSS before and after. Prints
# Markdown, with each load's ratio to the baseline and the exporter's CPU (wrk runs on the same
# cores). DURATION (default 10s) per load; FRESH_DURATION for the fresh-token load (default
# DURATION; keep req/s × duration below TOKENS, the script reports any token sent twice).
# Builds examples/mint_tokens.rs when it is missing (ISTIO_HOOKS_MINT names another build).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${ISTIO_HOOKS_BIN:-target/release/istio-hooks}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
MINT=${ISTIO_HOOKS_MINT:-target/release/examples/mint_tokens}
TOKENS=${TOKENS:-200000}
PEERS=${PEERS:-8}
FRESH_DURATION=${FRESH_DURATION:-$DURATION}
if [ ! -x "$MINT" ] && [ -z "${ISTIO_HOOKS_MINT:-}" ]; then cargo build --release --example mint_tokens >&2; fi
[ -x "$MINT" ] || { echo "$MINT is missing: cargo build --release --example mint_tokens"; exit 1; }
command -v wrk >/dev/null || { echo "wrk is required (apt-get install -y wrk)"; exit 1; }
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
A=00000000-0000-0000-0000-00000000000a B=00000000-0000-0000-0000-00000000000b
# The fresh-token pool and its peers' keys (minting is not part of any measured load).
"$MINT" "$tmp" "$B" "$TOKENS" "$PEERS" 2>/dev/null
python3 - "$tmp" "$A" "$B" <<'PY'
import json, sys
d, a, b = sys.argv[1:]
r = lambda p: open(p).read()
local = {"public": {"clusterUUID": b, "authnKeyPub": r("testdata/fixtures/ed25519-b.pub"), "rootCA": r("testdata/fixtures/root-a.pem")},
         "federation": {"ingressGateways": [{"address": "10.0.0.%d" % i, "port": 15443} for i in range(1, 4)],
                        "publicServices": [{"hostname": "svc-%d.ns.svc.cluster.local" % i, "ports": [{"name": "http", "port": 8080}]} for i in range(20)]}}
remote = {a: {"clusterUUID": a, "authnKeyPub": r("testdata/fixtures/ed25519-a.pub"), "rootCA": r("testdata/fixtures/root-b.pem")}}
for uuid, peer in json.load(open(d + "/peers.json")).items():
    remote[uuid] = dict(peer, rootCA=r("testdata/fixtures/root-b.pem"))
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
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(tail -n1 "$tmp/tokens.txt")" "$url/metadata/private/federation.json")
[ "$code" = 200 ] || { echo "private endpoint answered $code to a minted token"; cat "$tmp/exporter.log"; exit 1; }
# The pool, dealt out to wrk's threads (line i to thread i mod THREADS), so no token is sent twice.
for ((i = 0; i < THREADS; i++)); do
  awk -v n="$THREADS" -v i="$i" '(NR - 1) % n == i' "$tmp/tokens.txt" > "$tmp/tokens.$((i + 1))"
done
cat > "$tmp/fresh.lua" <<LUA
-- One never-sent token per request from this thread's share of the pool; counts any reuse.
local threads, made = {}, 0
function setup(thread)
  made = made + 1
  thread:set("id", made)
  table.insert(threads, thread)
end
local pool, sent = {}, 0
function init(args)
  for line in io.lines("$tmp/tokens." .. id) do pool[#pool + 1] = "Bearer " .. line end
  reused = 0
end
request = function()
  sent = sent + 1
  if sent > #pool then reused = reused + 1 end
  return wrk.format("GET", nil, { ["Authorization"] = pool[(sent - 1) % #pool + 1] })
end
function done(summary, latency, requests)
  local r = 0
  for _, t in ipairs(threads) do r = r + t:get("reused") end
  io.write("fresh tokens sent twice: " .. r .. "\n")
end
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
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
base_rps=
load() { # label path [lua] [duration]
  local out t0 t1 secs
  secs=${4:-$DURATION}
  t0=$(cpu_ticks)
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"$secs" --latency ${3:+-s "$3"} "$url$2")
  t1=$(cpu_ticks)
  local rps p99 total errs non2xx ratio cpu twice
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  errs=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  twice=$(awk '/fresh tokens sent twice/ {print $5}' <<<"$out")
  [ -n "$base_rps" ] || base_rps=$rps
  ratio=$(awk -v a="$rps" -v b="$base_rps" 'BEGIN {printf "%.2f", a / b}')
  # Exporter CPU over the load, in % of one core (100 % = one of the cores wrk shares).
  cpu=$(awk -v d="$((t1 - t0))" -v hz="$hz" -v s="${secs%s}" 'BEGIN {printf "%.0f %%", 100 * d / hz / s}')
  echo "| $1 | \`$2\` | ${rps} | ${ratio} | ${p99} | ${total} | ${errs:-0} | ${non2xx:-0} | ${cpu} |"
  [ -z "$twice" ] || [ "$twice" = 0 ] || echo "| ↑ WARNING: $twice requests reused a token (pool of $TOKENS too small for this rate × duration) | | | | | | | | |"
}
echo "Load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; wrk -t$THREADS -c$CONNS on the same cores; fresh-token pool: $TOKENS tokens from $PEERS peers."
echo
echo "| load | path | req/s | ratio to baseline | p99 latency | requests | socket errors | non-2xx | exporter CPU |"
echo "|---|---|---|---|---|---|---|---|---|"
load "baseline" /healthz
load "public" /metadata/public/public.json
load "private, one fixed token" /metadata/private/federation.json "$tmp/auth.lua"
load "private, fresh token per request" /metadata/private/federation.json "$tmp/fresh.lua" "$FRESH_DURATION"
before=$(rss)
load "invalid 4 KB tokens (401 expected)" /metadata/private/federation.json "$tmp/flood.lua"
after=$(rss)
sleep 2
settled=$(rss)
echo
echo "Exporter RSS: ${before} KB before the invalid-token flood, ${after} KB right after, ${settled} KB 2 s later."
