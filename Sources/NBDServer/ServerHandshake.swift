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

    public init(exports: [ExportInfo]) { self.exports = exports }

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

    /// A 16-byte option header: a bad magic or data longer than
    /// `Limits.maxOptionLength` closes before anything is allocated.
    public func receiveOptionHeader(_ bytes: [UInt8]) -> Step {
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
            let reply = ExportNameReply(exportSize: e.size, flags: e.flags)
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
            var out = reply(option, .info, Info.export(size: e.size, flags: e.flags).encode())
            out += reply(option, .info, Info.blockSize(minimum: BlockSizes.minimum, preferred: BlockSizes.preferred,
                                                       maximum: BlockSizes.maximumPayload).encode())
            if request.requests.contains(.name) {
                out += reply(option, .info, Info.name(e.name).encode())
            }
            if request.requests.contains(.description) && !e.description.isEmpty {
                out += reply(option, .info, Info.description(e.description).encode())
            }
            out += reply(option, .ack)
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

        default:
            // STARTTLS, STRUCTURED_REPLY, meta contexts, EXTENDED_HEADERS and
            // anything unknown: the data was drained; say so and go on.
            let message = "\(option.name) is not supported by nbdboot serve"
            return Step(send: reply(option, .errUnsup, Array(message.utf8)), next: .readOption)
        }
    }

    /// The export a client means by `name`: an exact match, or for "" the
    /// first export (the default one, as with nbd-server).
    public func find(_ name: String) -> Int? {
        if let i = exports.firstIndex(where: { $0.name == name }) { return i }
        if let i = StationName.exportIndex(name, in: exports) { return i }
        return name.isEmpty && !exports.isEmpty ? 0 : nil
    }

    private func reply(_ option: OptionCode, _ type: ReplyType, _ data: [UInt8] = []) -> [UInt8] {
        OptionReplyHeader.encode(option, type, data: data)
    }

    private func refuse(_ option: OptionCode, _ type: ReplyType, _ message: String) -> Step {
        Step(send: reply(option, type, Array(message.utf8.prefix(Limits.maxReplyPayload))), next: .readOption, note: message)
    }
}
