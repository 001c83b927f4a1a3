import XCTest
@testable import BootCore

/// rtnetlink requests (golden bytes, little-endian host as x86-64), the
/// /proc/net parsers, /run/net6-DEVICE.conf and the nameserver list.
final class NetConf6Tests: XCTestCase {
    let fec0_15 = IPv6Address(0xfec0, 0, 0, 0, 0, 0, 0, 0x15)
    let fec0_2 = IPv6Address(0xfec0, 0, 0, 0, 0, 0, 0, 2)

    /// `ip -6 addr add fec0::15/64 dev eth0` (ifindex 2), as strace shows it.
    func testNewAddressGoldenBytes() {
        let want: [UInt8] = [
            0x2c, 0, 0, 0, 0x14, 0, 0x05, 0x06, 1, 0, 0, 0, 0, 0, 0, 0,  // len 44, RTM_NEWADDR, REQUEST|ACK|EXCL|CREATE, seq 1
            10, 64, 0, 0, 2, 0, 0, 0,                                   // ifaddrmsg: AF_INET6, /64, flags 0, scope 0, index 2
            20, 0, 1, 0,                                                // IFA_ADDRESS, 16 bytes
            0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x15,
        ]
        XCTAssertEqual(RouteNetlink.addAddress(seq: 1, ifindex: 2, address: fec0_15, prefixLength: 64), want)
    }

    /// `ip -6 route add default via fec0::2 dev eth0 metric 1000`.
    func testNewRouteGoldenBytes() {
        let want: [UInt8] = [
            0x40, 0, 0, 0, 0x18, 0, 0x05, 0x06, 2, 0, 0, 0, 0, 0, 0, 0,  // len 64, RTM_NEWROUTE, seq 2
            10, 0, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0,                      // rtmsg: ::/0, main table, RTPROT_BOOT, universe, unicast
            20, 0, 5, 0,                                                // RTA_GATEWAY
            0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
            8, 0, 4, 0, 2, 0, 0, 0,                                     // RTA_OIF 2
            8, 0, 6, 0, 0xe8, 0x03, 0, 0,                               // RTA_PRIORITY 1000
        ]
        XCTAssertEqual(RouteNetlink.addDefaultRoute(seq: 2, ifindex: 2, gateway: fec0_2), want)
    }

    func testAcknowledgement() {
        func errorMessage(seq: UInt8, error: Int32) -> [UInt8] {
            let e = UInt32(bitPattern: error)
            return [36, 0, 0, 0, 2, 0, 0, 1, seq, 0, 0, 0, 0x10, 0, 0, 0,
                    UInt8(e & 0xff), UInt8(e >> 8 & 0xff), UInt8(e >> 16 & 0xff), UInt8(e >> 24)]
                + RouteNetlink.addAddress(seq: UInt32(seq), ifindex: 2, address: fec0_15, prefixLength: 64).prefix(16)
        }
        XCTAssertEqual(RouteNetlink.acknowledgement(errorMessage(seq: 1, error: 0), seq: 1), 0)
        XCTAssertEqual(RouteNetlink.acknowledgement(errorMessage(seq: 1, error: -17), seq: 1), 17, "EEXIST")
        XCTAssertNil(RouteNetlink.acknowledgement(errorMessage(seq: 1, error: 0), seq: 2), "another request's answer")
        // A NOOP first, then the ACK in the same datagram.
        let noop: [UInt8] = [16, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0]
        XCTAssertEqual(RouteNetlink.acknowledgement(noop + errorMessage(seq: 3, error: -22), seq: 3), 22)
        XCTAssertNil(RouteNetlink.acknowledgement([99, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0], seq: 3), "a length past the end")
        XCTAssertNil(RouteNetlink.acknowledgement([], seq: 1))
    }

