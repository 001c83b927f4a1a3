// The pure parts of a copy-on-write overlay (docs/overlays.md): the 4 KiB
// header of the map file and the allocation bitmap that follows it. No I/O
// here; Overlay.swift reads and writes these bytes.
//
// Map file = header page (4096 bytes) + bitmap (one bit per block, block i at
// byte i/8, bit i%8 counted from the least significant, padded with zero
// bytes to whole 4 KiB pages). A bit, once set, is never cleared while the
// overlay exists: that is what makes updating the bitmap in place crash-safe
// (a torn page write can only leave some new bits unset, and every bit that
// is set names a block whose data was made durable before the bit was written).
import NBDWire

/// A bad or foreign overlay, with what to do about it.
public struct OverlayError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The base image an overlay was made over, as far as we can tell cheaply:
/// its size and its modification time (stat st_size, st_mtim). If either
/// changes, the overlay's blocks no longer fit the base and it is refused.
public struct BaseIdentity: Equatable, Sendable {
    public var size: UInt64
    public var mtimeSeconds: Int64
    public var mtimeNanoseconds: UInt32

    public init(size: UInt64, mtimeSeconds: Int64, mtimeNanoseconds: UInt32) {
        self.size = size
        self.mtimeSeconds = mtimeSeconds
        self.mtimeNanoseconds = mtimeNanoseconds
    }
}

/// The map file's first page. Big-endian, like the NBD protocol.
///
///     0  magic "NBDBOVL1"      8 bytes
///     8  version               u32 = 1
///    12  block size            u32, a power of two, 512 .. 1 MiB
///    16  base size             u64 bytes (also the data file's size)
///    24  base mtime seconds    u64 (two's complement)
///    32  base mtime ns         u32
///    36  reserved              u32 = 0
///    40  created               u64, Unix seconds
///    48  base path length      u32, then the base path (absolute), at most 2048 bytes
///  4088  FNV-1a 64 of bytes 0..<4088
public struct OverlayHeader: Equatable, Sendable {
    public static let magic: [UInt8] = Array("NBDBOVL1".utf8)
    public static let version: UInt32 = 1
    public static let size = 4096
    public static let maxPath = 2048
    /// The block size of new overlays: the page size and the usual file
    /// system block, so a kernel's 4 KiB writes need no copy from the base
    /// and TRIM can punch whole file-system blocks out of the data file.
    public static let defaultBlockSize: UInt32 = 4096

    public var blockSize: UInt32
    public var base: BaseIdentity
    public var created: UInt64
    public var basePath: String

    public init(blockSize: UInt32 = defaultBlockSize, base: BaseIdentity, created: UInt64, basePath: String) {
        self.blockSize = blockSize
        self.base = base
        self.created = created
        self.basePath = basePath
    }

    /// Number of blocks: the last one may be short when the base size is not a multiple.
    public var blockCount: UInt64 { (base.size + UInt64(blockSize) - 1) / UInt64(blockSize) }

    /// Bitmap bytes on disk: one bit per block, padded to whole 4 KiB pages.
    public var bitmapBytes: Int {
        let raw = Int((blockCount + 7) / 8)
        return (raw + OverlayHeader.size - 1) / OverlayHeader.size * OverlayHeader.size
    }

    /// The map file's size: header plus bitmap.
    public var mapFileSize: Int { OverlayHeader.size + bitmapBytes }

