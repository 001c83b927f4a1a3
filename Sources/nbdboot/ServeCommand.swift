// `nbdboot serve`: parse the command line, hand it to NBDServer. Bad input
// exits 2 with a message naming it; a server that cannot start exits 1.
import ArgumentParser
import Glibc
import NBDServer

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve image files over NBD (fixed newstyle; nbd-client, the kernel, libnbd, qemu).",
        discussion: """
            Modern form, any number of exports; the first is also the default export "":
              nbdboot serve --listen 127.0.0.1:10809 \\
                --export "root=/srv/root.img,readonly,desc=Debian 12 root, shared" \\
                --export home=/srv/home.img
            Per station (docs/overlays.md): a copy-on-write overlay over a shared base
            that is never written, and a swap file; a station asks for NAME@STATION
            or is known by its IP address; manage them with `nbdboot overlay`:
              nbdboot serve --export root=/srv/root.img,cow[,overlays=DIR] \\
                --export swap=/srv/swap,swap,size=512M
            Classic nbd-server form, one export named "" on every IPv4 address
            (or on the host given with --listen HOST):
              nbdboot serve 10809 /srv/root.img
            Oldstyle protocol, exactly one export per listener (BusyBox nbd-client without -N):
              nbdboot serve --oldstyle --listen 127.0.0.1:10810 --export root=/srv/root.img
            nbd-server's configuration file ([generic] and one section per export; \
            docs/server.md lists the keys), combined with any --export; SIGHUP re-reads it:
              nbdboot serve --config /etc/nbd-server/config
            Several listeners: --listen 127.0.0.1:10809 --listen [::1]:10809 --listen unix:/run/nbd.sock
            Runs in the foreground and logs one line per event to stderr; prints \
            "nbdboot serve: listening on ADDRESS" once bound; SIGINT/SIGTERM stop it \
            (exit 0). Bad arguments exit 2, a server that cannot start exits 1.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Address to listen on: HOST:PORT, [IPV6]:PORT, PORT or unix:PATH (default 0.0.0.0:10809, or the config file's listenaddr/port/unixsock). Repeatable.", valueName: "address"))
    var listen: [String] = []

    @Option(name: [.customShort("C"), .long], help: ArgumentHelp("nbd-server's configuration file: [generic] and one [NAME] section per export (docs/server.md). SIGHUP re-reads it.", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("An export: NAME=PATH, optionally followed by ,readonly (or ,cow[,overlays=DIR] for per-station copy-on-write; NAME=DIR,swap,size=N for per-station swap files) and, last, ,desc=TEXT (TEXT runs to the end, commas included; clients see it in NBD_INFO_DESCRIPTION and the export list). Repeatable.", valueName: "name=path[,options][,desc=text]"))
    var export: [String] = []

    @Flag(name: .long, help: "Speak the oldstyle protocol (152-byte greeting, no options), as the original nbd-server did and BusyBox's nbd-client without -N expects. Exactly one export.")
    var oldstyle = false

    @Option(name: .long, help: ArgumentHelp("Seconds a client has from connecting to the end of the handshake; a slower one is closed (default 30).", valueName: "seconds"))
    var handshakeTimeout: Double?

    @Option(name: .long, help: ArgumentHelp("Connections open at once; further ones are closed right after accept, with a log line (default 1024).", valueName: "n"))
    var maxConnections: Int?

    @Option(name: .long, help: ArgumentHelp("Connections open at once from one client IP address; further ones are closed right after accept (default: no cap; Unix-socket clients are not counted).", valueName: "n"))
    var maxConnectionsPerClient: Int?

    @Argument(help: ArgumentHelp("Classic form: PORT FILE.", valueName: "port file"))
    var classic: [String] = []

    func run() throws {
        let loaded: LoadedConfig
        do { loaded = try makeConfig() } catch {
            fail(error.description, code: 2)
        }
        loaded.warnings.forEach { Logger.stderr($0) }
        let server: Server
        do { server = try Server(config: loaded.config, log: .stderr) } catch {
            fail(error.description, code: error.isUsageError ? 2 : 1)
        }
        if let path = config {
            let commandLine = try? commandLineSettings()
            server.reloadSource = { () throws(ConfigError) -> LoadedConfig in
                try LoadedConfig.load(path, commandLine: commandLine ?? CommandLineSettings())
            }
        }
        do { try dropPrivileges(user: loaded.user, group: loaded.group) } catch {
            fail(error.description, code: 1)
        }
        server.runUntilSignalled()
    }

    /// The command line's own settings (exports, listeners, limits).
    private func commandLineSettings() throws(ConfigError) -> CommandLineSettings {
        var c = CommandLineSettings()
        for text in listen { c.listen.append(try ListenAddress.parse(text)) }
        for text in export { c.exports.append(try ExportSpec.parse(text)) }
        c.handshakeTimeout = handshakeTimeout
        c.maxConnections = maxConnections
        c.maxPerClient = maxConnectionsPerClient
        c.oldstyle = oldstyle
        return c
    }

    private func makeConfig() throws(ConfigError) -> LoadedConfig {
        if classic.isEmpty {
            let c = try commandLineSettings()
            if let config { return try LoadedConfig.load(config, commandLine: c) }
            return try LoadedConfig.compose(file: nil, commandLine: c)
        }
        guard classic.count == 2 else {
            throw ConfigError("classic form takes exactly PORT FILE, got \(classic.count) argument(s) '\(classic.joined(separator: " "))'; or use --listen HOST:PORT --export NAME=PATH")
        }
        guard export.isEmpty, config == nil else {
            throw ConfigError("use either the classic form PORT FILE or --export NAME=PATH / --config FILE, not both")
        }
        let port = try ListenAddress.parsePort(classic[0], input: "PORT '\(classic[0])'")
        var host = "0.0.0.0"
        if listen.count > 1 {
            throw ConfigError("--listen is given \(listen.count) times; with the classic form PORT FILE give at most one host")
        }
        if let listen = listen.first {
            // With the classic form, --listen only chooses the address: HOST or [IPV6].
            let bracketed = listen.hasPrefix("[") && listen.hasSuffix("]")
            guard !listen.isEmpty, bracketed || !listen.contains(":") else {
                throw ConfigError("--listen '\(listen)': with the classic form PORT FILE give only the host (e.g. --listen 127.0.0.1 or --listen [::1]); the port is PORT")
            }
            host = bracketed ? String(listen.dropFirst().dropLast()) : listen
        }
        var c = CommandLineSettings()
        c.listen = [.tcp(host: host, port: port)]
        c.exports = [ExportSpec(name: "", path: classic[1])]
        c.handshakeTimeout = handshakeTimeout
        c.maxConnections = maxConnections
        c.maxPerClient = maxConnectionsPerClient
        c.oldstyle = oldstyle
        return try LoadedConfig.compose(file: nil, commandLine: c)
    }

    /// nbd-server's `user` and `group`: as root, switch to them once the
    /// sockets are bound and the exports open (setgroups, setgid, setuid);
    /// as anyone else, log that they are ignored.
    private func dropPrivileges(user: String?, group: String?) throws(ConfigError) {
        guard user != nil || group != nil else { return }
        guard getuid() == 0 else {
            Logger.stderr("warning: user/group in the configuration file are ignored: the server is not running as root (it runs as uid \(getuid()))")
            return
        }
        var gid: gid_t?
        var uid: uid_t?
        if let group {
            guard let g = getgrnam(group) else { throw ConfigError("group = \(group): no such group; fix the name in [generic]") }
            gid = g.pointee.gr_gid
        }
        if let user {
            guard let p = getpwnam(user) else { throw ConfigError("user = \(user): no such user; fix the name in [generic]") }
            uid = p.pointee.pw_uid
            if gid == nil { gid = p.pointee.pw_gid }
        }
        if let gid {
            var list = [gid]
            guard setgroups(1, &list) == 0, setgid(gid) == 0 else {
                throw ConfigError("cannot switch to group \(gid): errno \(errno)")
            }
        }
        if let uid {
            guard setuid(uid) == 0 else { throw ConfigError("cannot switch to user \(uid): errno \(errno)") }
        }
        Logger.stderr("running as uid \(getuid()) gid \(getgid()) (user/group from the configuration file)")
    }

    private func fail(_ message: String, code: Int32) -> Never {
        Logger.stderr(message)
        Glibc.exit(code)
    }
}
