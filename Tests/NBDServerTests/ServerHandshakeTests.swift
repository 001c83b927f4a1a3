// The handshake state machine, byte for byte, without sockets.
import NBDWire
import XCTest

@testable import NBDServer

final class ServerHandshakeTests: XCTestCase {
    let flags: TransmissionFlags = [.hasFlags, .sendFlush, .sendFUA, .sendTrim, .canMultiConn]
    var exports: [ExportInfo] {
        [ExportInfo(name: "root", description: "station root", size: 0x10_0000, flags: flags),
         ExportInfo(name: "home", size: 4096, flags: flags.union(.readOnly))]
    }

    /// A machine past the client flags.
    func machine(_ clientFlags: UInt32 = 3) -> ServerHandshake {
        var m = ServerHandshake(exports: exports)
        XCTAssertEqual(m.receiveClientFlags(ClientFlagsMessage.encode(ClientFlags(rawValue: clientFlags))).next, .readOption)
        return m
    }

    func option(_ m: inout ServerHandshake, _ code: OptionCode, _ data: [UInt8] = []) -> ServerHandshake.Step {
        let header = OptionHeader.encode(code, data: data)
        let step = m.receiveOptionHeader(Array(header.prefix(OptionHeader.size)))
        guard case .readOptionData(let h) = step.next else {
            XCTFail("header refused: \(step.next)")
            return step
        }
        XCTAssertEqual(Int(h.length), data.count)
        return m.receiveOption(h, data: data)
    }

    func testGreetingIsFixedNewstyleWithNoZeroes() {
        // "NBDMAGIC" "IHAVEOPT" 0x0003
        XCTAssertEqual(ServerHandshake(exports: exports).greeting(),
                       Array("NBDMAGICIHAVEOPT".utf8) + [0x00, 0x03])
    }

    func testClientFlags() {
        for ok: UInt32 in [0, 1, 2, 3] {
            var m = ServerHandshake(exports: exports)
            XCTAssertEqual(m.receiveClientFlags(ClientFlagsMessage.encode(ClientFlags(rawValue: ok))).next, .readOption, "flags \(ok)")
            XCTAssertEqual(m.clientFlags.rawValue, ok)
        }
        for bad: UInt32 in [4, 0x8000_0001, 0xffff_ffff] {
            var m = ServerHandshake(exports: exports)
            guard case .close = m.receiveClientFlags(ClientFlagsMessage.encode(ClientFlags(rawValue: bad))).next else {
                return XCTFail("client flags 0x\(hex(UInt64(bad))) must close")
            }
        }
    }

    func testExportNameWithNoZeroes() {
        var m = machine(3)
        let step = option(&m, .exportName, Array("root".utf8))
        XCTAssertEqual(step.next, .transmit(exportIndex: 0))
        // size 0x100000, flags 0x012d, no zeroes
        XCTAssertEqual(step.send, [0, 0, 0, 0, 0, 0x10, 0, 0, 0x01, 0x2d])
    }

    func testExportNameWithoutNoZeroesSends124Zeroes() {
        for clientFlags: UInt32 in [0, 1] {  // BusyBox sends 0, nbd-tester-client 1
            var m = machine(clientFlags)
            let step = option(&m, .exportName, Array("home".utf8))
            XCTAssertEqual(step.next, .transmit(exportIndex: 1))
            XCTAssertEqual(step.send, [0, 0, 0, 0, 0, 0, 0x10, 0, 0x01, 0x2f] + [UInt8](repeating: 0, count: 124))
        }
    }

    func testExportNameUnknownCloses() {
        var m = machine()
        guard case .close(let reason) = option(&m, .exportName, Array("nope".utf8)).next else { return XCTFail("must close") }
        XCTAssertTrue(reason.contains("nope"), reason)
    }

    func testEmptyNameIsTheFirstExport() {
        var m = machine()
        XCTAssertEqual(option(&m, .exportName).next, .transmit(exportIndex: 0))
    }

