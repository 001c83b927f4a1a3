// SIGHUP reload semantics against the real server (Server.apply, which the
// signal handler calls after re-reading the file): added exports appear,
// removed ones disappear, changed ones close their connections, unchanged
// ones keep theirs; a configuration that cannot be applied changes nothing.
// ExportTable is also tested alone for allow-list changes and maxconnections.
import Glibc
import LinuxSys
import NBDWire
import XCTest

@testable import NBDServer

final class ReloadServerTests: XCTestCase {
    var fixture: ServerFixture!

    override func setUpWithError() throws { fixture = try ServerFixture() }
    override func tearDown() { fixture.stop() }

    func loaded(_ exports: [ExportSpec]) throws -> LoadedConfig {
        LoadedConfig(config: try ServerConfig(listen: .unix(path: fixture.socketPath), exports: exports), warnings: [], user: nil, group: nil)
    }

    /// True when the server closed `c` (a FLUSH gets no reply).
    func isClosed(_ c: RawClient) throws -> Bool {
        try? c.send(Request(command: .flush, cookie: 9))
        return (try? c.fd.read(exactly: SimpleReply.size)).flatMap { $0 } == nil
    }

    func testReloadAddsRemovesChangesAndKeepsUnchanged() throws {
        let a = try fixture.sparseFile("a.img", size: 65536, data: [(0, 512, 0xaa)])
        let b = try fixture.sparseFile("b.img", size: 65536, data: [])
        let c = try fixture.sparseFile("c.img", size: 65536, data: [])
        try fixture.start([ExportSpec(name: "a", path: a), ExportSpec(name: "b", path: b), ExportSpec(name: "c", path: c)])
        let onA = try RawClient.connect(fixture.socketPath, export: "a", structured: false)
        let onB = try RawClient.connect(fixture.socketPath, export: "b", structured: false)
        let onC = try RawClient.connect(fixture.socketPath, export: "c", structured: false)
        defer { [onA, onB, onC].forEach { $0.close() } }
        usleep(100_000)  // the connections attach to their exports

        let server = try XCTUnwrap(fixture.server)
        XCTAssertTrue(server.apply(try loaded([ExportSpec(name: "a", path: a, description: "new text"),
                                               ExportSpec(name: "b", path: b, readOnly: true),
                                               ExportSpec(name: "d", path: c)])))
        XCTAssertTrue(fixture.log.all.contains {
            $0.contains("configuration reloaded: added 'd', changed 'b', removed 'c', unchanged 'a'; closed 2 connection(s)")
        }, "\(fixture.log.all)")
        XCTAssertEqual(try onA.roundTrip(Request(command: .read, cookie: 1, offset: 0, length: 512)).simple?.error, .ok,
                       "a connection to an unchanged export stays up")
        XCTAssertTrue(try isClosed(onB), "a connection to a changed export is closed")
        XCTAssertTrue(try isClosed(onC), "a connection to a removed export is closed")

        let fresh = try RawClient.open(fixture.socketPath)
        defer { fresh.close() }
        let names = try fresh.option(.list).filter { $0.0 == .server }.map { try ServerEntry.decode($0.1).name }
        XCTAssertEqual(names, ["a", "b", "d"])
        XCTAssertEqual(try fresh.option(.info, InfoRequest(name: "c", requests: []).encode()).last?.0, .errUnknown)
        let newB = try RawClient.connect(fixture.socketPath, export: "b", structured: false)
        defer { newB.close() }
        XCTAssertTrue(newB.flags.contains(.readOnly))
        XCTAssertEqual(try newB.roundTrip(Request(command: .write, cookie: 2, offset: 0, length: 1), payload: [1]).simple?.error, .perm)

        // A configuration that cannot be applied leaves everything as it was.
        XCTAssertFalse(server.apply(try loaded([ExportSpec(name: "a", path: a), ExportSpec(name: "e", path: fixture.dir + "/missing.img")])))
        XCTAssertTrue(fixture.log.all.contains { $0.contains("reload failed, the previous configuration stays in force: cannot open export 'e'") },
                      "\(fixture.log.all)")
        XCTAssertEqual(server.exports.map { $0.spec.name }, ["a", "b", "d"])
        XCTAssertEqual(try onA.roundTrip(Request(command: .flush, cookie: 3)).simple?.error, .ok)
    }

    func testReloadWithoutSourceChangesNothing() throws {
        let a = try fixture.sparseFile("a.img", size: 4096, data: [])
        try fixture.start([ExportSpec(name: "a", path: a)])
        XCTAssertFalse(try XCTUnwrap(fixture.server).reload())
        XCTAssertTrue(fixture.log.all.contains { $0.contains("no configuration file to re-read") })
    }

    func testExportTableAllowListChangeAndMaxConnections() throws {
        let path = try fixture.sparseFile("a.img", size: 4096, data: [])
        var spec = ExportSpec(name: "a", path: path)
        spec.policy.maxConnections = 2
        let table = ExportTable([try Export(spec: spec)])
        defer { table.closeAll() }
        let e = table.snapshot[0]
        let lab = IPAddress("10.0.2.15")!, other = IPAddress("10.0.3.1")!
        XCTAssertNil(table.attach(1, e, client: lab))
        XCTAssertNil(table.attach(2, e, client: other))
        XCTAssertEqual(table.attach(3, e, client: lab), "export 'a' has 2 connections, its maxconnections (2)")
        table.detach(2)
        XCTAssertNil(table.attach(2, e, client: other))

        spec.policy.allow = try AllowList.parse("10.0.2.0/24", source: "lab.allow")
        let change = try table.replace(with: [spec]) { (s) throws(ServerError) -> Export in
            XCTFail("an export whose allow list alone changed is not reopened")
            throw .system(SysError("open", Errno(EIO)))
        }
        XCTAssertEqual(change.unchanged, ["a"])
        XCTAssertEqual(change.close, [2], "only the client the new allow list refuses is closed")
        XCTAssertTrue(table.snapshot[0].backend === e.backend)
        XCTAssertNotNil(table.attach(4, e, client: lab), "the replaced Export object is no longer current")
    }
}
