// Executes one validated request on the export's backend and sends its
// reply whole, header and data in one buffer (ReplySender). FLUSH is
// fdatasync of the shared file, so it covers every write that was already
// replied to, on this connection or any other.
import Glibc
import LinuxSys
import NBDWire

/// One validated request and, for WRITE, its payload.
struct Job {
    var request: Request
    var payload: [UInt8]

    /// Bytes of memory a request holds until it is replied to: a WRITE's
    /// payload, or the buffer a READ's reply is built in (its length; the
    /// chunk headers are small). TransmissionPool budgets by this, before
    /// the memory is taken.
    static func memory(of request: Request) -> Int {
        request.command == .read || request.command == .write ? Int(request.length) : 0
    }
}

/// Executes validated requests on an export and replies.
struct Executor: Sendable {
    let export: Export
    let sender: ReplySender
    let session: Session
    let log: Logger

    /// Most chunks one structured READ reply is split into: beyond that the
    /// rest of the range goes out as data, holes and all.
    static let maxReadChunks = 64

    init(export: Export, sender: ReplySender, session: Session = Session(), log: Logger) {
        self.export = export
        self.sender = sender
        self.session = session
        self.log = log
    }

    func run(_ job: Job) {
        let r = job.request
        switch r.command {
        case .read:
            if session.structuredReplies { readStructured(r) } else { read(r) }
        case .write:
            let ok = job.payload.withUnsafeBytes { data -> SysError? in
                do throws(SysError) { try export.backend.write(data, at: r.offset) } catch { return error }
                return nil
            }
            finish(r, ok, durable: r.flags.contains(.fua))
        case .trim:
            do {
                try export.backend.trim(offset: r.offset, length: UInt64(r.length))
                finish(r, nil, durable: r.flags.contains(.fua))
            } catch { finish(r, error, durable: false) }
        case .flush:
            do {
                try export.backend.flush()
                finish(r, nil, durable: false)
            } catch { finish(r, error, durable: false) }
        case .blockStatus:
            blockStatus(r)
        case .writeZeroes:
            let fast = r.flags.contains(.fastZero)
            do {
                try export.backend.zero(offset: r.offset, length: UInt64(r.length),
                                        mayPunch: !r.flags.contains(.noHole), fast: fast)
                finish(r, nil, durable: r.flags.contains(.fua))
            } catch {
                // Spec: ENOTSUP only, and always, when FAST_ZERO cannot be fast.
                if fast && error.errno == Errno(EOPNOTSUPP) {
                    fail(r, error, code: .notsup,
                         message: "WRITE_ZEROES with FAST_ZERO: no fast way to zero this range (fallocate PUNCH_HOLE/ZERO_RANGE unsupported); retry without FAST_ZERO")
                } else {
                    finish(r, error, durable: false)
                }
            }
        case .cache:
            do {
                try export.backend.cache(offset: r.offset, length: UInt64(r.length))
                sender.reply(.ok, cookie: r.cookie)
            } catch { fail(r, error) }
        default:
            // The gate lets nothing else through.
            sender.fail(.inval, cookie: r.cookie, message: "\(r.command.name) is not supported")
        }
    }

    /// Most extents in one BLOCK_STATUS reply (the spec suggests at most 2^20);
    /// a client asks again from where the reply stopped.
    static let maxExtents = 1 << 16

    /// BLOCK_STATUS for `base:allocation` (the gate checked it was selected):
    /// one BLOCK_STATUS chunk with DONE, extents from lseek SEEK_DATA/SEEK_HOLE,
    /// holes as HOLE|ZERO (3) and data as 0. With REQ_ONE exactly one extent.
    private func blockStatus(_ r: Request) {
        let extents: [Extent]
        do {
            extents = try export.backend.extents(offset: r.offset, length: UInt64(r.length),
                                                 maxCount: r.flags.contains(.reqOne) ? 1 : Self.maxExtents)
        } catch {
            return fail(r, error)
        }
        // Every extent lies inside the request, so its length fits in 32 bits.
        var wire = extents.map { BlockStatusExtent(length: UInt32($0.length), flags: $0.state.rawValue) }
        if wire.isEmpty { wire = [BlockStatusExtent(length: r.length, flags: 0)] }
        if r.flags.contains(.reqOne) { wire = [wire[0]] }
        let payload = BlockStatusPayload(contextID: session.allocationContext ?? ServerHandshake.allocationContextID, extents: wire)
        sender.send(payload.chunk(cookie: r.cookie))
    }

