// The export options that make an export per station, parsed from
// `--export NAME=PATH,cow[,overlays=DIR]` and `--export NAME=DIR,swap,size=512M`.
// Pure: ExportSpec.parse (Config.swift) hands each option it does not know to
// `StationOptions.take`, then asks `resolve` for the result.

/// What makes an export per station.
public enum PerStation: Equatable, Sendable {
    /// Copy-on-write over the read-only base image at the export's PATH; each
    /// station's overlay lives in `overlays` (Overlay.swift, docs/overlays.md).
    case cow(overlays: String)
    /// A sparse file `PATH/STATION.swap` of `size` bytes per station (SwapExport.swift).
    case swap(size: UInt64)
}

/// Collects the per-station options of one `--export` while it is parsed, in
/// any order, then checks that they make sense together.
public struct StationOptions: Sendable {
    /// The option names, for ExportSpec's "known options" message.
    public static let names = ["cow", "overlays=DIR", "swap", "size=N[K|M|G|T]"]

    private var cow = false
    private var swap = false
    private var overlays: String?
    private var size: UInt64?

    public init() {}

    /// Takes one option; false when it is not a per-station option.
    public mutating func take(_ option: String, input: String) throws(ConfigError) -> Bool {
        if option == "cow" || option == "copyonwrite" {
            cow = true
        } else if option == "swap" {
            swap = true
        } else if option.hasPrefix("overlays=") {
            let dir = String(option.dropFirst(9))
            guard !dir.isEmpty else {
                throw ConfigError("--export '\(input)': overlays= needs a directory, e.g. overlays=/srv/overlays")
            }
            overlays = dir
        } else if option.hasPrefix("size=") {
            size = try Self.parseSize(String(option.dropFirst(5)), input: "--export '\(input)'")
        } else {
            return false
        }
        return true
    }

    /// The same options as keys of an export section of an nbd-server style
    /// config file (for its reader; `resolve` afterwards, as for --export):
    /// nbd-server's `copyonwrite = true` and `cowdir = DIR` (its directory for
    /// diff files: ours for overlays), and nbdboot's own `overlays = DIR`,
    /// `swap = true`, `swapsize = 512M`. Returns false for any other key.
    /// Booleans as GLib's key files spell them: true/false, 1/0.
    public mutating func take(key: String, value: String, input: String) throws(ConfigError) -> Bool {
        func flag() throws(ConfigError) -> Bool {
            switch value.lowercased() {
            case "true", "1": return true
            case "false", "0": return false
            default: throw ConfigError("\(input): \(key) = \(value): write true or false")
            }
        }
        switch key {
        case "copyonwrite": cow = try flag()
        case "swap": swap = try flag()
        case "cowdir", "overlays":
            guard !value.isEmpty else { throw ConfigError("\(input): \(key) needs a directory") }
            overlays = value
        case "swapsize": size = try Self.parseSize(value, input: "\(input): swapsize")
        default: return false
        }
        return true
    }

    /// The per-station kind, or nil for a plain export. `path` is the export's
    /// PATH: the base image (cow) or the directory of swap files (swap).
    public func resolve(path: String, readOnly: Bool, input: String) throws(ConfigError) -> PerStation? {
        let where_ = "--export '\(input)'"
        if cow && swap {
            throw ConfigError("\(where_): an export is either cow (a root image) or swap (per-station swap files), not both")
        }
        if cow {
            if readOnly {
                throw ConfigError("\(where_): a cow export takes every write into the station's overlay (the base is never written); drop readonly, or drop cow to serve the image read-only")
            }
            if size != nil {
                throw ConfigError("\(where_): size= belongs to swap exports; a cow export has its base image's size")
            }
            return .cow(overlays: overlays ?? path + ".overlays")
        }
        if swap {
            if readOnly { throw ConfigError("\(where_): a swap export must be writable; drop readonly") }
            if overlays != nil {
                throw ConfigError("\(where_): overlays= belongs to cow exports; a swap export keeps its files in PATH (\(path))")
            }
            guard let size else {
                throw ConfigError("\(where_): a swap export needs its size, e.g. \(input),size=512M")
            }
            return .swap(size: size)
        }
        if overlays != nil { throw ConfigError("\(where_): overlays= needs cow, e.g. NAME=PATH,cow,overlays=DIR") }
        if size != nil { throw ConfigError("\(where_): size= needs swap, e.g. NAME=DIR,swap,size=512M") }
        return nil
    }

    /// Two per-station exports of one kind must not share a directory: their
    /// stations' files would collide (st1.data of one base read over
    /// another). A cow and a swap export may share one (different suffixes).
    /// Paths are compared as written.
    public static func checkDirectories(_ exports: [ExportSpec]) throws(ConfigError) {
        var owners: [String: String] = [:]
        for e in exports {
            let key: String
            switch e.perStation {
            case .cow(let dir)?: key = "cow " + dir
            case .swap?: key = "swap " + e.path
            case nil: continue
            }
            if let other = owners[key] {
                throw ConfigError("--export '\(e.name)' and '\(other)' keep their stations' files in the same directory \(key.drop { $0 != " " }.dropFirst()); give one of them its own (overlays=DIR for cow, another DIR for swap)")
            }
            owners[key] = e.name
        }
    }

    /// Parses a size: bytes, or a number with a binary suffix K, M, G or T
    /// (KiB, MiB, GiB, TiB; "KiB"/"MB" spellings are accepted too). It must be
    /// a positive multiple of 4096 (whole pages, which swap needs).
    public static func parseSize(_ text: String, input: String) throws(ConfigError) -> UInt64 {
        let bad = ConfigError("\(input): size '\(text)' is not a size; write bytes or a number with K, M, G or T (binary), e.g. size=512M")
        var digits = Substring(text)
        var suffix = ""
        while let last = digits.last, !last.isNumber {
            suffix = String(last) + suffix
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = UInt64(digits) else { throw bad }
        let shift: UInt64
        switch suffix.uppercased() {
        case "", "B": shift = 0
        case "K", "KB", "KIB": shift = 10
        case "M", "MB", "MIB": shift = 20
        case "G", "GB", "GIB": shift = 30
        case "T", "TB", "TIB": shift = 40
        default: throw bad
        }
        guard n <= (UInt64.max >> shift) >> 1 else {
            throw ConfigError("\(input): size '\(text)' is too large")
        }
        let bytes = n << shift
        guard bytes > 0, bytes % 4096 == 0 else {
            throw ConfigError("\(input): size '\(text)' must be a positive multiple of 4096 bytes (whole pages), e.g. size=512M")
        }
        return bytes
    }
}
