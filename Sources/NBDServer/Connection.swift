// One client connection, on its own thread: the handshake (bytes in, the
// ServerHandshake state machine decides, bytes out), then the transmission
// phase, which this thread runs with the helpers TransmissionPool starts:
// requests are read through RequestReader, checked by RequestGate, executed
// by Executor. DISC, end of stream or a bad request magic end it; requests
// already taken are finished before the connection closes.
import Glibc
import LinuxSys
import NBDWire

/// CLOCK_MONOTONIC in nanoseconds: immune to the wall clock being set.
func monotonicNanos() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// CLOCK_MONOTONIC in seconds.
func monotonicSeconds() -> Double { Double(monotonicNanos()) / 1e9 }

/// "30" for whole seconds, "0.5" otherwise.
func seconds(_ value: Double) -> String {
    value == value.rounded() ? String(Int(value)) : String(value)
}

final class Connection: @unchecked Sendable {
    let id: Int
    let fd: Int32
    let peer: String
    /// The client's IP address; nil on a Unix socket.
    let client: IPAddress?
    private let exports: [Export]
    /// Answer NBD_OPT_LIST (ServerConfig.listAllowed).
    private let listAllowed: Bool
    /// Called when transmission is about to start on an export (ExportTable.attach):
    /// nil lets it start, a reason closes the connection.
    private let attach: @Sendable (Export) -> String?
    private let oldstyle: Bool
    private let limits: ServerLimits
    private let log: Logger
    /// A per-station export's view for this connection's station (StationExport.swift).
    private var attached: Export?

    init(id: Int, fd: Int32, peer: String, client: IPAddress? = nil, exports: [Export], oldstyle: Bool = false,
         limits: ServerLimits = ServerLimits(), listAllowed: Bool = true,
         attach: @escaping @Sendable (Export) -> String? = { _ in nil }, log: Logger) {
        self.id = id
        self.fd = fd
        self.peer = peer
        self.client = client
        self.listAllowed = listAllowed
        self.attach = attach
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
            if let why = exports[0].spec.policy.refusal(for: client) ?? attach(exports[0]) {
                note("closed before the oldstyle greeting: \(why)")
                return
            }
            guard let export = exports[0].attachOldstyle(peer: peer, note: { note($0) }) else { return }
            if export !== exports[0] { attached = export }
            let e = export.info
            setSendTimeout(limits.handshakeTimeout)
            guard send(OldstyleGreeting(exportSize: e.size, flags: e.flags).encode()) else { return }
            setSendTimeout(0)
            note("export '\(e.name)' via oldstyle greeting (\(e.size) bytes, flags 0x\(hex(UInt64(e.flags.rawValue))))")
            transmission(export, Session())
        } else if let (index, session) = handshake() {
            if let why = attach(exports[index]) {
                note("closed: \(why)")
                return
            }
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
        var machine = ServerHandshake(exports: exports.map { $0.info }, maxOptions: limits.maxOptions,
                                      refusals: exports.map { $0.spec.policy.refusal(for: client) }, listAllowed: listAllowed)
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
        let sender = ReplySender(fd: fd)
        let executor = Executor(export: export, sender: sender, session: session,
                                log: Logger { [id, log] in log("conn \(id): \($0)") })
        let gate = export.gate
        let pool = TransmissionPool(
            reader: RequestReader(fd: fd), log: Logger { [id, log] in log("conn \(id): \($0)") },
            admit: { RequestGate.check($0, on: gate, session: session) },
            refuse: { [self] request, rejection, out in
                note("\(describe(request)): \(rejection.error.name) (\(rejection.reason))")
                executor.refuse(request, rejection.error, message: rejection.reason, out)
            },
            execute: { executor.run($0, into: $1, mayWait: $2) },
            send: { sender.send($0) })
        let (ending, requests) = pool.run()
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
