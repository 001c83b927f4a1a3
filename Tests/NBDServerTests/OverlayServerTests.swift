// A cow export and a swap export served in-process on a Unix socket: stations
// named in the export name get their own overlay; a Unix-socket client with
// no station name (it has no address) is turned away; bad station names get
// ERR_UNKNOWN with the reason.
import Dispatch
import Glibc
import LinuxSys
import NBDWire
import XCTest

@testable import NBDServer

final class OverlayServerTests: XCTestCase {
    var dir = ""
    var server: Server!
    let done = DispatchSemaphore(value: 0)
    let log = LogLines()
    var socketPath: String { dir + "/nbd.sock" }
    var basePath: String { dir + "/base.img" }
    let baseBytes = Files.pattern(256 << 10, seed: 9)

    override func setUpWithError() throws {
        dir = try Files.tempDir("overlay-server-test")
        try Files.write(basePath, baseBytes)
        let config = try ServerConfig(listen: .unix(path: socketPath), exports: [
            try ExportSpec.parse("root=\(basePath),cow,overlays=\(dir)/ov"),
            try ExportSpec.parse("swap=\(dir)/swap,swap,size=1M"),
        ])
        server = try Server(config: config, log: log.logger)
        let (s, d) = (server!, done)
        try startThread("test server") {
            s.run()
            d.signal()
        }
    }

    override func tearDown() {
        server?.stop()
        XCTAssertEqual(done.wait(timeout: .now() + 15), .success, "server did not stop")
        Files.remove(dir + "/ov")
        Files.remove(dir + "/swap")
        Files.remove(dir)
    }

    func testStationsAreIsolatedAndTheBaseIsNeverWritten() throws {
        let a = try TestClient.connect(socketPath, export: "root@a")
        XCTAssertEqual(a.export.size, UInt64(baseBytes.count))
        XCTAssertTrue(a.export.flags.contains(.canMultiConn))
        XCTAssertFalse(a.export.flags.contains(.readOnly))
        let data = [UInt8](repeating: 0x5a, count: 1000)
        XCTAssertEqual(try a.roundTrip(Request(command: .write, cookie: 1, offset: 4000, length: 1000), payload: data).0, .ok)
        // A second connection of station a shares the overlay and sees the write at once.
        let a2 = try TestClient.connect(socketPath, export: "root@a")
        XCTAssertEqual(try a2.roundTrip(Request(command: .read, cookie: 2, offset: 4000, length: 1000)).1, data)
        XCTAssertEqual(try a2.roundTrip(Request(command: .flush, cookie: 3)).0, .ok)
        let b = try TestClient.connect(socketPath, export: "root@b")
        XCTAssertEqual(try b.roundTrip(Request(command: .read, cookie: 4, offset: 4000, length: 1000)).1, Array(baseBytes[4000..<5000]))
        a.close(); a2.close(); b.close()
        XCTAssertEqual(try Files.read(basePath), baseBytes)
        XCTAssertTrue(log.all.contains { $0.contains("shared with 1 other connection") }, "\(log.all)")
    }

    func testUnixClientWithoutStationAndBadStationNames() throws {
        // A Unix-socket client has no address to be named by: GO is refused with the reason.
        XCTAssertThrowsError(try TestClient.connect(socketPath, export: "root")) { error in
            XCTAssertTrue("\(error)".contains("STATION"), "\(error)")
        }
        // EXPORT_NAME cannot be refused: the server closes.
        XCTAssertThrowsError(try TestClient.connect(socketPath, export: "root", forceExportName: true))
        XCTAssertThrowsError(try TestClient.connect(socketPath, export: "root@bad/name"))
        XCTAssertThrowsError(try TestClient.connect(socketPath, export: "root@.."))
        let lines = log.all
        XCTAssertTrue(lines.contains { $0.contains("GO: export 'root' is per station") && $0.contains("ask for 'root@STATION'") }, "\(lines)")
        XCTAssertTrue(lines.contains { $0.contains("closed during handshake: EXPORT_NAME: export 'root' is per station") }, "\(lines)")
        XCTAssertTrue(lines.contains { $0.contains("'root@bad/name': a station name may hold only") }, "\(lines)")
    }

    /// An overlay another process holds (here: opened directly by the test)
    /// is refused in the handshake with the reason, and the other stations
    /// are served as usual.
    func testOverlayInUseElsewhereIsRefusedInTheHandshake() throws {
        let base = try FileBackend(path: basePath, readOnly: true)
        defer { base.close() }
        let held = try Overlay(dir: dir + "/ov", station: "held", base: base, basePath: basePath,
                               identity: Files.identity(basePath), now: 1)
        defer { held.close() }
        XCTAssertThrowsError(try TestClient.connect(socketPath, export: "root@held")) { error in
            XCTAssertTrue("\(error)".contains("in use by a running server"), "\(error)")
        }
        let other = try TestClient.connect(socketPath, export: "root@free")
        XCTAssertEqual(try other.roundTrip(Request(command: .read, cookie: 1, offset: 0, length: 4)).1, Array(baseBytes[0..<4]))
        other.close()
    }

    func testSwapFileIsPerStationAndSurvivesReconnect() throws {
        var c = try TestClient.connect(socketPath, export: "swap@st1")
        XCTAssertEqual(c.export.size, 1 << 20)
        XCTAssertEqual(try c.roundTrip(Request(command: .write, flags: .fua, cookie: 1, offset: 8192, length: 3), payload: [1, 2, 3]).0, .ok)
        c.close()
        var st = stat()
        XCTAssertEqual(stat(dir + "/swap/st1.swap", &st), 0)
        XCTAssertEqual(st.st_size, 1 << 20)
        // Reconnect at once, several times: whether the server has noticed the
        // close yet (file reopened) or not (file shared), the data is there.
        for cookie in 2..<12 {
            c = try TestClient.connect(socketPath, export: "swap@st1")
            XCTAssertEqual(try c.roundTrip(Request(command: .read, cookie: UInt64(cookie), offset: 8192, length: 3)).1, [1, 2, 3], "\(log.all)")
            c.close()
        }
        let other = try TestClient.connect(socketPath, export: "swap@st2")
        XCTAssertEqual(try other.roundTrip(Request(command: .read, cookie: 3, offset: 8192, length: 3)).1, [0, 0, 0])
        other.close()
    }
}
