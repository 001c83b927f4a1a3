// The nbd-client command line, parsed the way Debian's nbd-client 3.24 parses
// it (`getopt_long_only` over "-b:B:c:d:gH:hlnN:PpRSst:uVxA:F:K:L" plus the
// 3.27 additions -C/-i/-T): long options take one or two dashes and may be
// abbreviated to a unique prefix; a single dash followed by one letter of the
// short option string is that short option; non-option arguments may appear
// anywhere and are taken in order as HOST, [PORT], DEVICE. Pure code: the
// static client's main() feeds it argv and acts on the result.
#if canImport(NBDWire)
import NBDWire
#endif

/// What to do once the command line is understood.
public enum ClientCommand: Equatable {
    /// `nbd-client HOST [PORT] /dev/nbdN [options]` (or a URI for HOST):
    /// negotiate and hand the socket to the kernel.
    case connect(ConnectOptions)
    /// `nbd-client nbdN [options]`: the connection is the nbdtab entry for
    /// nbdN (read by main from /etc/nbdtab), with the command line's options
    /// on top (`overrides`; see NBDTabEntry.merged).
    case connectFromTab(device: NBDDevice, overrides: ConnectOptions, connectionsGiven: Bool)
    /// `nbd-client -d /dev/nbdN`.
    case disconnect(device: NBDDevice, noNetlink: Bool)
    /// `nbd-client -c /dev/nbdN`: exit 0 and print the pid when connected, 1 when not.
    case check(device: NBDDevice)
    /// `nbd-client -l HOST [PORT]` (or `-l -u PATH`): print the server's exports.
    case list(server: ServerAddress)
    /// `-h`/`--help`.
    case help
    /// `-V`/`--version`.
    case version
}

/// A parsed command line: the command plus the options that act before it runs.
public struct Invocation: Equatable {
    public var command: ClientCommand
    /// `-systemd-mark`: make argv[0] start with '@' so systemd's shutdown and
    /// switch_root killing spree leave this process alone.
    public var systemdMark: Bool
}

/// Where the NBD server is: TCP host and port, or a Unix socket path (`-u`).
public enum ServerAddress: Equatable {
    case tcp(host: String, port: UInt16)
    case unix(path: String)

    /// "HOST:PORT" (IPv6 in brackets) or the socket path.
    public var text: String {
        switch self {
        case .tcp(let host, let port):
            if host.contains(":") && !host.hasPrefix("[") { return "[\(host)]:\(port)" }
            return "\(host):\(port)"
        case .unix(let path): return path
        }
    }
}

/// A /dev/nbdN device, by its index N.
public struct NBDDevice: Equatable {
    public var index: UInt32
    public init(index: UInt32) { self.index = index }

    /// "/dev/nbdN".
    public var path: String { "/dev/nbd\(index)" }
    /// "nbdN", the name under /sys/block.
    public var name: String { "nbd\(index)" }

    /// Accepts "/dev/nbdN" or "nbdN" (what nbd-client and its nbdtab accept).
    public init?(parsing text: String) {
        var rest = Substring(text)
        if rest.hasPrefix("/dev/") { rest = rest.dropFirst(5) }
        guard rest.hasPrefix("nbd") else { return nil }
        rest = rest.dropFirst(3)
        guard let n = parseDecimal(rest, max: 1 << 20) else { return nil }
        index = UInt32(n)
    }
}

