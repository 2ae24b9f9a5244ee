#!/usr/bin/env bash
# The demo with a receiver: examples/webhook-server prints each notification Aegis
# sends (one block per alert: status, severity, service, summary), while `aegis demo`
# runs the demo shop, its faults, its checks, its alerts and its restart. Ctrl-C stops
# both.
#
#   bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release --quiet --bin aegis --example webhook-server
receiver_out=$(mktemp)
target/release/examples/webhook-server --listen 127.0.0.1:0 > "$receiver_out" &
receiver=$!
trap 'kill $receiver 2>/dev/null; rm -f "$receiver_out"' EXIT
# Its first line, once it listens: `listening ADDR`.
until address=$(awk '/^listening/ { print $2; exit }' "$receiver_out") && [ -n "$address" ]; do
  kill -0 $receiver 2>/dev/null || { echo "demo.sh: the webhook receiver did not start" >&2; exit 1; }
  sleep 0.1
done
echo "Notifications go to the example webhook receiver at $address; they print below."
tail -n +2 -f "$receiver_out" --pid=$receiver | sed 's/^/[webhook] /' &
target/release/aegis demo --webhook "http://$address/alerts" "$@"
