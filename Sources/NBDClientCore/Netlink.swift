// Netlink and generic-netlink messages as bytes, without a socket.
//
// Layout from the kernel's uapi headers (every integer in HOST byte order,
// unlike NBD itself):
//   linux/netlink.h   struct nlmsghdr { u32 nlmsg_len; u16 nlmsg_type; u16 nlmsg_flags;
//                                       u32 nlmsg_seq; u32 nlmsg_pid; }          16 bytes
//                     struct nlattr   { u16 nla_len; u16 nla_type; }              4 bytes
//                     struct nlmsgerr { int error; struct nlmsghdr msg; ... }
//                     NLMSG_ALIGN / NLA_ALIGN: lengths rounded up to 4 bytes.
//   linux/genetlink.h struct genlmsghdr { u8 cmd; u8 version; u16 reserved; }    4 bytes
// nla_len counts the 4-byte header and the payload, not the padding; nlmsg_len
// counts everything including the padding of the last attribute.

/// Constants of linux/netlink.h.
public enum Netlink {
    public static let headerSize = 16
    public static let genlHeaderSize = 4
    public static let attributeHeaderSize = 4
    /// NLMSG_NOOP, NLMSG_ERROR (also the ACK, with error 0), NLMSG_DONE.
    public static let typeNoop: UInt16 = 1
    public static let typeError: UInt16 = 2
    public static let typeDone: UInt16 = 3
    /// NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_DUMP (ROOT|MATCH).
    public static let flagRequest: UInt16 = 0x1
    public static let flagMulti: UInt16 = 0x2
    public static let flagAck: UInt16 = 0x4
    public static let flagDump: UInt16 = 0x300
    /// NLA_F_NESTED and NLA_F_NET_BYTEORDER, the two flag bits of nla_type.
    public static let attributeNested: UInt16 = 0x8000
    public static let attributeByteOrder: UInt16 = 0x4000

    /// NLMSG_ALIGN / NLA_ALIGN.
    public static func align(_ n: Int) -> Int { (n + 3) & ~3 }
}

/// Why bytes from a netlink socket are not a valid message.
public struct NetlinkError: Error, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// Appends host-endian integers.
struct HostWriter {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) {
        let le = v.littleEndian
        bytes.append(UInt8(truncatingIfNeeded: le))
        bytes.append(UInt8(truncatingIfNeeded: le >> 8))
    }
    mutating func u32(_ v: UInt32) {
        let le = v.littleEndian
        for shift in [0, 8, 16, 24] as [UInt32] { bytes.append(UInt8(truncatingIfNeeded: le >> shift)) }
    }
    mutating func u64(_ v: UInt64) {
        let le = v.littleEndian
        for shift in [0, 8, 16, 24, 32, 40, 48, 56] as [UInt64] { bytes.append(UInt8(truncatingIfNeeded: le >> shift)) }
    }
}

/// Reads host-endian integers at an offset.
func hostU16(_ b: [UInt8], _ at: Int) -> UInt16 {
    UInt16(littleEndian: UInt16(b[at]) | UInt16(b[at + 1]) << 8)
}

func hostU32(_ b: [UInt8], _ at: Int) -> UInt32 {
    var v: UInt32 = 0
    for i in 0..<4 { v |= UInt32(b[at + i]) << (8 * UInt32(i)) }
    return UInt32(littleEndian: v)
}

func hostU64(_ b: [UInt8], _ at: Int) -> UInt64 {
    var v: UInt64 = 0
    for i in 0..<8 { v |= UInt64(b[at + i]) << (8 * UInt64(i)) }
    return UInt64(littleEndian: v)
}

/// One attribute (struct nlattr + payload). `type` excludes the flag bits.
public struct NetlinkAttribute: Equatable {
    public var type: UInt16
    public var nested: Bool
    public var payload: [UInt8]

    public init(type: UInt16, nested: Bool = false, payload: [UInt8]) {
        self.type = type
        self.nested = nested
        self.payload = payload
    }

