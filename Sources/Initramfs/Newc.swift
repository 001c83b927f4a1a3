// The newc ("SVR4 portable, no CRC") cpio record format, the only format the
// Linux kernel unpacks into its rootfs (Documentation/driver-api/early-userspace/
// buffer-format.rst and init/initramfs.c). Pure: bytes in, bytes out.
//
// One record is
//
//     header   110 bytes: "070701" then 13 fields, each 8 ASCII hex digits:
//              ino mode uid gid nlink mtime filesize devmajor devminor
//              rdevmajor rdevminor namesize check
//     name     namesize bytes, the last one NUL
//     padding  NULs up to a multiple of 4, counted from the record's start
//     data     filesize bytes (a symlink's data is its target, no NUL)
//     padding  NULs up to a multiple of 4
//
// An archive ends with a record named "TRAILER!!!". "070702" is the same layout
// whose `check` field holds the sum of the data bytes; readers accept both.

/// File type bits of `st_mode` (`S_IFMT` and friends from <sys/stat.h>).
public enum FileType: UInt32, Sendable {
    case socket = 0o140000
    case symlink = 0o120000
    case regular = 0o100000
    case blockDevice = 0o060000
    case directory = 0o040000
    case characterDevice = 0o020000
    case fifo = 0o010000

    /// The `S_IFMT` mask.
    public static let mask: UInt32 = 0o170000

    /// The type encoded in `mode`, or nil for an unknown value.
    public init?(mode: UInt32) { self.init(rawValue: mode & FileType.mask) }
}

/// The 13 numeric fields of a newc header, in on-disk order.
public struct NewcHeader: Equatable, Sendable {
    public var ino: UInt32 = 0
    public var mode: UInt32 = 0
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var nlink: UInt32 = 0
    public var mtime: UInt32 = 0
    public var fileSize: UInt32 = 0
    public var devMajor: UInt32 = 0
    public var devMinor: UInt32 = 0
    public var rdevMajor: UInt32 = 0
    public var rdevMinor: UInt32 = 0
    /// Length of the name including its terminating NUL.
    public var nameSize: UInt32 = 0
    public var check: UInt32 = 0

    public init() {}

    /// Field names in on-disk order, for error messages.
    static let fieldNames = [
        "ino", "mode", "uid", "gid", "nlink", "mtime", "filesize",
        "devmajor", "devminor", "rdevmajor", "rdevminor", "namesize", "check",
    ]

    var fields: [UInt32] {
        [ino, mode, uid, gid, nlink, mtime, fileSize, devMajor, devMinor, rdevMajor, rdevMinor, nameSize, check]
    }

    init(fields f: [UInt32]) {
        ino = f[0]; mode = f[1]; uid = f[2]; gid = f[3]; nlink = f[4]; mtime = f[5]
        fileSize = f[6]; devMajor = f[7]; devMinor = f[8]; rdevMajor = f[9]; rdevMinor = f[10]
        nameSize = f[11]; check = f[12]
    }
}

/// Why bytes are not a valid newc record. Offsets count from the start of the
/// buffer handed to the decoder.
public enum NewcError: Error, Equatable, CustomStringConvertible {
    /// Fewer bytes remain than the record needs.
    case truncated(offset: Int, needed: Int, available: Int)
    /// The record does not start with "070701" or "070702".
    case badMagic(offset: Int, found: String)
    /// A header field holds something other than 8 hex digits.
    case badField(offset: Int, field: String, text: String)
    /// namesize is 0, or larger than the limit the reader accepts.
    case badNameSize(offset: Int, nameSize: UInt32)
    /// The name's last byte is not NUL, or the name is not UTF-8.
    case badName(offset: Int)
    /// Bytes after a trailer are neither zero padding nor another archive.
    case unknownData(offset: Int, firstBytes: String)
    /// A name or field does not fit the format (writer side).
    case unencodable(String)

    public var description: String {
        switch self {
        case let .truncated(o, n, a):
            return "newc record at offset \(o) is truncated: needs \(n) bytes, \(a) left (file cut short?)"
        case let .badMagic(o, f):
            return "no newc cpio record at offset \(o): magic is \"\(f)\", expected \"070701\" (not an uncompressed newc archive)"
        case let .badField(o, f, t):
            return "newc header at offset \(o): field \(f) is \"\(t)\", expected 8 hex digits"
        case let .badNameSize(o, n):
            return "newc header at offset \(o): namesize \(n) is out of range (1...\(Newc.maxNameSize))"
        case let .badName(o):
            return "newc record at offset \(o): name is not NUL-terminated UTF-8"
        case let .unknownData(o, b):
            return "unrecognised data at offset \(o) (bytes \(b)): neither a newc archive nor a known compression"
        case let .unencodable(why):
            return "cannot encode newc record: \(why)"
        }
    }
}

