// The transmission phase: the 28-byte request and the 16-byte simple reply.

/// A request header. For WRITE, `length` bytes of data follow it on the wire.
public struct Request: Equatable {
    public static let size = 28
    public var flags: CommandFlags
    public var command: Command
    public var cookie: UInt64
    public var offset: UInt64
    public var length: UInt32

    public init(command: Command, flags: CommandFlags = [], cookie: UInt64, offset: UInt64 = 0, length: UInt32 = 0) {
        self.flags = flags
        self.command = command
        self.cookie = cookie
        self.offset = offset
        self.length = length
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        w.u32(Magic.request)
        w.u16(flags.rawValue)
        w.u16(command.rawValue)
        w.u64(cookie)
        w.u64(offset)
        w.u32(length)
        return w.bytes
    }

    /// Decodes a header. A bad magic means the stream cannot be resynchronised:
    /// the caller closes the connection.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> Request {
        try bytes.withUnsafeBytes { raw in Result { () throws(WireError) in try decode(raw) } }.get()
    }

    /// Decodes a header from the first `Request.size` bytes of `raw` without
    /// copying them (the server's buffered reader). Same checks as above.
    public static func decode(_ raw: UnsafeRawBufferPointer) throws(WireError) -> Request {
        guard raw.count >= size else { throw .short(needed: size, available: raw.count) }
        func be<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            var v: T = 0
            for i in 0..<MemoryLayout<T>.size { v = v << 8 | T(raw[at + i]) }
            return v
        }
        let magic = be(0, UInt32.self)
        guard magic == Magic.request else {
            throw .badMagic(field: "request", expected: UInt64(Magic.request), found: UInt64(magic))
        }
        return Request(command: Command(be(6, UInt16.self)), flags: CommandFlags(rawValue: be(4, UInt16.self)),
                       cookie: be(8, UInt64.self), offset: be(16, UInt64.self), length: be(24, UInt32.self))
    }

    /// True when `offset + length` stays within `size` (and does not overflow).
    public func fits(in size: UInt64) -> Bool {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(length))
        return !overflow && end <= size
    }
}

/// A simple reply header. For a successful READ, the data follows it.
public struct SimpleReply: Equatable {
    public static let size = 16
    public var error: NBDErrno
    public var cookie: UInt64

    public init(error: NBDErrno = .ok, cookie: UInt64) {
        self.error = error
        self.cookie = cookie
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        encode(into: &w)
        return w.bytes
    }

    public func encode(into w: inout ByteWriter) {
        w.u32(Magic.simpleReply)
        w.u32(error.rawValue)
        w.u64(cookie)
    }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> SimpleReply {
        var r = ByteReader(bytes)
        let magic = try r.u32()
        guard magic == Magic.simpleReply else {
            throw .badMagic(field: "simple reply", expected: UInt64(Magic.simpleReply), found: UInt64(magic))
        }
        let error = NBDErrno(try r.u32())
        return SimpleReply(error: error, cookie: try r.u64())
    }
}

extension SimpleReply {
    /// Writes the 16 bytes at `p`, which need no alignment: a server builds
    /// replies in place in its send buffer, with no allocation.
    public func store(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: Magic.simpleReply.bigEndian, toByteOffset: 0, as: UInt32.self)
        p.storeBytes(of: error.rawValue.bigEndian, toByteOffset: 4, as: UInt32.self)
        p.storeBytes(of: cookie.bigEndian, toByteOffset: 8, as: UInt64.self)
    }
}

