#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS (default 60) one after the other, starting from the
# committed seed corpus, with a per-target -max_len and a 2 GB RSS limit. Uses cargo-fuzz on the
# stable toolchain (RUSTC_BOOTSTRAP=1 lets it pass its -Z flags). New corpus entries go to
# fuzz/corpus-new/<target> (not committed); crashes to fuzz/artifacts/<target>/.
# FUZZ_TARGETS="jwt pem_cert" limits the set. Prints CPU seconds and executions per target.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER=${FUZZ_SECONDS:-60}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
declare -A MAXLEN=([binding_context]=65536 [values_patch]=16384 [remote_metadata]=65536 [jwt]=8192 [pem_cert]=16384)
targets=${FUZZ_TARGETS:-binding_context values_patch remote_metadata jwt pem_cert}
[ -d corpus/jwt ] || bash seed.sh
if [ -n "${FUZZ_TARGETS:-}" ]; then
  for t in $targets; do cargo fuzz build -O "$t"; done
else
  cargo fuzz build -O
fi
status=0
for t in $targets; do
  mkdir -p "corpus-new/$t" "artifacts/$t"
  log=$(mktemp)
  set +e
  /usr/bin/time -f "%U %S %M" -o "$log.time" \
    cargo fuzz run -O "$t" "corpus-new/$t" "corpus/$t" -- \
      -max_total_time="$SECONDS_PER" -max_len="${MAXLEN[$t]}" -rss_limit_mb=2048 \
      -timeout=10 -print_final_stats=1 > "$log" 2>&1
  rc=$?
  set -e
  read -r user sys rss < "$log.time"
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  cov=$(grep -E '^#[0-9]+' "$log" | tail -n1 | grep -oE 'cov: [0-9]+' || true)
  printf '%-16s rc=%s cpu=%.0fs execs=%s %s peakRSS=%dMB\n' "$t" "$rc" "$(echo "$user + $sys" | bc)" "${execs:-?}" "$cov" $((rss / 1024))
  if [ "$rc" -ne 0 ]; then status=1; grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -n 8; fi
  rm -f "$log" "$log.time"
done
exit $status