/// Encoding and decoding of single newc records.
public enum Newc {
    public static let magic: [UInt8] = Array("070701".utf8)
    public static let magicCRC: [UInt8] = Array("070702".utf8)
    public static let headerSize = 110
    public static let trailerName = "TRAILER!!!"
    /// Longest name a reader accepts; the kernel's limit is PATH_MAX (4096).
    public static let maxNameSize: UInt32 = 4096

    /// Rounds `n` up to a multiple of 4 (newc alignment).
    @inline(__always) public static func align4(_ n: Int) -> Int { (n + 3) & ~3 }

    /// Encodes a header followed by `name`, its NUL and the padding, so that
    /// the data may follow directly. `header.nameSize` is set from `name`.
    public static func encodeHeaderAndName(_ header: NewcHeader, name: String) throws(NewcError) -> [UInt8] {
        let nameBytes = Array(name.utf8)
        if nameBytes.isEmpty || nameBytes.contains(0) {
            throw .unencodable("name \"\(name)\" is empty or contains NUL")
        }
        if nameBytes.count + 1 > Int(maxNameSize) {
            throw .unencodable("name \"\(name.prefix(40))...\" is longer than \(maxNameSize - 1) bytes")
        }
        var h = header
        h.nameSize = UInt32(nameBytes.count + 1)
        var out = magic
        out.reserveCapacity(align4(headerSize + nameBytes.count + 1))
        for value in h.fields { appendHex8(value, to: &out) }
        out += nameBytes
        out.append(0)
        while out.count % 4 != 0 { out.append(0) }
        return out
    }

    /// The trailer record ("TRAILER!!!", nlink 1, everything else 0), as GNU cpio writes it.
    public static func trailer() -> [UInt8] {
        var h = NewcHeader()
        h.nlink = 1
        // The name is constant and valid: encoding cannot fail.
        return (try? encodeHeaderAndName(h, name: trailerName)) ?? []
    }

    /// Decodes the header and name of the record at `offset` in `bytes`.
    /// - Returns: the header, the name (without NUL) and the offset of the data.
    public static func decodeHeaderAndName(_ bytes: [UInt8], at offset: Int) throws(NewcError)
        -> (header: NewcHeader, name: String, dataOffset: Int)
    {
        let available = bytes.count - offset
        guard available >= 6 else {
            throw .truncated(offset: offset, needed: headerSize, available: max(0, available))
        }
        let m = Array(bytes[offset..<offset + 6])
        guard m == magic || m == magicCRC else {
            throw .badMagic(offset: offset, found: printable(m))
        }
        guard available >= headerSize else {
            throw .truncated(offset: offset, needed: headerSize, available: available)
        }
        var fields: [UInt32] = []
        fields.reserveCapacity(13)
        for i in 0..<13 {
            let start = offset + 6 + i * 8
            guard let v = parseHex8(bytes, at: start) else {
                throw .badField(offset: offset, field: NewcHeader.fieldNames[i], text: printable(Array(bytes[start..<start + 8])))
            }
            fields.append(v)
        }
        let header = NewcHeader(fields: fields)
        guard header.nameSize >= 1, header.nameSize <= maxNameSize else {
            throw .badNameSize(offset: offset, nameSize: header.nameSize)
        }
        let nameEnd = offset + headerSize + Int(header.nameSize)
        guard nameEnd <= bytes.count else {
            throw .truncated(offset: offset, needed: headerSize + Int(header.nameSize), available: available)
        }
        guard bytes[nameEnd - 1] == 0,
              let name = String(validating: bytes[(offset + headerSize)..<(nameEnd - 1)], as: UTF8.self)
        else { throw .badName(offset: offset) }
        return (header, name, offset + align4(headerSize + Int(header.nameSize)))
    }

    static func appendHex8(_ value: UInt32, to out: inout [UInt8]) {
        let digits = Array("0123456789ABCDEF".utf8)  // upper case, as GNU cpio writes
        for shift in stride(from: 28, through: 0, by: -4) {
            out.append(digits[Int((value >> UInt32(shift)) & 0xf)])
        }
    }

    static func parseHex8(_ bytes: [UInt8], at start: Int) -> UInt32? {
        var v: UInt32 = 0
        for i in start..<start + 8 {
            let c = bytes[i]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: return nil
            }
            v = v << 4 | UInt32(d)
        }
        return v
    }

    /// Bytes as text for messages: printable ASCII as is, others as \xNN.
    static func printable(_ bytes: [UInt8]) -> String {
        var s = ""
        for b in bytes {
            if b >= 0x20 && b < 0x7f { s.unicodeScalars.append(Unicode.Scalar(b)) }
            else { s += "\\x" + String(b, radix: 16).leftPad(2) }
        }
        return s
    }
}

extension String {
    func leftPad(_ width: Int, with c: Character = "0") -> String {
        count >= width ? self : String(repeating: c, count: width - count) + self
    }
}
