#!/usr/bin/env bash
# Requests/s and latency percentiles of foo -> bar across the two clusters' gateways, against
# foo -> a local service (foo itself) in the same run, on the real stack (`make clusters`
# SCENARIO=federation must be up). wrk (Debian package) runs in foo's pod network namespace and
# sends plain HTTP to foo's sidecar egress listener. Informational: every Envoy, the app and wrk
# share the machine's 2 cores. Usage: bench/traffic.sh [seconds] [connections]
set -euo pipefail
secs=${1:-10}; conns=${2:-8}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
run() {
  ip netns exec iha-foo wrk -t1 -c"$conns" -d"${secs}s" --latency -H "Host: $1" http://10.210.1.11:8080/ |
    awk -v what="$2" '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$NF}
      END {printf "%-34s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n", what, rps, p50, p99, (bad?bad:0)}'
}
echo "wrk -t1 -c$conns -d${secs}s, $(date -u +%FT%TZ), $(nproc) cores"
run foo.abc.svc.cluster-a.local:8080 "foo -> foo (local, via its sidecar)"
run bar.xyz.svc.cluster-b.local:8080 "foo -> bar (b's gateway, mTLS)"
