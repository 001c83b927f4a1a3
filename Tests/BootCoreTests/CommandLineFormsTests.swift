import XCTest
@testable import BootCore

/// One table per family of forms: dracut's nbd:, NBD URIs, root=/netroot=
/// precedence and DHCP, BOOTIF=, nbdswap=, nbdboot.* keys and modes.
final class CommandLineFormsTests: XCTestCase {
    struct Row {
        var line: String
        var host: String?          // nil: whole value from DHCP root-path
        var port: UInt16 = 10809
        var name: String = ""
        var dhcpHost = false
        var device = "/dev/nbd0"
        var fsType: String? = nil
        var flags: String? = nil
        var bs: Int? = nil
        var timeout: Int? = nil
        var selector: RootSelector = .device
    }

    func testAcceptedRootForms() throws {
        let rows: [Row] = [
            // dracut
            Row(line: "root=nbd:10.0.2.2:10809", host: "10.0.2.2"),
            Row(line: "root=nbd:10.0.2.2:10810:ext4", host: "10.0.2.2", port: 10810, fsType: "ext4"),
            Row(line: "root=nbd:10.0.2.2:root", host: "10.0.2.2", name: "root"),
            Row(line: "root=nbd:10.0.2.2:root:auto", host: "10.0.2.2", name: "root"),
            Row(line: "root=nbd:10.0.2.2:10810/root:ext4:ro,noatime", host: "10.0.2.2", port: 10810, name: "root", fsType: "ext4", flags: "ro,noatime"),
            Row(line: "root=nbd:server.lan:img:xfs::bs=4096,timeout=30", host: "server.lan", name: "img", fsType: "xfs", bs: 4096, timeout: 30),
            Row(line: "root=nbd:[fe80::1]:10809", host: "fe80::1"),
            Row(line: "root=nbd:[2001:db8::1]:img:::timeout=5", host: "2001:db8::1", name: "img", timeout: 5),
            Row(line: "netroot=nbd:10.0.2.2:root", host: "10.0.2.2", name: "root"),
            Row(line: "root=/dev/root netroot=nbd:10.0.2.2:root", host: "10.0.2.2", name: "root"),
            Row(line: "netroot=nbd:10.0.2.9:other root=nbd:10.0.2.2:root", host: "10.0.2.2", name: "root"),
            Row(line: "nbdroot=10.0.2.9/other root=nbd:10.0.2.2:root", host: "10.0.2.2", name: "root"),
            // URIs
            Row(line: "nbdroot=nbd://10.0.2.2:10810/root", host: "10.0.2.2", port: 10810, name: "root"),
            Row(line: "root=nbd://10.0.2.2/root", host: "10.0.2.2", name: "root"),
            Row(line: "root=nbd://10.0.2.2", host: "10.0.2.2"),
            Row(line: "root=nbd://10.0.2.2/", host: "10.0.2.2"),
            Row(line: "root=nbd://[2001:db8::1]:10811/a%20b/c", host: "2001:db8::1", port: 10811, name: "a b/c"),
            Row(line: "netroot=nbd://server.lan/img", host: "server.lan", name: "img"),
            // IPv6 literals and host names (issue 6: IPv6 and DNS)
            Row(line: "nbdroot=[fec0::2]:10810/root", host: "fec0::2", port: 10810, name: "root"),
            Row(line: "nbdroot=nbd://[fec0::2]:10810/root", host: "fec0::2", port: 10810, name: "root"),
            Row(line: "root=nbd://[fec0::2]/root", host: "fec0::2", name: "root"),
            Row(line: "root=nbd:[fec0::2]:10810/root", host: "fec0::2", port: 10810, name: "root"),
            Row(line: "nbdroot=nbd-server.lab:10810/root", host: "nbd-server.lab", port: 10810, name: "root"),
            Row(line: "nbdroot=nbd://nbd-server.lab:10810/root", host: "nbd-server.lab", port: 10810, name: "root"),
            // DHCP root-path
            Row(line: "root=dhcp", host: nil),
            Row(line: "netroot=dhcp", host: nil),
            Row(line: "nbdroot=dhcp", host: nil),
            Row(line: "nbdroot=", host: nil),
            Row(line: "nbdroot=dhcp root=/dev/nbd0p2", host: nil, device: "/dev/nbd0p2"),
            // LABEL= and UUID=
            Row(line: "nbdroot=10.0.2.2/root root=LABEL=nbdroot", host: "10.0.2.2", name: "root", selector: .label("nbdroot")),
            Row(line: "nbdroot=10.0.2.2,root,nbd2 root=UUID=0F0E0D0C-0b0a-4908-8706-050403020100", host: "10.0.2.2", name: "root",
                device: "/dev/nbd2", selector: .uuid("0F0E0D0C-0b0a-4908-8706-050403020100")),
            // Debian's, still; in nbdroot= "nbd:" is a host name, as Debian reads it
            Row(line: "nbdroot=:10810/root", host: "", port: 10810, name: "root", dhcpHost: true),
            Row(line: "nbdroot=nbd:10810/root", host: "nbd", port: 10810, name: "root"),
        ]
        for r in rows {
            let c = try BootConfig.parse(KernelCommandLine(r.line))
            if let host = r.host {
                XCTAssertEqual(c.root.server, NBDServerSpec(host: host, port: r.port, exportName: r.name, hostFromDHCP: r.dhcpHost,
                                                            blockSize: r.bs, timeoutSeconds: r.timeout), r.line)
            } else {
                XCTAssertNil(c.root.server, r.line)
            }
            XCTAssertEqual(c.root.device.path, r.device, r.line)
            XCTAssertEqual(c.root.fsType, r.fsType, r.line)
            XCTAssertEqual(c.root.flags, r.flags, r.line)
            XCTAssertEqual(c.root.selector, r.selector, r.line)
        }
    }

