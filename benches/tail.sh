#!/usr/bin/env bash
# Following a live log, side by side. One run measures, each tool alone on the machine:
#
#   cpu      CPU time (all threads, from /proc) that Aegis, mtail and `tail -F | grep -c`
#            spend following one file that log-writer appends to for SECONDS_EACH
#            seconds, at each rate of RATES lines/s, one write per line and 100 lines
#            per write; each tool must count the same matches as grep on the file.
#   latency  Aegis's time from a line's write to its match on standard output
#            (p50, p99, max), at the same rates and batch sizes.
#   files    500 files, each appended to 0.2 times a second: Aegis's CPU (share of one
#            core) and resident memory.
#   idle     the resident memory of 10,000 followed files that are not written to, per
#            file (against Aegis following none).
#
#   bash benches/tail.sh                       # everything
#   ONLY="cpu latency" RATES="1000 10000" SECONDS_EACH=5 bash benches/tail.sh
#   AEGIS_BIN=path/to/other/aegis ONLY=cpu bash benches/tail.sh   # another build
#
# Needs, besides a release build (made here): mtail, python3, curl.
# Everything it writes goes to target/bench/tail/. Figures and how to read them:
# docs/benchmarks.md, "Following a live log".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_EACH=${SECONDS_EACH:-10}
RATES=${RATES:-"1000 10000 200000"}
BATCHES=${BATCHES:-"1 100"}
ONLY=${ONLY:-"cpu latency files idle"}
work=target/bench/tail
patterns='OutOfMemoryError|connection refused'

for tool in mtail python3 curl; do
  command -v "$tool" >/dev/null || { echo "tail.sh: needs $tool" >&2; exit 1; }
done
cargo build --release --quiet --bin aegis --example log-writer
# AEGIS_BIN=path/to/aegis measures another build of Aegis (an older one, say).
aegis=${AEGIS_BIN:-$PWD/target/release/aegis}
writer=$PWD/target/release/examples/log-writer
rm -rf "$work" && mkdir -p "$work/mtail" "$work/many" "$work/idle"
work=$PWD/$work
log=$work/app.log
# Whatever happens, nothing this script started outlives it (a pkill that finds nothing
# is no failure: without `set +e` it would end the trap, and the script, with status 1).
trap 'set +e; pkill -f "$aegis run $work"; pkill -f "mtail --progs $work"; pkill -f "tail -n \+1 -F $log"; true' EXIT

calc() { awk "BEGIN { printf \"%.1f\", $1 }"; }
calc3() { awk "BEGIN { printf \"%.3f\", $1 }"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The pipeline Aegis runs: tail, the two patterns, metrics (and matches on the console
# for the latency runs). $1: paths, $2: metrics port, $3: sinks to add.
aegis_config() {
  cat <<EOF
sources:
  app: {type: log_tail, service: bench, paths: [$1], read_from: beginning}
stages:
  errors:
    type: log_patterns
    inputs: [app]
    patterns:
      - {name: oom, pattern: 'OutOfMemoryError', severity: CRITICAL}
      - {name: refused, pattern: 'connection refused', severity: WARNING}
sinks:
  metrics: {type: prometheus, inputs: [app, errors], listen: '127.0.0.1:$2'}
${3:-}
EOF
}
cat > "$work/mtail/bench.mtail" <<'EOF'
counter oom
counter refused
/OutOfMemoryError/ {
  oom++
}
/connection refused/ {
  refused++
}
EOF

# Waits (at most 60 s) until `$@` succeeds.
until_true() {
  local deadline=$((SECONDS + 60))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || { echo "tail.sh: timed out: $*" >&2; return 1; }
    sleep 0.05
  done
}

metric_sum() { # port, metric name: the sum of its series
  curl -s "127.0.0.1:$1/metrics" | awk -v m="$2" '$1 ~ "^"m"([{]|$)" { s += $2 } END { printf "%d", s }'
}
file_lines() { wc -l < "$log" | tr -d ' '; }
file_matches() { grep -c -E "$patterns" "$log" || true; }
aegis_caught_up() { [ "$(metric_sum "$1" aegis_log_lines_total)" = "$(file_lines)" ]; }
mtail_caught_up() { [ "$(metric_sum "$1" oom)" -gt 0 ] && [ "$(( $(metric_sum "$1" oom) + $(metric_sum "$1" refused) ))" = "$(file_matches)" ]; }
tail_caught_up() { # the offset of tail's descriptor of the log is the file's size
  local pid=$1 fd
  for fd in /proc/"$pid"/fd/*; do
    if [ "$(readlink "$fd")" = "$log" ]; then
      [ "$(awk '/^pos:/ {print $2}' /proc/"$pid"/fdinfo/"${fd##*/}")" = "$(stat -c %s "$log")" ]
      return
    fi
  done
  return 1
}

