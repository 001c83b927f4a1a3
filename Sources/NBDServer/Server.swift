// The server: opens the exports, binds the listening socket, and accepts
// connections until stopped, each on its own thread (Connection.swift).
// Stopping closes the listener, stops reading on every connection so their
// in-flight requests finish, and waits (bounded) for them to close.
//
//   let server = try Server(config: config, log: .stderr)   // opens, binds
//   server.runUntilSignalled()                               // SIGINT/SIGTERM stop it
import Glibc
import LinuxSys
import NBDWire

/// Why the server could not start: names the input and what to do.
public enum ServerError: Error, CustomStringConvertible {
    case export(ExportSpec, SysError)
    case listen(ListenAddress, SysError)
    case system(SysError)

    public var description: String {
        switch self {
        case .export(let spec, let e):
            if let message = spec.perStationOpenError(e) { return message }
            return "cannot open export '\(spec.name)' file \(spec.path): \(e.errno.description) (\(e.call)); check the PATH in --export NAME=PATH\(spec.readOnly ? "" : ", or add ,readonly if the file is not writable")"
        case .listen(let address, let e):
            let hint = e.errno.rawValue == EADDRINUSE ? "; another server holds this port: stop it or pick another with --listen"
                : e.errno.rawValue == EACCES ? "; ports below 1024 need root: pick a higher one with --listen" : ""
            return "cannot listen on \(address): \(e.description)\(hint)"
        case .system(let e):
            return e.description
        }
    }

    /// True when the cause is the user's input (exit 2), not the system.
    public var isUsageError: Bool {
        if case .export = self { return true }
        return false
    }
}

public final class Server: @unchecked Sendable {
    /// The exports new connections see (a SIGHUP reload may change them).
    public var exports: [Export] { table.snapshot }
    /// The first bound address, e.g. "127.0.0.1:10809".
    public var address: String { listeners[0].text }
    /// Every bound address.
    public var addresses: [String] { listeners.map { $0.text } }

    let table: ExportTable
    private let listeners: [Listener]
    /// Read and replaced (by a reload) under `monitor`.
    var config: ServerConfig
    let log: Logger
    private let wake: (read: Int32, write: Int32)
    let monitor = Monitor()
    var connections: [Int: Connection] = [:]
    /// Re-reads the configuration on SIGHUP (Reload.swift); nil: SIGHUP only logs.
    public var reloadSource: (@Sendable () throws(ConfigError) -> LoadedConfig)?
    private var nextID = 1
    /// Connections refused at the cap since the last log line about it, and
    /// when that line was written (one line per second at most under a flood).
    /// Rate limit of the per-client refusal log line (ConnectionLimits.swift).
    var perClientNote = RateLimitedNote()
    private var refused = 0
    private var refusedLogged = -1.0

