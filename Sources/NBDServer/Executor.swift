// Executes one validated request on the export's backend and builds its
// reply, header and data, in the calling thread's ReplyBuffer, which
// TransmissionPool sends whole (ReplySender); big READs from a plain file go
// out with sendfile(2) instead. FLUSH is fdatasync of the shared file, so it
// covers every write that was already replied to, on this connection or any
// other.
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

/// Executes validated requests on an export and builds their replies.
struct Executor: Sendable {
    let export: Export
    let sender: ReplySender
    let session: Session
    let log: Logger

    /// Most chunks one structured READ reply is split into: beyond that the
    /// rest of the range goes out as data, holes and all.
    static let maxReadChunks = 64

    /// READs of at least this many bytes go out with sendfile(2) when the
    /// backend allows it; smaller ones cost less through the buffer.
    static let sendfileMinimum: UInt32 = 64 << 10

    init(export: Export, sender: ReplySender, session: Session = Session(), log: Logger) {
        self.export = export
        self.sender = sender
        self.session = session
        self.log = log
    }

    /// Runs `job` and appends its reply to `out` (or, for a READ that goes
    /// out with sendfile, sends what `out` holds and then the reply).
    /// With `mayWait` false it runs only what cannot wait for a device: a
    /// WRITE without FUA (into the page cache), a READ whose bytes the
    /// backend has at hand (`readWithoutWaiting`, or sendfile from a file in
    /// memory). For anything else it returns false and leaves `out` as it
    /// was, and the caller runs the job again with `mayWait` once it has
    /// passed its read turn on.
    @discardableResult
    func run(_ job: Job, into out: ReplyBuffer, mayWait: Bool = true) -> Bool {
        let r = job.request
        if !mayWait && !(r.command == .read || (r.command == .write && !r.flags.contains(.fua))) { return false }
        switch r.command {
        case .read:
            return session.structuredReplies ? readStructured(r, out, mayWait) : read(r, out, mayWait)
        case .write:
            let ok = job.payload.withUnsafeBytes { data -> SysError? in
                do throws(SysError) { try export.backend.write(data, at: r.offset) } catch { return error }
                return nil
            }
            finish(r, ok, durable: r.flags.contains(.fua), out)
        case .trim:
            do {
                try export.backend.trim(offset: r.offset, length: UInt64(r.length))
                finish(r, nil, durable: r.flags.contains(.fua), out)
            } catch { finish(r, error, durable: false, out) }
        case .flush:
            do {
                try export.backend.flush()
                finish(r, nil, durable: false, out)
            } catch { finish(r, error, durable: false, out) }
        case .blockStatus:
            blockStatus(r, out)
        case .writeZeroes:
            let fast = r.flags.contains(.fastZero)
            do {
                try export.backend.zero(offset: r.offset, length: UInt64(r.length),
                                        mayPunch: !r.flags.contains(.noHole), fast: fast)
                finish(r, nil, durable: r.flags.contains(.fua), out)
            } catch {
                // Spec: ENOTSUP only, and always, when FAST_ZERO cannot be fast.
                if fast && error.errno == Errno(EOPNOTSUPP) {
                    fail(r, error, out, code: .notsup,
                         message: "WRITE_ZEROES with FAST_ZERO: no fast way to zero this range (fallocate PUNCH_HOLE/ZERO_RANGE unsupported); retry without FAST_ZERO")
                } else {
                    finish(r, error, durable: false, out)
                }
            }
        case .cache:
            do {
                try export.backend.cache(offset: r.offset, length: UInt64(r.length))
                replyOK(r, out)
            } catch { fail(r, error, out) }
        default:
            // The gate lets nothing else through.
            refuse(r, .inval, message: "\(r.command.name) is not supported", out)
        }
        return true
    }

    /// Most extents in one BLOCK_STATUS reply (the spec suggests at most 2^20);
    /// a client asks again from where the reply stopped.
    static let maxExtents = 1 << 16

