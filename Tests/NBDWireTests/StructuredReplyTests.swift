// Structured reply chunks, byte for byte from the spec's layout
// ("Structured reply chunk message"): magic 0x668e33ef, u16 flags, u16 type,
// u64 cookie, u32 length, payload.
import XCTest

@testable import NBDWire

final class StructuredReplyTests: XCTestCase {
    let magic: [UInt8] = [0x66, 0x8e, 0x33, 0xef]
    let cookie: [UInt8] = [0, 0, 0, 0, 0, 0, 0x12, 0x34]

    func testOffsetDataHeader() {
        // DONE, type 1, length 8 + 4, offset 0x200
        XCTAssertEqual(Chunk.offsetDataHeader(cookie: 0x1234, offset: 0x200, dataLength: 4, done: true),
                       magic + [0, 1, 0, 1] + cookie + [0, 0, 0, 12] + [0, 0, 0, 0, 0, 0, 2, 0])
        XCTAssertEqual(Chunk.offsetDataHeader(cookie: 0x1234, offset: 0, dataLength: 1, done: false)[4..<8], [0, 0, 0, 1])
    }

    func testInPlaceHeadersMatchAtAnyAlignment() {
        // The server writes reply headers straight into its send buffer,
        // wherever the previous reply ended.
        for shift in 0..<8 {
            var raw = [UInt8](repeating: 0xcc, count: shift + Chunk.offsetDataHeaderSize + SimpleReply.size)
            raw.withUnsafeMutableBytes { p in
                Chunk.storeOffsetDataHeader(to: p.baseAddress! + shift, cookie: 0x1234, offset: 0x200, dataLength: 4, done: true)
                SimpleReply(error: .nospc, cookie: 0x1234).store(to: p.baseAddress! + shift + Chunk.offsetDataHeaderSize)
            }
            XCTAssertEqual(Array(raw[..<shift]), [UInt8](repeating: 0xcc, count: shift))
            XCTAssertEqual(Array(raw[shift..<(shift + Chunk.offsetDataHeaderSize)]),
                           magic + [0, 1, 0, 1] + cookie + [0, 0, 0, 12] + [0, 0, 0, 0, 0, 0, 2, 0], "shift \(shift)")
            XCTAssertEqual(Array(raw[(shift + Chunk.offsetDataHeaderSize)...]),
                           [0x67, 0x44, 0x66, 0x98, 0, 0, 0, 28] + cookie, "shift \(shift)")
        }
    }

    func testOffsetHole() {
        // no flags, type 2, length 12, offset 0x1000, hole of 0x10000
        XCTAssertEqual(Chunk.offsetHole(cookie: 0x1234, offset: 0x1000, length: 0x10000, done: false),
                       magic + [0, 0, 0, 2] + cookie + [0, 0, 0, 12] + [0, 0, 0, 0, 0, 0, 0x10, 0] + [0, 1, 0, 0])
    }

    func testNone() {
        XCTAssertEqual(Chunk.none(cookie: 0x1234), magic + [0, 1, 0, 0] + cookie + [0, 0, 0, 0])
    }

    func testErrorAndErrorOffset() {
        // DONE, type 0x8001, length 6 + 2, EINVAL (22), message "no"
        let error = Chunk.error(cookie: 0x1234, .inval, message: "no")
        XCTAssertEqual(error, magic + [0, 1, 0x80, 0x01] + cookie + [0, 0, 0, 8] + [0, 0, 0, 22] + [0, 2] + Array("no".utf8))
        // DONE, type 0x8002, length 6 + 2 + 8, EIO (5), "io", offset 0x400
        let atOffset = Chunk.error(cookie: 0x1234, .io, message: "io", offset: 0x400)
        XCTAssertEqual(atOffset, magic + [0, 1, 0x80, 0x02] + cookie + [0, 0, 0, 16] + [0, 0, 0, 5] + [0, 2]
                       + Array("io".utf8) + [0, 0, 0, 0, 0, 0, 4, 0])
        let header = try? ChunkHeader.decode(Array(atOffset.prefix(ChunkHeader.size)))
        XCTAssertEqual(header, ChunkHeader(flags: .done, type: .errorOffset, cookie: 0x1234, length: 16))
        XCTAssertTrue(header?.type.isError ?? false)
        XCTAssertEqual(try ErrorChunk.decode(Array(atOffset.dropFirst(ChunkHeader.size)), type: .errorOffset),
                       ErrorChunk(error: .io, message: "io", offset: 0x400))
    }

    func testLongMessagesAreCutOnACharacterBoundary() {
        let long = String(repeating: "é", count: 3000)  // 6000 bytes
        let chunk = Chunk.error(cookie: 1, .io, message: long)
        let decoded = try? ErrorChunk.decode(Array(chunk.dropFirst(ChunkHeader.size)), type: .error)
        XCTAssertEqual(decoded?.message.utf8.count, 4096)
        XCTAssertEqual(decoded?.message, String(repeating: "é", count: 2048))
        XCTAssertEqual(truncatedUTF8("aé", to: 2), Array("a".utf8))
    }

    func testDecodeRejects() {
        XCTAssertThrowsError(try ChunkHeader.decode(SimpleReply(cookie: 1).encode() + [0, 0, 0, 0]))
        XCTAssertThrowsError(try ErrorChunk.decode([0, 0, 0, 5, 0, 9, 65], type: .error))  // message longer than the chunk
        XCTAssertThrowsError(try ErrorChunk.decode([0, 0, 0, 0, 0, 0], type: .error))  // error 0
    }
}
