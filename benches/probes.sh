#!/usr/bin/env bash
# Health-check cost and scheduling, Aegis against prometheus-blackbox-exporter, in one run:
#
#   1. HTTP: CPU seconds of the prober's own process per 1,000 probes, each probe a new
#      connection to a local nginx serving a small /health file.
#      Aegis: N_FAST (1,000) `http` checks at interval 1s (≈ 1,000 probes/s).
#      blackbox_exporter: module http_2xx, driven by `wrk -c8 -t2` on its /probe endpoint.
#   2. TCP: the same with `tcp` checks against blackbox's tcp_connect module (a connect to
#      the same nginx port, then close).
#   3. Scheduling: N_SLOW (2,000) `http` checks at interval 10s against the same nginx:
#      the distribution of `late` (how long after its scheduled time a tick started),
#      probes/s, Aegis CPU %, and whether every check ran once in every interval.
#
# Usage, from anywhere (needs root only to install the tools):
#   apt-get install -y nginx-light prometheus-blackbox-exporter wrk   # or nginx for nginx-light
#   cargo build --release && bash benches/probes.sh
# Environment:
#   AEGIS     the aegis binary; default target/release/aegis in this repository
#   N_FAST    checks at interval 1s in phases 1 and 2 (default 1000)
#   N_SLOW    checks at interval 10s in phase 3 (default 2000)
#   WARM      warm-up seconds before a window (default 3); MEASURE window seconds (default 20)
#   KEEP=1    keep the temporary directory (configs, raw outputs) and print its path
#
# How it measures (see the table's notes, printed at the end):
# - CPU is utime+stime of the prober's own process from /proc/PID/stat (all its threads,
#   ticks divided by `getconf CLK_TCK`), read together with the wall clock at the start
#   and end of the window. nginx, wrk and the shell are not counted.
# - Aegis (a daemon whose console sink writes one JSON line per result to a file): the
#   window opens WARM s after start; the probes counted are the results whose `time`
#   (when the tick started) falls inside the window, so CPU and count cover the same
#   interval, give or take the few probes in flight at each edge (latency ≪ 1 ms here).
#   Only results with outcome `up` are counted as probes; any other outcome is reported.
# - blackbox_exporter: warmed up by a WARM s wrk run, then the window is exactly the
#   measured wrk run (MEASURE s); the probes counted are the /probe responses that
#   say `probe_success 1` (counted by a wrk Lua script); failures are reported. Its CPU
#   includes serving the /probe HTTP request and rendering its metrics: that is the cost
#   of a probe in its model.
# - Aegis and blackbox never run at the same time. On a small machine (2 cores) nginx,
#   wrk and the prober still share cores: wrk takes a core's worth while driving
#   blackbox, so blackbox's probes/s are bounded by the machine, not by blackbox alone.
#   CPU per probe is the figure to compare, not probes/s.
# - Scheduling: the run lasts 10 + 3×10 + 2 s; results whose scheduled time
#   (`time` − `late`) falls in [start+10 s, start+40 s) are taken: `late` percentiles,
#   probes/s, and a count per check, which must be exactly 3 for every check (a missed
#   tick makes it 2). Gaps of more than 1.5 intervals between a check's consecutive
#   ticks over the whole run are counted too. CPU % is over the same 30 s.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
AEGIS=${AEGIS:-$root/target/release/aegis}
N_FAST=${N_FAST:-1000}
N_SLOW=${N_SLOW:-2000}
WARM=${WARM:-3}
MEASURE=${MEASURE:-20}

die() {
    echo "probes.sh: $*" >&2
    exit 1
}
need() {
    command -v "$1" >/dev/null ||
        die "\`$1\` not found; install it with: apt-get install -y $2"
}
log() {
    echo "== $*" >&2
}

PATH=$PATH:/usr/sbin:/sbin
need nginx "nginx-light (or nginx)"
need prometheus-blackbox-exporter prometheus-blackbox-exporter
need wrk wrk
need python3 python3
need getconf libc-bin
[[ -x $AEGIS ]] || die "no aegis binary at $AEGIS; build it with \`cargo build --release\` or set AEGIS"
[[ -r /proc/self/stat ]] || die "/proc is needed to read process CPU"
CLK_TCK=$(getconf CLK_TCK)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/aegis-probes.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "probes.sh: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Stops a process started by this script, by its id: SIGTERM, then SIGKILL after 10 s.
stop() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "probes.sh: pid $pid did not stop within 10 s of SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    local kept=()
    for i in "${pids[@]}"; do
        [[ $i == "$pid" ]] || kept+=("$i")
    done
    pids=("${kept[@]}")
}