    public static func u8(_ type: UInt16, _ v: UInt8) -> NetlinkAttribute { NetlinkAttribute(type: type, payload: [v]) }
    public static func u16(_ type: UInt16, _ v: UInt16) -> NetlinkAttribute {
        var w = HostWriter(); w.u16(v); return NetlinkAttribute(type: type, payload: w.bytes)
    }
    public static func u32(_ type: UInt16, _ v: UInt32) -> NetlinkAttribute {
        var w = HostWriter(); w.u32(v); return NetlinkAttribute(type: type, payload: w.bytes)
    }
    public static func u64(_ type: UInt16, _ v: UInt64) -> NetlinkAttribute {
        var w = HostWriter(); w.u64(v); return NetlinkAttribute(type: type, payload: w.bytes)
    }
    /// NLA_NUL_STRING / NLA_STRING: the text and a terminating NUL.
    public static func string(_ type: UInt16, _ s: String) -> NetlinkAttribute {
        NetlinkAttribute(type: type, payload: Array(s.utf8) + [0])
    }
    /// A nested attribute; the kernel's nla_nest_start() sets NLA_F_NESTED.
    public static func nest(_ type: UInt16, _ children: [NetlinkAttribute]) -> NetlinkAttribute {
        var bytes: [UInt8] = []
        for c in children { c.encode(into: &bytes) }
        return NetlinkAttribute(type: type, nested: true, payload: bytes)
    }

    /// Appends header, payload and padding.
    public func encode(into bytes: inout [UInt8]) {
        var w = HostWriter()
        w.u16(UInt16(Netlink.attributeHeaderSize + payload.count))
        w.u16(type | (nested ? Netlink.attributeNested : 0))
        bytes.append(contentsOf: w.bytes)
        bytes.append(contentsOf: payload)
        let pad = Netlink.align(payload.count) - payload.count
        if pad > 0 { bytes.append(contentsOf: [UInt8](repeating: 0, count: pad)) }
    }

    func sized(_ n: Int) throws(NetlinkError) {
        guard payload.count >= n else {
            throw NetlinkError("attribute \(type) has \(payload.count) bytes, expected \(n)")
        }
    }
    public func asU8() throws(NetlinkError) -> UInt8 { try sized(1); return payload[0] }
    public func asU16() throws(NetlinkError) -> UInt16 { try sized(2); return hostU16(payload, 0) }
    public func asU32() throws(NetlinkError) -> UInt32 { try sized(4); return hostU32(payload, 0) }
    public func asU64() throws(NetlinkError) -> UInt64 { try sized(8); return hostU64(payload, 0) }
    /// The text up to the first NUL.
    public func asString() -> String {
        var end = payload.count
        for (i, b) in payload.enumerated() where b == 0 { end = i; break }
        return String(decoding: payload[0..<end], as: UTF8.self)
    }
    /// The attributes inside a nested attribute.
    public func children() throws(NetlinkError) -> [NetlinkAttribute] { try parseAttributes(payload) }
}

/// Splits a run of attributes (as found after a genlmsghdr or inside a nest).
public func parseAttributes(_ bytes: [UInt8]) throws(NetlinkError) -> [NetlinkAttribute] {
    var out: [NetlinkAttribute] = []
    var at = 0
    while bytes.count - at >= Netlink.attributeHeaderSize {
        let len = Int(hostU16(bytes, at))
        let rawType = hostU16(bytes, at + 2)
        guard len >= Netlink.attributeHeaderSize, at + len <= bytes.count else {
            throw NetlinkError("attribute at offset \(at) claims \(len) bytes, \(bytes.count - at) remain")
        }
        out.append(NetlinkAttribute(type: rawType & ~(Netlink.attributeNested | Netlink.attributeByteOrder),
                                    nested: rawType & Netlink.attributeNested != 0,
                                    payload: Array(bytes[(at + Netlink.attributeHeaderSize)..<(at + len)])))
        at += Netlink.align(len)
    }
    return out
}

/// The first attribute of `type`, if any.
public func first(_ type: UInt16, in attributes: [NetlinkAttribute]) -> NetlinkAttribute? {
    for a in attributes where a.type == type { return a }
    return nil
}

/// struct nlmsghdr.
public struct NetlinkHeader: Equatable {
    public var length: UInt32
    public var type: UInt16
    public var flags: UInt16
    public var seq: UInt32
    public var pid: UInt32
}

/// A generic netlink request or reply: nlmsghdr + genlmsghdr + attributes.
public struct GenericMessage: Equatable {
    /// The family id (nlmsg_type), e.g. 0x10 for the controller.
    public var family: UInt16
    public var flags: UInt16
    public var seq: UInt32
    public var pid: UInt32 = 0
    public var command: UInt8
    public var version: UInt8
    public var attributes: [NetlinkAttribute]

