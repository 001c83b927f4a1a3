// Test support: RawClient speaks the handshake by hand, so a test can negotiate
// structured replies and metadata contexts (NBDWire's `negotiate` does
// neither, as the kernel's client must not), and read structured replies.
// ServerFixture runs a Server on a Unix socket in a temporary directory.
import Glibc
import LinuxSys
import NBDWire
import XCTest

@testable import NBDServer

/// One reply: simple (`simple` set) or the chunks of a structured one.
struct RawReply {
    var simple: SimpleReply?
    var chunks: [(header: ChunkHeader, payload: [UInt8])] = []

    /// The error of a simple reply or of the first error chunk; .ok if none.
    var error: NBDErrno {
        if let simple { return simple.error }
        for c in chunks where c.header.type.isError {
            return (try? ErrorChunk.decode(c.payload, type: c.header.type))?.error ?? .io
        }
        return .ok
    }

    var errorMessage: String? {
        chunks.first { $0.header.type.isError }.flatMap { try? ErrorChunk.decode($0.payload, type: $0.header.type).message }
    }
}

struct RawClient {
    let fd: FileDescriptor
    var size: UInt64 = 0
    var flags: TransmissionFlags = []
    /// SET_META_CONTEXT's answers.
    var contexts: [MetaContextReply] = []

    init(fd: FileDescriptor) { self.fd = fd }

    /// Greeting, client flags FIXED_NEWSTYLE|NO_ZEROES, then the options.
    static func open(_ path: String) throws -> RawClient {
        let c = RawClient(fd: try connectUnix(path: path))
        let greeting = try XCTUnwrap(try c.fd.read(exactly: NewstyleGreeting.size))
        XCTAssertEqual(try NewstyleGreeting.decode(greeting).flags, [.fixedNewstyle, .noZeroes])
        try c.fd.sendAll(ClientFlagsMessage.encode([.fixedNewstyle, .noZeroes]))
        return c
    }

    /// STRUCTURED_REPLY (if asked), SET_META_CONTEXT (if given), then GO.
    static func connect(_ path: String, export: String, structured: Bool = true, contexts: [String]? = nil) throws -> RawClient {
        var c = try open(path)
        if structured {
            XCTAssertEqual(try c.option(.structuredReply).map { $0.0 }, [.ack])
        }
        if let contexts {
            for (type, data) in try c.option(.setMetaContext, MetaContextRequest(exportName: export, queries: contexts).encode()) {
                if type == .metaContext { c.contexts.append(try MetaContextReply.decode(data)) }
            }
        }
        let replies = try c.option(.go, InfoRequest(name: export, requests: [.blockSize]).encode())
        guard replies.last?.0 == .ack else { throw SysError("GO", Errno(ENOENT), "\(replies.last?.0.name ?? "nothing")") }
        for (type, data) in replies where type == .info {
            if case .export(let size, let flags) = try Info.decode(data) {
                c.size = size
                c.flags = flags
            }
        }
        return c
    }

    /// Sends an option and reads replies up to the final one (ACK or an error).
    func option(_ code: OptionCode, _ data: [UInt8] = []) throws -> [(ReplyType, [UInt8])] {
        try fd.sendAll(OptionHeader.encode(code, data: data))
        var out: [(ReplyType, [UInt8])] = []
        for _ in 0..<100 {
            let header = try OptionReplyHeader.decode(try XCTUnwrap(try fd.read(exactly: OptionReplyHeader.size)))
            XCTAssertEqual(header.option, code)
            let payload = header.length > 0 ? try XCTUnwrap(try fd.read(exactly: Int(header.length))) : []
            out.append((header.type, payload))
            if header.type == .ack || header.type.isError { break }
        }
        return out
    }

    func send(_ request: Request, payload: [UInt8] = []) throws {
        try fd.sendAll(request.encode() + payload)
    }

