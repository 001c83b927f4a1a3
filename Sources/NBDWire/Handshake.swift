// The handshake phase: greetings, client flags, option requests and replies,
// the EXPORT_NAME reply, and the payloads of INFO/GO/LIST. Each message is a
// struct with `encode()` and a throwing `decode`; none of them does I/O.

/// The 18-byte greeting of a newstyle server: NBDMAGIC, IHAVEOPT, handshake flags.
public struct NewstyleGreeting: Equatable {
    public static let size = 18
    public var flags: HandshakeFlags

    public init(flags: HandshakeFlags) { self.flags = flags }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        w.u64(Magic.nbdMagic)
        w.u64(Magic.ihaveopt)
        w.u16(flags.rawValue)
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> NewstyleGreeting {
        var r = ByteReader(bytes)
        let m1 = try r.u64()
        guard m1 == Magic.nbdMagic else { throw .badMagic(field: "greeting", expected: Magic.nbdMagic, found: m1) }
        let m2 = try r.u64()
        guard m2 == Magic.ihaveopt else {
            if m2 == Magic.oldstyle { throw .invalid("server speaks the oldstyle protocol; nbdboot's client needs newstyle") }
            throw .badMagic(field: "greeting", expected: Magic.ihaveopt, found: m2)
        }
        return NewstyleGreeting(flags: HandshakeFlags(rawValue: try r.u16()))
    }
}

/// The 152-byte greeting of an oldstyle server, after which transmission starts.
public struct OldstyleGreeting: Equatable {
    public static let size = 152
    public var exportSize: UInt64
    public var flags: TransmissionFlags

    public init(exportSize: UInt64, flags: TransmissionFlags) {
        self.exportSize = exportSize
        self.flags = flags
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        w.u64(Magic.nbdMagic)
        w.u64(Magic.oldstyle)
        w.u64(exportSize)
        w.u32(UInt32(flags.rawValue))
        w.zeroes(124)
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> OldstyleGreeting {
        var r = ByteReader(bytes)
        let m1 = try r.u64()
        guard m1 == Magic.nbdMagic else { throw .badMagic(field: "greeting", expected: Magic.nbdMagic, found: m1) }
        let m2 = try r.u64()
        guard m2 == Magic.oldstyle else { throw .badMagic(field: "oldstyle greeting", expected: Magic.oldstyle, found: m2) }
        let size = try r.u64()
        let flags = try r.u32()
        _ = try r.take(124)
        return OldstyleGreeting(exportSize: size, flags: TransmissionFlags(rawValue: UInt16(truncatingIfNeeded: flags)))
    }
}

/// The client's 4-byte answer to a newstyle greeting.
public enum ClientFlagsMessage {
    public static let size = 4

    public static func encode(_ flags: ClientFlags) -> [UInt8] {
        var w = ByteWriter(capacity: size)
        w.u32(flags.rawValue)
        return w.bytes
    }

    /// Decodes the flags and checks them against what the server offered: an
    /// unknown bit, or NO_ZEROES the server did not announce, is a violation
    /// after which the server closes.
    public static func decode(_ bytes: [UInt8], offered: HandshakeFlags) throws(WireError) -> ClientFlags {
        var r = ByteReader(bytes)
        let flags = ClientFlags(rawValue: try r.u32())
        let unknown = flags.subtracting(ClientFlags.known)
        if !unknown.isEmpty {
            throw .invalid("client flags 0x\(hex(UInt64(flags.rawValue))) have unknown bits 0x\(hex(UInt64(unknown.rawValue)))")
        }
        if flags.contains(.noZeroes) && !offered.contains(.noZeroes) {
            throw .invalid("client set NO_ZEROES which the server did not offer")
        }
        return flags
    }
}

/// The 16-byte header of an option request; `length` bytes of data follow it.
public struct OptionHeader: Equatable {
    public static let size = 16
    public var option: OptionCode
    public var length: UInt32

