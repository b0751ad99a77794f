#!/usr/bin/env bash
# Hook runs as whole processes on generated binding contexts (each item projected through the
# hook's own jqFilter, see gen_peers.py), each against `jq -c .` over the same file in the same run
# (the floor for "read the input once"). Median of RUNS runs; wall time and peak RSS from
# /usr/bin/time (10 ms resolution). With hyperfine installed, wall time is also its median over
# HF_RUNS runs (default 20) of the hook and of jq, measured one after the other in the same
# invocation, and the ratio is taken from those. A shape is "KIND HOOK PEERS SERVICES PORTS
# [GATEWAYS]" (gateways per peer, default 2); SHAPES (';'-separated) replaces the default list.
# Start-up of the config commands with hyperfine when installed (against /bin/true in the same
# run; STARTUP_RUNS, default 300; STARTUP=0 skips it), else a Python loop. Prints Markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${ISTIO_HOOKS_BIN:-target/release/istio-hooks}
RUNS=${RUNS:-5}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/values.json" <<'PY'
import json, sys
v = open("bench/values.json").read()
pub = open("testdata/fixtures/ed25519-a.pub").read(); priv = open("testdata/fixtures/ed25519-a.key").read()
v = v.replace('"@PUB@"', json.dumps(pub)).replace('"@PRIV@"', json.dumps(priv))
open(sys.argv[1], "w").write(json.dumps(json.loads(v)))
PY
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() { # input cmd... ; prints "seconds kb" medians
  local t=() m=() input=$1; shift
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %M" -o "$tmp/time" "$@" < "$input" > /dev/null 2>>"$tmp/stderr"
    read -r s k < "$tmp/time"; t+=("$s"); m+=("$k")
  done
  echo "$(printf '%s\n' "${t[@]}" | median) $(printf '%s\n' "${m[@]}" | median)"
}
default_shapes="federation render-service-entries 10 100 2;federation render-service-entries 100 100 2;federation render-service-entries 1000 100 2;\
federation render-service-entries 100 100 2 3;federation render-service-entries 1000 100 2 3;\
federation update-ca-bundle 100 100 2 3;federation update-ca-bundle 1000 100 2 3;\
multicluster multicluster-remote-secrets 100 0 0;multicluster multicluster-remote-secrets 1000 0 0"
hf() { # input cmd; prints the median seconds of HF_RUNS runs (through a shell, whose own
  # start-up hyperfine measures and subtracts)
  hyperfine --warmup 2 --runs "${HF_RUNS:-20}" --export-json "$tmp/hf.json" "$2 < $1 > /dev/null 2>/dev/null" > /dev/null 2>&1
  python3 -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$tmp/hf.json"
}
HAVE_HF=0; command -v hyperfine > /dev/null && HAVE_HF=1
if [ "$HAVE_HF" = 1 ]; then
  echo "| hook | peers × services × ports × gateways | input | hook wall s | jq wall s | hook median ms (hyperfine) | jq median ms (hyperfine) | ratio | hook peak RSS MB | jq peak RSS MB |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
else
  echo "| hook | peers × services × ports × gateways | input | hook wall s | jq wall s | ratio | hook peak RSS MB | jq peak RSS MB |"
  echo "|---|---|---|---|---|---|---|---|"
fi
IFS=';' read -r -a shapes <<< "${SHAPES:-$default_shapes}"
for shape in "${shapes[@]}"; do
  set -- $shape
  kind=$1 hook=$2 n=$3 s=$4 p=$5 g=${6:-2}
  GATEWAYS=$g python3 bench/gen_peers.py "$kind" "$n" "$s" "$p" "$hook" "$BIN" > "$tmp/bc.json"
  size=$(du -h "$tmp/bc.json" | cut -f1)
  read -r hs hk < <(measure "$tmp/bc.json" "$BIN" "$hook" --values "$tmp/values.json" --metrics-out /dev/null)
  read -r js jk < <(measure "$tmp/bc.json" jq -c .)
  mb() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
  if [ "$HAVE_HF" = 1 ]; then
    hh=$(hf "$tmp/bc.json" "$BIN $hook --values $tmp/values.json --metrics-out /dev/null")
    hj=$(hf "$tmp/bc.json" "jq -c .")
    ratio=$(awk -v a="$hh" -v b="$hj" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
    echo "| $hook | $n × $s × $p × $g | $size | $hs | $js | $(awk -v a="$hh" 'BEGIN{printf "%.1f", a*1000}') | $(awk -v a="$hj" 'BEGIN{printf "%.1f", a*1000}') | $ratio | $(mb "$hk") | $(mb "$jk") |"
  else
    ratio=$(awk -v a="$hs" -v b="$js" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
    echo "| $hook | $n × $s × $p × $g | $size | $hs | $js | $ratio | $(mb "$hk") | $(mb "$jk") |"
  fi
done
[ "${STARTUP:-1}" = 0 ] && exit 0
# Start-up: the config calls run on every operator start for every hook.
if command -v hyperfine >/dev/null; then
  echo
  echo "| command | median ms | mean ± σ ms | min ms | max ms |"
  echo "|---|---|---|---|---|"
  hyperfine -N --warmup 20 --runs "${STARTUP_RUNS:-300}" --export-json "$tmp/startup.json" \
    /bin/true "$BIN hook list" "$BIN hook config" "$BIN discovery --config" > /dev/null 2>&1
  python3 - "$tmp/startup.json" "$BIN" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    cmd = r["command"].replace(sys.argv[2], "istio-hooks")
    print(f"| `{cmd}` | {r['median']*1000:.2f} | {r['mean']*1000:.2f} ± {r['stddev']*1000:.2f} | {r['min']*1000:.2f} | {r['max']*1000:.2f} |")
PY
else
  python3 - "$BIN" "$RUNS" <<'PY'
import subprocess, sys, time
b, runs = sys.argv[1], int(sys.argv[2]) * 20
for args in (["hook", "list"], ["hook", "config"], ["discovery", "--config"]):
    ts = []
    for _ in range(runs):
        t = time.perf_counter(); subprocess.run([b, *args], stdout=subprocess.DEVNULL, check=True); ts.append(time.perf_counter() - t)
    ts.sort()
    print(f"| `{' '.join(args)}` start-up | median {ts[len(ts)//2]*1000:.2f} ms | p90 {ts[int(len(ts)*0.9)]*1000:.2f} ms | over {runs} runs |")
PY
fi