    /// A structured READ (spec "Structured reply chunk message"): one
    /// OFFSET_DATA chunk per data extent and one OFFSET_HOLE chunk per hole
    /// (lseek SEEK_DATA/SEEK_HOLE), the last flagged DONE; with DF a single
    /// OFFSET_DATA chunk for the whole range. All chunks go out in one send.
    /// If a pread fails, the chunks before it are sent followed by an
    /// ERROR_OFFSET chunk naming where the failing extent starts.
    private func readStructured(_ r: Request) {
        if r.length == 0 {
            sender.send(Chunk.none(cookie: r.cookie))
            return
        }
        let length = UInt64(r.length)
        var extents: [Extent] = [.data(length)]
        if !r.flags.contains(.df) && export.backend.mayHaveHoles {
            // A failing lseek costs nothing but the holes: read it all as data.
            if let found = try? export.backend.extents(offset: r.offset, length: length, maxCount: Self.maxReadChunks) {
                let covered = found.reduce(0) { $0 + $1.length }
                extents = found
                if covered < length { appendExtent(.data(length - covered), to: &extents) }
            }
        }
        if extents.count == 1, !extents[0].isHole, let file = sendfileSource(for: r) {
            let header = Chunk.offsetDataHeader(cookie: r.cookie, offset: r.offset, dataLength: Int(r.length), done: true)
            return sendFromFile(r, header, file)
        }
        var total = 0
        for e in extents { total += ChunkHeader.size + (e.isHole ? 12 : 8 + Int(e.length)) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: total, alignment: 16)
        defer { buffer.deallocate() }
        var used = 0
        var offset = r.offset
        for (i, e) in extents.enumerated() {
            let done = i == extents.count - 1
            let header = e.isHole
                ? Chunk.offsetHole(cookie: r.cookie, offset: offset, length: UInt32(e.length), done: done)
                : Chunk.offsetDataHeader(cookie: r.cookie, offset: offset, dataLength: Int(e.length), done: done)
            if !e.isHole {
                let data = UnsafeMutableRawBufferPointer(rebasing: buffer[(used + header.count)..<(used + header.count + Int(e.length))])
                do { try export.backend.read(into: data, at: offset) } catch {
                    let code = Executor.nbdError(error.errno)
                    log("\(describe(r)): \(code.name) at offset \(offset) (\(error.description))")
                    sender.send(UnsafeRawBufferPointer(rebasing: buffer[..<used]))
                    sender.fail(code, cookie: r.cookie, message: "READ at offset \(offset): \(error.errno.description)", offset: offset)
                    return
                }
            }
            header.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[used...]).copyMemory(from: $0) }
            used += header.count + (e.isHole ? 0 : Int(e.length))
            offset += e.length
        }
        sender.send(UnsafeRawBufferPointer(buffer))
    }

    /// READ: one buffer holds the 16-byte reply header and the data, so the
    /// reply leaves in one send(2) and never interleaves with another.
    private func read(_ r: Request) {
        if let file = sendfileSource(for: r) {
            return sendFromFile(r, SimpleReply(error: .ok, cookie: r.cookie).encode(), file)
        }
        let header = SimpleReply.size
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: header + Int(r.length), alignment: 16)
        defer { buffer.deallocate() }
        do {
            try export.backend.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[header...]), at: r.offset)
        } catch {
            fail(r, error)
            return
        }
        let head = SimpleReply(error: .ok, cookie: r.cookie).encode()
        head.withUnsafeBytes { buffer.copyMemory(from: $0) }
        sender.send(UnsafeRawBufferPointer(buffer))
    }

    /// READs of at least this many bytes go out with sendfile(2) when the
    /// backend allows it; smaller ones cost less through a buffer.
    static let sendfileMinimum: UInt32 = 64 << 10

    private func sendfileSource(for r: Request) -> Int32? {
        r.length >= Self.sendfileMinimum ? export.backend.sendfileSource : nil
    }

    /// A READ reply whose data comes straight from the backend's file. A
    /// failure after the header cannot be reported on the wire: it is
    /// logged and the connection is closed, and the client retries.
    private func sendFromFile(_ r: Request, _ header: [UInt8], _ file: Int32) {
        if let error = sender.send(header, file: file, offset: r.offset, length: Int(r.length)),
           error.call == "sendfile", error.errno != Errno(EPIPE), error.errno != Errno(ECONNRESET) {
            log("\(describe(r)): \(error.description) after the reply header went out; closing the connection")
        }
    }

    /// Replies to a write-type command; with FUA, syncs first (spec: a FUA
    /// command is not replied to until its data is persistent).
    private func finish(_ r: Request, _ error: SysError?, durable: Bool) {
        if let error { return fail(r, error) }
        if durable {
            do { try export.backend.flush() } catch { return fail(r, error) }
        }
        sender.reply(.ok, cookie: r.cookie)
    }

    /// Logs and replies an error. The client's message leaves out the
    /// backing file's path, which is the server's business.
    private func fail(_ r: Request, _ error: SysError, code: NBDErrno? = nil, message: String? = nil) {
        let code = code ?? Executor.nbdError(error.errno)
        log("\(describe(r)): \(code.name) (\(error.description))")
        sender.fail(code, cookie: r.cookie, message: message ?? "\(r.command.name) failed: \(error.call): \(error.errno.description)")
    }

    /// errno to NBD error (spec "Error values"): EDQUOT/EFBIG count as ENOSPC,
    /// EROFS as EPERM, anything unexpected as EIO.
    static func nbdError(_ e: Errno) -> NBDErrno {
        switch e.rawValue {
        case EPERM, EROFS, EACCES: return .perm
        case ENOSPC, EDQUOT, EFBIG: return .nospc
        case EINVAL: return .inval
        case ENOMEM: return .nomem
        default: return .io
        }
    }
}

/// "WRITE offset=0 length=512 flags=0x1", for log lines about a request.
func describe(_ r: Request) -> String {
    "\(r.command.name) offset=\(r.offset) length=\(r.length) flags=0x\(hex(UInt64(r.flags.rawValue)))"
}