    public init(option: OptionCode, length: UInt32) {
        self.option = option
        self.length = length
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        w.u64(Magic.ihaveopt)
        w.u32(option.rawValue)
        w.u32(length)
        return w.bytes
    }

    /// Decodes the header. A length above `limit` is refused here, before
    /// anybody allocates a buffer for it.
    public static func decode(_ bytes: [UInt8], limit: UInt32 = Limits.maxOptionLength) throws(WireError) -> OptionHeader {
        var r = ByteReader(bytes)
        let magic = try r.u64()
        guard magic == Magic.ihaveopt else { throw .badMagic(field: "option", expected: Magic.ihaveopt, found: magic) }
        let option = OptionCode(try r.u32())
        let length = try r.u32()
        guard length <= limit else { throw .tooLong(field: "option \(option.name) data", length: UInt64(length), limit: UInt64(limit)) }
        return OptionHeader(option: option, length: length)
    }

    /// A whole option: header plus data.
    public static func encode(_ option: OptionCode, data: [UInt8] = []) -> [UInt8] {
        OptionHeader(option: option, length: UInt32(data.count)).encode() + data
    }
}

/// The 20-byte header of a fixed-newstyle option reply; `length` bytes follow.
public struct OptionReplyHeader: Equatable {
    public static let size = 20
    public var option: OptionCode
    public var type: ReplyType
    public var length: UInt32

    public init(option: OptionCode, type: ReplyType, length: UInt32) {
        self.option = option
        self.type = type
        self.length = length
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        w.u64(Magic.optionReply)
        w.u32(option.rawValue)
        w.u32(type.rawValue)
        w.u32(length)
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8], limit: UInt32 = Limits.maxOptionLength) throws(WireError) -> OptionReplyHeader {
        var r = ByteReader(bytes)
        let magic = try r.u64()
        guard magic == Magic.optionReply else { throw .badMagic(field: "option reply", expected: Magic.optionReply, found: magic) }
        let option = OptionCode(try r.u32())
        let type = ReplyType(try r.u32())
        let length = try r.u32()
        guard length <= limit else { throw .tooLong(field: "option reply data", length: UInt64(length), limit: UInt64(limit)) }
        return OptionReplyHeader(option: option, type: type, length: length)
    }

    /// A whole reply: header plus data.
    public static func encode(_ option: OptionCode, _ type: ReplyType, data: [UInt8] = []) -> [UInt8] {
        OptionReplyHeader(option: option, type: type, length: UInt32(data.count)).encode() + data
    }
}

/// The server's answer to NBD_OPT_EXPORT_NAME: size, flags and, unless both
/// sides agreed on NO_ZEROES, 124 zero bytes. There is no reply header.
public struct ExportNameReply: Equatable {
    public var exportSize: UInt64
    public var flags: TransmissionFlags

    public init(exportSize: UInt64, flags: TransmissionFlags) {
        self.exportSize = exportSize
        self.flags = flags
    }

    public static func size(noZeroes: Bool) -> Int { noZeroes ? 10 : 134 }

    public func encode(noZeroes: Bool) -> [UInt8] {
        var w = ByteWriter(capacity: Self.size(noZeroes: noZeroes))
        w.u64(exportSize)
        w.u16(flags.rawValue)
        if !noZeroes { w.zeroes(124) }
        return w.bytes
    }

    /// Decodes the first 10 bytes; the caller reads and drops the zeroes.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> ExportNameReply {
        var r = ByteReader(bytes)
        let size = try r.u64()
        let flags = TransmissionFlags(rawValue: try r.u16())
        return ExportNameReply(exportSize: size, flags: flags)
    }
}

/// The data of NBD_OPT_INFO and NBD_OPT_GO: an export name and the list of
/// `NBD_INFO_*` items the client asks for.
public struct InfoRequest: Equatable {
    public var name: String
    public var requests: [InfoType]

