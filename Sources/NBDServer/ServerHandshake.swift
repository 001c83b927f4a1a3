// The server side of the fixed-newstyle handshake as a pure state machine
// (spec "Handshake" / "Option haggling"). The connection reads bytes and asks
// this struct what to do; it answers with bytes to send and the next action.
// No I/O here, so every option and every refusal is unit-tested byte for byte.
import NBDWire

/// What a client can learn about an export during the handshake.
public struct ExportInfo: Equatable, Sendable {
    public var name: String
    public var description: String
    public var size: UInt64
    public var flags: TransmissionFlags
    /// A cow or swap export: clients may ask for `NAME@STATION` (StationIdentity.swift).
    public var perStation = false

    public init(name: String, description: String = "", size: UInt64, flags: TransmissionFlags) {
        self.name = name
        self.description = description
        self.size = size
        self.flags = flags
    }
}

/// Block size constraints we advertise in NBD_INFO_BLOCK_SIZE (spec "Size
/// constraints"): any alignment, 4 KiB preferred, 32 MiB payloads. Requests up
/// to `servedPayload` are still served (nbd-tester-client's integrityhuge test
/// sends ~48 MiB); beyond that READ/WRITE get EINVAL.
public enum BlockSizes {
    public static let minimum: UInt32 = 1
    public static let preferred: UInt32 = 4096
    public static let maximumPayload: UInt32 = 32 << 20
    public static let servedPayload: UInt32 = 64 << 20
}

/// What a client negotiated during the handshake that changes transmission.
/// The default is what the Linux kernel and nbd-client get: simple replies only.
public struct Session: Equatable, Sendable {
    /// NBD_OPT_STRUCTURED_REPLY was acknowledged: READ replies (and errors,
    /// with a message) go out as structured reply chunks.
    public var structuredReplies: Bool
    /// The ID of `base:allocation` when SET_META_CONTEXT selected it for the
    /// export now in transmission; BLOCK_STATUS needs it.
    public var allocationContext: UInt32?

    public init(structuredReplies: Bool = false, allocationContext: UInt32? = nil) {
        self.structuredReplies = structuredReplies
        self.allocationContext = allocationContext
    }
}

public struct ServerHandshake {
    /// What the connection does next.
    public enum Action: Equatable {
        /// Read a 16-byte option header.
        case readOption
        /// Read `length` bytes of option data, then call `receiveOption`.
        case readOptionData(OptionHeader)
        /// Close without a word (a hard disconnect, spec "Termination of the
        /// session"): the reason is for the log.
        case close(reason: String)
        /// Enter transmission on `exports[index]`.
        case transmit(exportIndex: Int)
    }

    /// The answer to one input: bytes to send first, then the next action, and
    /// maybe a line worth logging.
    public struct Step: Equatable {
        public var send: [UInt8]
        public var next: Action
        public var note: String?

        public init(send: [UInt8] = [], next: Action, note: String? = nil) {
            self.send = send
            self.next = next
            self.note = note
        }
    }

    /// We speak fixed newstyle and can omit the 124 zeroes.
    public static let handshakeFlags: HandshakeFlags = [.fixedNewstyle, .noZeroes]

    public let exports: [ExportInfo]
    /// The client's flags, once received.
    public private(set) var clientFlags: ClientFlags = []
    /// The export name the client chose (EXPORT_NAME or GO), e.g. "root@st1".
    public private(set) var selectedName = ""
    /// What was negotiated so far; final once `.transmit` is returned.
    public private(set) var session = Session()
    /// The export the last SET_META_CONTEXT named, if it selected
    /// base:allocation; it counts only if transmission starts on that export.
    private var allocationSelectedFor: Int?

    /// The ID SET_META_CONTEXT gives `base:allocation` (any unique non-reserved
    /// value will do; LIST replies use the reserved 0).
    public static let allocationContextID: UInt32 = 1

    /// Options one handshake may send; the next one closes the connection
    /// (spec "Termination of the session": a server MAY hard-disconnect to
    /// protect itself). Real clients send a handful.
    public let maxOptions: Int
    /// Options received so far.
    public private(set) var optionCount = 0

