#!/usr/bin/env bash
# The ftcp benchmark: ftcp against clean kernel TCP on the namespace lab, in one run, with the
# clean and ftcp runs of every pair alternating so the machine's noise falls on both alike.
#
#   clean:        the demo server on the primary at port 9998, which the bridges do not protect
#   ftcp:         the demo server on both servers at port 9999, through both bridges
#   pass-through: the demo server on the primary at port 9997 behind NFQUEUE rules on its INPUT
#                 and OUTPUT that ftcp-passthrough accepts unchanged (GSO, batched): the ceiling
#                 of any user-space bridge on this machine
#
#   replicated:   the demo server at port 9998 on the primary, measured while the same server on
#                 the secondary (10.80.0.2:9998) carries an identical load of its own at the same
#                 time: what two replicas of the application can do on this machine, the limit
#                 for ftcp, which runs two where clean runs one (both loads come from the client
#                 namespace, whose side of the work doubles too)
#
# It measures: throughput both ways with the client's link shaped to 100 Mbit/s, to 1 Gbit/s and
# unshaped; pipelined 64-byte requests (20 connections, 16 in flight each); the replicated limit
# of the unshaped and pipelined figures; the replication channel's bytes per byte delivered;
# connect() time and 64-byte request/response time, and where the latter's time goes hop by hop
# (both bridges' latency traces, `ftcp-bridge latency-report`); the client-visible stall over primary
# cut-offs and the time until the download's rate is back; the bridges' memory per idle protected
# connection (1, 100, 1000) and CPU time per GiB. It writes results.json, results.md and
# failover.svg (and raw.txt) to the report folder and prints the folder on its last line.
#
# usage: sudo deploy/bench.sh [--quick] [--out DIR] [--rounds N] [--failovers N]
#   --quick       one round, small transfers, 5 cut-offs: under 5 minutes, proves every figure
#                 is produced (CI runs it); the figures themselves are rough. Its report goes to
#                 a new folder under /tmp (kept), unless --out says otherwise
#   --out DIR     where the report goes (default: bench/latest in the repository)
#   --rounds N    rounds of every throughput pair (default 3)
#   --failovers N primary cut-offs (default 50)
# Needs the release build (swift build -c release); brings its own lab up and takes it down.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB="$REPO_ROOT/deploy/lab.sh"
export FTCP_BIN=${FTCP_BIN:-$REPO_ROOT/.build/release}
RUN_DIR=${FTCP_LAB_RUN_DIR:-/run/ftcp-lab}
QUICK=0
OUT=
ROUNDS=3
FAILOVERS=50
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) QUICK=1; shift ;;
        --out) OUT=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --failovers) FAILOVERS=$2; shift 2 ;;
        -h | --help) sed -n '2,35p' "$0"; exit 0 ;;
        *) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $FAILOVERS =~ ^[1-9][0-9]*$ ]] || { echo "bench: --rounds and --failovers take a positive number" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "bench: run as root (it builds network namespaces)" >&2; exit 1; }
for binary in ftcp-bridge ftcp-demo-server ftcp-labtool ftcp-impair ftcp-passthrough; do
    [[ -x $FTCP_BIN/$binary ]] || { echo "bench: $FTCP_BIN/$binary missing; run swift build -c release" >&2; exit 1; }
done

# Sizes: each transfer lasts about a second or two at the rates seen on this kind of machine.
declare -A BYTES=([100mbit]=25000000 [1gbit]=100000000 [unshaped]=200000000)
CONNECTS=1000
EXCHANGES=1000
PIPELINED=2000  # requests answered per connection of the pipelined workload
SCALES="1 100 1000"
if ((QUICK)); then
    ROUNDS=1
    FAILOVERS=5
    BYTES=([100mbit]=5000000 [1gbit]=20000000 [unshaped]=40000000)
    CONNECTS=200
    EXCHANGES=200
    PIPELINED=1000
fi
if [[ -z $OUT ]]; then
    if ((QUICK)); then OUT=$(mktemp -d /tmp/ftcp-bench.XXXXXX); else OUT=$REPO_ROOT/bench/latest; fi
fi