    /// Every malformed value names its parameter and says what is wrong.
    func testRejectedForms() {
        let rows: [(String, String, String)] = [
            ("root=nbd:", "root", "server (after nbd:) is empty"),
            ("root=nbd:10.0.2.2", "root", "no :PORT or :NAME"),
            ("root=nbd:10.0.2.2:", "root", "second field) is empty"),
            ("root=nbd:10.0.2.2:0", "root", "the port \"0\""),
            ("root=nbd:10.0.2.2:10809/", "root", "export name after 10809/ is empty"),
            ("root=nbd:10.0.2.2:a:b:c:d:e", "root", "6 fields"),
            ("root=nbd:10.0.2.2:a:ext4,xfs", "root", "more than one type"),
            ("root=nbd:10.0.2.2:a:::bs=100", "root", "bs=512, 1024, 2048 or 4096"),
            ("root=nbd:10.0.2.2:a:::timeout=0", "root", "timeout=SECONDS"),
            ("root=nbd:10.0.2.2:a:::-C,4", "root", "client option \"-C\" is not supported"),
            ("root=nbd:[fe80::1:a", "root", "no closing ]"),
            ("netroot=nbd:10.0.2.2", "netroot", "no :PORT or :NAME"),
            ("netroot=nfs:10.0.2.2:/x", "netroot", "is not an NBD root"),
            ("root=nbd://", "root", "host is empty"),
            ("root=nbd://10.0.2.2:x/root", "root", "the port \"x\""),
            ("root=nbd://10.0.2.2/root?tls=on", "root", "query parameters"),
            ("root=nbd://user@10.0.2.2/root", "root", "user name"),
            ("root=nbd://10.0.2.2/a%2", "root", "bad %-escape"),
            ("root=nbd://10.0.2.2/a%zz", "root", "bad %-escape"),
            ("nbdroot=nbds://10.0.2.2/root", "nbdroot", "TLS"),
            ("root=nbd+unix:///root?socket=/s", "root", "Unix-socket"),
            ("nbdroot=a/b root=LABEL=", "root", "label is empty"),
            ("nbdroot=a/b root=UUID=", "root", "UUID is empty"),
            ("nbdroot=a/b BOOTIF=01-aa-bb", "BOOTIF", "six hex bytes"),
            ("nbdroot=a/b BOOTIF=01-aa-bb-cc-dd-ee-gg", "BOOTIF", "six hex bytes"),
            ("nbdroot=a/b BOOTIF=02-aa-bb-cc-dd-ee-ff", "BOOTIF", "six hex bytes"),
            ("nbdroot=a/b nbdswap=", "nbdswap", "names no server"),
            ("nbdroot=a/b nbdswap=dhcp", "nbdswap", "names no server"),
            ("nbdroot=a/b nbdswap=a,swap,nbd0", "nbdswap", "the root's device"),
            ("nbdroot=a/b nbdswap=nbd:a:swap:ext4", "nbdswap", "no filesystem type"),
            ("nbdroot=a/b nbdswap=a:x/swap", "nbdswap", "the port \"x\""),
            ("nbdroot=a/b nbdboot.overlay", "nbdboot.overlay", "only overlay is tmpfs"),
            ("nbdroot=a/b nbdboot.overlay=nbd", "nbdboot.overlay", "only overlay is tmpfs"),
            ("nbdroot=a/b nbdboot.toram=maybe", "nbdboot.toram", "is a flag"),
            ("nbdroot=a/b nbdboot.overlay=tmpfs nbdboot.toram", "nbdboot.toram", "cannot be combined"),
            ("nbdroot=a/b nbdboot.toRAM", "nbdboot.toRAM", "is not an nbdboot parameter"),
            ("nbdroot=a/b nbdboot.overlay=tmpfs nbdboot.debg", "nbdboot.debg", "is not an nbdboot parameter"),
            ("nbdroot=a/b nameserver=dns.lab", "nameserver", "is not an IPv4 or IPv6 address"),
            ("nbdroot=a/b nameserver=10.0.2.3 nameserver=", "nameserver", "is not an IPv4 or IPv6 address"),
            ("nbdroot=a/b nameserver=10.0.2.3:53", "nameserver", "is not an IPv4 or IPv6 address"),
            ("nbdroot=a/b ip=dhcp6", "ip", "use auto6"),
        ]
        for (line, parameter, problem) in rows {
            XCTAssertThrowsError(try BootConfig.parse(KernelCommandLine(line)), line) { e in
                let e = e as! BootConfigError
                XCTAssertEqual(e.parameter, parameter, line)
                XCTAssertTrue(e.problem.contains(problem), "\(line): \(e.description) should say \(problem)")
                XCTAssertTrue(e.description.contains("example: "), e.description)
            }
        }
    }

