// Writing newc archives: entries in, bytes out. No file system access: the
// caller (ImageBuilder) decides what goes in and in which order.

/// One archive member as the kernel sees it: a path, a type with permission
/// bits, and the contents (file data, or a symlink's target).
public struct CpioEntry: Equatable, Sendable {
    /// Path inside the archive, relative, without a leading "/" (e.g. "sbin/nbd-client").
    public var path: String
    /// Full `st_mode`: type bits | permission bits.
    public var mode: UInt32
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var nlink: UInt32
    public var mtime: UInt32 = 0
    /// File data, or the target of a symlink (no NUL). Empty for other types.
    public var data: [UInt8]
    public var ino: UInt32 = 0
    public var devMajor: UInt32 = 0
    public var devMinor: UInt32 = 0
    /// Device number of a character or block device node.
    public var rdevMajor: UInt32 = 0
    public var rdevMinor: UInt32 = 0

    public init(path: String, mode: UInt32, nlink: UInt32, data: [UInt8] = []) {
        self.path = path; self.mode = mode; self.nlink = nlink; self.data = data
    }

    public var type: FileType? { FileType(mode: mode) }
    public var permissions: UInt32 { mode & 0o7777 }

    /// A directory with `permissions` (nlink 2, as for an empty directory).
    public static func directory(_ path: String, permissions: UInt32 = 0o755) -> CpioEntry {
        CpioEntry(path: path, mode: FileType.directory.rawValue | permissions, nlink: 2)
    }

    /// A regular file.
    public static func file(_ path: String, permissions: UInt32 = 0o644, data: [UInt8]) -> CpioEntry {
        CpioEntry(path: path, mode: FileType.regular.rawValue | permissions, nlink: 1, data: data)
    }

    /// A symbolic link to `target`.
    public static func symlink(_ path: String, target: String) -> CpioEntry {
        CpioEntry(path: path, mode: FileType.symlink.rawValue | 0o777, nlink: 1, data: Array(target.utf8))
    }

    /// A character device node (`mknod(path, S_IFCHR|perm, makedev(major, minor))`).
    public static func characterDevice(_ path: String, permissions: UInt32, major: UInt32, minor: UInt32) -> CpioEntry {
        var e = CpioEntry(path: path, mode: FileType.characterDevice.rawValue | permissions, nlink: 1)
        e.rdevMajor = major; e.rdevMinor = minor
        return e
    }

    var header: NewcHeader {
        var h = NewcHeader()
        h.ino = ino; h.mode = mode; h.uid = uid; h.gid = gid; h.nlink = nlink; h.mtime = mtime
        h.fileSize = UInt32(data.count)
        h.devMajor = devMajor; h.devMinor = devMinor; h.rdevMajor = rdevMajor; h.rdevMinor = rdevMinor
        return h
    }
}

/// Appends newc records to a byte buffer.
///
///     var w = CpioWriter()
///     try w.append(.directory("dev"))
///     try w.append(.file("init", permissions: 0o755, data: bytes))
///     let archive = w.finish()   // adds TRAILER!!!
public struct CpioWriter {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    /// Appends one record: header, name, padding, data, padding.
    public mutating func append(_ entry: CpioEntry) throws(NewcError) {
        guard entry.data.count <= Int(UInt32.max) else {
            throw .unencodable("\(entry.path) is larger than 4 GiB")
        }
        bytes += try Newc.encodeHeaderAndName(entry.header, name: entry.path)
        bytes += entry.data
        while bytes.count % 4 != 0 { bytes.append(0) }
    }

    /// Appends the trailer and returns the archive.
    public mutating func finish() -> [UInt8] {
        bytes += Newc.trailer()
        return bytes
    }

    /// Writes `entries` in the given order, then the trailer.
    public static func archive(_ entries: [CpioEntry]) throws(NewcError) -> [UInt8] {
        var w = CpioWriter()
        for e in entries { try w.append(e) }
        return w.finish()
    }
}
