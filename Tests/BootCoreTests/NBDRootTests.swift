import XCTest
@testable import BootCore

final class NBDRootTests: XCTestCase {
    /// Every accepted form: nbdroot, root, nbddev -> host, port, name, fromDHCP, device to mount.
    func testAcceptedForms() throws {
        struct Row {
            var nbdroot: String?, root: String? = nil, nbddev: String? = nil
            var host: String, port: UInt16 = 10809, name: String, dhcpHost: Bool = false, device: String = "/dev/nbd0"
        }
        let rows: [Row] = [
            Row(nbdroot: "10.0.2.2/root", host: "10.0.2.2", name: "root"),
            Row(nbdroot: "10.0.2.2:10810/myvm", host: "10.0.2.2", port: 10810, name: "myvm"),
            Row(nbdroot: "10.0.2.2:/opt/ltsp/i386", host: "10.0.2.2", name: "/opt/ltsp/i386"),
            Row(nbdroot: "server.lan/a/b", host: "server.lan", name: "a/b"),
            Row(nbdroot: "[2001:db8::1]:10810/img", host: "2001:db8::1", port: 10810, name: "img"),
            Row(nbdroot: "[fe80::1]:/img", host: "fe80::1", name: "/img"),
            Row(nbdroot: "[fe80::1]/img", host: "fe80::1", name: "img"),
            Row(nbdroot: "192.168.1.1,export", host: "192.168.1.1", name: "export"),
            Row(nbdroot: "192.168.1.1,export,nbd3", host: "192.168.1.1", name: "export", device: "/dev/nbd3"),
            Row(nbdroot: "192.168.1.1,export,/dev/nbd3", host: "192.168.1.1", name: "export", device: "/dev/nbd3"),
            Row(nbdroot: "192.168.1.1,export,nbd3", root: "/dev/nbd1p2", host: "192.168.1.1", name: "export", device: "/dev/nbd1p2"),
            Row(nbdroot: "192.168.1.1,export,nbd3", nbddev: "/dev/nbd2", host: "192.168.1.1", name: "export", device: "/dev/nbd2"),
            Row(nbdroot: "10.0.2.2/root", root: "/dev/nbd0p1", host: "10.0.2.2", name: "root", device: "/dev/nbd0p1"),
            Row(nbdroot: "10.0.2.2/root", root: "/dev/sda1", host: "10.0.2.2", name: "root"),
            Row(nbdroot: "10.0.2.2/root", nbddev: "nbd5", host: "10.0.2.2", name: "root", device: "/dev/nbd5"),
            Row(nbdroot: "/root", host: "", name: "root", dhcpHost: true),
            Row(nbdroot: ":10810/root", host: "", port: 10810, name: "root", dhcpHost: true),
            Row(nbdroot: "dhcp,root", host: "", name: "root", dhcpHost: true),
            Row(nbdroot: ",root", host: "", name: "root", dhcpHost: true),
        ]
        for r in rows {
            let what = "nbdroot=\(r.nbdroot ?? "nil") root=\(r.root ?? "nil") nbddev=\(r.nbddev ?? "nil")"
            let got = try NBDRoot.parse(nbdroot: r.nbdroot, root: r.root, nbddev: r.nbddev)
            XCTAssertEqual(got.server, NBDServerSpec(host: r.host, port: r.port, exportName: r.name, hostFromDHCP: r.dhcpHost), what)
            XCTAssertEqual(got.device.path, r.device, what)
        }
    }

    func testWholeValueFromDHCP() throws {
        for v in ["dhcp", ""] {
            let got = try NBDRoot.parse(nbdroot: v, root: nil, nbddev: nil)
            XCTAssertNil(got.server, "nbdroot=\(v) takes the DHCP root-path")
            XCTAssertEqual(got.device, NBDDevice(index: 0))
        }
    }

