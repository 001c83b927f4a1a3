// The rules that turn a negotiated export and the command line into the
// kernel's settings.
import XCTest
@testable import NBDClientCore
import NBDWire

final class DeviceSetupTests: XCTestCase {
    let options = ConnectOptions(server: .tcp(host: "10.0.2.2", port: 10809), device: NBDDevice(index: 0))
    let export = NegotiatedExport(size: 8 << 20, flags: [.hasFlags, .sendFlush], via: .go)

    func options(_ change: (inout ConnectOptions) -> Void) -> ConnectOptions {
        var o = options
        o.exportName = "root"
        change(&o)
        return o
    }

    func testDefaults() throws {
        let (s, notes) = try DeviceSetup.derive(options { _ in }, exports: [export])
        XCTAssertEqual(s, DeviceSetup(device: NBDDevice(index: 0), size: 8 << 20, blockSize: 512, flags: 0x05,
                                      timeout: nil, deadTimeout: nil, identifier: "10.0.2.2:10809/root", readOnly: false))
        XCTAssertEqual(notes, [])
        let r = s.connectRequest(fds: [3])
        XCTAssertEqual(r.serverFlags, 0x05)
        XCTAssertEqual(r.blockSize, 512)
        XCTAssertEqual(r.backendIdentifier, "10.0.2.2:10809/root")
        XCTAssertNil(r.deadConnTimeout)
    }

    func testReadOnlyTimeoutsAndPersist() throws {
        let (s, _) = try DeviceSetup.derive(options { $0.readOnly = true; $0.timeout = 30; $0.persist = true }, exports: [export])
        XCTAssertEqual(s.flags, 0x07)
        XCTAssertTrue(s.readOnly)
        XCTAssertEqual(s.timeout, 30)
        XCTAssertEqual(s.deadTimeout, 600, "-persist defaults DEAD_CONN_TIMEOUT to 600 s")
        let (t, _) = try DeviceSetup.derive(options { $0.persist = true; $0.deadTimeout = 5 }, exports: [export])
        XCTAssertEqual(t.deadTimeout, 5, "-T wins over the -persist default")
        XCTAssertEqual(t.timeout, 30, "-persist defaults the request timeout to 30 s")
        let (u, _) = try DeviceSetup.derive(options { $0.persist = true; $0.timeout = 0 }, exports: [export])
        XCTAssertEqual(u.timeout, 0, "-t 0 wins over the -persist default")
    }

    func testServerMinimumBlockSize() throws {
        var e = export
        e.minimumBlock = 4096
        let (s, notes) = try DeviceSetup.derive(options { _ in }, exports: [e])
        XCTAssertEqual(s.blockSize, 4096)
        XCTAssertEqual(notes, [])
        let (t, tNotes) = try DeviceSetup.derive(options { $0.blockSize = 1024 }, exports: [e])
        XCTAssertEqual(t.blockSize, 4096)
        XCTAssertEqual(tNotes.count, 1)
        e.minimumBlock = 1
        XCTAssertEqual(try DeviceSetup.derive(options { $0.blockSize = 2048 }, exports: [e]).0.blockSize, 2048)
        e.minimumBlock = 65536
        XCTAssertThrowsError(try DeviceSetup.derive(options { _ in }, exports: [e]))
    }

    /// NBD_INFO_BLOCK_SIZE's maximum payload caps the kernel's requests.
    func testServerMaximumPayload() throws {
        var e = export
        XCTAssertNil(try DeviceSetup.derive(options { _ in }, exports: [e]).0.maxRequestKiB, "no block size info: no cap")
        e.maximumPayload = 32 << 20
        XCTAssertNil(try DeviceSetup.derive(options { _ in }, exports: [e]).0.maxRequestKiB, "the kernel's own limit")
        e.maximumPayload = 65536
        XCTAssertEqual(try DeviceSetup.derive(options { _ in }, exports: [e]).0.maxRequestKiB, 64)
        e.maximumPayload = 100_000  // 97.6 KiB: whole KiB, whole 4 KiB blocks
        XCTAssertEqual(try DeviceSetup.derive(options { $0.blockSize = 4096 }, exports: [e]).0.maxRequestKiB, 96)
        XCTAssertEqual(try DeviceSetup.derive(options { _ in }, exports: [e]).0.maxRequestKiB, 97)
        e.maximumPayload = 2048
        let (s, notes) = try DeviceSetup.derive(options { _ in }, exports: [e])
        XCTAssertNil(s.maxRequestKiB)
        XCTAssertEqual(notes.count, 1)
    }

    func testSizeOverride() throws {
        XCTAssertEqual(try DeviceSetup.derive(options { $0.sizeOverride = 1 << 20 }, exports: [export]).0.size, 1 << 20)
        XCTAssertThrowsError(try DeviceSetup.derive(options { $0.sizeOverride = 1000 }, exports: [export]))
    }

    func testMultiConnection() throws {
        XCTAssertThrowsError(try DeviceSetup.derive(options { _ in }, exports: [export, export])) { e in
            XCTAssertTrue((e as? SetupError)?.message.contains("CAN_MULTI_CONN") == true)
        }
        var multi = export
        multi.flags.insert(.canMultiConn)
        XCTAssertNoThrow(try DeviceSetup.derive(options { _ in }, exports: [multi, multi]))
        var other = multi
        other.size += 512
        XCTAssertThrowsError(try DeviceSetup.derive(options { _ in }, exports: [multi, other]))
    }

    func testSameExport() {
        var e = export
        XCTAssertTrue(DeviceSetup.sameExport(export, e))
        e.via = .exportName
        e.minimumBlock = 512
        XCTAssertTrue(DeviceSetup.sameExport(export, e), "the route and block info do not matter")
        e.flags.insert(.readOnly)
        XCTAssertFalse(DeviceSetup.sameExport(export, e))
        e = export
        e.size = 1
        XCTAssertFalse(DeviceSetup.sameExport(export, e))
    }
}
