import Testing

@testable import FTCPDaemon

/// The guardian's decisions, one row of ``GuardianPolicy``'s table each.
@Suite("Guardian: what is undone when the bridge process dies")
struct GuardianPolicyTests {
    @Test("a primary that dies while replicating releases the address (the secondary takes over) and keeps its rules")
    func primaryReplicating() {
        let decision = GuardianPolicy.decide(
            role: "primary",
            lastState: "replicating",
            end: .died("killed by signal 9")
        )
        #expect(decision.releaseServiceAddress)
        #expect(!decision.removeRules)
        #expect(!decision.restartBridge, "the host is fenced: the peer serves")
    }

    @Test(
        "a primary that dies alone, or before a secondary spoke, removes its rules and keeps the address",
        arguments: [
            "alone", "waiting-for-secondary",
        ]
    )
    func primaryAlone(state: String) {
        let decision = GuardianPolicy.decide(role: "primary", lastState: state, end: .hung(milliseconds: 1500))
        #expect(!decision.releaseServiceAddress)
        #expect(decision.removeRules)
        #expect(decision.restartBridge, "it serves, and watches the address, again")
    }

    @Test(
        "a promoted secondary that dies removes its rules and keeps serving the address as a plain server: no black hole"
    )
    func promotedSecondary() {
        let decision = GuardianPolicy.decide(role: "secondary", lastState: "promoted", end: .died("exit status 1"))
        #expect(!decision.releaseServiceAddress)
        #expect(decision.removeRules)
        #expect(!decision.restartBridge)
    }

    @Test(
        "a secondary that dies before any takeover only removes its rules",
        arguments: [
            "replicating", "checking-address", "primary-silent-address-held",
        ]
    )
    func secondary(state: String) {
        let decision = GuardianPolicy.decide(role: "secondary", lastState: state, end: .died("killed by signal 6"))
        #expect(!decision.releaseServiceAddress)
        #expect(decision.removeRules)
        #expect(decision.restartBridge, "it replicates again")
    }

    @Test("a clean stop, a bridge that fenced itself, or one that died before its rules were in place: nothing to undo")
    func nothingToUndo() {
        for decision in [
            GuardianPolicy.decide(role: "primary", lastState: "replicating", end: .stoppedCleanly),
            GuardianPolicy.decide(role: "primary", lastState: "replicating", end: .fenced),
            GuardianPolicy.decide(role: "secondary", lastState: nil, end: .died("exit status 1")),
        ] {
            #expect(!decision.releaseServiceAddress && !decision.removeRules, "\(decision.explanation)")
        }
    }

    @Test("wait statuses: exit 0 is a clean stop, exit 3 a fence, anything else or a signal a death; a hang wins")
    func waitStatuses() {
        #expect(Guardian.describe(status: 0, hung: nil, stopRequested: true) == .stoppedCleanly)
        #expect(Guardian.describe(status: 3 << 8, hung: nil, stopRequested: false) == .fenced)
        #expect(Guardian.describe(status: 1 << 8, hung: nil, stopRequested: false) == .died("exit status 1"))
        if case .died(let how) = Guardian.describe(status: 9, hung: nil, stopRequested: false) {
            #expect(how.hasPrefix("killed by signal 9"))
        } else {
            Issue.record("SIGKILL is a death")
        }
        #expect(Guardian.describe(status: 9, hung: 1200, stopRequested: false) == .hung(milliseconds: 1200))
        #expect(Guardian.exitCode(3 << 8) == 3)
        #expect(Guardian.exitCode(9) == 1)
    }
}