    public init(family: UInt16, flags: UInt16, seq: UInt32, command: UInt8, version: UInt8, attributes: [NetlinkAttribute]) {
        self.family = family
        self.flags = flags
        self.seq = seq
        self.command = command
        self.version = version
        self.attributes = attributes
    }

    public func encode() -> [UInt8] {
        var body: [UInt8] = [command, version, 0, 0]
        for a in attributes { a.encode(into: &body) }
        var w = HostWriter()
        w.u32(UInt32(Netlink.headerSize + body.count))
        w.u16(family)
        w.u16(flags)
        w.u32(seq)
        w.u32(pid)
        return w.bytes + body
    }
}

/// One message received from a netlink socket.
public enum NetlinkMessage: Equatable {
    /// A generic netlink message (reply or multicast notification).
    case generic(GenericMessage)
    /// NLMSG_ERROR: `errno` 0 is the ACK; otherwise a negative errno, plus the
    /// sequence number of the request it answers.
    case error(seq: UInt32, errno: Int32)
    /// NLMSG_DONE, the end of a dump.
    case done(seq: UInt32)
    /// NLMSG_NOOP or a type this client does not use.
    case other(type: UInt16, seq: UInt32)

    public var seq: UInt32 {
        switch self {
        case .generic(let m): return m.seq
        case .error(let s, _), .done(let s), .other(_, let s): return s
        }
    }
}

/// Splits what one recv() returned (it may hold several messages).
public func parseMessages(_ bytes: [UInt8]) throws(NetlinkError) -> [NetlinkMessage] {
    var out: [NetlinkMessage] = []
    var at = 0
    while bytes.count - at >= Netlink.headerSize {
        let h = NetlinkHeader(length: hostU32(bytes, at), type: hostU16(bytes, at + 4), flags: hostU16(bytes, at + 6),
                              seq: hostU32(bytes, at + 8), pid: hostU32(bytes, at + 12))
        let len = Int(h.length)
        guard len >= Netlink.headerSize, at + len <= bytes.count else {
            throw NetlinkError("netlink message at offset \(at) claims \(len) bytes, \(bytes.count - at) remain")
        }
        let body = Array(bytes[(at + Netlink.headerSize)..<(at + len)])
        switch h.type {
        case Netlink.typeError:
            guard body.count >= 4 else { throw NetlinkError("NLMSG_ERROR of \(body.count) bytes has no error code") }
            // The error field is the errno of the request (echoed in the
            // embedded nlmsghdr); its seq is also ours in the outer header.
            out.append(.error(seq: h.seq, errno: Int32(bitPattern: hostU32(body, 0))))
        case Netlink.typeDone:
            out.append(.done(seq: h.seq))
        case Netlink.typeNoop:
            out.append(.other(type: h.type, seq: h.seq))
        default:
            if h.type < 0x10 { out.append(.other(type: h.type, seq: h.seq)); break }
            guard body.count >= Netlink.genlHeaderSize else {
                throw NetlinkError("generic netlink message of type \(h.type) has no genlmsghdr")
            }
            var m = GenericMessage(family: h.type, flags: h.flags, seq: h.seq, command: body[0], version: body[1],
                                   attributes: try parseAttributes(Array(body[Netlink.genlHeaderSize...])))
            m.pid = h.pid
            out.append(.generic(m))
        }
        at += Netlink.align(len)
    }
    return out
}

/// Gathers the answer to one request with NLM_F_ACK: the replies that carry
/// its sequence number, up to the NLMSG_ERROR that ends it (errno 0 = success).
/// Messages with another sequence number (multicast notifications, stale
/// answers) are skipped.
public struct NetlinkTransaction {
    public let seq: UInt32
    public private(set) var replies: [GenericMessage] = []

    public enum Outcome: Equatable {
        case success([GenericMessage])
        /// The kernel refused: a positive errno (EBUSY, EINVAL...).
        case failure(errno: Int32, replies: [GenericMessage])
    }

    public init(seq: UInt32) { self.seq = seq }

    /// Feeds what one recv() returned; returns the outcome once complete.
    public mutating func feed(_ messages: [NetlinkMessage]) -> Outcome? {
        for m in messages where m.seq == seq {
            switch m {
            case .generic(let g): replies.append(g)
            case .error(_, let e): return e == 0 ? .success(replies) : .failure(errno: -e, replies: replies)
            case .done: return .success(replies)
            case .other: break
            }
        }
        return nil
    }
}
