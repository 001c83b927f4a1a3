// Metadata context messages, byte for byte from the spec's layouts
// ("NBD_OPT_LIST_META_CONTEXT", "NBD_REP_META_CONTEXT", "NBD_REPLY_TYPE_BLOCK_STATUS").
import XCTest

@testable import NBDWire

final class MetaContextTests: XCTestCase {
    func testRequestEncodeDecode() throws {
        // export "root", 2 queries: "base:", "x-y:z"
        let bytes: [UInt8] = [0, 0, 0, 4] + Array("root".utf8) + [0, 0, 0, 2]
            + [0, 0, 0, 5] + Array("base:".utf8) + [0, 0, 0, 5] + Array("x-y:z".utf8)
        let request = MetaContextRequest(exportName: "root", queries: ["base:", "x-y:z"])
        XCTAssertEqual(request.encode(), bytes)
        XCTAssertEqual(try MetaContextRequest.decode(bytes), request)
        // No queries: name "", count 0.
        XCTAssertEqual(try MetaContextRequest.decode([0, 0, 0, 0, 0, 0, 0, 0]), MetaContextRequest(exportName: ""))
    }

    func testRequestDecodeRejectsBrokenData() {
        let cases: [(String, [UInt8])] = [
            ("name longer than the data", [0, 0, 0, 9, 65, 0, 0, 0, 0]),
            ("count larger than the data can hold", [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
            ("query longer than the data", [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 65]),
            ("bytes after the last query", [0, 0, 0, 0, 0, 0, 0, 0, 1]),
            ("truncated count", [0, 0, 0, 0, 0, 0]),
        ]
        for (what, bytes) in cases {
            XCTAssertThrowsError(try MetaContextRequest.decode(bytes), what)
        }
    }

    func testReply() throws {
        let bytes: [UInt8] = [0, 0, 0, 1] + Array("base:allocation".utf8)
        XCTAssertEqual(MetaContextReply(id: 1, name: MetaContextName.baseAllocation).encode(), bytes)
        XCTAssertEqual(try MetaContextReply.decode(bytes), MetaContextReply(id: 1, name: "base:allocation"))
    }

    func testBlockStatusChunk() throws {
        let payload = BlockStatusPayload(contextID: 1, extents: [
            BlockStatusExtent(length: 0x10000, flags: AllocationState([.hole, .zero]).rawValue),
            BlockStatusExtent(length: 0x200, flags: 0),
        ])
        // magic, DONE, type 5, cookie 9, length 4 + 2 * 8; id 1; (64 KiB, 3); (512, 0)
        let expected: [UInt8] = [0x66, 0x8e, 0x33, 0xef, 0, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 20]
            + [0, 0, 0, 1] + [0, 1, 0, 0, 0, 0, 0, 3] + [0, 0, 2, 0, 0, 0, 0, 0]
        XCTAssertEqual(payload.chunk(cookie: 9), expected)
        XCTAssertEqual(try BlockStatusPayload.decode(Array(expected.dropFirst(ChunkHeader.size))), payload)
        XCTAssertThrowsError(try BlockStatusPayload.decode([0, 0, 0, 1]), "no extent")
        XCTAssertThrowsError(try BlockStatusPayload.decode([0, 0, 0, 1, 0, 0, 0, 1]), "half an extent")
    }
}
