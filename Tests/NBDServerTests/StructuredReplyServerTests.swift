// Structured replies end to end in-process: READ as OFFSET_DATA/OFFSET_HOLE
// chunks over a sparse file, DF, error chunks with messages, and simple
// replies still for a client that did not ask.
import Glibc
import LinuxSys
import NBDWire
import XCTest

@testable import NBDServer

final class StructuredReplyServerTests: XCTestCase {
    var fixture: ServerFixture!
    var sparsePath = ""
    let size = 1 << 20

    override func setUpWithError() throws {
        fixture = try ServerFixture()
        // 1 MiB: data at 64 KiB..128 KiB (0xaa) and 512 KiB..516 KiB (0xbb), holes elsewhere.
        sparsePath = try fixture.sparseFile("sparse.img", size: size, data: [(65536, 65536, 0xaa), (524288, 4096, 0xbb)])
        try fixture.start([ExportSpec(name: "sparse", path: sparsePath),
                           ExportSpec(name: "ro", path: sparsePath, readOnly: true)])
    }

    override func tearDown() { fixture.stop() }

    /// The bytes a structured READ reply describes, checked for coverage.
    func assemble(_ reply: RawReply, offset: UInt64, length: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0x11, count: length)
        var covered = 0
        for (header, payload) in reply.chunks {
            var r = ByteReader(payload)
            switch header.type {
            case .offsetData:
                let at = Int((try? r.u64()) ?? 0) - Int(offset)
                let data = r.rest()
                out.replaceSubrange(at..<(at + data.count), with: data)
                covered += data.count
            case .offsetHole:
                let at = Int((try? r.u64()) ?? 0) - Int(offset)
                let n = Int((try? r.u32()) ?? 0)
                out.replaceSubrange(at..<(at + n), with: [UInt8](repeating: 0, count: n))
                covered += n
            default:
                XCTFail("unexpected chunk \(header.type.name)")
            }
        }
        XCTAssertEqual(covered, length, "chunks must cover the range exactly")
        XCTAssertTrue(reply.chunks.last?.header.flags.contains(.done) ?? false, "last chunk has DONE")
        XCTAssertEqual(reply.chunks.filter { $0.header.flags.contains(.done) }.count, 1)
        return out
    }

    func expected(_ offset: Int, _ length: Int) -> [UInt8] {
        (offset..<(offset + length)).map { i in
            (65536..<131072).contains(i) ? 0xaa : (524288..<528384).contains(i) ? 0xbb : 0
        }
    }

    func testLargeDataChunksComeStraightFromTheFile() throws {
        // READs of at least Executor.sendfileMinimum whose answer is one data
        // chunk (DF, or a range with no hole) go out with sendfile(2): the
        // chunk header and the bytes must still be exactly right, pipelined.
        let c = try RawClient.connect(fixture.socketPath, export: "sparse")
        defer { c.close() }
        let requests = [
            Request(command: .read, flags: .df, cookie: 1, offset: 0, length: UInt32(size)),
            Request(command: .read, cookie: 2, offset: 65536, length: Executor.sendfileMinimum),
            Request(command: .read, flags: .df, cookie: 3, offset: 65535, length: 65538),
            Request(command: .read, cookie: 4, offset: 524288, length: 16),
        ]
        try c.fd.sendAll(requests.flatMap { $0.encode() })
        var seen: [UInt64] = []
        for _ in requests {
            let reply = try c.reply()
            let cookie = try XCTUnwrap(reply.chunks.first?.header.cookie)
            let r = try XCTUnwrap(requests.first { $0.cookie == cookie })
            seen.append(cookie)
            if r.flags.contains(.df) || r.cookie == 2 {
                XCTAssertEqual(reply.chunks.count, 1, "cookie \(cookie): one OFFSET_DATA chunk")
            }
            XCTAssertEqual(assemble(reply, offset: r.offset, length: Int(r.length)), expected(Int(r.offset), Int(r.length)), "cookie \(cookie)")
        }
        XCTAssertEqual(seen.sorted(), [1, 2, 3, 4])
    }

    func testStructuredReadUsesHoleAndDataChunks() throws {
        let c = try RawClient.connect(fixture.socketPath, export: "sparse")
        defer { c.close() }
        XCTAssertTrue(c.flags.contains(.sendDF))
        let reply = try c.roundTrip(Request(command: .read, cookie: 1, offset: 0, length: UInt32(size)))
        XCTAssertNil(reply.simple)
        // hole 0-64K, data 64K-128K, hole 128K-512K, data 512K-516K, hole to the end
        XCTAssertEqual(reply.chunks.map { $0.header.type }, [.offsetHole, .offsetData, .offsetHole, .offsetData, .offsetHole])
        XCTAssertEqual(assemble(reply, offset: 0, length: size), expected(0, size))
        // A range inside one data extent: one OFFSET_DATA chunk.
        let inner = try c.roundTrip(Request(command: .read, cookie: 2, offset: 70000, length: 1000))
        XCTAssertEqual(inner.chunks.map { $0.header.type }, [.offsetData])
        XCTAssertEqual(assemble(inner, offset: 70000, length: 1000), expected(70000, 1000))
    }

    func testDFGivesOneDataChunk() throws {
        let c = try RawClient.connect(fixture.socketPath, export: "sparse")
        defer { c.close() }
        let reply = try c.roundTrip(Request(command: .read, flags: .df, cookie: 3, offset: 60000, length: 80000))
        XCTAssertEqual(reply.chunks.map { $0.header.type }, [.offsetData])
        XCTAssertEqual(assemble(reply, offset: 60000, length: 80000), expected(60000, 80000))
    }

    func testErrorsAreChunksWithMessages() throws {
        let c = try RawClient.connect(fixture.socketPath, export: "ro")
        defer { c.close() }
        let past = try c.roundTrip(Request(command: .read, cookie: 4, offset: UInt64(size), length: 512))
        XCTAssertEqual(past.chunks.map { $0.header.type }, [.error])
        XCTAssertEqual(past.error, .inval)
        XCTAssertEqual(past.errorMessage, "READ: offset 1048576 + length 512 is beyond the end of export 'ro' (1048576 bytes)")
        let write = try c.roundTrip(Request(command: .write, cookie: 5, offset: 0, length: 4), payload: [1, 2, 3, 4])
        XCTAssertEqual(write.error, .perm)
        XCTAssertEqual(write.errorMessage, "WRITE: export 'ro' is read-only")
        let flag = try c.roundTrip(Request(command: .read, flags: .reqOne, cookie: 6, offset: 0, length: 512))
        XCTAssertEqual(flag.error, .inval)
        // Successes without payload stay simple replies; the connection goes on.
        let flush = try c.roundTrip(Request(command: .flush, cookie: 7))
        XCTAssertEqual(flush.simple?.error, .ok)
        let zero = try c.roundTrip(Request(command: .read, cookie: 8, offset: 0, length: 0))
        XCTAssertEqual(zero.chunks.map { $0.header.type }, [.none])
    }

    func testClientsWithoutStructuredRepliesGetSimpleReplies() throws {
        let c = try RawClient.connect(fixture.socketPath, export: "sparse", structured: false)
        defer { c.close() }
        XCTAssertFalse(c.flags.contains(.sendDF))
        try c.send(Request(command: .read, cookie: 9, offset: 65536, length: 8))
        let head = try SimpleReply.decode(try XCTUnwrap(try c.fd.read(exactly: SimpleReply.size)))
        XCTAssertEqual(head, SimpleReply(error: .ok, cookie: 9))
        XCTAssertEqual(try c.fd.read(exactly: 8), [UInt8](repeating: 0xaa, count: 8))
        XCTAssertEqual(try c.roundTrip(Request(command: .read, flags: .df, cookie: 10, offset: 0, length: 8)).simple?.error, .inval,
                       "DF without structured replies is EINVAL, as a simple reply")
        XCTAssertEqual(try c.roundTrip(Request(command: .read, cookie: 11, offset: UInt64(size), length: 1)).simple?.error, .inval)
    }

    func testReadErrorAfterSomeChunksIsErrorOffset() throws {
        // An Executor over a backend whose pread fails past 4096, on a socketpair.
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        defer { close(fds[1]) }
        let export = Export(spec: ExportSpec(name: "bad", path: "-"), backend: FailingBackend())
        let sender = ReplySender(fd: fds[0])
        let executor = Executor(export: export, sender: sender, session: Session(structuredReplies: true), log: .silent)
        let out = ReplyBuffer()
        executor.run(Job(request: Request(command: .read, cookie: 12, offset: 0, length: 16384), payload: []), into: out)
        sender.send(out.bytes)
        close(fds[0])
        let client = RawClient(fd: FileDescriptor(fds[1]))
        // The chunks before the failing extent, none with DONE, then the error with DONE.
        let reply = try client.reply()
        XCTAssertEqual(reply.chunks.map { $0.header.type }, [.offsetData, .offsetHole, .errorOffset])
        XCTAssertEqual(reply.chunks.map { $0.header.flags.contains(.done) }, [false, false, true])
        let decoded = try ErrorChunk.decode(reply.chunks[2].payload, type: .errorOffset)
        XCTAssertEqual(decoded.error, .io)
        XCTAssertEqual(decoded.offset, 8192)
    }
}

/// 1 MiB: data, then a hole at 4096..8192, then data whose pread fails (EIO).
final class FailingBackend: BlockBackend, @unchecked Sendable {
    let size: UInt64 = 1 << 20
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SysError) {
        if offset >= 8192 { throw SysError("pread", Errno(EIO), "failing backend") }
        for i in 0..<buffer.count { buffer[i] = 7 }
    }
    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(SysError) {}
    func flush() throws(SysError) {}
    func trim(offset: UInt64, length: UInt64) throws(SysError) {}
    func close() {}
    func extents(offset: UInt64, length: UInt64, maxCount: Int) throws(SysError) -> [Extent] {
        [.data(4096), .hole(4096), .data(length - 8192)]
    }
}
