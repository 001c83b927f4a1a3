// The whole server in-process, on a Unix socket: NBDWire's client handshake
// (negotiate) over LinuxSys.SocketTransport, then raw requests and replies.
import Dispatch
import Glibc
import LinuxSys
import NBDWire
import XCTest

@testable import NBDServer

/// Collects log lines from any thread.
final class LogLines: @unchecked Sendable {
    private let monitor = Monitor()
    private var lines: [String] = []
    var logger: Logger { Logger { [self] line in monitor.locked { lines.append(line) } } }
    var all: [String] { monitor.locked { lines } }
}

/// A client in the transmission phase.
struct TestClient {
    let fd: FileDescriptor
    let export: NegotiatedExport

    static func connect(_ path: String, export name: String, forceExportName: Bool = false) throws -> TestClient {
        let fd = try connectUnix(path: path)
        var transport = SocketTransport(fd)
        let export = try negotiate(&transport, NegotiationOptions(exportName: name, forceExportName: forceExportName))
        return TestClient(fd: fd, export: export)
    }

    func send(_ request: Request, payload: [UInt8] = []) throws {
        try fd.sendAll(request.encode() + payload)
    }

    /// Reads one reply; `dataLength` bytes follow a successful READ reply.
    func reply(dataLength: (UInt64) -> Int = { _ in 0 }) throws -> (SimpleReply, [UInt8])? {
        guard let raw = try fd.read(exactly: SimpleReply.size) else { return nil }
        let reply = try SimpleReply.decode(raw)
        let n = reply.error == .ok ? dataLength(reply.cookie) : 0
        let data = n > 0 ? try fd.read(exactly: n) ?? [] : []
        return (reply, data)
    }

    func roundTrip(_ request: Request, payload: [UInt8] = []) throws -> (NBDErrno, [UInt8]) {
        try send(request, payload: payload)
        let length = request.command == .read ? Int(request.length) : 0
        guard let (reply, data) = try reply(dataLength: { _ in length }) else {
            throw SysError("read", Errno(ECONNRESET), "server closed the connection")
        }
        XCTAssertEqual(reply.cookie, request.cookie)
        return (reply.error, data)
    }

    func close() { fd.close() }
}

final class ServerTests: XCTestCase {
    var dir = ""
    var server: Server!
    var done = DispatchSemaphore(value: 0)
    let log = LogLines()
    var socketPath: String { dir + "/nbd.sock" }

