// nbd-server's configuration file format (nbd-server(5); research/server-anchors.md
// 1.2-1.3), read so that a site moves over by pointing `nbdboot serve --config`
// at its existing file:
//
//   [generic]                      # server-wide settings
//   port = 10809
//   listenaddr = 192.168.10.1
//   allowlist = true
//   includedir = /etc/nbd-server/conf.d
//   [root]                         # one section per export; its name is the export name
//   exportname = /srv/root.img
//   readonly = true
//   authfile = /etc/nbd-server/lab.allow
//
// The format is GLib's key file: `[section]` headers, `key = value` lines,
// whole-line `#` comments, booleans true/false (also 1/0), string escapes
// \s \t \n \r \\. Parsing is pure: the files an option names (authfile,
// includedir) are read through `ConfigSource`, so every rule and message is
// unit-tested; ConfigLoader.swift gives the real file system. The key tables
// are ConfigKeys.swift.
import NBDWire

/// Reads the files a configuration refers to. The loader's real one uses the
/// file system; tests give a dictionary.
public struct ConfigSource: Sendable {
    /// The text of a file, or why it cannot be read ("No such file or directory").
    public var read: @Sendable (String) -> Result<String, ConfigError>
    /// The `*.conf` file names in a directory, or why it cannot be listed.
    public var listConf: @Sendable (String) -> Result<[String], ConfigError>

    public init(read: @escaping @Sendable (String) -> Result<String, ConfigError>,
                listConf: @escaping @Sendable (String) -> Result<[String], ConfigError>) {
        self.read = read
        self.listConf = listConf
    }
}

/// The `[generic]` section as nbdboot uses it. Unset options are nil: the
/// command line or the defaults decide.
public struct GenericSettings: Equatable, Sendable {
    /// `listenaddr`: comma-separated local addresses (IPv4 or IPv6 literals or host names).
    public var listenAddresses: [String]?
    /// `port`.
    public var port: UInt16?
    /// `unixsock`: a Unix socket path; without `duallisten` it replaces TCP (as in nbd-server).
    public var unixSocket: String?
    public var dualListen = false
    /// `allowlist`: whether NBD_OPT_LIST is answered. nbd-server's default
    /// (false) applies to config files; the command line always allows it.
    public var listAllowed = false
    /// `max_connections` (or `maxconnections` in [generic]): connections open at once.
    public var maxConnections: Int?
    /// `nbdboot_max_per_client`: connections open at once from one client address.
    public var maxPerClient: Int?
    /// `nbdboot_handshake_timeout`: seconds.
    public var handshakeTimeout: Double?
    /// `user`, `group`: see ServeCommand (dropped to after binding when root).
    public var user: String?
    public var group: String?

    public init() {}

    /// The listen addresses these settings ask for, nil when none is given
    /// (the command line or the default decides). As in nbd-server, `unixsock`
    /// replaces TCP unless `duallisten = true`; TCP is every listenaddr on `port`.
    public func listen() -> [ListenAddress]? {
        var out: [ListenAddress] = []
        if let unixSocket { out.append(.unix(path: unixSocket)) }
        if unixSocket == nil || dualListen, listenAddresses != nil || port != nil || dualListen {
            for host in listenAddresses ?? ["0.0.0.0"] {
                out.append(.tcp(host: host, port: port ?? Limits.defaultPort))
            }
        }
        return out.isEmpty ? nil : out
    }
}

/// A parsed configuration: the generic settings, the exports in file order
/// (then the include directory's, by file name), and warnings about keys
/// that were accepted but mean nothing here.
public struct ConfigFile: Equatable, Sendable {
    public var generic = GenericSettings()
    public var exports: [ExportSpec] = []
    /// "FILE:LINE: ..." lines for the log.
    public var warnings: [String] = []

    public init() {}

    /// Reads `path` and everything it includes.
    public static func load(_ path: String, from source: ConfigSource) throws(ConfigError) -> ConfigFile {
        let text: String
        switch source.read(path) {
        case .success(let t): text = t
        case .failure(let e):
            throw ConfigError("\(path): cannot read the configuration file: \(e.message); check the path given to --config")
        }
        var config = ConfigFile()
        var includeDir: (path: String, location: String)?
        try config.parse(text, file: path, source: source, isInclude: false, includeDir: &includeDir)
        if let (dir, location) = includeDir {
            let names: [String]
            switch source.listConf(dir) {
            case .success(let n): names = n.sorted()
            case .failure(let e):
                throw ConfigError("\(location): includedir \(dir): \(e.message); create the directory or remove the key")
            }
            for name in names {
                let file = dir.hasSuffix("/") ? dir + name : dir + "/" + name
                let included: String
                switch source.read(file) {
                case .success(let t): included = t
                case .failure(let e):
                    throw ConfigError("\(file): cannot read this file of includedir \(dir) (\(location)): \(e.message)")
                }
                var ignored: (path: String, location: String)?
                try config.parse(included, file: file, source: source, isInclude: true, includeDir: &ignored)
            }
        }
        return config
    }

