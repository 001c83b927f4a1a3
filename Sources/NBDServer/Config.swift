// What `nbdboot serve` is asked to do, parsed from its command line without
// touching the system: where to listen and which files to export. Parsing is
// pure so the rules (and their error messages) are unit-tested; opening the
// files and binding the socket happen later, in Export.swift and Listener.swift.
import NBDWire

/// Bad configuration: one message that names the input and says what to do.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Where the server listens.
public enum ListenAddress: Equatable, Sendable, CustomStringConvertible {
    /// A TCP address: an IPv4/IPv6 literal or a host name, and a port.
    case tcp(host: String, port: UInt16)
    /// A Unix stream socket at a path (nbdkit's `-U`).
    case unix(path: String)

    /// nbd-server's default: every IPv4 address, the IANA port 10809.
    public static let `default` = ListenAddress.tcp(host: "0.0.0.0", port: Limits.defaultPort)

    /// Parses `HOST:PORT`, `[IPV6]:PORT`, `PORT` (all IPv4 addresses) or `unix:PATH`.
    public static func parse(_ text: String) throws(ConfigError) -> ListenAddress {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { throw ConfigError("--listen '\(text)': give a socket path after unix:, e.g. unix:/tmp/nbd.sock") }
            return .unix(path: path)
        }
        let host: String
        let portText: String
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw ConfigError("--listen '\(text)': missing ']' after the IPv6 address; write [ADDRESS]:PORT, e.g. [::1]:10809")
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            let after = text[text.index(after: close)...]
            guard after.hasPrefix(":") else {
                throw ConfigError("--listen '\(text)': expected ':PORT' after ']', e.g. [::1]:10809")
            }
            portText = String(after.dropFirst())
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = String(text[text.index(after: colon)...])
            if host.contains(":") {
                throw ConfigError("--listen '\(text)': put an IPv6 address in brackets, e.g. [\(host)]:\(portText)")
            }
        } else {
            host = "0.0.0.0"
            portText = text
        }
        guard !host.isEmpty else { throw ConfigError("--listen '\(text)': the host is empty; write HOST:PORT, e.g. 127.0.0.1:10809") }
        return .tcp(host: host, port: try parsePort(portText, input: "--listen '\(text)'"))
    }

    /// Parses a TCP port, 1 to 65535.
    public static func parsePort(_ text: String, input: String) throws(ConfigError) -> UInt16 {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), text.utf8.count <= 5,
              let n = Int(text), n >= 1, n <= 65535 else {
            throw ConfigError("\(input): port '\(text)' is not a number from 1 to 65535")
        }
        return UInt16(n)
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }
}

/// One export as given on the command line: `NAME=PATH[,readonly]`.
public struct ExportSpec: Equatable, Sendable {
    /// The name clients ask for; "" is the default export.
    public var name: String
    /// The backing file or block device.
    public var path: String
    public var readOnly: Bool
    /// Sent in NBD_INFO_DESCRIPTION and NBD_REP_SERVER when not empty.
    public var description: String
    /// Copy-on-write or swap, one backend per station (StationOptions.swift); nil for a plain export.
    public var perStation: PerStation? = nil

    public init(name: String, path: String, readOnly: Bool = false, description: String = "") {
        self.name = name
        self.path = path
        self.readOnly = readOnly
        self.description = description
    }

    /// The options that may follow the path, after commas.
    public static let knownOptions = ["readonly", "ro", "rw"] + StationOptions.names + ["desc=TEXT (last)"]
    /// Longest description accepted: it travels in NBD_INFO_DESCRIPTION and
    /// NBD_REP_SERVER, and nbd-client drops option replies of 4096 bytes or more.
    public static let maxDescription = 1024

