#!/usr/bin/env bash
# ftcp namespace lab: a client, a primary and a secondary joined by a hub (a Linux bridge that
# floods every frame to every port), with link impairment (loss, delay, reordering, rate) applied
# in the hub so that the hosts' own iptables stay untouched.
#
#   ftcp-client    eth0 10.80.0.10/24 ──┐
#   ftcp-primary   eth0 10.80.0.1/24  ──┼── vh-<host> ── br0 (ageing_time 0, learning off) in ftcp-hub
#   ftcp-secondary eth0 10.80.0.2/24  ──┘
#
# Impairing host H's link affects both directions, once per frame:
#   frames FROM H: ftcp-hub mangle PREROUTING, -m physdev --physdev-in vh-H (before the flood, so
#                  a frame lost on the client's link is seen by neither server);
#   frames TO H:   ftcp-hub filter FORWARD, -m physdev --physdev-out vh-H (per flooded copy, so a
#                  frame lost on the secondary's link is still seen by the primary).
# loss: -m statistic --mode random -j DROP; delay/reorder: -j NFQUEUE to one ftcp-impair per host
# (running in ftcp-hub); rate: tc tbf on vh-H (towards H) and on H's eth0 (from H).
# Rules live only in the lab's chains FTCP-IMPAIR-PRE / FTCP-IMPAIR-FWD and their per-host chains
# FTCP-PRE-<host> / FTCP-FWD-<host>.
set -Eeuo pipefail
LAST_ACTION="(none)"
on_error() {
    trap - ERR
    printf 'lab: error: failed: %s; the lab may be half set up: run deploy/lab.sh down\n' "$LAST_ACTION" >&2
}
trap on_error ERR

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FTCP_IMPAIR=${FTCP_IMPAIR:-$REPO_ROOT/.build/release/ftcp-impair}
RUN_DIR=${FTCP_LAB_RUN_DIR:-/run/ftcp-lab}
HUB=ftcp-hub
BRIDGE=br0
HOSTS=(client primary secondary)
NAMESPACES=(ftcp-client ftcp-primary ftcp-secondary ftcp-hub)

log() { printf 'lab: %s\n' "$*"; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }
# Runs one action and logs it on one line first.
run() {
    LAST_ACTION="$*"
    log "$*"
    "$@"
}

usage() {
    cat <<'EOF'
usage: deploy/lab.sh COMMAND

  up                      create the namespaces ftcp-client (10.80.0.10), ftcp-primary (10.80.0.1),
                          ftcp-secondary (10.80.0.2), each with eth0 (MTU 1500) on a hub bridge in
                          ftcp-hub; check connectivity both ways; harmless when already up
  down                    stop the impairers, delete the namespaces and /run/ftcp-lab; harmless when
                          nothing exists, also cleans up after a half-failed up
  impair HOST "ARGS"      impair the link of HOST (client|primary|secondary) in both directions,
                          replacing its previous impairment; ARGS is any of
                            loss P%         drop P% of frames (iptables statistic)
                            delay Dms       hold every frame D ms (ftcp-impair via NFQUEUE)
                            reorder P%      hold P% of frames an extra gap so later ones overtake them
                            gap Gms         that extra gap (default: max(1 ms, delay))
                            rate Nmbit      token bucket (tc tbf) at N kbit|mbit|gbit
                            seed S          seed of ftcp-impair's random choices (default 1)
                          (while ftcp-impair runs, frames of HOST wait in its NFQUEUE; if it dies,
                          the link drops them: see /run/ftcp-lab/impair-HOST.log and .json)
  impair HOST off         remove all impairment of HOST
  status                  show namespaces, impairment chains, qdiscs and impairers
  ftcp start [ROLE..]|stop  start (stop) the demo server and the bridge on both servers (or only on
                          the ROLEs given: primary, secondary), with a fresh key; logs, pid files
                          and control sockets in /run/ftcp-lab
  fail primary|secondary  cut a server off as a crash would: link down, its bridge and server killed
  partition [on|off]      drop only the replication channel (UDP 7400) between the servers, or heal it
  kill HOST COMPONENT [SIG]  send SIG (default KILL) to one component of HOST while its host stays up:
                          bridge (the bridge process; its guardian cleans up), guardian, or app
  restart-app HOST        start HOST's demo server again
  revive HOST             bring a server that was cut off ('fail') back as a reboot would: link up,
                          its service address and ftcp chains gone, then its demo server and bridge
                          started again (with FTCP_SERVICE_ADDRESS it rejoins as the secondary if
                          its peer took over)
  demo                    build, bring the lab up, start ftcp, run a checked client session through
                          the bridges (10 MB each way), show the primary's status, clean up
  help, --help            this text

environment:
  FTCP_IMPAIR       path of the ftcp-impair binary (default: <repo>/.build/release/ftcp-impair;
                    build it with: swift build -c release --product ftcp-impair)
  FTCP_LAB_RUN_DIR  pid files, logs and statistics of the impairers (default: /run/ftcp-lab)
  FTCP_BIN          where ftcp-bridge, ftcp-demo-server and ftcp-labtool are (default: <repo>/.build/release)
  FTCP_BRIDGE_ARGS  extra arguments for both bridges (for example --log-level debug)
  FTCP_PORTS        the bridges' protected ports (--port, comma-separated; default 9999, the demo
                    server's); for a test that runs other servers beside it, e.g. 9999,21,30000
  FTCP_SERVICE_ADDRESS  a service address of its own for the bridges (--service-address, e.g.
                    10.80.0.100; several separated by commas): roles then follow it and a repaired
                    server rejoins; without it the service address is the primary's 10.80.0.1

example:
  deploy/lab.sh up
  deploy/lab.sh impair client "loss 10% delay 20ms reorder 25%"
  deploy/lab.sh impair client off
  deploy/lab.sh down
EOF
}

