import XCTest
@testable import BootCore

final class IPv6AddressTests: XCTestCase {
    /// Input text, the canonical RFC 5952 text it prints as.
    func testParseAndCanonicalText() {
        let rows: [(String, String)] = [
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("fec0::2", "fec0::2"),
            ("FEC0:0:0:0:0:0:0:15", "fec0::15"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  // the first of two equal runs
            ("2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  // a single zero group stays
            ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
            ("::ffff:10.0.2.2", "::ffff:a00:202"),
            ("fe80::5054:ff:fe12:3456", "fe80::5054:ff:fe12:3456"),
            ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
        ]
        for (input, text) in rows {
            guard let a = IPv6Address(input) else { XCTFail("\(input) should parse"); continue }
            XCTAssertEqual(a.text, text, input)
            XCTAssertEqual(IPv6Address(a.text), a, "round trip of \(input)")
        }
    }

    func testRejected() {
        for bad in ["", ":", ":::", "1:::2", "1::2::3", ":1::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::",
                    "g::1", "1:2:3:4:5:6:7:8::", "::1:", "1.2.3.4", "::10.0.2", "::1.2.3.4:5", "[::1]", "fe80::1%eth0", "fec0::/64"] {
            XCTAssertNil(IPv6Address(bad), bad)
        }
    }

    func testBytesAndGroups() {
        let a = IPv6Address(0xfec0, 0, 0, 0, 0, 0, 0, 0x15)
        XCTAssertEqual(a.bytes, [0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x15])
        XCTAssertEqual(IPv6Address(bytes: a.bytes[...]), a)
        XCTAssertEqual(a.groups, [0xfec0, 0, 0, 0, 0, 0, 0, 0x15])
        XCTAssertNil(IPv6Address(bytes: [1, 2, 3][...]))
        XCTAssertTrue(IPv6Address("fe80::1")!.isLinkLocal)
        XCTAssertTrue(IPv6Address("febf::1")!.isLinkLocal)
        XCTAssertFalse(IPv6Address("fec0::1")!.isLinkLocal)
        XCTAssertTrue(IPv6Address("::")!.isAny)
    }

    func testEitherFamily() {
        XCTAssertEqual(IPAddress("10.0.2.2"), .v4(IPv4Address(10, 0, 2, 2)))
        XCTAssertEqual(IPAddress("fec0::2"), .v6(IPv6Address(0xfec0, 0, 0, 0, 0, 0, 0, 2)))
        XCTAssertEqual(IPAddress("[fec0::2]"), .v6(IPv6Address(0xfec0, 0, 0, 0, 0, 0, 0, 2)))
        XCTAssertNil(IPAddress("nbd-server.lab"))
        XCTAssertNil(IPAddress("[10.0.2.2]"))
        XCTAssertEqual(IPAddress("fec0::2")!.text(port: 53), "[fec0::2]:53")
        XCTAssertEqual(IPAddress("10.0.2.3")!.text(port: 53), "10.0.2.3:53")
        XCTAssertTrue(isHostName("nbd-server.lab"))
        XCTAssertTrue(isHostName("nbd"))
        XCTAssertFalse(isHostName("10.0.2.2"))
        XCTAssertFalse(isHostName("fec0::2"))
    }
}
