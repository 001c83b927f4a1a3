// One client connection, on its own thread: the handshake (bytes in, the
// ServerHandshake state machine decides, bytes out), then the transmission
// reader loop. The reader decodes each 28-byte request, reads a WRITE's
// payload (always, even for a request it then refuses, or the stream would
// lose its framing), asks RequestGate, and either replies the error itself or
// hands the job to the connection's WorkQueue. DISC, end of stream or a bad
// request magic end the loop; in-flight requests are finished before close.
import Glibc
import LinuxSys
import NBDWire

/// CLOCK_MONOTONIC in seconds: immune to the wall clock being set.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// "30" for whole seconds, "0.5" otherwise.
func seconds(_ value: Double) -> String {
    value == value.rounded() ? String(Int(value)) : String(value)
}

final class Connection: @unchecked Sendable {
    let id: Int
    let fd: Int32
    let peer: String
    private let exports: [Export]
    private let oldstyle: Bool
    private let limits: ServerLimits
    private let log: Logger
    private var requests = 0
    /// A per-station export's view for this connection's station (StationExport.swift).
    private var attached: Export?

    init(id: Int, fd: Int32, peer: String, exports: [Export], oldstyle: Bool = false,
         limits: ServerLimits = ServerLimits(), log: Logger) {
        self.id = id
        self.fd = fd
        self.peer = peer
        self.exports = exports
        self.oldstyle = oldstyle
        self.limits = limits
        self.log = log
    }

    private func note(_ line: String) { log("conn \(id): \(line)") }

    /// Runs the connection to its end. The owner closes the socket afterwards
    /// (under its lock, so a shutdown never reaches a recycled descriptor).
    func run() {
        defer { attached?.detachStation() }
        if oldstyle {
            // Spec "Oldstyle negotiation": NBDMAGIC, 0x00420281861253, size,
            // 32-bit flags, 124 zeroes, and transmission starts; the client
            // says nothing and gets simple replies only.
            guard let export = exports[0].attachOldstyle(peer: peer, note: { note($0) }) else { return }
            if export !== exports[0] { attached = export }
            let e = export.info
            setSendTimeout(limits.handshakeTimeout)
            guard send(OldstyleGreeting(exportSize: e.size, flags: e.flags).encode()) else { return }
            setSendTimeout(0)
            note("export '\(e.name)' via oldstyle greeting (\(e.size) bytes, flags 0x\(hex(UInt64(e.flags.rawValue))))")
            transmission(export, Session())
        } else if let (index, session) = handshake() {
            transmission(attached ?? exports[index], session)
        }
    }

    /// Stops reading (server shutdown): the reader sees end of stream,
    /// in-flight requests still get their replies.
    func stopReading() { shutdown(fd, Int32(SHUT_RD)) }

    /// Stops everything (shutdown took too long).
    func abort() { shutdown(fd, Int32(SHUT_RDWR)) }

    // MARK: handshake

    /// Returns the export chosen and what was negotiated, or nil when the
    /// connection should close.
    /// The whole handshake must end within `limits.handshakeTimeout`: reads
    /// wait with poll(2) for what is left of it, sends give up after it
    /// (SO_SNDTIMEO, cleared again for transmission, where clients may idle).
    private func handshake() -> (Int, Session)? {
        var machine = ServerHandshake(exports: exports.map { $0.info }, maxOptions: limits.maxOptions)
        let deadline = monotonicSeconds() + limits.handshakeTimeout
        setSendTimeout(limits.handshakeTimeout)
        defer { setSendTimeout(0) }
        func readExactly(_ count: Int, _ what: String) -> [UInt8]? {
            readHandshake(count, what, deadline: deadline)
        }
        guard send(machine.greeting()) else { return nil }
        guard let flags = readExactly(ClientFlagsMessage.size, "client flags") else { return nil }
        var step = machine.receiveClientFlags(flags)
        var lastOption = OptionCode(0)
        while true {
            if case .transmit(let index) = step.next {
                (step, attached) = exports[index].admit(step, option: lastOption, requested: machine.selectedName, peer: peer)
            }
            if let line = step.note { note(line) }
            if !step.send.isEmpty && !send(step.send) { return nil }
            switch step.next {
            case .readOption:
                guard let raw = readExactly(OptionHeader.size, "an option header") else { return nil }
                step = machine.receiveOptionHeader(raw)
            case .readOptionData(let header):
                guard let data = readExactly(Int(header.length), "\(header.option.name) data") else { return nil }
                lastOption = header.option
                step = machine.receiveOption(header, data: data)
            case .close(let reason):
                note("closed during handshake: \(reason)")
                return nil
            case .transmit(let index):
                let e = exports[index].info
                let s = machine.session
                let modes = (s.structuredReplies ? ", structured replies" : "") + (s.allocationContext != nil ? ", base:allocation" : "")
                note("export '\(e.name)' via \(lastOption.name) (\(e.size) bytes, flags 0x\(hex(UInt64(machine.flags(of: e).rawValue)))\(modes))")
                return (index, s)
            }
        }
    }

