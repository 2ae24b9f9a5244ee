#!/usr/bin/env bash
# Runs every test, from any folder: first installs what the tests call that a fresh
# machine lacks (it has only the Rust toolchain), then `cargo test` (arguments are
# passed on: `bash scripts/test.sh tail::` runs the tail's tests).
#
# Debian packages the tests use: grep (pattern counts are checked against grep -c),
# procps (kill, to send SIGTERM to the daemon under test), monitoring-plugins-basic
# (real Nagios plugins, check_tcp and check_http, run as script checks), prometheus
# (promtool checks the /metrics output; a real Prometheus server scrapes it) and
# prometheus-alertmanager (a real Alertmanager 0.25 takes and resolves the alertmanager
# sink's alerts: src/sinks/alertmanager/tests.rs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(grep procps monitoring-plugins-basic prometheus prometheus-alertmanager)
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ] && ! command -v apt-get >/dev/null 2>&1; then
  # Not Debian: the tools may come another way; a test that misses one says which.
  echo "test.sh: no apt-get; the tests call what Debian packages as ${missing[*]}" >&2
elif [ "${#missing[@]}" -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

cargo test "$@"