# A TCP port on 127.0.0.1 that is free now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until 127.0.0.1:$1 accepts connections ($2: what, for the message).
wait_port() {
    python3 - "$1" "$2" <<'EOF'
import socket, sys, time
port, what = int(sys.argv[1]), sys.argv[2]
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(f"probes.sh: {what} is not listening on 127.0.0.1:{port} after 10 s")
EOF
}

# Prints "<wall clock> <utime+stime ticks>" for a process, read together.
sample() {
    python3 - "$1" <<'EOF'
import sys, time
pid = sys.argv[1]
with open(f"/proc/{pid}/stat") as f:
    stat = f.read()
now = time.time()
# The command name is in parentheses and may hold spaces: split after the last ')'.
fields = stat[stat.rindex(")") + 2:].split()
print(f"{now:.6f} {int(fields[11]) + int(fields[12])}")  # utime, stime: fields 14 and 15
EOF
}

# --- nginx: the target, one process, everything in $tmp/nginx -------------------------
mkdir -p "$tmp/nginx/html" "$tmp/nginx/logs"
printf 'ok\n' >"$tmp/nginx/html/health"
nginx_port=$(free_port)
cat >"$tmp/nginx/nginx.conf" <<EOF
# No master process: one process, running as whoever started it (no user switch).
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    default_type text/plain;
    server {
        listen 127.0.0.1:$nginx_port backlog=4096;
        root $tmp/nginx/html;
        location / { }
    }
}
EOF
log "nginx on 127.0.0.1:$nginx_port"
nginx -p "$tmp/nginx/" -e "$tmp/nginx/logs/error.log" -c "$tmp/nginx/nginx.conf" \
    >"$tmp/nginx/logs/stdout" 2>&1 &
pids+=($!)
wait_port "$nginx_port" nginx
health=http://127.0.0.1:$nginx_port/health
python3 - "$health" <<'EOF'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    assert r.status == 200, r.status
EOF

# --- Aegis --------------------------------------------------------------------------------

# Writes a config of $2 checks of type $1 (http|tcp) at interval $3 to $4.
aegis_config() {
    python3 - "$1" "$2" "$3" "$4" "$health" "127.0.0.1:$nginx_port" <<'EOF'
import sys
kind, n, interval, path, url, address = sys.argv[1:]
target = f"url: {url}" if kind == "http" else f"address: {address}"
with open(path, "w") as f:
    f.write("services:\n")
    for i in range(int(n)):
        f.write(f"  - name: svc{i}\n    health_checks:\n"
                f"      - name: {kind}\n        type: {kind}\n        {target}\n"
                f"        interval: {interval}\n        timeout: 1s\n")
EOF
}

# Runs aegis on config $2 with its console in $tmp/$1.out, and leaves in $tmp/$1.times
# the lines "<start time>", then a CPU sample after each of the sleeps $3 $4 ..., then
# stops it.
run_aegis() {
    local name=$1 config=$2 pid s
    shift 2
    python3 -c 'import time; print(f"{time.time():.6f}")' >"$tmp/$name.times"
    "$AEGIS" run "$config" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pid=$!
    pids+=("$pid")
    for s in "$@"; do
        sleep "$s"
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$tmp/$name.err" >&2
            die "aegis exited early on $config (its stderr above)"
        fi
        sample "$pid" >>"$tmp/$name.times"
    done
    stop "$pid"
}

# Phases 1 and 2, Aegis: prints one JSON summary line.
aegis_rate() {
    local name=$1 kind=$2
    aegis_config "$kind" "$N_FAST" 1s "$tmp/$name.yaml"
    log "aegis: $N_FAST $kind checks at 1s, ${WARM}s warm-up + ${MEASURE}s window"
    run_aegis "$name" "$tmp/$name.yaml" "$WARM" "$MEASURE"
    python3 - "$tmp/$name.times" "$tmp/$name.out" "$CLK_TCK" "$kind" <<'EOF'
import collections, datetime, json, sys
times, out, hz, kind = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
lines = open(times).read().split("\n")
(t0, c0), (t1, c1) = [(float(a), int(b)) for a, b in (l.split() for l in lines[1:3])]
outcomes, late, other = collections.Counter(), [], collections.Counter()
for line in open(out):
    e = json.loads(line)
    if e.get("event") != "probe_result":
        continue
    t = datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp()
    if t0 <= t < t1:
        outcomes[e["outcome"]] += 1
        late.append(e["late"])
        if e["outcome"] != "up":
            other[f'{e["outcome"]}: {e.get("reason")}: {e.get("detail")}'] += 1
late.sort()
cpu = (c1 - c0) / hz
print(json.dumps({
    "tool": "aegis", "kind": kind, "window": t1 - t0, "cpu": cpu,
    "probes": outcomes["up"], "failed": sum(outcomes.values()) - outcomes["up"],
    "late_p99": late[int(0.99 * (len(late) - 1))] if late else None,
    "errors": other.most_common(3),
}))
EOF
}

