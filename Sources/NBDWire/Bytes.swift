// Big-endian byte coding for the NBD wire format.
//
// Every multi-byte field of the NBD protocol is in network byte order (big
// endian); this file is the only place that says so. `ByteWriter` appends,
// `ByteReader` consumes and throws `WireError.short` instead of trapping when a
// buffer ends early. Both compile under Embedded Swift: no Foundation, no
// existentials.

/// Appends big-endian fields to a growing byte array.
public struct ByteWriter {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }

    public mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    public mutating func u32(_ v: UInt32) {
        var shift: UInt32 = 24
        while true {
            bytes.append(UInt8(truncatingIfNeeded: v >> shift))
            if shift == 0 { break }
            shift -= 8
        }
    }

    public mutating func u64(_ v: UInt64) {
        var shift: UInt64 = 56
        while true {
            bytes.append(UInt8(truncatingIfNeeded: v >> shift))
            if shift == 0 { break }
            shift -= 8
        }
    }

    public mutating func append(_ b: [UInt8]) { bytes.append(contentsOf: b) }

    public mutating func append(_ s: String) { bytes.append(contentsOf: Array(s.utf8)) }

    public mutating func zeroes(_ n: Int) {
        bytes.append(contentsOf: [UInt8](repeating: 0, count: n))
    }
}

/// Consumes big-endian fields from a byte array, front to back.
public struct ByteReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    /// Bytes not yet consumed.
    public var remaining: Int { bytes.count - offset }

    private mutating func need(_ n: Int) throws(WireError) {
        if n < 0 || remaining < n { throw WireError.short(needed: n, available: remaining) }
    }

    public mutating func u8() throws(WireError) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func u16() throws(WireError) -> UInt16 {
        try need(2)
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    public mutating func u32() throws(WireError) -> UInt32 {
        try need(4)
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(bytes[offset + i]) }
        offset += 4
        return v
    }

    public mutating func u64() throws(WireError) -> UInt64 {
        try need(8)
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(bytes[offset + i]) }
        offset += 8
        return v
    }

    public mutating func take(_ n: Int) throws(WireError) -> [UInt8] {
        try need(n)
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }

    public mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }

    /// Reads `n` bytes as UTF-8 text; NBD strings carry their length and no NUL.
    public mutating func string(_ n: Int) throws(WireError) -> String {
        let raw = try take(n)
        return String(decoding: raw, as: UTF8.self)
    }
}
