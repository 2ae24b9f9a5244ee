#!/usr/bin/env bash
# Alerts end to end, side by side with Alertmanager. One run measures:
#
#   latency     ALERTS log lines, one `write` each, SPACING_MS apart, each matching its
#               own CRITICAL pattern, so each fires its own alert: the time from a
#               line's write to the webhook receiver printing its alert (p50, p99, max).
#   throughput  ALERTS such lines in one `write`: how many notifications a second one
#               receiver gets (from the write to the last one received), and the CPU
#               time Aegis spent on them.
#
# Aegis runs `log_tail` → `log_patterns` → `alert` (default rules) → `webhook`, with
# `group_by: ['...']` so that every alert is its own notification, once with its state
# in memory and once with a `state_dir` (every change saved, fsync'd). The peer is
# Alertmanager (the notification path people run today) given the same alerts by
# `POST /api/v2/alerts`, one per request for the latency and all in one request for the
# throughput, with `group_by: ['...']` and `group_wait: 0s`: only the last hop of the
# peer's chain (mtail, Prometheus's scrape and rule evaluation come before it). The
# receiver is examples/webhook-server for both, read through a pipe.
#
#   bash benches/alerting.sh
#   ALERTS=200 bash benches/alerting.sh
#
# Needs, besides a release build (made here): python3, prometheus-alertmanager.
# Everything it writes goes to target/bench/alerting/. Figures and how to read them:
# docs/benchmarks.md, "Alerts end to end".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export ALERTS=${ALERTS:-1000}
export SPACING_MS=${SPACING_MS:-5}
for tool in python3 prometheus-alertmanager; do
  command -v "$tool" >/dev/null || { echo "alerting.sh: needs $tool" >&2; exit 1; }
done
cargo build --release --quiet --bin aegis --example webhook-server
export AEGIS_BIN=$PWD/target/release/aegis
export RECEIVER_BIN=$PWD/target/release/examples/webhook-server
export WORK=$PWD/target/bench/alerting
rm -rf "$WORK" && mkdir -p "$WORK"

exec python3 - <<'PYTHON'
import atexit, json, os, re, signal, socket, subprocess, threading, time, urllib.request

alerts = int(os.environ["ALERTS"])
spacing = int(os.environ["SPACING_MS"]) / 1000
work = os.environ["WORK"]
aegis_bin, receiver_bin = os.environ["AEGIS_BIN"], os.environ["RECEIVER_BIN"]


started = []  # every process started here, stopped however the script ends


@atexit.register
def stop_all():
    for process in started:
        if process.poll() is None:
            process.kill()


def spawn(argv, **options):
    process = subprocess.Popen(argv, **options)
    started.append(process)
    return process


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def now_us():
    return time.time_ns() // 1000


def until(condition, what, limit=60):
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"alerting.sh: timed out waiting for {what}")
        time.sleep(0.02)


def cpu_ns(pid):
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