/// Everything `nbd-client HOST [PORT] DEVICE` can be told.
public struct ConnectOptions: Equatable {
    public var server: ServerAddress
    public var device: NBDDevice
    /// `-N`/`-name`; "" asks for the server's default export.
    public var exportName: String = ""
    /// Whether `-N` was given (3.24 warns when it was not).
    public var exportNameGiven = false
    /// `-b`/`-block-size` (or `bs=`), in bytes; nil = 512 or the server's minimum.
    public var blockSize: UInt32? = nil
    /// `-B`/`-size`: use this size instead of the negotiated one.
    public var sizeOverride: UInt64? = nil
    /// `-t`/`-timeout` (or `timeout=`), seconds.
    public var timeout: UInt64? = nil
    /// `-T`/`-dead-timeout`, seconds the kernel waits for a reconnect.
    public var deadTimeout: UInt64? = nil
    /// `-C`/`-connections`: how many sockets (each with its own handshake).
    public var connections: Int = 1
    /// `-i`/`-identifier`: NBD_ATTR_BACKEND_IDENTIFIER; nil = "HOST:PORT/NAME".
    public var identifier: String? = nil
    public var persist = false
    public var swap = false
    public var noFork = false
    public var noNetlink = false
    public var readOnly = false
    /// `-g`/`-no-optgo`: use NBD_OPT_EXPORT_NAME, not NBD_OPT_GO.
    public var noOptGo = false
    /// `-P`/`-preinit`: no handshake at all (needs `-B`).
    public var preinit = false

    public init(server: ServerAddress, device: NBDDevice) {
        self.server = server
        self.device = device
    }

    /// The backend identifier given to the kernel: `-i`, else "HOST:PORT/NAME".
    public var backendIdentifier: String { identifier ?? "\(server.text)/\(exportName)" }
}

/// A command line nbd-client cannot act on. `message` names the input at fault.
public struct ArgumentError: Error, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// The synopsis printed with every argument error.
public let usageSynopsis = """
Usage: nbd-client [options] HOST [PORT] /dev/nbdN -N NAME
       nbd-client [options] -u SOCKET-PATH /dev/nbdN -N NAME
       nbd-client [options] nbd://HOST[:PORT]/NAME /dev/nbdN
       nbd-client [options] nbdN            (the /etc/nbdtab entry for nbdN)
       nbd-client -d /dev/nbdN
       nbd-client -c /dev/nbdN
       nbd-client -l HOST [PORT]
Run 'nbd-client -h' for every option.
"""

/// The full help text (`-h`): every option this client accepts.
public let helpText = """
nbd-client: attach a Network Block Device export to /dev/nbdN (compatible with nbd-client 3.24).
Usage: nbd-client [options] HOST [PORT] /dev/nbdN -N NAME
       nbd-client [options] -u SOCKET-PATH /dev/nbdN -N NAME
       nbd-client [options] URI /dev/nbdN
       nbd-client [options] nbdN    connect the /etc/nbdtab entry for nbdN (nbdtab(5) syntax)
       nbd-client -d /dev/nbdN      disconnect the device
       nbd-client -c /dev/nbdN      print the pid and exit 0 if connected, exit 1 if not
       nbd-client -l HOST [PORT]    list the server's exports (also -l URI, -l -u PATH)
PORT defaults to 10809; HOST may be a name, an IPv4 or an IPv6 address ([::1] or ::1).
URI: nbd://HOST[:PORT]/NAME, nbd://[IPV6]:PORT/NAME, nbd+unix:///NAME?socket=PATH.
Long options take one or two dashes and may be abbreviated.
Options:
  -N, -name NAME           export to attach (default: the server's default export)
  -b, -block-size N        block size in bytes: 512, 1024, 2048 or 4096 (default 512);
                           raised to the server's NBD_INFO_BLOCK_SIZE minimum, and the
                           largest request is capped at its maximum payload; bs=N works too
  -t, -timeout SEC         request timeout in seconds (-persist makes it 30 unless given);
                           the form timeout=SEC also works
  -T, -dead-timeout SEC    seconds the kernel waits for a reconnect when every socket is
                           dead (netlink; -persist makes it 600 unless given)
  -C, -connections N       open N connections; only when the server advertises
                           NBD_FLAG_CAN_MULTI_CONN (else an error says so)
  -i, -identifier ID       backend identifier for the kernel (default HOST:PORT/NAME)
  -B, -size BYTES          use this export size instead of the negotiated one
  -P, -preinit             skip the handshake (the server is pre-negotiated; needs -B)
  -R, -readonly            attach read-only
  -g, -no-optgo            negotiate with NBD_OPT_EXPORT_NAME instead of NBD_OPT_GO
  -u, -unix                HOST is the path of a Unix socket
  -L, -nonetlink           configure the device with ioctls (a process stays in NBD_DO_IT)
  -p, -persist             stay in the background and reconnect when the server goes away
  -s, -swap                swap-aware: the resident process is locked in memory
                           (mlockall), reconnects without allocating, OOM-exempt;
                           -persist does this by itself once the system swaps
  -n, -nofork              ioctl mode: stay in the foreground inside NBD_DO_IT
  -systemd-mark            start argv[0] with '@' so systemd's shutdown spares this process
  -d, -disconnect DEVICE   disconnect DEVICE
  -c, -check DEVICE        check whether DEVICE is connected
  -l, -list                list the exports of HOST [PORT]
  -V, -version             print the version
  -h, -help                print this help
TLS (-certfile, -keyfile, -cacertfile, -tlshostname, -enable-tls, -priority) is not
implemented; with swap it would be prone to deadlock anyway (a user-space TLS proxy
defeats the kernel's memalloc socket).
Exit status: 0 done (-c: connected, its pid printed); 1 failure: bad arguments,
unreachable or refusing server, kernel refusal (-c: not connected); 2 -c could not tell.
"""

