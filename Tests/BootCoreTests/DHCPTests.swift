import XCTest
@testable import BootCore

final class DHCPTests: XCTestCase {
    let mac: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
    func zeros(_ n: Int) -> [UInt8] { [UInt8](repeating: 0, count: n) }

    /// DISCOVER written out by hand from RFC 2131 section 2 (fixed fields)
    /// and RFC 2132 (options 53, 61, 55, 255), padded to 300 bytes (RFC 1542).
    func testDiscoverGoldenBytes() {
        var want: [UInt8] = [
            0x01, 0x01, 0x06, 0x00,   // op BOOTREQUEST, htype Ethernet, hlen 6, hops 0
            0x12, 0x34, 0x56, 0x78,   // xid
            0x00, 0x03, 0x80, 0x00,   // secs 3, flags BROADCAST
        ]
        want += zeros(16)                          // ciaddr yiaddr siaddr giaddr
        want += mac + zeros(10)                    // chaddr[16]
        want += zeros(64) + zeros(128)             // sname, file
        want += [0x63, 0x82, 0x53, 0x63]           // magic cookie 99.130.83.99
        want += [0x35, 0x01, 0x01]                 // 53: DHCPDISCOVER
        want += [0x3D, 0x07, 0x01] + mac           // 61: client id, type 1 (Ethernet)
        want += [0x37, 0x06, 0x01, 0x03, 0x06, 0x0C, 0x0F, 0x11]  // 55: 1 3 6 12 15 17
        want += [0xFF]                             // end
        want += zeros(300 - want.count)
        XCTAssertEqual(want.count, 300)
        XCTAssertEqual(DHCPMessage.discover(xid: 0x1234_5678, mac: mac, secs: 3).encode(), want)
    }

    func testRequestCarriesAddressAndServer() throws {
        let bytes = DHCPMessage.request(xid: 7, mac: mac, address: IPv4Address(10, 0, 2, 15), server: IPv4Address(10, 0, 2, 2)).encode()
        XCTAssertEqual(Array(bytes[240..<243]), [0x35, 0x01, 0x03])
        XCTAssertEqual(Array(bytes[252..<264]), [0x32, 0x04, 10, 0, 2, 15, 0x36, 0x04, 10, 0, 2, 2])
        XCTAssertEqual(Array(bytes[12..<16]), [0, 0, 0, 0], "ciaddr stays 0 in SELECTING")
        let back = try DHCPMessage.decode(bytes)
        XCTAssertEqual(back.messageType, .request)
        XCTAssertEqual(back.address(DHCPOptionCode.requestedAddress), IPv4Address(10, 0, 2, 15))
    }

    /// An ACK as slirp sends it, written by hand, with a split option 6 (RFC 3396).
    func handAck(type: UInt8 = 5, xid: [UInt8] = [0x12, 0x34, 0x56, 0x78]) -> [UInt8] {
        var p: [UInt8] = [0x02, 0x01, 0x06, 0x00] + xid + [0x00, 0x00, 0x80, 0x00]
        p += [0, 0, 0, 0] + [10, 0, 2, 15] + [10, 0, 2, 2] + [0, 0, 0, 0]  // ciaddr yiaddr siaddr giaddr
        p += mac + zeros(10) + zeros(64)
        p += Array("pxelinux.0".utf8) + zeros(128 - 10)
        p += [0x63, 0x82, 0x53, 0x63]
        p += [53, 1, type]
        p += [54, 4, 10, 0, 2, 3]
        p += [51, 4, 0x00, 0x01, 0x51, 0x80]       // 86400 s
        p += [1, 4, 255, 255, 255, 0]
        p += [3, 8, 10, 0, 2, 2, 10, 0, 2, 1]      // two routers: the first is used
        p += [0, 0]                                 // pads
        p += [6, 4, 10, 0, 2, 3]
        p += [12, 8] + Array("station1".utf8)
        p += [15, 11] + Array("example.org".utf8)
        p += [17, 19] + Array("10.0.2.2:10809/root".utf8)
        p += [6, 4, 1, 1, 1, 1]                     // second part of option 6
        p += [255] + zeros(20)
        return p
    }