    /// BLOCK_STATUS for `base:allocation` (the gate checked it was selected):
    /// one BLOCK_STATUS chunk with DONE, extents from lseek SEEK_DATA/SEEK_HOLE,
    /// holes as HOLE|ZERO (3) and data as 0. With REQ_ONE exactly one extent.
    private func blockStatus(_ r: Request, _ out: ReplyBuffer) {
        let extents: [Extent]
        do {
            extents = try export.backend.extents(offset: r.offset, length: UInt64(r.length),
                                                 maxCount: r.flags.contains(.reqOne) ? 1 : Self.maxExtents)
        } catch {
            return fail(r, error, out)
        }
        // Every extent lies inside the request, so its length fits in 32 bits.
        var wire = extents.map { BlockStatusExtent(length: UInt32($0.length), flags: $0.state.rawValue) }
        if wire.isEmpty { wire = [BlockStatusExtent(length: r.length, flags: 0)] }
        if r.flags.contains(.reqOne) { wire = [wire[0]] }
        let payload = BlockStatusPayload(contextID: session.allocationContext ?? ServerHandshake.allocationContextID, extents: wire)
        out.append(payload.chunk(cookie: r.cookie))
    }

    /// A structured READ (spec "Structured reply chunk message"): one
    /// OFFSET_DATA chunk per data extent and one OFFSET_HOLE chunk per hole
    /// (lseek SEEK_DATA/SEEK_HOLE), the last flagged DONE; with DF a single
    /// OFFSET_DATA chunk for the whole range. If a pread fails, the chunks
    /// before it stay, followed by an ERROR_OFFSET chunk naming where the
    /// failing extent starts.
    private func readStructured(_ r: Request, _ out: ReplyBuffer, _ mayWait: Bool) -> Bool {
        if r.length == 0 {
            out.append(Chunk.none(cookie: r.cookie))
            return true
        }
        let length = UInt64(r.length)
        guard !r.flags.contains(.df) && export.backend.mayHaveHoles else {
            return readWhole(r, out, mayWait, headerSize: Chunk.offsetDataHeaderSize) { p in
                Chunk.storeOffsetDataHeader(to: p, cookie: r.cookie, offset: r.offset, dataLength: Int(r.length), done: true)
            }
        }
        // Looking for holes (lseek) may take long: not without waiting.
        if !mayWait { return false }
        // A failing lseek costs nothing but the holes: read it all as data.
        var extents: [Extent] = [.data(length)]
        if let found = try? export.backend.extents(offset: r.offset, length: length, maxCount: Self.maxReadChunks) {
            let covered = found.reduce(0) { $0 + $1.length }
            extents = found
            if covered < length { appendExtent(.data(length - covered), to: &extents) }
        }
        var offset = r.offset
        for (i, e) in extents.enumerated() {
            let done = i == extents.count - 1
            if e.isHole {
                out.append(Chunk.offsetHole(cookie: r.cookie, offset: offset, length: UInt32(e.length), done: done))
            } else {
                let start = out.count
                let p = out.reserve(Chunk.offsetDataHeaderSize + Int(e.length))
                Chunk.storeOffsetDataHeader(to: p, cookie: r.cookie, offset: offset, dataLength: Int(e.length), done: done)
                do {
                    try export.backend.read(into: UnsafeMutableRawBufferPointer(start: p + Chunk.offsetDataHeaderSize, count: Int(e.length)), at: offset)
                } catch {
                    out.truncate(to: start)
                    let code = Executor.nbdError(error.errno)
                    log("\(describe(r)): \(code.name) at offset \(offset) (\(error.description))")
                    out.append(Chunk.error(cookie: r.cookie, code, message: "READ at offset \(offset): \(error.errno.description)", offset: offset))
                    return true
                }
                out.commit(Chunk.offsetDataHeaderSize + Int(e.length))
            }
            offset += e.length
        }
        return true
    }

