import Testing

@testable import FTCPReplication

/// What a node learns of its peer's build during a rolling upgrade: from the heartbeats, and from
/// the digests a release before capabilities sends without naming them.
@Suite("Peer capabilities")
struct PeerCapabilitiesTests {
    static func heartbeat(epoch: UInt64, counter: UInt64, _ capabilities: ReplicationCapabilities)
        -> ReceivedReplicationMessage
    {
        var heartbeat = Fixtures.heartbeat
        heartbeat.capabilities = capabilities
        return ReceivedReplicationMessage(
            message: .heartbeat(heartbeat),
            senderRole: .secondary,
            epoch: epoch,
            counter: counter
        )
    }

    static func digests(epoch: UInt64, counter: UInt64) -> ReceivedReplicationMessage {
        let segment = DigestedSegment(
            header: Fixtures.packet,
            payloadLength: 100,
            pieceLength: 100,
            digests: Array(repeating: 7, count: DigestedSegment.digestLength)
        )
        return ReceivedReplicationMessage(
            message: .digests(segments: [segment]),
            senderRole: .secondary,
            epoch: epoch,
            counter: counter
        )
    }

    @Test("nothing is read beyond the first format until the peer's process says so")
    func nothingHeard() {
        let capabilities = PeerCapabilities()
        #expect(capabilities.current(peerEpoch: nil).isEmpty)
        #expect(capabilities.current(peerEpoch: 5).isEmpty)
    }

    @Test("a peer of this release names digests in its first heartbeat; the change is said once")
    func thisRelease() {
        var capabilities = PeerCapabilities()
        let change = capabilities.heard(Self.heartbeat(epoch: 5, counter: 0, .thisBuild))
        #expect(change?.now == .digests && change?.before == nil)
        #expect(capabilities.current(peerEpoch: 5) == .digests)
        #expect(capabilities.heard(Self.heartbeat(epoch: 5, counter: 1, .thisBuild)) == nil, "unchanged: not said")
    }

    @Test(
        "a secondary of the release before capabilities names none, but relays digests: it reads them and relay-whole"
    )
    func releaseBeforeCapabilities() {
        var capabilities = PeerCapabilities()
        let change = capabilities.heard(Self.heartbeat(epoch: 5, counter: 0, []))
        #expect(change?.now == [] && change?.before == nil)
        #expect(capabilities.current(peerEpoch: 5).isEmpty)
        #expect(capabilities.heard(Self.digests(epoch: 5, counter: 1)) == nil)
        #expect(capabilities.current(peerEpoch: 5) == .digests)
        #expect(capabilities.heard(Self.heartbeat(epoch: 5, counter: 2, [])) == nil)
        #expect(capabilities.current(peerEpoch: 5) == .digests, "its next heartbeat does not take it back")
    }

    @Test("a peer that restarts as an older release reads nothing more from its new epoch on")
    func restartAsAnOlderRelease() {
        var capabilities = PeerCapabilities()
        _ = capabilities.heard(Self.heartbeat(epoch: 5, counter: 0, .thisBuild))
        _ = capabilities.heard(Self.digests(epoch: 5, counter: 1))
        // Its new process (epoch 9) has sent nothing yet, then a heartbeat naming none.
        #expect(capabilities.current(peerEpoch: 9).isEmpty)
        let change = capabilities.heard(Self.heartbeat(epoch: 9, counter: 0, []))
        #expect(change?.now == [] && change?.before == .digests)
        #expect(capabilities.current(peerEpoch: 9).isEmpty)
    }
}
