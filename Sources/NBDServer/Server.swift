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
    public let exports: [Export]
    /// The bound address, e.g. "127.0.0.1:10809".
    public var address: String { listener.text }

    private let listener: Listener
    private let config: ServerConfig
    private let log: Logger
    private let wake: (read: Int32, write: Int32)
    private let monitor = Monitor()
    private var connections: [Int: Connection] = [:]
    private var nextID = 1
    /// Connections refused at the cap since the last log line about it, and
    /// when that line was written (one line per second at most under a flood).
    private var refused = 0
    private var refusedLogged = -1.0

    /// Opens every export and binds the socket; logs "listening on ADDRESS".
    public init(config: ServerConfig, log: Logger) throws(ServerError) {
        var opened: [Export] = []
        for spec in config.exports {
            do { opened.append(try Export(spec: spec)) } catch {
                opened.forEach { $0.backend.close() }
                throw .export(spec, error)
            }
        }
        do { listener = try Listener(config.listen) } catch {
            opened.forEach { $0.backend.close() }
            throw .listen(config.listen, error)
        }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            let e = Errno.current
            listener.close()
            opened.forEach { $0.backend.close() }
            throw .system(SysError("pipe", e, "server wake-up"))
        }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        wake = (fds[0], fds[1])
        exports = opened
        self.config = config
        self.log = log
        for e in opened {
            let description = e.spec.description.isEmpty ? "" : ", \"\(e.spec.description)\""
            log("export '\(e.spec.name)' \(e.spec.path) (\(e.backend.size) bytes, \(e.mode)\(description))")
        }
        log("listening on \(listener.text)\(config.oldstyle ? " (oldstyle protocol)" : "")")
    }

    /// Accepts connections until `stop()`, then shuts them down and returns.
    public func run() {
        accept()
        listener.close()
        shutDownConnections()
        let remaining = monitor.locked { connections.count }
        if remaining == 0 { exports.forEach { $0.backend.close() } }
        _ = Glibc.close(wake.read)
        _ = Glibc.close(wake.write)
        log("stopped")
    }

    /// Asks `run()` to return; safe from any thread.
    public func stop() {
        var byte: UInt8 = 1
        _ = Glibc.write(wake.write, &byte, 1)
    }

    /// Runs until SIGINT or SIGTERM. The signals are blocked in this thread
    /// (and so in every thread it starts) and taken by sigwait(3) on a thread
    /// of their own, which calls `stop()`: no async-signal-safety concerns.
    public func runUntilSignalled() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let waitSet = set
        do {
            try startThread("signal handler") { [self, log] in
                var s = waitSet
                var signal: Int32 = 0
                sigwait(&s, &signal)
                log("\(signal == SIGINT ? "SIGINT" : "SIGTERM"): shutting down")
                stop()
            }
        } catch {
            log("cannot watch for SIGINT/SIGTERM (\(error.description)); stop the server with SIGKILL")
        }
        run()
    }

    private func accept() {
        var fds = [pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
        while true {
            let n = poll(&fds, 2, -1)
            if n < 0 {
                if errno == EINTR { continue }
                log("poll: \(Errno.current.description); stopping")
                return
            }
            if fds[1].revents != 0 { return }
            guard fds[0].revents != 0 else { continue }
            let client: (fd: Int32, peer: String)
            do { client = try listener.accept() } catch {
                // ECONNABORTED and friends concern one client; EMFILE passes.
                log("accept: \(error.errno.description)")
                if error.errno.rawValue == EMFILE || error.errno.rawValue == ENFILE { usleep(100_000) }
                continue
            }
            start(client.fd, peer: client.peer)
        }
    }

    private func start(_ fd: Int32, peer: String) {
        let connection: Connection? = monitor.locked {
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
            let c = Connection(id: nextID, fd: fd, peer: peer, exports: exports, oldstyle: config.oldstyle,
                               limits: config.limits, log: log)
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