    override func setUpWithError() throws {
        var template = Array("/tmp/nbdboot-server-test-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw SysError("mkdtemp", Errno.current) }
        dir = String(cString: p)
        try makeFile("rw.img", size: 1 << 20, fill: 0)
        try makeFile("ro.img", size: 65536, fill: 0x5a)
        let config = try ServerConfig(listen: .unix(path: socketPath), exports: [
            ExportSpec(name: "rw", path: dir + "/rw.img"),
            ExportSpec(name: "ro", path: dir + "/ro.img", readOnly: true),
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
        for f in ["rw.img", "ro.img", "nbd.sock"] { unlink(dir + "/" + f) }
        rmdir(dir)
    }

    func makeFile(_ name: String, size: Int, fill: UInt8) throws {
        let fd = try FileDescriptor.open(dir + "/" + name, O_CREAT | O_TRUNC | O_WRONLY)
        try fd.writeAll([UInt8](repeating: fill, count: size))
        fd.close()
    }

    func fileBytes(_ name: String, offset: Int, count: Int) throws -> [UInt8] {
        let fd = try FileDescriptor.open(dir + "/" + name, O_RDONLY)
        defer { fd.close() }
        var out = [UInt8](repeating: 0, count: count)
        let n = out.withUnsafeMutableBytes { pread(fd.rawValue, $0.baseAddress, count, off_t(offset)) }
        XCTAssertEqual(n, count)
        return out
    }

    func testNegotiatedSizeFlagsAndBlockSizes() throws {
        let c = try TestClient.connect(socketPath, export: "rw")
        defer { c.close() }
        XCTAssertEqual(c.export.size, 1 << 20)
        XCTAssertEqual(c.export.flags, [.hasFlags, .sendFlush, .sendFUA, .sendTrim, .sendWriteZeroes, .sendFastZero,
                                        .sendCache, .canMultiConn])
        XCTAssertEqual(c.export.via, .go)
        XCTAssertEqual(c.export.minimumBlock, 1)
        XCTAssertEqual(c.export.preferredBlock, 4096)
        XCTAssertEqual(c.export.maximumPayload, 32 << 20)
        let legacy = try TestClient.connect(socketPath, export: "ro", forceExportName: true)
        defer { legacy.close() }
        XCTAssertEqual(legacy.export.via, .exportName)
        XCTAssertEqual(legacy.export.size, 65536)
        XCTAssertTrue(legacy.export.flags.contains(.readOnly))
    }

    func testWriteReadFlushTrimAndRangeErrors() throws {
        let c = try TestClient.connect(socketPath, export: "rw")
        defer { c.close() }
        let pattern = (0..<4096).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) }
        XCTAssertEqual(try c.roundTrip(Request(command: .write, cookie: 1, offset: 8192, length: 4096), payload: pattern).0, .ok)
        XCTAssertEqual(try c.roundTrip(Request(command: .read, cookie: 2, offset: 8192, length: 4096)).1, pattern)
        XCTAssertEqual(try c.roundTrip(Request(command: .flush, cookie: 3)).0, .ok)
        XCTAssertEqual(try fileBytes("rw.img", offset: 8192, count: 4096), pattern)
        XCTAssertEqual(try c.roundTrip(Request(command: .write, flags: .fua, cookie: 4, offset: 0, length: 3), payload: [9, 8, 7]).0, .ok)
        XCTAssertEqual(try fileBytes("rw.img", offset: 0, count: 3), [9, 8, 7])
        // Out of range: READ EINVAL, WRITE ENOSPC (its payload is drained), the connection carries on.
        XCTAssertEqual(try c.roundTrip(Request(command: .read, cookie: 5, offset: 1 << 20, length: 1)).0, .inval)
        XCTAssertEqual(try c.roundTrip(Request(command: .write, cookie: 6, offset: (1 << 20) - 1, length: 2), payload: [1, 2]).0, .nospc)
        XCTAssertEqual(try c.roundTrip(Request(command: .blockStatus, cookie: 7, offset: 0, length: 512)).0, .inval)
        XCTAssertEqual(try c.roundTrip(Request(command: .trim, cookie: 8, offset: 8192, length: 4096)).0, .ok)
        XCTAssertEqual(try c.roundTrip(Request(command: .read, cookie: 9, offset: 8192, length: 4096)).1, [UInt8](repeating: 0, count: 4096))
        XCTAssertEqual(try c.roundTrip(Request(command: .read, cookie: 10, offset: 0, length: 3)).1, [9, 8, 7])
        // Zero-length requests are no-ops, not errors.
        XCTAssertEqual(try c.roundTrip(Request(command: .trim, cookie: 11, offset: 4096, length: 0)).0, .ok)
        XCTAssertEqual(try c.roundTrip(Request(command: .write, cookie: 12, offset: 4096, length: 0)).0, .ok)
        XCTAssertEqual(try c.roundTrip(Request(command: .read, cookie: 13, offset: 1 << 20, length: 0)).0, .ok)
        XCTAssertTrue(log.all.contains { $0.contains("READ offset=1048576 length=1 flags=0x0: EINVAL") }, "\(log.all)")
    }

    func testOversizedWriteIsDrainedAndRefused() throws {
        let c = try TestClient.connect(socketPath, export: "rw")
        defer { c.close() }
        let length = BlockSizes.servedPayload + 1
        let payload = [UInt8](repeating: 0xee, count: Int(length))
        XCTAssertEqual(try c.roundTrip(Request(command: .write, cookie: 1, offset: 0, length: length), payload: payload).0, .inval)
        // The payload was consumed: the next request is read at the right place.
        XCTAssertEqual(try c.roundTrip(Request(command: .read, cookie: 2, offset: 0, length: 4)).1, [0, 0, 0, 0])
    }

    func testReadonlyExportRefusesWritesAndKeepsServing() throws {
        let c = try TestClient.connect(socketPath, export: "ro")
        defer { c.close() }
        XCTAssertTrue(c.export.flags.contains(.readOnly))
        XCTAssertEqual(try c.roundTrip(Request(command: .write, cookie: 1, offset: 0, length: 512), payload: [UInt8](repeating: 1, count: 512)).0, .perm)
        XCTAssertEqual(try c.roundTrip(Request(command: .trim, cookie: 2, offset: 0, length: 512)).0, .perm)
        XCTAssertEqual(try c.roundTrip(Request(command: .read, cookie: 3, offset: 0, length: 4)).1, [0x5a, 0x5a, 0x5a, 0x5a])
        XCTAssertEqual(try fileBytes("ro.img", offset: 0, count: 1), [0x5a])
    }

    func testPipelinedRequestsAreAllAnswered() throws {
        let c = try TestClient.connect(socketPath, export: "rw")
        defer { c.close() }
        // 64 writes of distinct blocks, all sent before any reply is read...
        var batch: [UInt8] = []
        for i in 0..<64 {
            batch += Request(command: .write, cookie: UInt64(1000 + i), offset: UInt64(i * 4096), length: 4096).encode()
            batch += [UInt8](repeating: UInt8(i + 1), count: 4096)
        }
        try c.fd.sendAll(batch)
        var cookies = Set<UInt64>()
        for _ in 0..<64 {
            let (reply, _) = try XCTUnwrap(try c.reply())
            XCTAssertEqual(reply.error, .ok)
            cookies.insert(reply.cookie)
        }
        XCTAssertEqual(cookies, Set((0..<64).map { UInt64(1000 + $0) }))
        // ...then 64 reads, pipelined the same way; replies may come in any order.
        batch = []
        for i in 0..<64 { batch += Request(command: .read, cookie: UInt64(i), offset: UInt64(i * 4096), length: 4096).encode() }
        try c.fd.sendAll(batch)
        for _ in 0..<64 {
            let (reply, data) = try XCTUnwrap(try c.reply(dataLength: { _ in 4096 }))
            XCTAssertEqual(data, [UInt8](repeating: UInt8(reply.cookie + 1), count: 4096), "cookie \(reply.cookie)")
        }
    }

    func testLargeSimpleReadsComeWholeAndInFraming() throws {
        // Simple replies of at least Executor.sendfileMinimum bytes go out
        // with sendfile(2), small ones from a buffer: pipelined together, at
        // odd offsets, each must carry exactly its bytes.
        let c = try TestClient.connect(socketPath, export: "rw")
        defer { c.close() }
        let pattern = (0..<(512 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        XCTAssertEqual(try c.roundTrip(Request(command: .write, cookie: 1, offset: 0, length: UInt32(pattern.count)), payload: pattern).0, .ok)
        let reads: [(cookie: UInt64, offset: Int, length: Int)] = [(10, 4097, 256 << 10), (11, 3, 5), (12, 0, 512 << 10), (13, 1000, 65536)]
        try c.fd.sendAll(reads.flatMap { Request(command: .read, cookie: $0.cookie, offset: UInt64($0.offset), length: UInt32($0.length)).encode() })
        var seen: [UInt64] = []
        for _ in reads {
            let (reply, data) = try XCTUnwrap(try c.reply(dataLength: { cookie in reads.first { $0.cookie == cookie }?.length ?? 0 }))
            let r = try XCTUnwrap(reads.first { $0.cookie == reply.cookie })
            XCTAssertEqual(reply.error, .ok)
            XCTAssertEqual(data, Array(pattern[r.offset..<(r.offset + r.length)]), "cookie \(r.cookie)")
            seen.append(reply.cookie)
        }
        XCTAssertEqual(seen.sorted(), [10, 11, 12, 13])
    }

    func testBadMagicClosesOnlyThatConnection() throws {
        let good = try TestClient.connect(socketPath, export: "rw")
        defer { good.close() }
        let bad = try TestClient.connect(socketPath, export: "rw")
        defer { bad.close() }
        try bad.fd.sendAll([UInt8](repeating: 0x42, count: Request.size))
        XCTAssertNil(try bad.fd.read(exactly: 1), "the server must close after a bad request magic")
        XCTAssertEqual(try good.roundTrip(Request(command: .read, cookie: 1, offset: 0, length: 16)).0, .ok)
        XCTAssertTrue(log.all.contains { $0.contains("bad request magic") }, "\(log.all)")
    }

    func testDiscClosesAfterInFlightRequests() throws {
        let c = try TestClient.connect(socketPath, export: "rw")
        defer { c.close() }
        try c.fd.sendAll(Request(command: .write, cookie: 7, offset: 0, length: 4), payload: [1, 2, 3, 4])
        try c.send(Request(command: .disc, cookie: 8))
        let (reply, _) = try XCTUnwrap(try c.reply())
        XCTAssertEqual(reply.cookie, 7)
        XCTAssertNil(try c.fd.read(exactly: 1), "no reply to DISC, then close")
        XCTAssertEqual(try fileBytes("rw.img", offset: 0, count: 4), [1, 2, 3, 4])
        XCTAssertTrue(log.all.contains { $0.contains("DISC after 2 requests") }, "\(log.all)")
    }

    func testStopClosesOpenConnections() throws {
        let c = try TestClient.connect(socketPath, export: "rw")
        defer { c.close() }
        server.stop()
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success, "run() must return after stop()")
        done.signal()  // for tearDown
        XCTAssertNil(try c.fd.read(exactly: 1))
    }

    func testMissingFileNamesExportAndPath() {
        XCTAssertThrowsError(try Server(config: ServerConfig(listen: .unix(path: dir + "/other.sock"),
                                                             exports: [ExportSpec(name: "gone", path: dir + "/missing.img")]),
                                        log: .silent)) { error in
            let message = (error as! ServerError).description
            XCTAssertTrue(message.contains("'gone'") && message.contains("missing.img") && message.contains("No such file"), message)
        }
    }
}

private extension FileDescriptor {
    func sendAll(_ request: Request, payload: [UInt8]) throws { try sendAll(request.encode() + payload) }
}
