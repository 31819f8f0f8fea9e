#!/usr/bin/env bash
# ftcp against clean kernel TCP on the namespace lab, measured in one run with the pairs
# alternating so the machine's noise falls on both alike.
#
#   clean: the demo server on the primary at port 9998, which the bridges do not protect
#   ftcp:  the demo server on both servers at port 9999, through both bridges
#
# usage: sudo deploy/bench.sh [--rounds N] [--bytes B] [--connects C]
# Needs the release build (swift build -c release) and a lab that is down (it brings its own).
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB="$REPO_ROOT/deploy/lab.sh"
export FTCP_BIN=${FTCP_BIN:-$REPO_ROOT/.build/release}
ROUNDS=3
BYTES=200000000
CONNECTS=1000
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --bytes) BYTES=$2; shift 2 ;;
        --connects) CONNECTS=$2; shift 2 ;;
        -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "bench: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ $(id -u) == 0 ]] || { echo "bench: run as root" >&2; exit 1; }
for binary in ftcp-bridge ftcp-demo-server ftcp-labtool; do
    [[ -x $FTCP_BIN/$binary ]] || { echo "bench: $FTCP_BIN/$binary missing; run swift build -c release" >&2; exit 1; }
done

cleanup() { "$LAB" down >/dev/null 2>&1 || true; }
trap cleanup EXIT
"$LAB" down >/dev/null 2>&1 || true
"$LAB" up >/dev/null
"$LAB" ftcp start >/dev/null
ip netns exec ftcp-primary setsid "$FTCP_BIN/ftcp-demo-server" --listen 0.0.0.0:9998 >/dev/null 2>&1 </dev/null &
sleep 0.5

labtool() { ip netns exec ftcp-client "$FTCP_BIN/ftcp-labtool" "$@"; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b * 8 / s / 1e6 }'; }

declare -A results
for round in $(seq 1 "$ROUNDS"); do
    for mode in clean ftcp; do
        port=$([[ $mode == clean ]] && echo 9998 || echo 9999)
        down=$(labtool session --connect 10.80.0.1:$port --download "$BYTES" --timeout-s 300 | field seconds)
        up=$(labtool session --connect 10.80.0.1:$port --upload "$BYTES" --timeout-s 300 | field seconds)
        results[$mode-down]+="$(rate "$BYTES" "$down") "
        results[$mode-up]+="$(rate "$BYTES" "$up") "
        echo "bench: round $round $mode: server→client $(rate "$BYTES" "$down") Mbit/s, client→server $(rate "$BYTES" "$up") Mbit/s" >&2
    done
done
for mode in clean ftcp; do
    port=$([[ $mode == clean ]] && echo 9998 || echo 9999)
    results[$mode-connect]=$(labtool connect-time --connect 10.80.0.1:$port --count "$CONNECTS" --timeout-s 300)
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo
echo "| measure ($(date -u +%F), $(nproc) cores, kernel $(uname -r)) | clean TCP | ftcp | ftcp / clean |"
echo "|---|---|---|---|"
for direction in down up; do
    label=$([[ $direction == down ]] && echo "server → client, Mbit/s (median of $ROUNDS × $BYTES B)" || echo "client → server, Mbit/s (median of $ROUNDS × $BYTES B)")
    clean=$(echo "${results[clean-$direction]}" | median)
    ftcp=$(echo "${results[ftcp-$direction]}" | median)
    echo "| $label | $clean | $ftcp | $(awk -v f="$ftcp" -v c="$clean" 'BEGIN { printf "%.2f", f / c }') |"
done
for p in p50 p99; do
    clean=$(echo "${results[clean-connect]}" | field ${p}_us)
    ftcp=$(echo "${results[ftcp-connect]}" | field ${p}_us)
    echo "| connect() $p over $CONNECTS connections, µs | $clean | $ftcp | +$(awk -v f="$ftcp" -v c="$clean" 'BEGIN { printf "%.0f", f - c }') µs |"
done
