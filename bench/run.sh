#!/usr/bin/env bash
# `make bench`: every benchmark, loopback only, bounded in time (a few minutes on 2 cores).
# Prints Markdown sections for docs/BENCHMARKS.md, each with machine, date and command.
set -euo pipefail
cd "$(dirname "$0")/.."
machine() { echo "Machine: $(nproc) CPUs ($(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')), $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr); date: $(date -u +%Y-%m-%dT%H:%MZ)."; }
section() { echo; echo "### $1"; echo; machine; echo "Command: \`$2\`"; echo; }
section "Hook runs" "bash bench/hooks.sh"
bash bench/hooks.sh
section "Fetching" "bash bench/fetch.sh"
bash bench/fetch.sh
section "metadata-exporter" "bash bench/exporter.sh"
bash bench/exporter.sh
