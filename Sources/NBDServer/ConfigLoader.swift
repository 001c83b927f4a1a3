// From a config file and the command line to one ServerConfig. The command
// line wins where both speak: --listen replaces the file's listenaddr/port/
// unixsock, --handshake-timeout, --max-connections and
// --max-connections-per-client replace the file's values; exports are the
// file's (in file order, then includedir's) followed by the command line's,
// and the first one is the default export "". `ConfigSource.fileSystem`
// reads the files (read(2), opendir(3)).
import Glibc
import LinuxSys

/// What the command line said; nil or empty where it said nothing.
public struct CommandLineSettings: Sendable {
    public var listen: [ListenAddress] = []
    public var exports: [ExportSpec] = []
    public var handshakeTimeout: Double?
    public var maxConnections: Int?
    public var maxPerClient: Int?
    public var oldstyle = false

    public init() {}
}

/// A configuration ready to serve, and what the file asked beyond it.
public struct LoadedConfig: Sendable {
    public var config: ServerConfig
    /// Warnings about ignored keys, to log.
    public var warnings: [String]
    /// `user` and `group` from [generic].
    public var user: String?
    public var group: String?
}

extension LoadedConfig {
    /// Combines `file` (nil without --config) with the command line.
    public static func compose(file: ConfigFile?, commandLine c: CommandLineSettings) throws(ConfigError) -> LoadedConfig {
        let g = file?.generic ?? GenericSettings()
        let listen = !c.listen.isEmpty ? c.listen : (g.listen() ?? [.default])
        var limits = ServerLimits()
        if let t = c.handshakeTimeout ?? g.handshakeTimeout { limits.handshakeTimeout = t }
        if let n = c.maxConnections ?? g.maxConnections { limits.maxConnections = n }
        if let n = c.maxPerClient ?? g.maxPerClient { limits.maxPerClient = n }
        let exports = (file?.exports ?? []) + c.exports
        if exports.isEmpty, file != nil {
            throw ConfigError("the configuration file defines no export and the command line gives none; add a section [NAME] with exportname = PATH, or --export NAME=PATH")
        }
        let config = try ServerConfig(listeners: listen, exports: exports, limits: limits, oldstyle: c.oldstyle,
                                      listAllowed: file == nil ? true : g.listAllowed)
        return LoadedConfig(config: config, warnings: file?.warnings ?? [], user: g.user, group: g.group)
    }

    /// Reads `path` from the file system and composes it with the command line.
    public static func load(_ path: String, commandLine: CommandLineSettings) throws(ConfigError) -> LoadedConfig {
        try compose(file: try ConfigFile.load(path, from: .fileSystem), commandLine: commandLine)
    }
}

extension ConfigSource {
    /// The real files: the whole file through read(2) (at most 16 MiB: a
    /// configuration or allow list larger than that is a mistake), and the
    /// regular files named *.conf in a directory (opendir(3)/readdir(3)).
    public static let fileSystem = ConfigSource(
        read: { path in
            let fd: FileDescriptor
            do throws(SysError) { fd = try FileDescriptor.open(path, O_RDONLY) } catch {
                return .failure(ConfigError(error.errno.description))
            }
            defer { fd.close() }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = chunk.withUnsafeMutableBytes { Glibc.read(fd.rawValue, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    return .failure(ConfigError(Errno.current.description))
                }
                if n == 0 { break }
                bytes += chunk[..<n]
                if bytes.count > 16 << 20 { return .failure(ConfigError("larger than 16 MiB")) }
            }
            return .success(String(decoding: bytes, as: UTF8.self))
        },
        listConf: { dir in
            guard let d = opendir(dir) else { return .failure(ConfigError(Errno.current.description)) }
            defer { closedir(d) }
            var names: [String] = []
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard name.hasSuffix(".conf"), !name.hasPrefix(".") else { continue }
                var st = stat()
                if stat(dir + "/" + name, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG { names.append(name) }
            }
            return .success(names.sorted())
        })
}
