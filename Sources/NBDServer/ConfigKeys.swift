// The keys of a configuration file (format: ConfigFile.swift) and what each
// one sets. Three kinds:
//   - keys that map: nbd-server's (listenaddr, port, exportname, readonly, ...)
//     and nbdboot's own, all prefixed `nbdboot_`;
//   - nbd-server keys with no meaning here: accepted with a warning naming
//     the key (`ignored`);
//   - nbd-server keys whose meaning we cannot honour without serving other
//     bytes or admitting other clients than the site expects: refused
//     (`refusedWhenSet`), e.g. prerun (an access check we would not run).
// Any other key is an error naming the file, the line and the known keys.
import NBDWire

enum ConfigKeys {
    typealias GenericSetter = @Sendable (inout GenericSettings, ConfigValue) throws(ConfigError) -> Void
    typealias ExportSetter = @Sendable (inout ExportSpec, ConfigValue, ConfigSource) throws(ConfigError) -> Void

    static let generic: [String: GenericSetter] = [
        "listenaddr": { g, v throws(ConfigError) in
            let hosts = try v.string().split(separator: ",").map { String($0.trimmingWhitespace()) }
            guard !hosts.contains(where: { $0.isEmpty || $0.contains(" ") }) else {
                throw ConfigError("\(v.location): listenaddr = '\(v.text)': give addresses separated by commas, e.g. listenaddr = 192.168.1.1, ::1")
            }
            g.listenAddresses = hosts
        },
        "port": { g, v throws(ConfigError) in g.port = UInt16(try v.int(min: 1, max: 65535, example: "10809")) },
        "allowlist": { g, v throws(ConfigError) in g.listAllowed = try v.bool() },
        "max_connections": { g, v throws(ConfigError) in g.maxConnections = try v.int(min: 1, max: 1_000_000, example: "1024") },
        "maxconnections": { g, v throws(ConfigError) in g.maxConnections = try v.int(min: 1, max: 1_000_000, example: "1024") },
        "unixsock": { g, v throws(ConfigError) in g.unixSocket = try v.string() },
        "duallisten": { g, v throws(ConfigError) in g.dualListen = try v.bool() },
        "user": { g, v throws(ConfigError) in g.user = try v.string() },
        "group": { g, v throws(ConfigError) in g.group = try v.string() },
        "nbdboot_max_per_client": { g, v throws(ConfigError) in g.maxPerClient = try v.int(min: 1, max: 1_000_000, example: "16") },
        "nbdboot_handshake_timeout": { g, v throws(ConfigError) in g.handshakeTimeout = try v.seconds() },
    ]

    static let export: [String: ExportSetter] = [
        "exportname": { e, v, _ throws(ConfigError) in
            let path = try v.string()
            if path.contains("%s") {
                throw ConfigError("\(v.location): exportname '\(path)' has %s (one file per client address, nbd-server's virtstyle), which nbdboot does not serve; give one image and use copy-on-write overlays for per-station data")
            }
            e.path = path
        },
        "readonly": { e, v, _ throws(ConfigError) in e.readOnly = try v.bool() },
        "filesize": { e, v, _ throws(ConfigError) in e.policy.fileSize = try v.size() },
        "authfile": { e, v, source throws(ConfigError) in
            let path = try v.string()
            switch source.read(path) {
            case .success(let text): e.policy.allow = try AllowList.parse(text, source: path)
            case .failure(let error):
                throw ConfigError("\(v.location): authfile \(path): \(error.message); create it (one address or CIDR range per line; an empty file admits nobody) or remove the key to admit everyone")
            }
        },
        "trim": { e, v, _ throws(ConfigError) in e.policy.trim = try v.bool() },
        "flush": { e, v, _ throws(ConfigError) in e.policy.flush = try v.bool() },
        "fua": { e, v, _ throws(ConfigError) in e.policy.fua = try v.bool() },
        "rotational": { e, v, _ throws(ConfigError) in e.policy.rotational = try v.bool() },
        "maxconnections": { e, v, _ throws(ConfigError) in e.policy.maxConnections = try v.int(min: 1, max: 1_000_000, example: "64") },
        "nbdboot_description": { e, v, _ throws(ConfigError) in
            let text = try v.string()
            guard text.utf8.count <= ExportSpec.maxDescription else {
                throw ConfigError("\(v.location): nbdboot_description is \(text.utf8.count) bytes, more than \(ExportSpec.maxDescription); shorten it")
            }
            e.description = text
        },
    ]