    func testGoRepliesByteExact() {
        var m = machine()
        let data = InfoRequest(name: "root", requests: [.blockSize, .name, .description]).encode()
        let step = option(&m, .go, data)
        XCTAssertEqual(step.next, .transmit(exportIndex: 0))
        let magic: [UInt8] = [0x00, 0x03, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9]
        let go: [UInt8] = [0, 0, 0, 7]
        let info: [UInt8] = [0, 0, 0, 3]
        var expected: [UInt8] = []
        // NBD_INFO_EXPORT: type 0, size, flags
        expected += magic + go + info + [0, 0, 0, 12] + [0, 0] + [0, 0, 0, 0, 0, 0x10, 0, 0] + [0x01, 0x2d]
        // NBD_INFO_BLOCK_SIZE: type 3, 1, 4096, 32 MiB
        expected += magic + go + info + [0, 0, 0, 14] + [0, 3] + [0, 0, 0, 1] + [0, 0, 0x10, 0] + [0x02, 0, 0, 0]
        // NBD_INFO_NAME: type 1, "root"
        expected += magic + go + info + [0, 0, 0, 6] + [0, 1] + Array("root".utf8)
        // NBD_INFO_DESCRIPTION: type 2, "station root"
        expected += magic + go + info + [0, 0, 0, 14] + [0, 2] + Array("station root".utf8)
        // NBD_REP_ACK
        expected += magic + go + [0, 0, 0, 1] + [0, 0, 0, 0]
        XCTAssertEqual(step.send, expected)
    }

    func testInfoStaysInHandshakeAndOmitsUnaskedItems() {
        var m = machine()
        let step = option(&m, .info, InfoRequest(name: "home").encode())
        XCTAssertEqual(step.next, .readOption)
        let replies = decodeReplies(step.send)
        XCTAssertEqual(replies.map { $0.0 }, [.info, .info, .ack])
        XCTAssertEqual(try Info.decode(replies[0].1), .export(size: 4096, flags: flags.union(.readOnly)))
        XCTAssertEqual(try Info.decode(replies[1].1), .blockSize(minimum: 1, preferred: 4096, maximum: 32 << 20))
        // Still negotiating: GO works afterwards.
        XCTAssertEqual(option(&m, .go, InfoRequest(name: "home").encode()).next, .transmit(exportIndex: 1))
    }

    func testGoUnknownExportIsErrUnknownWithMessage() {
        var m = machine()
        let step = option(&m, .go, InfoRequest(name: "nope").encode())
        XCTAssertEqual(step.next, .readOption)
        let replies = decodeReplies(step.send)
        XCTAssertEqual(replies.count, 1)
        XCTAssertEqual(replies[0].0, .errUnknown)
        let message = String(decoding: replies[0].1, as: UTF8.self)
        XCTAssertTrue(message.contains("'nope'") && message.contains("'root'"), message)
    }

    func testGoWithMalformedDataIsErrInvalid() {
        var m = machine()
        let step = option(&m, .go, [0, 0, 0, 9, 65])  // name length 9, one byte present
        XCTAssertEqual(decodeReplies(step.send).map { $0.0 }, [.errInvalid])
        XCTAssertEqual(step.next, .readOption)
    }

    func testListSendsEveryExportThenAck() {
        var m = machine()
        let step = option(&m, .list)
        XCTAssertEqual(step.next, .readOption)
        let replies = decodeReplies(step.send)
        XCTAssertEqual(replies.map { $0.0 }, [.server, .server, .ack])
        XCTAssertEqual(try ServerEntry.decode(replies[0].1), ServerEntry(name: "root", description: "station root"))
        XCTAssertEqual(try ServerEntry.decode(replies[1].1), ServerEntry(name: "home"))
        XCTAssertEqual(decodeReplies(option(&m, .list, [1]).send).map { $0.0 }, [.errInvalid])
    }

    func testAbortAcksThenCloses() {
        var m = machine()
        let step = option(&m, .abort)
        XCTAssertEqual(step.send, OptionReplyHeader.encode(.abort, .ack))
        guard case .close = step.next else { return XCTFail("ABORT must close") }
    }

    func testUnsupportedOptionsAreErrUnsupAndNegotiationGoesOn() {
        for code in [OptionCode.extendedHeaders, .peekExport, OptionCode(0x765_4321)] {
            var m = machine()
            let step = option(&m, code, [1, 2, 3, 4])
            XCTAssertEqual(step.next, .readOption, code.name)
            let replies = decodeReplies(step.send)
            XCTAssertEqual(replies.map { $0.0 }, [.errUnsup], code.name)
        }
    }

