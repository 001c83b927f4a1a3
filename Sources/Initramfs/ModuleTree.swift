// The file side of module resolution: reads a kernel's module tables from
// ROOT/lib/modules/VER (running depmod into a scratch tree when modules.dep is
// missing, as in Debian's linux-image .deb, whose postinst runs depmod), and
// reads module files, decompressing .ko.xz/.ko.zst/.ko.gz.
import Foundation

public enum ModuleTreeError: Error, CustomStringConvertible {
    case noModuleDirectory(String, installed: [String])
    case unreadable(String, String)

    public var description: String {
        switch self {
        case let .noModuleDirectory(dir, installed):
            let hint = installed.isEmpty ? "" : " (kernels there: \(installed.joined(separator: ", ")))"
            return "no kernel modules at \(dir)\(hint); pass --module-root DIR holding lib/modules/VER, or another --kernel-version"
        case let .unreadable(path, why):
            return "cannot read \(path): \(why)"
        }
    }
}

/// The modules of one kernel release under a root directory.
public struct ModuleTree {
    public let root: URL
    public let release: String

    public init(root: String, release: String) {
        self.root = URL(fileURLWithPath: root)
        self.release = release
    }

    /// ROOT/lib/modules/VER.
    public var directory: URL { root.appendingPathComponent("lib/modules/\(release)") }

    /// Reads modules.dep, modules.softdep, modules.alias, modules.builtin and
    /// modules.builtin.modinfo; when modules.dep is missing, generates the tables with
    /// `depmod -b SCRATCH VER` over a tree of symlinks to the real files (the tree
    /// itself is never written to).
    /// - Returns: the index, and whether depmod had to be run.
    public func loadIndex() throws -> (index: ModuleIndex, ranDepmod: Bool) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDir), isDir.boolValue else {
            let parent = root.appendingPathComponent("lib/modules").path
            let installed = ((try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []).sorted()
            throw ModuleTreeError.noModuleDirectory(directory.path, installed: installed)
        }
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent("modules.dep").path) {
            return (try Self.readIndex(directory), false)
        }
        let scratch = try TempDir(prefix: "nbdboot-depmod")
        defer { scratch.remove() }
        let mirror = scratch.url.appendingPathComponent("lib/modules/\(release)")
        try Self.symlinkFarm(from: directory, to: mirror)
        _ = try Tool.run(["depmod", "-b", scratch.url.path, release], stdin: nil, dir: scratch)
        return (try Self.readIndex(mirror), true)
    }

    static func readIndex(_ dir: URL) throws -> ModuleIndex {
        var index = ModuleIndex()
        func text(_ name: String) throws -> String? {
            let url = dir.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { return nil }
            do { return try String(contentsOf: url, encoding: .utf8) } catch {
                throw ModuleTreeError.unreadable(url.path, "\(error)")
            }
        }
        index.parseDep(try text("modules.dep") ?? "")
        if let s = try text("modules.softdep") { index.parseSoftdep(s) }
        if let s = try text("modules.alias") { index.parseAlias(s) }
        if let s = try text("modules.builtin") { index.parseBuiltin(s) }
        let modinfo = dir.appendingPathComponent("modules.builtin.modinfo")
        if let d = FileManager.default.contents(atPath: modinfo.path) { index.parseBuiltinModinfo(Array(d)) }
        return index
    }

    /// Mirrors `source` at `dest`: real directories, symlinks for files.
    static func symlinkFarm(from source: URL, to dest: URL) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: dest, withIntermediateDirectories: true)
        guard let walker = fm.enumerator(atPath: source.path) else {
            throw ModuleTreeError.unreadable(source.path, "cannot list directory")
        }
        while let rel = walker.nextObject() as? String {
            let src = source.appendingPathComponent(rel)
            let dst = dest.appendingPathComponent(rel)
            var isDir: ObjCBool = false
            _ = fm.fileExists(atPath: src.path, isDirectory: &isDir)
            if isDir.boolValue {
                try fm.createDirectory(at: dst, withIntermediateDirectories: true)
            } else {
                try fm.createSymbolicLink(at: dst, withDestinationURL: src)
            }
        }
    }

    /// The bytes of a module file (path relative to lib/modules/VER, as in modules.dep),
    /// decompressed when it ends in .xz, .zst or .gz, and the path the plain .ko gets.
    public func moduleFile(_ relativePath: String) throws -> (path: String, data: [UInt8]) {
        let url = directory.appendingPathComponent(relativePath)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ModuleTreeError.unreadable(url.path, "missing or unreadable (modules.dep lists it)")
        }
        for (suffix, c) in [(".xz", Compression.xz), (".zst", .zstd), (".gz", .gzip)] where relativePath.hasSuffix(suffix) {
            return (String(relativePath.dropLast(suffix.count)), try c.decompress(Array(data)[...]))
        }
        return (relativePath, Array(data))
    }
}