class Receiver:
    """examples/webhook-server, its output read as it comes: each alert's description
    holds `E<id> us=<write time>`; the first arrival of each id is noted."""

    def __init__(self):
        self.process = spawn(
            [receiver_bin, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, text=True, bufsize=1)
        first = self.process.stdout.readline().split()
        assert first[0] == "listening", first
        self.url = f"http://{first[1]}/alerts"
        self.arrived = {}  # id -> latency in µs
        self.repeats = 0
        self.lock = threading.Lock()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        pattern = re.compile(r"E(\d+) us=(\d+)")
        for line in self.process.stdout:
            found = pattern.search(line)
            if not found:
                continue
            at = now_us()
            with self.lock:
                if found.group(1) in self.arrived:
                    self.repeats += 1
                else:
                    self.arrived[found.group(1)] = at - int(found.group(2))

    def count(self):
        with self.lock:
            return len(self.arrived)

    def stop(self):
        self.process.terminate()
        self.process.wait()


def aegis(name, receiver, state_dir):
    folder = f"{work}/{name}"
    os.makedirs(folder)
    log = f"{folder}/app.log"
    open(log, "w").close()
    port = free_port()
    patterns = "\n".join(
        f"      - {{name: e{i:04d}, pattern: 'E{i:04d} ', severity: CRITICAL}}"
        for i in range(alerts))
    state = "    state_dir: state\n" if state_dir else ""
    with open(f"{folder}/aegis.yaml", "w") as f:
        f.write(f"""sources:
  app: {{type: log_tail, service: bench, paths: [app.log], read_from: beginning}}
stages:
  errors:
    type: log_patterns
    inputs: [app]
    patterns:
{patterns}
  alerts:
    type: alert
    inputs: [errors]
{state}sinks:
  hook:
    type: webhook
    inputs: [alerts]
    url: {receiver.url}
    group_by: ['...']
{state}  metrics: {{type: prometheus, inputs: [app, errors, alerts], listen: '127.0.0.1:{port}'}}
""")
    process = spawn(
        [aegis_bin, "run", f"{folder}/aegis.yaml"],
        stdout=subprocess.DEVNULL, stderr=open(f"{folder}/aegis.err", "w"))

    def lines_read():
        if process.poll() is not None:
            raise SystemExit(f"alerting.sh: Aegis stopped: {open(folder + '/aegis.err').read()}")
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        except OSError:
            return -1
        return sum(float(l.split()[-1]) for l in text.splitlines()
                   if l.startswith("aegis_log_lines_total"))

    # A line no pattern matches: once Aegis has counted it, the file is followed.
    with open(log, "a") as f:
        f.write("ready\n")
    until(lambda: lines_read() == 1, f"Aegis ({name}) to follow {log}")
    return process, log


def alertmanager(receiver, mode):
    # A folder of its own each time: a notification log left from the run before would
    # hold back the same alerts.
    folder = f"{work}/alertmanager-{mode}"
    os.makedirs(folder)
    port = free_port()
    with open(f"{folder}/alertmanager.yml", "w") as f:
        f.write(f"""route:
  receiver: hook
  group_by: ['...']
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: hook
    webhook_configs:
      - url: {receiver.url}
        send_resolved: false
""")
    process = spawn(
        ["prometheus-alertmanager", f"--config.file={folder}/alertmanager.yml",
         f"--storage.path={folder}/data", f"--web.listen-address=127.0.0.1:{port}",
         "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=open(f"{folder}/alertmanager.err", "w"))

    def ready():
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready").status == 200
        except OSError:
            return False
    until(ready, "Alertmanager to be ready")

    def post(ids):
        at = now_us()
        body = json.dumps([{
            "labels": {"alertname": "LogPattern", "service": "bench", "severity": "critical",
                       "pattern": f"e{i:04d}"},
            "annotations": {"summary": "bench", "description": f"E{i:04d} us={at}"},
        } for i in ids]).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v2/alerts", data=body,
            headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request).read()
    return process, post


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


def report(tool, receiver, seconds=None, cpu=None):
    latencies = sorted(receiver.arrived.values())
    row = [tool, str(len(latencies)), str(receiver.repeats)]
    if seconds is None:
        row += [f"{percentile(latencies, p) / 1000:.1f} ms" for p in (50, 99)]
        row.append(f"{latencies[-1] / 1000:.1f} ms")
    else:
        row += [f"{seconds:.3f} s", f"{alerts / seconds:,.0f}", f"{cpu:.3f} s"]
    print("| " + " | ".join(row) + " |", flush=True)


def measure(tool, start):
    """Latency: one alert at a time. Throughput: all at once."""
    results = {}
    for mode in ("latency", "throughput"):
        receiver = Receiver()
        process, emit = start(receiver, mode)
        cpu_before = cpu_ns(process.pid)
        began = time.monotonic()
        if mode == "latency":
            for i in range(alerts):
                emit([i])
                time.sleep(spacing)
        else:
            emit(range(alerts))
        until(lambda: receiver.count() == alerts, f"{tool}: {alerts} alerts at the receiver", 120)
        seconds = time.monotonic() - began
        cpu = (cpu_ns(process.pid) - cpu_before) / 1e9
        time.sleep(0.5)  # room for a repeat, which would be counted
        results[mode] = (receiver, seconds, cpu)
        process.send_signal(signal.SIGTERM)
        process.wait()
        receiver.stop()
    return results


def aegis_case(state_dir):
    def start(receiver, mode):
        process, log = aegis(f"aegis-{'state' if state_dir else 'memory'}-{mode}", receiver, state_dir)

        def emit(ids):
            # One write for all the lines given, with the time it was made.
            at = now_us()
            text = "".join(f"ERROR payment failed E{i:04d} us={at}\n" for i in ids)
            with open(log, "a") as f:
                f.write(text)
        return process, emit
    return start


cases = [
    ("Aegis, state in memory", aegis_case(False)),
    ("Aegis, `state_dir`", aegis_case(True)),
    ("Alertmanager (POST → webhook)", alertmanager),
]
all_results = [(tool, measure(tool, start)) for tool, start in cases]

print(f"\nLatency: {alerts} alerts, one every {spacing * 1000:.0f} ms, write (or POST) to receiver\n")
print("| tool | alerts received | repeats | p50 | p99 | max |")
print("|---|---:|---:|---:|---:|---:|")
for tool, results in all_results:
    receiver, _, _ = results["latency"]
    report(tool, receiver)
print(f"\nThroughput: {alerts} alerts at once, one receiver, one notification each\n")
print("| tool | alerts received | repeats | all received after | notifications/s | CPU |")
print("|---|---:|---:|---:|---:|---:|")
for tool, results in all_results:
    receiver, seconds, cpu = results["throughput"]
    report(tool, receiver, seconds, cpu)
PYTHON