mkdir -p "$OUT"
RAW=$OUT/raw.txt
TRACE=$OUT/failover-trace.txt
: >"$RAW"
note() { printf 'bench: %s\n' "$*" >&2; }
record() { printf '%s\n' "$*" >>"$RAW"; }
labtool() { ip netns exec ftcp-client "$FTCP_BIN/ftcp-labtool" "$@"; }
# Bytes a bridge has sent on the replication channel so far (its status's replication.sentBytes).
channel_bytes() {
    ip netns exec "ftcp-$1" "$FTCP_BIN/ftcp-bridge" status --control "$RUN_DIR/$1.sock" |
        sed -n 's/^ *"sentBytes" : \([0-9]*\).*/\1/p' | head -1
}
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b * 8 / s / 1e6 }'; }
# CPU seconds (user + system) a process has used so far.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; }
# Resident memory of a process, KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# The bridge process of a role: the child of the guardian whose pid lab.sh keeps (the guardian
# itself holds no connection and does no packet work).
bridge_pid() { pgrep -P "$(<"$RUN_DIR/bridge-$1.pid")" | head -1; }

cleanup() {
    "$LAB" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

# A fresh lab with the bridges, plus the clean and pass-through servers on the primary.
fresh_lab() {
    "$LAB" down >/dev/null 2>&1 || true
    "$LAB" up >/dev/null
    "$LAB" ftcp start >/dev/null
}
start_extra_servers() {
    ip netns exec ftcp-primary setsid "$FTCP_BIN/ftcp-demo-server" --listen 0.0.0.0:9998 >/dev/null 2>&1 </dev/null &
    ip netns exec ftcp-primary setsid "$FTCP_BIN/ftcp-demo-server" --listen 0.0.0.0:9997 >/dev/null 2>&1 </dev/null &
    ip netns exec ftcp-primary iptables -t mangle -A INPUT -p tcp --dport 9997 -j NFQUEUE --queue-num 7410
    ip netns exec ftcp-primary iptables -t mangle -A OUTPUT -p tcp --sport 9997 -j NFQUEUE --queue-num 7410
    ip netns exec ftcp-primary setsid "$FTCP_BIN/ftcp-passthrough" --queue 7410 >"$OUT/passthrough.log" 2>&1 </dev/null &
    # The secondary's own clean server, for the replicated limit.
    ip netns exec ftcp-secondary setsid "$FTCP_BIN/ftcp-demo-server" --listen 0.0.0.0:9998 >/dev/null 2>&1 </dev/null &
    sleep 0.5
}

# The replicated limit of one workload: prints the result line of the clean server on the
# primary, measured while the secondary's clean server carries the same workload at the same
# time (its result line is left in $OUT/replicated-peer.out). The arguments are the labtool
# command without --connect.
replicated() {
    local peer_out=$OUT/replicated-peer.out
    labtool "$@" --connect 10.80.0.2:9998 >"$peer_out" 2>&1 &
    local peer_pid=$! line
    line=$(labtool "$@" --connect 10.80.0.1:9998)
    wait "$peer_pid" || { note "the replicated limit's load on the secondary failed: $(cat "$peer_out")"; exit 1; }
    printf '%s\n' "$line"
}
peer_seconds() { field seconds <"$OUT/replicated-peer.out"; }

# One transfer; records its rate. $1 shaping, $2 mode, $3 direction, $4 port, $5 round.
transfer() {
    local shaping=$1 mode=$2 direction=$3 port=$4 round=$5 bytes=${BYTES[$1]} option seconds line
    option=$([[ $direction == down ]] && echo --download || echo --upload)
    local before_p before_s channel_p channel_s
    if [[ $mode == ftcp && $shaping == unshaped ]]; then
        before_p=$(cpu_seconds "$(bridge_pid primary)")
        before_s=$(cpu_seconds "$(bridge_pid secondary)")
        channel_p=$(channel_bytes primary)
        channel_s=$(channel_bytes secondary)
    fi
    line=$(labtool session --connect "10.80.0.1:$port" "$option" "$bytes" --timeout-s 300)
    seconds=$(field seconds <<<"$line")
    record "throughput shaping=$shaping mode=$mode direction=$direction round=$round bytes=$bytes seconds=$seconds mbps=$(rate "$bytes" "$seconds")"
    note "$shaping $mode $direction round $round: $(rate "$bytes" "$seconds") Mbit/s"
    if [[ $mode == ftcp && $shaping == unshaped ]]; then
        record "replication direction=$direction bytes=$bytes primary_channel_bytes=$(($(channel_bytes primary) - channel_p)) secondary_channel_bytes=$(($(channel_bytes secondary) - channel_s))"
        record "cpu direction=$direction bytes=$bytes primary_cpu_s=$(awk -v a="$(cpu_seconds "$(bridge_pid primary)")" -v b="$before_p" 'BEGIN { print a - b }') secondary_cpu_s=$(awk -v a="$(cpu_seconds "$(bridge_pid secondary)")" -v b="$before_s" 'BEGIN { print a - b }')"
    fi
}

record "machine date=$(date -u +%FT%TZ) cores=$(nproc) kernel=$(uname -r) mode=$( ((QUICK)) && echo quick || echo full) rounds=$ROUNDS"
note "writing to $OUT"
fresh_lab
start_extra_servers

# 1. Scale: what the bridges hold per idle protected connection. First, on fresh bridges, so that
# memory freed by the transfers does not hide the growth.
for connections in $SCALES; do
    base_p=$(rss_kib "$(bridge_pid primary)")
    base_s=$(rss_kib "$(bridge_pid secondary)")
    ready=$OUT/hold-$connections.out
    ip netns exec ftcp-client "$FTCP_BIN/ftcp-labtool" hold --connect 10.80.0.1:9999 --connections "$connections" \
        --hold-s 3 --timeout-s 120 >"$ready" 2>&1 &
    holder=$!
    for _ in $(seq 1 600); do grep -q 'ready=1' "$ready" && break; sleep 0.1; done
    grep -q 'ready=1' "$ready" || { note "holding $connections connections failed: $(cat "$ready")"; exit 1; }
    sleep 1
    record "scale connections=$connections primary_growth_kib=$(($(rss_kib "$(bridge_pid primary)") - base_p)) secondary_growth_kib=$(($(rss_kib "$(bridge_pid secondary)") - base_s)) primary_rss_kib=$(rss_kib "$(bridge_pid primary)") secondary_rss_kib=$(rss_kib "$(bridge_pid secondary)")"
    wait "$holder" || { note "holding $connections connections failed: $(cat "$ready")"; exit 1; }
    note "scale: $connections idle connections held"
done

# 2. Throughput, clean and ftcp alternating (and the pass-through ceiling unshaped).
for shaping in 100mbit 1gbit unshaped; do
    case $shaping in
        100mbit) "$LAB" impair client "rate 100mbit" >/dev/null ;;
        1gbit) "$LAB" impair client "rate 1gbit" >/dev/null ;;
        unshaped) "$LAB" impair client off >/dev/null ;;
    esac
    modes="clean ftcp"
    [[ $shaping == unshaped ]] && modes="clean ftcp passthrough"
    for round in $(seq 1 "$ROUNDS"); do
        for mode in $modes; do
            port=$(case $mode in clean) echo 9998 ;; ftcp) echo 9999 ;; passthrough) echo 9997 ;; esac)
            transfer "$shaping" "$mode" down "$port" "$round"
            transfer "$shaping" "$mode" up "$port" "$round"
        done
    done