host_address() {
    case "$1" in
        client) echo 10.80.0.10 ;;
        primary) echo 10.80.0.1 ;;
        secondary) echo 10.80.0.2 ;;
        *) die "unknown host '$1' (expected client, primary or secondary)" ;;
    esac
}

host_queue() {
    case "$1" in
        client) echo 100 ;;
        primary) echo 101 ;;
        secondary) echo 102 ;;
    esac
}

ns_exists() { [[ -e "/run/netns/$1" ]]; }

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces, iptables and tc need CAP_NET_ADMIN)"
}

require_commands() {
    local missing=()
    local command
    for command in "$@"; do
        command -v "$command" >/dev/null 2>&1 || missing+=("$command")
    done
    if ((${#missing[@]} > 0)); then
        die "missing commands: ${missing[*]} (sudo deploy/setup.sh installs everything the lab needs)"
    fi
}

require_impair_binary() {
    if [[ ! -x "$FTCP_IMPAIR" ]]; then
        die "ftcp-impair not found at $FTCP_IMPAIR; build it with: (cd $REPO_ROOT && swift build -c release --product ftcp-impair), or set FTCP_IMPAIR=/path/to/ftcp-impair"
    fi
}

hub_iptables() { ip netns exec "$HUB" iptables -w 5 "$@"; }

# Creates chain $2 in table $1 of the hub if it does not exist.
ensure_chain() {
    if ! hub_iptables -t "$1" -S "$2" >/dev/null 2>&1; then
        run ip netns exec "$HUB" iptables -w 5 -t "$1" -N "$2"
    fi
}

# Appends rule "${@:3}" to chain $2 of table $1 unless it is already there.
ensure_rule() {
    local table=$1 chain=$2
    shift 2
    if ! hub_iptables -t "$table" -C "$chain" "$@" 2>/dev/null; then
        run ip netns exec "$HUB" iptables -w 5 -t "$table" -A "$chain" "$@"
    fi
}

# Succeeds when $1's namespace reaches address $2: by ping if installed, otherwise by a TCP
# connection to a closed port (an RST answer proves the path works both ways).
probe() {
    local namespace=$1 address=$2 output status
    if command -v ping >/dev/null 2>&1; then
        ip netns exec "$namespace" ping -n -q -c 1 -W 1 "$address" >/dev/null 2>&1
        return
    fi
    set +e
    output=$(ip netns exec "$namespace" timeout 2 bash -c "exec 3<>/dev/tcp/$address/9" 2>&1)
    status=$?
    set -e
    [[ $status -eq 0 || $output == *refused* ]]
}

check_connectivity() {
    local from to address attempt ok
    if ! command -v ping >/dev/null 2>&1; then
        log "ping is not installed: probing with TCP connections to port 9 (an RST proves the path)"
    fi
    for from in "${HOSTS[@]}"; do
        for to in "${HOSTS[@]}"; do
            [[ $from == "$to" ]] && continue
            address=$(host_address "$to")
            ok=0
            for attempt in 1 2 3 4 5; do
                if probe "ftcp-$from" "$address"; then
                    ok=1
                    break
                fi
                sleep 0.2
            done
            ((ok)) || die "no connectivity from $from to $to ($address) after 5 attempts; run 'deploy/lab.sh down' and try again"
            log "reachable: $from -> $to ($address)"
        done
    done
}

cmd_up() {
    require_root
    require_commands ip tc iptables timeout
    run mkdir -p "$RUN_DIR"
    local namespace
    for namespace in "${NAMESPACES[@]}"; do
        if ! ns_exists "$namespace"; then
            run ip netns add "$namespace"
        fi
        run ip -n "$namespace" link set lo up
        # No IPv6: keeps router solicitations and DAD out of the captures.
        run ip netns exec "$namespace" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    [[ -e /proc/sys/net/bridge ]] || die "br_netfilter is not available (no /proc/sys/net/bridge); try: modprobe br_netfilter"
    run ip netns exec "$HUB" sysctl -q -w net.bridge.bridge-nf-call-iptables=1
    if ! ip -n "$HUB" link show "$BRIDGE" >/dev/null 2>&1; then
        run ip -n "$HUB" link add "$BRIDGE" type bridge ageing_time 0 stp_state 0 forward_delay 0 mcast_snooping 0
    fi
    run ip -n "$HUB" link set "$BRIDGE" up
    local host address
    for host in "${HOSTS[@]}"; do
        namespace=ftcp-$host
        address=$(host_address "$host")
        if ! ip -n "$HUB" link show "vh-$host" >/dev/null 2>&1; then
            if ip -n "$namespace" link show eth0 >/dev/null 2>&1; then
                run ip -n "$namespace" link del eth0
            fi
            run ip -n "$HUB" link add "vh-$host" mtu 1500 type veth peer name eth0 netns "$namespace" mtu 1500
        fi
        run ip -n "$HUB" link set "vh-$host" master "$BRIDGE"
        run ip -n "$HUB" link set "vh-$host" type bridge_slave learning off
        run ip -n "$HUB" link set "vh-$host" mtu 1500 up
        run ip -n "$namespace" link set eth0 mtu 1500 up
        run ip -n "$namespace" addr replace "$address/24" dev eth0
    done
    # The lab's own chains, hooked once; per-host chains stay empty until 'impair'.
    ensure_chain mangle FTCP-IMPAIR-PRE
    ensure_chain filter FTCP-IMPAIR-FWD
    ensure_rule mangle PREROUTING -j FTCP-IMPAIR-PRE
    ensure_rule filter FORWARD -j FTCP-IMPAIR-FWD
    # 'partition' fills this one: it drops the replication channel (UDP 7400) and nothing else.
    ensure_chain mangle FTCP-PARTITION
    ensure_rule mangle FTCP-IMPAIR-PRE -j FTCP-PARTITION
    # A switch sends the servers' unicast to each other only to their own ports; this hub floods
    # it to the client's port too, where the replication channel (UDP 7400, and the IP fragments
    # of its larger datagrams, which carry no port) would take the client's share of a shaped
    # link. Keep every IP packet not addressed to the client off its link, as a switch would.
    ensure_rule filter FORWARD -m physdev --physdev-out vh-client ! -d "$(host_address client)" -j DROP
    for host in "${HOSTS[@]}"; do
        ensure_chain mangle "FTCP-PRE-$host"
        ensure_chain filter "FTCP-FWD-$host"
        ensure_rule mangle FTCP-IMPAIR-PRE -m physdev --physdev-in "vh-$host" -j "FTCP-PRE-$host"
        ensure_rule filter FTCP-IMPAIR-FWD -m physdev --physdev-out "vh-$host" -j "FTCP-FWD-$host"
    done
    check_connectivity
    log "lab is up"
}

# Sends SIGTERM to a pid, waits up to 3 s, then SIGKILL.
# Closes every descriptor inherited beyond 0-2 (call it in the subshell that starts a background
# process): a caller waiting for EOF on one of them (Foundation's Process does) would otherwise wait
# for the background process to exit.
close_inherited_descriptors() {
    local descriptor
    for descriptor in /proc/self/fd/*; do
        descriptor=${descriptor##*/}
        if ((descriptor > 2)); then eval "exec $descriptor>&-" 2>/dev/null || true; fi
    done
}

stop_pid() {
    local pid=$1 what=$2 waited
    kill -0 "$pid" 2>/dev/null || return 0
    run kill -TERM "$pid"
    for waited in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    run kill -KILL "$pid" || true
    log "$what (pid $pid) did not stop within 3 s and was killed"
}

stop_impairer() {
    local host=$1 pidfile="$RUN_DIR/impair-$1.pid" pid
    [[ -f $pidfile ]] || return 0
    pid=$(<"$pidfile")
    # Only a process that really is our ftcp-impair for this host.
    if [[ -n $pid && -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--queue $(host_queue "$host")"; then
        stop_pid "$pid" "ftcp-impair for $host"
    fi
    run rm -f "$pidfile"
}

cmd_down() {
    require_root
    require_commands ip
    local host namespace pid pids
    for host in "${HOSTS[@]}"; do
        stop_impairer "$host"
    done
    for namespace in "${NAMESPACES[@]}"; do
        ns_exists "$namespace" || continue
        # Whatever still runs inside the lab's namespaces was started for the lab (captures,
        # servers, impairers): stop it so the namespace really goes away.
        pids=$(ip netns pids "$namespace" 2>/dev/null || true)
        for pid in $pids; do
            stop_pid "$pid" "process in $namespace"
        done
        run ip netns del "$namespace"
    done
    if [[ -d $RUN_DIR ]]; then
        run rm -rf "$RUN_DIR"
    fi
    log "lab is down"
}

impair_off() {
    local host=$1 namespace=ftcp-$1
    if ns_exists "$HUB"; then
        if hub_iptables -t mangle -S "FTCP-PRE-$host" >/dev/null 2>&1; then
            run ip netns exec "$HUB" iptables -w 5 -t mangle -F "FTCP-PRE-$host"
        fi
        if hub_iptables -t filter -S "FTCP-FWD-$host" >/dev/null 2>&1; then
            run ip netns exec "$HUB" iptables -w 5 -t filter -F "FTCP-FWD-$host"
        fi
        if tc -n "$HUB" qdisc show dev "vh-$host" root 2>/dev/null | grep -q tbf; then
            run tc -n "$HUB" qdisc del dev "vh-$host" root
        fi
    fi
    if ns_exists "$namespace" && tc -n "$namespace" qdisc show dev eth0 root 2>/dev/null | grep -q tbf; then
        run tc -n "$namespace" qdisc del dev eth0 root
    fi
    # Rules first, then the impairer: it accepts what it still holds as it exits.
    stop_impairer "$host"
}

# Parsers run in the main shell (no command substitution around them), so their errors exit
# directly; each leaves its result in PARSED.
parse_percent() {
    [[ $1 =~ ^([0-9]+(\.[0-9]+)?)%$ ]] || die "expected a percentage like 10% or 0.5%, got '$1'"
    local value=${BASH_REMATCH[1]}
    awk -v p="$value" 'BEGIN { exit !(p <= 100) }' || die "percentage above 100%: '$1'"
    PARSED=$value
}

parse_milliseconds() {
    [[ $1 =~ ^([0-9]+(\.[0-9]+)?)ms$ ]] || die "expected milliseconds like 20ms, got '$1'"
    PARSED=${BASH_REMATCH[1]}
}

cmd_impair() {
    require_root
    require_commands ip tc iptables
    (($# == 2)) || die "usage: deploy/lab.sh impair HOST \"ARGS\" | off"
    local host=$1 spec=$2
    host_address "$host" >/dev/null
    ns_exists "$HUB" && hub_iptables -t mangle -S "FTCP-PRE-$host" >/dev/null 2>&1 ||
        die "the lab is not up; run: deploy/lab.sh up"
    if [[ $spec == off ]]; then
        impair_off "$host"
        log "impairment of $host removed"
        return
    fi

    local loss="" delay="" reorder="" gap="" rate="" seed=1
    local -a words
    read -r -a words <<<"$spec"
    ((${#words[@]} > 0)) || die "nothing to impair: give ARGS such as \"loss 10%\" or 'off'"
    local i=0
    while ((i < ${#words[@]})); do
        local key=${words[i]} value=${words[i + 1]:-}
        [[ -n $value ]] || die "'$key' needs a value"
        case "$key" in
            loss)
                parse_percent "$value"
                loss=$(awk -v p="$PARSED" 'BEGIN { printf "%.6f\n", p / 100 }')
                ;;
            reorder)
                parse_percent "$value"
                reorder=$PARSED
                ;;
            delay)
                parse_milliseconds "$value"
                delay=$PARSED
                ;;
            gap)
                parse_milliseconds "$value"
                gap=$PARSED
                ;;
            rate)
                [[ $value =~ ^[0-9]+(\.[0-9]+)?(kbit|mbit|gbit)$ ]] || die "expected a rate like 10mbit or 1gbit, got '$value'"
                rate=$value
                ;;
            seed)
                [[ $value =~ ^[0-9]+$ ]] || die "expected a number for seed, got '$value'"
                seed=$value
                ;;
            *) die "unknown impairment '$key' (expected loss, delay, reorder, gap, rate, seed)" ;;
        esac
        i=$((i + 2))
    done
    if [[ -n $delay || -n $reorder ]]; then
        require_impair_binary
    fi

    impair_off "$host"

    if [[ -n $delay || -n $reorder ]]; then
        local queue pidfile logfile statsfile pid waited
        queue=$(host_queue "$host")
        pidfile="$RUN_DIR/impair-$host.pid"
        logfile="$RUN_DIR/impair-$host.log"
        statsfile="$RUN_DIR/impair-$host.json"
        local -a arguments=(--queue "$queue" --delay-ms "${delay:-0}" --reorder-percent "${reorder:-0}" --seed "$seed" --stats-file "$statsfile")
        [[ -n $gap ]] && arguments+=(--reorder-gap-ms "$gap")
        mkdir -p "$RUN_DIR"
        : >"$logfile"
        log "ip netns exec $HUB $FTCP_IMPAIR ${arguments[*]} (background, log $logfile)"
        (
            close_inherited_descriptors
            exec ip netns exec "$HUB" "$FTCP_IMPAIR" "${arguments[@]}"
        ) </dev/null >>"$logfile" 2>&1 &
        pid=$!
        echo "$pid" >"$pidfile"
        for waited in $(seq 1 50); do
            grep -q ': bound' "$logfile" && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if ! grep -q ': bound' "$logfile"; then
            stop_impairer "$host"
            die "ftcp-impair for $host did not bind queue $queue within 5 s: $(tail -n 5 "$logfile" | tr '\n' ' ')"
        fi
        log "ftcp-impair for $host runs as pid $pid on queue $queue"
    fi
    if [[ -n $loss ]]; then
        run ip netns exec "$HUB" iptables -w 5 -t mangle -A "FTCP-PRE-$host" -m statistic --mode random --probability "$loss" -j DROP
        run ip netns exec "$HUB" iptables -w 5 -t filter -A "FTCP-FWD-$host" -m statistic --mode random --probability "$loss" -j DROP
    fi
    if [[ -n $delay || -n $reorder ]]; then
        run ip netns exec "$HUB" iptables -w 5 -t mangle -A "FTCP-PRE-$host" -j NFQUEUE --queue-num "$queue"
        run ip netns exec "$HUB" iptables -w 5 -t filter -A "FTCP-FWD-$host" -j NFQUEUE --queue-num "$queue"
    fi
    if [[ -n $rate ]]; then
        # Burst: 4 ms worth of tokens, at least 16 kB; queue: at most 50 ms.
        local burst
        burst=$(awk -v r="$rate" 'BEGIN {
            n = r + 0; unit = substr(r, length(r) - 3);
            bits = (unit == "kbit") ? n * 1e3 : (unit == "mbit") ? n * 1e6 : n * 1e9;
            b = bits / 8 / 250; if (b < 16000) b = 16000; printf "%d\n", b }')
        run tc -n "$HUB" qdisc replace dev "vh-$host" root tbf rate "$rate" burst "$burst" latency 50ms
        run tc -n "ftcp-$host" qdisc replace dev eth0 root tbf rate "$rate" burst "$burst" latency 50ms
    fi
    log "impairment of $host: $spec"
}

cmd_status() {
    local namespace host
    for namespace in "${NAMESPACES[@]}"; do
        if ns_exists "$namespace"; then log "namespace $namespace exists"; else log "namespace $namespace absent"; fi
    done
    ns_exists "$HUB" || return 0
    hub_iptables -t mangle -S 2>/dev/null | grep FTCP || true
    hub_iptables -t filter -S 2>/dev/null | grep FTCP || true
    for host in "${HOSTS[@]}"; do
        tc -n "$HUB" qdisc show dev "vh-$host" root 2>/dev/null | grep tbf || true
        if [[ -f "$RUN_DIR/impair-$host.pid" ]]; then
            log "ftcp-impair for $host: pid $(<"$RUN_DIR/impair-$host.pid"), stats $(cat "$RUN_DIR/impair-$host.json" 2>/dev/null || echo none)"
        fi
    done
}

# ---------------------------------------------------------------------------------------------
# ftcp on the lab: the demo server on both servers and the two bridges.

FTCP_BIN=${FTCP_BIN:-$REPO_ROOT/.build/release}
FTCP_PORT=9999

require_ftcp_binaries() {
    local binary
    for binary in ftcp-bridge ftcp-demo-server ftcp-labtool; do
        [[ -x $FTCP_BIN/$binary ]] || die "missing $FTCP_BIN/$binary; build it with: swift build -c release (or set FTCP_BIN)"
    done
}

# start_background NAMESPACE NAME COMMAND...: starts a process in a namespace, pid and log in RUN_DIR.
start_background() {
    local namespace=$1 name=$2
    shift 2
    log "start $name in $namespace: $*"
    (
        close_inherited_descriptors
        exec ip netns exec "$namespace" setsid "$@"
    ) </dev/null >"$RUN_DIR/$name.log" 2>&1 &
    echo $! >"$RUN_DIR/$name.pid"
    # Not this shell's job: a 'fail' that kills it must not print "Killed" in the middle of the demo.
    disown $!
}

stop_named() {
    local name=$1 pidfile="$RUN_DIR/$1.pid"
    [[ -f $pidfile ]] || return 0
    stop_pid "$(<"$pidfile")" "$name"
    rm -f "$pidfile"
}

cmd_ftcp() {
    require_root
    local action=${1:-}
    case "$action" in
        start)
            # 'ftcp start' starts both servers; 'ftcp start primary' or 'ftcp start secondary' one
            # (its application and its bridge), for a server started alone or late.
            shift
            local roles=("$@")
            ((${#roles[@]} > 0)) || roles=(secondary primary)
            require_ftcp_binaries
            ns_exists ftcp-primary || die "the lab is not up: run deploy/lab.sh up first"
            mkdir -p "$RUN_DIR"
            if [[ ! -f $RUN_DIR/ftcp.key ]]; then
                (umask 077 && "$FTCP_BIN/ftcp-bridge" keygen >"$RUN_DIR/ftcp.key")
            fi
            local waited role own peer
            for role in "${roles[@]}"; do
                case "$role" in
                    primary) own=10.80.0.1 peer=10.80.0.2 ;;
                    secondary) own=10.80.0.2 peer=10.80.0.1 ;;
                    *) die "usage: deploy/lab.sh ftcp start [primary] [secondary]" ;;
                esac
                start_background "ftcp-$role" "app-$role" "$FTCP_BIN/ftcp-demo-server" --listen 0.0.0.0:$FTCP_PORT
                start_background "ftcp-$role" "bridge-$role" "$FTCP_BIN/ftcp-bridge" "$role" --interface eth0 \
                    --address $own --peer $peer --port "${FTCP_PORTS:-$FTCP_PORT}" --key-file "$RUN_DIR/ftcp.key" \
                    --control "$RUN_DIR/$role.sock" $(service_address_arguments) ${FTCP_BRIDGE_ARGS:-}
            done
            for role in "${roles[@]}"; do
                for waited in $(seq 1 50); do
                    [[ -S $RUN_DIR/$role.sock ]] && break
                    kill -0 "$(<"$RUN_DIR/bridge-$role.pid")" 2>/dev/null || { cat "$RUN_DIR/bridge-$role.log" >&2; die "the $role bridge exited"; }
                    sleep 0.1
                done
                [[ -S $RUN_DIR/$role.sock ]] || die "the $role bridge did not come up within 5 s (see $RUN_DIR/bridge-$role.log)"
            done
            log "ftcp is running: ${roles[*]} (demo server and bridge; logs in $RUN_DIR)"
            ;;
        stop)
            # Bridges first, so no segment of a protected connection meets a kernel without its bridge.
            stop_named bridge-primary
            stop_named bridge-secondary
            stop_named app-primary
            stop_named app-secondary
            log "ftcp stopped"
            ;;
        *) die "usage: deploy/lab.sh ftcp start|stop" ;;
    esac
}

# Cuts a server off as a crash would: its link goes down first (nothing more leaves it), then
# its bridge and its application are killed with SIGKILL (no clean-up of any kind).
cmd_fail() {
    require_root
    local host=${1:-} name pidfile
    case "$host" in
        primary | secondary) ;;
        *) die "usage: deploy/lab.sh fail primary|secondary" ;;
    esac
    ns_exists "ftcp-$host" || die "the lab is not up"
    run ip -n "ftcp-$host" link set eth0 down
    for name in "bridge-$host" "app-$host"; do
        pidfile=$RUN_DIR/$name.pid
        [[ -f $pidfile ]] || continue
        # The whole process group (each was started with setsid): a bridge is a guardian and
        # its bridge process, and a host that dies takes both.
        run kill -KILL -- "-$(<"$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    done
    log "$host is cut off (link down, bridge and server killed)"
}

