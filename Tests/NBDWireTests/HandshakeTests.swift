// Handshake messages against byte vectors written by hand from the NBD
// specification (doc/proto.md, "Handshake" and "Values"), then round trips
// and malformed input.
import XCTest
@testable import NBDWire

final class HandshakeTests: XCTestCase {
    // "NBDMAGIC" "IHAVEOPT", flags FIXED_NEWSTYLE|NO_ZEROES = 0x0003.
    let greetingVector: [UInt8] = [
        0x4e, 0x42, 0x44, 0x4d, 0x41, 0x47, 0x49, 0x43,
        0x49, 0x48, 0x41, 0x56, 0x45, 0x4f, 0x50, 0x54,
        0x00, 0x03,
    ]

    func testNewstyleGreetingEncodesToSpecBytes() {
        XCTAssertEqual(NewstyleGreeting(flags: [.fixedNewstyle, .noZeroes]).encode(), greetingVector)
        XCTAssertEqual(Array("NBDMAGICIHAVEOPT".utf8), Array(greetingVector[0..<16]))
    }

    func testNewstyleGreetingDecodes() throws {
        XCTAssertEqual(try NewstyleGreeting.decode(greetingVector).flags, [.fixedNewstyle, .noZeroes])
    }

    func testGreetingWithBadMagicIsTypedError() {
        var bad = greetingVector
        bad[0] = 0x00
        XCTAssertThrowsError(try NewstyleGreeting.decode(bad)) { error in
            guard case WireError.badMagic(let field, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "greeting")
        }
    }

    func testGreetingTooShortIsTypedError() {
        XCTAssertThrowsError(try NewstyleGreeting.decode(Array(greetingVector[0..<17]))) { error in
            XCTAssertEqual(error as? WireError, .short(needed: 2, available: 1))
        }
    }

    func testOldstyleGreeting() throws {
        // NBDMAGIC, cliserv_magic 0x00420281861253, size 1 MiB, flags 0x0001, 124 zeroes.
        var v: [UInt8] = Array("NBDMAGIC".utf8)
        v += [0x00, 0x00, 0x42, 0x02, 0x81, 0x86, 0x12, 0x53]
        v += [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00]
        v += [0x00, 0x00, 0x00, 0x01]
        v += [UInt8](repeating: 0, count: 124)
        XCTAssertEqual(v.count, 152)
        let g = OldstyleGreeting(exportSize: 1 << 20, flags: .hasFlags)
        XCTAssertEqual(g.encode(), v)
        XCTAssertEqual(try OldstyleGreeting.decode(v), g)
    }

    func testClientFlags() throws {
        XCTAssertEqual(ClientFlagsMessage.encode([.fixedNewstyle, .noZeroes]), [0, 0, 0, 3])
        // BusyBox sends 0: accepted.
        XCTAssertEqual(try ClientFlagsMessage.decode([0, 0, 0, 0], offered: [.fixedNewstyle, .noZeroes]), [])
        XCTAssertEqual(try ClientFlagsMessage.decode([0, 0, 0, 1], offered: [.fixedNewstyle]), .fixedNewstyle)
    }

    func testClientFlagsUnknownBitOrUnofferedNoZeroesIsRefused() {
        XCTAssertThrowsError(try ClientFlagsMessage.decode([0, 0, 0, 4], offered: [.fixedNewstyle, .noZeroes]))
        XCTAssertThrowsError(try ClientFlagsMessage.decode([0x80, 0, 0, 1], offered: [.fixedNewstyle, .noZeroes]))
        XCTAssertThrowsError(try ClientFlagsMessage.decode([0, 0, 0, 3], offered: [.fixedNewstyle]))
        XCTAssertThrowsError(try ClientFlagsMessage.decode([0, 0, 3], offered: [.fixedNewstyle]))
    }

    func testOptionHeaderVector() throws {
        // IHAVEOPT, option 7 (GO), length 0x0000000a.
        let v: [UInt8] = Array("IHAVEOPT".utf8) + [0, 0, 0, 7, 0, 0, 0, 0x0a]
        XCTAssertEqual(OptionHeader(option: .go, length: 10).encode(), v)
        XCTAssertEqual(try OptionHeader.decode(v), OptionHeader(option: .go, length: 10))
    }

