// Structured replies (spec "Structured reply chunk message", negotiated with
// NBD_OPT_STRUCTURED_REPLY): a reply is one or more 20-byte-header chunks with
// the request's cookie, the last one flagged DONE. READ data travels in
// OFFSET_DATA / OFFSET_HOLE chunks, errors in ERROR / ERROR_OFFSET chunks that
// carry a human-readable message, block status in BLOCK_STATUS chunks
// (MetaContext.swift). Pure encoders and decoders, no I/O.

/// Chunk flags (16 bit).
public struct ReplyFlags: OptionSet, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// NBD_REPLY_FLAG_DONE: the last chunk of this reply.
    public static let done = ReplyFlags(rawValue: 1 << 0)
}

/// Chunk types (`NBD_REPLY_TYPE_*`). Error types have bit 15 set.
public struct ChunkType: RawRepresentable, Equatable, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ v: UInt16) { rawValue = v }
    /// No payload; only with DONE.
    public static let none = ChunkType(0)
    /// u64 offset + data (READ).
    public static let offsetData = ChunkType(1)
    /// u64 offset + u32 length of a range that reads as zeroes (READ).
    public static let offsetHole = ChunkType(2)
    /// u32 context ID + (u32 length, u32 flags) extents (BLOCK_STATUS). The
    /// spec's value is 5; NetworkBlockDevice/nbd's nbd.h wrongly says 3.
    public static let blockStatus = ChunkType(5)
    /// u32 error + u16 message length + message.
    public static let error = ChunkType(0x8001)
    /// u32 error + u16 message length + message + u64 offset.
    public static let errorOffset = ChunkType(0x8002)

    public var isError: Bool { rawValue & 0x8000 != 0 }

    public var name: String {
        switch rawValue {
        case 0: return "NONE"
        case 1: return "OFFSET_DATA"
        case 2: return "OFFSET_HOLE"
        case 5: return "BLOCK_STATUS"
        case 0x8001: return "ERROR"
        case 0x8002: return "ERROR_OFFSET"
        default: return "chunk type \(rawValue)"
        }
    }
}

/// The 20-byte header of a structured reply chunk; `length` payload bytes follow.
public struct ChunkHeader: Equatable, Sendable {
    public static let size = 20
    public var flags: ReplyFlags
    public var type: ChunkType
    public var cookie: UInt64
    public var length: UInt32

    public init(flags: ReplyFlags, type: ChunkType, cookie: UInt64, length: UInt32) {
        self.flags = flags
        self.type = type
        self.cookie = cookie
        self.length = length
    }

    public func encode(into w: inout ByteWriter) {
        w.u32(Magic.structuredReply)
        w.u16(flags.rawValue)
        w.u16(type.rawValue)
        w.u64(cookie)
        w.u32(length)
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        encode(into: &w)
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> ChunkHeader {
        var r = ByteReader(bytes)
        let magic = try r.u32()
        guard magic == Magic.structuredReply else {
            throw .badMagic(field: "structured reply", expected: UInt64(Magic.structuredReply), found: UInt64(magic))
        }
        let flags = ReplyFlags(rawValue: try r.u16())
        let type = ChunkType(try r.u16())
        let cookie = try r.u64()
        return ChunkHeader(flags: flags, type: type, cookie: cookie, length: try r.u32())
    }
}

/// Whole chunks as bytes, for a server to send.
public enum Chunk {
    /// Longest message an error chunk carries (the spec's string limit).
    public static let maxMessage = 4096