    /// /proc/net/if_inet6 from a station during SLAAC (the kernel's %8s pads the name).
    func testIfInet6() {
        let text = """
            00000000000000000000000000000001 01 80 10 80       lo
            fe800000000000005054fffffe123456 02 40 20 80     eth0
            fec000000000000050540ffffe123456 02 40 40 40     eth0
            fec00000000000000000000000000015 02 40 40 00     eth0
            20010db8000000000000000000000015 02 40 00 88     eth0
            bogus line
            """
        let a = parseIfInet6(text)
        XCTAssertEqual(a.count, 5)
        XCTAssertEqual(a[0], InterfaceAddress6(address: IPv6Address("::1")!, prefixLength: 128, scope: 0x10, flags: 0x80, device: "lo"))
        XCTAssertFalse(a[1].isRoutable, "link-local")
        XCTAssertTrue(a[2].isRoutable)
        XCTAssertTrue(a[2].isTentative)
        XCTAssertFalse(a[2].isUsable, "still in DAD")
        XCTAssertTrue(a[3].isUsable, "site scope (fec0::/10) past DAD")
        XCTAssertEqual(a[3].address, fec0_15)
        XCTAssertEqual(a[3].prefixLength, 64)
        XCTAssertTrue(a[4].dadFailed)
        XCTAssertFalse(a[4].isUsable)
        XCTAssertFalse(a[0].isUsable, "host scope")
    }

    /// /proc/net/ipv6_route with an RA's default route (RTF_GATEWAY|RTF_ADDRCONF|RTF_DEFAULT|RTF_UP|RTF_EXPIRES).
    func testDefaultGateway() {
        let text = """
            fec00000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00040001     eth0
            00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000002 00000400 00000001 00000000 00450003     eth0
            00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
            """
        XCTAssertEqual(defaultGateway6(text, device: "eth0"), IPv6Address("fe80::2"))
        XCTAssertNil(defaultGateway6(text, device: "eth1"))
        XCTAssertNil(defaultGateway6(text, device: "lo"), "the unreachable route has no gateway")
    }

    func testNet6Conf() {
        let s = IPv6Settings(device: "eth0", proto: "none", address: fec0_15, prefixLength: 64, gateway: fec0_2,
                             dns: [IPv6Address("fec0::3")!], hostname: "st1")
        XCTAssertEqual(s.netConfText, """
            DEVICE6='eth0'
            IPV6PROTO='none'
            IPV6ADDR='fec0::15'
            IPV6NETMASK='64'
            IPV6GATEWAY='fec0::2'
            IPV6DNS0='fec0::3'
            IPV6DNS1=''
            IPV6DOMAINSEARCH=''
            HOSTNAME='st1'

            """)
        XCTAssertEqual(s.summary, "eth0 fec0::15/64 gw fec0::2 dns fec0::3")
        let slaac = IPv6Settings(device: "eth0", proto: "auto6", address: fec0_15, prefixLength: 64)
        XCTAssertEqual(slaac.summary, "eth0 fec0::15/64")
        XCTAssertTrue(slaac.netConfText.contains("IPV6GATEWAY=''\n"))
    }

    func testNameservers() {
        let a = IPAddress.v4(IPv4Address(10, 0, 2, 2)), b = IPAddress.v6(IPv6Address("fec0::3")!), c = IPAddress.v4(IPv4Address(10, 0, 2, 3))
        XCTAssertEqual(mergeNameservers([[a, b], [c, a], [b]]), [a, b, c])
        XCTAssertEqual(mergeNameservers([[], []]), [])
        XCTAssertEqual(resolvConfText(nameservers: [a, b], domain: "lab"), "search lab\nnameserver 10.0.2.2\nnameserver fec0::3\n")
        XCTAssertEqual(resolvConfText(nameservers: [], domain: ""), "")
        let dhcp = StationNetwork(device: "eth0", ipv4: NetworkSettings(device: "eth0", proto: "dhcp", address: IPv4Address(10, 0, 2, 15),
                                                                        netmask: IPv4Address(255, 255, 255, 0), domain: "lab",
                                                                        rootServer: IPv4Address(10, 0, 2, 2), rootPath: "x/y"))
        XCTAssertEqual(dhcp.rootServer, a)
        XCTAssertEqual(dhcp.rootPath, "x/y")
        XCTAssertEqual(dhcp.domain, "lab")
        XCTAssertNil(StationNetwork(device: "eth0").rootServer)
    }
}
