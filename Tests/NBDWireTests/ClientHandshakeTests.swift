// The client handshake over a scripted byte stream: what a server would send
// is queued up front, what the client writes is recorded and checked.
import XCTest
@testable import NBDWire

/// A transport fed from a fixed byte string; running out of bytes is the
/// server closing the connection.
struct ScriptedTransport: NBDTransport {
    var incoming: [UInt8]
    var outgoing: [UInt8] = []

    init(_ incoming: [UInt8]) { self.incoming = incoming }

    mutating func read(exactly count: Int, doing: String) throws(NegotiationError) -> [UInt8] {
        guard incoming.count >= count else { throw .closed(doing: doing) }
        defer { incoming.removeFirst(count) }
        return Array(incoming[0..<count])
    }

    mutating func write(_ bytes: [UInt8], doing: String) throws(NegotiationError) {
        outgoing += bytes
    }
}

final class ClientHandshakeTests: XCTestCase {
    let greeting = NewstyleGreeting(flags: [.fixedNewstyle, .noZeroes]).encode()
    let flags: TransmissionFlags = [.hasFlags, .sendFlush, .sendFUA]

    func info(_ i: Info, for option: OptionCode = .go) -> [UInt8] {
        OptionReplyHeader.encode(option, .info, data: i.encode())
    }

    func testGoWithBlockSize() throws {
        var t = ScriptedTransport(greeting
            + info(.export(size: 1 << 30, flags: flags))
            + info(.blockSize(minimum: 512, preferred: 4096, maximum: 1 << 25))
            + OptionReplyHeader.encode(.go, .ack))
        let e = try negotiate(&t, NegotiationOptions(exportName: "root"))
        XCTAssertEqual(e.size, 1 << 30)
        XCTAssertEqual(e.flags, flags)
        XCTAssertEqual(e.via, .go)
        XCTAssertEqual(e.minimumBlock, 512)
        XCTAssertEqual(e.maximumPayload, 1 << 25)
        // Client flags FIXED_NEWSTYLE|NO_ZEROES, then GO for "root" asking for BLOCK_SIZE.
        let expected = [0, 0, 0, 3] + OptionHeader.encode(.go, data: InfoRequest(name: "root", requests: [.blockSize]).encode())
        XCTAssertEqual(t.outgoing, expected)
        XCTAssertTrue(t.incoming.isEmpty)
    }

    func testGoUnsupportedFallsBackToExportName() throws {
        var t = ScriptedTransport(greeting
            + OptionReplyHeader.encode(.go, .errUnsup)
            + ExportNameReply(exportSize: 4096, flags: flags).encode(noZeroes: true))
        let e = try negotiate(&t, NegotiationOptions(exportName: "root"))
        XCTAssertEqual(e.via, .exportName)
        XCTAssertEqual(e.size, 4096)
        XCTAssertTrue(t.outgoing.suffix(4 + 16).elementsEqual(OptionHeader.encode(.exportName, data: Array("root".utf8))))
    }

    func testServerWithoutFixedNewstyleGetsExportNameAndSendsZeroes() throws {
        // Handshake flags 0: no NO_ZEROES, so the reply carries 124 zero bytes.
        var t = ScriptedTransport(NewstyleGreeting(flags: []).encode()
            + ExportNameReply(exportSize: 8192, flags: flags).encode(noZeroes: false))
        let e = try negotiate(&t, NegotiationOptions(exportName: ""))
        XCTAssertEqual(e.size, 8192)
        XCTAssertEqual(Array(t.outgoing[0..<4]), [0, 0, 0, 0])
        XCTAssertTrue(t.incoming.isEmpty, "the 124 zero bytes were consumed")
    }

    func testForcedExportName() throws {
        var t = ScriptedTransport(greeting + ExportNameReply(exportSize: 1, flags: flags).encode(noZeroes: true))
        let e = try negotiate(&t, NegotiationOptions(exportName: "x", forceExportName: true))
        XCTAssertEqual(e.via, .exportName)
    }

    func testOldstyleServer() throws {
        var t = ScriptedTransport(OldstyleGreeting(exportSize: 1 << 20, flags: flags).encode())
        let e = try negotiate(&t, NegotiationOptions(exportName: ""))
        XCTAssertEqual(e.via, .oldstyle)
        XCTAssertEqual(e.size, 1 << 20)
        XCTAssertTrue(t.outgoing.isEmpty)
    }

    func testUnknownExportIsRefusedWithTheServersMessage() {
        var t = ScriptedTransport(greeting + OptionReplyHeader.encode(.go, .errUnknown, data: Array("no export 'x'".utf8)))
        XCTAssertThrowsError(try negotiate(&t, NegotiationOptions(exportName: "x"))) { error in
            XCTAssertEqual(error as? NegotiationError, .refused(option: .go, reply: .errUnknown, message: "no export 'x'"))
            XCTAssertEqual((error as? NegotiationError)?.description, "server refused GO: ERR_UNKNOWN (no export 'x')")
        }
    }

    func testAckWithoutExportInfoIsAProtocolError() {
        var t = ScriptedTransport(greeting + OptionReplyHeader.encode(.go, .ack))
        XCTAssertThrowsError(try negotiate(&t, NegotiationOptions(exportName: "")))
    }

    func testReplyToAnotherOptionIsAProtocolError() {
        var t = ScriptedTransport(greeting + OptionReplyHeader.encode(.list, .ack))
        XCTAssertThrowsError(try negotiate(&t, NegotiationOptions(exportName: "")))
    }

    func testServerClosingAfterExportNameIsReported() {
        var t = ScriptedTransport(NewstyleGreeting(flags: []).encode())
        XCTAssertThrowsError(try negotiate(&t, NegotiationOptions(exportName: "nope"))) { error in
            guard case NegotiationError.closed(let doing) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(doing.contains("nope"))
        }
    }

    func testNotAnNBDServer() {
        var t = ScriptedTransport(Array("HTTP/1.1 400 Bad Request\r\n\r\n".utf8))
        XCTAssertThrowsError(try negotiate(&t, NegotiationOptions(exportName: ""))) { error in
            guard case NegotiationError.wire(.badMagic) = error else { return XCTFail("\(error)") }
        }
    }

    func testList() throws {
        var t = ScriptedTransport(greeting
            + OptionReplyHeader.encode(.list, .server, data: ServerEntry(name: "root").encode())
            + OptionReplyHeader.encode(.list, .server, data: ServerEntry(name: "swap", description: "per station").encode())
            + OptionReplyHeader.encode(.list, .ack)
            + OptionReplyHeader.encode(.abort, .ack))
        let entries = try listExports(&t)
        XCTAssertEqual(entries, [ServerEntry(name: "root"), ServerEntry(name: "swap", description: "per station")])
        XCTAssertEqual(t.outgoing, [0, 0, 0, 3] + OptionHeader.encode(.list) + OptionHeader.encode(.abort))
    }

    func testListToleratesServerClosingInsteadOfAckingAbort() throws {
        // nbd-server never ACKs ABORT; it closes.
        var t = ScriptedTransport(greeting + OptionReplyHeader.encode(.list, .ack))
        XCTAssertEqual(try listExports(&t), [])
    }

    func testListRefusedByPolicy() {
        var t = ScriptedTransport(greeting + OptionReplyHeader.encode(.list, .errPolicy))
        XCTAssertThrowsError(try listExports(&t))
    }
}
