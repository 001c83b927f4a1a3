// Reading newc archives, and walking an initramfs image the way the kernel's
// unpack_to_rootfs() does (init/initramfs.c): a sequence of members, each an
// uncompressed newc archive or a compressed stream that itself holds newc
// archives, separated by zero padding. Debian's and dracut's images are an
// uncompressed "early" archive (CPU microcode) followed by a compressed one.

/// Decodes records until the trailer.
public struct CpioReader {
    public let bytes: [UInt8]
    /// Offset of the next record.
    public private(set) var offset: Int
    public private(set) var sawTrailer = false

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    /// The next entry, or nil after the trailer.
    public mutating func next() throws(NewcError) -> CpioEntry? {
        if sawTrailer { return nil }
        let start = offset
        let (h, name, dataOffset) = try Newc.decodeHeaderAndName(bytes, at: start)
        let size = Int(h.fileSize)
        guard dataOffset + size <= bytes.count else {
            throw .truncated(offset: start, needed: dataOffset - start + size, available: bytes.count - start)
        }
        offset = min(bytes.count, Newc.align4(dataOffset + size))
        if name == Newc.trailerName {
            sawTrailer = true
            return nil
        }
        var e = CpioEntry(path: name, mode: h.mode, nlink: h.nlink, data: Array(bytes[dataOffset..<dataOffset + size]))
        e.ino = h.ino; e.uid = h.uid; e.gid = h.gid; e.mtime = h.mtime
        e.devMajor = h.devMajor; e.devMinor = h.devMinor; e.rdevMajor = h.rdevMajor; e.rdevMinor = h.rdevMinor
        return e
    }

    /// All entries of the archive that starts at `offset`, and the offset just past its trailer.
    public static func readArchive(_ bytes: [UInt8], at offset: Int = 0) throws(NewcError)
        -> (entries: [CpioEntry], end: Int)
    {
        var r = CpioReader(bytes, offset: offset)
        var entries: [CpioEntry] = []
        while let e = try r.next() { entries.append(e) }
        return (entries, r.offset)
    }
}

/// One member of an initramfs image.
public struct ImageMember: Sendable {
    /// Offset of the member in the bytes it was found in (the file, or a decompressed stream).
    public var offset: Int
    /// Compression of the stream that held the archive (`.none` for an uncompressed member).
    public var compression: Compression
    /// Nesting: 0 for members in the file itself, 1 inside a decompressed stream.
    public var depth: Int
    public var entries: [CpioEntry]
}

/// Errors of the image walk.
public enum ImageReadError: Error, CustomStringConvertible {
    case newc(NewcError, compression: Compression, depth: Int)
    case decompression(Compression, offset: Int, message: String)
    case empty

    public var description: String {
        switch self {
        case let .newc(e, c, depth):
            return depth == 0 ? e.description : "inside the \(c.name)-compressed member: \(e.description)"
        case let .decompression(c, o, m):
            return "cannot decompress the \(c.name) member at offset \(o): \(m)"
        case .empty:
            return "the image holds no cpio archive (empty or all zeros)"
        }
    }
}

public enum ImageWalk {
    /// Deepest nesting of compressed streams accepted (a compressed archive of a compressed archive is not an initramfs).
    static let maxDepth = 2

    /// Splits `bytes` into members, as the kernel does: skip NUL padding; "0707" starts a
    /// newc archive, read up to its trailer; known compression magic starts a stream that
    /// runs to the end of the input, decompressed with `decompress` and walked the same way.
    /// - Parameter decompress: turns a compressed stream (from its magic to the end) into bytes.
    public static func members(
        _ bytes: [UInt8],
        decompress: (Compression, ArraySlice<UInt8>) throws -> [UInt8]
    ) throws -> [ImageMember] {
        let result = try walk(bytes, compression: .none, depth: 0, decompress: decompress)
        if result.isEmpty { throw ImageReadError.empty }
        return result
    }

    static func walk(
        _ bytes: [UInt8], compression: Compression, depth: Int,
        decompress: (Compression, ArraySlice<UInt8>) throws -> [UInt8]
    ) throws -> [ImageMember] {
        var members: [ImageMember] = []
        var offset = 0
        while offset < bytes.count {
            if bytes[offset] == 0 { offset += 1; continue }
            let rest = bytes[offset...]
            if rest.starts(with: Newc.magic.prefix(4)) {
                do {
                    let (entries, end) = try CpioReader.readArchive(bytes, at: offset)
                    members.append(ImageMember(offset: offset, compression: compression, depth: depth, entries: entries))
                    offset = end
                } catch {
                    throw ImageReadError.newc(error, compression: compression, depth: depth)
                }
                continue
            }
            guard depth < maxDepth, let c = Compression.detect(rest) else {
                let shown = Array(rest.prefix(8))
                throw ImageReadError.newc(.unknownData(offset: offset, firstBytes: hex(shown)), compression: compression, depth: depth)
            }
            let inner: [UInt8]
            do { inner = try decompress(c, rest) } catch {
                throw ImageReadError.decompression(c, offset: offset, message: "\(error)")
            }
            members += try walk(inner, compression: c, depth: depth + 1, decompress: decompress)
            offset = bytes.count
        }
        return members
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).leftPad(2) }.joined(separator: " ")
    }
}
