/*
 * ownership.pml -- who owns the service address, and what happens to one
 * replicated client connection, in ftcp's failover design as the code has it
 * (PrimaryDaemon, SecondaryDaemon, TakeoverCoordinator, AddressConflictWatch,
 * GuardianPolicy).
 *
 * Two hosts: A starts as the primary and holds the service address, B starts
 * as the secondary. Each host runs a worker (the bridge process) under a
 * guardian (its parent). Checked with spin; see check.sh and README.md.
 *
 * The service address is A's own node address. So B's datagrams to A go to
 * an address that is local to B as soon as B holds it: while B holds the
 * address, none of its heartbeats reaches A (a "promoted" heartbeat never
 * does); only ARP tells A that B holds it.
 *
 * Configuration (-D at `spin -a` time):
 *   NFAIL=n       at most n component failures per run (default 1)
 *   LINK_FAIL     a host's network interface may go down (a failure) and come
 *                 back: nothing leaves or reaches the host meanwhile; sending
 *                 an ARP probe fails (ENETDOWN, `ip link set dev down`)
 *   SILENT_LINK   (with LINK_FAIL) a dead link gives no error: a probe sent
 *                 on it is lost without a trace (carrier lost, cable cut)
 *   ONLY_B_LINK   (with LINK_FAIL) only B's interface may go down
 *   LOSSY_ARP     an ARP frame (probe, answer, announcement) can be lost,
 *                 until ARP becomes reliable for good (arp_lossy, which the
 *                 liveness property assumes happens at some point)
 *   HB_REACHES_PEER  B's heartbeats reach A even while B holds the address
 *                 (a service address that is not A's node address; the
 *                 earlier model's assumption)
 *   NO_FALSE_GIVE_UP  the primary gives up on the secondary only when it
 *                 really is silent (default: also on a false verdict)
 *   REBOOT_A      a host A that went down may come back, with the service
 *                 address configured by its boot-time network configuration
 *                 (beyond the failure list; see README.md "gaps")
 *   SLOW_JUDGE    drop the timing assumption PROMPT_JUDGE (below): the
 *                 secondary may judge its round at any time after its probe
 *   FIX_LINK_EVENTS  a suggested fix, not the code: both bridges follow their
 *                 link's state (a lost carrier too): a probe on a dead link
 *                 counts as not sent (as with SILENT_LINK off), and a primary
 *                 that serves alone goes back to confirming when its link goes
 *                 down
 *   FIX_GUARDIAN_WATCH  a suggested fix, not the code: the guardian of a
 *                 primary that died alone (and kept the address) keeps
 *                 probing for another holder and releases the address if one
 *                 answers
 * Mutations (check.sh --mutants; most must make a property fail, README.md
 * says why the others cannot):
 *   MUT_JUDGE_EARLY        the secondary judges a probe round before the
 *                          window in which answers are read
 *   MUT_RULES_FIRST        a replicating primary's guardian removes the rules,
 *                          then releases the address
 *   MUT_ADDR_BEFORE_XLATE  the secondary adds the address before it starts
 *                          translating inherited connections
 *   MUT_NO_RELEASE         a replicating primary's guardian does not release
 *                          the address (the design before guardians)
 *   MUT_NO_KILL            a guardian never kills a hung worker
 *   MUT_PROBE_ONCE         after one answered round the secondary never
 *                          probes again
 *   MUT_IGNORE_PROMOTED    the primary ignores heartbeats saying "promoted"
 *   MUT_NO_CONFIRM         the primary serves alone at once, without the
 *                          confirming round (it still watches)
 *   MUT_NO_HOLD            the primary runs the confirming round but does not
 *                          hold its output meanwhile
 *   MUT_IGNORE_HOLDER      the primary never yields to an ARP holder
 *   MUT_NO_WATCH           after an unanswered confirming round the primary
 *                          stops probing
 *   MUT_CONFIRM_NO_RESTART a probe that cannot be sent counts as sent and
 *                          unanswered (the round is not started over)
 *   MUT_NO_REANNOUNCE      a promoted secondary does not announce the address
 *                          again when it hears the primary
 *   MUT_HB_WHILE_CONFIRMING  the primary sends heartbeats while confirming
 *
 * Time is abstracted away: every step may take any time (so a frame or a
 * message may also wait unread for any time). Where the model relies on a
 * timing bound (PROMPT_JUDGE), it says so at that step.
 */

