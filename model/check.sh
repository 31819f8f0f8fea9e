#!/usr/bin/env bash
# Model-checks the service-address ownership protocol (model/ownership.pml) with spin.
#
#   model/check.sh             the properties (each must hold: the design as briefed, and the
#                              guardian as GuardianPolicy.swift has it) and the reachability
#                              checks (each must find its counterexample: nothing is vacuous)
#   model/check.sh --mutants   each mutation of the protocol must make its property fail
#   model/check.sh --gaps      the known gaps (README.md): each counterexample must be found,
#                              and its steps are printed
#   model/check.sh --all       all three
#
# Needs spin and gcc on PATH (CI installs them; this script installs nothing). Prints one
# line per check and ends with "N passed, M failed"; exits non-zero if any check failed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
model=$here/ownership.pml

usage() { echo "usage: $0 [--mutants | --gaps | --all]" >&2; }
run_props=0 run_mutants=0 run_gaps=0
case ${1:-} in
    "") run_props=1 ;;
    --mutants) run_mutants=1 ;;
    --gaps) run_gaps=1 ;;
    --all) run_props=1 run_mutants=1 run_gaps=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage; exit 2 ;;
esac
[ $# -le 1 ] || { usage; exit 2; }

for tool in spin gcc; do
    command -v "$tool" >/dev/null || { echo "check.sh: $tool not found (apt-get install spin gcc)" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
depth=200000     # pan -m: far beyond the deepest path (< 200); hitting it fails the check

# build DEFINES KIND: generates and compiles pan once per (defines, kind) into its own
# directory and sets $dir. KIND is safety (-DSAFETY: no cycle detection) or liveness
# (acceptance cycles under weak fairness; 6 processes need NFAIR=3).
build() {
    local defines=$1 kind=$2 key
    key=$(printf '%s_%s' "$kind" "$defines" | tr -c 'A-Za-z0-9_\n' '_')
    dir=$work/$key
    [ -x "$dir/pan" ] && return 0
    mkdir -p "$dir"
    cp "$model" "$dir/ownership.pml"
    # shellcheck disable=SC2086  # $defines is a list of -D flags
    if ! (cd "$dir" && spin $defines -a ownership.pml >spin.log 2>&1); then
        echo "spin -a $defines failed:" >&2; cat "$dir/spin.log" >&2; return 1
    fi
    local cflags=(-O2 -w -DMEMLIM=1024)
    if [ "$kind" = safety ]; then cflags+=(-DSAFETY); else cflags+=(-DNFAIR=3); fi
    if ! (cd "$dir" && gcc "${cflags[@]}" -o pan pan.c >gcc.log 2>&1); then
        echo "gcc pan.c ($kind $defines) failed:" >&2; cat "$dir/gcc.log" >&2; return 1
    fi
}

# trail DEFINES: the counterexample of the last run in $dir, one step a line
# ("process  statement"), without the claim's and bookkeeping steps.
trail() {
    # shellcheck disable=SC2086
    (cd "$dir" && spin $1 -t -p ownership.pml 2>&1) |
        sed -nE 's/^ *[0-9]+:\s+proc +[0-9]+ \(([A-Za-z]+):1\) [^ ]+ \(state [0-9]+\)\s+\[(.*)\]$/    \1\t\2/p; /START OF CYCLE/s/.*/    -- from here on, forever (a cycle) --/p' |
        grep -vE $'\t(\\(1\\)|goto .*|else)$' | head -n 80 || true
}

# check LABEL NAME DEFINES KIND CLAIM EXPECT
#   EXPECT hold:      pan must report 0 errors over a complete search
#   EXPECT violation: pan must find a counterexample (errors > 0)
#   With SHOW_TRAIL=1 the counterexample of a violation is printed.
check() {
    local label=$1 name=$2 defines=$3 kind=$4 claim=$5 expect=$6
    local out errors states start ms elapsed verdict ok=0 flags=(-N "$claim" -m"$depth" -w20)
    printf '%s: %s ... ' "$label" "$name"
    if ! build "$defines" "$kind"; then
        echo "FAILED (could not build pan)"; failed=$((failed + 1)); return
    fi
    [ "$kind" = liveness ] && flags=(-a -f "${flags[@]}")
    out=$dir/$claim.out
    rm -f "$dir/ownership.pml.trail"
    start=$(date +%s%N)
    (cd "$dir" && ./pan "${flags[@]}" >"$out" 2>&1) || true
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    elapsed=$(printf '%d.%02d' $((ms / 1000)) $(((ms % 1000) / 10)))
    errors=$(sed -nE '/errors: [0-9]+/{s/.*errors: ([0-9]+).*/\1/p;q}' "$out")
    states=$(sed -nE '/^ *[0-9]+ states, stored/{s/^ *([0-9]+) states, stored.*/\1/p;q}' "$out")
    if [ -z "$errors" ] || [ -z "$states" ]; then
        verdict="no result from pan"
    elif [ "$expect" = hold ]; then
        if [ "$errors" -ne 0 ]; then
            verdict="VIOLATED ($errors errors, $states states)"
        elif grep -qE 'max search depth too small|Search not completed|out of memory|MEMLIM' "$out"; then
            verdict="INCOMPLETE search ($states states)"
        else
            ok=1; verdict="ok ($states states, $elapsed s)"
        fi
    else
        if [ "$errors" -gt 0 ] && [ -f "$dir/ownership.pml.trail" ]; then
            ok=1; verdict="ok, counterexample found ($states states, $elapsed s)"
        else
            verdict="NOT FOUND: expected a counterexample ($states states searched)"
        fi
    fi
    echo "$verdict"
    if [ $ok = 1 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    if [ $ok = 0 ] && [ "$expect" = hold ] && [ -f "$dir/ownership.pml.trail" ]; then
        echo "  counterexample (process, step):"; trail "$defines"
    elif [ $ok = 0 ]; then
        head -n 20 "$out" | sed 's/^/  | /'
    fi
    if [ $ok = 1 ] && [ "$expect" = violation ] && [ "${SHOW_TRAIL:-0}" = 1 ]; then
        trail "$defines"
    fi
}

# failures_text DEFINES: "<=1 failure", "<=2 failures" from its -DNFAIL=n
failures_text() {
    local n
    n=$(sed -nE 's/.*-DNFAIL=([0-9]+).*/\1/p' <<<"$1")
    if [ "$n" = 1 ]; then echo "<=1 failure"; else echo "<=$n failures"; fi
}

R1="-DNFAIL=1"              # reliable ARP, at most one failure (the main configuration)
R2="-DNFAIL=2"              # reliable ARP, at most two failures
L1="-DNFAIL=1 -DLOSSY_ARP"  # lossy ARP, at most one failure
L2="-DNFAIL=2 -DLOSSY_ARP"  # lossy ARP, at most two failures

if [ $run_props = 1 ]; then
    for d in "$R1" "$R2"; do
        c="reliable ARP, $(failures_text "$d")"
        check model "never-two-owners [$c]"       "$d" safety   never_two_owners hold
        check model "live-replica-never-reset [$c]" "$d" safety live_never_reset hold
        check model "no-black-hole [$c, weak fairness]"   "$d" liveness no_black_hole hold
        check model "service-resumes [$c, weak fairness]" "$d" liveness service_resumes hold
    done
    for d in "$L1" "$L2"; do
        c="lossy ARP, $(failures_text "$d")"
        check model "split-brain-resolved [$c, weak fairness]" "$d" liveness split_brain_resolved hold
        check model "no-black-hole [$c, weak fairness]"        "$d" liveness no_black_hole hold
    done
    # The guardian as GuardianPolicy.swift has it (role- and state-dependent): as in 750cbb7,
    # and since f53eeec (a dead promoted secondary's host keeps the address). Two failures:
    # every run with fewer is among them.
    for d in "-DNFAIL=2 -DROLE_POLICY" "-DNFAIL=2 -DROLE_POLICY -DROLE_POLICY_PROMOTED_KEEPS"; do
        case $d in *KEEPS*) c="GuardianPolicy, promoted keeps address" ;; *) c="GuardianPolicy" ;; esac
        c="$c, reliable ARP, $(failures_text "$d")"
        check model "never-two-owners [$c]"         "$d" safety   never_two_owners hold
        check model "live-replica-never-reset [$c]" "$d" safety   live_never_reset hold
        check model "no-black-hole [$c, weak fairness]"   "$d" liveness no_black_hole hold
        check model "service-resumes [$c, weak fairness]" "$d" liveness service_resumes hold
    done
    # Reachability: the situations the properties speak of do occur.
    check model "reachable: a reset (stale copy) [reliable ARP, <=1 failure]" "$R1" safety reach_reset violation
    check model "reachable: an outage with a live replica [reliable ARP, <=1 failure]" "$R1" safety reach_outage violation
    check model "reachable: two owners [lossy ARP, <=1 failure]" "$L1" safety never_two_owners violation
fi

if [ $run_mutants = 1 ]; then
    # name               property it must break    defines (comma-separated)           kind     claim
    while read -r name prop defines kind claim; do
        check mutant "$name -> $prop" "${defines//,/ }" "$kind" "$claim" violation
    done <<'EOF'
judge-early            never-two-owners          -DMUT_JUDGE_EARLY                     safety   never_two_owners
rules-before-release   live-replica-never-reset  -DMUT_RULES_FIRST                     safety   live_never_reset
address-before-xlate   live-replica-never-reset  -DMUT_ADDR_BEFORE_XLATE               safety   live_never_reset
no-release             no-black-hole             -DMUT_NO_RELEASE                      liveness no_black_hole
no-hang-kill           no-black-hole             -DMUT_NO_KILL                         liveness no_black_hole
probe-once             no-black-hole             -DMUT_PROBE_ONCE                      liveness no_black_hole
ignore-promoted        split-brain-resolved      -DMUT_IGNORE_PROMOTED,-DLOSSY_ARP     liveness split_brain_resolved
EOF
fi

if [ $run_gaps = 1 ]; then
    export SHOW_TRAIL=1
    check gap "lossy ARP: fenced primary + new owner fails = no owner forever (service-resumes)" \
        "$L1" liveness service_resumes violation
    check gap "lossy ARP, no failure at all: a false suspicion + lost answer = two owners, connection reset (live-replica-never-reset)" \
        "-DNFAIL=0 -DLOSSY_ARP" safety live_never_reset violation
    check gap "primary host reboots with its address = two owners (never-two-owners)" \
        "$R1 -DREBOOT_A" safety never_two_owners violation
    check gap "primary host reboots with its address = live connection reset (live-replica-never-reset)" \
        "$R1 -DREBOOT_A" safety live_never_reset violation
    check gap "primary host reboots with its address before the takeover = nobody serves (no-black-hole)" \
        "$R1 -DREBOOT_A" liveness no_black_hole violation
    check gap "GuardianPolicy: a primary alone that dies keeps its address; under lossy ARP a split brain then lasts forever (split-brain-resolved)" \
        "-DNFAIL=2 -DLOSSY_ARP -DNO_FALSE_GIVE_UP -DROLE_POLICY" liveness split_brain_resolved violation
    check gap "GuardianPolicy since f53eeec: a promoted secondary that dies keeps its address; the same, the other way round (split-brain-resolved)" \
        "-DNFAIL=2 -DLOSSY_ARP -DNO_FALSE_GIVE_UP -DROLE_POLICY -DROLE_POLICY_PROMOTED_KEEPS" liveness split_brain_resolved violation
    unset SHOW_TRAIL
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
