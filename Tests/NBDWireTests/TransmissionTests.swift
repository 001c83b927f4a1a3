// Requests and simple replies against hand-written vectors; byte coding edge
// cases; malformed input never traps.
import XCTest
@testable import NBDWire

final class TransmissionTests: XCTestCase {
    // magic 0x25609513, flags FUA (0x0001), type WRITE (1), cookie 0x0102030405060708,
    // offset 4096, length 512.
    let writeVector: [UInt8] = [
        0x25, 0x60, 0x95, 0x13,
        0x00, 0x01, 0x00, 0x01,
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
        0x00, 0x00, 0x02, 0x00,
    ]

    func testRequestEncodesToSpecBytes() {
        let r = Request(command: .write, flags: .fua, cookie: 0x0102_0304_0506_0708, offset: 4096, length: 512)
        XCTAssertEqual(r.encode(), writeVector)
    }

    func testRequestDecodes() throws {
        let r = try Request.decode(writeVector)
        XCTAssertEqual(r.command, .write)
        XCTAssertEqual(r.flags, .fua)
        XCTAssertEqual(r.cookie, 0x0102_0304_0506_0708)
        XCTAssertEqual(r.offset, 4096)
        XCTAssertEqual(r.length, 512)
    }

    func testRequestDecodesInPlaceFromALongerBuffer() throws {
        // The server decodes from its receive buffer, where the next request's
        // bytes may follow: only the first 28 count.
        let stream = writeVector + [0x25, 0x60, 0x95, 0x13, 0xff]
        let r = try stream.withUnsafeBytes { try Request.decode($0) }
        XCTAssertEqual(r, Request(command: .write, flags: .fua, cookie: 0x0102_0304_0506_0708, offset: 4096, length: 512))
        XCTAssertThrowsError(try Array(writeVector[0..<27]).withUnsafeBytes { try Request.decode($0) })
    }

    func testKernelViewOfTypeField() throws {
        // The kernel writes one u32 "type" = command | flags << 16; FUA is 1 << 16.
        var w = ByteWriter()
        w.u32(Magic.request)
        w.u32(UInt32(Command.write.rawValue) | 1 << 16)
        w.u64(7)
        w.u64(0)
        w.u32(4096)
        let r = try Request.decode(w.bytes)
        XCTAssertEqual(r.command, .write)
        XCTAssertEqual(r.flags, .fua)
    }

    func testRequestBadMagicAndShortBuffer() {
        var bad = writeVector
        bad[3] = 0x14
        XCTAssertThrowsError(try Request.decode(bad)) { error in
            guard case WireError.badMagic(let field, _, let found) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "request")
            XCTAssertEqual(found, 0x2560_9514)
        }
        for n in 0..<Request.size {
            XCTAssertThrowsError(try Request.decode(Array(writeVector[0..<n])), "prefix of \(n) bytes")
        }
    }

    func testUnknownCommandDecodesForTheServerToRefuse() throws {
        var v = writeVector
        v[7] = 0x42
        XCTAssertEqual(try Request.decode(v).command, Command(0x42))
        XCTAssertEqual(Command(0x42).name, "command 66")
    }

    func testRangeCheck() {
        XCTAssertTrue(Request(command: .read, cookie: 1, offset: 0, length: 4096).fits(in: 4096))
        XCTAssertFalse(Request(command: .read, cookie: 1, offset: 1, length: 4096).fits(in: 4096))
        XCTAssertFalse(Request(command: .read, cookie: 1, offset: UInt64.max - 10, length: 4096).fits(in: UInt64.max))
        XCTAssertTrue(Request(command: .read, cookie: 1, offset: 4096, length: 0).fits(in: 4096))
    }

    func testSimpleReplyVector() throws {
        // magic 0x67446698, error 22 (EINVAL), cookie 0xdeadbeef00000001.
        let v: [UInt8] = [0x67, 0x44, 0x66, 0x98, 0, 0, 0, 22,
                          0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1]
        let r = SimpleReply(error: .inval, cookie: 0xdead_beef_0000_0001)
        XCTAssertEqual(r.encode(), v)
        XCTAssertEqual(try SimpleReply.decode(v), r)
        var bad = v
        bad[0] = 0x66
        XCTAssertThrowsError(try SimpleReply.decode(bad))
        XCTAssertThrowsError(try SimpleReply.decode(Array(v[0..<15])))
    }

    func testByteWriterAndReaderAgree() throws {
        var w = ByteWriter()
        w.u8(0xfe)
        w.u16(0xbeef)
        w.u32(0x0102_0304)
        w.u64(0x1122_3344_5566_7788)
        w.append("ok")
        XCTAssertEqual(w.bytes, [0xfe, 0xbe, 0xef, 1, 2, 3, 4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x6f, 0x6b])
        var r = ByteReader(w.bytes)
        XCTAssertEqual(try r.u8(), 0xfe)
        XCTAssertEqual(try r.u16(), 0xbeef)
        XCTAssertEqual(try r.u32(), 0x0102_0304)
        XCTAssertEqual(try r.u64(), 0x1122_3344_5566_7788)
        XCTAssertEqual(try r.string(2), "ok")
        XCTAssertEqual(r.remaining, 0)
        XCTAssertThrowsError(try r.u8())
        XCTAssertThrowsError(try r.take(-1))
    }

    func testRandomGarbageNeverTraps() {
        // Deterministic pseudo-random inputs of every length up to 64 bytes: each
        // decoder either decodes or throws a WireError.
        var seed: UInt64 = 0x9e37_79b9_7f4a_7c15
        for length in 0...64 {
            for _ in 0..<20 {
                var bytes: [UInt8] = []
                for _ in 0..<length {
                    seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    bytes.append(UInt8(truncatingIfNeeded: seed >> 33))
                }
                _ = try? Request.decode(bytes)
                _ = try? SimpleReply.decode(bytes)
                _ = try? NewstyleGreeting.decode(bytes)
                _ = try? OptionHeader.decode(bytes)
                _ = try? OptionReplyHeader.decode(bytes)
                _ = try? InfoRequest.decode(bytes)
                _ = try? Info.decode(bytes)
                _ = try? ServerEntry.decode(bytes)
                _ = try? ExportNameReply.decode(bytes)
            }
        }
    }

    func testHex() {
        XCTAssertEqual(hex(0), "0")
        XCTAssertEqual(hex(0x2560_9513), "25609513")
        XCTAssertEqual(hex(UInt64.max), "ffffffffffffffff")
    }
}
