import XCTest
@testable import BootCore

final class NetConfTests: XCTestCase {
    func testDHCPNetConf() {
        let s = NetworkSettings(device: "eth0", proto: "dhcp", address: IPv4Address(10, 0, 2, 15),
                                netmask: IPv4Address(255, 255, 255, 0), gateway: IPv4Address(10, 0, 2, 2),
                                dns: [IPv4Address(10, 0, 2, 3)], hostname: "st'1", domain: "example.org",
                                rootServer: IPv4Address(10, 0, 2, 2), rootPath: "10.0.2.2/root")
        XCTAssertEqual(s.netConfText, """
            DEVICE='eth0'
            PROTO='dhcp'
            IPV4ADDR='10.0.2.15'
            IPV4BROADCAST='10.0.2.255'
            IPV4NETMASK='255.255.255.0'
            IPV4GATEWAY='10.0.2.2'
            IPV4DNS0='10.0.2.3'
            IPV4DNS1='0.0.0.0'
            HOSTNAME='st'\\''1'
            DNSDOMAIN='example.org'
            NISDOMAIN=''
            ROOTSERVER='10.0.2.2'
            ROOTPATH='10.0.2.2/root'
            filename=''

            """)
        XCTAssertEqual(s.resolvConfText, "search example.org\nnameserver 10.0.2.3\n")
        XCTAssertEqual(s.summary, "eth0 10.0.2.15/255.255.255.0 gw 10.0.2.2 dns 10.0.2.3 server 10.0.2.2 root-path 10.0.2.2/root")
    }

    func testStaticFromIPConfig() throws {
        let c = try IPConfig.parse("10.0.2.15:10.0.2.2::255.255.255.0:h:eth0:off")
        let s = NetworkSettings(device: "eth0", config: c)
        XCTAssertEqual(s.proto, "none")
        XCTAssertNil(s.gateway)
        XCTAssertEqual(s.rootServer, IPv4Address(10, 0, 2, 2))
        XCTAssertTrue(s.netConfText.contains("IPV4GATEWAY='0.0.0.0'\n"))
        XCTAssertEqual(s.resolvConfText, "")
        var utf = s
        utf.hostname = "stätion"
        XCTAssertTrue(utf.netConfText.contains("HOSTNAME='stätion'\n"), "UTF-8 kept whole")
    }
}
