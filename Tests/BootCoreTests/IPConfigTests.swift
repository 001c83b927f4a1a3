import XCTest
@testable import BootCore

final class IPConfigTests: XCTestCase {
    func testKeywords() throws {
        XCTAssertEqual(try IPConfig.parse(nil).method, .dhcp, "no ip= means DHCP")
        for v in ["", "dhcp", "on", "any", "bootp", "both"] { XCTAssertEqual(try IPConfig.parse(v).method, .dhcp, v) }
        for v in ["off", "none"] { XCTAssertEqual(try IPConfig.parse(v).method, .off, v) }
    }

    func testKernelGrammar() throws {
        let full = try IPConfig.parse("10.0.2.15:10.0.2.2:10.0.2.1:255.255.255.0:station1:eth0:off:10.0.2.3:1.1.1.1")
        XCTAssertEqual(full, IPConfig(method: .manual, address: IPv4Address(10, 0, 2, 15), server: IPv4Address(10, 0, 2, 2),
                                      gateway: IPv4Address(10, 0, 2, 1), netmask: IPv4Address(255, 255, 255, 0),
                                      hostname: "station1", device: "eth0",
                                      dns: [IPv4Address(10, 0, 2, 3), IPv4Address(1, 1, 1, 1)]))
        let brief = try IPConfig.parse("10.0.2.15::10.0.2.2:255.255.255.0::eth0:off")
        XCTAssertEqual(brief.method, .manual)
        XCTAssertNil(brief.server)
        XCTAssertEqual(brief.gateway, IPv4Address(10, 0, 2, 2))
        XCTAssertEqual(brief.device, "eth0")
        // No netmask: the address's class (kernel ipconfig behaviour).
        XCTAssertEqual(try IPConfig.parse("172.16.0.9::::::none").netmask, IPv4Address(255, 255, 0, 0))
        XCTAssertEqual(try IPConfig.parse("10.1.2.3:::::eth0").netmask, IPv4Address(255, 0, 0, 0), "empty autoconf + client = static")
        let dhcpOnIf = try IPConfig.parse(":::::eth1:dhcp")
        XCTAssertEqual(dhcpOnIf.method, .dhcp)
        XCTAssertEqual(dhcpOnIf.device, "eth1")
        XCTAssertEqual(try IPConfig.parse(":::::eth1:").method, .dhcp, "no client, no autoconf = DHCP")
    }

    func testErrors() {
        let rows: [(String, String)] = [
            ("static", "not a known keyword"),
            ("10.0.2.300::::::off", "the client field \"10.0.2.300\" is not an IPv4 address"),
            ("10.0.2.15::gw::::off", "the gateway field \"gw\""),
            ("10.0.2.15:::::eth0:magic", "the autoconf field \"magic\""),
            (":::::eth0:off", "needs a client address"),
            ("1:2:3:4:5:6:7:8:9:10:11", "more than 10"),
            ("10.0.2.15::::::off:dns", "the dns0 field \"dns\""),
        ]
        for (v, problem) in rows {
            XCTAssertThrowsError(try IPConfig.parse(v), v) { e in
                let e = e as! BootConfigError
                XCTAssertEqual(e.parameter, "ip")
                XCTAssertEqual(e.value, v)
                XCTAssertTrue(e.problem.contains(problem), "\(e.description) should say \(problem)")
            }
        }
    }

    func testAddresses() {
        XCTAssertEqual(IPv4Address("10.0.2.15")?.value, 0x0A00_020F)
        XCTAssertEqual(IPv4Address(value: 0xC0A8_0001).text, "192.168.0.1")
        for bad in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "01234.1.1.1", "a.b.c.d", " 1.2.3.4"] {
            XCTAssertNil(IPv4Address(bad), bad)
        }
        XCTAssertEqual(IPv4Address(10, 0, 2, 15).broadcast(netmask: IPv4Address(255, 255, 255, 0)).text, "10.0.2.255")
        XCTAssertEqual(IPv4Address(200, 1, 1, 1).classfulNetmask.text, "255.255.255.0")
    }
}
