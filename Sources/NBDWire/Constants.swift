// Every magic number, flag and code of the NBD protocol, with its name from
// the specification (doc/proto.md of NetworkBlockDevice/nbd). Codes that a
// peer may send but we do not know are representable: each code is a struct
// around its raw value, not a closed enum.

/// Magic numbers. All are sent big-endian.
public enum Magic {
    /// "NBDMAGIC": the first 8 bytes a server sends, in every style.
    public static let nbdMagic: UInt64 = 0x4e42_444d_4147_4943
    /// Bytes 8-15 of an oldstyle greeting (`cliserv_magic`).
    public static let oldstyle: UInt64 = 0x0042_0281_8612_53
    /// "IHAVEOPT": bytes 8-15 of a newstyle greeting and the start of every option.
    public static let ihaveopt: UInt64 = 0x4948_4156_454f_5054
    /// Start of every fixed-newstyle option reply.
    public static let optionReply: UInt64 = 0x0003_e889_0455_65a9
    /// Start of a 28-byte request.
    public static let request: UInt32 = 0x2560_9513
    /// Start of a 16-byte simple reply.
    public static let simpleReply: UInt32 = 0x6744_6698
    /// Start of a 20-byte structured reply chunk.
    public static let structuredReply: UInt32 = 0x668e_33ef
}

/// Limits the protocol sets on strings and option payloads.
public enum Limits {
    /// Strings (export names, descriptions) MUST be at most 4096 bytes.
    public static let maxString = 4096
    /// Largest option payload we accept from a client (name + info list, with room).
    public static let maxOptionLength: UInt32 = 64 * 1024
    /// nbd-client reads option-reply payloads only if shorter than this.
    public static let maxReplyPayload = 4095
    /// The IANA port.
    public static let defaultPort: UInt16 = 10809
}

/// Handshake flags a newstyle server announces (16 bit).
public struct HandshakeFlags: OptionSet, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let fixedNewstyle = HandshakeFlags(rawValue: 1 << 0)
    public static let noZeroes = HandshakeFlags(rawValue: 1 << 1)
}

/// Client flags a newstyle client answers with (32 bit).
public struct ClientFlags: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let fixedNewstyle = ClientFlags(rawValue: 1 << 0)
    public static let noZeroes = ClientFlags(rawValue: 1 << 1)
    /// Every bit this protocol defines; any other bit makes a server close.
    public static let known: ClientFlags = [.fixedNewstyle, .noZeroes]
}

/// Transmission flags of an export (16 bit), sent with its size.
public struct TransmissionFlags: OptionSet, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let hasFlags = TransmissionFlags(rawValue: 1 << 0)
    public static let readOnly = TransmissionFlags(rawValue: 1 << 1)
    public static let sendFlush = TransmissionFlags(rawValue: 1 << 2)
    public static let sendFUA = TransmissionFlags(rawValue: 1 << 3)
    public static let rotational = TransmissionFlags(rawValue: 1 << 4)
    public static let sendTrim = TransmissionFlags(rawValue: 1 << 5)
    public static let sendWriteZeroes = TransmissionFlags(rawValue: 1 << 6)
    public static let sendDF = TransmissionFlags(rawValue: 1 << 7)
    public static let canMultiConn = TransmissionFlags(rawValue: 1 << 8)
    public static let sendResize = TransmissionFlags(rawValue: 1 << 9)
    public static let sendCache = TransmissionFlags(rawValue: 1 << 10)
    public static let sendFastZero = TransmissionFlags(rawValue: 1 << 11)
}

/// Option codes (`NBD_OPT_*`), client to server.
public struct OptionCode: RawRepresentable, Equatable, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ v: UInt32) { rawValue = v }
    public static let exportName = OptionCode(1)
    public static let abort = OptionCode(2)
    public static let list = OptionCode(3)
    public static let peekExport = OptionCode(4)
    public static let startTLS = OptionCode(5)
    public static let info = OptionCode(6)
    public static let go = OptionCode(7)
    public static let structuredReply = OptionCode(8)
    public static let listMetaContext = OptionCode(9)
    public static let setMetaContext = OptionCode(10)
    public static let extendedHeaders = OptionCode(11)

    public var name: String {
        switch rawValue {
        case 1: return "EXPORT_NAME"
        case 2: return "ABORT"
        case 3: return "LIST"
        case 4: return "PEEK_EXPORT"
        case 5: return "STARTTLS"
        case 6: return "INFO"
        case 7: return "GO"
        case 8: return "STRUCTURED_REPLY"
        case 9: return "LIST_META_CONTEXT"
        case 10: return "SET_META_CONTEXT"
        case 11: return "EXTENDED_HEADERS"
        default: return "option \(rawValue)"
        }
    }
}

