import XCTest
@testable import BootCore

final class DNSTests: XCTestCase {
    /// `nbd-server.lab IN A`, ID 0x1234, RD set: what `dig +norec`-less
    /// `dig nbd-server.lab A` sends, without EDNS.
    let queryGolden: [UInt8] = [
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // ID, RD, QD=1
        0x0a, 0x6e, 0x62, 0x64, 0x2d, 0x73, 0x65, 0x72, 0x76, 0x65, 0x72,        // 10 "nbd-server"
        0x03, 0x6c, 0x61, 0x62, 0x00,                                            // 3 "lab" 0
        0x00, 0x01, 0x00, 0x01,                                                  // A, IN
    ]

    /// The reply: nbd-server.lab CNAME real.lab, real.lab A 10.0.2.2, every
    /// name after the question compressed:
    ///   32: c0 0c            -> "nbd-server.lab" (offset 12)
    ///   44: 04 "real" c0 17  -> "real" + "lab" (offset 23)
    ///   51: c0 2c            -> "real.lab" (offset 44, inside the CNAME's RDATA)
    let replyGolden: [UInt8] = [
        0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,  // QR RD RA, QD=1 AN=2
        0x0a, 0x6e, 0x62, 0x64, 0x2d, 0x73, 0x65, 0x72, 0x76, 0x65, 0x72,
        0x03, 0x6c, 0x61, 0x62, 0x00, 0x00, 0x01, 0x00, 0x01,
        0xc0, 0x0c, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x07,  // CNAME, TTL 60, 7 bytes
        0x04, 0x72, 0x65, 0x61, 0x6c, 0xc0, 0x17,                                // "real" -> lab
        0xc0, 0x2c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x04,  // A, TTL 60, 4 bytes
        0x0a, 0x00, 0x02, 0x02,                                                  // 10.0.2.2
    ]

    func testQueryGoldenBytes() throws {
        let q = try DNSQuery(id: 0x1234, name: "nbd-server.lab", type: DNSType.a)
        XCTAssertEqual(q.encode(), queryGolden)
        XCTAssertEqual(try DNSQuery(id: 0x1234, name: "nbd-server.lab.", type: DNSType.a).encode(), queryGolden, "a trailing dot is the same name")
        var aaaa = queryGolden
        aaaa[aaaa.count - 3] = 28
        XCTAssertEqual(try DNSQuery(id: 0x1234, name: "nbd-server.lab", type: DNSType.aaaa).encode(), aaaa)
    }

    func testReplyWithCompressionAndCNAME() throws {
        let q = try DNSQuery(id: 0x1234, name: "nbd-server.lab", type: DNSType.a)
        XCTAssertEqual(try q.decodeReply(replyGolden), [.v4(IPv4Address(10, 0, 2, 2))])
        // Names compare case-insensitively (RFC 4343).
        let upper = try DNSQuery(id: 0x1234, name: "NBD-Server.LAB", type: DNSType.a)
        XCTAssertEqual(try upper.decodeReply(replyGolden), [.v4(IPv4Address(10, 0, 2, 2))])
        let (name, next) = try readDNSName(replyGolden, 51)
        XCTAssertEqual(name, [4] + Array("real".utf8) + [3] + Array("lab".utf8) + [0])
        XCTAssertEqual(next, 53, "after a pointer, the name ends with the pointer")
    }

    /// A reply that is not ours is ignored (nil), not an error.
    func testForeignReplies() throws {
        let q = try DNSQuery(id: 0x1234, name: "nbd-server.lab", type: DNSType.a)
        var otherID = replyGolden; otherID[1] = 0x35
        XCTAssertNil(try q.decodeReply(otherID))
        var notResponse = replyGolden; notResponse[2] = 0x01
        XCTAssertNil(try q.decodeReply(notResponse))
        XCTAssertNil(try q.decodeReply(queryGolden), "our own query looped back")
        let other = try DNSQuery(id: 0x1234, name: "other.lab", type: DNSType.a)
        XCTAssertNil(try other.decodeReply(replyGolden), "another question")
        let aaaa = try DNSQuery(id: 0x1234, name: "nbd-server.lab", type: DNSType.aaaa)
        XCTAssertNil(try aaaa.decodeReply(replyGolden), "another type")
        XCTAssertNil(try q.decodeReply(Array(replyGolden[0..<11])))
    }

    func testErrorCodes() throws {
        let q = try DNSQuery(id: 0x1234, name: "nbd-server.lab", type: DNSType.a)
        let header = Array(replyGolden[0..<32])
        func withCode(_ rcode: UInt8) -> [UInt8] {
            var m = header
            m[3] = 0x80 | rcode
            m[7] = 0  // no answers
            return m
        }
        XCTAssertEqual(try q.decodeReply(withCode(0)), [], "NODATA: the name exists, no A record")
        let rows: [(UInt8, DNSError)] = [(2, .serverFailure), (3, .nameError), (5, .refused), (4, .rcode(4))]
        for (rcode, want) in rows {
            XCTAssertThrowsError(try q.decodeReply(withCode(rcode))) { e in XCTAssertEqual(e as? DNSError, want) }
        }
        XCTAssertEqual(DNSError.nameError.description, "no such name (NXDOMAIN)")
        XCTAssertEqual(DNSError.rcode(4).description, "error code 4")
    }