    func testStructuredReplyAckedOnceThenSendDF() {
        var m = machine()
        XCTAssertEqual(decodeReplies(option(&m, .structuredReply, [1]).send).map { $0.0 }, [.errInvalid], "data is invalid")
        XCTAssertFalse(m.session.structuredReplies)
        let step = option(&m, .structuredReply)
        XCTAssertEqual(step.send, [0x00, 0x03, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9] + [0, 0, 0, 8] + [0, 0, 0, 1] + [0, 0, 0, 0])
        XCTAssertEqual(step.next, .readOption)
        XCTAssertTrue(m.session.structuredReplies)
        let again = decodeReplies(option(&m, .structuredReply).send)
        XCTAssertEqual(again.map { $0.0 }, [.errInvalid], "a repeat is ERR_INVALID")
        XCTAssertEqual(String(decoding: again[0].1, as: UTF8.self), "STRUCTURED_REPLY was already negotiated")
        // SEND_DF (0x80) now appears in the export's flags, in INFO/GO and EXPORT_NAME.
        let replies = decodeReplies(option(&m, .go, InfoRequest(name: "root").encode()).send)
        XCTAssertEqual(try Info.decode(replies[0].1), .export(size: 0x10_0000, flags: flags.union(.sendDF)))
        var legacy = machine()
        _ = option(&legacy, .structuredReply)
        XCTAssertEqual(option(&legacy, .exportName, Array("root".utf8)).send, [0, 0, 0, 0, 0, 0x10, 0, 0, 0x01, 0xad])
    }

    func testWithoutStructuredRepliesNoDF() {
        var m = machine()
        let replies = decodeReplies(option(&m, .go, InfoRequest(name: "root").encode()).send)
        XCTAssertEqual(try Info.decode(replies[0].1), .export(size: 0x10_0000, flags: flags))
        XCTAssertEqual(m.session, Session())
    }

    func metaReplies(_ m: inout ServerHandshake, _ code: OptionCode, _ name: String, _ queries: [String]) -> [(ReplyType, [UInt8])] {
        decodeReplies(option(&m, code, MetaContextRequest(exportName: name, queries: queries).encode()).send)
    }

    func testMetaContextsNeedStructuredReplies() {
        var m = machine()
        for code in [OptionCode.listMetaContext, .setMetaContext] {
            let replies = metaReplies(&m, code, "root", ["base:allocation"])
            XCTAssertEqual(replies.map { $0.0 }, [.errInvalid], code.name)
            XCTAssertEqual(String(decoding: replies[0].1, as: UTF8.self), "\(code.name) needs STRUCTURED_REPLY first")
        }
    }

    func testListMetaContext() throws {
        var m = machine()
        _ = option(&m, .structuredReply)
        let base = OptionReplyHeader.encode(.listMetaContext, .metaContext, data: [0, 0, 0, 0] + Array("base:allocation".utf8))
        let ack = OptionReplyHeader.encode(.listMetaContext, .ack)
        for queries in [[], ["base:"], ["base:allocation"], ["qemu:dirty-bitmap:x", "base:"]] {
            XCTAssertEqual(option(&m, .listMetaContext, MetaContextRequest(exportName: "root", queries: queries).encode()).send,
                           base + ack, "\(queries)")
        }
        // Unknown namespaces and leaves are ignored: just ACK.
        for queries in [["qemu:allocation-depth"], ["base:other"], ["x-nbdboot:"]] {
            XCTAssertEqual(metaReplies(&m, .listMetaContext, "root", queries).map { $0.0 }, [.ack], "\(queries)")
        }
        XCTAssertEqual(metaReplies(&m, .listMetaContext, "nope", []).map { $0.0 }, [.errUnknown])
        XCTAssertEqual(decodeReplies(option(&m, .listMetaContext, [0, 0, 0, 9]).send).map { $0.0 }, [.errInvalid])
        XCTAssertNil(m.session.allocationContext)
    }

    func testSetMetaContextSelectsForThatExportOnly() throws {
        var m = machine()
        _ = option(&m, .structuredReply)
        // "base:" alone selects nothing in SET.
        XCTAssertEqual(metaReplies(&m, .setMetaContext, "root", ["base:"]).map { $0.0 }, [.ack])
        let replies = metaReplies(&m, .setMetaContext, "root", ["x-foo:bar", "base:allocation"])
        XCTAssertEqual(replies.map { $0.0 }, [.metaContext, .ack])
        XCTAssertEqual(try MetaContextReply.decode(replies[0].1), MetaContextReply(id: 1, name: "base:allocation"))
        XCTAssertEqual(option(&m, .go, InfoRequest(name: "root").encode()).next, .transmit(exportIndex: 0))
        XCTAssertEqual(m.session, Session(structuredReplies: true, allocationContext: 1))

        // Selected for "root" but GO on "home": no context.
        var other = machine()
        _ = option(&other, .structuredReply)
        _ = metaReplies(&other, .setMetaContext, "root", ["base:allocation"])
        XCTAssertEqual(option(&other, .go, InfoRequest(name: "home").encode()).next, .transmit(exportIndex: 1))
        XCTAssertNil(other.session.allocationContext)

        // A later SET replaces the selection, even when it fails.
        var cleared = machine()
        _ = option(&cleared, .structuredReply)
        _ = metaReplies(&cleared, .setMetaContext, "root", ["base:allocation"])
        XCTAssertEqual(decodeReplies(option(&cleared, .setMetaContext, [1, 2]).send).map { $0.0 }, [.errInvalid])
        XCTAssertEqual(option(&cleared, .exportName, Array("root".utf8)).next, .transmit(exportIndex: 0))
        XCTAssertNil(cleared.session.allocationContext)
    }

