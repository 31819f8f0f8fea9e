/*
 * ownership.pml -- who owns the service address, and what happens to one
 * replicated client connection, in ftcp's failover design.
 *
 * Two hosts: A starts as the primary and holds the service address, B starts
 * as the secondary. Each host runs a worker (the bridge process) under a
 * guardian (its parent). Checked with spin; see check.sh and README.md.
 *
 * Configuration (-D at `spin -a` time):
 *   NFAIL=n       at most n component failures per run (default 1)
 *   LOSSY_ARP     an ARP probe or its answer can be lost (default: ARP is
 *                 reliable while both hosts are up)
 *   REBOOT_A      a host A that went down may come back, with the service
 *                 address configured by its boot-time network configuration
 *                 (beyond the design's failure list; see README.md "gaps")
 *   NO_FALSE_GIVE_UP  the primary gives up on the secondary only when it
 *                 really is silent (default: also on a false verdict)
 *   ROLE_POLICY   the guardian follows GuardianPolicy.swift (role- and
 *                 state-dependent) instead of "release, then remove rules";
 *                 ROLE_POLICY_PROMOTED_KEEPS: a dead promoted secondary's
 *                 host keeps the address (see the guardians below)
 * Mutations, each of which must make one property fail (check.sh --mutants):
 *   MUT_JUDGE_EARLY        the secondary judges a probe round before the
 *                          window in which answers are read
 *   MUT_RULES_FIRST        a guardian removes the firewall rules before it
 *                          releases the address
 *   MUT_ADDR_BEFORE_XLATE  the secondary adds the address before it starts
 *                          translating inherited connections
 *   MUT_NO_RELEASE         a guardian does not release the address (the
 *                          design before guardians existed)
 *   MUT_NO_KILL            a guardian never kills a hung worker
 *   MUT_PROBE_ONCE         after one answered round the secondary never
 *                          probes again
 *   MUT_IGNORE_PROMOTED    the primary ignores heartbeats saying "promoted"
 *
 * Time is abstracted away: every step may take any time. Where the design
 * relies on a timing bound, the model says so at that step.
 */

#ifndef NFAIL
#define NFAIL 1
#endif

/* What a worker is doing. */
#define RUN    0   /* running: handles packets, sends heartbeats */
#define PAUSED 1   /* stopped (SIGSTOP) or hung: does nothing, may resume */
#define DEAD   2   /* crashed, killed, or its host is down */
#define FENCED 3   /* primary only: saw "promoted", released, stopped serving */

/* Contents of the secondary's latest heartbeat to the primary. */
mtype = { NONE, SECONDARY, PROMOTED };

/* ---- hosts ---------------------------------------------------------------- */
bool a_up = true;       bool b_up = true;       /* host is up (never returns, unless REBOOT_A) */
bool a_addr = true;     bool b_addr = false;    /* service address configured on the interface */
bool a_rules = true;    bool b_rules = true;    /* the worker's iptables rules (NFQUEUE, no
                                                    bypass: while no worker reads the queue,
                                                    protected traffic is dropped) */
byte a_w = RUN;         byte b_w = RUN;         /* worker state */

/* ---- protocol state ------------------------------------------------------- */
bool a_alone = false;     /* primary gave up on the secondary: serves alone */
bool b_promoted = false;  /* secondary took the address over */
bool b_xlate = false;     /* secondary translates inherited connections
                             (service address <-> its own) */
bool part = false;        /* replication channel partitioned */
mtype hb_b2a = NONE;      /* the secondary's latest heartbeat not yet read by the
                             primary (UDP: a newer one replaces it) */

/* ---- ARP on the shared segment ---------------------------------------------- */
bool probe = false;       /* the secondary's probe round is on the wire */
bool answer = false;      /* an answer to it is on its way to the secondary */

/* ---- the one client connection -------------------------------------------- */
bool a_rep = true;        /* A has an in-sync copy (the connection was opened while */
bool b_rep = true;        /* both workers were alive and replicating)               */

byte failures = 0;        /* component failures injected so far */
bool a_rebooted = false;  /* REBOOT_A only: host A came back; no bridge, no guardian */

/* ---- predicates used by the properties ------------------------------------ */
/* A host owns the address when it is up and the address is configured on it:
   its kernel then answers ARP for it, whatever its worker does. */
#define owner_a     (a_up && a_addr)
#define owner_b     (b_up && b_addr)
#define two_owners  (owner_a && owner_b)
#define one_owner   (owner_a != owner_b)

/* A live replica: the host is up, its worker is alive (running or paused, not
   dead) and its copy of the connection is in sync. A fenced primary has
   dropped its copy. */