    func testOptionHeaderRefusesHugeLengthBeforeAllocating() {
        // A 4 GiB - 1 option length.
        let v: [UInt8] = Array("IHAVEOPT".utf8) + [0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]
        XCTAssertThrowsError(try OptionHeader.decode(v)) { error in
            guard case WireError.tooLong(_, let length, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(length, 0xffff_ffff)
        }
    }

    func testOptionHeaderBadMagic() {
        let v: [UInt8] = Array("IHAVEOPX".utf8) + [0, 0, 0, 1, 0, 0, 0, 0]
        XCTAssertThrowsError(try OptionHeader.decode(v))
    }

    func testOptionReplyHeaderVector() throws {
        // 0x0003e889045565a9, option 3 (LIST), reply 0x80000001 (ERR_UNSUP), length 5.
        let v: [UInt8] = [0x00, 0x03, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9,
                          0, 0, 0, 3, 0x80, 0, 0, 1, 0, 0, 0, 5]
        let h = OptionReplyHeader(option: .list, type: .errUnsup, length: 5)
        XCTAssertEqual(h.encode(), v)
        XCTAssertEqual(try OptionReplyHeader.decode(v), h)
        XCTAssertTrue(h.type.isError)
        XCTAssertFalse(ReplyType.ack.isError)
    }

    func testExportNameReplyWithAndWithoutZeroes() throws {
        let r = ExportNameReply(exportSize: 0x1_0000_0000, flags: [.hasFlags, .sendFlush])
        let short: [UInt8] = [0, 0, 0, 1, 0, 0, 0, 0, 0x00, 0x05]
        XCTAssertEqual(r.encode(noZeroes: true), short)
        XCTAssertEqual(r.encode(noZeroes: false), short + [UInt8](repeating: 0, count: 124))
        XCTAssertEqual(try ExportNameReply.decode(short), r)
        XCTAssertThrowsError(try ExportNameReply.decode(Array(short[0..<9])))
    }

    func testInfoRequestVector() throws {
        // name length 4, "root", 1 request: NBD_INFO_BLOCK_SIZE (3).
        let v: [UInt8] = [0, 0, 0, 4] + Array("root".utf8) + [0, 1, 0, 3]
        let q = InfoRequest(name: "root", requests: [.blockSize])
        XCTAssertEqual(q.encode(), v)
        XCTAssertEqual(try InfoRequest.decode(v), q)
        // nbd-client sends zero requests.
        XCTAssertEqual(try InfoRequest.decode([0, 0, 0, 0, 0, 0]), InfoRequest(name: ""))
    }

    func testInfoRequestMalformed() {
        // Name length larger than the option.
        XCTAssertThrowsError(try InfoRequest.decode([0, 0, 0, 9, 0x61, 0, 0]))
        // Name length above 4096.
        XCTAssertThrowsError(try InfoRequest.decode([0, 0, 0x10, 1, 0, 0]))
        // Count says 2 requests, only one present.
        XCTAssertThrowsError(try InfoRequest.decode([0, 0, 0, 0, 0, 2, 0, 3]))
        // Empty buffer.
        XCTAssertThrowsError(try InfoRequest.decode([]))
    }

    func testInfoPayloadVectors() throws {
        // NBD_INFO_EXPORT: type 0, size 64 MiB, flags 0x0003.
        let export: [UInt8] = [0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0x03]
        XCTAssertEqual(Info.export(size: 64 << 20, flags: [.hasFlags, .readOnly]).encode(), export)
        XCTAssertEqual(try Info.decode(export), .export(size: 64 << 20, flags: [.hasFlags, .readOnly]))
        // NBD_INFO_BLOCK_SIZE: type 3, 1, 4096, 32 MiB.
        let block: [UInt8] = [0, 3, 0, 0, 0, 1, 0, 0, 0x10, 0, 0x02, 0, 0, 0]
        XCTAssertEqual(Info.blockSize(minimum: 1, preferred: 4096, maximum: 32 << 20).encode(), block)
        XCTAssertEqual(try Info.decode(block), .blockSize(minimum: 1, preferred: 4096, maximum: 32 << 20))
        // NBD_INFO_NAME and DESCRIPTION carry text after the type.
        XCTAssertEqual(Info.name("root").encode(), [0, 1] + Array("root".utf8))
        XCTAssertEqual(try Info.decode([0, 2] + Array("lab".utf8)), .description("lab"))
        // Unknown types survive decoding for the caller to ignore.
        XCTAssertEqual(try Info.decode([0, 9, 1, 2]), .unknown(type: 9, data: [1, 2]))
    }

    func testInfoPayloadWrongSizesAreRefused() {
        XCTAssertThrowsError(try Info.decode([0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0]))        // EXPORT, 11 bytes
        XCTAssertThrowsError(try Info.decode([0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 3, 0]))  // EXPORT, 13 bytes
        XCTAssertThrowsError(try Info.decode([0, 3, 0, 0, 0, 1]))                          // BLOCK_SIZE, short
        XCTAssertThrowsError(try Info.decode([0]))
    }

    func testServerEntryVector() throws {
        let v: [UInt8] = [0, 0, 0, 4] + Array("root".utf8) + Array("lab image".utf8)
        XCTAssertEqual(ServerEntry(name: "root", description: "lab image").encode(), v)
        XCTAssertEqual(try ServerEntry.decode(v), ServerEntry(name: "root", description: "lab image"))
        XCTAssertThrowsError(try ServerEntry.decode([0, 0, 0, 9, 0x61]))
    }

    func testNamesOfCodes() {
        XCTAssertEqual(OptionCode.go.name, "GO")
        XCTAssertEqual(OptionCode(99).name, "option 99")
        XCTAssertEqual(ReplyType.errUnknown.name, "ERR_UNKNOWN")
        XCTAssertEqual(Command.flush.name, "FLUSH")
        XCTAssertEqual(NBDErrno.nospc.name, "ENOSPC")
    }
}
