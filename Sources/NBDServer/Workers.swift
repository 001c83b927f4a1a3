// Transmission-phase execution: the reader thread (Connection.swift) decodes
// and validates requests and queues them here; a small pool of worker threads
// per connection runs them on the backend and sends each reply whole, header
// and data in one buffer, under the connection's send lock (ReplySender).
// Replies may go out in any order (spec "Ordering of messages and writes");
// FLUSH is fdatasync of the shared file, so it covers every write that was
// already replied to, on this connection or any other.
import Glibc
import LinuxSys
import NBDWire

/// One validated request and, for WRITE, its payload.
struct Job {
    var request: Request
    var payload: [UInt8]

    /// Bytes of memory the job holds until it is replied to: a WRITE's
    /// payload, or the buffer a READ's reply is built in (its length; the
    /// chunk headers are small). WorkQueue budgets by this.
    var memory: Int { request.command == .read ? Int(request.length) : payload.count }
}

/// Serialises replies on one socket: one send lock, send(2) with MSG_NOSIGNAL.
/// After the first failure (peer gone) it shuts the socket down, so the
/// reader's read(2) returns and the connection winds down.
final class ReplySender: @unchecked Sendable {
    let fd: Int32
    /// Structured replies were negotiated: errors go out as ERROR chunks.
    let structured: Bool
    private let monitor = Monitor()
    private var failed = false

    init(fd: Int32, structured: Bool = false) {
        self.fd = fd
        self.structured = structured
    }

    /// Sends `bytes` whole; false once the connection is broken.
    @discardableResult
    func send(_ bytes: UnsafeRawBufferPointer) -> Bool {
        monitor.locked {
            if failed { return false }
            var done = 0
            while done < bytes.count {
                let n = Glibc.send(fd, bytes.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    failed = true
                    shutdown(fd, Int32(SHUT_RDWR))
                    return false
                }
                done += n
            }
            return true
        }
    }

    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { send($0) } }

    /// A simple reply with no data: every success without payload, in both
    /// modes (the spec lets payload-less replies stay simple), and every
    /// error of a client that did not negotiate structured replies.
    @discardableResult
    func reply(_ error: NBDErrno, cookie: UInt64) -> Bool {
        send(SimpleReply(error: error, cookie: cookie).encode())
    }

    /// An error: with structured replies an ERROR chunk (ERROR_OFFSET when
    /// `offset` is known) carrying `message`, else a simple reply.
    @discardableResult
    func fail(_ error: NBDErrno, cookie: UInt64, message: String, offset: UInt64? = nil) -> Bool {
        if structured {
            return send(Chunk.error(cookie: cookie, error, message: message, offset: offset))
        }
        return reply(error, cookie: cookie)
    }
}

/// Runs jobs of one connection on up to `maxWorkers` threads, started on
/// demand. `submit` blocks the reader when `maxJobs` requests, or jobs
/// holding `maxBytes` of memory (WRITE payloads and READ reply buffers,
/// `Job.memory`), are queued or running. A connection so holds at most
/// `maxBytes` plus the one request its reader is taking in (at most
/// BlockSizes.servedPayload): a client that pipelines big READs and never
/// reads the replies stalls itself, not the server.
final class WorkQueue: @unchecked Sendable {
    static let maxWorkers = 8
    static let maxJobs = 128
    static let maxBytes = 128 << 20

    /// Guards the fields below. `monitor`'s own condition means "progress"
    /// (a job finished, a worker left) and wakes the reader and the drainer;
    /// `workReady` wakes one idle worker per queued job.
    private let monitor = Monitor()
    private let workReady = Condition()
    private var jobs: [Job] = []
    private var head = 0
    private var inFlight = 0
    private var inFlightBytes = 0
    private var workers = 0
    private var idle = 0
    private var stopping = false
    private let execute: @Sendable (Job) -> Void
    private let log: Logger

    init(log: Logger, execute: @escaping @Sendable (Job) -> Void) {
        self.log = log
        self.execute = execute
    }

    /// Queues a job; if the pool cannot grow (no thread), runs it right here.
    func submit(_ job: Job) {
        let bytes = job.memory
        let spawn: Bool = monitor.locked {
            while inFlight >= Self.maxJobs || (inFlight > 0 && inFlightBytes + bytes > Self.maxBytes) {
                monitor.wait()
            }
            jobs.append(job)
            inFlight += 1
            inFlightBytes += bytes
            workReady.signal()
            // More queued jobs than idle workers: grow the pool.
            if jobs.count - head > idle && workers < Self.maxWorkers {
                workers += 1
                return true
            }
            return false
        }
        if spawn {
            do {
                try startThread("worker") { [self] in work() }
            } catch {
                log("cannot start a worker thread (\(error.description)); running requests on the reader")
                let job: Job? = monitor.locked {
                    workers -= 1
                    return pop()
                }
                if let job {
                    execute(job)
                    monitor.locked { done(job) }
                }
            }
        }
    }

    /// Waits until every queued job has been replied to, then stops the workers.
    func drainAndStop() {
        monitor.locked {
            while inFlight > 0 { monitor.wait() }
            stopping = true
            workReady.broadcast()
            while workers > 0 { monitor.wait() }
        }
    }

    /// The oldest queued job, if any. Call with the monitor held.
    private func pop() -> Job? {
        guard head < jobs.count else { return nil }
        let job = jobs[head]
        head += 1
        if head == jobs.count || head > 1024 {
            jobs.removeFirst(head)
            head = 0
        }
        return job
    }

    /// Accounts for a finished job. Call with the monitor held.
    private func done(_ job: Job) {
        inFlight -= 1
        inFlightBytes -= job.memory
        monitor.broadcast()
    }

    /// A worker: take a job, run it, account for it and take the next in the
    /// same critical section; leave when stopping and nothing is queued.
    private func work() {
        var finished: Job? = nil
        while true {
            let next: Job? = monitor.locked {
                if let finished { done(finished) }
                while true {
                    if let job = pop() { return job }
                    if stopping { return nil }
                    idle += 1
                    workReady.wait(monitor)
                    idle -= 1
                }
            }
            guard let job = next else { break }
            execute(job)
            finished = job
        }
        monitor.locked {
            workers -= 1
            monitor.broadcast()
        }
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
        if !r.flags.contains(.df) {
            // A failing lseek costs nothing but the holes: read it all as data.
            if let found = try? export.backend.extents(offset: r.offset, length: length, maxCount: Self.maxReadChunks) {
                let covered = found.reduce(0) { $0 + $1.length }
                extents = found
                if covered < length { appendExtent(.data(length - covered), to: &extents) }
            }
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
