// `nbdboot initramfs build --config FILE`: build settings from a file, in a small
// subset of TOML (https://toml.io/en/v1.0.0) that every TOML reader also accepts:
//
//     # a station for the lab's PCs
//     kernel_version = "6.1.0-56-amd64"
//     module_root = "/srv/kernels/6.1"     # relative paths are relative to this file
//     compress = "xz"                      # zstd gzip xz lz4 none
//     profile = "generic-nic"              # qemu-virtio generic-nic
//     modules = ["e1000e", "igb"]          # like --add-module; arrays may span lines
//     files = [
//       "motd:/etc/motd",                  # like --add-file SRC:DST
//     ]
//     busybox = true                       # or a path: busybox = "/opt/busybox"
//     microcode = true
//     microcode_dir = "/lib/firmware"
//     init = "/usr/lib/nbdboot/init"
//     nbd_client = "/usr/lib/nbdboot/nbd-client"
//     output = "/srv/tftp/initrd.img"
//
// Values: "basic strings" (escapes \" \\ \n \t \uXXXX), 'literal strings', true/false,
// and arrays of strings. Tables ([section]), numbers, dates and dotted keys are refused
// with a message naming the file and line. Parsing is pure (text in, settings out).

/// One error, with where it is.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var key: String?
    public var message: String
    public var description: String {
        "\(file):\(line): \(key.map { "key \($0): " } ?? "")\(message)"
    }
}

/// A parsed value.
public enum ConfigValue: Equatable, Sendable {
    case string(String)
    case bool(Bool)
    case array([String])
}

/// The settings a config file gives; nil (or empty) where it says nothing.
public struct BuildSettings: Equatable, Sendable {
    public var kernelVersion: String?
    public var moduleRoot: String?
    public var output: String?
    public var compress: String?
    public var profile: String?
    public var modules: [String] = []
    public var files: [String] = []
    /// nil: not set; "" with `busybox = true`: the default path; else a path.
    public var busybox: String?
    public var microcode: Bool?
    public var microcodeDir: String?
    public var initPath: String?
    public var nbdClient: String?

    public init() {}
}

public enum ConfigFile {
    /// Every key, for the "unknown key" message.
    public static let keys = ["kernel_version", "module_root", "output", "compress", "profile", "modules", "files",
                              "busybox", "microcode", "microcode_dir", "init", "nbd_client"]

    /// Parses `text` (named `file` in messages). Relative host paths are joined to `baseDirectory`
    /// (the file's own directory), so a config file works from any current directory.
    public static func parse(_ text: String, file: String, baseDirectory: String) throws(ConfigError) -> BuildSettings {
        let raw = try parseValues(text, file: file)
        var s = BuildSettings()
        func path(_ p: String) -> String {
            p.hasPrefix("/") || baseDirectory.isEmpty ? p : baseDirectory + "/" + p
        }
        for (key, value, line) in raw {
            func fail(_ m: String) -> ConfigError { ConfigError(file: file, line: line, key: key, message: m) }
            func string() throws(ConfigError) -> String {
                guard case let .string(v) = value else { throw fail("expected a string in double quotes, e.g. \(key) = \"...\"") }
                if v.isEmpty { throw fail("is empty") }
                return v
            }
            func array() throws(ConfigError) -> [String] {
                guard case let .array(v) = value else { throw fail("expected an array of strings, e.g. \(key) = [\"a\", \"b\"]") }
                return v
            }
            switch key {
            case "kernel_version": s.kernelVersion = try string()
            case "module_root": s.moduleRoot = path(try string())
            case "output": s.output = path(try string())
            case "compress": s.compress = try string()
            case "profile": s.profile = try string()
            case "init": s.initPath = path(try string())
            case "nbd_client": s.nbdClient = path(try string())
            case "microcode_dir": s.microcodeDir = path(try string())
            case "modules": s.modules = try array()
            case "files":
                s.files = []
                for f in try array() {
                    guard let (src, dst) = splitFileSpec(f) else { throw fail("\"\(f)\" is not SRC:DST, e.g. \"motd:/etc/motd\"") }
                    s.files.append(path(src) + ":" + dst)
                }
            case "busybox":
                switch value {
                case let .bool(b): s.busybox = b ? "" : nil
                case let .string(p) where !p.isEmpty: s.busybox = path(p)
                default: throw fail("expected true, false or the path of a static busybox")
                }
            case "microcode":
                guard case let .bool(b) = value else { throw fail("expected true or false") }
                s.microcode = b
            default:
                throw ConfigError(file: file, line: line, key: key, message: "unknown key; known keys: \(keys.joined(separator: ", "))")
            }
        }
        return s
    }

    /// "SRC:DST" split at the last colon (a source path may hold colons, an image path may not).
    public static func splitFileSpec(_ spec: String) -> (String, String)? {
        guard let colon = spec.lastIndex(of: ":"), colon != spec.startIndex,
              spec.index(after: colon) != spec.endIndex else { return nil }
        return (String(spec[..<colon]), String(spec[spec.index(after: colon)...]))
    }

