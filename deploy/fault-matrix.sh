#!/usr/bin/env bash
# Runs the fault matrix (Tests/FTCPLabTests/FaultMatrixTests.swift) N times on the lab and
# summarises it per row: trials, failures, and the client-visible stall (p50, p99, max).
#
#   sudo deploy/fault-matrix.sh [N] [FILTER]     N rounds (default 20); FILTER narrows the rows,
#                                                e.g. FaultMatrixTests/testPrimaryBridgeKilled
#
# Needs the release build and the test build (deploy/test.sh makes both). Every round brings
# a fresh lab up for each row and takes it down after. Results: one JSON line per row and
# round in /tmp/ftcp-fault-matrix-<time>/rows.jsonl, the summary on standard output.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-20}
filter=${2:-FaultMatrixTests}
[[ $(id -u) -eq 0 ]] || { echo "fault-matrix: run as root (the lab needs network namespaces)" >&2; exit 1; }
out=$(mktemp -d /tmp/ftcp-fault-matrix-XXXXXX)
results=$out/rows.jsonl
: >"$results"
failures=0
for round in $(seq 1 "$rounds"); do
    echo "fault-matrix: round $round of $rounds"
    if ! FTCP_FAULT_MATRIX_RESULTS=$results swift test --skip-build --filter "$filter" >"$out/round-$round.log" 2>&1; then
        failures=$((failures + 1))
        echo "fault-matrix: round $round had failures (see $out/round-$round.log):"
        grep -E "error: |failed \(" "$out/round-$round.log" | head -20 || true
    fi
done
python3 - "$results" "$out" <<'PY'
import json, sys, collections, glob, re
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    entry = json.loads(line)
    rows[entry["row"]].append(entry["stall_ms"])
failed = collections.Counter()
for log in glob.glob(sys.argv[2] + "/round-*.log"):
    for match in re.finditer(r"Test Case 'FaultMatrixTests\.(\w+)' failed", open(log).read()):
        failed[match.group(1)] += 1
def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]
print(f"{'row':38} {'trials':>6} {'stall p50 ms':>12} {'p99 ms':>8} {'max ms':>8}")
for name, stalls in sorted(rows.items()):
    print(f"{name:38} {len(stalls):6} {pct(stalls, 0.5):12.1f} {pct(stalls, 0.99):8.1f} {max(stalls):8.1f}")
print("failed test cases:", dict(failed) if failed else "none")
PY
echo "fault-matrix: $failures of $rounds rounds had a failure; raw results in $out"
[[ $failures -eq 0 ]]