#ifndef NFAIL
#define NFAIL 1
#endif

/* What a worker is doing. */
#define RUN    0   /* running: handles packets, sends heartbeats */
#define PAUSED 1   /* stopped (SIGSTOP) or hung: does nothing, may resume */
#define DEAD   2   /* crashed, killed, or its host is down */
#define FENCED 3   /* primary only: yielded the address (exit status 3) */

/* The primary's AddressConflictWatch. */
#define IDLE    0  /* a secondary is heard: no probes */
#define CONFIRM 1  /* confirming that the address is still its own: output to
                      clients held, no heartbeats, probes; a probe that cannot
                      be sent starts the round over */
#define WATCH   2  /* serving alone, probing now and then */

/* Contents of the secondary's latest message to the primary. */
mtype = { NONE, SECONDARY, PROMOTED };

/* ---- hosts ---------------------------------------------------------------- */
bool a_up = true;       bool b_up = true;       /* host is up (never returns, unless REBOOT_A) */
bool a_link = true;     bool b_link = true;     /* its interface is up (LINK_FAIL) */
bool a_link_went = false; bool b_link_went = false; /* the link went down since the host's
                                                    current probe round began: one probe
                                                    stands for three, 5 ms apart, so a
                                                    later one of the round could not be
                                                    sent (unless SILENT_LINK) */
bool a_addr = true;     bool b_addr = false;    /* service address configured on the interface */
bool a_rules = true;    bool b_rules = true;    /* the worker's iptables rules (NFQUEUE, no
                                                    bypass: while no worker reads the queue,
                                                    protected traffic is dropped) */
byte a_w = RUN;         byte b_w = RUN;         /* worker state */

/* ---- protocol state ------------------------------------------------------- */
bool a_alone = false;     /* the primary's detector declared the secondary failed
                             (its reported state is "alone") */
byte a_watch = IDLE;      /* the primary's AddressConflictWatch phase */
bool b_promoted = false;  /* secondary took the address over */
bool b_round = false;     /* the secondary's probe crossed the segment (or was
                             lost) unanswered, and the round is not judged (or
                             the claim not made) yet */
bool b_xlate = false;     /* secondary translates inherited connections
                             (service address <-> its own) */
bool part = false;        /* replication channel partitioned */
mtype hb_b2a = NONE;      /* the secondary's latest message not yet read by the
                             primary (UDP: a newer one replaces it) */

/* ---- ARP on the shared segment ---------------------------------------------- */
bool b_probe = false;     /* the secondary's probe round is on the wire */
bool b_ans = false;       /* an answer to it is on its way to the secondary */
bool a_probed = false;    /* the primary's probe has crossed the segment and its
                             answer window is open (its answer, if any, is in
                             a_holder) */
bool a_holder = false;    /* an ARP frame from another holder of the address
                             (an answer to the primary's probe, or the
                             secondary's gratuitous ARP) waits at the primary */
#ifdef LOSSY_ARP
bool arp_lossy = true;    /* ARP frames may still be lost */
#else
#define arp_lossy false
#endif

/* ---- the one client connection -------------------------------------------- */
bool a_rep = true;        /* A has an in-sync copy (the connection was opened while */
bool b_rep = true;        /* both workers were alive and replicating)               */

byte failures = 0;        /* component failures injected so far */
bool a_rebooted = false;  /* REBOOT_A only: host A came back; no bridge, no guardian */

/* ---- predicates used by the properties ------------------------------------ */
/* A host owns the address when it is up, the address is configured on it and
   its link is up: its kernel then answers ARP for it (whatever its worker
   does) and clients' segments reach it. A host with a dead link holds the
   address but is not on the segment. */
#define owner_a     (a_up && a_addr && a_link)
#define owner_b     (b_up && b_addr && b_link)
#define two_owners  (owner_a && owner_b)
#define one_owner   (owner_a != owner_b)

/* A live replica: the host is up, its worker is alive (running or paused, not
   dead) and its copy of the connection is in sync. A fenced primary has
   dropped its copy. */
#define live_a        (a_up && a_w != DEAD && a_rep)
#define live_b        (b_up && b_w != DEAD && b_rep)
#define live_replica  (live_a || live_b)