    public static func validBlockSize(_ b: UInt32) -> Bool { b >= 512 && b <= 1 << 20 && b & (b - 1) == 0 }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        w.append(Self.magic)
        w.u32(Self.version)
        w.u32(blockSize)
        w.u64(base.size)
        w.u64(UInt64(bitPattern: base.mtimeSeconds))
        w.u32(base.mtimeNanoseconds)
        w.u32(0)
        w.u64(created)
        let path = Array(basePath.utf8.prefix(Self.maxPath))
        w.u32(UInt32(path.count))
        w.append(path)
        var bytes = w.bytes
        bytes += [UInt8](repeating: 0, count: Self.size - 8 - bytes.count)
        var tail = ByteWriter(capacity: 8)
        tail.u64(fnv1a(bytes))
        return bytes + tail.bytes
    }

    /// Decodes and checks a header page; `file` names it in the messages.
    public static func decode(_ bytes: [UInt8], file: String) throws(OverlayError) -> OverlayHeader {
        guard bytes.count >= size else {
            throw OverlayError("\(file): \(bytes.count) bytes, too short for an overlay map (header is \(size) bytes); remove it with nbdboot overlay reset")
        }
        guard Array(bytes[0..<8]) == magic else {
            throw OverlayError("\(file): not an nbdboot overlay map (magic is not NBDBOVL1)")
        }
        do {
            var r = ByteReader(Array(bytes[0..<size]), offset: 8)
            let version = try r.u32()
            guard version == Self.version else {
                throw OverlayError("\(file): overlay format version \(version), this nbdboot reads version \(Self.version)")
            }
            let blockSize = try r.u32()
            let baseSize = try r.u64()
            let seconds = Int64(bitPattern: try r.u64())
            let nanos = try r.u32()
            _ = try r.u32()
            let created = try r.u64()
            let pathLength = Int(try r.u32())
            guard pathLength <= maxPath else { throw OverlayError("\(file): base path length \(pathLength) is corrupt") }
            let path = try r.string(pathLength)
            var check = ByteReader(Array(bytes[(size - 8)..<size]))
            guard try check.u64() == fnv1a(Array(bytes[0..<(size - 8)])) else {
                throw OverlayError("\(file): the header checksum does not match (the map is damaged); remove the overlay with nbdboot overlay reset")
            }
            guard validBlockSize(blockSize) else { throw OverlayError("\(file): block size \(blockSize) is corrupt") }
            return OverlayHeader(blockSize: blockSize,
                                 base: BaseIdentity(size: baseSize, mtimeSeconds: seconds, mtimeNanoseconds: nanos),
                                 created: created, basePath: path)
        } catch let e as OverlayError {
            throw e
        } catch {
            throw OverlayError("\(file): truncated overlay header")
        }
    }

    /// Why this overlay does not fit `current` (the base as it is now), or nil.
    public func mismatch(with current: BaseIdentity, basePath path: String) -> String? {
        if current.size != base.size {
            return "the base image \(path) is now \(current.size) bytes but the overlay was made over \(base.size) bytes"
        }
        if current.mtimeSeconds != base.mtimeSeconds || current.mtimeNanoseconds != base.mtimeNanoseconds {
            return "the base image \(path) was modified (mtime \(current.mtimeSeconds).\(current.mtimeNanoseconds), the overlay was made over mtime \(base.mtimeSeconds).\(base.mtimeNanoseconds))"
        }
        return nil
    }
}

/// FNV-1a, 64 bits: a cheap checksum for the header page.
public func fnv1a(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01b3
    }
    return h
}

/// The allocation bitmap in memory, with the 4 KiB pages changed since the
/// last `takeDirtyPages`. Not thread-safe: Overlay guards it.
public struct AllocationMap: Equatable, Sendable {
    public static let pageSize = OverlayHeader.size
    public let blockCount: UInt64
    public private(set) var bytes: [UInt8]
    private var dirty: Set<Int> = []

    /// An empty map, or one loaded from `bitmap` (the bytes after the header;
    /// bits past `blockCount` are ignored).
    public init(blockCount: UInt64, bitmap: [UInt8]? = nil) {
        self.blockCount = blockCount
        let raw = Int((blockCount + 7) / 8)
        let padded = (raw + Self.pageSize - 1) / Self.pageSize * Self.pageSize
        var b = bitmap.map { Array($0.prefix(padded)) } ?? []
        if b.count < padded { b += [UInt8](repeating: 0, count: padded - b.count) }
        // Clear the bits past the last block so counts stay exact.
        if blockCount % 8 != 0 && raw > 0 { b[raw - 1] &= UInt8((1 << (blockCount % 8)) - 1) }
        for i in raw..<padded where b[i] != 0 { b[i] = 0 }
        bytes = b
    }

    public func isAllocated(_ block: UInt64) -> Bool {
        precondition(block < blockCount, "block \(block) beyond \(blockCount)")
        return bytes[Int(block >> 3)] & (1 << UInt8(block & 7)) != 0
    }

    /// Sets a block's bit; marks its page dirty when it changed.
    public mutating func allocate(_ block: UInt64) {
        precondition(block < blockCount, "block \(block) beyond \(blockCount)")
        let i = Int(block >> 3)
        let bit: UInt8 = 1 << UInt8(block & 7)
        if bytes[i] & bit == 0 {
            bytes[i] |= bit
            dirty.insert(i / Self.pageSize)
        }
    }

    /// Number of allocated blocks.
    public var allocatedCount: UInt64 {
        bytes.reduce(0) { $0 + UInt64($1.nonzeroBitCount) }
    }

    public var hasDirtyPages: Bool { !dirty.isEmpty }

    /// The pages changed since the last call, as (index, bytes), in order;
    /// they are no longer dirty afterwards (`markDirty` puts them back if
    /// writing them fails).
    public mutating func takeDirtyPages() -> [(page: Int, bytes: [UInt8])] {
        let pages = dirty.sorted()
        dirty.removeAll()
        return pages.map { p in (p, Array(bytes[(p * Self.pageSize)..<((p + 1) * Self.pageSize)])) }
    }

    public mutating func markDirty(_ pages: [Int]) { dirty.formUnion(pages) }

    public static func == (a: AllocationMap, b: AllocationMap) -> Bool {
        a.blockCount == b.blockCount && a.bytes == b.bytes
    }
}