    func testAAAA() throws {
        let q = try DNSQuery(id: 7, name: "nbd-server.lab", type: DNSType.aaaa)
        var m = q.encode()
        m[2] = 0x81; m[3] = 0x80; m[7] = 1
        m += [0xc0, 0x0c, 0x00, 28, 0x00, 0x01, 0, 0, 0, 60, 0x00, 16]
        m += IPv6Address("fec0::2")!.bytes
        XCTAssertEqual(try q.decodeReply(m), [.v6(IPv6Address("fec0::2")!)])
        var short = m
        short[short.count - 17] = 15  // RDLENGTH 15
        short.removeLast()
        XCTAssertThrowsError(try q.decodeReply(short)) { e in
            XCTAssertEqual(e as? DNSError, .malformed("an AAAA record that is not 16 bytes long"))
        }
    }

    /// TC: the complete records before the cut are used; with none, an error.
    func testTruncation() throws {
        let q = try DNSQuery(id: 0x1234, name: "nbd-server.lab", type: DNSType.a)
        var cut = Array(replyGolden[0..<(replyGolden.count - 2)])
        cut[2] |= 0x02
        XCTAssertThrowsError(try q.decodeReply(cut)) { e in XCTAssertEqual(e as? DNSError, .truncated) }
        // Two A records, the second cut: the first is kept.
        var two = Array(replyGolden[0..<32])
        two[2] |= 0x02; two[7] = 2
        let a: [UInt8] = [0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0, 0, 0, 60, 0x00, 0x04, 10, 0, 2, 2]
        two += a + a.prefix(13)
        XCTAssertEqual(try q.decodeReply(two), [.v4(IPv4Address(10, 0, 2, 2))])
        // Without TC the same cut is malformed.
        two[2] &= ~0x02
        XCTAssertThrowsError(try q.decodeReply(two)) { e in
            guard case .malformed = e as? DNSError else { return XCTFail("\(e)") }
        }
    }

    func testHostileNames() throws {
        let q = try DNSQuery(id: 0x1234, name: "nbd-server.lab", type: DNSType.a)
        // The answer's name points at itself: a loop.
        var loop = replyGolden
        loop[32] = 0xc0; loop[33] = 32
        XCTAssertThrowsError(try q.decodeReply(loop)) { e in
            XCTAssertEqual(e as? DNSError, .malformed("a compression pointer points forward (a loop)"))
        }
        // A pointer forward, past itself.
        var forward = replyGolden
        forward[33] = 0x40
        XCTAssertThrowsError(try q.decodeReply(forward))
        // Label types 01 and 10 are reserved.
        var reserved = replyGolden
        reserved[32] = 0x40
        XCTAssertThrowsError(try q.decodeReply(reserved)) { e in
            XCTAssertEqual(e as? DNSError, .malformed("a label type other than 0 (plain) and 3 (pointer)"))
        }
        // A chain of pointers, each to the one before, is fine; a name over 255 bytes is not.
        var long: [UInt8] = []
        for _ in 0..<5 { long += [63] + [UInt8](repeating: 0x61, count: 63) }
        long.append(0)
        XCTAssertThrowsError(try readDNSName(long, 0)) { e in
            XCTAssertEqual(e as? DNSError, .malformed("a name longer than 255 bytes"))
        }
    }

    /// Every prefix of a valid reply, and every single-byte corruption,
    /// parses to something or throws: nothing traps.
    func testDripFedAndCorrupted() throws {
        let q = try DNSQuery(id: 0x1234, name: "nbd-server.lab", type: DNSType.a)
        for n in 0..<replyGolden.count { _ = try? q.decodeReply(Array(replyGolden[0..<n])) }
        for i in 0..<replyGolden.count {
            for v: UInt8 in [0x00, 0x3f, 0xc0, 0xff] {
                var m = replyGolden
                m[i] = v
                _ = try? q.decodeReply(m)
            }
        }
    }

    func testBadNames() {
        let long63 = String(repeating: "a", count: 63)
        XCTAssertNoThrow(try encodeDNSName(long63 + ".lab"))
        let rows: [(String, String)] = [
            ("", "the name is empty"),
            (".", "the name is empty"),
            ("a..b", "empty label"),
            (".lab", "empty label"),
            (long63 + "a.lab", "longer than 63"),
            (Array(repeating: "abcdefg", count: 40).joined(separator: "."), "longer than 253"),
            ("nbd server", "the character ' ' is not allowed"),
            ("nbd/server", "the character '/' is not allowed"),
        ]
        for (name, why) in rows {
            XCTAssertThrowsError(try encodeDNSName(name), name) { e in
                guard case .badName(let text) = e as? DNSError else { return XCTFail("\(e)") }
                XCTAssertTrue(text.contains(why), "\(text) should say \(why)")
            }
        }
    }
}