/// Option reply types (`NBD_REP_*`), server to client. Errors have bit 31 set.
public struct ReplyType: RawRepresentable, Equatable, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ v: UInt32) { rawValue = v }
    public static let ack = ReplyType(1)
    public static let server = ReplyType(2)
    public static let info = ReplyType(3)
    public static let metaContext = ReplyType(4)
    public static let errUnsup = ReplyType(0x8000_0001)
    public static let errPolicy = ReplyType(0x8000_0002)
    public static let errInvalid = ReplyType(0x8000_0003)
    public static let errPlatform = ReplyType(0x8000_0004)
    public static let errTLSReqd = ReplyType(0x8000_0005)
    public static let errUnknown = ReplyType(0x8000_0006)
    public static let errShutdown = ReplyType(0x8000_0007)
    public static let errBlockSizeReqd = ReplyType(0x8000_0008)
    public static let errTooBig = ReplyType(0x8000_0009)
    public static let errExtHeaderReqd = ReplyType(0x8000_000a)

    public var isError: Bool { rawValue & 0x8000_0000 != 0 }

    public var name: String {
        switch rawValue {
        case 1: return "ACK"
        case 2: return "SERVER"
        case 3: return "INFO"
        case 4: return "META_CONTEXT"
        case 0x8000_0001: return "ERR_UNSUP"
        case 0x8000_0002: return "ERR_POLICY"
        case 0x8000_0003: return "ERR_INVALID"
        case 0x8000_0004: return "ERR_PLATFORM"
        case 0x8000_0005: return "ERR_TLS_REQD"
        case 0x8000_0006: return "ERR_UNKNOWN"
        case 0x8000_0007: return "ERR_SHUTDOWN"
        case 0x8000_0008: return "ERR_BLOCK_SIZE_REQD"
        case 0x8000_0009: return "ERR_TOO_BIG"
        case 0x8000_000a: return "ERR_EXT_HEADER_REQD"
        default: return "reply \(rawValue)"
        }
    }
}

/// Information types inside an `NBD_REP_INFO` reply (`NBD_INFO_*`).
public struct InfoType: RawRepresentable, Equatable, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ v: UInt16) { rawValue = v }
    public static let export = InfoType(0)
    public static let name = InfoType(1)
    public static let description = InfoType(2)
    public static let blockSize = InfoType(3)
}

/// Transmission commands (`NBD_CMD_*`).
public struct Command: RawRepresentable, Equatable, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ v: UInt16) { rawValue = v }
    public static let read = Command(0)
    public static let write = Command(1)
    public static let disc = Command(2)
    public static let flush = Command(3)
    public static let trim = Command(4)
    public static let cache = Command(5)
    public static let writeZeroes = Command(6)
    public static let blockStatus = Command(7)
    public static let resize = Command(8)

    public var name: String {
        switch rawValue {
        case 0: return "READ"
        case 1: return "WRITE"
        case 2: return "DISC"
        case 3: return "FLUSH"
        case 4: return "TRIM"
        case 5: return "CACHE"
        case 6: return "WRITE_ZEROES"
        case 7: return "BLOCK_STATUS"
        case 8: return "RESIZE"
        default: return "command \(rawValue)"
        }
    }
}

/// Command flags (16 bit), in bytes 4-5 of a request.
public struct CommandFlags: OptionSet, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let fua = CommandFlags(rawValue: 1 << 0)
    public static let noHole = CommandFlags(rawValue: 1 << 1)
    public static let df = CommandFlags(rawValue: 1 << 2)
    public static let reqOne = CommandFlags(rawValue: 1 << 3)
    public static let fastZero = CommandFlags(rawValue: 1 << 4)
    public static let payloadLen = CommandFlags(rawValue: 1 << 5)
}

/// Error values carried in replies (`NBD_E*`). They match Linux errno numbers.
public struct NBDErrno: RawRepresentable, Equatable, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ v: UInt32) { rawValue = v }
    public static let ok = NBDErrno(0)
    public static let perm = NBDErrno(1)
    public static let io = NBDErrno(5)
    public static let nomem = NBDErrno(12)
    public static let inval = NBDErrno(22)
    public static let nospc = NBDErrno(28)
    public static let overflow = NBDErrno(75)
    public static let notsup = NBDErrno(95)
    public static let shutdown = NBDErrno(108)

    public var name: String {
        switch rawValue {
        case 0: return "OK"
        case 1: return "EPERM"
        case 5: return "EIO"
        case 12: return "ENOMEM"
        case 22: return "EINVAL"
        case 28: return "ENOSPC"
        case 75: return "EOVERFLOW"
        case 95: return "ENOTSUP"
        case 108: return "ESHUTDOWN"
        default: return "error \(rawValue)"
        }
    }
}
