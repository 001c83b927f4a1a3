// `nbdboot initramfs ls` and `extract`: read any initramfs image (ours, Debian's,
// dracut's: uncompressed, compressed, or an uncompressed early archive followed by
// a compressed one) and list or unpack it.
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

public enum InspectError: Error, CustomStringConvertible {
    case unsafePath(String, String)
    case io(String, String)
    case unreadable(String)

    public var description: String {
        switch self {
        case let .unsafePath(p, why): return "refusing to extract \"\(p)\": \(why); nothing was written"
        case let .io(p, why): return "cannot extract \(p): \(why)"
        case let .unreadable(p): return "cannot read \(p) (missing or unreadable)"
        }
    }
}

public enum Inspect {
    /// Reads an image file and splits it into members, decompressing with the standard tools.
    public static func read(_ path: String) throws -> [ImageMember] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw InspectError.unreadable(path)
        }
        return try ImageWalk.members(Array(data)) { c, bytes in try c.decompress(bytes) }
    }

    /// `ls -l`-style mode string: "drwxr-xr-x", "crw-------", "-rwsr-xr-x".
    public static func modeString(_ mode: UInt32) -> String {
        let t: Character
        switch FileType(mode: mode) {
        case .directory: t = "d"
        case .symlink: t = "l"
        case .characterDevice: t = "c"
        case .blockDevice: t = "b"
        case .fifo: t = "p"
        case .socket: t = "s"
        case .regular: t = "-"
        case nil: t = "?"
        }
        var s = String(t)
        let rwx: [Character] = ["r", "w", "x"]
        for i in 0..<9 {
            let bit = UInt32(1) << UInt32(8 - i)
            var c: Character = mode & bit != 0 ? rwx[i % 3] : "-"
            if i == 2 && mode & 0o4000 != 0 { c = c == "x" ? "s" : "S" }
            if i == 5 && mode & 0o2000 != 0 { c = c == "x" ? "s" : "S" }
            if i == 8 && mode & 0o1000 != 0 { c = c == "x" ? "t" : "T" }
            s.append(c)
        }
        return s
    }

    /// One listing line, like `lsinitramfs -l` (`cpio -tv`): mode, links, uid, gid,
    /// size (or "major, minor" for a device node), path, and "-> target" for a symlink.
    public static func line(_ e: CpioEntry) -> String {
        let size: String
        switch e.type {
        case .characterDevice, .blockDevice: size = "\(e.rdevMajor), \(e.rdevMinor)"
        default: size = String(e.data.count)
        }
        var s = modeString(e.mode) + " " + String(e.nlink).leftPad(3, with: " ") + " "
            + String(e.uid).padRight(5) + " " + String(e.gid).padRight(5) + " "
            + size.leftPad(10, with: " ") + " " + e.path
        if e.type == .symlink { s += " -> " + String(decoding: e.data, as: UTF8.self) }
        return s
    }

    /// Image paths may not leave the extraction directory: a leading "/" or "./" is
    /// dropped (GNU cpio does the same), ".." is refused. Returns nil for the root itself (".").
    static func safeRelativePath(_ name: String) throws -> String? {
        var parts: [Substring] = []
        for c in name.split(separator: "/") where c != "." {
            if c == ".." { throw InspectError.unsafePath(name, "contains \"..\"") }
            parts.append(c)
        }
        return parts.isEmpty ? nil : parts.joined(separator: "/")
    }

    /// What `extract` did.
    public struct ExtractReport {
        public var extracted = 0
        public var notes: [String] = []
    }

    /// Extracts `members` under `dir` (created if needed): directories, regular files (hard links
    /// kept), symlinks, fifos; device nodes only when running as root (mknod(2) needs
    /// CAP_MKNOD), else skipped with a note. Every path is checked before anything is written;
    /// an entry whose parent inside `dir` is a symlink is refused (it could point outside).
    public static func extract(_ members: [ImageMember], to dir: String) throws -> ExtractReport {
        let fm = FileManager.default
        var plan: [(String, CpioEntry)] = []
        for m in members {
            for e in m.entries {
                if let p = try safeRelativePath(e.path) { plan.append((p, e)) }
            }
        }
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let root = geteuid() == 0
        var report = ExtractReport()
        // Hard links: regular files with nlink > 1 sharing (dev, ino); newc stores the data once.
        typealias Key = [UInt32]
        var linkData: [Key: [UInt8]] = [:]
        var linkFirst: [Key: String] = [:]
        for (_, e) in plan where e.type == .regular && e.nlink > 1 && !e.data.isEmpty {
            linkData[[e.devMajor, e.devMinor, e.ino]] = e.data
        }
        var dirModes: [(String, UInt32)] = []
        for (rel, e) in plan {
            let path = dir + "/" + rel
            try ensureParents(rel, under: dir)
            switch e.type {
            case .directory:
                if !isDirectory(path) {
                    try removeExisting(path)
                    try fm.createDirectory(atPath: path, withIntermediateDirectories: false)
                }
                dirModes.append((path, e.permissions))
            case .regular:
                try removeExisting(path)
                let key: Key = [e.devMajor, e.devMinor, e.ino]
                if e.nlink > 1, let first = linkFirst[key] {
                    do { try fm.linkItem(atPath: first, toPath: path) } catch { throw InspectError.io(path, "\(error)") }
                } else {
                    let data = e.nlink > 1 ? (linkData[key] ?? e.data) : e.data
                    guard fm.createFile(atPath: path, contents: Data(data)) else { throw InspectError.io(path, "create failed") }
                    guard chmod(path, mode_t(e.permissions)) == 0 else { throw InspectError.io(path, "chmod failed") }
                    if e.nlink > 1 { linkFirst[key] = path }
                }
            case .symlink:
                try removeExisting(path)
                do {
                    try fm.createSymbolicLink(atPath: path, withDestinationPath: String(decoding: e.data, as: UTF8.self))
                } catch { throw InspectError.io(path, "\(error)") }
            case .characterDevice, .blockDevice, .fifo:
                if e.type != .fifo && !root {
                    report.notes.append("skipped device node \(rel) (\(e.rdevMajor),\(e.rdevMinor)): creating it needs root")
                    continue
                }
                try removeExisting(path)
                let dev = makeDevice(e.rdevMajor, e.rdevMinor)
                // mknod(2) applies the umask: set the permissions afterwards.
                guard mknod(path, mode_t(e.mode), dev) == 0, chmod(path, mode_t(e.permissions)) == 0 else {
                    throw InspectError.io(path, "mknod: \(String(cString: strerror(errno)))")
                }
            case .socket, nil:
                report.notes.append("skipped \(rel): unsupported file type (mode \(String(e.mode, radix: 8)))")
                continue
            }
            report.extracted += 1
        }
        // Directory permissions last, deepest first, so a read-only directory does not block its children.
        for (path, perms) in dirModes.reversed() { _ = chmod(path, mode_t(perms)) }
        return report
    }

    /// gnu_dev_makedev(3) from <sys/sysmacros.h>, which Swift does not import (it is a macro on some libcs).
    static func makeDevice(_ major: UInt32, _ minor: UInt32) -> dev_t {
        let ma = UInt64(major), mi = UInt64(minor)
        return dev_t(((ma & 0xfffff000) << 32) | ((ma & 0x00000fff) << 8) | ((mi & 0xffffff00) << 12) | (mi & 0x000000ff))
    }

    /// Makes the parent directories of `rel` under `dir`, refusing any that is a symlink.
    static func ensureParents(_ rel: String, under dir: String) throws {
        let parts = rel.split(separator: "/").dropLast()
        var path = dir
        for p in parts {
            path += "/" + p
            var st = stat()
            if lstat(path, &st) == 0 {
                if st.st_mode & S_IFMT == S_IFLNK {
                    throw InspectError.unsafePath(rel, "its parent \(path) is a symlink (it could point outside \(dir))")
                }
                if st.st_mode & S_IFMT != S_IFDIR { throw InspectError.io(rel, "\(path) is not a directory") }
            } else if mkdir(path, 0o755) != 0 {
                throw InspectError.io(path, "mkdir: \(String(cString: strerror(errno)))")
            }
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
    }

    /// Removes a non-directory at `path` (an archive entry replaces what an earlier one wrote).
    static func removeExisting(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if st.st_mode & S_IFMT == S_IFDIR { throw InspectError.io(path, "a directory is in the way") }
        guard unlink(path) == 0 else { throw InspectError.io(path, "unlink: \(String(cString: strerror(errno)))") }
    }
}

extension String {
    func padRight(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
