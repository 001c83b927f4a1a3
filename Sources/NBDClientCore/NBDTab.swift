// /etc/nbdtab, as nbdtab(5) of nbd-client 3.24 describes it (and its
// nbdtab_lexer.l/nbdtab_parser.y read it; nbd-protocol.md 5.3): one
// connection per line,
//     DEVICE HOST-OR-SOCKET EXPORT [OPTION[,OPTION...]]
//     nbd0   server.example  root   persist,timeout=30,port=10809
// fields separated by spaces or tabs, '#' starts a comment that runs to the
// end of the line. DEVICE is "nbdN" (or "/dev/nbdN"). OPTIONs are flags
// (no_optgo, persist, swap, unix, preinit) and KEY=VALUE properties (port,
// bs, timeout, conns, dead-timeout). TLS options (tls, certfile, keyfile,
// cacertfile, tlshostname, priority) and sdp are refused, naming the line;
// other unknown options warn, except those starting with '_' (reserved for
// local use), as in nbd-client. Pure code: main reads the file.
#if canImport(NBDWire)
import NBDWire
#endif

/// One nbdtab line.
public struct NBDTabEntry: Equatable {
    public var device: NBDDevice
    /// The host name, or the socket path with the `unix` flag.
    public var host: String
    public var exportName: String
    public var port: UInt16? = nil
    public var blockSize: UInt32? = nil
    public var timeout: UInt64? = nil
    public var deadTimeout: UInt64? = nil
    public var connections: Int? = nil
    public var persist = false
    public var swap = false
    public var unix = false
    public var noOptGo = false
    public var preinit = false
    /// The line it came from (1-based), for messages.
    public var line: Int

    public init(device: NBDDevice, host: String, exportName: String, line: Int) {
        self.device = device
        self.host = host
        self.exportName = exportName
        self.line = line
    }

    /// The connection this entry describes.
    public var options: ConnectOptions {
        var o = ConnectOptions(server: unix ? .unix(path: host) : .tcp(host: host, port: port ?? Limits.defaultPort), device: device)
        o.exportName = exportName
        o.exportNameGiven = true
        o.blockSize = blockSize
        o.timeout = timeout
        o.deadTimeout = deadTimeout
        o.connections = connections ?? 1
        o.persist = persist
        o.swap = swap
        o.noOptGo = noOptGo
        o.preinit = preinit
        return o
    }
}

/// A parsed nbdtab: its entries and the warnings worth printing.
public struct NBDTab: Equatable {
    public var entries: [NBDTabEntry]
    public var warnings: [String]

    /// The entry for `device`, if any (the first one wins, as in nbd-client).
    public func entry(for device: NBDDevice) -> NBDTabEntry? {
        for e in entries where e.device == device { return e }
        return nil
    }

    /// Parses the file's text. `path` only names the file in messages.
    public static func parse(_ text: String, path: String = "/etc/nbdtab") throws(ArgumentError) -> NBDTab {
        var tab = NBDTab(entries: [], warnings: [])
        var number = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            var line = rawLine
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if fields.isEmpty { continue }
            let at = "\(path) line \(number)"
            guard fields.count >= 3 else {
                throw ArgumentError("\(at): expected DEVICE HOST EXPORT [OPTIONS], found \(fields.count) field(s)")
            }
            guard fields.count <= 4 else {
                throw ArgumentError("\(at): too many fields; options are one comma-separated field (e.g. persist,timeout=30)")
            }
            guard let device = NBDDevice(parsing: String(fields[0])) else {
                throw ArgumentError("\(at): '\(fields[0])' is not an nbd device name (expected nbdN)")
            }
            var entry = NBDTabEntry(device: device, host: String(fields[1]), exportName: String(fields[2]), line: number)
            if fields.count == 4 {
                for option in fields[3].split(separator: ",") {
                    try apply(String(option), to: &entry, at: at, warnings: &tab.warnings)
                }
            }
            if entry.unix && entry.port != nil {
                throw ArgumentError("\(at): port= makes no sense with unix (the host field is a socket path)")
            }
            if entry.preinit && entry.connections.map({ $0 > 1 }) == true {
                throw ArgumentError("\(at): preinit cannot open several connections (conns=)")
            }
            tab.entries.append(entry)
        }
        return tab
    }

    static func apply(_ option: String, to e: inout NBDTabEntry, at: String, warnings: inout [String]) throws(ArgumentError) {
        var key = option
        var value: String? = nil
        if let eq = option.firstIndex(of: "=") {
            key = String(option[..<eq])
            value = String(option[option.index(after: eq)...])
        }
        func number(_ max: UInt64) throws(ArgumentError) -> UInt64 {
            guard let v = value, let n = parseDecimal(Substring(v), max: max) else {
                throw ArgumentError("\(at): option '\(option)' needs a number (up to \(max))")
            }
            return n
        }
        func flag() throws(ArgumentError) {
            if value != nil { throw ArgumentError("\(at): option '\(key)' is a flag and takes no value ('\(option)')") }
        }
        switch key {
        case "persist": try flag(); e.persist = true
        case "swap": try flag(); e.swap = true
        case "unix": try flag(); e.unix = true
        case "no_optgo": try flag(); e.noOptGo = true
        case "preinit": try flag(); e.preinit = true
        case "port":
            let p = try number(65535)
            guard p > 0 else { throw ArgumentError("\(at): port=0 is not a port") }
            e.port = UInt16(p)
        case "bs":
            let n = try number(4096)
            guard n == 512 || n == 1024 || n == 2048 || n == 4096 else {
                throw ArgumentError("\(at): bs=\(n): the block size must be 512, 1024, 2048 or 4096")
            }
            e.blockSize = UInt32(n)
        case "timeout": e.timeout = try number(1 << 31)
        case "dead-timeout", "dead_timeout": e.deadTimeout = try number(1 << 31)
        case "conns":
            let n = try number(64)
            guard n > 0 else { throw ArgumentError("\(at): conns=0: at least one connection") }
            e.connections = Int(n)
        case "tls", "certfile", "keyfile", "cacertfile", "tlshostname", "priority":
            throw ArgumentError("\(at): '\(option)': TLS is not implemented by this nbd-client (use a trusted network, and never TLS for swap: the user-space TLS proxy defeats the kernel's memalloc socket and can deadlock)")
        case "sdp":
            throw ArgumentError("\(at): 'sdp' (Sockets Direct Protocol) is not supported; nbd-client dropped it in 3.25")
        default:
            if !key.hasPrefix("_") { warnings.append("\(at): unknown option '\(option)' ignored") }
        }
    }
}