    public init(exports: [ExportInfo], maxOptions: Int = 64) {
        self.exports = exports
        self.maxOptions = maxOptions
    }

    /// The 18-byte greeting: NBDMAGIC, IHAVEOPT, FIXED_NEWSTYLE|NO_ZEROES.
    public func greeting() -> [UInt8] { NewstyleGreeting(flags: Self.handshakeFlags).encode() }

    /// The client's 4-byte flags. Zero (BusyBox) and any mix of the two known
    /// bits are fine; an unknown bit is a violation and we close.
    public mutating func receiveClientFlags(_ bytes: [UInt8]) -> Step {
        do {
            clientFlags = try ClientFlagsMessage.decode(bytes, offered: Self.handshakeFlags)
            return Step(next: .readOption)
        } catch {
            return Step(next: .close(reason: error.description))
        }
    }

    /// A 16-byte option header: a bad magic, data longer than
    /// `Limits.maxOptionLength` or one option more than `maxOptions` closes
    /// before anything is allocated.
    public mutating func receiveOptionHeader(_ bytes: [UInt8]) -> Step {
        optionCount += 1
        if optionCount > maxOptions {
            return Step(next: .close(reason: "more than \(maxOptions) options in one handshake; a client that never decides is closed"))
        }
        do {
            let header = try OptionHeader.decode(bytes, limit: Limits.maxOptionLength)
            return Step(next: .readOptionData(header))
        } catch {
            return Step(next: .close(reason: error.description))
        }
    }

    /// One whole option (header and its data): the replies and what follows.
    public mutating func receiveOption(_ header: OptionHeader, data: [UInt8]) -> Step {
        let option = header.option
        switch option {
        case .exportName:
            let name = String(decoding: data, as: UTF8.self)
            guard let index = find(name) else {
                return Step(next: .close(reason: "EXPORT_NAME: \(StationName.noExport(name, in: exports)); a server can only close here"))
            }
            selectedName = name
            let e = exports[index]
            let reply = ExportNameReply(exportSize: e.size, flags: flags(of: e))
            enterTransmission(index)
            return Step(send: reply.encode(noZeroes: clientFlags.contains(.noZeroes)), next: .transmit(exportIndex: index))

        case .info, .go:
            let request: InfoRequest
            do { request = try InfoRequest.decode(data) } catch {
                return refuse(option, .errInvalid, "\(option.name): \(error.description)")
            }
            guard let index = find(request.name) else {
                return refuse(option, .errUnknown, "\(option.name): \(StationName.noExport(request.name, in: exports))")
            }
            if option == .go { selectedName = request.name }
            let e = exports[index]
            var out = reply(option, .info, Info.export(size: e.size, flags: flags(of: e)).encode())
            out += reply(option, .info, Info.blockSize(minimum: BlockSizes.minimum, preferred: BlockSizes.preferred,
                                                       maximum: BlockSizes.maximumPayload).encode())
            if request.requests.contains(.name) {
                out += reply(option, .info, Info.name(e.name).encode())
            }
            if request.requests.contains(.description) && !e.description.isEmpty {
                out += reply(option, .info, Info.description(e.description).encode())
            }
            out += reply(option, .ack)
            if option == .go { enterTransmission(index) }
            return Step(send: out, next: option == .go ? .transmit(exportIndex: index) : .readOption)

        case .list:
            guard data.isEmpty else {
                return refuse(option, .errInvalid, "LIST takes no data, got \(data.count) bytes")
            }
            var out: [UInt8] = []
            for e in exports {
                out += reply(option, .server, ServerEntry(name: e.name, description: e.description).encode())
            }
            return Step(send: out + reply(option, .ack), next: .readOption)

        case .abort:
            return Step(send: reply(option, .ack), next: .close(reason: "client sent ABORT"))

        case .structuredReply:
            // Spec: no data allowed; a state-changing option SHOULD NOT be
            // repeated and a server MAY answer a repeat with ERR_INVALID.
            guard data.isEmpty else {
                return refuse(option, .errInvalid, "STRUCTURED_REPLY takes no data, got \(data.count) bytes")
            }
            guard !session.structuredReplies else {
                return refuse(option, .errInvalid, "STRUCTURED_REPLY was already negotiated")
            }
            session.structuredReplies = true
            return Step(send: reply(option, .ack), next: .readOption)

        case .listMetaContext, .setMetaContext:
            return metaContext(option, data)

        case .startTLS:
            // Spec "TLS support": a server without TLS configured answers
            // ERR_POLICY (nbdkit does the same); data is ERR_INVALID.
            guard data.isEmpty else {
                return refuse(option, .errInvalid, "STARTTLS takes no data, got \(data.count) bytes")
            }
            return refuse(option, .errPolicy, "TLS is not configured")

        default:
            // STARTTLS, EXTENDED_HEADERS and anything unknown: the data was
            // drained; say so and go on.
            let message = "\(option.name) is not supported by nbdboot serve"
            return Step(send: reply(option, .errUnsup, Array(message.utf8)), next: .readOption)
        }
    }