/* A host sends to the connection's client: it owns the address and its
   running worker lets segments out (not the primary while it confirms), or it
   has no rules left, so its kernel talks to clients directly. */
#define a_sends  ((a_w == RUN && a_watch != CONFIRM) || !a_rules)
#define b_sends  (b_w == RUN || !b_rules)
#ifdef MUT_NO_HOLD
#undef a_sends
#define a_sends  (a_w == RUN || !a_rules)                /* mutation: nothing held */
#endif
#define emit_a   (owner_a && a_sends)
#define emit_b   (owner_b && b_sends)

/* The connection is served: a host owns the address and its running worker
   serves it from an in-sync copy (the new owner also translates). */
#define serving_conn  ((owner_a && a_w == RUN && a_watch != CONFIRM && a_rep) || \
                       (owner_b && b_w == RUN && b_rep && b_xlate))

/* The address is served at all (new connections work): an owner lets
   segments out. An owner whose worker is paused, dead or confirming while its
   rules are in place drops everything: a black hole (for a while). */
#define serving_any  (emit_a || emit_b)

/* Some worker is alive at all (running, paused or fenced). */
#define worker_up  ((a_up && a_w != DEAD) || (b_up && b_w != DEAD))

/* The client's segments go to whoever owns the address (the router's ARP
   cache may point at either owner; the model sends to all of them). The
   connection is reset if
   - both owners send to the client (two sequence spaces), or
   - an owner's kernel sees the segment itself: its rules are gone (nothing
     stops the kernel from answering a connection it has in another sequence
     space, or not at all), or
   - an owner's running worker, letting segments out, has no in-sync copy to
     serve it from, or (the secondary after takeover) does not translate yet,
     so its kernel, whose sockets are bound to its own address, answers RST.
   An owner that drops the segment (worker paused or dead with its rules in
   place, or the primary confirming) stalls it: not a reset. */
#define reset_by_a  (owner_a && (!a_rules || (a_w == RUN && a_sends && !a_rep)))
#define reset_by_b  (owner_b && (!b_rules || (b_w == RUN && (!b_rep || !b_xlate))))
#define reset_cond  ((emit_a && emit_b) || reset_by_a || reset_by_b)

/* Both links are up; the environment has settled: no partition, both links
   up, ARP reliable. */
#define links_up (a_link && b_link)
#define settled  (!part && links_up && !arp_lossy)

/* ---- the replication channel B -> A ---------------------------------------- */
/* A datagram from B reaches A if the channel is not partitioned, both links
   are up, and B does not hold the service address: A's node address is the
   service address, so once B has it configured, B's datagrams to it stay on
   B. */
#ifdef HB_REACHES_PEER
#define b_to_a_lost  false
#else
#define b_to_a_lost  b_addr
#endif
#define b_to_a_path  (!part && a_link && b_link && a_up && !b_to_a_lost)

/* A heartbeat from A reaches B now: A's worker runs and sends heartbeats (not
   while it confirms), and the channel and both links are up. (A's heartbeats
   go to B's node address, which is never the service address.) */
#ifdef MUT_HB_WHILE_CONFIRMING
#define a_hb_out  (a_w == RUN)                             /* mutation: also while confirming */
#else
#define a_hb_out  (a_w == RUN && a_watch != CONFIRM)
#endif
#define a_to_b_heartbeat  (a_up && a_hb_out && !part && a_link && b_link && b_up)

/* ============================================================================
 * Primary worker (A). While running it serves; each step is one turn of its
 * loop, which does, in this order (as PrimaryDaemon.run does):
 * - reads the secondary's latest message:
 *   "promoted": the peer took the address over; it releases the address and
 *   stops for good (yields, exit status 3). Unreachable unless
 *   HB_REACHES_PEER: a promoted secondary's heartbeats stay on its own host;
 *   any other: the secondary is heard; if it had been given up, it is taken
 *   back: the watch stops, and the released message makes the secondary
 *   forget the connection (it was served alone: PrimaryBridge.keysServedByPrimaryAlone;
 *   a promoted secondary ignores it);
 * - (its detector, PrimaryDetector below, gives up on the secondary: no
 *   message for the detection time; the reported state becomes "alone" and
 *   the watch starts CONFIRMING. The model lets this verdict be false (a late
 *   heartbeat, a busy host): it may come whenever no message is waiting. With
 *   NO_FALSE_GIVE_UP it comes only when the secondary really is silent);
 * - reads ARP frames from another holder of the address: while confirming or
 *   watching, it yields (release, keep the rules, exit status 3); otherwise
 *   the frame is read and ignored;
 * - sends a probe (confirming or watching), which crosses the segment at once
 *   (a holder's kernel answers it); one probe stands for the round of three.
 *   A probe that cannot be sent (link down) starts the confirming round over;
 *   while watching it is just not sent. Or, the next turn, ends the probe's
 *   answer window (answers were read first): an unanswered confirming round
 *   ends, and it serves alone and WATCHES;
 * - while watching with its link up, sends the client what its kernel sends
 *   (served alone: the secondary's copy no longer matches what the client
 *   has).
 * While confirming, nothing goes to clients and no heartbeat goes out.
 * ==========================================================================*/