    public init(name: String, requests: [InfoType] = []) {
        self.name = name
        self.requests = requests
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        let n = Array(name.utf8)
        w.u32(UInt32(n.count))
        w.append(n)
        w.u16(UInt16(requests.count))
        for q in requests { w.u16(q.rawValue) }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> InfoRequest {
        var r = ByteReader(bytes)
        let nameLength = try r.u32()
        guard nameLength <= UInt32(Limits.maxString) else {
            throw .tooLong(field: "export name", length: UInt64(nameLength), limit: UInt64(Limits.maxString))
        }
        guard Int(nameLength) <= r.remaining - 2 else {
            throw .invalid("export name length \(nameLength) does not fit in an option of \(bytes.count) bytes")
        }
        let name = try r.string(Int(nameLength))
        let count = try r.u16()
        guard Int(count) * 2 == r.remaining else {
            throw .invalid("information request count \(count) does not match the \(r.remaining) bytes left")
        }
        var requests: [InfoType] = []
        for _ in 0..<count { requests.append(InfoType(try r.u16())) }
        return InfoRequest(name: name, requests: requests)
    }
}

/// One `NBD_REP_INFO` payload.
public enum Info: Equatable {
    case export(size: UInt64, flags: TransmissionFlags)
    case name(String)
    case description(String)
    case blockSize(minimum: UInt32, preferred: UInt32, maximum: UInt32)
    /// A type this implementation does not know; clients ignore it.
    case unknown(type: UInt16, data: [UInt8])

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        switch self {
        case .export(let size, let flags):
            w.u16(InfoType.export.rawValue)
            w.u64(size)
            w.u16(flags.rawValue)
        case .name(let s):
            w.u16(InfoType.name.rawValue)
            w.append(s)
        case .description(let s):
            w.u16(InfoType.description.rawValue)
            w.append(s)
        case .blockSize(let minimum, let preferred, let maximum):
            w.u16(InfoType.blockSize.rawValue)
            w.u32(minimum)
            w.u32(preferred)
            w.u32(maximum)
        case .unknown(let type, let data):
            w.u16(type)
            w.append(data)
        }
        return w.bytes
    }

    /// Decodes the data of an `NBD_REP_INFO` reply. Fixed-size items must have
    /// exactly their size (12 and 14 bytes), as libnbd insists.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> Info {
        var r = ByteReader(bytes)
        let type = try r.u16()
        switch InfoType(type) {
        case .export:
            guard bytes.count == 12 else { throw .invalid("NBD_INFO_EXPORT must be 12 bytes, got \(bytes.count)") }
            let size = try r.u64()
            return .export(size: size, flags: TransmissionFlags(rawValue: try r.u16()))
        case .name:
            return .name(String(decoding: r.rest(), as: UTF8.self))
        case .description:
            return .description(String(decoding: r.rest(), as: UTF8.self))
        case .blockSize:
            guard bytes.count == 14 else { throw .invalid("NBD_INFO_BLOCK_SIZE must be 14 bytes, got \(bytes.count)") }
            let minimum = try r.u32()
            let preferred = try r.u32()
            return .blockSize(minimum: minimum, preferred: preferred, maximum: try r.u32())
        default:
            return .unknown(type: type, data: r.rest())
        }
    }
}

/// The data of an `NBD_REP_SERVER` reply to NBD_OPT_LIST: a name and an
/// optional description filling the rest.
public struct ServerEntry: Equatable {
    public var name: String
    public var description: String

    public init(name: String, description: String = "") {
        self.name = name
        self.description = description
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        let n = Array(name.utf8)
        w.u32(UInt32(n.count))
        w.append(n)
        w.append(description)
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> ServerEntry {
        var r = ByteReader(bytes)
        let length = try r.u32()
        guard Int(length) <= r.remaining else {
            throw .invalid("export name length \(length) exceeds the \(r.remaining) bytes of the reply")
        }
        let name = try r.string(Int(length))
        return ServerEntry(name: name, description: String(decoding: r.rest(), as: UTF8.self))
    }
}