    /// Parses `NAME=PATH[,OPTION...]`. Options: `readonly` (or `ro`), `rw`,
    /// and last `desc=TEXT` (or `description=TEXT`): TEXT is the rest of the
    /// argument, commas included. A path cannot contain a comma (everything
    /// after the first one is options).
    public static func parse(_ text: String) throws(ConfigError) -> ExportSpec {
        guard let eq = text.firstIndex(of: "=") else {
            throw ConfigError("--export '\(text)': expected NAME=PATH[,readonly][,desc=TEXT], e.g. root=/srv/root.img")
        }
        let name = String(text[..<eq])
        let rest = text[text.index(after: eq)...].split(separator: ",", omittingEmptySubsequences: false)
        let path = String(rest.first ?? "")
        guard !path.isEmpty else {
            throw ConfigError("--export '\(text)': the path after '=' is empty; give the image file, e.g. \(name)=/srv/root.img")
        }
        guard name.utf8.count <= Limits.maxString else {
            throw ConfigError("--export '\(text.prefix(40))...': the name is longer than \(Limits.maxString) bytes, the protocol's limit")
        }
        var spec = ExportSpec(name: name, path: path)
        var stationOptions = StationOptions()
        var options = rest.dropFirst()
        while let option = options.first {
            options = options.dropFirst()
            if option.hasPrefix("desc=") || option.hasPrefix("description=") {
                let value = option.drop { $0 != "=" }.dropFirst()
                spec.description = ([String(value)] + options.map(String.init)).joined(separator: ",")
                guard spec.description.utf8.count <= maxDescription else {
                    throw ConfigError("--export '\(text.prefix(60))...': the description is \(spec.description.utf8.count) bytes, more than \(maxDescription); shorten it")
                }
                break
            }
            switch option {
            case "readonly", "ro": spec.readOnly = true
            case "rw": spec.readOnly = false
            default:
                if try stationOptions.take(String(option), input: text) { continue }
                throw ConfigError("--export '\(text)': unknown option '\(option)' after the path; known options: \(knownOptions.joined(separator: ", "))")
            }
        }
        spec.perStation = try stationOptions.resolve(path: path, readOnly: spec.readOnly, input: text)
        return spec
    }
}

/// Bounds that protect the server from slow or hostile clients.
public struct ServerLimits: Equatable, Sendable {
    /// Seconds a client has from accept(2) to the end of the handshake.
    public var handshakeTimeout: Double
    /// Options one handshake may send before the server closes it.
    public var maxOptions: Int
    /// Connections open at once; further ones are closed at accept(2).
    public var maxConnections: Int

    public init(handshakeTimeout: Double = 30, maxOptions: Int = 64, maxConnections: Int = 1024) {
        self.handshakeTimeout = handshakeTimeout
        self.maxOptions = maxOptions
        self.maxConnections = maxConnections
    }
}

/// Everything `Server` needs: where to listen and what to serve.
public struct ServerConfig: Equatable, Sendable {
    public var listen: ListenAddress
    public var exports: [ExportSpec]
    public var limits: ServerLimits
    /// Speak the oldstyle protocol (spec "Oldstyle negotiation"): the
    /// 152-byte greeting, then transmission on the one export.
    public var oldstyle: Bool

    /// Checks that there is at least one export and that names are unique.
    public init(listen: ListenAddress, exports: [ExportSpec], limits: ServerLimits = ServerLimits(),
                oldstyle: Bool = false) throws(ConfigError) {
        guard !exports.isEmpty else {
            throw ConfigError("no export given: add --export NAME=PATH (or use the classic form PORT FILE)")
        }
        var seen: [String] = []
        for e in exports {
            if seen.contains(e.name) {
                throw ConfigError("--export: the name '\(e.name)' is given twice; each export needs its own name")
            }
            seen.append(e.name)
        }
        try StationOptions.checkDirectories(exports)
        guard limits.handshakeTimeout > 0 && limits.handshakeTimeout <= 86400 else {
            throw ConfigError("--handshake-timeout \(limits.handshakeTimeout): give the seconds a client may take for the handshake, above 0 and at most 86400, e.g. 30")
        }
        guard limits.maxConnections >= 1 else {
            throw ConfigError("--max-connections \(limits.maxConnections): give how many connections may be open at once, at least 1, e.g. 1024")
        }
        guard limits.maxOptions >= 1 else {
            throw ConfigError("the option limit \(limits.maxOptions) must be at least 1")
        }
        if oldstyle && exports.count != 1 {
            throw ConfigError("--oldstyle serves exactly one export per listener (the oldstyle greeting names none), got \(exports.count); run one server per export, each with its own --listen port")
        }
        self.listen = listen
        self.exports = exports
        self.limits = limits
        self.oldstyle = oldstyle
    }
}
