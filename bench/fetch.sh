#!/usr/bin/env bash
# fetch-remote-metadata against 100 HTTPS peers on 127.0.0.1 (one shared CA, then each with its own
# spec.metadata.ca; +10 that accept and never answer),
# one poll of an unchanged exporter with and without If-None-Match, and whole hook polls of N
# peers with and without stored ETags. Prints Markdown.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "#### 100 peers (tests/fetch_sockets.rs bench_hundred_peers_ten_dead, release)"
echo
cargo test --release --locked --test fetch_sockets bench_hundred_peers -- --ignored --nocapture 2>/dev/null |
  awk '/^BENCH/ { $1 = ""; print "-" $0 }'
echo
echo "#### Conditional requests (examples/conditional_poll.rs, release)"
echo
POLLS=${POLLS:-5000} cargo run --release --locked --quiet --example conditional_poll
echo
echo "#### Hook polls with and without conditional requests (examples/hook_poll.rs, release)"
echo
cargo build --release --locked --quiet --bin istio-hooks --example hook_poll
PEERS=${PEERS:-50} ROUNDS=${ROUNDS:-10} target/release/examples/hook_poll
