// BLOCK_STATUS end to end in-process, over a sparse file.
import Glibc
import LinuxSys
import NBDWire
import XCTest

@testable import NBDServer

/// BLOCK_STATUS over `base:allocation` on the sparse file, and the extents
/// FileBackend finds with SEEK_DATA/SEEK_HOLE.
final class BlockStatusServerTests: XCTestCase {
    var fixture: ServerFixture!
    var sparsePath = ""
    let size = 1 << 20

    override func setUpWithError() throws {
        fixture = try ServerFixture()
        sparsePath = try fixture.sparseFile("sparse.img", size: size, data: [(65536, 65536, 0xaa), (524288, 4096, 0xbb)])
        try fixture.start([ExportSpec(name: "sparse", path: sparsePath), ExportSpec(name: "other", path: sparsePath)])
    }

    override func tearDown() { fixture.stop() }

    func extents(_ reply: RawReply) throws -> [BlockStatusExtent] {
        XCTAssertEqual(reply.chunks.map { $0.header.type }, [.blockStatus])
        XCTAssertTrue(reply.chunks.first?.header.flags.contains(.done) ?? false)
        let payload = try BlockStatusPayload.decode(try XCTUnwrap(reply.chunks.first).payload)
        XCTAssertEqual(payload.contextID, 1)
        return payload.extents
    }

    func testFileBackendExtents() throws {
        let backend = try FileBackend(path: sparsePath, readOnly: true)
        defer { backend.close() }
        XCTAssertEqual(try backend.extents(offset: 0, length: UInt64(size), maxCount: 100),
                       [.hole(65536), .data(65536), .hole(524288 - 131072), .data(4096), .hole(UInt64(size) - 528384)])
        XCTAssertEqual(try backend.extents(offset: 70000, length: 100, maxCount: 100), [.data(100)])
        XCTAssertEqual(try backend.extents(offset: 1000, length: 70000, maxCount: 100), [.hole(64536), .data(5464)])
        XCTAssertEqual(try backend.extents(offset: 0, length: UInt64(size), maxCount: 2), [.hole(65536), .data(65536)])
    }

    func testBlockStatusExtents() throws {
        let c = try RawClient.connect(fixture.socketPath, export: "sparse", contexts: ["base:allocation"])
        defer { c.close() }
        XCTAssertEqual(c.contexts, [MetaContextReply(id: 1, name: "base:allocation")])
        let all = try extents(try c.roundTrip(Request(command: .blockStatus, cookie: 1, offset: 0, length: UInt32(size))))
        XCTAssertEqual(all, [BlockStatusExtent(length: 65536, flags: 3), BlockStatusExtent(length: 65536, flags: 0),
                             BlockStatusExtent(length: 393216, flags: 3), BlockStatusExtent(length: 4096, flags: 0),
                             BlockStatusExtent(length: 520192, flags: 3)])
        let one = try extents(try c.roundTrip(Request(command: .blockStatus, flags: .reqOne, cookie: 2, offset: 4096, length: 200_000)))
        XCTAssertEqual(one, [BlockStatusExtent(length: 61440, flags: 3)])
        let inData = try extents(try c.roundTrip(Request(command: .blockStatus, flags: .reqOne, cookie: 3, offset: 65536, length: 512)))
        XCTAssertEqual(inData, [BlockStatusExtent(length: 512, flags: 0)])
        let past = try c.roundTrip(Request(command: .blockStatus, cookie: 4, offset: UInt64(size), length: 512))
        XCTAssertEqual(past.error, .inval)
        // Writing into a hole turns it into data.
        XCTAssertEqual(try c.roundTrip(Request(command: .write, cookie: 5, offset: 0, length: 4096),
                                       payload: [UInt8](repeating: 1, count: 4096)).simple?.error, .ok)
        let after = try extents(try c.roundTrip(Request(command: .blockStatus, flags: .reqOne, cookie: 6, offset: 0, length: 65536)))
        XCTAssertEqual(after, [BlockStatusExtent(length: 4096, flags: 0)])
    }

    func testBlockStatusWithoutContextIsEinval() throws {
        let structured = try RawClient.connect(fixture.socketPath, export: "sparse")
        defer { structured.close() }
        let reply = try structured.roundTrip(Request(command: .blockStatus, cookie: 1, offset: 0, length: 512))
        XCTAssertEqual(reply.error, .inval)
        XCTAssertTrue(reply.errorMessage?.contains("SET_META_CONTEXT") ?? false, "\(String(describing: reply.errorMessage))")
        // Selected for "other", then GO on "sparse": not selected.
        let wrong = try RawClient.open(fixture.socketPath)
        defer { wrong.close() }
        XCTAssertEqual(try wrong.option(.structuredReply).map { $0.0 }, [.ack])
        XCTAssertEqual(try wrong.option(.setMetaContext, MetaContextRequest(exportName: "other", queries: ["base:allocation"]).encode()).map { $0.0 },
                       [.metaContext, .ack])
        XCTAssertEqual(try wrong.option(.go, InfoRequest(name: "sparse").encode()).last?.0, .ack)
        XCTAssertEqual(try wrong.roundTrip(Request(command: .blockStatus, cookie: 2, offset: 0, length: 512)).error, .inval)
        let simple = try RawClient.connect(fixture.socketPath, export: "sparse", structured: false)
        defer { simple.close() }
        XCTAssertEqual(try simple.roundTrip(Request(command: .blockStatus, cookie: 3, offset: 0, length: 512)).simple?.error, .inval)
    }
}
