// Allow lists (authfile syntax): address and CIDR parsing, IPv4/IPv6 matching,
// IPv4-mapped addresses, and the handshake's answers to a refused client.
import NBDWire
import XCTest

@testable import NBDServer

final class AllowListTests: XCTestCase {
    func ip(_ t: String) -> IPAddress { IPAddress(t)! }

    func testAddresses() {
        XCTAssertEqual(ip("10.0.2.15").description, "10.0.2.15")
        XCTAssertTrue(ip("10.0.2.15").isV4)
        XCTAssertEqual(ip("::ffff:10.0.2.15"), ip("10.0.2.15"))
        XCTAssertEqual(ip("::1").bytes, [UInt8](repeating: 0, count: 15) + [1])
        XCTAssertEqual(ip("fd00:1::2").description, "fd00:1:0:0:0:0:0:2")
        XCTAssertEqual(ip("1:2:3:4:5:6:7:8").description, "1:2:3:4:5:6:7:8")
        XCTAssertEqual(ip("::"), IPAddress("0:0:0:0:0:0:0:0"))
        for bad in ["", "1.2.3", "1.2.3.256", "1.2.3.4.5", "01234.1.1.1", "host", "1::2::3", "1:2:3:4:5:6:7:8:9",
                    "12345::", "fe80::1%eth0", ":::", "1:2:3:4:5:6:7::8"] {
            XCTAssertNil(IPAddress(bad), bad)
        }
        XCTAssertEqual(IPAddress(hostOf: "10.0.2.15:40312"), ip("10.0.2.15"))
        XCTAssertEqual(IPAddress(hostOf: "[::1]:40312"), ip("::1"))
        XCTAssertNil(IPAddress(hostOf: "unix socket"))
    }

    func testRanges() throws {
        let list = try AllowList.parse("""
            # lab
            192.168.10.0/24
            10.0.2.15   # one station
            fd00:1::/32

            ::ffff:172.16.0.0/12
            """, source: "lab.allow")
        for yes in ["192.168.10.1", "192.168.10.255", "10.0.2.15", "::ffff:10.0.2.15", "fd00:1:ffff::9", "172.31.1.1"] {
            XCTAssertTrue(list.allows(ip(yes)), yes)
        }
        for no in ["192.168.11.1", "10.0.2.16", "fd00:2::1", "172.32.0.1", "::1", "127.0.0.1"] {
            XCTAssertFalse(list.allows(ip(no)), no)
        }
        XCTAssertTrue(try AllowList.parse("0.0.0.0/0", source: "x").allows(ip("8.8.8.8")))
        XCTAssertFalse(try AllowList.parse("0.0.0.0/0", source: "x").allows(ip("::2")))
        XCTAssertTrue(try AllowList.parse("::/0", source: "x").allows(ip("::2")))
        XCTAssertFalse(try AllowList.parse("", source: "x").allows(ip("10.0.0.1")), "an empty list admits nobody")
        for (bad, line) in [("10.0.0.0/33", 1), ("# c\n10.0.0.1/", 2), ("::/129", 1), ("10.0.0.0/-1", 1), ("a/b/c", 1)] {
            XCTAssertThrowsError(try AllowList.parse(bad, source: "f.allow"), bad) {
                XCTAssertTrue(($0 as! ConfigError).message.hasPrefix("f.allow:\(line): "), "\($0)")
            }
        }
    }

    func testHandshakeRefusesWithPolicyError() throws {
        let info = [ExportInfo(name: "open", size: 512, flags: [.hasFlags]), ExportInfo(name: "lab", size: 512, flags: [.hasFlags])]
        var h = ServerHandshake(exports: info, refusals: [nil, "client 10.9.9.9 is not in the allow list lab.allow"])
        _ = h.receiveClientFlags(ClientFlagsMessage.encode([.fixedNewstyle, .noZeroes]))
        let go = h.receiveOption(OptionHeader(option: .go, length: 0), data: InfoRequest(name: "lab", requests: []).encode())
        XCTAssertEqual(go.next, .readOption)
        let header = try OptionReplyHeader.decode(Array(go.send.prefix(OptionReplyHeader.size)))
        XCTAssertEqual(header.type, .errPolicy)
        XCTAssertEqual(String(decoding: go.send.dropFirst(OptionReplyHeader.size), as: UTF8.self), "GO 'lab': access denied")
        XCTAssertTrue(go.note?.contains("lab.allow") ?? false, "\(go.note ?? "")")
        let list = h.receiveOption(OptionHeader(option: .list, length: 0), data: [])
        XCTAssertEqual(list.send.count, 2 * (OptionReplyHeader.size + 4) + 4 + 3 + OptionReplyHeader.size, "LIST shows every export, as nbd-server")
        let name = h.receiveOption(OptionHeader(option: .exportName, length: 3), data: Array("lab".utf8))
        guard case .close(let reason) = name.next else { return XCTFail("EXPORT_NAME of a refused export must close") }
        XCTAssertTrue(reason.contains("not in the allow list"), reason)
        let ok = h.receiveOption(OptionHeader(option: .go, length: 0), data: InfoRequest(name: "open", requests: []).encode())
        XCTAssertEqual(ok.next, .transmit(exportIndex: 0))
        var closed = ServerHandshake(exports: info, listAllowed: false)
        let refused = closed.receiveOption(OptionHeader(option: .list, length: 0), data: [])
        XCTAssertEqual(try OptionReplyHeader.decode(Array(refused.send.prefix(OptionReplyHeader.size))).type, .errPolicy)
    }
}
