#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ and runs each for a bounded time: any crash, trap,
# violated property, leak, timeout or memory blow-up fails the run (exit 1) and prints the
# input that caused it and the command that reproduces it.
#
# Each target is compiled with swiftc (-sanitize=fuzzer,address), not SwiftPM: the sources it
# fuzzes are compiled into it as one module (FTCPWire as a module of its own where a target
# imports it), so nothing in Package.swift changes. swift-crypto, which the replication
# channel needs, is taken from the package's own build (.build/<configuration>, built for the
# Crypto target if it is not there yet).
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() {
    cat <<'EOF'
usage: deploy/fuzz.sh [--long] [--seconds N] [--runs N] [--fast] [--jobs N] [--build-only] [TARGET...]

Builds every fuzz target (or the ones named) into .build/fuzz/bin and runs each for a bounded
time from a copy of its seed corpus (Fuzz/corpus/TARGET) in a temporary folder; the repository
is never written. Exits 1 if any target finds a crash, a violated property, a leak, a slow
input (over 10 s) or a memory blow-up (over 2048 MB), printing the input and how to reproduce.

  --long          10 minutes per target (default: 20 s, or FTCP_FUZZ_SECONDS)
  --seconds N     N seconds per target
  --runs N        stop each target after N inputs instead (a campaign: --runs 10000000; with
                  --seconds too, whichever comes first)
  --fast          build without AddressSanitizer (about 3 times the inputs per second; Swift's
                  own checks still trap on an out-of-range index or an overflow), then replay
                  every input the run kept under the AddressSanitizer build
  --jobs N        run N targets at a time (default 1; the machine's cores are shared)
  --build-only    build the targets, run nothing
  -h, --help      this text

Targets:
  wire-packet         IPv4/TCP validation, accessors, parse/build round trip, setters
  segment-coalescing  segment splitting and coalescing lose, add or move no byte
  replication-opener  replication datagrams: refused unless authentic, fresh and well formed
  bridge-cores        PrimaryBridge and SecondaryBridge fed event sequences, invariants after each
  config-file         ftcp.conf parsing
  arp-packet          ARP packets, MAC and IPv4 address text
  key-file            the replication key file

Artifacts (crashing inputs, logs) go to .build/fuzz/artifacts/TARGET/. To reproduce one:
  SWIFT_BACKTRACE=enable=no .build/fuzz/bin/TARGET .build/fuzz/artifacts/TARGET/crash-...
(FTCP_FUZZ_TRACE=1 makes bridge-cores print its events.) Fuzz/make-seeds.py writes the seeds;
Fuzz/README.md says what each target holds the code to.
EOF
}

ALL_TARGETS=(wire-packet segment-coalescing replication-opener bridge-cores config-file arp-packet key-file)
seconds=${FTCP_FUZZ_SECONDS:-20}
jobs=1
build_only=false
runs=0
fast=false
time_given=false
targets=()
while (($#)); do
    case $1 in
        --long) seconds=600 time_given=true ;;
        --seconds) seconds=${2:?--seconds needs a number} time_given=true; shift ;;
        --jobs) jobs=${2:?--jobs needs a number}; shift ;;
        --runs) runs=${2:?--runs needs a number}; shift ;;
        --fast) fast=true ;;
        --build-only) build_only=true ;;
        -h | --help) usage; exit 0 ;;
        -*) printf 'fuzz: unknown option %s\n' "$1" >&2; usage >&2; exit 2 ;;
        *)
            [[ " ${ALL_TARGETS[*]} " == *" $1 "* ]] || { printf 'fuzz: unknown target %s\n' "$1" >&2; exit 2; }
            targets+=("$1")
            ;;
    esac
    shift