    /// Parses one file's text into `self`.
    mutating func parse(_ text: String, file: String, source: ConfigSource, isInclude: Bool,
                        includeDir: inout (path: String, location: String)?) throws(ConfigError) {
        enum Section { case none, generic, export(Int) }
        var section = Section.none
        var station = StationOptions()
        var keysSeen: [String: Int] = [:]
        var sectionLine = 0
        var number = 0
        func finishSection() throws(ConfigError) {
            guard case .export(let i) = section else { return }
            if exports[i].path.isEmpty {
                throw ConfigError("\(file):\(sectionLine): export [\(exports[i].name)] has no exportname; add 'exportname = /path/to/image'")
            }
            try ConfigKeys.finishExport(&exports[i], station: station, location: "\(file):\(sectionLine)")
        }
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let location = "\(file):\(number)"
            let line = Substring(raw).trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), line.count >= 2 else {
                    throw ConfigError("\(location): '\(line)' opens a section without closing it; write [NAME]")
                }
                try finishSection()
                let name = String(line.dropFirst().dropLast())
                guard !name.contains("[") && !name.contains("]") else {
                    throw ConfigError("\(location): section name '\(name)' contains a bracket; write [NAME]")
                }
                keysSeen = [:]
                station = StationOptions()
                sectionLine = number
                if name == "generic" {
                    if isInclude {
                        throw ConfigError("\(location): [generic] is not allowed in an includedir file; move its keys to the main configuration file")
                    }
                    section = .generic
                    continue
                }
                guard name.utf8.count <= Limits.maxString else {
                    throw ConfigError("\(location): the export name is longer than \(Limits.maxString) bytes, the protocol's limit")
                }
                if let other = exports.firstIndex(where: { $0.name == name }) {
                    throw ConfigError("\(location): export [\(name)] is defined a second time (\(exportOrigins[other])); give each export its own section name")
                }
                exports.append(ExportSpec(name: name, path: ""))
                exportOrigins.append(location)
                section = .export(exports.count - 1)
                continue
            }
            guard let eq = line.firstIndex(of: "=") else {
                throw ConfigError("\(location): '\(line)' is neither [SECTION] nor KEY = VALUE")
            }
            let key = String(line[..<eq].trimmingWhitespace())
            let value = ConfigValue(text: unescape(String(line[line.index(after: eq)...].trimmingWhitespace())),
                                    key: key, location: location)
            guard !key.isEmpty else { throw ConfigError("\(location): the key before '=' is empty") }
            if let first = keysSeen[key] {
                throw ConfigError("\(location): '\(key)' is set a second time in this section (first at line \(first)); keep one")
            }
            keysSeen[key] = number
            switch section {
            case .none:
                throw ConfigError("\(location): '\(key)' comes before any section; put it under [generic] or under an export's [NAME]")
            case .generic:
                if key == "includedir" {
                    includeDir = (try value.string(), location)
                    continue
                }
                try ConfigKeys.applyGeneric(value, to: &generic, warnings: &warnings)
            case .export(let i):
                try ConfigKeys.applyExport(value, to: &exports[i], station: &station, source: source, warnings: &warnings)
            }
        }
        try finishSection()
    }

    /// Where each export's section starts ("FILE:LINE"), parallel to `exports`.
    public var exportOrigins: [String] = []

    /// GLib key-file escapes in values: \s space, \t, \n, \r, \\.
    func unescape(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var out = ""
        var escaped = false
        for c in text {
            if escaped {
                switch c {
                case "s": out.append(" ")
                case "t": out.append("\t")
                case "n": out.append("\n")
                case "r": out.append("\r")
                default: out.append(c)
                }
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        if escaped { out.append("\\") }
        return out
    }
}

/// One `key = value` with where it came from, and typed readers whose
/// errors say FILE:LINE, the key, what is wrong and an example.
public struct ConfigValue: Sendable {
    public var text: String
    public var key: String
    /// "FILE:LINE".
    public var location: String

    public func string() throws(ConfigError) -> String {
        guard !text.isEmpty else { throw ConfigError("\(location): \(key) is empty; give a value or remove the line") }
        return text
    }

    /// true/false, also 1/0 and any letter case (GLib's g_key_file_get_boolean).
    public func bool() throws(ConfigError) -> Bool {
        switch text.lowercased() {
        case "true", "1": return true
        case "false", "0": return false
        default: throw ConfigError("\(location): \(key) = '\(text)' is not a boolean; write true or false")
        }
    }

    /// A decimal integer from `min` to `max`.
    public func int(min: Int, max: Int, example: String) throws(ConfigError) -> Int {
        guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let n = Int(text), n >= min, n <= max else {
            throw ConfigError("\(location): \(key) = '\(text)' is not a whole number from \(min) to \(max); e.g. \(key) = \(example)")
        }
        return n
    }

    /// Seconds above 0, at most a day.
    public func seconds() throws(ConfigError) -> Double {
        guard let n = Double(text), n > 0, n <= 86400 else {
            throw ConfigError("\(location): \(key) = '\(text)' is not a number of seconds above 0 and at most 86400; e.g. \(key) = 30")
        }
        return n
    }

    /// A byte count: digits, optionally followed by K, M, G or T (powers of
    /// 1024, an optional trailing 'B' or 'iB' accepted). At least 1.
    public func size() throws(ConfigError) -> UInt64 {
        var digits = Substring(text)
        for suffix in ["iB", "B"] where digits.count > suffix.count && digits.hasSuffix(suffix) {
            digits = digits.dropLast(suffix.count)
            break
        }
        var shift: UInt64 = 0
        if let last = digits.last, let s = ["K": 10, "M": 20, "G": 30, "T": 40][String(last).uppercased()] {
            shift = UInt64(s)
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.utf8.count <= 19, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let n = UInt64(digits), n > 0, n <= (UInt64(Int64.max) >> shift) else {
            throw ConfigError("\(location): \(key) = '\(text)' is not a size; write bytes or a number with K, M, G or T, e.g. \(key) = 512M")
        }
        return n << shift
    }
}