#define live_a        (a_up && a_w != DEAD && a_rep)
#define live_b        (b_up && b_w != DEAD && b_rep)
#define live_replica  (live_a || live_b)

/* The connection is served: a host owns the address and its running worker
   has an in-sync copy (the new owner also translates). */
#define serving_conn  ((owner_a && a_w == RUN && a_rep) || \
                       (owner_b && b_w == RUN && b_rep && b_xlate))

/* The address is served at all (new connections work): an owner's worker
   runs, or the owner has no rules left, so its kernel serves as a plain
   server. An owner whose worker is paused or dead but whose rules are still
   in place drops everything: a black hole. */
#define serving_any  ((owner_a && (a_w == RUN || !a_rules)) || \
                      (owner_b && (b_w == RUN || !b_rules)))

/* Some worker is alive at all (running, paused or fenced). */
#define worker_up  ((a_up && a_w != DEAD) || (b_up && b_w != DEAD))

/* The client's segments go to whoever owns the address (the router's ARP
   cache may point at either owner; the model sends to all of them). The
   connection is reset if
   - both hosts own the address (both answer, in two sequence spaces), or
   - an owner's kernel sees the segment itself: its rules are gone (nothing
     stops the kernel from answering a connection it has in another sequence
     space, or not at all), or
   - an owner's running worker has no in-sync copy to serve it from, or (the
     secondary after takeover) does not translate yet, so its kernel, whose
     sockets are bound to its own address, answers with RST.
   An owner whose worker is paused or dead but whose rules are still in place
   drops the segment: a stall, not a reset. */
#define reset_by_a  (owner_a && (!a_rules || (a_w == RUN && !a_rep)))
#define reset_by_b  (owner_b && (!b_rules || (b_w == RUN && (!b_rep || !b_xlate))))
#define reset_cond  (two_owners || reset_by_a || reset_by_b)

/* ============================================================================
 * Primary worker (A). While running (not paused, not dead) it serves and, in
 * each step, reads the secondary's latest heartbeat:
 * - "promoted": the peer took the address over; it releases the address and
 *   stops serving for good (fences itself);
 * - none for a while: it gives up on the secondary and serves alone. That
 *   ends the protection of the connection (the secondary's copy is no longer
 *   kept in sync) but does not change ownership. The model lets this verdict
 *   be false (a late heartbeat, a busy host): it may come whenever no
 *   heartbeat is waiting. With NO_FALSE_GIVE_UP it comes only when the
 *   secondary really is silent (partition, its worker not running, its host
 *   down).
 * Its own heartbeats to the secondary are not modelled: the secondary's
 * detector is allowed to suspect at any moment anyway (see below).
 * ==========================================================================*/
#ifdef NO_FALSE_GIVE_UP
#define may_give_up  (part || !b_up || b_w != RUN)   /* only a real silence */
#else
#define may_give_up  true                            /* a false verdict too */
#endif

active proctype PrimaryWorker()
{
end_serve:
    do
    :: atomic { a_w == RUN ->
        if
        :: hb_b2a == PROMOTED ->
#ifdef MUT_IGNORE_PROMOTED
            hb_b2a = NONE                                  /* mutation: ignored */
#else
            a_addr = false; a_rep = false; a_w = FENCED    /* fence: release, stop */
#endif
        :: hb_b2a == SECONDARY -> hb_b2a = NONE            /* peer alive */
        :: hb_b2a == NONE && !a_alone && may_give_up -> a_alone = true; b_rep = false  /* give up */
        :: hb_b2a == NONE -> skip                          /* still waiting */
        fi }
    od
}

/* ============================================================================
 * Secondary worker (B): the failure detector and the takeover.
 * Detection is abstracted: the primary's heartbeats may be late for any
 * reason, so the secondary may suspect at any moment, and it keeps doing so
 * while it is not promoted (a false alarm only costs a probe round). The
 * design must therefore be safe whatever the detector decides: only the ARP
 * probe round protects the address.
 * A probe round: send the probe, then a window in which answers are read,
 * then judge. "Reliable ARP" means the window is long enough: it closes only
 * once the probe has reached every host and their answers have been read
 * (the design's 5 ms after the last probe is assumed to suffice).
 * If anything answered, it does not take over and probes again later.
 * Otherwise it takes over: translation first, then the address (plus
 * gratuitous ARP, not modelled: the client reaches every owner anyway), and
 * its heartbeats then say "promoted".
 * Each step sends a heartbeat carrying its state, unless the channel is
 * partitioned (then the datagram is lost).
 * ==========================================================================*/