    /// LIST_META_CONTEXT and SET_META_CONTEXT (spec "Metadata querying").
    /// We know one context, `base:allocation`. Both need structured replies
    /// first (ERR_INVALID otherwise); SET replaces the selection even when it
    /// fails. In LIST no query or the query `base:` means every base:
    /// context; SET ignores `base:`; unknown namespaces and leaves are ignored.
    private mutating func metaContext(_ option: OptionCode, _ data: [UInt8]) -> Step {
        let isSet = option == .setMetaContext
        if isSet { allocationSelectedFor = nil }
        guard session.structuredReplies else {
            return refuse(option, .errInvalid, "\(option.name) needs STRUCTURED_REPLY first")
        }
        let request: MetaContextRequest
        do { request = try MetaContextRequest.decode(data) } catch {
            return refuse(option, .errInvalid, "\(option.name): \(error.description)")
        }
        guard let index = find(request.exportName) else {
            return refuse(option, .errUnknown, "\(option.name): no export '\(request.exportName)' (\(known))")
        }
        let wanted: Bool
        if isSet {
            wanted = request.queries.contains(MetaContextName.baseAllocation)
        } else {
            wanted = request.queries.isEmpty || request.queries.contains {
                $0 == MetaContextName.baseAllocation || $0 == MetaContextName.baseNamespace
            }
        }
        var out: [UInt8] = []
        if wanted {
            let id = isSet ? Self.allocationContextID : 0
            out += reply(option, .metaContext, MetaContextReply(id: id, name: MetaContextName.baseAllocation).encode())
            if isSet { allocationSelectedFor = index }
        }
        return Step(send: out + reply(option, .ack), next: .readOption)
    }

    /// Fixes the session for transmission on `index`: the allocation context
    /// counts only if the last SET_META_CONTEXT named this export.
    private mutating func enterTransmission(_ index: Int) {
        session.allocationContext = allocationSelectedFor == index ? Self.allocationContextID : nil
    }

    /// An export's transmission flags as this client sees them: SEND_DF only
    /// once structured replies are on (spec "Transmission flags": it MUST be
    /// clear otherwise).
    public func flags(of e: ExportInfo) -> TransmissionFlags {
        session.structuredReplies ? e.flags.union(.sendDF) : e.flags
    }

    /// The export a client means by `name`: an exact match, or for "" the
    /// first export (the default one, as with nbd-server).
    public func find(_ name: String) -> Int? {
        if let i = exports.firstIndex(where: { $0.name == name }) { return i }
        if let i = StationName.exportIndex(name, in: exports) { return i }
        return name.isEmpty && !exports.isEmpty ? 0 : nil
    }

    private var known: String {
        "exports: " + exports.map { "'\($0.name)'" }.joined(separator: ", ")
    }

    private func reply(_ option: OptionCode, _ type: ReplyType, _ data: [UInt8] = []) -> [UInt8] {
        OptionReplyHeader.encode(option, type, data: data)
    }

    private func refuse(_ option: OptionCode, _ type: ReplyType, _ message: String) -> Step {
        Step(send: reply(option, type, Array(message.utf8.prefix(Limits.maxReplyPayload))), next: .readOption, note: message)
    }
}
