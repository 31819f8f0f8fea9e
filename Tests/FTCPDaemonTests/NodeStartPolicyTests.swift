import FTCPReplication
import Testing

@testable import FTCPDaemon

/// Which role a node starts in: with a service address of its own, whoever serves it keeps it.
@Suite("Node start: the role follows the service address")
struct NodeStartPolicyTests {
    @Test(
        "a repaired primary whose peer took the address over joins as the secondary (a supervisor's restart never loops)"
    )
    func repairedPrimaryJoins() {
        let decision = NodeStartPolicy.decide(
            configured: .primary,
            separateServiceAddress: true,
            heldByPeer: true,
            heldHere: false
        )
        #expect(decision.role == .secondary)
        #expect(decision.removeStalePrimaryRules)
        #expect(!decision.releaseLocalServiceAddress)
        #expect(decision.explanation != nil)
    }

    @Test(
        "a host that still has the address while its peer answers for it gives its copy up",
        arguments: [
            ReplicationRole.primary, .secondary,
        ]
    )
    func staleLocalCopyReleased(configured: ReplicationRole) {
        let decision = NodeStartPolicy.decide(
            configured: configured,
            separateServiceAddress: true,
            heldByPeer: true,
            heldHere: true
        )
        #expect(decision.role == .secondary)
        #expect(decision.releaseLocalServiceAddress)
    }

    @Test(
        "a node whose bridge restarted after it took over (the address here, nobody else answering) serves as primary"
    )
    func restartedAfterTakeover() {
        let decision = NodeStartPolicy.decide(
            configured: .secondary,
            separateServiceAddress: true,
            heldByPeer: false,
            heldHere: true
        )
        #expect(decision.role == .primary)
        #expect(!decision.releaseLocalServiceAddress && !decision.removeStalePrimaryRules)
    }

    @Test("with the address nowhere, the configured role stands", arguments: [ReplicationRole.primary, .secondary])
    func nobodyServes(configured: ReplicationRole) {
        let decision = NodeStartPolicy.decide(
            configured: configured,
            separateServiceAddress: true,
            heldByPeer: false,
            heldHere: false
        )
        #expect(decision.role == configured)
        #expect(decision.explanation == nil)
    }

    @Test("without a service address of its own, roles never swap (a primary whose address is held refuses later)")
    func olderFormKeepsRoles() {
        let decision = NodeStartPolicy.decide(
            configured: .primary,
            separateServiceAddress: false,
            heldByPeer: true,
            heldHere: true
        )
        #expect(decision.role == .primary)
        #expect(!decision.releaseLocalServiceAddress && !decision.removeStalePrimaryRules)
    }
}