#ifdef NO_FALSE_GIVE_UP
#define may_give_up  (!b_to_a_path || !b_up || b_w != RUN)   /* only a real silence */
#else
#define may_give_up  true                                     /* a false verdict too */
#endif

#ifdef MUT_NO_CONFIRM
#define FIRST_PHASE WATCH      /* mutation: serves alone at once */
#else
#define FIRST_PHASE CONFIRM
#endif

/* PROMPT_JUDGE, a timing assumption (dropped with SLOW_JUDGE): a running
   secondary judges its round, and claims if it is unanswered, before the
   primary can complete a whole confirming round after it. A confirming
   round whose probes can only have left once the secondary's probe had
   crossed needs >= 15 ms (3 probes 5 ms apart, the last one given 5 ms); the
   secondary judges 5 ms after its last probe plus one turn of its loop. So
   the assumption holds while the secondary's loop turns within ~10 ms; a
   paused secondary (SIGSTOP, a hang) is not covered by it. */
#ifdef SLOW_JUDGE
#define b_round_due  false
#else
#define b_round_due  (b_round && b_w == RUN)
#endif

/* A later probe of the confirming round could not be sent: the round
   starts over (probeFailed). */
#ifdef MUT_CONFIRM_NO_RESTART
#define a_round_broken  false                              /* mutation: counted as sent */
#else
#define a_round_broken  a_link_went
#endif

/* the primary yields: releases the address, keeps its rules, stops for good */
#define YIELD  a_addr = false; a_rep = false; a_w = FENCED; a_watch = IDLE; a_probed = false

active proctype PrimaryWorker()
{
end_serve:
    do
    :: atomic { a_w == RUN ->
        /* 1. the replication channel: the secondary's latest message */
        if
        :: hb_b2a == PROMOTED -> hb_b2a = NONE;
#ifdef MUT_IGNORE_PROMOTED
            skip                                           /* mutation: ignored */
#else
            YIELD
#endif
        :: hb_b2a == SECONDARY -> hb_b2a = NONE;
            if
            :: a_alone ->                                  /* the secondary is back */
                a_alone = false; a_watch = IDLE; a_probed = false;
                if :: !b_promoted -> b_rep = false :: else -> skip fi   /* released */
            :: else -> skip
            fi
        :: else -> skip
        fi;
        /* 2. ARP: frames from another holder of the address */
        if
        :: a_w == RUN && a_holder -> a_holder = false;
            if
#ifndef MUT_IGNORE_HOLDER
            :: a_watch != IDLE -> YIELD                    /* it holds the address: yield */
#endif
            :: else -> skip                                /* read, ignored */
            fi
        :: else -> skip
        fi;
        /* 3. the watch: a probe, or the end of a probe's answer window */
        if
        :: a_w == RUN && a_watch != IDLE && !a_probed ->
            if
            :: a_link ->                                   /* it crosses the segment: */
                if :: owner_b -> a_holder = true :: else -> skip fi;  /* a holder answers */
                a_probed = true; a_link_went = false
#if (defined(SILENT_LINK) && !defined(FIX_LINK_EVENTS)) || defined(MUT_CONFIRM_NO_RESTART)
            :: !a_link -> a_probed = true                  /* "sent", lost without a trace */
#else
            :: !a_link -> skip                             /* not sent: confirming starts
                                                              over; watching goes on */
#endif
            fi
        :: a_w == RUN && a_watch != IDLE && a_probed &&    /* answers were read in 2 */
           !(a_watch == CONFIRM && b_round_due) ->
            a_probed = false;
            if
            :: a_watch == CONFIRM && a_round_broken ->     /* a later probe of the round */
                skip                                       /* failed: the round starts over */
            :: a_watch == CONFIRM && !a_round_broken ->    /* unanswered: serve alone */
#if defined(MUT_NO_WATCH)
                a_watch = IDLE                             /* mutation: no more probes */
#else
                a_watch = WATCH
#endif
            :: else -> skip                                /* watching: probe again later */
            fi
        :: else -> skip
        fi;
        /* 4. serving alone with its link up: the client gets what only A's
              kernel sent; the secondary's copy no longer matches */
        if
        :: a_w == RUN && a_alone && a_sends && a_link && a_addr && b_rep -> b_rep = false
        :: else -> skip
        fi }
    od
}