/// One option of the table below.
struct OptionSpec {
    var long: String
    /// The short letter, or nil when the option is long only.
    var short: Character?
    var takesArgument: Bool
}

/// The options, long names as 3.24 (and 3.27 for -C/-i/-T) spell them.
let optionTable: [OptionSpec] = [
    OptionSpec(long: "block-size", short: "b", takesArgument: true),
    OptionSpec(long: "size", short: "B", takesArgument: true),
    OptionSpec(long: "check", short: "c", takesArgument: true),
    OptionSpec(long: "connections", short: "C", takesArgument: true),
    OptionSpec(long: "disconnect", short: "d", takesArgument: true),
    OptionSpec(long: "no-optgo", short: "g", takesArgument: false),
    OptionSpec(long: "help", short: "h", takesArgument: false),
    OptionSpec(long: "identifier", short: "i", takesArgument: true),
    OptionSpec(long: "list", short: "l", takesArgument: false),
    OptionSpec(long: "name", short: "N", takesArgument: true),
    OptionSpec(long: "nofork", short: "n", takesArgument: false),
    OptionSpec(long: "nonetlink", short: "L", takesArgument: false),
    OptionSpec(long: "persist", short: "p", takesArgument: false),
    OptionSpec(long: "preinit", short: "P", takesArgument: false),
    OptionSpec(long: "readonly", short: "R", takesArgument: false),
    OptionSpec(long: "swap", short: "s", takesArgument: false),
    OptionSpec(long: "systemd-mark", short: nil, takesArgument: false),
    OptionSpec(long: "timeout", short: "t", takesArgument: true),
    OptionSpec(long: "dead-timeout", short: "T", takesArgument: true),
    OptionSpec(long: "unix", short: "u", takesArgument: false),
    OptionSpec(long: "version", short: "V", takesArgument: false),
    // TLS: recognised so the error says what is missing, not "unknown option".
    OptionSpec(long: "certfile", short: "F", takesArgument: true),
    OptionSpec(long: "keyfile", short: "K", takesArgument: true),
    OptionSpec(long: "cacertfile", short: "A", takesArgument: true),
    OptionSpec(long: "tlshostname", short: "H", takesArgument: true),
    OptionSpec(long: "enable-tls", short: "x", takesArgument: false),
    OptionSpec(long: "priority", short: "y", takesArgument: true),
]