active proctype SecondaryWorker()
{
    bool answered = false;
    bool gave_up_probing = false;   /* only MUT_PROBE_ONCE ever sets it */
end_watch:
    do
    :: atomic { b_w == RUN && b_promoted ->
        if :: !part -> hb_b2a = PROMOTED :: else -> skip fi }
    :: atomic { b_w == RUN && !b_promoted && !gave_up_probing ->
        if :: !part -> hb_b2a = SECONDARY :: else -> skip fi;
        answered = false;
        probe = true }                                     /* suspect: send the probe */
#ifdef MUT_JUDGE_EARLY
        /* mutation: the round is judged from what has arrived so far,
           before the window in which the answers are read */
        atomic { b_w == RUN -> answered = answer; answer = false };
#else
end_window:
        do
        :: atomic { b_w == RUN && answer -> answer = false; answered = true }
        :: atomic { b_w == RUN && !probe && !answer -> break }  /* window over */
        od;
#endif
end_judge:
        if
        :: b_w == RUN && answered ->                       /* a host answered */
#ifdef MUT_PROBE_ONCE
            gave_up_probing = true
#else
            skip                                           /* probe again later */
#endif
        :: b_w == RUN && !answered ->                      /* silence: take over */
#ifdef MUT_ADDR_BEFORE_XLATE
            atomic { b_w == RUN -> b_addr = true };
end_claim_m:
            atomic { b_w == RUN -> b_xlate = true; b_promoted = true }
#else
            atomic { b_w == RUN -> b_xlate = true };
end_claim:
            atomic { b_w == RUN -> b_addr = true; b_promoted = true }
#endif
        fi
    od
}

/* ============================================================================
 * ARP on the shared segment: the kernels. A host's kernel answers a probe
 * for the service address whenever the host is up and the address is
 * configured on it, independent of its worker. With LOSSY_ARP a probe or an
 * answer can be lost.
 * ==========================================================================*/
active proctype Segment()
{
end_arp:
    do
    :: atomic { probe ->
        if :: owner_a || owner_b -> answer = true :: else -> skip fi;
        probe = false }
#ifdef LOSSY_ARP
    :: atomic { probe -> probe = false }                   /* probe lost */
    :: atomic { answer -> answer = false }                 /* answer lost */
#endif
    od
}

/* ============================================================================
 * Guardians: the parent of each worker; dies only with its host. When the
 * worker dies, or hangs past the hang timeout (the guardian then kills it:
 * SIGKILL also ends a stopped process, and the guardian waits for it), the
 * guardian releases the address if its host holds it, then removes the
 * firewall rules, then exits. A fenced worker is not dead: its guardian does
 * nothing (in the code the bridge exits with status 3 and the guardian
 * leaves the host as it is).
 * With ROLE_POLICY the guardian instead does what GuardianPolicy.swift
 * decides from the role and the worker's state (here: its true state; the
 * code uses the last state the worker reported):
 *   primary replicating      release the address, keep the rules
 *   primary alone            remove the rules, keep the address (plain server)
 *   secondary promoted       release the address, remove the rules (750cbb7)
 *                            or, with ROLE_POLICY_PROMOTED_KEEPS (f53eeec),
 *                            remove the rules, keep the address: plain server
 *   secondary not promoted   remove the rules
 * ==========================================================================*/
active proctype GuardianA()
{
end_watch:
    do
#ifndef MUT_NO_KILL
    :: atomic { a_up && !a_rebooted && a_w == PAUSED -> a_w = DEAD }      /* hang timeout: kill */
#endif
    :: atomic { a_up && !a_rebooted && a_w == DEAD -> break }             /* worker gone */
    od;
#if defined(ROLE_POLICY)
end_policy:
    atomic { a_up && !a_rebooted ->
        if
        :: !a_alone -> a_addr = false     /* replicating: release, keep the rules */
        :: else -> a_rules = false        /* alone: keep the address, remove the
                                             rules: a plain server from now on */
        fi }
#elif defined(MUT_RULES_FIRST)
end_rules_m:
    atomic { a_up && !a_rebooted -> a_rules = false };
end_release_m:
    atomic { a_up && !a_rebooted -> a_addr = false }
#else
end_release:
#ifndef MUT_NO_RELEASE
    atomic { a_up && !a_rebooted -> a_addr = false };
#endif
end_rules:
    atomic { a_up && !a_rebooted -> a_rules = false }
#endif
}