# Kills one component of a server while its host stays up: its bridge process (the guardian,
# the bridge's parent, stays and cleans up as it would after a crash), or its application.
cmd_kill() {
    require_root
    local host=${1:-} component=${2:-} signal=${3:-KILL} pidfile pid
    case "$host" in primary | secondary) ;; *) die "usage: deploy/lab.sh kill primary|secondary bridge|guardian|app [SIGNAL]" ;; esac
    case "$component" in
        bridge)
            pidfile=$RUN_DIR/bridge-$host.pid
            [[ -f $pidfile ]] || die "no bridge of $host is running"
            pid=$(pgrep -P "$(<"$pidfile")" | head -1) || true
            [[ -n $pid ]] || die "the $host bridge's guardian (pid $(<"$pidfile")) has no bridge process"
            ;;
        guardian) pidfile=$RUN_DIR/bridge-$host.pid; [[ -f $pidfile ]] || die "no bridge of $host is running"; pid=$(<"$pidfile") ;;
        app) pidfile=$RUN_DIR/app-$host.pid; [[ -f $pidfile ]] || die "no application of $host is running"; pid=$(<"$pidfile") ;;
        *) die "usage: deploy/lab.sh kill primary|secondary bridge|guardian|app [SIGNAL]" ;;
    esac
    run kill "-$signal" "$pid"
    log "$host $component (pid $pid) sent SIG$signal"
}

