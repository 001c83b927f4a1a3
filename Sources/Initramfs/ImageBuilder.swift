// `nbdboot initramfs build`: the build steps. Resolve modules, read every input,
// lay out the file map (ImageLayout), write the newc archive, compress, and
// write the output atomically. Every input problem fails here, at build time,
// not on the station.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Everything `build` needs; paths are host paths.
public struct BuildOptions {
    public var kernelRelease: String
    public var moduleRoot = "/"
    public var profile = Profile.qemuVirtio
    public var extraModules: [String] = []
    public var moduleOptions = Profile.defaultOptions
    public var initPath: String
    public var nbdClientPath: String
    /// (host source, image destination).
    public var extraFiles: [(source: String, destination: String)] = []
    public var compression = Compression.zstd
    /// mtime of every entry (SOURCE_DATE_EPOCH, else 0).
    public var mtime: UInt32 = 0
    /// A static busybox to add as /bin/busybox (rescue shell), or nil.
    public var busyboxPath: String? = nil
    /// Directory to build the early microcode archive from (laid out like /lib/firmware), or nil for none.
    public var microcodeDirectory: String? = nil
    /// The kernel's .config; nil: `KernelConfig.locate` (ROOT/boot/config-VER, /boot/config-VER).
    public var kernelConfigPath: String? = nil

    public init(kernelRelease: String, initPath: String, nbdClientPath: String) {
        self.kernelRelease = kernelRelease; self.initPath = initPath; self.nbdClientPath = nbdClientPath
    }
}

/// What a build produced.
public struct BuildResult {
    /// The (compressed) image bytes.
    public var image: [UInt8]
    /// The uncompressed newc archive size (the main archive).
    public var archiveSize: Int
    /// Size of the early (uncompressed microcode) archive at the start of `image`; 0 without one.
    public var earlySize = 0
    /// Paths in the early archive.
    public var earlyFiles: [String] = []
    /// The kernel configuration the compression was checked against, or nil when none was found.
    public var kernelConfig: String? = nil
    /// Things the user should know (the build still succeeded).
    public var warnings: [String] = []
    public var entries: [CpioEntry]
    public var resolution: Resolution
    /// True when modules.dep was missing and depmod ran on a scratch copy.
    public var ranDepmod: Bool

    public var fileCount: Int { entries.filter { $0.type == .regular }.count }
}

public struct BuildError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum ImageBuilder {
    /// Builds the image bytes (does not write the output; see `write`).
    public static func build(_ o: BuildOptions) throws -> BuildResult {
        var warnings: [String] = []
        // The kernel's configuration first: a compression it cannot unpack fails before any work.
        let configPath = o.kernelConfigPath ?? KernelConfig.locate(moduleRoot: o.moduleRoot, release: o.kernelRelease)
        if let configPath {
            let config = try KernelConfig.load(configPath)
            try config.check(o.compression)
            if o.microcodeDirectory != nil { warnings += config.microcodeWarnings() }
        }
        let tree = ModuleTree(root: o.moduleRoot, release: o.kernelRelease)
        let (index, ranDepmod) = try tree.loadIndex()
        let resolver = ModuleResolver(index: index, release: o.kernelRelease, options: o.moduleOptions)
        let resolution = try resolver.resolve(o.profile.modules(index: index) + o.extraModules)
        var modules: [(module: ResolvedModule, path: String, data: [UInt8])] = []
        for m in resolution.modules {
            let (path, data) = try tree.moduleFile(m.path)
            modules.append((m, path, data))
        }
        var extras: [(path: String, data: [UInt8], permissions: UInt32)] = []
        for f in o.extraFiles {
            let (data, exec) = try readInput(f.source, what: "--add-file \(f.source):\(f.destination)")
            extras.append((f.destination, data, exec ? 0o755 : 0o644))
        }
        var contents = ImageContents(
            kernelRelease: o.kernelRelease,
            initData: try readInput(o.initPath, what: "the init (--init)").data,
            nbdClientData: try readInput(o.nbdClientPath, what: "the nbd-client (--nbd-client)").data,
            modules: modules, extraFiles: extras)
        if let bb = o.busyboxPath { contents.busyboxData = try readBusybox(bb) }
        let entries = try ImageLayout.fileMap(contents).reproducibleEntries(mtime: o.mtime)
        let archive = try CpioWriter.archive(entries)
        var image: [UInt8] = []
        var early: (archive: [UInt8], files: [String]) = ([], [])
        if let dir = o.microcodeDirectory {
            early = try Microcode.earlyArchive(from: dir, mtime: o.mtime)
            image = early.archive
        }
        image += try o.compression.compress(archive)
        return BuildResult(image: image, archiveSize: archive.count, earlySize: early.archive.count,
                           earlyFiles: early.files, kernelConfig: configPath, warnings: warnings,
                           entries: entries, resolution: resolution, ranDepmod: ranDepmod)
    }