/// Parses the arguments after argv[0].
public func parseArguments(_ args: [String]) throws(ArgumentError) -> Invocation {
    var state = ParseState()
    var i = 0
    var onlyPositional = false
    while i < args.count {
        let arg = args[i]
        i += 1
        if onlyPositional || arg == "-" || !arg.hasPrefix("-") {
            try state.positional(arg)
            continue
        }
        if arg == "--" { onlyPositional = true; continue }
        let doubleDash = arg.hasPrefix("--")
        let body = String(arg.dropFirst(doubleDash ? 2 : 1))
        // getopt_long_only: "-X" with X a short option is that short option;
        // anything else is tried as a long option first.
        if !doubleDash, body.count == 1, let spec = shortOption(body.first) {
            let value = spec.takesArgument ? try nextValue(args, &i, arg) : nil
            try state.apply(spec, written: arg, value: value)
            continue
        }
        var name = body
        var inlineValue: String? = nil
        if let eq = body.firstIndex(of: "=") {
            name = String(body[..<eq])
            inlineValue = String(body[body.index(after: eq)...])
        }
        if let spec = try longOption(name, written: arg, allowShortFallback: !doubleDash) {
            if !spec.takesArgument && inlineValue != nil {
                throw ArgumentError("option '\(arg)' does not take a value")
            }
            var value: String? = nil
            if spec.takesArgument {
                if let inlineValue { value = inlineValue } else { value = try nextValue(args, &i, arg) }
            }
            try state.apply(spec, written: arg, value: value)
            continue
        }
        // A cluster of short options, e.g. "-Rn" or "-Nexport".
        var rest = Substring(body)
        while let c = rest.first {
            rest = rest.dropFirst()
            guard let spec = shortOption(c) else { throw ArgumentError("unknown option '\(arg)'") }
            if spec.takesArgument {
                let value = rest.isEmpty ? try nextValue(args, &i, arg) : String(rest)
                try state.apply(spec, written: arg, value: value)
                break
            }
            try state.apply(spec, written: arg, value: nil)
        }
    }
    return try state.finish()
}

/// The option whose short letter is `c`.
func shortOption(_ c: Character?) -> OptionSpec? {
    guard let c else { return nil }
    for spec in optionTable where spec.short == c { return spec }
    return nil
}

/// The argument after an option that needs one.
func nextValue(_ args: [String], _ i: inout Int, _ option: String) throws(ArgumentError) -> String {
    guard i < args.count else { throw ArgumentError("option '\(option)' needs a value") }
    defer { i += 1 }
    return args[i]
}

/// Finds a long option by exact name or unique prefix, as getopt_long does.
/// Returns nil when nothing matches and a single-dash word may still be short options.
func longOption(_ name: String, written: String, allowShortFallback: Bool) throws(ArgumentError) -> OptionSpec? {
    for spec in optionTable where spec.long == name { return spec }
    var candidates: [OptionSpec] = []
    if !name.isEmpty { for spec in optionTable where spec.long.hasPrefix(name) { candidates.append(spec) } }
    if candidates.count == 1 { return candidates[0] }
    if candidates.count > 1 {
        var names = ""
        for c in candidates {
            if !names.isEmpty { names += ", " }
            names += "-" + c.long
        }
        throw ArgumentError("option '\(written)' is ambiguous (could be \(names))")
    }
    if allowShortFallback, shortOption(name.first) != nil { return nil }
    throw ArgumentError("unknown option '\(written)'")
}

/// Parses a decimal number with no sign, at most `max`.
func parseDecimal(_ text: Substring, max: UInt64) -> UInt64? {
    guard !text.isEmpty, text.utf8.count <= 20 else { return nil }
    var v: UInt64 = 0
    for u in text.utf8 {
        guard u >= 48 && u <= 57 else { return nil }
        let (m, o1) = v.multipliedReportingOverflow(by: 10)
        let (s, o2) = m.addingReportingOverflow(UInt64(u - 48))
        if o1 || o2 || s > max { return nil }
        v = s
    }
    return v
}

/// Accumulates options and positional arguments, then checks them together.
struct ParseState {
    var positionals: [String] = []
    var options = ConnectOptions(server: .tcp(host: "", port: Limits.defaultPort), device: NBDDevice(index: 0))
    var portGiven: UInt16? = nil
    var deviceText: String? = nil
    var unix = false
    var list = false
    var check: String? = nil
    var disconnect: String? = nil
    var help = false
    var version = false
    var systemdMark = false
    var connectionsGiven = false