    /// A simple READ reply: the 16-byte header, then the data.
    private func read(_ r: Request, _ out: ReplyBuffer, _ mayWait: Bool) -> Bool {
        readWhole(r, out, mayWait, headerSize: SimpleReply.size) { p in SimpleReply(error: .ok, cookie: r.cookie).store(to: p) }
    }

    /// A READ answered by one header (`storeHeader` writes its `headerSize`
    /// bytes) and the whole range as data: with sendfile(2) when the range is
    /// big and the backend is a plain file, else pread(2) into `out`.
    private func readWhole(_ r: Request, _ out: ReplyBuffer, _ mayWait: Bool, headerSize: Int,
                           _ storeHeader: (UnsafeMutableRawPointer) -> Void) -> Bool {
        if r.length >= Self.sendfileMinimum, let file = export.backend.sendfileSource {
            if !mayWait && !export.backend.inMemory { return false }
            let header = [UInt8](unsafeUninitializedCapacity: headerSize) { b, n in
                storeHeader(b.baseAddress!)
                n = headerSize
            }
            // What is built so far goes first; the header rides with the data.
            if out.count > 0 { sender.send(out.bytes) }
            out.reset()
            if let error = sender.send(header, file: file, offset: r.offset, length: Int(r.length)),
               error.call == "sendfile", error.errno != Errno(EPIPE), error.errno != Errno(ECONNRESET) {
                // Too late to report it on the wire: the client retries on a new connection.
                log("\(describe(r)): \(error.description) after the reply header went out; closing the connection")
            }
            return true
        }
        let p = out.reserve(headerSize + Int(r.length))
        storeHeader(p)
        let data = UnsafeMutableRawBufferPointer(start: p + headerSize, count: Int(r.length))
        do {
            if mayWait {
                try export.backend.read(into: data, at: r.offset)
            } else if try !export.backend.readWithoutWaiting(into: data, at: r.offset) {
                return false
            }
        } catch {
            fail(r, error, out)
            return true
        }
        out.commit(headerSize + Int(r.length))
        return true
    }

    /// Replies to a write-type command; with FUA, syncs first (spec: a FUA
    /// command is not replied to until its data is persistent).
    private func finish(_ r: Request, _ error: SysError?, durable: Bool, _ out: ReplyBuffer) {
        if let error { return fail(r, error, out) }
        if durable {
            do { try export.backend.flush() } catch { return fail(r, error, out) }
        }
        replyOK(r, out)
    }

    /// A simple reply with no data: every success without payload, in both
    /// modes (the spec lets payload-less replies stay simple).
    private func replyOK(_ r: Request, _ out: ReplyBuffer) {
        SimpleReply(error: .ok, cookie: r.cookie).store(to: out.reserve(SimpleReply.size))
        out.commit(SimpleReply.size)
    }

    /// An error reply: with structured replies an ERROR chunk (ERROR_OFFSET
    /// when `offset` is known) carrying `message`, else a simple reply.
    func refuse(_ r: Request, _ error: NBDErrno, message: String, offset: UInt64? = nil, _ out: ReplyBuffer) {
        if session.structuredReplies {
            out.append(Chunk.error(cookie: r.cookie, error, message: message, offset: offset))
        } else {
            SimpleReply(error: error, cookie: r.cookie).store(to: out.reserve(SimpleReply.size))
            out.commit(SimpleReply.size)
        }
    }

    /// Logs and replies an error. The client's message leaves out the
    /// backing file's path, which is the server's business.
    private func fail(_ r: Request, _ error: SysError, _ out: ReplyBuffer, code: NBDErrno? = nil, message: String? = nil) {
        let code = code ?? Executor.nbdError(error.errno)
        log("\(describe(r)): \(code.name) (\(error.description))")
        refuse(r, code, message: message ?? "\(r.command.name) failed: \(error.call): \(error.errno.description)", out)
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