active proctype GuardianB()
{
end_watch:
    do
#ifndef MUT_NO_KILL
    :: atomic { b_up && b_w == PAUSED -> b_w = DEAD }
#endif
    :: atomic { b_up && b_w == DEAD -> break }
    od;
#if defined(ROLE_POLICY)
end_policy:
    atomic { b_up ->
        if
        :: b_promoted ->
#ifndef ROLE_POLICY_PROMOTED_KEEPS
            b_addr = false;               /* promoted: release, remove the rules */
#endif
            b_rules = false               /* (PROMOTED_KEEPS: a plain server) */
        :: else -> b_rules = false        /* not promoted: remove the rules */
        fi }
#elif defined(MUT_RULES_FIRST)
end_rules_m:
    atomic { b_up -> b_rules = false };
end_release_m:
    atomic { b_up -> b_addr = false }
#else
end_release:
#ifndef MUT_NO_RELEASE
    atomic { b_up -> b_addr = false };
#endif
end_rules:
    atomic { b_up -> b_rules = false }
#endif
}

/* ============================================================================
 * Failures: at most NFAIL of them per run. A paused worker may be resumed
 * (SIGCONT; not a new failure) unless its guardian killed it first; a
 * partition may heal (not a new failure). The injector may stop at any time
 * (`break`), so "maybe resumed" and "maybe heals" include "never": weak
 * fairness does not force a resume or a heal.
 * A host that goes down takes its worker, guardian and address with it and
 * does not come back (with REBOOT_A, host A may come back: see below).
 * ==========================================================================*/
active proctype Failures()
{
end_inject:
    do
    :: atomic { failures < NFAIL && a_up ->                /* host A down */
        a_up = false; a_addr = false; a_w = DEAD; failures++ }
    :: atomic { failures < NFAIL && b_up ->                /* host B down */
        b_up = false; b_addr = false; b_w = DEAD; failures++ }
    :: atomic { failures < NFAIL && a_up && a_w != DEAD ->  /* A's worker crashes */
        a_w = DEAD; failures++ }
    :: atomic { failures < NFAIL && a_up && a_w == RUN ->  /* A's worker stopped / hangs */
        a_w = PAUSED; failures++ }
    :: atomic { a_w == PAUSED -> a_w = RUN }               /* ... and resumes */
    :: atomic { failures < NFAIL && b_up && b_w != DEAD -> /* B's worker crashes */
        b_w = DEAD; failures++ }
    :: atomic { failures < NFAIL && b_up && b_w == RUN ->  /* B's worker stopped / hangs */
        b_w = PAUSED; failures++ }
    :: atomic { b_w == PAUSED -> b_w = RUN }               /* ... and resumes */
    :: atomic { failures < NFAIL && !part ->               /* channel partitioned */
        part = true; failures++ }
    :: atomic { part -> part = false }                     /* ... and heals */
#ifdef REBOOT_A
    /* Host A boots again. Its network configuration adds its own address,
       which is the service address; its bridge is not running (or refuses
       to start), so its worker is dead and it has no rules. */
    :: atomic { !a_up -> a_up = true; a_rebooted = true;
                 a_addr = true; a_rules = false; a_w = DEAD; a_rep = false }
#endif
    :: break                                               /* no more failures */
    od
}

/* ============================================================================
 * Properties. Run one at a time: pan -N <name>.
 * ==========================================================================*/

/* 1. Never two owners of the service address (reliable ARP). */
ltl never_two_owners { [] !two_owners }

/* 2. A connection with a live replica is never reset: whenever the client's
      traffic would reset it, no up host with a live worker has a copy. */
ltl live_never_reset { [] (reset_cond -> !live_replica) }

/* 3. No black hole (weak fairness): while some host is up with a live worker
      holding a replica, eventually a host owns the address and serves the
      connection from its copy -- unless no live replica is left by then.
      (Stronger than "some host holds the address": a host that holds it
      with a dead worker and its rules in place black-holes the traffic.) */
ltl no_black_hole { [] (live_replica -> <> (serving_conn || !live_replica)) }

/* 3b. The service as a whole, replica or not: while some worker is alive,
       eventually the address is served (by a worker or a plain kernel). */
ltl service_resumes { [] (worker_up -> <> (serving_any || !worker_up)) }

/* 4. Lossy ARP: once the partition (if any) has healed for good, two owners
      are eventually resolved to exactly one. */
ltl split_brain_resolved { (<> [] !part) -> [] (two_owners -> <> one_owner) }

/* Reachability (vacuity) checks: these must FAIL, which shows that the
   situations the properties above talk about really occur in the model. */
ltl reach_reset { [] !reset_cond }                 /* resets happen (stale copies) */
ltl reach_outage { [] (live_replica -> serving_conn) } /* outages happen, for a while */
/* (and under LOSSY_ARP, never_two_owners must fail: two owners arise) */