    func testParseAck() throws {
        let m = try DHCPMessage.decode(handAck())
        XCTAssertEqual(m.messageType, .ack)
        XCTAssertTrue(m.isReply(to: 0x1234_5678, mac: mac))
        XCTAssertFalse(m.isReply(to: 0x1234_5679, mac: mac))
        XCTAssertFalse(m.isReply(to: 0x1234_5678, mac: [1, 2, 3, 4, 5, 6]))
        let lease = DHCPLease(m, source: IPv4Address(9, 9, 9, 9))
        XCTAssertEqual(lease.address, IPv4Address(10, 0, 2, 15))
        XCTAssertEqual(lease.netmask, IPv4Address(255, 255, 255, 0))
        XCTAssertEqual(lease.gateway, IPv4Address(10, 0, 2, 2))
        XCTAssertEqual(lease.dns, [IPv4Address(10, 0, 2, 3), IPv4Address(1, 1, 1, 1)])
        XCTAssertEqual(lease.hostname, "station1")
        XCTAssertEqual(lease.domain, "example.org")
        XCTAssertEqual(lease.rootPath, "10.0.2.2:10809/root")
        XCTAssertEqual(lease.leaseTime, 86400)
        XCTAssertEqual(lease.serverID, IPv4Address(10, 0, 2, 3))
        XCTAssertEqual(lease.nextServer, IPv4Address(10, 0, 2, 2))
        XCTAssertEqual(lease.rootServer, IPv4Address(10, 0, 2, 2), "siaddr wins as ROOTSERVER")
        XCTAssertEqual(lease.bootFile, "pxelinux.0")
    }

    func testOfferAndNakTypes() throws {
        XCTAssertEqual(try DHCPMessage.decode(handAck(type: 2)).messageType, .offer)
        XCTAssertEqual(try DHCPMessage.decode(handAck(type: 6)).messageType, .nak)
    }

    func testServerIDFallsBackToSourceAndMaskToClass() throws {
        var p = handAck()
        // Drop everything after option 53: no server id, no mask, no siaddr.
        p.replaceSubrange(243..., with: [255])
        p.replaceSubrange(20..<24, with: [0, 0, 0, 0])
        let lease = DHCPLease(try DHCPMessage.decode(p), source: IPv4Address(10, 0, 2, 2))
        XCTAssertEqual(lease.serverID, IPv4Address(10, 0, 2, 2))
        XCTAssertEqual(lease.rootServer, IPv4Address(10, 0, 2, 2))
        XCTAssertEqual(lease.netmask, IPv4Address(255, 0, 0, 0))
        XCTAssertNil(lease.gateway)
        XCTAssertNil(lease.leaseTime)
    }

    func testOverloadedFileField() throws {
        var p = handAck()
        // Option 52 = 1: the file field holds options (here: root-path "x/y").
        p.replaceSubrange(108..<236, with: [17, 3] + Array("x/y".utf8) + [255] + zeros(122))
        p.replaceSubrange(243..<243, with: [52, 1, 1])
        let m = try DHCPMessage.decode(p)
        XCTAssertEqual(m.file, "")
        XCTAssertEqual(m.text(DHCPOptionCode.rootPath), "10.0.2.2:10809/rootx/y", "RFC 3396 concatenation across areas")
    }

    func testMalformed() {
        XCTAssertThrowsError(try DHCPMessage.decode(zeros(239)))
        var noMagic = handAck()
        noMagic[236] = 0
        XCTAssertThrowsError(try DHCPMessage.decode(noMagic))
        var truncated = Array(handAck()[0..<243])
        truncated += [12, 40, 65]  // host name option claims 40 bytes, has 1
        XCTAssertThrowsError(try DHCPMessage.decode(truncated)) { e in
            XCTAssertTrue((e as! DHCPError).reason.contains("option 12"))
        }
    }
}