done
((${#targets[@]})) || targets=("${ALL_TARGETS[@]}")
[[ $seconds =~ ^[0-9]+$ && $jobs =~ ^[1-9][0-9]*$ && $runs =~ ^[0-9]+$ ]] ||
    { printf 'fuzz: --seconds, --runs and --jobs take numbers\n' >&2; exit 2; }
# A campaign of --runs has no time bound unless --seconds was given too.
if ((runs > 0)) && ! $time_given; then seconds=0; fi

log() { printf 'fuzz: %s\n' "$*"; }

OUT=.build/fuzz
mkdir -p "$OUT/bin" "$OUT/modules" "$OUT/artifacts" "$OUT/fast/bin" "$OUT/fast/modules"
# The build variant build_target and run_target use: "" (AddressSanitizer) or "fast/" (none).
variant=""
swiftc_command() {
    local sanitizers=fuzzer,address
    [[ -n $variant ]] && sanitizers=fuzzer
    SWIFTC=(nice -n 10 swiftc -swift-version 6 -sanitize="$sanitizers" -parse-as-library -O -g -use-ld=lld)
}

# Whether $1 is missing or older than any of the remaining files.
stale() {
    local product=$1
    shift
    [[ -e $product ]] || return 0
    local file
    for file in "$@"; do [[ $file -nt $product ]] && return 0; done
    return 1
}

build_wire_module() {
    local sources=(Sources/FTCPWire/*.swift) modules=$OUT/${variant}modules
    stale "$modules/FTCPWire.o" "${sources[@]}" "$0" || return 0
    log "building the FTCPWire module${variant:+ (no AddressSanitizer)}"
    swiftc_command
    "${SWIFTC[@]}" -wmo -module-name FTCPWire -emit-module -emit-module-path "$modules/FTCPWire.swiftmodule" \
        -c "${sources[@]}" -o "$modules/FTCPWire.o"
    touch "$modules/FTCPWire.o"  # swiftc leaves an unchanged object file as it was
}

# The configuration of the package build whose swift-crypto objects the replication target links.
crypto_configuration() {
    if [[ -d .build/release/Crypto.build ]]; then echo release
    elif [[ -d .build/debug/Crypto.build ]]; then echo debug
    else echo release
    fi
}

# The sources of one target besides its own file, and what it links.
target_inputs() {
    case $1 in
        wire-packet | segment-coalescing) echo "FTCPWire" ;;
        arp-packet) echo "FTCPWire Sources/FTCPLinux/ARPPacket.swift" ;;
        bridge-cores) echo "FTCPWire $(echo Sources/FTCPBridge/*.swift)" ;;
        config-file) echo "Sources/FTCPDaemon/ConfigFile.swift" ;;
        replication-opener | key-file) echo "Crypto $(echo Sources/FTCPReplication/*.swift)" ;;
    esac
}

# wire-packet -> WirePacketFuzzer
module_name() {
    local part name=""
    IFS=- read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        case $part in arp) part=ARP ;; *) part=${part^} ;; esac
        name+=$part
    done
    echo "${name}Fuzzer"
}

build_target() {
    local target=$1 module
    module=$(module_name "$target")
    local sources=("Fuzz/$module.swift" Fuzz/Support/*.swift) flags=() objects=() input
    for input in $(target_inputs "$target"); do
        case $input in
            FTCPWire)
                build_wire_module
                flags+=(-I "$OUT/${variant}modules")
                objects+=("$OUT/${variant}modules/FTCPWire.o")
                ;;
            Crypto)
                local configuration
                configuration=$(crypto_configuration)
                if [[ ! -e .build/$configuration/Modules/Crypto.swiftmodule ]]; then
                    log "building swift-crypto ($configuration) for the replication target"
                    nice -n 10 swift build -c "$configuration" --target Crypto >/dev/null
                fi
                local crypto=.build/$configuration
                flags+=(-I "$crypto/Modules")
                mapfile -t -O "${#objects[@]}" objects < <(
                    find "$crypto/Crypto.build" "$crypto/CCryptoBoringSSL.build" "$crypto/CCryptoBoringSSLShims.build" \
                        "$crypto/CryptoBoringWrapper.build" -name '*.o' | sort
                )
                ;;
            *) sources+=("$input") ;;
        esac
    done
    local binary=$OUT/${variant}bin/$target
    stale "$binary" "${sources[@]}" "${objects[@]}" "$0" || return 0
    log "building $target${variant:+ (no AddressSanitizer)}"
    swiftc_command
    "${SWIFTC[@]}" -module-name "$module" "${flags[@]}" "${sources[@]}" "${objects[@]}" -o "$binary"
}

started=$SECONDS
# One target at a time: each next target builds while the one before it runs (one build, one
# fuzzer: the two cores). Several at a time, or only building: everything is built first.
if $build_only || ((jobs > 1)) || $fast; then
    for target in "${targets[@]}"; do build_target "$target"; done
    if $fast; then
        variant=fast/
        for target in "${targets[@]}"; do build_target "$target"; done
    fi
    log "built ${#targets[@]} targets in $((SECONDS - started)) s"
fi
$build_only && exit 0

WORK=$(mktemp -d -t ftcp-fuzz.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# Runs one target; leaves its verdict in $WORK/TARGET.status and its log beside its artifacts.
run_target() {
    local target=$1 corpus=$WORK/$1 artifacts=$OUT/artifacts/$1
    mkdir -p "$corpus" "$artifacts"
    # Only this run's findings: an input found before and not fixed is found again.
    rm -f "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-* "$artifacts"/slow-unit-*
    cp Fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
    local status=0
    # The Swift runtime's own backtracer would get in libFuzzer's way when a property traps.
    SWIFT_BACKTRACE=enable=no nice -n 10 "$OUT/${variant}bin/$target" "$corpus" \
        -max_total_time="$seconds" -runs="$((runs > 0 ? runs : -1))" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" >"$artifacts/last-run.log" 2>&1 || status=$?
    if [[ $status == 0 && -n $variant ]]; then
        # Every input the fast run kept, once more under AddressSanitizer (-runs=0: the corpus only).
        SWIFT_BACKTRACE=enable=no nice -n 10 "$OUT/bin/$target" "$corpus" -runs=0 -timeout=10 -rss_limit_mb=2048 \
            -max_len=8192 -artifact_prefix="$artifacts/" >"$artifacts/last-replay.log" 2>&1 || status=$?
    fi
    echo "$status" >"$WORK/$target.status"
}

report() {
    local target=$1 status artifacts=$OUT/artifacts/$1
    status=$(cat "$WORK/$target.status")
    local runs speed
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$artifacts/last-run.log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$artifacts/last-run.log")
    local kept="" replay=""
    if [[ -n $variant ]]; then
        kept=$(find "$WORK/$target" -type f | wc -l)
        replay=", its $kept kept inputs replayed under AddressSanitizer"
    fi
    if [[ $status == 0 ]]; then
        log "$target: passed (${runs:-?} inputs, ${speed:-?}/s$replay)"
        return 0
    fi
    local logs=("$artifacts/last-run.log")
    [[ -n $variant && -e $artifacts/last-replay.log ]] && logs+=("$artifacts/last-replay.log")
    log "$target: FAILED (exit $status); its logs: ${logs[*]}"
    grep -hE 'Fatal error|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|SUMMARY' "${logs[@]}" | head -5 |
        sed 's/^/    /'
    local input
    input=$(sed -n "s/.*Test unit written to //p" "${logs[@]}" | tail -1)
    if [[ -n $input ]]; then
        log "  input: $input"
        log "  reproduce: SWIFT_BACKTRACE=enable=no $OUT/bin/$target $input"
    fi
    return 1
}

if ((runs > 0)); then
    log "running ${#targets[@]} targets until $runs inputs each, $jobs at a time"
else
    log "running ${#targets[@]} targets for $seconds s each, $jobs at a time"
fi
failed=()
index=0
if ((jobs == 1)); then
    build_target "${targets[0]}"
    for ((index = 0; index < ${#targets[@]}; index++)); do
        target=${targets[index]}
        builder=
        if ((index + 1 < ${#targets[@]})); then
            build_target "${targets[index + 1]}" &
            builder=$!
        fi
        run_target "$target"
        report "$target" || failed+=("$target")
        if [[ -n $builder ]] && ! wait "$builder"; then
            log "building ${targets[index + 1]} failed"
            exit 1
        fi
    done
fi
while ((index < ${#targets[@]})); do
    batch=("${targets[@]:index:jobs}")
    for target in "${batch[@]}"; do run_target "$target" & done
    wait
    for target in "${batch[@]}"; do report "$target" || failed+=("$target"); done
    index=$((index + jobs))
done
log "done in $((SECONDS - started)) s"
if ((${#failed[@]})); then
    log "failed: ${failed[*]}"
    exit 1
fi