    /// Reads one whole reply: a simple one (`readLength` data bytes follow a
    /// successful one), or structured chunks up to DONE.
    func reply(readLength: Int = 0) throws -> RawReply {
        let magicBytes = try XCTUnwrap(try fd.read(exactly: 4), "server closed the connection")
        var r = ByteReader(magicBytes)
        let magic = try r.u32()
        if magic == Magic.simpleReply {
            let simple = try SimpleReply.decode(magicBytes + (try XCTUnwrap(try fd.read(exactly: 12))))
            if simple.error == .ok && readLength > 0 { _ = try fd.read(exactly: readLength) }
            return RawReply(simple: simple)
        }
        var reply = RawReply()
        var head = magicBytes
        for _ in 0..<100_000 {
            let header = try ChunkHeader.decode(head + (try XCTUnwrap(try fd.read(exactly: ChunkHeader.size - 4))))
            let payload = header.length > 0 ? try XCTUnwrap(try fd.read(exactly: Int(header.length))) : []
            reply.chunks.append((header, payload))
            if header.flags.contains(.done) { break }
            head = try XCTUnwrap(try fd.read(exactly: 4))
        }
        return reply
    }

    func roundTrip(_ request: Request, payload: [UInt8] = []) throws -> RawReply {
        try send(request, payload: payload)
        let reply = try reply(readLength: request.command == .read ? Int(request.length) : 0)
        if let simple = reply.simple { XCTAssertEqual(simple.cookie, request.cookie) }
        for c in reply.chunks { XCTAssertEqual(c.header.cookie, request.cookie) }
        return reply
    }

    func close() { fd.close() }
}

/// A server on a Unix socket in a temporary directory, with files made by the test.
final class ServerFixture {
    let dir: String
    var server: Server?
    let log = LogLines()
    private let done = DispatchSemaphoreBox()
    var socketPath: String { dir + "/nbd.sock" }

    init() throws {
        var template = Array("/tmp/nbdboot-server-test-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw SysError("mkdtemp", Errno.current) }
        dir = String(cString: p)
    }

    func start(_ exports: [ExportSpec], limits: ServerLimits = ServerLimits(), oldstyle: Bool = false) throws {
        let config = try ServerConfig(listen: .unix(path: socketPath), exports: exports, limits: limits, oldstyle: oldstyle)
        let s = try Server(config: config, log: log.logger)
        server = s
        let d = done
        try startThread("test server") {
            s.run()
            d.signal()
        }
    }

    /// Stops the server and removes the directory.
    func stop() {
        if let server {
            server.stop()
            XCTAssertTrue(done.wait(seconds: 15), "server did not stop")
        }
        if let d = opendir(dir) {
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { unlink(dir + "/" + name) }
            }
            closedir(d)
        }
        rmdir(dir)
    }

    /// A sparse file of `size` bytes with `fill` bytes written at each range.
    func sparseFile(_ name: String, size: Int, data: [(offset: Int, length: Int, fill: UInt8)]) throws -> String {
        let path = dir + "/" + name
        let fd = try FileDescriptor.open(path, O_CREAT | O_TRUNC | O_RDWR)
        defer { fd.close() }
        XCTAssertEqual(ftruncate(fd.rawValue, off_t(size)), 0)
        for d in data {
            let bytes = [UInt8](repeating: d.fill, count: d.length)
            let n = bytes.withUnsafeBytes { pwrite(fd.rawValue, $0.baseAddress, d.length, off_t(d.offset)) }
            XCTAssertEqual(n, d.length)
        }
        return path
    }

    /// st_blocks * 512: what the file really occupies.
    func allocated(_ path: String) -> Int {
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0)
        return Int(st.st_blocks) * 512
    }
}

/// A semaphore over Monitor with a timed wait (Dispatch-free).
final class DispatchSemaphoreBox: @unchecked Sendable {
    private let monitor = Monitor()
    private var count = 0

    func signal() {
        monitor.locked {
            count += 1
            monitor.broadcast()
        }
    }

    func wait(seconds: Double) -> Bool {
        monitor.locked {
            var rounds = 0
            while count == 0 && rounds < Int(seconds * 10) {
                monitor.wait(seconds: 0.1)
                rounds += 1
            }
            if count == 0 { return false }
            count -= 1
            return true
        }
    }
}