    /// nbd-server keys accepted with a warning: why each means nothing here.
    static let ignored: [String: String] = [
        "max_threads": "nbdboot serve runs up to 8 workers per connection on its own",
        "tlsprio": "TLS is not available in nbdboot serve",
        "certfile": "TLS is not available in nbdboot serve (a keyfile would be refused)",
        "cacertfile": "TLS is not available in nbdboot serve (a keyfile would be refused)",
        "splice": "nbdboot serve has no splice mode",
        "sdp": "Socket Direct Protocol is obsolete",
        "sync": "writes are not synced one by one; clients get FLUSH and FUA, which they send when they need durability",
        "virtstyle": "it only matters with %s in exportname, which nbdboot refuses",
        "sparse_cow": "it belongs to nbd-server's per-connection copy-on-write",
        "transactionlog": "nbdboot serve logs one line per event to stderr instead",
        "datalog": "nbdboot serve does not log data",
        "postrun": "commands are not run after a disconnect",
        "listenaddr": "it is ignored in an export section (nbd-server ignores it too); put it in [generic]",
        "timeout": "removed from nbd-server in 2009; nbdboot's handshake limit is nbdboot_handshake_timeout in [generic]",
    ]

    /// nbd-server keys refused when set (true, or any value for strings).
    static let refusedWhenSet: [String: String] = [
        "oldstyle": "nbd-server refuses it too since 3.10; run `nbdboot serve --oldstyle` for an oldstyle listener",
        "keyfile": "TLS is not available in nbdboot serve yet, and serving in clear text what the site secures with TLS would be a downgrade; keep nbd-server for TLS exports",
        "force_tls": "TLS is not available in nbdboot serve yet; keep nbd-server for TLS-only exports",
        "tlsonly": "TLS is not available in nbdboot serve yet; keep nbd-server for TLS-only exports",
        "multifile": "the export would be other bytes (name.0, name.1, ... joined); join the parts into one image",
        "treefiles": "the export would be other bytes (a tree of 4 KiB files); convert it to one image",
        "temporary": "nbdboot serves only existing images or copy-on-write overlays; use copyonwrite",
        "waitfile": "out-of-band migration is not implemented",
        "prerun": "its command would not run, so clients it refuses would get in; use authfile for access control",
    ]

    static func applyGeneric(_ v: ConfigValue, to g: inout GenericSettings, warnings: inout [String]) throws(ConfigError) {
        if let set = generic[v.key] { return try set(&g, v) }
        try skip(v, section: "[generic]", known: Array(generic.keys) + ["includedir"], warnings: &warnings)
    }

    /// The per-station keys (StationOptions.take(key:)): nbd-server's
    /// `copyonwrite` and `cowdir`, nbdboot's `overlays`, `swap`, `swapsize`.
    static let station = ["copyonwrite", "cowdir", "overlays", "swap", "swapsize"]

    static func applyExport(_ v: ConfigValue, to e: inout ExportSpec, station options: inout StationOptions,
                            source: ConfigSource, warnings: inout [String]) throws(ConfigError) {
        if let set = export[v.key] { return try set(&e, v, source) }
        if try options.take(key: v.key, value: v.text, input: v.location) { return }
        try skip(v, section: "export [\(e.name)]", known: Array(export.keys) + station, warnings: &warnings)
    }

    /// The end of an export section: the per-station kind from its keys
    /// (StationOptions.resolve, whose messages speak of `--export 'INPUT'`:
    /// here they name the section instead), and filesize only on plain exports.
    static func finishExport(_ e: inout ExportSpec, station options: StationOptions, location: String) throws(ConfigError) {
        let input = "[\(e.name)]"
        do {
            e.perStation = try options.resolve(path: e.path, readOnly: e.readOnly, input: input)
        } catch {
            var message = error.message
            let prefix = "--export '\(input)': "
            if message.hasPrefix(prefix) { message = String(message.dropFirst(prefix.count)) }
            throw ConfigError("\(location): export \(input): \(message) (in this file: cow is copyonwrite = true, size= is swapsize =, overlays= is overlays = or cowdir =)")
        }
        if e.perStation != nil, e.policy.fileSize != nil {
            throw ConfigError("\(location): export [\(e.name)]: filesize applies to plain exports; a cow export has its base image's size and a swap export takes swapsize")
        }
    }

    /// An unmapped key: a warning, a refusal, or the unknown-key error.
    private static func skip(_ v: ConfigValue, section: String, known: [String],
                             warnings: inout [String]) throws(ConfigError) {
        if let why = refusedWhenSet[v.key] {
            let isSet = (try? v.bool()) ?? !v.text.isEmpty
            if isSet { throw ConfigError("\(v.location): \(v.key) is not supported: \(why)") }
            return
        }
        if let why = ignored[v.key] {
            if (try? v.bool()) != false {
                warnings.append("\(v.location): warning: \(v.key) is nbd-server's and is ignored: \(why)")
            }
            return
        }
        let keys = known.sorted().joined(separator: ", ")
        throw ConfigError("\(v.location): unknown key '\(v.key)' in \(section); known keys: \(keys) (nbd-server(5) and docs/server.md)")
    }
}