    func testBootIFAndSwapAndModes() throws {
        let c = try BootConfig.parse(KernelCommandLine(
            "nbdroot=10.0.2.2/root BOOTIF=01-52-54-00-AB-cd-0f nbdswap=nbd://10.0.2.2:10810/swap nbdboot.overlay=tmpfs rd.shell"))
        XCTAssertEqual(c.bootMAC, [0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f])
        XCTAssertEqual(macText(c.bootMAC!), "52:54:00:ab:cd:0f")
        XCTAssertEqual(c.swap, NBDSwap(server: NBDServerSpec(host: "10.0.2.2", port: 10810, exportName: "swap"), device: NBDDevice(index: 1)))
        XCTAssertEqual(c.mode, .overlayTmpfs)
        XCTAssertTrue(c.shellOnFailure)
        XCTAssertEqual(try parseBootIF("52:54:00:12:34:56"), [0x52, 0x54, 0, 0x12, 0x34, 0x56])
        let swaps: [(String, NBDSwap)] = [
            ("10.0.2.2/swap", NBDSwap(server: NBDServerSpec(host: "10.0.2.2", exportName: "swap"))),
            ("10.0.2.2,swap,nbd3", NBDSwap(server: NBDServerSpec(host: "10.0.2.2", exportName: "swap"), device: NBDDevice(index: 3))),
            ("nbd:10.0.2.2:swap", NBDSwap(server: NBDServerSpec(host: "10.0.2.2", exportName: "swap"))),
            ("nbd:10.0.2.2:swap:::timeout=9",
             NBDSwap(server: NBDServerSpec(host: "10.0.2.2", exportName: "swap", timeoutSeconds: 9))),
            ("/swap", NBDSwap(server: NBDServerSpec(host: "", exportName: "swap", hostFromDHCP: true))),
        ]
        for (v, want) in swaps {
            XCTAssertEqual(try NBDSwap.parse(v, rootDevice: NBDDevice(index: 0)), want, v)
        }
        for (flag, mode) in [("nbdboot.toram", RootMode.toRAM), ("nbdboot.toram=1", .toRAM), ("nbdboot.toram=0", .direct)] {
            XCTAssertEqual(try BootConfig.parse(KernelCommandLine("nbdroot=a/b \(flag)")).mode, mode, flag)
        }
    }

