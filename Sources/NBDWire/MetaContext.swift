// Metadata contexts (spec "Metadata querying"): the data of
// NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT, the NBD_REP_META_CONTEXT
// reply, and the payload of an NBD_REPLY_TYPE_BLOCK_STATUS chunk. The one
// context defined by the spec is `base:allocation`: per extent, whether it is
// a hole (NBD_STATE_HOLE) and whether it reads as zeroes (NBD_STATE_ZERO).

/// Names of metadata contexts.
public enum MetaContextName {
    /// The spec's allocation context.
    public static let baseAllocation = "base:allocation"
    /// Its namespace as a query: in LIST it means "every base: context".
    public static let baseNamespace = "base:"
}

/// The data of LIST_META_CONTEXT and SET_META_CONTEXT: an export name and the
/// queries (`namespace:leaf` strings; none means "all" for LIST, "nothing" for SET).
public struct MetaContextRequest: Equatable, Sendable {
    public var exportName: String
    public var queries: [String]

    public init(exportName: String, queries: [String] = []) {
        self.exportName = exportName
        self.queries = queries
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        let name = Array(exportName.utf8)
        w.u32(UInt32(name.count))
        w.append(name)
        w.u32(UInt32(queries.count))
        for q in queries {
            let bytes = Array(q.utf8)
            w.u32(UInt32(bytes.count))
            w.append(bytes)
        }
        return w.bytes
    }

    /// Decodes the option data. Every length must fit in what is left and the
    /// data must end exactly after the last query; a violation is the
    /// `NBD_REP_ERR_INVALID` the spec asks for.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> MetaContextRequest {
        var r = ByteReader(bytes)
        let nameLength = try r.u32()
        guard nameLength <= UInt32(Limits.maxString) else {
            throw .tooLong(field: "export name", length: UInt64(nameLength), limit: UInt64(Limits.maxString))
        }
        guard Int(nameLength) <= r.remaining - 4 else {
            throw .invalid("export name length \(nameLength) does not fit in an option of \(bytes.count) bytes")
        }
        let name = try r.string(Int(nameLength))
        let count = try r.u32()
        // Each query takes at least its 4-byte length: a count larger than that
        // cannot be honest, and must not size an allocation.
        guard UInt64(count) * 4 <= UInt64(r.remaining) else {
            throw .invalid("query count \(count) does not fit in the \(r.remaining) bytes left")
        }
        var queries: [String] = []
        for i in 0..<count {
            let length = try r.u32()
            guard length <= UInt32(Limits.maxString) else {
                throw .tooLong(field: "query \(i)", length: UInt64(length), limit: UInt64(Limits.maxString))
            }
            guard Int(length) <= r.remaining else {
                throw .invalid("query \(i) length \(length) exceeds the \(r.remaining) bytes left")
            }
            queries.append(try r.string(Int(length)))
        }
        guard r.remaining == 0 else { throw .invalid("\(r.remaining) bytes after the last query") }
        return MetaContextRequest(exportName: name, queries: queries)
    }
}

/// The data of an `NBD_REP_META_CONTEXT` reply: a context ID and its name.
public struct MetaContextReply: Equatable, Sendable {
    public var id: UInt32
    public var name: String

    public init(id: UInt32, name: String) {
        self.id = id
        self.name = name
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.u32(id)
        w.append(name)
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> MetaContextReply {
        var r = ByteReader(bytes)
        let id = try r.u32()
        return MetaContextReply(id: id, name: String(decoding: r.rest(), as: UTF8.self))
    }
}

/// `base:allocation` status flags of an extent.
public struct AllocationState: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// NBD_STATE_HOLE: not allocated.
    public static let hole = AllocationState(rawValue: 1 << 0)
    /// NBD_STATE_ZERO: reads as zeroes.
    public static let zero = AllocationState(rawValue: 1 << 1)
}

/// One extent of a BLOCK_STATUS reply: a non-zero length and its status flags.
public struct BlockStatusExtent: Equatable, Sendable {
    public var length: UInt32
    public var flags: UInt32

    public init(length: UInt32, flags: UInt32) {
        self.length = length
        self.flags = flags
    }
}

/// The payload of an NBD_REPLY_TYPE_BLOCK_STATUS chunk: u32 context ID, then
/// (u32 length, u32 flags) per extent, at least one.
public struct BlockStatusPayload: Equatable, Sendable {
    public var contextID: UInt32
    public var extents: [BlockStatusExtent]

    public init(contextID: UInt32, extents: [BlockStatusExtent]) {
        self.contextID = contextID
        self.extents = extents
    }

    public var encodedLength: Int { 4 + 8 * extents.count }

    public func encode(into w: inout ByteWriter) {
        w.u32(contextID)
        for e in extents {
            w.u32(e.length)
            w.u32(e.flags)
        }
    }

    /// The whole chunk (header with DONE, then the payload): one selected
    /// context means one chunk per reply.
    public func chunk(cookie: UInt64, done: Bool = true) -> [UInt8] {
        var w = ByteWriter(capacity: ChunkHeader.size + encodedLength)
        ChunkHeader(flags: done ? .done : [], type: .blockStatus, cookie: cookie, length: UInt32(encodedLength)).encode(into: &w)
        encode(into: &w)
        return w.bytes
    }

    public static func decode(_ payload: [UInt8]) throws(WireError) -> BlockStatusPayload {
        guard payload.count >= 12, (payload.count - 4) % 8 == 0 else {
            throw .invalid("block status payload of \(payload.count) bytes is not 4 + 8n with n >= 1")
        }
        var r = ByteReader(payload)
        let id = try r.u32()
        var extents: [BlockStatusExtent] = []
        while r.remaining > 0 {
            let length = try r.u32()
            extents.append(BlockStatusExtent(length: length, flags: try r.u32()))
        }
        return BlockStatusPayload(contextID: id, extents: extents)
    }
}
