import XCTest
@testable import BootCore

final class BootConfigTests: XCTestCase {
    func testDefaults() throws {
        let c = try BootConfig.parse(KernelCommandLine("console=ttyS0 nbdroot=10.0.2.2/root\n"))
        XCTAssertEqual(c.root.server, NBDServerSpec(host: "10.0.2.2", exportName: "root"))
        XCTAssertEqual(c.root.device.path, "/dev/nbd0")
        XCTAssertEqual(c.ip.method, .dhcp)
        XCTAssertNil(c.rootFSType, "no rootfstype=: detected from the superblock")
        XCTAssertNil(c.rootFlags)
        XCTAssertNil(c.readOnlyFlag)
        XCTAssertFalse(c.mountSettings(NBDServerValue(server: c.root.server!)).readOnly, "no ro/rw: read-write, as Debian's NBD root")
        XCTAssertEqual(c.mode, .direct)
        XCTAssertNil(c.swap)
        XCTAssertNil(c.bootMAC)
        XCTAssertEqual(c.initPath, "/sbin/init")
        XCTAssertEqual(c.failDelaySeconds, 10)
        XCTAssertFalse(c.debug)
        XCTAssertFalse(c.breakBeforeSwitch)
    }

    func testEverything() throws {
        let c = try BootConfig.parse(KernelCommandLine(
            "ro nbdroot=10.0.2.2:10810/img root=/dev/nbd1p2 ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off rootfstype=xfs rootflags=\"noatime,nodiratime\" init=/lib/systemd/systemd nbdboot.debug rd.break nbdboot.fail-delay=0"))
        XCTAssertEqual(c.root.device.path, "/dev/nbd1p2")
        XCTAssertEqual(c.root.server?.port, 10810)
        XCTAssertEqual(c.ip.method, .manual)
        XCTAssertEqual(c.rootFSType, "xfs")
        XCTAssertEqual(c.rootFlags, "noatime,nodiratime")
        XCTAssertEqual(c.readOnlyFlag, true)
        XCTAssertEqual(c.initPath, "/lib/systemd/systemd")
        XCTAssertTrue(c.debug)
        XCTAssertTrue(c.breakBeforeSwitch)
        XCTAssertEqual(c.failDelaySeconds, 0)
        XCTAssertEqual(try BootConfig.parse(KernelCommandLine("nbdroot=a/b ro rw")).readOnlyFlag, false, "the last of ro/rw wins")
    }

    func testErrors() {
        let rows: [(String, String)] = [
            ("console=ttyS0", "nbdroot"),
            ("nbdroot=a/b init=sbin/init", "init"),
            ("nbdroot=a/b rootfstype=", "rootfstype"),
            ("nbdroot=a/b rootfstype=ext4,xfs", "rootfstype"),
            ("nbdroot=a/b ip=bogus", "ip"),
            ("nbdroot=a/b nbdboot.fail-delay=soon", "nbdboot.fail-delay"),
        ]
        for (line, parameter) in rows {
            XCTAssertThrowsError(try BootConfig.parse(KernelCommandLine(line)), line) { e in
                XCTAssertEqual((e as! BootConfigError).parameter, parameter, line)
            }
        }
        XCTAssertEqual(BootConfig.failDelay(KernelCommandLine("nbdboot.fail-delay=3 nbdroot=")), 3)
        XCTAssertEqual(BootConfig.failDelay(KernelCommandLine("nbdboot.fail-delay=x")), 10)
    }
}

final class MessageTests: XCTestCase {
    func testInterpolation() {
        let port: UInt16 = 10809, size: UInt64 = 1 << 40, n = -3, b: UInt8 = 7, i32: Int32 = -1
        let m: Message = "a \(port) b \(size) c \(n) d \(b) e \(i32) f \("x")"
        XCTAssertEqual(m.text, "a 10809 b 1099511627776 c -3 d 7 e -1 f x")
        XCTAssertEqual(Message("plain").text, "plain")
        let e = BootConfigError(parameter: "p", value: "v", problem: "the port \"\(port)\"", example: "p=\(1)")
        XCTAssertEqual(e.description, "p=v: the port \"10809\" (example: p=1)")
    }
}
