#!/usr/bin/env bash
# Side by side on one log file: `aegis run --once` (counting matches per pattern)
# against ripgrep and GNU grep (counting lines that match any pattern), and, opt-in,
# mtail (counting lines only). Counts are checked before anything is timed.
# See docs/benchmarks.md for what the figures mean.
#
# Usage, from the repository root:
#   bash benches/compare.sh [CORPUS [SIZE_MiB]]
#     CORPUS    the log to search; default target/bench/service.log, generated with
#               ../shared/peers/gen_log.py (seed 42) if it does not exist
#     SIZE_MiB  size of a generated corpus; default 1024
#   Environment: WITH_MTAIL=1 adds mtail (30 to 80 s a run on 1 GB; MTAIL_RUNS runs,
#   default 1; each killed after MTAIL_TIMEOUT seconds, default 900).
#
# Writes everything it uses or measures to target/bench/.
set -euo pipefail

corpus=${1:-target/bench/service.log}
size_mib=${2:-1024}
out=target/bench
generator=../shared/peers/gen_log.py

die() {
    echo "compare.sh: $*" >&2
    exit 1
}
need() {
    command -v "$1" >/dev/null || die "\`$1\` not found; install it with: apt-get install -y $2"
}
# Quotes a word for the shell that hyperfine runs each command in.
q() {
    printf "'%s'" "${1//\'/\'\\\'\'}"
}

[[ -f Cargo.toml && -d src ]] || die "run me from the repository root: bash benches/compare.sh"
need python3 python3
need rg ripgrep
need hyperfine hyperfine
need grep grep
mkdir -p "$out"

# The 20 patterns of ../shared/peers/patterns.txt (regex crate syntax), with names.
names=(
    out_of_memory connection_refused timeout go_panic fatal
    segfault http_5xx status_5xx deadlock disk_full
    too_many_open_files java_exception critical connection_reset certificate
    oom_killer upstream database probe_failed python_traceback
)
patterns=(
    '(?i)(out of memory|java\.lang\.OutOfMemoryError)'
    '(?i)connection refused'
    '(?i)\b(timeout|timed out)\b'
    '^panic:'
    '\bFATAL\b'
    'segfault at [0-9a-f]+ ip [0-9a-f]+'
    'HTTP/[0-9.]+" 5[0-9]{2} [0-9]'
    '\bstatus=5\d{2}\b'
    '(?i)deadlock (detected|found)'
    '(?i)no space left on device'
    '(?i)too many open files'
    'java\.lang\.(NullPointerException|IllegalStateException|StackOverflowError)'
    '\b(CRIT|CRITICAL|EMERG)\b'
    '(?i)connection reset by peer'
    '(?i)x509: certificate (has expired|signed by unknown authority)'
    'Killed process \d+ \(\S+\)'
    '(?i)upstream (prematurely closed|timed out)'
    'ERROR .*(SQLException|could not connect to server)'
    '(?i)(health ?check|readiness probe|liveness probe) failed'
    'Traceback \(most recent call last\)'
)

# --- The corpus ------------------------------------------------------------------
if [[ ! -f $corpus ]]; then
    [[ -f $generator ]] || die "no corpus at $corpus and no generator at $generator"
    echo "== generating $corpus ($size_mib MiB, seed 42)"
    python3 "$generator" "$corpus" "$size_mib" 42
fi
corpus_abs=$(realpath "$corpus")
bytes=$(stat -c %s "$corpus")
lines=$(wc -l <"$corpus")
echo "== corpus: $corpus, $bytes bytes, $lines lines"

# --- Aegis and its configuration -----------------------------------------------------
echo "== cargo build --release"
cargo build --release --quiet
aegis=${CARGO_TARGET_DIR:-target}/release/aegis

config=$out/bench.yaml
{
    echo "# Written by benches/compare.sh: the 20 patterns over one file."
    echo "logs:"
    echo "  files:"
    echo "    - service: bench"
    echo "      path: '${corpus_abs//\'/\'\'}'"
    echo "  patterns:"
    for i in "${!patterns[@]}"; do
        echo "    - name: ${names[i]}"
        echo "      pattern: '${patterns[i]//\'/\'\'}'"
        echo "      severity: WARNING"
    done
} >"$config"

# Each pattern in its own group, so that a leading (?i) stays scoped to it.
union=$(printf '|(?:%s)' "${patterns[@]}")
union=${union:1}

# The same patterns in POSIX ERE for GNU grep -E, which knows neither (?i), \d nor \S.
printf '%s\n' "${patterns[@]}" | python3 -c '
import sys

def ere(p):
    r"""(?i) becomes [xX] pairs, \d [0-9], \S [^[:space:]]; \b and escaped
    punctuation stay. Anything else fails rather than being translated wrongly."""
    ci = p.startswith("(?i)")
    body, out, in_class, i = p[4:] if ci else p, [], False, 0
    if "(?" in body:
        sys.exit(f"no ERE translation for a flag or special group in {p!r}")
    while i < len(body):
        c = body[i]
        if c == "\\":
            e = body[i + 1]
            if in_class:
                sys.exit(f"no ERE translation for an escape in a class in {p!r}")
            elif e == "d":
                out.append("[0-9]")
            elif e == "S":
                out.append("[^[:space:]]")
            elif e == "b" or not e.isalnum():
                out.append("\\" + e)
            else:
                sys.exit(f"no ERE translation for \\{e} in {p!r}")
            i += 2
            continue
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        if ci and c.isalpha():
            if in_class:
                sys.exit(f"no ERE translation for (?i) with a class in {p!r}")
            out.append(f"[{c.lower()}{c.upper()}]")
        else:
            out.append(c)
        i += 1
    return "".join(out)

