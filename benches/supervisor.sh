#!/usr/bin/env bash
# The supervisor under churn: SERVICES supervised services (200), each a process that
# exits at once (/bin/true), restarted 1 s after each exit (`restart: always`, a fixed
# backoff of 1s, a budget it never spends), for SECONDS_EACH seconds (60). Measures
# Aegis's own CPU (every thread, not its children's), its resident memory at the end,
# zombies among its children (sampled every second: the most at once, which a burst of
# exits makes for the moment before they are reaped, and those still there a second
# later, which would be a leak), and how the restarts were spaced:
# from each exit to the next start of the same service (the console's lifecycle
# events), against the 1 s configured.
#
#   bash benches/supervisor.sh
#   SERVICES=50 SECONDS_EACH=20 bash benches/supervisor.sh
#
# Everything it writes goes to target/bench/supervisor/. Figures: docs/benchmarks.md,
# "Supervised services under churn".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SERVICES=${SERVICES:-200}
SECONDS_EACH=${SECONDS_EACH:-60}
work=$PWD/target/bench/supervisor
cargo build --release --quiet --bin aegis
aegis=$PWD/target/release/aegis
rm -rf "$work" && mkdir -p "$work"

{
  echo "services:"
  for i in $(seq 1 "$SERVICES"); do
    cat <<EOF
  - name: s$i
    command: [/bin/true]
    restart: always
    backoff: { initial_delay: 1s, multiplier: 1, jitter: none }
    restart_budget: { max_restarts: 1000, within: 1m }
    output: { path: out/s$i.log }
EOF
  done
  echo "console: { events: [lifecycle] }"
} > "$work/aegis.yaml"

"$aegis" run "$work/aegis.yaml" > "$work/events.jsonl" 2> "$work/aegis.err" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }   # utime + stime, in ticks
ticks=$(getconf CLK_TCK)
sleep 2   # start-up is not measured
start_cpu=$(cpu)
zombies_max=0 lasting_max=0 before=""
for _ in $(seq 1 "$SECONDS_EACH"); do
  sleep 1
  now=$( (ps -o pid=,stat= --ppid "$pid" || true) | awk '$2 ~ /^Z/ { print $1 }' | sort)
  zombies=$(printf '%s' "$now" | grep -c . || true)
  lasting=$(comm -12 <(printf '%s\n' "$before") <(printf '%s\n' "$now") | grep -c . || true)
  [ "$zombies" -gt "$zombies_max" ] && zombies_max=$zombies
  [ "$lasting" -gt "$lasting_max" ] && lasting_max=$lasting
  before=$now
done
end_cpu=$(cpu)
rss_kb=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
hwm_kb=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
kill -TERM $pid
wait $pid || true
trap - EXIT

python3 - "$work/events.jsonl" "$SERVICES" "$SECONDS_EACH" \
  "$(( end_cpu - start_cpu ))" "$ticks" "$rss_kb" "$hwm_kb" "$zombies_max" "$lasting_max" <<'PYTHON'
import json, sys
from datetime import datetime
path, services, seconds, cpu_ticks, ticks, rss, hwm, zombies, lasting = sys.argv[1:]
def at(event):
    return datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
exits, gaps, starts = {}, [], 0
for line in open(path):
    event = json.loads(line)
    if event.get("event") != "lifecycle":
        continue
    service = event["service"]
    if event["change"] == "exited":
        exits[service] = at(event)
    elif event["change"] == "started":
        starts += 1
        if service in exits:
            gaps.append(at(event) - exits.pop(service))
gaps.sort()
pick = lambda p: gaps[min(len(gaps) - 1, int(len(gaps) * p / 100))]
cpu = int(cpu_ticks) / int(ticks)
print(f"| services | seconds | starts | Aegis CPU | share of a core | RSS (peak) | zombies: most at once, lasting 1 s | exit → start p50 | p99 | max |")
print(f"|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
print(f"| {services} | {seconds} | {starts:,} | {cpu:.2f} s | {100 * cpu / int(seconds):.1f} % "
      f"| {int(rss) / 1024:.1f} MB ({int(hwm) / 1024:.1f}) | {zombies}, {lasting} "
      f"| {pick(50):.3f} s | {pick(99):.3f} s | {gaps[-1]:.3f} s |")
PYTHON