    /// Reads busybox and makes sure it can run without a C library in the image.
    static func readBusybox(_ path: String) throws -> [UInt8] {
        let data = try readInput(path, what: "--with-busybox").data
        switch StaticBinary.kind(data) {
        case .staticELF: return data
        case let .dynamicELF(interp):
            throw BuildError("--with-busybox: \(path) is dynamically linked (needs \(interp)), and the image has no C library; "
                + "install busybox-static (apt-get install busybox-static) or pass --busybox FILE with a static busybox")
        case .notELF:
            throw BuildError("--with-busybox: \(path) is not an ELF executable; pass --busybox FILE with a static busybox")
        }
    }

    /// Reads a regular file (following symlinks); `exec` tells whether the owner may execute it.
    static func readInput(_ path: String, what: String) throws -> (data: [UInt8], exec: Bool) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw BuildError("\(what): \(path) does not exist")
        }
        if isDir.boolValue { throw BuildError("\(what): \(path) is a directory; give a file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BuildError("\(what): cannot read \(path)")
        }
        let attrs = try? FileManager.default.attributesOfItem(atPath: path)
        let perms = (attrs?[.posixPermissions] as? NSNumber)?.uint32Value ?? 0
        return (Array(data), perms & 0o100 != 0)
    }

    /// Writes `bytes` to `path` through a temporary file in the same directory and rename(2),
    /// so a reader never sees half an image.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let url = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        let parent = url.deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDir), isDir.boolValue else {
            throw BuildError("cannot write \(path): directory \(parent) does not exist")
        }
        let tmp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
        do {
            try Data(bytes).write(to: tmp)
            guard rename(tmp.path, url.path) == 0 else {
                throw BuildError("rename: \(String(cString: strerror(errno)))")
            }
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw BuildError("cannot write \(path): \(error.localizedDescription)")
        }
    }

    /// Where `init` and `nbd-client` are looked for when not given: `static/` beside the
    /// directory holding the running executable (.build/release/nbdboot -> .build/static/;
    /// both the path as invoked and the resolved one), then /usr/lib/nbdboot.
    public static func staticDirectories(invokedAs argv0: String) -> [String] {
        var dirs: [String] = []
        func add(_ exe: URL) {
            let d = exe.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("static").path
            if !dirs.contains(d) { dirs.append(d) }
        }
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        if argv0.contains("/") {
            add(URL(fileURLWithPath: argv0, relativeTo: cwd).standardizedFileURL)
        }
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            add(URL(fileURLWithPath: exe))
        }
        dirs.append("/usr/lib/nbdboot")
        return dirs
    }

    /// The first `dir/name` that exists, or an error telling how to get one.
    public static func locateStatic(_ name: String, option: String, in dirs: [String]) throws -> String {
        for d in dirs where FileManager.default.fileExists(atPath: d + "/" + name) { return d + "/" + name }
        throw BuildError("no static \(name) found (looked in \(dirs.joined(separator: ", "))): run `make static`, or pass \(option) FILE")
    }
}