    /// Opens every export and binds every listening socket; logs "listening
    /// on ADDRESS" for each.
    public init(config: ServerConfig, log: Logger) throws(ServerError) {
        var opened: [Export] = []
        for spec in config.exports {
            do { opened.append(try Export(spec: spec)) } catch {
                opened.forEach { $0.backend.close() }
                throw .export(spec, error)
            }
        }
        var bound: [Listener] = []
        for address in config.listeners {
            do { bound.append(try Listener(address)) } catch {
                bound.forEach { $0.close() }
                opened.forEach { $0.backend.close() }
                throw .listen(address, error)
            }
        }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            let e = Errno.current
            bound.forEach { $0.close() }
            opened.forEach { $0.backend.close() }
            throw .system(SysError("pipe", e, "server wake-up"))
        }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        wake = (fds[0], fds[1])
        table = ExportTable(opened)
        listeners = bound
        self.config = config
        self.log = log
        opened.forEach { Server.logExport($0, log) }
        for l in bound { log("listening on \(l.text)\(config.oldstyle ? " (oldstyle protocol)" : "")") }
    }

    /// "export 'root' /srv/root.img (8388608 bytes, read-only, "Debian 12")".
    static func logExport(_ e: Export, _ log: Logger) {
        let description = e.spec.description.isEmpty ? "" : ", \"\(e.spec.description)\""
        let allow = e.spec.policy.allow.map { ", allow list \($0.source) (\($0.ranges.count) entries)" } ?? ""
        log("export '\(e.spec.name)' \(e.spec.path) (\(e.backend.size) bytes, \(e.mode)\(description)\(allow))")
    }

    /// Accepts connections until `stop()`, then shuts them down and returns.
    public func run() {
        // A peer that vanishes must cost its connection, not the process:
        // send(2) says MSG_NOSIGNAL, but sendfile(2) has no such flag.
        signal(SIGPIPE, SIG_IGN)
        accept()
        listeners.forEach { $0.close() }
        shutDownConnections()
        let remaining = monitor.locked { connections.count }
        if remaining == 0 { table.closeAll() }
        _ = Glibc.close(wake.read)
        _ = Glibc.close(wake.write)
        log("stopped")
    }

    /// Asks `run()` to return; safe from any thread.
    public func stop() {
        var byte: UInt8 = 1
        _ = Glibc.write(wake.write, &byte, 1)
    }

    /// Runs until SIGINT or SIGTERM; SIGHUP reloads (Reload.swift). The
    /// signals are blocked in this thread (and so in every thread it starts)
    /// and taken by sigwait(3) on a thread of their own, which calls `stop()`
    /// or `reload()`: no async-signal-safety concerns.
    public func runUntilSignalled() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGHUP)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let waitSet = set
        do {
            try startThread("signal handler") { [self, log] in
                var s = waitSet
                var signal: Int32 = 0
                while true {
                    sigwait(&s, &signal)
                    if signal == SIGHUP {
                        reload()
                        continue
                    }
                    break
                }
                log("\(signal == SIGINT ? "SIGINT" : "SIGTERM"): shutting down")
                stop()
            }
        } catch {
            log("cannot watch for SIGINT/SIGTERM (\(error.description)); stop the server with SIGKILL")
        }
        run()
    }

    /// poll(2) on every listener and the wake-up pipe (last).
    private func accept() {
        var fds = listeners.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            + [pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
        while true {
            let n = poll(&fds, nfds_t(fds.count), -1)
            if n < 0 {
                if errno == EINTR { continue }
                log("poll: \(Errno.current.description); stopping")
                return
            }
            if fds[fds.count - 1].revents != 0 { return }
            for (i, listener) in listeners.enumerated() where fds[i].revents != 0 {
                let client: (fd: Int32, peer: String, client: IPAddress?)
                do { client = try listener.accept() } catch {
                    // ECONNABORTED and friends concern one client; EMFILE passes.
                    log("accept: \(error.errno.description)")
                    if error.errno.rawValue == EMFILE || error.errno.rawValue == ENFILE { usleep(100_000) }
                    continue
                }
                start(client.fd, peer: client.peer, client: client.client)
            }
        }
    }

    private func start(_ fd: Int32, peer: String, client: IPAddress?) {
        let connection: Connection? = monitor.locked {
            if let why = perClientRefusal(client) {
                refusedPerClient(peer, why)
                return nil
            }
            if connections.count >= config.limits.maxConnections {
                refused += 1
                let now = monotonicSeconds()
                if now - refusedLogged >= 1 {
                    log("refusing connection from \(peer): \(connections.count) connections are open, the limit set by --max-connections (\(config.limits.maxConnections)); \(refused) refused since the last such line")
                    refusedLogged = now
                    refused = 0
                }
                return nil
            }
            let id = nextID
            let c = Connection(id: id, fd: fd, peer: peer, client: client, exports: table.snapshot, oldstyle: config.oldstyle,
                               limits: config.limits, listAllowed: config.listAllowed,
                               attach: { [table] in table.attach(id, $0, client: client) }, log: log)
            nextID += 1
            connections[c.id] = c
            return c
        }
        guard let connection else {
            _ = Glibc.close(fd)
            return
        }
        log("conn \(connection.id) from \(peer)")
        do {
            try startThread("connection \(connection.id)") { [self] in
                connection.run()
                table.detach(connection.id)
                monitor.locked {
                    _ = Glibc.close(connection.fd)
                    connections[connection.id] = nil
                    monitor.broadcast()
                }
            }
        } catch {
            log("conn \(connection.id): \(error.description); closing it")
            _ = Glibc.close(fd)
            monitor.locked { connections[connection.id] = nil }
        }
    }

    /// Stop reading on every connection; after 5 s cut them off; wait 5 s more.
    private func shutDownConnections() {
        monitor.locked {
            if connections.isEmpty { return }
            log("closing \(connections.count) connection(s)")
            connections.values.forEach { $0.stopReading() }
            for _ in 0..<50 where !connections.isEmpty { monitor.wait(seconds: 0.1) }
            connections.values.forEach { $0.abort() }
            for _ in 0..<50 where !connections.isEmpty { monitor.wait(seconds: 0.1) }
            if !connections.isEmpty { log("\(connections.count) connection(s) did not close in time") }
        }
    }
}