# Starts the application of a server again (after 'kill HOST app').
cmd_restart_app() {
    require_root
    local host=${1:-}
    case "$host" in primary | secondary) ;; *) die "usage: deploy/lab.sh restart-app primary|secondary" ;; esac
    require_ftcp_binaries
    start_background "ftcp-$host" "app-$host" "$FTCP_BIN/ftcp-demo-server" --listen 0.0.0.0:$FTCP_PORT
}

# Brings a server that was cut off back as a reboot would: its link up, and nothing left of
# the run that died (a reboot loses the service address and the iptables chains), then its
# application and bridge started again.
# --service-address for each address of FTCP_SERVICE_ADDRESS (none without it).
service_address_arguments() {
    local address
    local addresses=${FTCP_SERVICE_ADDRESS:-}
    for address in ${addresses//,/ }; do printf -- '--service-address %s ' "$address"; done
}

cmd_revive() {
    require_root
    local host=${1:-}
    case "$host" in primary | secondary) ;; *) die "usage: deploy/lab.sh revive primary|secondary" ;; esac
    require_ftcp_binaries
    ns_exists "ftcp-$host" || die "the lab is not up"
    stop_named "bridge-$host"
    stop_named "app-$host"
    local address
    local addresses=${FTCP_SERVICE_ADDRESS:-}
    for address in ${addresses//,/ }; do
        ip -n "ftcp-$host" addr del "$address/24" dev eth0 2>/dev/null || true
    done
    ip netns exec "ftcp-$host" "$FTCP_BIN/ftcp-bridge" rules remove --role primary >/dev/null
    ip netns exec "ftcp-$host" "$FTCP_BIN/ftcp-bridge" rules remove --role secondary >/dev/null
    rm -f "$RUN_DIR/$host.sock"
    run ip -n "ftcp-$host" link set eth0 up
    cmd_ftcp start "$host"
}