# --- blackbox_exporter --------------------------------------------------------------------
cat >"$tmp/blackbox.yml" <<'EOF'
modules:
  http_2xx:
    prober: http
    timeout: 1s
    http:
      preferred_ip_protocol: ip4
  tcp_connect:
    prober: tcp
    timeout: 1s
    tcp:
      preferred_ip_protocol: ip4
EOF
# Counts the /probe responses that report success, in every wrk thread.
cat >"$tmp/count.lua" <<'EOF'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; failed = 0 end
function response(status, headers, body)
  if status == 200 and body:find("\nprobe_success 1\n", 1, true) then
    ok = ok + 1
  else
    failed = failed + 1
  end
end
function done(summary, latency, requests)
  local o, f = 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); f = f + t:get("failed") end
  io.write(string.format("PROBES ok=%d failed=%d\n", o, f))
end
EOF

# Phases 1 and 2, blackbox: prints one JSON summary line.
blackbox_rate() {
    local name=$1 kind=$2 module=$3 target=$4 port pid url
    port=$(free_port)
    log "blackbox_exporter on 127.0.0.1:$port: $module, wrk -c8 -t2, ${WARM}s warm-up + ${MEASURE}s window"
    prometheus-blackbox-exporter --config.file="$tmp/blackbox.yml" \
        --web.listen-address="127.0.0.1:$port" --log.level=warn \
        >"$tmp/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    wait_port "$port" blackbox_exporter
    url="http://127.0.0.1:$port/probe?module=$module&target=$target"
    wrk -c8 -t2 -d"${WARM}s" -s "$tmp/count.lua" "$url" >"$tmp/$name.warm" 2>&1
    sample "$pid" >"$tmp/$name.times"
    wrk -c8 -t2 -d"${MEASURE}s" -s "$tmp/count.lua" "$url" >"$tmp/$name.wrk" 2>&1
    sample "$pid" >>"$tmp/$name.times"
    kill -0 "$pid" 2>/dev/null || die "blackbox_exporter exited during the run: $(cat "$tmp/$name.log")"
    stop "$pid"
    python3 - "$tmp/$name.times" "$tmp/$name.wrk" "$CLK_TCK" "$kind" <<'EOF'
import json, re, sys
times, wrk, hz, kind = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
(t0, c0), (t1, c1) = [(float(a), int(b)) for a, b in (l.split() for l in open(times))]
text = open(wrk).read()
m = re.search(r"PROBES ok=(\d+) failed=(\d+)", text)
r = re.search(r"(\d+) requests in", text)
if not m or not r:
    sys.exit(f"probes.sh: cannot read wrk's output:\n{text}")
errors = re.findall(r"Socket errors:.*|Non-2xx.*", text)
print(json.dumps({
    "tool": "blackbox", "kind": kind, "window": t1 - t0, "cpu": (c1 - c0) / hz,
    "probes": int(m[1]), "failed": int(m[2]), "requests": int(r[1]), "late_p99": None,
    "errors": errors,
}))
EOF
}

