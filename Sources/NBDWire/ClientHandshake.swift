// The client side of the handshake, written against a byte-stream protocol
// so the same code runs over a blocking socket in the static client and over
// a scripted buffer in the tests.
//
// What the kernel needs from us: no structured replies, no meta contexts, no
// extended headers (it parses simple replies only). We send GO, asking for
// NBD_INFO_BLOCK_SIZE, and fall back to EXPORT_NAME when the server answers
// ERR_UNSUP or does not speak fixed newstyle.

/// Why negotiation failed.
public enum NegotiationError: Error, Equatable {
    /// The peer sent bytes that are not valid NBD.
    case wire(WireError)
    /// The transport failed (errno from the system, and what we were doing).
    case io(errno: Int32, doing: String)
    /// The peer closed the connection (after `doing`).
    case closed(doing: String)
    /// The server answered an option with an error reply (and maybe a message).
    case refused(option: OptionCode, reply: ReplyType, message: String)

    public var description: String {
        switch self {
        case .wire(let e): return "protocol error: \(e.description)"
        case .io(let errno, let doing): return "\(doing): error \(errno)"
        case .closed(let doing): return "server closed the connection while \(doing)"
        case .refused(let option, let reply, let message):
            var s = "server refused \(option.name): \(reply.name)"
            if !message.isEmpty { s += " (\(message))" }
            return s
        }
    }
}

/// A reliable byte stream (a connected socket). Reads return exactly `count`
/// bytes or throw; writes send everything or throw.
public protocol NBDTransport {
    mutating func read(exactly count: Int, doing: String) throws(NegotiationError) -> [UInt8]
    mutating func write(_ bytes: [UInt8], doing: String) throws(NegotiationError)
}

/// What the handshake learnt about the export.
public struct NegotiatedExport: Equatable {
    public var size: UInt64
    public var flags: TransmissionFlags
    /// Block size constraints, when the server sent NBD_INFO_BLOCK_SIZE.
    public var minimumBlock: UInt32?
    public var preferredBlock: UInt32?
    public var maximumPayload: UInt32?
    /// Which route got us into transmission.
    public var via: Route

    public enum Route: Equatable { case go, exportName, oldstyle }

    public init(size: UInt64, flags: TransmissionFlags, via: Route) {
        self.size = size
        self.flags = flags
        self.via = via
    }
}

/// Options for `negotiate`.
public struct NegotiationOptions {
    /// Export to attach; "" is the server's default export.
    public var exportName: String
    /// Skip GO and use EXPORT_NAME straight away (nbd-client's `-g`/`-no-optgo`).
    public var forceExportName: Bool

    public init(exportName: String, forceExportName: Bool = false) {
        self.exportName = exportName
        self.forceExportName = forceExportName
    }
}

/// Reads the greeting. Returns the handshake flags, or the export when the
/// server is oldstyle (it then sends everything at once and no options follow).
func readGreeting<T: NBDTransport>(_ t: inout T) throws(NegotiationError) -> (HandshakeFlags, NegotiatedExport?) {
    let head = try t.read(exactly: NewstyleGreeting.size, doing: "reading the server greeting")
    var r = ByteReader(head)
    let magic = (try? r.u64()) ?? 0
    guard magic == Magic.nbdMagic else {
        throw .wire(.badMagic(field: "greeting", expected: Magic.nbdMagic, found: magic))
    }
    let second = (try? r.u64()) ?? 0
    if second == Magic.oldstyle {
        let rest = try t.read(exactly: OldstyleGreeting.size - NewstyleGreeting.size, doing: "reading the oldstyle greeting")
        do {
            let g = try OldstyleGreeting.decode(head + rest)
            return ([], NegotiatedExport(size: g.exportSize, flags: g.flags, via: .oldstyle))
        } catch { throw .wire(error) }
    }
    do {
        return (try NewstyleGreeting.decode(head).flags, nil)
    } catch { throw .wire(error) }
}

/// Sends our client flags: fixed newstyle, plus NO_ZEROES when offered.
func sendClientFlags<T: NBDTransport>(_ t: inout T, serverFlags: HandshakeFlags) throws(NegotiationError) -> ClientFlags {
    var flags: ClientFlags = []
    if serverFlags.contains(.fixedNewstyle) { flags.insert(.fixedNewstyle) }
    if serverFlags.contains(.noZeroes) { flags.insert(.noZeroes) }
    try t.write(ClientFlagsMessage.encode(flags), doing: "sending client flags")
    return flags
}

