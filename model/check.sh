#!/usr/bin/env bash
# Model-checks the service-address ownership protocol (model/ownership.pml) with spin.
#
#   model/check.sh             the properties (each must hold for the code as it is, in the
#                              configuration named) and the reachability checks (each must
#                              find its counterexample: nothing is vacuous)
#   model/check.sh --mutants   each mutation of the protocol must make its property fail (the
#                              few marked "not caught" must not, for the reason README.md gives)
#   model/check.sh --gaps      the known gaps (README.md): each counterexample must be found,
#                              and its steps are printed; a suggested fix is checked too
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
depth=200000     # pan -m: far beyond the deepest path (< 2,000); hitting it fails the check

# build DEFINES KIND: generates and compiles pan once per (defines, kind) into its own
# directory and sets $dir. KIND is safety (-DSAFETY: no cycle detection) or liveness
# (acceptance cycles under weak fairness; 7 processes and the claim need NFAIR=3).
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
# ("process  statement"), without the claim's steps and the model's bookkeeping
# (answered, hb_sent, failures, *_link_went, b_round).
trail() {
    # shellcheck disable=SC2086
    (cd "$dir" && spin $1 -t -p ownership.pml 2>&1) |
        sed -nE 's/^ *[0-9]+:\s+proc +[0-9]+ \(([A-Za-z]+):1\) [^ ]+ \(state [0-9]+\)\s+\[(.*)\]$/    \1\t\2/p; /START OF CYCLE/s/.*/    -- from here on, forever (a cycle) --/p' |
        grep -vE $'\t(\\(1\\)|goto .*|else|skip)$' |
        grep -vE $'\t(answered|hb_sent|failures|[ab]_link_went|b_round) = ' | head -n 100 || true
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

# Configurations. The failure list: hosts down, workers crash or hang, the replication
# channel partitions; LINK_FAIL adds a host's interface going down (and up again).
R1="-DNFAIL=1"                                     # reliable ARP, at most one failure
R2="-DNFAIL=2"                                     # reliable ARP, at most two failures
R1N="-DNFAIL=1 -DNO_FALSE_GIVE_UP"                 # ... the primary's detector never wrong
R2N="-DNFAIL=2 -DNO_FALSE_GIVE_UP"
K1="-DNFAIL=1 -DLINK_FAIL"                         # reliable ARP, links may go down
K1N="-DNFAIL=1 -DLINK_FAIL -DNO_FALSE_GIVE_UP"
K2N="-DNFAIL=2 -DLINK_FAIL -DNO_FALSE_GIVE_UP"
L0="-DNFAIL=0 -DLOSSY_ARP"                         # lossy ARP, no failure
L1N="-DNFAIL=1 -DLOSSY_ARP -DNO_FALSE_GIVE_UP"

if [ $run_props = 1 ]; then
    # The code as it is: GuardianPolicy, the primary's AddressConflictWatch, and the service
    # address being the primary's node address (so "promoted" heartbeats never reach it).
    for d in "$R1" "$R2"; do
        c="reliable ARP, $(failures_text "$d")"
        check model "never-two-owners [$c]"                 "$d" safety   never_two_owners hold
        check model "service-resumes [$c, weak fairness]"   "$d" liveness service_resumes hold
    done
    c="reliable ARP, <=1 failure, detector never wrong"
    check model "live-replica-never-reset [$c]"             "$R1N" safety   live_never_reset hold
    check model "no-black-hole [$c, weak fairness]"         "$R1N" liveness no_black_hole hold
    c="reliable ARP, links fail, <=1 failure, detector never wrong"
    check model "never-alone-beside-owner [$c]"             "$K1N" safety   never_alone_beside_owner hold
    check model "no-black-hole [$c, weak fairness]"         "$K1N" liveness no_black_hole hold
    check model "split-brain-resolved [$c, weak fairness]"  "$K1N" liveness split_brain_resolved hold
    c="reliable ARP, links fail, <=1 failure"
    check model "split-brain-resolved [$c, weak fairness]"  "$K1" liveness split_brain_resolved hold
    check model "service-resumes [$c, weak fairness]"       "$K1" liveness service_resumes hold
    c="reliable ARP, only the secondary's link fails, <=1 failure, detector never wrong"
    check model "live-replica-never-reset [$c]"             "$K1N -DONLY_B_LINK" safety live_never_reset hold
    c="lossy ARP, no failure"
    check model "split-brain-resolved [$c, weak fairness]"  "$L0" liveness split_brain_resolved hold
    check model "service-resumes [$c, weak fairness]"       "$L0" liveness service_resumes hold
    c="lossy ARP, <=1 failure, detector never wrong"
    check model "no-black-hole [$c, weak fairness]"         "$L1N" liveness no_black_hole hold
    # Reachability: the situations the properties speak of do occur.
    check model "reachable: a reset (stale copy) [reliable ARP, <=1 failure]" "$R1" safety reach_reset violation
    check model "reachable: an outage with a live replica [reliable ARP, <=1 failure]" "$R1" safety reach_outage violation
    check model "reachable: the primary serves alone, watching [reliable ARP, <=1 failure]" "$R1" safety reach_watch violation
    check model "reachable: the primary yields to an ARP holder [reliable ARP, links fail, <=1 failure]" "$K1N" safety reach_yield violation
    check model "reachable: two owners [lossy ARP, no failure]" "$L0" safety never_two_owners violation
    check model "reachable: two owners [reliable ARP, links fail, <=1 failure]" "$K1N" safety never_two_owners violation
fi

if [ $run_mutants = 1 ]; then
    # name, property, configuration (comma-separated -D flags), kind, claim, expectation:
    # "violation" = the mutant is caught; "hold" = it is not, for the reason README.md gives.
    while read -r name prop defines kind claim expect; do
        [ -n "$name" ] || continue
        label=mutant
        [ "$expect" = hold ] && label="mutant, not caught"
        check "$label" "$name -> $prop" "${defines//,/ }" "$kind" "$claim" "$expect"
    done <<'EOF'
judge-early             never-two-owners         -DNFAIL=1,-DMUT_JUDGE_EARLY                                        safety   never_two_owners         violation
rules-before-release    live-replica-never-reset -DNFAIL=1,-DNO_FALSE_GIVE_UP,-DMUT_RULES_FIRST                     safety   live_never_reset         violation
address-before-xlate    live-replica-never-reset -DNFAIL=1,-DNO_FALSE_GIVE_UP,-DMUT_ADDR_BEFORE_XLATE              safety   live_never_reset         violation
no-release              no-black-hole            -DNFAIL=1,-DNO_FALSE_GIVE_UP,-DMUT_NO_RELEASE                      liveness no_black_hole            violation
no-hang-kill            no-black-hole            -DNFAIL=1,-DNO_FALSE_GIVE_UP,-DMUT_NO_KILL                         liveness no_black_hole            violation
probe-once              no-black-hole            -DNFAIL=1,-DNO_FALSE_GIVE_UP,-DMUT_PROBE_ONCE                      liveness no_black_hole            violation
no-confirm              never-alone-beside-owner -DNFAIL=1,-DLINK_FAIL,-DNO_FALSE_GIVE_UP,-DMUT_NO_CONFIRM          safety   never_alone_beside_owner violation
no-hold                 never-alone-beside-owner -DNFAIL=1,-DLINK_FAIL,-DNO_FALSE_GIVE_UP,-DMUT_NO_HOLD             safety   never_alone_beside_owner violation
confirm-no-restart      never-alone-beside-owner -DNFAIL=1,-DLINK_FAIL,-DNO_FALSE_GIVE_UP,-DMUT_CONFIRM_NO_RESTART  safety   never_alone_beside_owner violation
ignore-holder/link      split-brain-resolved     -DNFAIL=1,-DLINK_FAIL,-DNO_FALSE_GIVE_UP,-DMUT_IGNORE_HOLDER       liveness split_brain_resolved     violation
ignore-holder/lossy     split-brain-resolved     -DNFAIL=0,-DLOSSY_ARP,-DMUT_IGNORE_HOLDER                          liveness split_brain_resolved     violation
no-watch                split-brain-resolved     -DNFAIL=0,-DLOSSY_ARP,-DMUT_NO_WATCH                               liveness split_brain_resolved     violation
ignore-both/old-channel split-brain-resolved     -DNFAIL=0,-DLOSSY_ARP,-DHB_REACHES_PEER,-DMUT_IGNORE_HOLDER,-DMUT_IGNORE_PROMOTED liveness split_brain_resolved violation
ignore-promoted         split-brain-resolved     -DNFAIL=0,-DLOSSY_ARP,-DMUT_IGNORE_PROMOTED                        liveness split_brain_resolved     hold
ignore-holder/old-channel split-brain-resolved   -DNFAIL=0,-DLOSSY_ARP,-DHB_REACHES_PEER,-DMUT_IGNORE_HOLDER        liveness split_brain_resolved     hold
no-reannounce           split-brain-resolved     -DNFAIL=1,-DLINK_FAIL,-DNO_FALSE_GIVE_UP,-DMUT_NO_REANNOUNCE       liveness split_brain_resolved     hold
heartbeat-while-confirming never-alone-beside-owner -DNFAIL=1,-DLINK_FAIL,-DNO_FALSE_GIVE_UP,-DMUT_HB_WHILE_CONFIRMING safety never_alone_beside_owner hold
EOF
fi

if [ $run_gaps = 1 ]; then
    export SHOW_TRAIL=1
    check gap "1. the primary yields, then the new owner fails: no owner forever [lossy ARP, <=1 failure] (service-resumes)" \
        "$L1N" liveness service_resumes violation
    check gap "1. the same after a cut-off link [reliable ARP, links fail, <=2 failures] (service-resumes)" \
        "$K2N" liveness service_resumes violation
    check gap "2. lossy ARP, no failure at all: two owners, connection reset (live-replica-never-reset)" \
        "$L0" safety live_never_reset violation
    check gap "3. primary host reboots with its address = two owners (never-two-owners)" \
        "$R1 -DREBOOT_A" safety never_two_owners violation
    check gap "3. primary host reboots with its address = live connection reset (live-replica-never-reset)" \
        "$R1 -DREBOOT_A" safety live_never_reset violation
    check gap "3. primary host reboots with its address before the takeover = nobody serves (no-black-hole)" \
        "$R1 -DREBOOT_A" liveness no_black_hole violation
    check gap "4. a primary that dies alone keeps its address: split brain forever [lossy ARP, <=1 failure] (split-brain-resolved)" \
        "$L1N" liveness split_brain_resolved violation
    check gap "4. the same after a cut-off link [reliable ARP, links fail, <=2 failures] (split-brain-resolved)" \
        "$K2N" liveness split_brain_resolved violation
    unset SHOW_TRAIL
    check "gap 4, suggested fix" "FIX_GUARDIAN_WATCH: split-brain-resolved [lossy ARP, <=2 failures, weak fairness]" \
        "-DNFAIL=2 -DLOSSY_ARP -DFIX_GUARDIAN_WATCH" liveness split_brain_resolved hold
    check "gap 4, suggested fix" "FIX_GUARDIAN_WATCH: split-brain-resolved [reliable ARP, links fail, <=2 failures, weak fairness]" \
        "-DNFAIL=2 -DLINK_FAIL -DFIX_GUARDIAN_WATCH" liveness split_brain_resolved hold
    export SHOW_TRAIL=1
    check gap "5. the primary dies while confirming: the secondary's in-sync copy is lost [<=1 failure, a false verdict] (live-replica-never-reset)" \
        "$R1" safety live_never_reset violation
    check gap "5. the same with a real silence [<=2 failures] (no-black-hole)" \
        "$R2N" liveness no_black_hole violation
    check gap "6. a link blip ends right after the secondary's unanswered round: two owners, both sending (live-replica-never-reset)" \
        "$K1N" safety live_never_reset violation
    check gap "7a. a dead link that gives no error (carrier lost): the confirming round passes (never-alone-beside-owner)" \
        "$K1N -DSILENT_LINK" safety never_alone_beside_owner violation
    check gap "7b. a secondary behind such a link takes over from a healthy primary (live-replica-never-reset)" \
        "$K1N -DSILENT_LINK -DONLY_B_LINK" safety live_never_reset violation
    check gap "7c. the link goes down between two watch probes: back, the primary serves beside the new owner [<=2 failures] (never-alone-beside-owner)" \
        "$K2N" safety never_alone_beside_owner violation
    check gap "8. the secondary judges its round late (PROMPT_JUDGE dropped) (never-alone-beside-owner)" \
        "$K1N -DSLOW_JUDGE" safety never_alone_beside_owner violation
    unset SHOW_TRAIL
    check "gap 7, suggested fix" "FIX_LINK_EVENTS: never-alone-beside-owner [reliable ARP, links fail silently, <=1 failure]" \
        "$K1 -DSILENT_LINK -DFIX_LINK_EVENTS" safety never_alone_beside_owner hold
    check "gap 7, suggested fix" "FIX_LINK_EVENTS: live-replica-never-reset [the secondary's link fails silently, <=1 failure, detector never wrong]" \
        "$K1N -DSILENT_LINK -DONLY_B_LINK -DFIX_LINK_EVENTS" safety live_never_reset hold
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
