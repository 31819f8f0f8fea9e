#!/usr/bin/env bash
# Echo sessions under loss on one link at a time, through ftcp and against plain TCP to the
# server behind the same link, ROUNDS times each: how many sessions hung, the longest wait a
# client saw, and the median session time of each against plain TCP's (issue 13's targets:
# 0 hangs in 200 runs, no wait over 1.5 s, median within 1.25 x plain's). Each session echoes
# BYTES (default 30 MB) both ways at once at 8 MB/s (ftcp-labtool echo-stream). Runs as root
# on the lab (deploy/lab.sh), after a release build; leaves the lab down.
#
#   deploy/loss.sh [ROUNDS] [LOSS] [LINKS]     defaults: 200, 1%, "client primary secondary"
#   FTCP_LOSS_BYTES=N                           bytes per session
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
rounds=${1:-200}
loss=${2:-1%}
links=${3:-client primary secondary}
bytes=${FTCP_LOSS_BYTES:-30000000}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "loss: ROUNDS is a positive integer" >&2; exit 2; }
[[ $loss =~ ^[0-9]+(\.[0-9]+)?%$ ]] || { echo "loss: LOSS is a percentage such as 1% or 0.5%" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "loss: must run as root (the lab needs network namespaces)" >&2; exit 1; }
bin=${FTCP_BIN:-$PWD/.build/release}
for binary in ftcp-bridge ftcp-demo-server ftcp-labtool ftcp-impair; do
    [[ -x $bin/$binary ]] || { echo "loss: $bin/$binary missing; run: swift build -c release" >&2; exit 1; }
done
results=$(mktemp -d /tmp/ftcp-loss.XXXXXX)
plain_port=9997

cleanup() {
    ip netns pids ftcp-primary 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns pids ftcp-secondary 2>/dev/null | xargs -r kill 2>/dev/null || true
    deploy/lab.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT
deploy/lab.sh down >/dev/null 2>&1 || true
deploy/lab.sh up >/dev/null
deploy/lab.sh ftcp start >/dev/null
for host in primary secondary; do
    ip netns exec "ftcp-$host" "$bin/ftcp-demo-server" --listen "0.0.0.0:$plain_port" >/dev/null 2>&1 &
done
sleep 2

session() { # KIND TARGET -> appends "seconds stall_ms ok" to $results/KIND
    local line
    line=$(ip netns exec ftcp-client "$bin/ftcp-labtool" echo-stream --connect "$2" --bytes "$bytes" \
        --timeout-s 120 --hang-s 30 2>/dev/null | tail -n 1) || true
    local seconds stall ok
    seconds=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$line")
    stall=$(sed -n 's/.*longest_stall_ms=\([0-9]*\).*/\1/p' <<<"$line")
    ok=$(sed -n 's/.* ok=\([01]\).*/\1/p' <<<"$line")
    echo "${seconds:-120} ${stall:-120000} ${ok:-0}" >>"$results/$1"
}

for link in $links; do
    host=10.80.0.1
    [[ $link == secondary ]] && host=10.80.0.2
    deploy/lab.sh impair "$link" "loss $loss" >/dev/null
    for round in $(seq 1 "$rounds"); do
        session "plain-$link" "$host:$plain_port"
        session "ftcp-$link" "10.80.0.1:9999"
        if ((round % 10 == 0)); then echo "loss: $link $round of $rounds"; fi
    done
    deploy/lab.sh impair "$link" off >/dev/null
done

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '%-10s %6s %6s %8s %11s %11s %12s %12s %7s\n' link runs hangs failed "max wait ms" "plain max" "median s" "plain med s" ratio
for link in $links; do
    f=$results/ftcp-$link p=$results/plain-$link
    runs=$(wc -l <"$f")
    hangs=$(awk '$2 >= 30000' "$f" | wc -l)
    failed=$(awk '$3 != 1' "$f" | wc -l)
    maxwait=$(cut -d' ' -f2 "$f" | sort -n | tail -n 1)
    plainmax=$(cut -d' ' -f2 "$p" | sort -n | tail -n 1)
    med=$(cut -d' ' -f1 "$f" | median)
    plainmed=$(cut -d' ' -f1 "$p" | median)
    ratio=$(awk -v a="$med" -v b="$plainmed" 'BEGIN { printf "%.2f", a / b }')
    printf '%-10s %6s %6s %8s %11s %11s %12s %12s %7s\n' "$link" "$runs" "$hangs" "$failed" "$maxwait" "$plainmax" "$med" "$plainmed" "$ratio"
done
echo "loss: every session's seconds, longest wait (ms) and ok in $results"
