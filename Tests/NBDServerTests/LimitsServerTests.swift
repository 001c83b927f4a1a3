// Handshake timeout, option cap and connection cap, against the real server
// on a Unix socket.
import Glibc
import LinuxSys
import NBDWire
import XCTest

@testable import NBDServer

final class LimitsServerTests: XCTestCase {
    var fixture: ServerFixture!

    override func setUpWithError() throws {
        fixture = try ServerFixture()
    }

    override func tearDown() { fixture.stop() }

    func start(_ limits: ServerLimits) throws {
        let path = try fixture.sparseFile("disk.img", size: 65536, data: [(0, 512, 0x33)])
        try fixture.start([ExportSpec(name: "disk", path: path)], limits: limits)
    }

    /// Waits (at most `seconds`) until the server closes `fd`; returns the time taken.
    func timeToClose(_ fd: FileDescriptor, within seconds: Double) throws -> Double? {
        let start = monotonicSeconds()
        var p = pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0)
        while monotonicSeconds() - start < seconds {
            if poll(&p, 1, 100) > 0 {
                var byte: UInt8 = 0
                if Glibc.read(fd.rawValue, &byte, 1) <= 0 { return monotonicSeconds() - start }
            }
        }
        return nil
    }

    func testSilentClientIsClosedAtTheHandshakeTimeout() throws {
        try start(ServerLimits(handshakeTimeout: 0.5))
        let fd = try connectUnix(path: fixture.socketPath)
        defer { fd.close() }
        XCTAssertNotNil(try fd.read(exactly: NewstyleGreeting.size))
        try fd.sendAll(ClientFlagsMessage.encode([.fixedNewstyle]))
        // Options keep coming but the handshake never ends: the deadline is for all of it.
        try fd.sendAll(OptionHeader.encode(.list))
        let took = try timeToClose(fd, within: 5)
        XCTAssertNotNil(took, "the server did not close a stalled handshake")
        XCTAssertLessThan(took ?? 99, 2)
        XCTAssertTrue(fixture.log.all.contains {
            $0.contains("handshake timed out after 0.5 s (--handshake-timeout) while the server waited for an option header")
        }, "\(fixture.log.all)")
    }

    func testTransmissionHasNoTimeout() throws {
        try start(ServerLimits(handshakeTimeout: 0.3))
        let c = try RawClient.connect(fixture.socketPath, export: "disk", structured: false)
        defer { c.close() }
        usleep(800_000)
        XCTAssertEqual(try c.roundTrip(Request(command: .flush, cookie: 1)).simple?.error, .ok)
    }

    func testTooManyOptionsClose() throws {
        try start(ServerLimits(maxOptions: 3))
        let c = try RawClient.open(fixture.socketPath)
        defer { c.close() }
        for _ in 0..<3 { XCTAssertEqual(try c.option(.list).last?.0, .ack) }
        try c.fd.sendAll(OptionHeader.encode(.list))
        XCTAssertNil(try c.fd.read(exactly: 1), "the 4th option must close the connection")
        XCTAssertTrue(fixture.log.all.contains { $0.contains("more than 3 options in one handshake") }, "\(fixture.log.all)")
    }

    func testConnectionCap() throws {
        try start(ServerLimits(maxConnections: 2))
        let a = try RawClient.connect(fixture.socketPath, export: "disk", structured: false)
        let b = try RawClient.open(fixture.socketPath)  // mid-handshake counts too
        defer { b.close() }
        let refused = try connectUnix(path: fixture.socketPath)
        defer { refused.close() }
        XCTAssertNil(try refused.read(exactly: 1), "a third connection must be closed without a greeting")
        XCTAssertTrue(fixture.log.all.contains {
            $0.contains("refusing connection from unix socket: 2 connections are open, the limit set by --max-connections (2)")
        }, "\(fixture.log.all)")
        // A connection that ends frees its place.
        try a.send(Request(command: .disc, cookie: 1))
        XCTAssertNil(try a.fd.read(exactly: 1))
        a.close()
        var admitted = false
        for _ in 0..<50 where !admitted {
            let fd = try connectUnix(path: fixture.socketPath)
            admitted = (try? fd.read(exactly: NewstyleGreeting.size)).flatMap { $0 } != nil
            fd.close()
            if !admitted { usleep(100_000) }
        }
        XCTAssertTrue(admitted, "no connection admitted after one closed")
    }

    func testLimitsAreValidated() {
        let export = [ExportSpec(name: "a", path: "/1")]
        XCTAssertThrowsError(try ServerConfig(listen: .default, exports: export, limits: ServerLimits(handshakeTimeout: 0))) {
            XCTAssertTrue(($0 as! ConfigError).message.contains("--handshake-timeout 0.0"), "\($0)")
        }
        XCTAssertThrowsError(try ServerConfig(listen: .default, exports: export, limits: ServerLimits(maxConnections: 0))) {
            XCTAssertTrue(($0 as! ConfigError).message.contains("--max-connections 0"), "\($0)")
        }
    }
}