    /// The header and u64 offset of an OFFSET_DATA chunk; `dataLength` data
    /// bytes must follow. Its payload length is 8 + dataLength, so dataLength
    /// must be at most 2^32 - 9.
    public static func offsetDataHeader(cookie: UInt64, offset: UInt64, dataLength: Int, done: Bool) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: offsetDataHeaderSize) { out, count in
            storeOffsetDataHeader(to: out.baseAddress!, cookie: cookie, offset: offset, dataLength: dataLength, done: done)
            count = offsetDataHeaderSize
        }
    }

    /// Bytes of an OFFSET_DATA chunk before its data.
    public static let offsetDataHeaderSize = ChunkHeader.size + 8

    /// `offsetDataHeader` written in place at `p` (no alignment needed).
    public static func storeOffsetDataHeader(to p: UnsafeMutableRawPointer, cookie: UInt64, offset: UInt64, dataLength: Int, done: Bool) {
        let flags: ReplyFlags = done ? .done : []
        p.storeBytes(of: Magic.structuredReply.bigEndian, toByteOffset: 0, as: UInt32.self)
        p.storeBytes(of: flags.rawValue.bigEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: ChunkType.offsetData.rawValue.bigEndian, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: cookie.bigEndian, toByteOffset: 8, as: UInt64.self)
        p.storeBytes(of: UInt32(8 + dataLength).bigEndian, toByteOffset: 16, as: UInt32.self)
        p.storeBytes(of: offset.bigEndian, toByteOffset: 20, as: UInt64.self)
    }

    /// OFFSET_HOLE: `length` (non-zero) bytes at `offset` read as zeroes.
    public static func offsetHole(cookie: UInt64, offset: UInt64, length: UInt32, done: Bool) -> [UInt8] {
        var w = ByteWriter(capacity: ChunkHeader.size + 12)
        ChunkHeader(flags: done ? .done : [], type: .offsetHole, cookie: cookie, length: 12).encode(into: &w)
        w.u64(offset)
        w.u32(length)
        return w.bytes
    }

    /// NONE with DONE: the end of a reply whose earlier chunks said it all.
    public static func none(cookie: UInt64) -> [UInt8] {
        ChunkHeader(flags: .done, type: .none, cookie: cookie, length: 0).encode()
    }

    /// ERROR (or ERROR_OFFSET when `offset` is given) with DONE, carrying
    /// `message` cut to `maxMessage` bytes on a UTF-8 character boundary.
    public static func error(cookie: UInt64, _ error: NBDErrno, message: String, offset: UInt64? = nil) -> [UInt8] {
        let text = truncatedUTF8(message, to: maxMessage)
        var w = ByteWriter(capacity: ChunkHeader.size + 6 + text.count + 8)
        let length = 6 + text.count + (offset == nil ? 0 : 8)
        ChunkHeader(flags: .done, type: offset == nil ? .error : .errorOffset, cookie: cookie, length: UInt32(length)).encode(into: &w)
        w.u32(error.rawValue)
        w.u16(UInt16(text.count))
        w.append(text)
        if let offset { w.u64(offset) }
        return w.bytes
    }
}

/// The payload of an ERROR or ERROR_OFFSET chunk.
public struct ErrorChunk: Equatable, Sendable {
    public var error: NBDErrno
    public var message: String
    /// Only in ERROR_OFFSET.
    public var offset: UInt64?

    public init(error: NBDErrno, message: String, offset: UInt64? = nil) {
        self.error = error
        self.message = message
        self.offset = offset
    }

    public static func decode(_ payload: [UInt8], type: ChunkType) throws(WireError) -> ErrorChunk {
        var r = ByteReader(payload)
        let error = NBDErrno(try r.u32())
        guard error != .ok else { throw .invalid("error chunk with error 0") }
        let length = Int(try r.u16())
        let extra = type == .errorOffset ? 8 : 0
        guard length + extra <= r.remaining else {
            throw .invalid("error message length \(length) exceeds the \(r.remaining) bytes of the chunk")
        }
        let message = try r.string(length)
        let offset: UInt64? = type == .errorOffset ? try r.u64() : nil
        return ErrorChunk(error: error, message: message, offset: offset)
    }
}

/// The first `limit` bytes of `s` in UTF-8, never splitting a character.
public func truncatedUTF8(_ s: String, to limit: Int) -> [UInt8] {
    let bytes = Array(s.utf8)
    if bytes.count <= limit { return bytes }
    var end = limit
    // Back off continuation bytes (10xxxxxx) so the cut falls before a lead byte.
    while end > 0 && bytes[end] & 0xc0 == 0x80 { end -= 1 }
    return Array(bytes[..<end])
}