    /// HOST, then PORT if numeric (else it is the device, as in 3.24), then DEVICE.
    mutating func positional(_ arg: String) throws(ArgumentError) {
        // The old "bs=N" / "timeout=N" forms.
        if let eq = arg.firstIndex(of: "="), !arg.hasPrefix("/"), !NBDURI.looksLikeURI(arg) {
            let key = String(arg[..<eq])
            let value = String(arg[arg.index(after: eq)...])
            switch key {
            case "bs": options.blockSize = try blockSize(value, arg); return
            case "timeout": options.timeout = try seconds(value, arg); return
            default: throw ArgumentError("unknown setting '\(arg)' (only bs=N and timeout=SEC exist)")
            }
        }
        switch positionals.count {
        case 0:
            positionals.append(arg)
        case 1:
            if let first = arg.utf8.first, first >= 48 && first <= 57 {
                guard let p = parseDecimal(Substring(arg), max: 65535), p > 0 else {
                    throw ArgumentError("port '\(arg)' is not a number from 1 to 65535")
                }
                portGiven = UInt16(p)
                positionals.append(arg)
            } else {
                positionals.append("")
                deviceText = arg
                positionals.append(arg)
            }
        case 2:
            deviceText = arg
            positionals.append(arg)
        default:
            throw ArgumentError("too many arguments: '\(arg)' comes after HOST, PORT and DEVICE")
        }
    }

    mutating func apply(_ spec: OptionSpec, written: String, value: String?) throws(ArgumentError) {
        let v = value ?? ""
        switch spec.long {
        case "block-size": options.blockSize = try blockSize(v, written)
        case "size":
            guard let n = parseDecimal(Substring(v), max: UInt64(Int64.max)), n > 0 else {
                throw ArgumentError("\(written) '\(v)': the size must be a positive number of bytes")
            }
            options.sizeOverride = n
        case "check": check = v
        case "connections":
            guard let n = parseDecimal(Substring(v), max: 64), n > 0 else {
                throw ArgumentError("\(written) '\(v)': the number of connections must be 1 to 64")
            }
            options.connections = Int(n)
            connectionsGiven = true
        case "disconnect": disconnect = v
        case "no-optgo": options.noOptGo = true
        case "help": help = true
        case "identifier":
            guard !v.isEmpty else { throw ArgumentError("\(written): the identifier must not be empty") }
            options.identifier = v
        case "list": list = true
        case "name": options.exportName = v; options.exportNameGiven = true
        case "nofork": options.noFork = true
        case "nonetlink": options.noNetlink = true
        case "persist": options.persist = true
        case "preinit": options.preinit = true
        case "readonly": options.readOnly = true
        case "swap": options.swap = true
        case "systemd-mark": systemdMark = true
        case "timeout": options.timeout = try seconds(v, written)
        case "dead-timeout": options.deadTimeout = try seconds(v, written)
        case "unix": unix = true
        case "version": version = true
        default:
            throw ArgumentError("option '\(written)': TLS is not implemented by this nbd-client (use a trusted network; and TLS with swap is prone to deadlock: the user-space TLS proxy defeats the kernel's memalloc socket)")
        }
    }

    func blockSize(_ v: String, _ written: String) throws(ArgumentError) -> UInt32 {
        guard let n = parseDecimal(Substring(v), max: 4096), n == 512 || n == 1024 || n == 2048 || n == 4096 else {
            throw ArgumentError("block size '\(v)' (\(written)): must be 512, 1024, 2048 or 4096")
        }
        return UInt32(n)
    }

    func seconds(_ v: String, _ written: String) throws(ArgumentError) -> UInt64 {
        guard let n = parseDecimal(Substring(v), max: 1 << 31) else {
            throw ArgumentError("\(written) '\(v)': expected a number of seconds")
        }
        return n
    }

    func device(_ text: String) throws(ArgumentError) -> NBDDevice {
        guard let d = NBDDevice(parsing: text) else {
            throw ArgumentError("'\(text)' is not an nbd device: expected /dev/nbdN (N a number)")
        }
        return d
    }

