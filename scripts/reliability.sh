#!/usr/bin/env bash
# Reproduces the load, containerd-churn, hang and crash figures of RELIABILITY.md: runs the
# reliability suite (tests/reliability_*.rs, tests/crash_matrix.rs) in long mode against the real lab
# (containerd 2.1.9, docker-registry, the real ctrdiagd), one test at a time so the
# figures do not share the 2 cores, collects each test's `RELIABILITY {json}` line and
# prints the report's rows. CI runs the same tests in short mode (plain `cargo test`).
#
#   scripts/reliability.sh            long mode: 100 restarts of each containerd (1.6, 1.7,
#                                     2.1; RELIABILITY_CHURN_VERSIONS), 200 clients x
#                                     20,000 calls x 3 rounds, a burst of 40 test pulls
#   CTRDIAG_RELIABILITY=short scripts/reliability.sh    CI's sizes
#   RELIABILITY_RESTARTS=500 scripts/reliability.sh     any size the tests document
#
# Needs root and the lab (scripts/install-deps.sh). Output: target/reliability/
# (each test's log, figures.jsonl, table.md).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${RELIABILITY_OUT:-target/reliability}
mkdir -p "$out"
rm -f "$out"/reliability_*.log
export CTRDIAG_RELIABILITY=${CTRDIAG_RELIABILITY:-long}
started=$(date -u +%Y-%m-%dT%H:%MZ)
status=0
# run NAME TEST [VAR=VALUE...]: one test binary, its output in $out/NAME.log.
run() {
    local name=$1 test=$2
    shift 2
    echo "== $name ($CTRDIAG_RELIABILITY)" >&2
    if ! env "$@" cargo test --locked --features failpoints --test "$test" -- --nocapture \
        --test-threads=1 >"$out/$name.log" 2>&1; then
        echo "$name FAILED: see $out/$name.log" >&2
        status=1
    fi
}
for v in ${RELIABILITY_CHURN_VERSIONS:-1.6 1.7 2.1}; do
    run "reliability_churn_$v" reliability_churn "RELIABILITY_CONTAINERD=$v"
done
run reliability_hang reliability_hang
run reliability_load reliability_load
# The crash matrix has one size: every failpoint of every change kind (about 30 s).
run reliability_crash crash_matrix
grep -ho 'RELIABILITY {.*}' "$out"/reliability_*.log | sed 's/^RELIABILITY //' >"$out/figures.jsonl" || true

python3 - "$out/figures.jsonl" "$started" "$(nproc)" >"$out/table.md" <<'PY'
import json, sys
figs, churns, crashes = {}, [], []
for line in open(sys.argv[1]):
    f = json.loads(line)
    figs[f["suite"]] = f
    if f["suite"] == "churn":
        churns.append(f)
    if f["suite"] == "crash":
        crashes.append(f)
started, cpus = sys.argv[2], sys.argv[3]

def lat(l):
    return f'p50 {l["p50_ms"]} ms, p99 {l["p99_ms"]} ms, max {l["max_ms"]} ms (n={l["n"]})'

print(f"Run {started}, {cpus} CPUs, mode {next(iter(figs.values()), {}).get('mode', '?')}, debug build of ctrdiagd; hangs and load on containerd 2.1.9\n")
print("| what | injected / load | outcome | lost or corrupted |")
print("|---|---|---|---|")
def row(*cells):
    print("| " + " | ".join(str(c) for c in cells) + " |")

rows = {
    "churn": lambda c: row(
        f'containerd {c["containerd"]} churn',
        f'{c["restarts"]} restarts ({c["sigkill"]} SIGKILL, {c["sigterm"]} SIGTERM) in {c["seconds"]:.0f} s, {c["clients"]} clients, {c["calls"]} calls',
        f'ctrdiagd crashes: {c["daemon_crashes"]}; answered {c["answered_up"]}, clear `Unavailable` {c["answered_unavailable"]}, wrong {c["wrong"]}; '
        f'calls succeed again {lat(c["recovery_after_containerd_answers"])} after containerd answers, {c["recoveries_over_1s"]} over 1 s',
        f'test-pull images left behind: {c["test_pull_images_left_behind"]}'),
    "hang_containerd": lambda h: row(
        "containerd hangs (SIGSTOP)",
        f'status, images, test pull, diagnose at once; RPC deadline {h["rpc_deadline_ms"]//1000} s',
        f'ended saying containerd is not answering in {h["status_ms"]}, {h["images_ms"]}, {h["test_pull_ms"]}, {h["diagnose_ms"]} ms; '
        f'changes + events kept answering: {lat(h["unrelated_calls_during_hang"])}; wrong {h["wrong"]}',
        0),
    "hang_registry": lambda g: row(
        "registry accepts, never answers",
        f'test pull + diagnose, pull_timeout {g["pull_timeout_ms"]//1000} s',
        f'pull ended as cause `timeout` in {g["test_pull_ms"]} ms, diagnose in {g["diagnose_ms"]} ms; '
        f'status kept answering: {lat(g["status_during_hang"])}; wrong {g["wrong"]}',
        0),
}

def load_rows(l):
    k, b, rss, rounds = l["reads_by_kind"], l["burst"], l["rss_kib"], len(l["rounds"])
    cps = ", ".join(str(int(r["calls_per_second"])) for r in l["rounds"])
    row("load",
        f'{l["clients"]} clients (own connections) x {l["calls_per_round"]} read calls x {rounds} rounds + {l["test_pulls"]["n"]} test pulls within max_concurrent_pulls={l["max_concurrent_pulls"]}',
        f'errors {l["errors"]}; all reads {lat(l["reads"])}; status {lat(k["status"])}; images {lat(k["images"])}; changes {lat(k["changes"])}; '
        f'test pulls {lat(l["test_pulls"])}; calls/s per round: {cps}',
        0)
    row("burst beyond the limit",
        f'{b["pulls"]} test pulls at once (limit {l["max_concurrent_pulls"]})',
        f'admitted {b["admitted_and_timed_out"]} (ended as `timeout`), refused with `ResourceExhausted` {b["refused_resource_exhausted"]}, wrong {b["wrong"]}; '
        f'status during the burst: {lat(b["status_during_burst"])}',
        0)
    after = ", ".join(f"{x/1024:.1f}" for x in rss["after_each_round"])
    row("daemon memory", f"RSS across {rounds} rounds",
        f'start {rss["start"]/1024:.1f} MiB, after each round {after} MiB, after the burst {rss["after_burst"]/1024:.1f} MiB; '
        f'growth first to last round {rss["growth_first_to_last_round"]/1024:.1f} MiB',
        "-")

rows["load"] = load_rows
for c in churns:
    rows["churn"](c)
if not churns:
    row("churn", "not run or failed: see its log", "-", "-")
for c in crashes:
    row(f'crash consistency: {c["change"]}',
        f'containerd {c["containerd"]}, {c["steps"]} steps: SIGKILL at {c["kills_in_apply"]} points of the change, '
        f'then at {c["kills_in_recovery"]} of them again inside the next start\'s undo',
        f'recovered {c["kills_in_apply"]} of {c["kills_in_apply"]}: files old or new and parsing after every kill, '
        'the node as before after recovery, `changes` saying so',
        0)
if not crashes:
    row("crash consistency", "not run or failed: see its log", "-", "-")
for suite in ["hang_containerd", "hang_registry", "load"]:
    if suite in figs:
        rows[suite](figs[suite])
    else:
        row(suite, "not run or failed: see its log", "-", "-")
PY
cat "$out/table.md"
exit $status