# Drops the replication channel between the two servers (UDP port 7400) in the hub, and only it:
# both hosts stay reachable for clients and ARP. 'partition off' heals it.
cmd_partition() {
    require_root
    ns_exists "$HUB" || die "the lab is not up"
    case "${1:-on}" in
        on)
            hub_iptables -t mangle -F FTCP-PARTITION
            run hub_iptables -t mangle -A FTCP-PARTITION -p udp --dport 7400 -j DROP
            log "replication channel partitioned"
            ;;
        off)
            run hub_iptables -t mangle -F FTCP-PARTITION
            log "replication channel healed"
            ;;
        *) die "usage: deploy/lab.sh partition [on|off]" ;;
    esac
}

cmd_demo() {
    require_root
    # A fresh machine: install what the lab and the build need (says what it installs).
    "$REPO_ROOT/deploy/setup.sh" || die "set-up failed (deploy/setup.sh)"
    require_commands ip tc iptables
    log "building the release binaries (swift build -c release)"
    (cd "$REPO_ROOT" && swift build -c release) || die "the build failed"
    FTCP_BIN=$REPO_ROOT/.build/release
    # A service address of its own, so that roles can swap: 10.80.0.1 and 10.80.0.2 stay the servers'.
    FTCP_SERVICE_ADDRESS=${FTCP_SERVICE_ADDRESS:-10.80.0.100}
    local service=${FTCP_SERVICE_ADDRESS%%,*}
    trap 'cmd_ftcp stop >/dev/null 2>&1 || true; cmd_down >/dev/null 2>&1 || true' EXIT
    cmd_up
    cmd_ftcp start
    echo
    log "client 10.80.0.10 talks to the service at $service:$FTCP_PORT; both servers answer, the client sees one connection"
    ip netns exec ftcp-client "$FTCP_BIN/ftcp-labtool" session --connect $service:$FTCP_PORT --name demo \
        --download 10000000 --upload 10000000 --verbose --timeout-s 120 || die "the session failed"
    echo
    log "what the primary bridge saw (ftcp-bridge status):"
    ip netns exec ftcp-primary "$FTCP_BIN/ftcp-bridge" status --control "$RUN_DIR/primary.sock" | head -40
    echo
    log "1. a failover: a session downloads 300 MB and the primary (10.80.0.1) is cut off in the middle"
    demo_session_across failover 300000000 -- cmd_fail primary
    log "10.80.0.2 took the service address over and serves as primary; the session is one it inherited:"
    demo_roles
    echo
    log "2. the old primary comes back (as after a reboot) and rejoins as the secondary of 10.80.0.2"
    cmd_revive primary
    demo_wait_replicating secondary
    demo_roles
    echo
    log "3. a planned switchover back to 10.80.0.1 in the middle of a session opened after the rejoin"
    demo_session_across switchover 300000000 -- ip netns exec ftcp-secondary "$FTCP_BIN/ftcp-bridge" switchover \
        --control "$RUN_DIR/secondary.sock"
    demo_wait_replicating primary
    demo_roles
    echo
    log "demo finished: every session ran through the bridges, across a failover, a rejoin and a switchover; cleaning up"
}