    /// Every error names the parameter, the value and what is wrong.
    func testErrors() {
        let rows: [(String?, String?, String?, String, String)] = [
            (nil, nil, nil, "nbdroot", "does not say which NBD server"),
            ("10.0.2.2", nil, nil, "nbdroot", "no export name"),
            ("10.0.2.2:", nil, nil, "nbdroot", "the port \"\" is not a number"),
            ("10.0.2.2:x/root", nil, nil, "nbdroot", "the port \"x\" is not a number from 1 to 65535"),
            ("10.0.2.2:0/root", nil, nil, "nbdroot", "the port \"0\""),
            ("10.0.2.2:70000/root", nil, nil, "nbdroot", "the port \"70000\""),
            ("10.0.2.2:10809", nil, nil, "nbdroot", "no /NAME after the port"),
            ("10.0.2.2/", nil, nil, "nbdroot", "export name after / is empty"),
            ("[fe80::1/img", nil, nil, "nbdroot", "no closing ]"),
            ("[]:/img", nil, nil, "nbdroot", "between [ ] is empty"),
            ("a,b,c,d", nil, nil, "nbdroot", "has 4 fields"),
            ("a,", nil, nil, "nbdroot", "export name (second field) is empty"),
            ("a,b,sda", nil, nil, "nbdroot", "third field \"sda\""),
            ("a,b,nbd0p1", nil, nil, "nbdroot", "third field \"nbd0p1\""),
            ("a/b", "/dev/nbdx", nil, "root", "not an NBD device"),
            ("a/b", "/dev/nbd0p0", nil, "root", "not an NBD device"),
            ("a/b", nil, "sda", "nbddev", "not an NBD device"),
        ]
        for (nbdroot, root, nbddev, parameter, problem) in rows {
            do {
                _ = try NBDRoot.parse(nbdroot: nbdroot, root: root, nbddev: nbddev)
                XCTFail("accepted nbdroot=\(nbdroot ?? "nil") root=\(root ?? "nil") nbddev=\(nbddev ?? "nil")")
            } catch {
                XCTAssertEqual(error.parameter, parameter)
                XCTAssertTrue(error.problem.contains(problem), "\(error.description) should say \(problem)")
                XCTAssertTrue(error.description.contains("example: "), error.description)
                if let v = nbdroot, parameter == "nbdroot" {
                    XCTAssertTrue(error.description.hasPrefix("nbdroot=\(v): "), error.description)
                }
            }
        }
    }

    func testMissingMessage() {
        XCTAssertThrowsError(try NBDRoot.parse(nbdroot: nil, root: nil, nbddev: nil)) { e in
            XCTAssertEqual((e as! BootConfigError).description,
                           "nbdroot= is missing: the kernel command line does not say which NBD server holds the root filesystem (nor does root=nbd:..., root=nbd://... or root=dhcp) (example: nbdroot=10.0.2.2:10809/root)")
        }
    }

    func testDevicesAndServerText() {
        XCTAssertEqual(NBDDevice("/dev/nbd12p3"), NBDDevice(index: 12, partition: 3))
        XCTAssertEqual(NBDDevice("/dev/nbd12p3")?.whole.path, "/dev/nbd12")
        XCTAssertEqual(NBDDevice("nbd0")?.blockName, "nbd0")
        XCTAssertNil(NBDDevice("/dev/nbd"))
        XCTAssertNil(NBDDevice("/dev/sda"))
        XCTAssertEqual(NBDServerSpec(host: "fe80::1", exportName: "x").text, "[fe80::1]:10809/x")
        let dhcp = NBDServerSpec(host: "", port: 7, exportName: "x", hostFromDHCP: true).with(server: "10.0.2.2")
        XCTAssertEqual(dhcp, NBDServerSpec(host: "10.0.2.2", port: 7, exportName: "x"))
        XCTAssertEqual(NBDServerSpec(host: "a", exportName: "x").with(server: "b").host, "a")
    }
}

final class ServerResolutionTests: XCTestCase {
    let boot = IPv4Address(10, 0, 2, 2)

    func testResolve() throws {
        func resolve(_ nbdroot: String, _ server: IPv4Address?, _ rootPath: String = "") throws -> NBDServerSpec {
            try NBDRoot.parse(nbdroot: nbdroot, root: nil, nbddev: nil).resolveServer(rootServer: server.map { .v4($0) }, rootPath: rootPath).server
        }
        XCTAssertEqual(try resolve("192.168.1.1/root", boot), NBDServerSpec(host: "192.168.1.1", exportName: "root"),
                       "an explicit host is kept")
        XCTAssertEqual(try resolve(":10810/root", boot), NBDServerSpec(host: "10.0.2.2", port: 10810, exportName: "root"))
        XCTAssertEqual(try resolve("dhcp,root", boot), NBDServerSpec(host: "10.0.2.2", exportName: "root"))
        XCTAssertEqual(try resolve("dhcp", boot, "10.0.2.9:10811/img"), NBDServerSpec(host: "10.0.2.9", port: 10811, exportName: "img"))
        XCTAssertEqual(try resolve("", boot, "/img"), NBDServerSpec(host: "10.0.2.2", exportName: "img"), "root-path may leave the host too")
        XCTAssertThrowsError(try resolve("/root", nil)) { e in
            XCTAssertTrue((e as! ServerResolutionError).what.contains("no boot server is known"))
        }
        XCTAssertThrowsError(try resolve("/root", .any))
        XCTAssertThrowsError(try resolve("dhcp", boot, "")) { e in
            XCTAssertTrue((e as! ServerResolutionError).what.contains("option 17"))
        }
        XCTAssertThrowsError(try resolve("dhcp", boot, "10.0.2.2:x/y")) { e in
            XCTAssertTrue((e as! ServerResolutionError).what.contains("root-path=10.0.2.2:x/y"))
        }
    }
}
