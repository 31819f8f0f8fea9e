import FTCPDemo
import Testing

/// The demo protocol as a pure state machine: scripted exchanges, and the same output for the
/// same input however it is split.
@Suite struct DemoSessionTests {
    private func run(_ input: [UInt8], pieces: [Int] = [], end: Bool = false) -> (output: [UInt8], finished: Bool) {
        var session = DemoSession()
        var output: [UInt8] = []
        var offset = 0
        var pieceIndex = 0
        while offset < input.count {
            let size = pieces.isEmpty ? input.count : pieces[pieceIndex % pieces.count]
            pieceIndex += 1
            var piece = Array(input[offset..<min(offset + size, input.count)])
            while !piece.isEmpty {
                let taken = session.receive(piece)
                piece.removeFirst(taken)
                output += session.takeOutput()
            }
            offset += size
        }
        if end { session.receiveEnd() }
        output += session.takeOutput()
        return (output, session.isFinished)
    }

    @Test func scriptedExchange() {
        let input = Array("HELLO ann\nADD 40\nADD 2\nECHO hello world\nNOPE\nHELLO bo\nQUIT\nADD 1\n".utf8)
        let expected =
            "WELCOME ann session-1\nTOTAL 40\nTOTAL 42\nhello world\nERROR unknown command\n"
            + "WELCOME bo session-2\nBYE total=42\n"
        let result = run(input)
        #expect(String(decoding: result.output, as: UTF8.self) == expected)
        #expect(result.finished)
    }

    @Test func malformedArgumentsAndCarriageReturns() {
        let input = Array("ADD x\r\nSEND -1\nRECV\nHELLO\nECHO\nADD 9223372036854775807\nADD 1\nhello\n".utf8)
        let expected =
            "ERROR ADD needs an integer\nERROR SEND needs a byte count\nERROR RECV needs a byte count\n"
            + "ERROR HELLO needs a name\n\nTOTAL 9223372036854775807\nERROR total would overflow\nERROR unknown command\n"
        #expect(String(decoding: run(input).output, as: UTF8.self) == expected)
    }

    @Test func sendStreamsExactlyTheDeterministicBytes() {
        let result = run(Array("SEND 100000\nECHO after\n".utf8))
        #expect(result.output.count == 100_000 + 6)
        let streamMatches = Array(result.output[0..<100_000]) == DemoByteStream.bytes(from: 0, count: 100_000)
        #expect(streamMatches)
        #expect(Array(result.output[100_000...]) == Array("after\n".utf8))
    }

    @Test func byteStreamIsRandomAccess() {
        let whole = DemoByteStream.bytes(from: 0, count: 1000)
        for start in [0, 1, 7, 8, 9, 500, 999] {
            #expect(DemoByteStream.bytes(from: UInt64(start), count: 1000 - start) == Array(whole[start...]))
            #expect(DemoByteStream.byte(at: UInt64(start)) == whole[start])
        }
    }

    @Test func receiveHashesTheRawBytesThenReadsCommandsAgain() {
        let upload = DemoByteStream.bytes(from: 3, count: 70_000)
        let input = Array("RECV 70000\n".utf8) + upload + Array("RECV 0\nQUIT\n".utf8)
        let expected =
            "RECEIVED 70000 sha256=\(ContentDigest.hexDigest(of: upload))\n"
            + "RECEIVED 0 sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nBYE total=0\n"
        #expect(String(decoding: run(input).output, as: UTF8.self) == expected)
    }

    @Test func outputDoesNotDependOnSegmentation() {
        var input = Array("HELLO a\nADD 5\nSEND 3000\nRECV 5000\n".utf8)
        input += DemoByteStream.bytes(from: 11, count: 5000)
        input += Array("ECHO x\r\nSEND 70000\nHELLO b\nADD -7\nQUIT\n".utf8)
        let reference = run(input).output
        #expect(reference.count > 73_000)
        for pieces in [[1], [2, 3], [7], [64], [1000, 1], [65_536], [100_000]] {
            let same = run(input, pieces: pieces).output == reference
            #expect(same, "pieces \(pieces)")
        }
    }

    @Test func halfCloseFinishesBufferedWorkThenFinishes() {
        var session = DemoSession()
        session.receive(Array("SEND 200000\nADD 3\n".utf8))
        session.receiveEnd()
        #expect(!session.isFinished)
        let output = session.takeOutput()
        #expect(output.count == 200_000 + 8)
        #expect(Array(output[200_000...]) == Array("TOTAL 3\n".utf8))
        #expect(session.isFinished)
    }

    @Test func incompleteUploadEndsWithoutAnswer() {
        let result = run(Array("RECV 10\nabc".utf8), end: true)
        #expect(result.output.isEmpty)
        #expect(result.finished)
    }

    @Test func overlongLineIsRejectedAndSkipped() {
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: DemoSession.maximumLineLength + 10)
        let input = Array("ECHO ".utf8) + long + Array("\nECHO ok\n".utf8)
        for pieces in [[], [100]] {
            #expect(String(decoding: run(input, pieces: pieces).output, as: UTF8.self) == "ERROR line too long\nok\n")
        }
    }

    @Test func inputIsHeldBackWhileAStreamIsPending() {
        var session = DemoSession()
        let input =
            [UInt8](repeating: UInt8(ascii: "\n"), count: 10) + Array("SEND 1000000\n".utf8)
            + [UInt8](repeating: UInt8(ascii: "A"), count: 200_000)
        var taken = session.receive(input)
        #expect(taken == DemoSession.inputCapacity)
        // The ten empty lines and SEND were processed and freed their space; the rest waits.
        #expect(session.inputSpace == 23)
        taken += session.receive(Array(input[taken...]))
        #expect(taken == DemoSession.inputCapacity + 23)
        #expect(session.inputSpace == 0)
        #expect(!session.wantsInput)
        let replies = session.takeOutput(limit: 10 * 22)
        #expect(replies == Array(String(repeating: "ERROR unknown command\n", count: 10).utf8))
        let streamMatches = session.takeOutput(limit: 1_000_000) == DemoByteStream.bytes(from: 0, count: 1_000_000)
        #expect(streamMatches)
        // Once the stream is out, the held-back line is read: too long.
        #expect(session.takeOutput() == Array("ERROR line too long\n".utf8))
        #expect(session.wantsInput)
    }
}