    /// The key/value pairs of `text` in file order, each with its line number.
    static func parseValues(_ text: String, file: String) throws(ConfigError) -> [(String, ConfigValue, Int)] {
        var scanner = ConfigScanner(chars: Array(text.unicodeScalars), file: file)
        var out: [(String, ConfigValue, Int)] = []
        var seen: [String: Int] = [:]
        while true {
            scanner.skipBlankLinesAndComments()
            if scanner.atEnd { return out }
            let line = scanner.line
            let key = try scanner.key()
            if let first = seen[key] {
                throw ConfigError(file: file, line: line, key: key, message: "given twice (first on line \(first))")
            }
            seen[key] = line
            scanner.skipSpaces()
            guard scanner.peek == "=" else { throw scanner.error("expected \"=\" after the key \(key)", key: key) }
            scanner.advance()
            scanner.skipSpaces()
            let value = try scanner.value(key: key)
            scanner.skipSpaces()
            scanner.skipComment()
            guard scanner.atEnd || scanner.peek == "\n" else {
                throw scanner.error("unexpected text after the value (one key = value per line)", key: key)
            }
            out.append((key, value, line))
        }
    }
}

/// A cursor over the file's characters that knows its line number.
struct ConfigScanner {
    var chars: [Unicode.Scalar]
    let file: String
    var i = 0
    var line = 1

    var atEnd: Bool { i >= chars.count }
    var peek: Unicode.Scalar? { atEnd ? nil : chars[i] }

    mutating func advance() {
        if chars[i] == "\n" { line += 1 }
        i += 1
    }

    func error(_ m: String, key: String? = nil) -> ConfigError { ConfigError(file: file, line: line, key: key, message: m) }

    mutating func skipSpaces() { while let c = peek, c == " " || c == "\t" || c == "\r" { advance() } }
    mutating func skipComment() { if peek == "#" { while let c = peek, c != "\n" { advance() } } }

    /// Skips whitespace (newlines too) and comments.
    mutating func skipBlankLinesAndComments() {
        while let c = peek {
            if c == " " || c == "\t" || c == "\r" || c == "\n" { advance() } else if c == "#" { skipComment() } else { return }
        }
    }

    /// A bare key: letters, digits, "_" and "-".
    mutating func key() throws(ConfigError) -> String {
        if peek == "[" { throw error("tables ([section]) are not supported: write every key at the top level") }
        var k = ""
        while let c = peek, c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" || c == "-" {
            k.unicodeScalars.append(c); advance()
        }
        if k.isEmpty { throw error("expected a key (letters, digits, _), found \"\(peek.map { String($0) } ?? "end of file")\"") }
        if peek == "." { throw error("dotted keys are not supported", key: k) }
        return k
    }

    mutating func value(key: String) throws(ConfigError) -> ConfigValue {
        switch peek {
        case "\"", "'": return .string(try string(key: key))
        case "[":
            advance()
            var items: [String] = []
            while true {
                skipBlankLinesAndComments()
                if peek == "]" { advance(); return .array(items) }
                guard peek == "\"" || peek == "'" else {
                    throw error("array items must be strings in quotes; close the array with ]", key: key)
                }
                items.append(try string(key: key))
                skipBlankLinesAndComments()
                if peek == "," { advance(); continue }
                if peek == "]" { advance(); return .array(items) }
                throw error("expected \",\" or \"]\" in the array", key: key)
            }
        default:
            var word = ""
            while let c = peek, c != " " && c != "\t" && c != "\r" && c != "\n" && c != "#" { word.unicodeScalars.append(c); advance() }
            if word == "true" { return .bool(true) }
            if word == "false" { return .bool(false) }
            throw error(word.isEmpty ? "missing value" : "\(word) is not a value: put strings in double quotes, e.g. \(key) = \"\(word)\"", key: key)
        }
    }

    /// A basic ("...", with escapes) or literal ('...') single-line string.
    mutating func string(key: String) throws(ConfigError) -> String {
        let quote = chars[i]
        advance()
        var s = ""
        while true {
            guard let c = peek, c != "\n" else { throw error("string not closed on its line (missing \(quote))", key: key) }
            advance()
            if c == quote { return s }
            if c == "\\" && quote == "\"" {
                guard let e = peek else { throw error("unfinished escape", key: key) }
                advance()
                switch e {
                case "\"": s += "\""
                case "\\": s += "\\"
                case "n": s += "\n"
                case "t": s += "\t"
                case "u":
                    var hex = ""
                    for _ in 0..<4 { if let h = peek { hex.unicodeScalars.append(h); advance() } }
                    guard let v = UInt32(hex, radix: 16), let u = Unicode.Scalar(v) else {
                        throw error("bad \\u escape \"\\u\(hex)\"", key: key)
                    }
                    s.unicodeScalars.append(u)
                default: throw error("unknown escape \\\(e) (use \\\\ for a backslash)", key: key)
                }
            } else {
                s.unicodeScalars.append(c)
            }
        }
    }
}
