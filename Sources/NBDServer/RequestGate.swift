// The one place that decides whether a request may reach the backing file
// (like nbdkit's validate_request in server/protocol.c). Past the gate the
// workers only execute. Error choices follow the spec's "Error values" and
// the consolidated rules in research/nbd-protocol.md section 2.7.
import NBDWire

/// Why a request is refused: the NBD error to reply and a line for the log.
public struct Rejection: Equatable, Sendable {
    public var error: NBDErrno
    public var reason: String

    public init(_ error: NBDErrno, _ reason: String) {
        self.error = error
        self.reason = reason
    }
}

/// What the gate needs to know about an export.
public struct GateExport: Equatable, Sendable {
    public var name: String
    public var size: UInt64
    public var readOnly: Bool
    /// The transmission flags the export advertises: a command or flag it
    /// does not advertise is refused (SEND_FLUSH, SEND_FUA, SEND_TRIM, SEND_WRITE_ZEROES).
    public var advertised: TransmissionFlags

    public init(name: String, size: UInt64, readOnly: Bool,
                advertised: TransmissionFlags = [.sendFlush, .sendFUA, .sendTrim, .sendWriteZeroes]) {
        self.name = name
        self.size = size
        self.readOnly = readOnly
        self.advertised = advertised
    }
}

public enum RequestGate {
    /// Flags a client may set on `command` (spec "Command flags"): FUA is
    /// valid on every command once SEND_FUA is advertised; DF only on READ
    /// and only once structured replies are on (SEND_DF is advertised then).
    /// Anything else is EINVAL.
    public static func acceptedFlags(_ command: Command, _ session: Session) -> CommandFlags {
        switch command {
        case .read: return session.structuredReplies ? [.fua, .df] : [.fua]
        case .blockStatus: return [.fua, .reqOne]
        case .writeZeroes: return [.fua, .noHole, .fastZero]
        default: return [.fua]
        }
    }

    /// Returns nil when `request` may run on `export`, or the refusal.
    /// DISC never reaches the gate (the reader handles it).
    public static func check(_ request: Request, on export: GateExport, session: Session = Session()) -> Rejection? {
        let command = request.command
        switch command {
        case .read, .write, .flush, .trim, .writeZeroes, .cache:
            break
        case .blockStatus:
            // Spec: SHOULD be EINVAL unless SET_META_CONTEXT selected a
            // context for this export (which needs structured replies).
            guard session.allocationContext != nil else {
                return Rejection(.inval, "BLOCK_STATUS: no metadata context was negotiated (send SET_META_CONTEXT base:allocation before GO)")
            }
        default:
            return Rejection(.inval, "\(command.name) is not supported")
        }
        for (needed, flag) in [(Command.flush, TransmissionFlags.sendFlush), (.trim, .sendTrim), (.writeZeroes, .sendWriteZeroes)]
            where command == needed && !export.advertised.contains(flag) {
            return Rejection(.inval, "\(command.name): export '\(export.name)' does not advertise it (its configuration turns it off)")
        }
        if request.flags.contains(.fua) && !export.advertised.contains(.sendFUA) {
            return Rejection(.inval, "\(command.name): FUA is not advertised by export '\(export.name)' (fua = false in its configuration)")
        }
        let unknownFlags = request.flags.subtracting(acceptedFlags(command, session))
        if !unknownFlags.isEmpty {
            return Rejection(.inval, "\(command.name): flags 0x\(hex(UInt64(unknownFlags.rawValue))) are not supported")
        }
        let writes = command == .write || command == .trim || command == .writeZeroes
        if writes && export.readOnly {
            return Rejection(.perm, "\(command.name): export '\(export.name)' is read-only")
        }
        if command == .flush {
            if request.offset != 0 || request.length != 0 {
                return Rejection(.inval, "FLUSH: offset and length must be 0")
            }
            return nil
        }
        if command == .blockStatus && request.length == 0 {
            return Rejection(.inval, "BLOCK_STATUS: length 0 has no extent to describe")
        }
        if (command == .read || command == .write) && request.length > BlockSizes.servedPayload {
            return Rejection(.inval, "\(command.name): length \(request.length) exceeds the largest payload served, \(BlockSizes.servedPayload)")
        }
        if !request.fits(in: export.size) {
            // Spec "Error values": ENOSPC for writes past the end, EINVAL otherwise.
            let error: NBDErrno = command == .write || command == .writeZeroes ? .nospc : .inval
            return Rejection(error, "\(command.name): offset \(request.offset) + length \(request.length) is beyond the end of export '\(export.name)' (\(export.size) bytes)")
        }
        return nil
    }
}