    func finish() throws(ArgumentError) -> Invocation {
        let mark = systemdMark
        func done(_ c: ClientCommand) -> Invocation { Invocation(command: c, systemdMark: mark) }
        if help { return done(.help) }
        if version { return done(.version) }
        if let check { return done(.check(device: try device(check))) }
        if let disconnect { return done(.disconnect(device: try device(disconnect), noNetlink: options.noNetlink)) }
        guard let host = positionals.first, !host.isEmpty else {
            throw ArgumentError(unix ? "no socket path given: -u needs SOCKET-PATH" : "no server given: expected HOST [PORT] /dev/nbdN")
        }
        var o = options
        let server: ServerAddress
        if NBDURI.looksLikeURI(host) {
            let uri = try NBDURI.parse(host)
            if unix { throw ArgumentError("-u and the URI '\(host)' both say where the server is: for a Unix socket write nbd+unix:///NAME?socket=PATH") }
            if portGiven != nil { throw ArgumentError("a PORT after the URI '\(host)': put the port in the URI (nbd://HOST:PORT/NAME)") }
            if o.exportNameGiven && o.exportName != uri.exportName && !list {
                throw ArgumentError("-N '\(o.exportName)' and the URI's export '\(uri.exportName)' disagree: give the export once")
            }
            server = uri.server
            o.exportName = uri.exportName
            o.exportNameGiven = true
        } else {
            if unix, portGiven != nil { throw ArgumentError("a port makes no sense with -u (Unix socket '\(host)')") }
            server = unix ? .unix(path: host) : .tcp(host: host, port: portGiven ?? Limits.defaultPort)
        }
        if list {
            if let d = deviceText { throw ArgumentError("-l lists exports; it takes HOST [PORT], not a device ('\(d)')") }
            return done(.list(server: server))
        }
        guard let deviceText else {
            if positionals.count == 1, !unix, let d = NBDDevice(parsing: host) {
                // nbd-client nbdN: the nbdtab entry, with these options on top.
                return done(.connectFromTab(device: d, overrides: options, connectionsGiven: connectionsGiven))
            }
            throw ArgumentError("no nbd device given after '\(host)': expected HOST [PORT] /dev/nbdN")
        }
        o.server = server
        o.device = try device(deviceText)
        try checkCombination(o)
        return done(.connect(o))
    }
}

/// Rules that hold however the options were given (command line or nbdtab).
public func checkCombination(_ o: ConnectOptions) throws(ArgumentError) {
    if o.preinit && o.sizeOverride == nil { throw ArgumentError("-preinit skips the handshake, so it needs the size: add -B BYTES") }
    if let bs = o.blockSize, let size = o.sizeOverride, size % UInt64(bs) != 0 {
        throw ArgumentError("-size \(size) is not a multiple of the block size \(bs)")
    }
}

extension NBDTabEntry {
    /// The entry's connection with the command line on top: its flags are
    /// added (-persist, -swap, -R, -n, -L, -g), its values replace the
    /// entry's when given (-b, -t, -T, -C, -i, -B, -N).
    public func merged(with cl: ConnectOptions, connectionsGiven: Bool) -> ConnectOptions {
        var o = options
        if cl.exportNameGiven { o.exportName = cl.exportName }
        if let v = cl.blockSize { o.blockSize = v }
        if let v = cl.timeout { o.timeout = v }
        if let v = cl.deadTimeout { o.deadTimeout = v }
        if let v = cl.sizeOverride { o.sizeOverride = v }
        if let v = cl.identifier { o.identifier = v }
        if connectionsGiven { o.connections = cl.connections }
        o.persist = o.persist || cl.persist
        o.swap = o.swap || cl.swap
        o.noFork = cl.noFork
        o.noNetlink = cl.noNetlink
        o.readOnly = cl.readOnly
        o.noOptGo = o.noOptGo || cl.noOptGo
        o.preinit = o.preinit || cl.preinit
        return o
    }
}
