// The file map of a station initramfs, and its contract with the static init
// (keep both sides in step):
//
//   dev proc sys run tmp newroot sbin etc etc/nbdboot lib/modules/VER   dirs 0755
//   dev/console   char 5,1 0600      dev/null   char 1,3 0666
//   init              the static init, 0755
//   sbin/nbd-client   the static nbd-client, 0755
//   lib/modules/VER/<path from modules.dep, without .xz/.zst/.gz>   modules, 0644
//   etc/nbdboot/modules          one line per module in load order:
//                                "lib/modules/VER/kernel/drivers/block/nbd.ko max_part=15"
//                                (path relative to /, then optionally " " and parameters)
//   etc/nbdboot/kernel-release   "VER\n"
//   bin/busybox       busybox-static, 0755, and bin/sh -> busybox (only with --with-busybox:
//                     the init offers a rescue shell when /bin/busybox exists)
//
// Pure: entries in, sorted and numbered entries out.

public enum ImageLayoutError: Error, Equatable, CustomStringConvertible {
    case badPath(String, String)
    case duplicate(String)

    public var description: String {
        switch self {
        case let .badPath(p, why): return "bad image path \"\(p)\": \(why)"
        case let .duplicate(p): return "two files want the image path /\(p); drop one --add-file (or pick another destination)"
        }
    }
}

/// A set of archive entries keyed by path; parent directories are created as needed.
public struct FileMap {
    public private(set) var entries: [String: CpioEntry] = [:]

    public init() {}

    /// Normalises an image path: no leading "/", no "." or empty components; ".." refused.
    public static func normalize(_ path: String) throws(ImageLayoutError) -> String {
        var parts: [Substring] = []
        for c in path.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." { throw .badPath(path, "\"..\" is not allowed") }
            parts.append(c)
        }
        if parts.isEmpty { throw .badPath(path, "names no file") }
        return parts.joined(separator: "/")
    }

    /// Adds `entry` (its path normalised) and any missing parent directories (0755).
    /// Adding a directory that exists is a no-op; any other clash is an error.
    public mutating func add(_ entry: CpioEntry) throws(ImageLayoutError) {
        var e = entry
        e.path = try FileMap.normalize(entry.path)
        if let old = entries[e.path] {
            if old.type == .directory && e.type == .directory { return }
            throw .duplicate(e.path)
        }
        let parts = e.path.split(separator: "/")
        for i in 1..<max(1, parts.count) {
            let parent = parts[0..<i].joined(separator: "/")
            if let p = entries[parent] {
                if p.type != .directory { throw .badPath(e.path, "its parent /\(parent) is not a directory") }
            } else {
                entries[parent] = .directory(parent)
            }
        }
        entries[e.path] = e
    }

    /// The entries sorted parents-first (component-wise byte order), numbered from
    /// `firstInode`, owned by 0:0, with `mtime`: the same map gives the same archive.
    public func reproducibleEntries(mtime: UInt32, firstInode: UInt32 = 1) -> [CpioEntry] {
        let sorted = entries.values.sorted { FileMap.pathLess($0.path, $1.path) }
        var ino = firstInode
        return sorted.map { e in
            var e = e
            e.ino = ino; ino += 1
            e.uid = 0; e.gid = 0; e.mtime = mtime
            e.nlink = e.type == .directory ? 2 : 1
            e.devMajor = 0; e.devMinor = 0
            return e
        }
    }

    /// Component-wise comparison of UTF-8 bytes: "a" < "a/b" < "a-b" (a parent sorts before its children).
    static func pathLess(_ a: String, _ b: String) -> Bool {
        let ca = a.split(separator: "/"), cb = b.split(separator: "/")
        for (x, y) in zip(ca, cb) where x != y {
            return Array(x.utf8).lexicographicallyPrecedes(Array(y.utf8))
        }
        return ca.count < cb.count
    }
}

/// What goes into a station image, already read from disk.
public struct ImageContents {
    public var kernelRelease: String
    public var initData: [UInt8]
    public var nbdClientData: [UInt8]
    /// Modules in load order, with their plain .ko data; `path` relative to lib/modules/VER.
    public var modules: [(module: ResolvedModule, path: String, data: [UInt8])]
    /// Extra files: image path -> (data, permissions).
    public var extraFiles: [(path: String, data: [UInt8], permissions: UInt32)]
    /// A static busybox for the rescue shell, or nil.
    public var busyboxData: [UInt8]? = nil

    public init(kernelRelease: String, initData: [UInt8], nbdClientData: [UInt8],
                modules: [(module: ResolvedModule, path: String, data: [UInt8])] = [],
                extraFiles: [(path: String, data: [UInt8], permissions: UInt32)] = []) {
        self.kernelRelease = kernelRelease; self.initData = initData; self.nbdClientData = nbdClientData
        self.modules = modules; self.extraFiles = extraFiles
    }
}

public enum ImageLayout {
    /// Directories every image has (the init mounts onto them).
    public static let directories = ["dev", "proc", "sys", "run", "tmp", "newroot", "sbin", "etc", "etc/nbdboot"]
    public static let modulesListPath = "etc/nbdboot/modules"
    public static let kernelReleasePath = "etc/nbdboot/kernel-release"
    /// Where the init looks for busybox (rescue shell, rd.break).
    public static let busyboxPath = "bin/busybox"

    /// The text of etc/nbdboot/modules.
    public static func modulesList(release: String, modules: [(module: ResolvedModule, path: String)]) -> String {
        modules.map { m in
            let line = "lib/modules/\(release)/\(m.path)"
            return m.module.options.isEmpty ? line + "\n" : line + " " + m.module.options + "\n"
        }.joined()
    }

    /// The file map of `contents`.
    public static func fileMap(_ c: ImageContents) throws(ImageLayoutError) -> FileMap {
        if c.kernelRelease.isEmpty || c.kernelRelease.contains("/") || c.kernelRelease == ".." {
            throw .badPath(c.kernelRelease, "not a kernel release")
        }
        var map = FileMap()
        for d in directories + ["lib/modules/\(c.kernelRelease)"] { try map.add(.directory(d)) }
        try map.add(.characterDevice("dev/console", permissions: 0o600, major: 5, minor: 1))
        try map.add(.characterDevice("dev/null", permissions: 0o666, major: 1, minor: 3))
        try map.add(.file("init", permissions: 0o755, data: c.initData))
        try map.add(.file("sbin/nbd-client", permissions: 0o755, data: c.nbdClientData))
        for m in c.modules {
            try map.add(.file("lib/modules/\(c.kernelRelease)/\(m.path)", permissions: 0o644, data: m.data))
        }
        let list = modulesList(release: c.kernelRelease, modules: c.modules.map { ($0.module, $0.path) })
        try map.add(.file(modulesListPath, data: Array(list.utf8)))
        try map.add(.file(kernelReleasePath, data: Array((c.kernelRelease + "\n").utf8)))
        if let bb = c.busyboxData {
            try map.add(.file(busyboxPath, permissions: 0o755, data: bb))
            try map.add(.symlink("bin/sh", target: "busybox"))
        }
        for f in c.extraFiles { try map.add(.file(f.path, permissions: f.permissions, data: f.data)) }
        return map
    }
}