/// Reads one option reply (header and data) to `option`.
func readOptionReply<T: NBDTransport>(_ t: inout T, option: OptionCode) throws(NegotiationError) -> (ReplyType, [UInt8]) {
    let doing = "reading the reply to \(option.name)"
    let raw = try t.read(exactly: OptionReplyHeader.size, doing: doing)
    let header: OptionReplyHeader
    do { header = try OptionReplyHeader.decode(raw) } catch { throw .wire(error) }
    guard header.option == option else {
        throw .wire(.invalid("reply is for \(header.option.name), expected \(option.name)"))
    }
    let data = header.length > 0 ? try t.read(exactly: Int(header.length), doing: doing) : []
    return (header.type, data)
}

/// Runs the whole handshake and leaves the transport in the transmission phase.
public func negotiate<T: NBDTransport>(_ t: inout T, _ options: NegotiationOptions) throws(NegotiationError) -> NegotiatedExport {
    let (serverFlags, oldstyle) = try readGreeting(&t)
    if let oldstyle { return oldstyle }
    let clientFlags = try sendClientFlags(&t, serverFlags: serverFlags)
    if clientFlags.contains(.fixedNewstyle) && !options.forceExportName {
        if let export = try optGo(&t, name: options.exportName) { return export }
    }
    return try optExportName(&t, name: options.exportName, noZeroes: clientFlags.contains(.noZeroes))
}

/// NBD_OPT_GO. Returns nil when the server does not know GO (ERR_UNSUP), so
/// the caller falls back to EXPORT_NAME.
func optGo<T: NBDTransport>(_ t: inout T, name: String) throws(NegotiationError) -> NegotiatedExport? {
    let request = InfoRequest(name: name, requests: [.blockSize])
    try t.write(OptionHeader.encode(.go, data: request.encode()), doing: "sending GO")
    var export: NegotiatedExport?
    var block: (UInt32, UInt32, UInt32)?
    while true {
        let (type, data) = try readOptionReply(&t, option: .go)
        if type == .info {
            let info: Info
            do { info = try Info.decode(data) } catch { throw .wire(error) }
            switch info {
            case .export(let size, let flags): export = NegotiatedExport(size: size, flags: flags, via: .go)
            case .blockSize(let a, let b, let c): block = (a, b, c)
            default: break
            }
        } else if type == .ack {
            guard var e = export else { throw .wire(.invalid("server acknowledged GO without NBD_INFO_EXPORT")) }
            if let (a, b, c) = block {
                e.minimumBlock = a
                e.preferredBlock = b
                e.maximumPayload = c
            }
            return e
        } else if type == .errUnsup {
            return nil
        } else if type.isError {
            throw .refused(option: .go, reply: type, message: String(decoding: data, as: UTF8.self))
        } else {
            throw .wire(.invalid("unexpected reply \(type.name) to GO"))
        }
    }
}

/// NBD_OPT_EXPORT_NAME: the server answers with size and flags, or closes
/// when it has no such export.
func optExportName<T: NBDTransport>(_ t: inout T, name: String, noZeroes: Bool) throws(NegotiationError) -> NegotiatedExport {
    try t.write(OptionHeader.encode(.exportName, data: Array(name.utf8)), doing: "sending EXPORT_NAME")
    let doing = "reading the reply to EXPORT_NAME (a server closes here when it has no export '\(name)')"
    let raw = try t.read(exactly: ExportNameReply.size(noZeroes: noZeroes), doing: doing)
    do {
        let reply = try ExportNameReply.decode(raw)
        return NegotiatedExport(size: reply.exportSize, flags: reply.flags, via: .exportName)
    } catch { throw .wire(error) }
}

/// NBD_OPT_LIST then NBD_OPT_ABORT: the exports a server offers.
public func listExports<T: NBDTransport>(_ t: inout T) throws(NegotiationError) -> [ServerEntry] {
    let (serverFlags, oldstyle) = try readGreeting(&t)
    if oldstyle != nil || !serverFlags.contains(.fixedNewstyle) {
        throw .wire(.invalid("server does not speak fixed newstyle, so it cannot list its exports"))
    }
    _ = try sendClientFlags(&t, serverFlags: serverFlags)
    try t.write(OptionHeader.encode(.list), doing: "sending LIST")
    var entries: [ServerEntry] = []
    while true {
        let (type, data) = try readOptionReply(&t, option: .list)
        if type == .server {
            do { entries.append(try ServerEntry.decode(data)) } catch { throw .wire(error) }
        } else if type == .ack {
            break
        } else if type.isError {
            throw .refused(option: .list, reply: type, message: String(decoding: data, as: UTF8.self))
        } else {
            throw .wire(.invalid("unexpected reply \(type.name) to LIST"))
        }
    }
    // Soft disconnect. Some servers (nbd-server) close without an ACK: fine.
    try t.write(OptionHeader.encode(.abort), doing: "sending ABORT")
    _ = try? readOptionReply(&t, option: .abort)
    return entries
}