/* The primary's failure detector, part of its worker: a process of its own
   only so that weak fairness applies to it separately (a detector whose
   verdict stays due fires, however busy the worker's loop is). */
active proctype PrimaryDetector()
{
end_detect:
    do
    :: atomic { a_w == RUN && hb_b2a == NONE && !a_alone && may_give_up ->
        a_alone = true; a_watch = FIRST_PHASE; a_probed = false }
    od
}

/* ============================================================================
 * Secondary worker (B): the failure detector and the takeover.
 * Detection is abstracted: the primary's heartbeats may be late for any
 * reason, so the secondary may suspect at any moment, and it keeps doing so
 * while it is not promoted (a false alarm only costs a probe round). The
 * design must therefore be safe whatever the detector decides: only the ARP
 * probe round protects the address.
 * A probe round: send the probe (one stands for the round of three); if it
 * cannot be sent (link down) the round counts as answered. Then a window in
 * which answers are read, then judge. "Reliable ARP" means the window is long
 * enough: it closes only once the probe has reached every host and their
 * answers have been read (the window runs from when the probe left, and
 * answers are read before the round is judged: TakeoverCoordinator.probeSent).
 * If anything answered, it does not take over and probes again later.
 * Otherwise it takes over: translation first, then the address and a
 * gratuitous ARP (which the primary reads as a holder's frame).
 * A heartbeat carrying its state goes out with each round and at most once
 * during its answer window (in the code every 10 ms, also during a round).
 * Promoted, it sends them too (they never reach A, unless HB_REACHES_PEER),
 * and it announces the address again whenever it hears the primary's
 * heartbeat (or sees the primary's probe: that announcement reaches A with
 * the kernel's answer, in the primary's probe step above).
 * ==========================================================================*/
inline b_heartbeat() {
    if
    :: b_to_a_path -> hb_b2a = (b_promoted -> PROMOTED : SECONDARY)
    :: else -> skip                                        /* lost */
    fi
}

inline b_announce() {
    if :: b_link && a_link && a_up -> a_holder = true :: else -> skip fi
}

active proctype SecondaryWorker()
{
    bool answered = false;
    bool hb_sent = false;           /* a heartbeat went out during this window */
    bool gave_up_probing = false;   /* only MUT_PROBE_ONCE ever sets it */
end_watch:
    do
    :: atomic { b_w == RUN && b_promoted ->                /* serving */
        b_heartbeat();
        if
#ifndef MUT_NO_REANNOUNCE
           :: a_to_b_heartbeat -> b_announce()             /* the primary is heard: */
#endif
           :: else -> skip                                 /* announce again */
        fi }
    :: atomic { b_w == RUN && !b_promoted && !gave_up_probing ->
        b_heartbeat();
        answered = false; hb_sent = false; b_link_went = false;
        if
        :: b_link -> b_probe = true                        /* suspect: send the probe */
#if defined(SILENT_LINK) && !defined(FIX_LINK_EVENTS)
        :: !b_link -> b_round = true                       /* "sent", lost without a trace */
#else
        :: !b_link -> answered = true                      /* not sent: no takeover this round */
#endif
        fi }
#ifdef MUT_JUDGE_EARLY
        /* mutation: the round is judged from what has arrived so far,
           before the window in which the answers are read */
        atomic { b_w == RUN -> answered = answered || b_ans; b_ans = false };
#else
end_window:
        do
        :: atomic { b_w == RUN && b_ans -> b_ans = false; answered = true }
        :: atomic { b_w == RUN && !hb_sent -> b_heartbeat(); hb_sent = true }
        :: atomic { b_w == RUN && !b_probe && !b_ans ->          /* window over */
            answered = answered || b_link_went; break }            /* (a later probe
                                                    failed: the round counts as answered) */
        od;
#endif
end_judge:
        if
        :: b_w == RUN && answered ->                       /* a host answered */
            b_round = false;
#ifdef MUT_PROBE_ONCE
            gave_up_probing = true
#else
            skip                                           /* probe again later */
#endif
        :: b_w == RUN && !answered ->                      /* silence: take over */
#ifdef MUT_ADDR_BEFORE_XLATE
            atomic { b_w == RUN -> b_addr = true };
end_claim_m:
            atomic { b_w == RUN -> b_xlate = true; b_promoted = true; b_announce(); b_round = false }
#else
            atomic { b_w == RUN -> b_xlate = true };
end_claim:
            atomic { b_w == RUN -> b_addr = true; b_promoted = true; b_announce(); b_round = false }
#endif
        fi
    od
}