for line in sys.stdin.read().splitlines():
    print(ere(line))
' >"$out/patterns.ere"

# --- Correctness first ---------------------------------------------------------------
echo "== checking counts"
"$aegis" run --once --format json "$config" >"$out/aegis.json"
mismatches=0
aegis_lines=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["lines"])' "$out/aegis.json")
if [[ $aegis_lines != "$lines" ]]; then
    echo "   lines: aegis read $aegis_lines, wc -l counts $lines" >&2
    mismatches=$((mismatches + 1))
fi
printf '   %10s %10s  %s\n' aegis rg pattern
for i in "${!patterns[@]}"; do
    # Patterns absent from the summary matched nothing.
    got=$(python3 -c '
import json, sys
report = json.load(open(sys.argv[1]))
print(sum(p["matches"] for p in report["patterns"] if p["name"] == sys.argv[2]))
' "$out/aegis.json" "${names[i]}")
    want=$(rg -c -e "${patterns[i]}" -- "$corpus" || true)
    want=${want:-0}
    mark=""
    if [[ $got != "$want" ]]; then
        mark="  <-- differs"
        mismatches=$((mismatches + 1))
    fi
    printf '   %10s %10s  %s%s\n' "$got" "$want" "${patterns[i]}" "$mark"
done
rg_any=$(rg -c -e "$union" -- "$corpus" || true)
grep_any=$(LC_ALL=C grep -cE -f "$out/patterns.ere" -- "$corpus" || true)
echo "   lines matching any pattern: rg $rg_any, grep $grep_any"
if [[ $rg_any != "$grep_any" ]]; then
    echo "   grep's ERE translation ($out/patterns.ere) disagrees with rg" >&2
    mismatches=$((mismatches + 1))
fi
[[ $mismatches == 0 ]] || die "$mismatches count(s) differ; not timing"
echo "   all counts agree"

# --- Timing --------------------------------------------------------------------------
# Prints, per command of a hyperfine JSON export, the median time, the throughput and
# the ratio of its time to the first command's (aegis), all from that one run.
summarize() {
    python3 - "$1" "$bytes" <<'EOF'
import json, statistics, sys
results = json.load(open(sys.argv[1]))["results"]
size = int(sys.argv[2])
base = statistics.median(results[0]["times"])
print(f"| command | median s | MB/s | time / aegis |")
print(f"|---|---:|---:|---:|")
for r in results:
    t = statistics.median(r["times"])
    print(f"| {r['command']} | {t:.3f} | {size / t / 1e6:.0f} | {t / base:.2f} |")
EOF
}

echo "== timing (hyperfine -w1 -r5, warm page cache)"
# Each command writes its output to a file: GNU grep stops at the first match when
# its output is /dev/null (where hyperfine sends it), which would time nothing.
hyperfine -w1 -r5 --export-json "$out/hyperfine.json" \
    -n "aegis run --once" "$(q "$aegis") run --once $(q "$config") >$(q "$out/aegis.out")" \
    -n "rg -c (union)" "rg -c -e $(q "$union") -- $(q "$corpus") >$(q "$out/rg.out")" \
    -n "LC_ALL=C grep -cE" \
    "LC_ALL=C grep -cE -f $(q "$out/patterns.ere") -- $(q "$corpus") >$(q "$out/grep.out")"
[[ $(<"$out/rg.out") == "$rg_any" && $(<"$out/grep.out") == "$grep_any" ]] ||
    die "a timed command printed another count than when checked"
summarize "$out/hyperfine.json"

if [[ ${WITH_MTAIL:-0} == 1 ]]; then
    need mtail mtail
    mkdir -p "$out/mtail"
    printf 'counter lines_total\n\n/$/ {\n  lines_total++\n}\n' >"$out/mtail/lines.mtail"
    runs=${MTAIL_RUNS:-1}
    echo "== timing mtail (hyperfine -r$runs, with aegis in the same run)"
    # Port 0 and logs on stderr: no fixed port taken, no glog files left in /tmp.
    hyperfine -r "$runs" --export-json "$out/hyperfine-mtail.json" \
        -n "aegis run --once" "$(q "$aegis") run --once $(q "$config") >$(q "$out/aegis.out")" \
        -n "mtail --one_shot (count lines)" \
        "timeout ${MTAIL_TIMEOUT:-900} mtail --one_shot --one_shot_format json --logs $(q "$corpus") --progs $(q "$out/mtail") --address 127.0.0.1 --port 0 --logtostderr >$(q "$out/mtail.json")"
    mtail_lines=$(python3 -c '
import json, sys
print(json.load(open(sys.argv[1]))["lines_total"][0]["LabelValues"][0]["Value"]["Value"])
' "$out/mtail.json")
    echo "   mtail counted $mtail_lines lines (wc -l: $lines)"
    summarize "$out/hyperfine-mtail.json"
else
    echo "== mtail skipped (WITH_MTAIL=1 to add it; 30 to 80 s a run on 1 GB)"
fi
