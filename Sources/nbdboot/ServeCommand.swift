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
            Runs in the foreground and logs one line per event to stderr; prints \
            "nbdboot serve: listening on ADDRESS" once bound; SIGINT/SIGTERM stop it \
            (exit 0). Bad arguments exit 2, a server that cannot start exits 1.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Address to listen on: HOST:PORT, [IPV6]:PORT, PORT or unix:PATH (default 0.0.0.0:10809).", valueName: "address"))
    var listen: String?

    @Option(name: .long, help: ArgumentHelp("An export: NAME=PATH, optionally followed by ,readonly (or ,cow[,overlays=DIR] for per-station copy-on-write; NAME=DIR,swap,size=N for per-station swap files) and, last, ,desc=TEXT (TEXT runs to the end, commas included; clients see it in NBD_INFO_DESCRIPTION and the export list). Repeatable.", valueName: "name=path[,options][,desc=text]"))
    var export: [String] = []

    @Flag(name: .long, help: "Speak the oldstyle protocol (152-byte greeting, no options), as the original nbd-server did and BusyBox's nbd-client without -N expects. Exactly one export.")
    var oldstyle = false

    @Option(name: .long, help: ArgumentHelp("Seconds a client has from connecting to the end of the handshake; a slower one is closed.", valueName: "seconds"))
    var handshakeTimeout: Double = 30

    @Option(name: .long, help: ArgumentHelp("Connections open at once; further ones are closed right after accept, with a log line.", valueName: "n"))
    var maxConnections: Int = 1024

    @Argument(help: ArgumentHelp("Classic form: PORT FILE.", valueName: "port file"))
    var classic: [String] = []

    func run() throws {
        let config: ServerConfig
        do { config = try makeConfig() } catch {
            fail(error.description, code: 2)
        }
        let server: Server
        do { server = try Server(config: config, log: .stderr) } catch {
            fail(error.description, code: error.isUsageError ? 2 : 1)
        }
        server.runUntilSignalled()
    }

    private var limits: ServerLimits {
        ServerLimits(handshakeTimeout: handshakeTimeout, maxConnections: maxConnections)
    }

    private func makeConfig() throws(ConfigError) -> ServerConfig {
        if classic.isEmpty {
            let address = try listen.map { (text) throws(ConfigError) in try ListenAddress.parse(text) } ?? .default
            var specs: [ExportSpec] = []
            for text in export { specs.append(try ExportSpec.parse(text)) }
            return try ServerConfig(listen: address, exports: specs, limits: limits, oldstyle: oldstyle)
        }
        guard classic.count == 2 else {
            throw ConfigError("classic form takes exactly PORT FILE, got \(classic.count) argument(s) '\(classic.joined(separator: " "))'; or use --listen HOST:PORT --export NAME=PATH")
        }
        guard export.isEmpty else {
            throw ConfigError("use either the classic form PORT FILE or --export NAME=PATH, not both")
        }
        let port = try ListenAddress.parsePort(classic[0], input: "PORT '\(classic[0])'")
        var host = "0.0.0.0"
        if let listen {
            // With the classic form, --listen only chooses the address: HOST or [IPV6].
            let bracketed = listen.hasPrefix("[") && listen.hasSuffix("]")
            guard !listen.isEmpty, bracketed || !listen.contains(":") else {
                throw ConfigError("--listen '\(listen)': with the classic form PORT FILE give only the host (e.g. --listen 127.0.0.1 or --listen [::1]); the port is PORT")
            }
            host = bracketed ? String(listen.dropFirst().dropLast()) : listen
        }
        return try ServerConfig(listen: .tcp(host: host, port: port), exports: [ExportSpec(name: "", path: classic[1])],
                                limits: limits, oldstyle: oldstyle)
    }

    private func fail(_ message: String, code: Int32) -> Never {
        Logger.stderr(message)
        Glibc.exit(code)
    }
}