# CPU time, in nanoseconds, of every thread of the processes $@ (schedstat: exact,
# where /proc/PID/stat counts in hundredths of a second).
cpu_ns() {
  local pid total=0 task
  for pid in "$@"; do
    for task in /proc/"$pid"/task/*/schedstat; do
      total=$((total + $(cut -d' ' -f1 "$task" 2>/dev/null || echo 0)))
    done
  done
  echo "$total"
}

# The processes a tool runs as.
pids_of() { # tool
  case $1 in
    aegis) pgrep -f "^$aegis run $work/aegis.yaml" ;;
    mtail) pgrep -f "^mtail --progs $work/mtail" ;;
    tail-grep) pgrep -f "^tail -n \+1 -F $log"; pgrep -f "^grep -c -E $patterns" ;;
  esac
}

tail_grep_started() { [ "$(pids_of tail-grep | wc -l)" = 2 ]; }

caught_up() { # tool port
  case $1 in
    aegis) aegis_caught_up "$2" ;;
    mtail) mtail_caught_up "$2" ;;
    tail-grep) tail_caught_up "$(pgrep -f "^tail -n \+1 -F $log")" ;;
  esac
}

# One tool following the log while the writer writes; prints the CPU seconds it used
# from the writer's start until it had read everything. Start-up is not counted, nor
# the check that it has caught up (a scrape, for Aegis and mtail); a check that finds
# it behind is counted, and so is the time it takes to catch up.
follow() { # tool rate batch
  local tool=$1 rate=$2 batch=$3 port pids before after
  : > "$log"
  port=$(free_port)
  case $tool in
    aegis)
      aegis_config "$log" "$port" > "$work/aegis.yaml"
      "$aegis" run "$work/aegis.yaml" 2> "$work/aegis.err" &
      until_true curl -sf "127.0.0.1:$port/healthz" -o /dev/null ;;
    mtail)
      mtail --progs "$work/mtail" --logs "$log" --address 127.0.0.1 --port "$port" \
        --logtostderr 2> "$work/mtail.err" &
      until_true curl -sf "127.0.0.1:$port/metrics" -o /dev/null ;;
    tail-grep)
      tail -n +1 -F "$log" 2>/dev/null | grep -c -E "$patterns" > "$work/grep.count" &
      until_true tail_grep_started ;;
  esac
  pids=$(pids_of "$tool")
  # shellcheck disable=SC2086 # a list of pids
  before=$(cpu_ns $pids)
  "$writer" "$log" --lines-per-second "$rate" --batch "$batch" --seconds "$SECONDS_EACH" \
    --rotate-every 0 2>> "$work/writer.err"
  # shellcheck disable=SC2086
  until after=$(cpu_ns $pids); caught_up "$tool" "$port"; do sleep 0.1; done
  # grep prints its count when tail, its input, ends.
  kill -TERM "${pids%%$'\n'*}"
  wait || true
  if [ "$tool" = tail-grep ] && [ "$(cat "$work/grep.count")" != "$(file_matches)" ]; then
    echo "tail.sh: grep counted $(cat "$work/grep.count"), the file has $(file_matches)" >&2
    exit 1
  fi
  calc3 "($after - $before) / 1e9"
}

if [[ " $ONLY " == *" cpu "* ]]; then
  echo "## CPU while following ($SECONDS_EACH s of writing per run; CPU seconds, and each tool's ratio to Aegis)"
  printf '%-9s %-6s %8s %8s %10s %12s %12s\n' rate batch aegis mtail tail-grep mtail/aegis tailgrep/aegis
  for rate in $RATES; do
    for batch in $BATCHES; do
      a=$(follow aegis "$rate" "$batch")
      m=$(follow mtail "$rate" "$batch")
      t=$(follow tail-grep "$rate" "$batch")
      printf '%-9s %-6s %8s %8s %10s %12s %12s\n' "$rate" "$batch" "$a" "$m" "$t" \
        "$(calc "$m / $a")" "$(calc "$t / $a")"
    done
  done
fi

if [[ " $ONLY " == *" latency "* ]]; then
  cat > "$work/latency.py" <<'EOF'
import json, sys, time
seen = []
# Said once the reader runs: a line it reads late because it was still starting would
# count against Aegis.
open(sys.argv[1], "w").close()
for line in sys.stdin:
    now = time.time_ns() // 1000
    try:
        event = json.loads(line)
    except ValueError:
        continue
    text = event.get("line", "")
    if event.get("event") == "log_match" and " us=" in text:
        seen.append(now - int(text.rsplit(" us=", 1)[1]))
seen.sort()
if seen:
    at = lambda q: seen[min(len(seen) - 1, int(q * len(seen)))] / 1000
    print(f"{len(seen)} {at(0.5):.1f} {at(0.99):.1f} {seen[-1] / 1000:.1f}")
else:
    print("0 - - -")
EOF
  echo "## Write-to-event latency of Aegis (ms; a match's line carries its write time)"
  printf '%-9s %-6s %8s %8s %8s %8s\n' rate batch matches p50 p99 max
  for rate in $RATES; do
    for batch in $BATCHES; do
      : > "$log"
      port=$(free_port)
      aegis_config "$log" "$port" "  out: {type: console, inputs: [errors]}" > "$work/aegis.yaml"
      rm -f "$work/latency.ready"
      "$aegis" run "$work/aegis.yaml" 2> "$work/aegis.err" \
        | python3 -u "$work/latency.py" "$work/latency.ready" > "$work/latency.txt" &
      until_true curl -sf "127.0.0.1:$port/healthz" -o /dev/null
      until_true test -e "$work/latency.ready"
      "$writer" "$log" --lines-per-second "$rate" --batch "$batch" --seconds "$SECONDS_EACH" \
        --rotate-every 0 2>> "$work/writer.err"
      until_true aegis_caught_up "$port"
      pkill -TERM -f "$aegis run $work/aegis.yaml"
      wait
      read -r count p50 p99 max < "$work/latency.txt"
      [ "$count" = "$(file_matches)" ] || { echo "tail.sh: $count matches, the file has $(file_matches)" >&2; exit 1; }
      printf '%-9s %-6s %8s %8s %8s %8s\n' "$rate" "$batch" "$count" "$p50" "$p99" "$max"
    done
  done
fi

# Aegis following everything in $1 (read from the end) until $2 succeeds: its pid.
start_following() {
  port=$(free_port)
  aegis_config "'$1/*.log'" "$port" | sed 's/read_from: beginning/read_from: end/' > "$work/aegis.yaml"
  "$aegis" run "$work/aegis.yaml" 2> "$work/aegis.err" &
  until_true curl -sf "127.0.0.1:$port/healthz" -o /dev/null
}
rss_kib() { awk '/^VmRSS:/ {print $2}' /proc/"$1"/status; }
open_files() { ls -l /proc/"$1"/fd 2>/dev/null | grep -c -F "$2/" || true; }
has_open_files() { [ "$(open_files "$1" "$2")" -ge "$3" ]; } # pid folder count
counted_lines() { [ "$(metric_sum "$1" aegis_log_lines_total)" = "$2" ]; } # port lines

if [[ " $ONLY " == *" files "* ]]; then
  echo "## 500 files, each appended to 0.2 times a second ($SECONDS_EACH s)"
  for n in $(seq 1 500); do : > "$work/many/f$n.log"; done
  start_following "$work/many"
  pid=$(pgrep -f "$aegis run $work/aegis.yaml")
  until_true has_open_files "$pid" "$work/many" 500
  before=$(awk '{print $14 + $15}' /proc/"$pid"/stat)
  python3 - "$work/many" "$SECONDS_EACH" <<'EOF'
import os, random, sys, time
folder, seconds = sys.argv[1], float(sys.argv[2])
start = time.monotonic()
n = 0
while time.monotonic() - start < seconds:
    with open(os.path.join(folder, f"f{random.randint(1, 500)}.log"), "a") as f:
        f.write(f"{time.time():.6f} INFO appended line {n}\n")
    n += 1
    time.sleep(max(0.0, start + n / 100 - time.monotonic()))
EOF
  after=$(awk '{print $14 + $15}' /proc/"$pid"/stat)
  lines=$(cat "$work"/many/*.log | wc -l)
  until_true counted_lines "$port" "$lines"
  ticks=$(getconf CLK_TCK)
  printf 'CPU: %s %% of a core; resident: %s KiB for 500 files; %s lines appended\n' \
    "$(calc "($after - $before) * 100 / $ticks / $SECONDS_EACH")" "$(rss_kib "$pid")" "$lines"
  kill -TERM "$pid"; wait
fi

if [[ " $ONLY " == *" idle "* ]]; then
  echo "## Memory of idle followed files"
  mkdir -p "$work/none"
  start_following "$work/none"
  pid=$(pgrep -f "$aegis run $work/aegis.yaml")
  base=$(rss_kib "$pid")
  kill -TERM "$pid"; wait
  for n in $(seq 1 10000); do echo "line $n" > "$work/idle/f$n.log"; done
  start_following "$work/idle"
  pid=$(pgrep -f "$aegis run $work/aegis.yaml")
  until_true has_open_files "$pid" "$work/idle" 10000
  full=$(rss_kib "$pid")
  printf 'resident: %s KiB following nothing, %s KiB following 10,000 files: %s KiB per file\n' \
    "$base" "$full" "$(calc "($full - $base) / 10000")"
  kill -TERM "$pid"; wait
fi