# --- phase 3: scheduling -----------------------------------------------------------------
schedule() {
    local name=sched
    aegis_config http "$N_SLOW" 10s "$tmp/$name.yaml"
    log "aegis: $N_SLOW http checks at 10s, 42 s run (window: 10 s to 40 s)"
    # Samples at 10 s and 40 s after start; stopped at 42 s so that the ticks scheduled
    # before 40 s have finished and been printed.
    run_aegis "$name" "$tmp/$name.yaml" 10 30 2
    python3 - "$tmp/$name.times" "$tmp/$name.out" "$CLK_TCK" "$N_SLOW" <<'EOF'
import collections, datetime, json, sys
times, out, hz, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
lines = open(times).read().split()
start = float(lines[0])
(s0, c0), (s1, c1) = (float(lines[1]), int(lines[2])), (float(lines[3]), int(lines[4]))
lo, hi, interval = start + 10, start + 40, 10.0
per_check, late, outcomes, ticks = collections.Counter(), [], collections.Counter(), collections.defaultdict(list)
for line in open(out):
    e = json.loads(line)
    if e.get("event") != "probe_result":
        continue
    t = datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp()
    scheduled = t - e["late"]
    key = (e["service"], e["check"])
    ticks[key].append(scheduled)
    if lo <= scheduled < hi:
        per_check[key] += 1
        late.append(e["late"])
        outcomes[e["outcome"]] += 1
late.sort()
pct = lambda q: late[min(len(late) - 1, int(q * len(late)))] if late else None
counts = collections.Counter(per_check.get((f"svc{i}", "http"), 0) for i in range(n))
gaps = sum(1 for ts in ticks.values() for a, b in zip(sorted(ts), sorted(ts)[1:]) if b - a > 1.5 * interval)
print(json.dumps({
    "results": len(late), "expected": 3 * n, "rate": len(late) / (hi - lo),
    "p50": pct(0.50), "p99": pct(0.99), "max": late[-1] if late else None,
    "cpu_pct": 100 * (c1 - c0) / hz / (s1 - s0), "sample_window": s1 - s0,
    "checks_per_count": dict(sorted(counts.items())), "gaps": gaps,
    "not_up": sum(outcomes.values()) - outcomes["up"],
}))
EOF
}

# --- run ---------------------------------------------------------------------------------
echo "aegis: $AEGIS ($("$AEGIS" --version 2>/dev/null || echo 'version unknown'))" >&2
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
aegis_rate aegis_http http >"$tmp/r1.json"
blackbox_rate bb_http http http_2xx "$health" >"$tmp/r2.json"
aegis_rate aegis_tcp tcp >"$tmp/r3.json"
blackbox_rate bb_tcp tcp tcp_connect "127.0.0.1:$nginx_port" >"$tmp/r4.json"
schedule >"$tmp/r5.json"

python3 - "$tmp"/r{1,2,3,4,5}.json "$(nproc)" "$N_FAST" "$N_SLOW" <<'EOF'
import json, sys
*files, cores, n_fast, n_slow = sys.argv[1:]
rows = [json.load(open(f)) for f in files[:4]]
s = json.load(open(files[4]))
ms = lambda x: f"{1000 * x:.2f} ms"
per_k = lambda r: 1000 * r["cpu"] / r["probes"] if r["probes"] else float("nan")
print(f"\n### Probe cost: CPU of the prober's own process ({cores} cores, shared with nginx and wrk)\n")
print("| probe | prober | load | window s | probes ok | failed | probes/s | CPU s | CPU s per 1,000 | late p99 |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    load = f"{n_fast} checks @1s" if r["tool"] == "aegis" else "wrk -c8 -t2"
    print(f'| {r["kind"]} | {r["tool"]} | {load} | {r["window"]:.1f} | {r["probes"]:,} | {r["failed"]:,} '
          f'| {r["probes"] / r["window"]:,.0f} | {r["cpu"]:.2f} | {per_k(r):.3f} '
          f'| {"–" if r["late_p99"] is None else ms(r["late_p99"])} |')
print()
for kind, a, b in (("http", rows[0], rows[1]), ("tcp", rows[2], rows[3])):
    print(f"- {kind}: aegis / blackbox CPU per probe = {per_k(a) / per_k(b):.3f} "
          f"(blackbox costs {per_k(b) / per_k(a):.1f}× as much; target ≤ 0.2)")
for r in rows:
    if r["errors"]:
        print(f'- {r["tool"]} {r["kind"]}: {r["errors"]}')
print(f"\n### Scheduling: {n_slow} http checks @10s, window 10–40 s after start\n")
print("| results | expected | probes/s | late p50 | late p99 | late max | aegis CPU % | checks with ≠3 ticks | gaps >1.5 intervals | not up |")
print("|---|---|---|---|---|---|---|---|---|---|")
wrong = sum(v for k, v in s["checks_per_count"].items() if k != "3")
print(f'| {s["results"]:,} | {s["expected"]:,} | {s["rate"]:.1f} | {ms(s["p50"])} | {ms(s["p99"])} '
      f'| {ms(s["max"])} | {s["cpu_pct"]:.1f} | {wrong} | {s["gaps"]} | {s["not_up"]} |')
print(f'\nchecks by ticks in the window: {s["checks_per_count"]}')
EOF