done

# The replicated limit of the unshaped transfers: two clean servers at once.
for round in $(seq 1 "$ROUNDS"); do
    for direction in down up; do
        option=$([[ $direction == down ]] && echo --download || echo --upload)
        line=$(replicated session "$option" "${BYTES[unshaped]}" --timeout-s 300)
        seconds=$(field seconds <<<"$line")
        record "throughput shaping=unshaped mode=replicated direction=$direction round=$round bytes=${BYTES[unshaped]} seconds=$seconds mbps=$(rate "${BYTES[unshaped]}" "$seconds") peer_mbps=$(rate "${BYTES[unshaped]}" "$(peer_seconds)")"
        note "unshaped replicated $direction round $round: $(rate "${BYTES[unshaped]}" "$seconds") Mbit/s"
    done
done

# 3. Pipelined small requests: 20 connections with 16 requests in flight each; clean and ftcp
# alternating, then the replicated limit.
for round in $(seq 1 "$ROUNDS"); do
    for mode in clean ftcp; do
        port=$([[ $mode == clean ]] && echo 9998 || echo 9999)
        line=$(labtool pipeline --connect "10.80.0.1:$port" --connections 20 --depth 16 --requests "$PIPELINED" \
            --timeout-s 300)
        record "pipeline mode=$mode round=$round $line"
        note "pipelined $mode round $round: $(field rate_per_s <<<"$line") requests/s"
    done
    line=$(replicated pipeline --connections 20 --depth 16 --requests "$PIPELINED" --timeout-s 300)
    record "pipeline mode=replicated round=$round peer_rate_per_s=$(field rate_per_s <"$OUT/replicated-peer.out") $line"
    note "pipelined replicated round $round: $(field rate_per_s <<<"$line") requests/s"
