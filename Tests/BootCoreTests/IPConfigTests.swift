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
        XCTAssertEqual(full, IPConfig(method: .manual, address: IPv4Address(10, 0, 2, 15), server: .v4(IPv4Address(10, 0, 2, 2)),
                                      gateway: IPv4Address(10, 0, 2, 1), netmask: IPv4Address(255, 255, 255, 0),
                                      hostname: "station1", device: "eth0",
                                      dns: [.v4(IPv4Address(10, 0, 2, 3)), .v4(IPv4Address(1, 1, 1, 1))]))
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
            ("10.0.2.15:2:3:4:5:6:7:8:9:10:11", "more than 10"),
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

    /// IPv6: dracut's bracketed static form, auto6 (alone, IFACE:auto6 and in
    /// the autoconf field), dracut's IFACE:METHOD, and the DHCPv6 refusal.
    func testIPv6Forms() throws {
        let fec0_15 = IPv6Address(0xfec0, 0, 0, 0, 0, 0, 0, 0x15)
        let fec0_2 = IPv6Address(0xfec0, 0, 0, 0, 0, 0, 0, 2)
        let rows: [(String, IPConfig)] = [
            ("[fec0::15]::[fec0::2]:64::eth0:none",
             IPConfig(method: .manual, ipv6: StaticIPv6(address: fec0_15, prefixLength: 64, gateway: fec0_2), device: "eth0")),
            ("[fec0::15]::[fec0::2]:48:st1:eth0:off:[fec0::3]:10.0.2.3",
             IPConfig(method: .manual, ipv6: StaticIPv6(address: fec0_15, prefixLength: 48, gateway: fec0_2), hostname: "st1",
                      device: "eth0", dns: [.v6(IPv6Address(0xfec0, 0, 0, 0, 0, 0, 0, 3)), .v4(IPv4Address(10, 0, 2, 3))])),
            ("[fec0::15]:::::eth0:none", IPConfig(method: .manual, ipv6: StaticIPv6(address: fec0_15), device: "eth0")),
            ("[fec0::15/56]::[fec0::2]:::eth0:static",
             IPConfig(method: .manual, ipv6: StaticIPv6(address: fec0_15, prefixLength: 56, gateway: fec0_2), device: "eth0")),
            ("[fec0::15]:[fec0::2]::64:::", IPConfig(method: .manual, server: .v6(fec0_2), ipv6: StaticIPv6(address: fec0_15))),
            ("[2001:db8::15]::[fe80::1]:64::eth0:none",
             IPConfig(method: .manual, ipv6: StaticIPv6(address: IPv6Address("2001:db8::15")!, gateway: IPv6Address("fe80::1")!), device: "eth0")),
            ("auto6", IPConfig(method: .auto6)),
            ("eth0:auto6", IPConfig(method: .auto6, device: "eth0")),
            ("eth1:auto6::", IPConfig(method: .auto6, device: "eth1")),
            (":::::eth0:auto6", IPConfig(method: .auto6, device: "eth0")),
            ("eth0:dhcp", IPConfig(method: .dhcp, device: "eth0")),
            ("enp1s0:on", IPConfig(method: .dhcp, device: "enp1s0")),
            ("single-dhcp", IPConfig(method: .dhcp)),
        ]
        for (v, want) in rows {
            XCTAssertEqual(try IPConfig.parse(v), want, v)
        }
        XCTAssertTrue(try IPConfig.parse("auto6").usesIPv6)
        XCTAssertTrue(try IPConfig.parse("[fec0::15]:::::eth0:none").usesIPv6)
        XCTAssertFalse(try IPConfig.parse("dhcp").usesIPv6)
        XCTAssertFalse(try IPConfig.parse("10.0.2.15:::::eth0:none").usesIPv6)
    }

    func testIPv6Errors() {
        let rows: [(String, String)] = [
            ("dhcp6", "dhcp6 is not supported (the init has no DHCPv6 client): use auto6"),
            ("eth0:dhcp6", "dhcp6 is not supported"),
            ("either6", "either6 is not supported"),
            (":::::eth0:dhcp6", "dhcp6 is not supported"),
            ("link6", "link6 is not supported"),
            ("eth0:auto6:1500", "the MTU and MAC fields after eth0:auto6 are not supported"),
            ("fec0::15::fec0::2:64::eth0:none", "an IPv6 address must be written in brackets"),
            ("fec0::15:::::eth0:none", "an IPv6 address must be written in brackets"),
            ("[fec0::15]::[fec0::2]:255.255.255.0::eth0:none", "is not an IPv6 prefix length from 1 to 128"),
            ("[fec0::15]::[fec0::2]:129::eth0:none", "is not an IPv6 prefix length"),
            ("[fec0::15]::10.0.2.2:64::eth0:none", "the gateway 10.0.2.2 is IPv4 but the client is IPv6"),
            ("10.0.2.15::[fec0::2]:::eth0:none", "the gateway [fec0::2] is IPv6 but the client is IPv4"),
            ("[fec0::15/64]:::64::eth0:none", "the prefix length is given twice"),
            ("[fec0::15/x]:::::eth0:none", "is not [IPV6/PREFIXLENGTH]"),
            ("[fec0::zz]:::::eth0:none", "the client field \"[fec0::zz]\" is not an IPv4 address like 10.0.2.15 nor an IPv6 address in brackets"),
            ("[fec0::15:::::eth0:none", "an IPv6 address has no closing ]"),
            ("[fec0::15]x:::::eth0:none", "text after the ]"),
            ("fec0::15]:::::eth0:none", "a ] without its ["),
            ("[fec0::15]:::::eth0:auto6", "auto6 takes its address from router advertisements"),
            ("[10.0.2.15]:::::eth0:none", "nor an IPv6 address in brackets"),
            ("::[fec0::2]:::eth0:none", "a gateway without a client address"),
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