    func testStartTLSIsPolicyWithAMessage() {
        var m = machine()
        let step = option(&m, .startTLS)
        XCTAssertEqual(step.next, .readOption)
        let message = Array("TLS is not configured".utf8)
        XCTAssertEqual(step.send, [0x00, 0x03, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9] + [0, 0, 0, 5] + [0x80, 0, 0, 2]
                       + [0, 0, 0, UInt8(message.count)] + message)
        XCTAssertEqual(decodeReplies(option(&m, .startTLS, [1]).send).map { $0.0 }, [.errInvalid])
        // Negotiation goes on in plain text.
        XCTAssertEqual(option(&m, .go, InfoRequest(name: "root").encode()).next, .transmit(exportIndex: 0))
    }

    func testExtendedHeadersIsUnsup() {
        var m = machine()
        _ = option(&m, .structuredReply)
        let replies = decodeReplies(option(&m, .extendedHeaders).send)
        XCTAssertEqual(replies.map { $0.0 }, [.errUnsup])
        XCTAssertEqual(String(decoding: replies[0].1, as: UTF8.self), "EXTENDED_HEADERS is not supported by nbdboot serve")
    }

    func testInfoForTheDefaultExportNamesIt() throws {
        var m = machine()
        let replies = decodeReplies(option(&m, .info, InfoRequest(name: "", requests: [.name, .description, .blockSize]).encode()).send)
        XCTAssertEqual(replies.map { $0.0 }, [.info, .info, .info, .info, .ack])
        XCTAssertEqual(try replies.dropLast().map { try Info.decode($0.1) },
                       [.export(size: 0x10_0000, flags: flags), .blockSize(minimum: 1, preferred: 4096, maximum: 32 << 20),
                        .name("root"), .description("station root")])
        // No description: none sent even when asked.
        let home = decodeReplies(option(&m, .info, InfoRequest(name: "home", requests: [.description]).encode()).send)
        XCTAssertEqual(home.map { $0.0 }, [.info, .info, .ack])
    }

    func testOversizedOptionClosesBeforeReadingData() {
        var m = machine()
        let header = OptionHeader(option: .go, length: Limits.maxOptionLength + 1).encode()
        guard case .close(let reason) = m.receiveOptionHeader(header).next else { return XCTFail("must close") }
        XCTAssertTrue(reason.contains("exceeds"), reason)
        XCTAssertEqual(m.receiveOptionHeader(OptionHeader(option: .go, length: Limits.maxOptionLength).encode()).next,
                       .readOptionData(OptionHeader(option: .go, length: Limits.maxOptionLength)))
    }

    func testOptionCountIsCapped() {
        var m = ServerHandshake(exports: exports, maxOptions: 3)
        _ = m.receiveClientFlags(ClientFlagsMessage.encode([.fixedNewstyle]))
        for _ in 0..<3 {
            XCTAssertEqual(decodeReplies(option(&m, .list).send).last?.0, .ack)
        }
        guard case .close(let reason) = m.receiveOptionHeader(OptionHeader(option: .list, length: 0).encode()).next else {
            return XCTFail("the 4th option must close")
        }
        XCTAssertEqual(reason, "more than 3 options in one handshake; a client that never decides is closed")
        XCTAssertEqual(ServerHandshake(exports: exports).maxOptions, 64)
    }

    func testBadOptionMagicCloses() {
        var m = machine()
        guard case .close = m.receiveOptionHeader([UInt8](repeating: 0x41, count: 16)).next else { return XCTFail("must close") }
    }

    /// Splits a run of option replies into (type, data).
    func decodeReplies(_ bytes: [UInt8]) -> [(ReplyType, [UInt8])] {
        var out: [(ReplyType, [UInt8])] = []
        var rest = bytes[...]
        while rest.count >= OptionReplyHeader.size {
            guard let h = try? OptionReplyHeader.decode(Array(rest.prefix(OptionReplyHeader.size))) else {
                XCTFail("bad reply header")
                return out
            }
            rest = rest.dropFirst(OptionReplyHeader.size)
            out.append((h.type, Array(rest.prefix(Int(h.length)))))
            rest = rest.dropFirst(Int(h.length))
        }
        XCTAssertTrue(rest.isEmpty, "trailing bytes")
        return out
    }
}