done

# 4. Connection setup and small request/response, alternating.
for mode in clean ftcp clean ftcp; do
    port=$([[ $mode == clean ]] && echo 9998 || echo 9999)
    connect=$(labtool connect-time --connect "10.80.0.1:$port" --count $((CONNECTS / 2)) --timeout-s 300)
    record "connect mode=$mode $connect"
    exchange=$(labtool round-trip --connect "10.80.0.1:$port" --count $((EXCHANGES / 2)) --timeout-s 300)
    record "round-trip mode=$mode $exchange"
    note "$mode: connect p50 $(field p50_us <<<"$connect") µs, 64-byte round trip p50 $(field p50_us <<<"$exchange") µs"
done

# 4b. Where the time of one request and its answer goes, hop by hop: both bridges record when
# they handled each data segment (--latency-trace-dir), the client when it wrote and read; they
# share this host's clock. Written when the bridges stop.
LATENCY_DIR=$OUT/latency-trace
rm -rf "$LATENCY_DIR" && mkdir -p "$LATENCY_DIR"
FTCP_BRIDGE_ARGS="${FTCP_BRIDGE_ARGS:-} --latency-trace-dir $LATENCY_DIR" fresh_lab
labtool round-trip --connect 10.80.0.1:9999 --count "$EXCHANGES" --trace "$LATENCY_DIR/client.csv" --timeout-s 300 >/dev/null
"$LAB" ftcp stop >/dev/null
"$FTCP_BIN/ftcp-bridge" latency-report "$LATENCY_DIR" --client "$LATENCY_DIR/client.csv" >"$OUT/latency-breakdown.txt"
grep '^latency ' "$OUT/latency-breakdown.txt" >>"$RAW"
note "hop by hop: $(grep -c '^latency interval' "$OUT/latency-breakdown.txt") intervals (latency-breakdown.txt)"

# 5. Failover: the primary cut off at a random point of a download, on a fresh lab each time.
detection="heartbeat-10ms,secondary-2-missed+3-ARP-probes-5ms-apart,primary-8-missed"
for trial in $(seq 1 "$FAILOVERS"); do
    fresh_lab
    trace_option=()
    ((trial == 1)) && trace_option=(--trace "$TRACE")
    # Long enough that every cut falls inside the download (at 0.1–0.7 s), at the 3 Gbit/s or so
    # a download reaches through ftcp here.
    bytes=$( ((QUICK)) && echo 400000000 || echo 1000000000)
    ip netns exec ftcp-client "$FTCP_BIN/ftcp-labtool" session --connect 10.80.0.1:9999 --download "$bytes" \
        "${trace_option[@]}" --timeout-s 120 >"$OUT/failover-session.out" 2>&1 &
    session=$!
    sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", 0.1 + r / 32768 * 0.6 }')"
    # Whether the cut falls inside the download: a trial whose download ended first says nothing
    # of a failover, and its figures are left out of the stall's.
    spanned=$(kill -0 "$session" 2>/dev/null && echo 1 || echo 0)
    "$LAB" fail primary >/dev/null
    status=0
    wait "$session" || status=$?
    line=$(tail -1 "$OUT/failover-session.out")
    ok=$([[ $status == 0 ]] && field ok <<<"$line" || echo 0)
    stall=$(field longest_stall_ms <<<"$line")
    recovery=$(field recovery_ms <<<"$line")
    record "failover trial=$trial ok=${ok:-0} spanned=$spanned stall_ms=${stall:-nan} recovery_ms=${recovery:-nan} bytes=$bytes detection=$detection"
    note "failover $trial: ok=${ok:-0} stall ${stall:-?} ms, rate back after ${recovery:-?} ms"
done

"$FTCP_BIN/ftcp-labtool" bench-report --raw "$RAW" --trace "$TRACE" --out "$OUT"
echo "bench: report in $OUT"