    // MARK: transmission

    private func transmission(_ export: Export, _ session: Session) {
        let sender = ReplySender(fd: fd, structured: session.structuredReplies)
        let executor = Executor(export: export, sender: sender, session: session,
                                log: Logger { [id, log] in log("conn \(id): \($0)") })
        let queue = WorkQueue(log: log) { executor.run($0) }
        let gate = export.gate
        var ending = "client closed the connection without DISC"
        while true {
            guard let raw = readExactly(Request.size, nil) else { break }
            let request: Request
            do { request = try Request.decode(raw) } catch {
                ending = "\(error.description); closing this connection"
                break
            }
            requests += 1
            if request.command == .disc {
                ending = "DISC"
                break
            }
            let rejection = RequestGate.check(request, on: gate, session: session)
            var payload: [UInt8] = []
            if request.command == .write {
                if rejection != nil {
                    guard drain(UInt64(request.length)) else { break }
                } else {
                    guard let data = readExactly(Int(request.length), "WRITE payload") else { break }
                    payload = data
                }
            }
            if let rejection {
                note("\(describe(request)): \(rejection.error.name) (\(rejection.reason))")
                guard sender.fail(rejection.error, cookie: request.cookie, message: rejection.reason) else { break }
                continue
            }
            queue.submit(Job(request: request, payload: payload))
        }
        queue.drainAndStop()
        note("\(ending) after \(requests) requests, closed")
    }

    // MARK: socket I/O

    /// Reads exactly `count` handshake bytes before `deadline` (CLOCK_MONOTONIC
    /// seconds): poll(2) for the time left, then read(2). Nil when the peer is
    /// gone or time is up (both logged).
    private func readHandshake(_ count: Int, _ what: String, deadline: Double) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let left = deadline - monotonicSeconds()
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = left <= 0 ? 0 : poll(&p, 1, Int32(min(left * 1000, 3_600_000).rounded(.up)))
            if ready < 0 {
                if errno == EINTR { continue }
                note("poll while waiting for \(what): \(Errno.current.description)")
                return nil
            }
            if ready == 0 {
                note("handshake timed out after \(seconds(limits.handshakeTimeout)) s (--handshake-timeout) while the server waited for \(what); closing")
                return nil
            }
            let n = out.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + got, count - got) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                note("reading \(what): \(Errno.current.description)")
                return nil
            }
            if n == 0 {
                note("client closed the connection while the server waited for \(what)")
                return nil
            }
            got += n
        }
        return out
    }

    /// SO_SNDTIMEO: a send(2) blocked longer than `seconds` fails (0: never).
    private func setSendTimeout(_ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Reads exactly `count` bytes; nil (logged when `what` is given and it is
    /// not a plain end of stream) when the peer is gone.
    private func readExactly(_ count: Int, _ what: String?) -> [UInt8]? {
        do {
            let got = try FileDescriptor(fd).read(exactly: count)
            if got == nil, let what { note("client closed the connection while the server waited for \(what)") }
            return got
        } catch {
            note("reading \(what ?? "a request"): \(error.errno.description)")
            return nil
        }
    }

    /// Reads and drops `count` payload bytes of a refused WRITE, 1 MiB at a time.
    private func drain(_ count: UInt64) -> Bool {
        var left = count
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        while left > 0 {
            let n = Glibc.read(fd, buffer.baseAddress!, Int(min(UInt64(chunk), left)))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                note("client closed the connection inside a WRITE payload")
                return false
            }
            left -= UInt64(n)
        }
        return true
    }

    private func send(_ bytes: [UInt8]) -> Bool {
        do {
            try FileDescriptor(fd).sendAll(bytes)
            return true
        } catch {
            note("sending: \(error.errno.description)")
            return false
        }
    }
}