/* ============================================================================
 * ARP on the shared segment: the kernels. A host's kernel answers a probe
 * for the service address whenever it owns it (up, address configured, link
 * up), independent of its worker; a probe or answer needs both links up when
 * it crosses the segment. Here: the secondary's probes (the primary's cross
 * in its own step). With LOSSY_ARP a frame can be lost, until ARP becomes
 * reliable for good (a step that may or may not happen).
 * ==========================================================================*/
active proctype Segment()
{
end_arp:
    do
    :: atomic { b_probe ->
        if :: b_link && owner_a -> b_ans = true :: else -> b_round = true fi;
        b_probe = false }
#ifdef LOSSY_ARP
    :: atomic { arp_lossy && b_probe -> b_probe = false; b_round = true }  /* probe lost */
    :: atomic { arp_lossy && b_ans -> b_ans = false; b_round = true }  /* answer lost */
    :: atomic { arp_lossy && a_holder -> a_holder = false }/* A's probe, its answer, or an
                                                              announcement lost */
    :: atomic { arp_lossy -> arp_lossy = false }           /* from now on, no loss */
#endif
    od
}

/* ============================================================================
 * Guardians: the parent of each worker; dies only with its host. When the
 * worker dies, or hangs past the hang timeout (the guardian then kills it:
 * SIGKILL also ends a stopped process, and the guardian waits for it), the
 * guardian does what GuardianPolicy.swift decides from the role and the state
 * the worker reported (here: its true state), then exits:
 *   primary replicating      release the address, keep the rules
 *   primary alone            remove the rules, keep the address (plain server);
 *                            "alone" is also the state while it confirms
 *   secondary promoted       remove the rules, keep the address (plain server)
 *   secondary not promoted   remove the rules
 * A fenced worker (exit status 3) is not dead: its guardian does nothing.
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
end_policy:
    atomic { a_up && !a_rebooted ->
        if
        :: !a_alone ->                    /* replicating: release, keep the rules */
#if defined(MUT_RULES_FIRST)
            a_rules = false               /* mutation: rules first (release below) */
#elif defined(MUT_NO_RELEASE)
            skip                          /* mutation: the address stays */
#else
            a_addr = false
#endif
        :: else -> a_rules = false        /* alone: keep the address, remove the
                                             rules: a plain server from now on */
        fi };
#ifdef MUT_RULES_FIRST
end_release_m:
    atomic { a_up && !a_rebooted && !a_alone -> a_addr = false }
#endif
#ifdef FIX_GUARDIAN_WATCH
    /* suggested fix: the guardian of a primary that kept the address as a
       plain server goes on probing for another holder, and releases the
       address when one answers (a probe crosses only while the link is up;
       with LOSSY_ARP its answer may be lost) */
end_guard:
    do
    :: atomic { a_up && a_addr && a_link && owner_b ->
        if :: a_addr = false :: arp_lossy -> skip fi }
    od
#endif
end_done:
    skip
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
end_policy:
    atomic { b_up -> b_rules = false }    /* promoted: a plain server; else: the
                                             primary serves alone */
}

