// Target 0: the server side. The input is what a client sends: 4 bytes of
// client flags, options (header, then as much data as the header says), and
// once an option starts transmission, 28-byte requests (a WRITE's payload
// follows it). Drives ServerHandshake exactly as Connection.swift does and
// passes every request through RequestGate.
import NBDWire

enum FuzzServer {
    /// "root" is per station (clients may ask for root@STATION), "lab" has
    /// an allow list that refuses this client.
    static let exports: [ExportInfo] = {
        var e = [
            ExportInfo(name: "root", description: "Debian 12 root", size: 1 << 20,
                       flags: [.hasFlags, .sendFlush, .sendFUA, .sendTrim, .sendWriteZeroes, .sendCache, .canMultiConn]),
            ExportInfo(name: "ro", size: 4096, flags: [.hasFlags, .readOnly]),
            ExportInfo(name: "lab", size: 512, flags: [.hasFlags]),
        ]
        e[0].perStation = true
        return e
    }()

    static func run(_ input: [UInt8]) {
        var cursor = FuzzCursor(input)
        var machine = ServerHandshake(exports: exports, maxOptions: 64,
                                      refusals: [nil, nil, "client is not in the allow list"],
                                      listAllowed: input.count % 2 == 0)
        guard let flags = cursor.take(ClientFlagsMessage.size) else { return }
        var step = machine.receiveClientFlags(flags)
        var viaExportName = false
        for _ in 0..<200 {
            if !viaExportName { checkOptionReplies(step.send) }
            switch step.next {
            case .readOption:
                guard let raw = cursor.take(OptionHeader.size) else { return }
                step = machine.receiveOptionHeader(raw)
                fuzzCheck(machine.optionCount <= machine.maxOptions || isClose(step.next), "option cap not enforced")
            case .readOptionData(let header):
                fuzzCheck(header.length <= Limits.maxOptionLength, "option data of \(header.length) bytes accepted")
                guard let data = cursor.take(Int(header.length)) else { return }
                viaExportName = header.option == .exportName
                step = machine.receiveOption(header, data: data)
            case .close:
                return
            case .transmit(let index):
                fuzzCheck(index < exports.count, "transmit on export \(index) of \(exports.count)")
                fuzzCheck(machine.refusals[index] == nil, "transmission on an export whose allow list refuses the client")
                if viaExportName {
                    let size = machine.clientFlags.contains(.noZeroes) ? 10 : 134
                    fuzzCheck(step.send.count == size, "EXPORT_NAME reply of \(step.send.count) bytes, expected \(size)")
                }
                transmission(&cursor, exports[index], machine.session)
                return
            }
        }
        fuzzCheck(false, "the handshake did not end within 200 steps")
    }

    static func isClose(_ a: ServerHandshake.Action) -> Bool {
        if case .close = a { return true }
        return false
    }

    /// Every byte the server sends during option haggling is a sequence of
    /// well-formed option replies whose payloads decode.
    static func checkOptionReplies(_ bytes: [UInt8]) {
        var cursor = FuzzCursor(bytes)
        while cursor.remaining > 0 {
            guard let raw = cursor.take(OptionReplyHeader.size) else {
                return fuzzCheck(false, "a truncated option reply header")
            }
            let header: OptionReplyHeader
            do { header = try OptionReplyHeader.decode(raw, limit: UInt32.max) } catch {
                return fuzzCheck(false, "an option reply header that does not decode: \(error.description)")
            }
            guard let payload = cursor.take(Int(header.length)) else {
                return fuzzCheck(false, "an option reply shorter than its length \(header.length)")
            }
            fuzzCheck(payload.count <= Limits.maxReplyPayload + 64, "a reply payload of \(payload.count) bytes")
            if header.type == .info {
                fuzzCheck((try? Info.decode(payload)) != nil, "an INFO reply that does not decode")
            } else if header.type == .server {
                fuzzCheck((try? ServerEntry.decode(payload)) != nil, "a SERVER reply that does not decode")
            } else if header.type == .metaContext {
                fuzzCheck((try? MetaContextReply.decode(payload)) != nil, "a META_CONTEXT reply that does not decode")
            }
        }
    }

    /// Requests until the input ends, a bad magic or DISC, as the reader loop.
    static func transmission(_ cursor: inout FuzzCursor, _ export: ExportInfo, _ session: Session) {
        let gate = GateExport(name: export.name, size: export.size, readOnly: export.flags.contains(.readOnly),
                              advertised: export.flags)
        for _ in 0..<10_000 {
            guard let raw = cursor.take(Request.size) else { return }
            let request: Request
            do { request = try Request.decode(raw) } catch { return }
            fuzzCheck(request.encode() == raw, "Request decode/encode is not a round trip")
            if request.command == .disc { return }
            let rejection = RequestGate.check(request, on: gate, session: session)
            if rejection == nil {
                switch request.command {
                case .read, .write, .trim, .writeZeroes, .cache, .blockStatus:
                    fuzzCheck(request.fits(in: export.size), "\(request.command.name) past the end passed the gate")
                    fuzzCheck(!(request.command == .write && gate.readOnly), "a WRITE to a read-only export passed the gate")
                    fuzzCheck(request.length <= BlockSizes.servedPayload || request.command != .read,
                              "an oversized READ passed the gate")
                case .flush:
                    fuzzCheck(request.offset == 0 && request.length == 0, "a FLUSH with a range passed the gate")
                default:
                    fuzzCheck(false, "command \(request.command.name) passed the gate")
                }
            }
            if request.command == .write {
                // The reader always consumes the payload (or drains it when refused).
                guard cursor.take(min(Int(request.length), cursor.remaining)) != nil else { return }
            }
        }
    }
}