    /// dracut's nameserver=, repeatable, either family, brackets optional;
    /// duplicates dropped; and where the server came from, for messages.
    func testNameserversAndSource() throws {
        let c = try BootConfig.parse(KernelCommandLine(
            "nbdroot=nbd-server.lab:10810/root nameserver=10.0.2.2 nameserver=[fec0::3] nameserver=2001:db8::53 nameserver=10.0.2.2"))
        XCTAssertEqual(c.nameservers, [.v4(IPv4Address(10, 0, 2, 2)), .v6(IPv6Address("fec0::3")!), .v6(IPv6Address("2001:db8::53")!)])
        XCTAssertEqual(try BootConfig.parse(KernelCommandLine("nbdroot=a/b")).nameservers, [])
        let sources: [(String, String)] = [
            ("nbdroot=a/b", "nbdroot="),
            ("root=nbd:a:b", "root="),
            ("netroot=nbd:a:b", "netroot="),
            ("nbdroot=a/b netroot=nbd://a/b", "netroot="),
            ("root=dhcp", "the DHCP root-path"),
            ("nbdroot=dhcp", "the DHCP root-path"),
        ]
        for (line, source) in sources {
            XCTAssertEqual(try BootConfig.parse(KernelCommandLine(line)).root.source, source, line)
        }
    }

    /// The server left to DHCP comes from ip='s server field, IPv6 too.
    func testServerFromStaticIPv6() throws {
        let c = try BootConfig.parse(KernelCommandLine("ip=[fec0::15]:[fec0::2]:[fec0::1]:64::eth0:none nbdroot=:10810/root"))
        XCTAssertEqual(c.ip.server, .v6(IPv6Address("fec0::2")!))
        let v = try c.root.resolveServer(rootServer: c.ip.server, rootPath: "")
        XCTAssertEqual(v.server, NBDServerSpec(host: "fec0::2", port: 10810, exportName: "root"))
        XCTAssertEqual(v.server.text, "[fec0::2]:10810/root")
        XCTAssertThrowsError(try c.root.resolveServer(rootServer: .v6(.any), rootPath: ""))
    }