/* ============================================================================
 * Failures: at most NFAIL of them per run. A paused worker may be resumed
 * (SIGCONT; not a new failure) unless its guardian killed it first; a
 * partition may heal, a link may come back (not new failures). The injector
 * may stop at any time (`break`), so "maybe resumed" and "maybe heals"
 * include "never": weak fairness does not force a resume or a heal.
 * A host that goes down takes its worker, guardian and address with it and
 * does not come back (with REBOOT_A, host A may come back: see below).
 * ==========================================================================*/
#if defined(SILENT_LINK) && !defined(FIX_LINK_EVENTS)
#define LINK_WENT(flag)  skip            /* nothing tells the host */
#else
#define LINK_WENT(flag)  flag = true     /* its next probe fails (ENETDOWN) */
#endif

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
#ifdef LINK_FAIL
#ifndef ONLY_B_LINK
    :: atomic { failures < NFAIL && a_up && a_link ->      /* A's interface down */
        a_link = false; LINK_WENT(a_link_went); failures++;
#ifdef FIX_LINK_EVENTS
        /* suggested fix: the bridges follow their link's state (netlink; a lost
           carrier too); a primary serving without a secondary confirms again
           (its loop reads the event before anything else) */
        if :: a_w != DEAD && a_watch == WATCH -> a_watch = CONFIRM; a_probed = false
           :: else -> skip
        fi
#endif
       }
    :: atomic { !a_link -> a_link = true }                 /* ... and up again */
#endif
    :: atomic { failures < NFAIL && b_up && b_link ->      /* B's interface down */
        b_link = false; LINK_WENT(b_link_went); failures++ }
    :: atomic { !b_link -> b_link = true }                 /* ... and up again */
#endif
#ifdef REBOOT_A
    /* Host A boots again. Its network configuration adds its own address,
       which is the service address; its bridge is not running (or refuses
       to start), so its worker is dead and it has no rules. */
    :: atomic { !a_up -> a_up = true; a_rebooted = true; a_link = true;
                 a_addr = true; a_rules = false; a_w = DEAD; a_rep = false;
                 a_watch = IDLE; a_probed = false }
#endif
    :: break                                               /* no more failures */
    od
}

/* ============================================================================
 * Properties. Run one at a time: pan -N <name>.
 * ==========================================================================*/

/* 1. Never two owners of the service address (reliable ARP, no link
      failures). */
ltl never_two_owners { [] !two_owners }

/* 2. A connection with a live replica is never reset: whenever the client's
      traffic would reset it, no up host with a live worker has a copy. */
ltl live_never_reset { [] (reset_cond -> !live_replica) }

/* 3. No black hole (weak fairness): while some host is up with a live worker
      holding a replica, eventually a host owns the address and serves the
      connection from its copy -- unless no live replica is left by then.
      (Stronger than "some host holds the address": a host that holds it
      with a dead worker and its rules in place black-holes the traffic.)
      Assumed: links that went down come back for good at some point (a host
      whose link stays down cannot serve, whatever the protocol does). */
ltl no_black_hole { (<> [] links_up) -> [] (live_replica -> <> (serving_conn || !live_replica)) }

/* 3b. The service as a whole, replica or not: while some worker is alive,
       eventually the address is served (by a worker or a plain kernel).
       Same assumption about links. */
ltl service_resumes { (<> [] links_up) -> [] (worker_up -> <> (serving_any || !worker_up)) }

/* 4. Two owners are eventually resolved to exactly one, provided the
      environment settles for good (partition healed, links up, ARP no longer
      lossy). */
ltl split_brain_resolved { (<> [] settled) -> [] (two_owners -> <> one_owner) }

/* 5. The primary never serves alone while another host owns the address
      (what the confirming round is for: a primary back from a cut-off link
      must not serve next to the host that took over meanwhile). */
ltl never_alone_beside_owner { [] !(a_alone && emit_a && owner_b) }

/* Reachability (vacuity) checks: these must FAIL, which shows that the
   situations the properties above talk about really occur in the model. */
ltl reach_reset { [] !reset_cond }                 /* resets happen (stale copies) */
ltl reach_outage { [] (live_replica -> serving_conn) } /* outages happen, for a while */
ltl reach_yield { [] (a_w != FENCED) }             /* the primary yields */
ltl reach_watch { [] (a_watch != WATCH) }          /* the primary serves alone, watching */
/* (and under LOSSY_ARP or LINK_FAIL, never_two_owners must fail) */