# demo_session_across NAME BYTES -- COMMAND...: a session through the service address, COMMAND run
# in its middle; the session must end right.
demo_session_across() {
    local name=$1 bytes=$2
    shift 3
    ip netns exec ftcp-client "$FTCP_BIN/ftcp-labtool" session --connect ${FTCP_SERVICE_ADDRESS%%,*}:$FTCP_PORT --name "$name" \
        --download "$bytes" --upload 10000000 --timeout-s 120 >"$RUN_DIR/$name-session.out" 2>&1 &
    local session=$!
    sleep 0.7
    "$@"
    if wait "$session"; then
        log "the session went on: $(cat "$RUN_DIR/$name-session.out")"
    else
        cat "$RUN_DIR/$name-session.out" >&2
        die "the session did not survive ($name)"
    fi
}

# demo_wait_replicating HOST: waits up to 10 s for HOST's bridge to serve as primary with a secondary replicating.
demo_wait_replicating() {
    local waited
    for waited in $(seq 1 100); do
        if ip netns exec "ftcp-$1" "$FTCP_BIN/ftcp-bridge" status --control "$RUN_DIR/$1.sock" 2>/dev/null |
            tr -d ' \n' | grep -q '"role":"primary","state":"replicating"'; then
            return 0
        fi
        sleep 0.1
    done
    die "$1 did not serve as primary with a secondary replicating within 10 s"
}

demo_roles() {
    local host state
    for host in primary secondary; do
        if state=$(ip netns exec "ftcp-$host" "$FTCP_BIN/ftcp-bridge" status --control "$RUN_DIR/$host.sock" 2>/dev/null); then
            state=$(tr -d ' \n' <<<"$state" | grep -o '"role":"[a-z]*","state":"[a-z-]*"' || true)
        else
            state="no bridge (cut off)"
        fi
        printf '  %-9s %s\n' "$(host_address "$host")" "$state"
    done
}

main() {
    local command=${1:-help}
    shift || true
    case "$command" in
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        impair) cmd_impair "$@" ;;
        status) cmd_status "$@" ;;
        ftcp) cmd_ftcp "$@" ;;
        demo) cmd_demo "$@" ;;
        fail) cmd_fail "$@" ;;
        partition) cmd_partition "$@" ;;
        kill) cmd_kill "$@" ;;
        restart-app) cmd_restart_app "$@" ;;
        revive) cmd_revive "$@" ;;
        help | -h | --help) usage ;;
        *)
            usage >&2
            die "unknown command '$command'"
            ;;
    esac
}

main "$@"