    /// rootfstype= over dracut's FSTYPE; rootflags= over FLAGS; ro/rw over a ro/rw in FLAGS.
    func testMountSettings() throws {
        func settings(_ line: String, rootPath: String = "") throws -> RootMountSettings {
            let c = try BootConfig.parse(KernelCommandLine(line))
            let v = try c.root.resolveServer(rootServer: .v4(IPv4Address(10, 0, 2, 2)), rootPath: rootPath)
            return c.mountSettings(v)
        }
        XCTAssertEqual(try settings("nbdroot=a/b"), RootMountSettings(fsType: nil, data: "", readOnly: false))
        XCTAssertEqual(try settings("root=nbd:a:b:ext4:ro,noatime,data=journal"),
                       RootMountSettings(fsType: "ext4", data: "data=journal", readOnly: true, flags: 1024))
        XCTAssertEqual(try settings("root=nbd:a:b:ext4:ro,noatime rw rootfstype=xfs"), RootMountSettings(fsType: "xfs", data: "", readOnly: false, flags: 1024))
        XCTAssertEqual(try settings("root=nbd:a:b::noatime rootflags=discard ro"), RootMountSettings(fsType: nil, data: "discard", readOnly: true))
        XCTAssertEqual(try settings("root=nbd:a:b::ro rootflags=discard"), RootMountSettings(fsType: nil, data: "discard", readOnly: true),
                       "rootflags= replaces FLAGS' options, a ro there still counts")
        XCTAssertEqual(try settings("nbdroot=a/b rootflags=ro,nodev,nosuid,noexec,sync,dirsync,nodiratime,relatime,strictatime,lazytime,defaults,x=1"),
                       RootMountSettings(fsType: nil, data: "x=1", readOnly: true, flags: 2 | 4 | 8 | 16 | 128 | 2048 | 1 << 21 | 1 << 24 | 1 << 25))
        XCTAssertEqual(MountOptions.parse("noatime,atime,rw,ro").flags, 0, "a later option clears an earlier one")
        XCTAssertEqual(RootMountSettings(fsType: nil, data: "errors=remount-ro", readOnly: true, flags: 1024).text, "ro, noatime, errors=remount-ro")
        // A DHCP root-path in dracut's form brings its FSTYPE and FLAGS.
        XCTAssertEqual(try settings("root=dhcp", rootPath: "nbd:10.0.2.9:img:ext4:ro"), RootMountSettings(fsType: "ext4", data: "", readOnly: true))
    }

    /// DHCP option 17 may hold any accepted form.
    func testRootPathForms() throws {
        let root = try NBDRoot.parse(nbdroot: nil, root: "dhcp", nbddev: nil)
        let rows: [(String, NBDServerSpec)] = [
            ("10.0.2.9:10811/img", NBDServerSpec(host: "10.0.2.9", port: 10811, exportName: "img")),
            ("/img", NBDServerSpec(host: "10.0.2.2", exportName: "img")),
            ("nbd:10.0.2.9:img:::bs=512", NBDServerSpec(host: "10.0.2.9", exportName: "img", blockSize: 512)),
            ("nbd://10.0.2.9:10812/img", NBDServerSpec(host: "10.0.2.9", port: 10812, exportName: "img")),
            ("10.0.2.9,img", NBDServerSpec(host: "10.0.2.9", exportName: "img")),
        ]
        for (path, want) in rows {
            XCTAssertEqual(try root.resolveServer(rootServer: .v4(IPv4Address(10, 0, 2, 2)), rootPath: path).server, want, path)
        }
        XCTAssertThrowsError(try root.resolveServer(rootServer: nil, rootPath: "nbd:x")) { e in
            XCTAssertTrue((e as! ServerResolutionError).what.contains("root-path=nbd:x"), "\(e)")
        }
        XCTAssertThrowsError(try root.resolveServer(rootServer: nil, rootPath: "")) { e in
            XCTAssertTrue((e as! ServerResolutionError).what.contains("option 17"), "\(e)")
        }
    }

    /// A DHCP ACK's option 17 reaches the lease's rootPath as text.
    func testOption17FromAck() throws {
        var m = DHCPMessage.discover(xid: 1, mac: [1, 2, 3, 4, 5, 6], secs: 0)
        m.op = 2
        m.yiaddr = IPv4Address(10, 0, 2, 15)
        let path = Array("nbd:10.0.2.2:root:ext4".utf8)
        m.options = [DHCPOption(53, [5]), DHCPOption(17, path + [0])]
        let decoded = try DHCPMessage.decode(m.encode())
        XCTAssertEqual(DHCPLease(decoded).rootPath, "nbd:10.0.2.2:root:ext4")
    }
}
