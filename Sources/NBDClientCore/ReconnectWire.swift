// The bytes of the resident monitor's reconnect path, read in place.
//
// Once a device holds swap (or root), the process that reconnects it must
// not need memory it does not already have: a page it has to fault in or a
// malloc that must reclaim memory may wait for writes to the very device that
// is dead (nbd-protocol.md 5.5). So everything the monitor sends is built once
// at start (ReconnectScript) and everything it receives lands in buffers
// allocated at start and is parsed here where it lies: these functions take
// a buffer and a byte count, read integers at offsets and return plain
// values, and never build arrays or strings.
//
// NBD framing: the newstyle greeting, option replies and the EXPORT_NAME
// reply (NBD spec "Handshake"; big-endian). Netlink framing: nlmsghdr,
// genlmsghdr, nlattr (linux/netlink.h; host-endian), nbd-protocol.md 4.3.
#if canImport(NBDWire)
import NBDWire
#endif

/// A big-endian integer of `width` bytes at `at` (caller checked the bounds).
@inline(__always)
func bigEndian(_ b: [UInt8], _ at: Int, _ width: Int) -> UInt64 {
    var v: UInt64 = 0
    for i in 0..<width { v = v << 8 | UInt64(b[at + i]) }
    return v
}

/// What the reconnect path sends, built once while memory is plentiful.
public struct ReconnectScript: Equatable {
    /// How the first connection was negotiated; a reconnect repeats it.
    public var route: NegotiatedExport.Route
    /// NBD_OPT_GO for the export with an NBD_INFO_BLOCK_SIZE request (as
    /// NBDWire's negotiate() sends it), or NBD_OPT_EXPORT_NAME.
    public var option: [UInt8]
    /// The size and transmission flags the kernel was given: a server that
    /// now says anything else serves another export.
    public var size: UInt64
    public var flags: UInt16
    /// -preinit: no handshake at all.
    public var preinit: Bool

    public init(exportName: String, export: NegotiatedExport, preinit: Bool) {
        route = export.via
        size = export.size
        flags = export.flags.rawValue
        self.preinit = preinit
        if export.via == .go {
            option = OptionHeader.encode(.go, data: InfoRequest(name: exportName, requests: [.blockSize]).encode())
        } else {
            option = OptionHeader.encode(.exportName, data: Array(exportName.utf8))
        }
    }

    /// Bytes of the greeting to read first: 18 for newstyle (magic,
    /// IHAVEOPT, handshake flags), 152 for oldstyle (size, flags, zeroes).
    public var greetingSize: Int { route == .oldstyle ? 152 : 18 }
}

/// Why one reconnect attempt failed. Static text only (no allocation).
public enum ReconnectFailure: Equatable {
    case badGreeting
    case oldstyleMismatch
    case badReply
    /// The server refused NBD_OPT_GO (an NBD_REP_ERR_* type).
    case refused(UInt32)
    /// The export is not the one the kernel has: size or flags differ.
    case changed(size: UInt64, flags: UInt16)

    public var text: StaticString {
        switch self {
        case .badGreeting: return "the server's greeting is not NBD newstyle"
        case .oldstyleMismatch: return "the server changed between oldstyle and newstyle"
        case .badReply: return "malformed option reply"
        case .refused: return "the server refused NBD_OPT_GO for the export"
        case .changed: return "the export changed (size or flags)"
        }
    }
}

public enum ReconnectWire {
    /// The newstyle greeting in `b[0..<18]`: the handshake flags, or nil when
    /// the magic is wrong or the server is oldstyle.
    public static func greetingFlags(_ b: [UInt8]) -> UInt16? {
        guard b.count >= 18, bigEndian(b, 0, 8) == Magic.nbdMagic, bigEndian(b, 8, 8) == Magic.ihaveopt else { return nil }
        return UInt16(bigEndian(b, 16, 2))
    }

    /// The oldstyle greeting in `b[0..<152]`: size and (16-bit) flags.
    public static func oldstyleExport(_ b: [UInt8]) -> (size: UInt64, flags: UInt16)? {
        guard b.count >= 152, bigEndian(b, 0, 8) == Magic.nbdMagic, bigEndian(b, 8, 8) == Magic.oldstyle else { return nil }
        return (bigEndian(b, 16, 8), UInt16(truncatingIfNeeded: bigEndian(b, 24, 4)))
    }

    /// The client flags answering `serverFlags`: fixed newstyle and
    /// NO_ZEROES whenever offered (what NBDWire's negotiate() sends), as a
    /// big-endian u32 written into `out[0..<4]`. Returns whether NO_ZEROES was set.
    public static func clientFlags(_ serverFlags: UInt16, into out: inout [UInt8]) -> Bool {
        var v: UInt32 = 0
        if serverFlags & HandshakeFlags.fixedNewstyle.rawValue != 0 { v |= ClientFlags.fixedNewstyle.rawValue }
        if serverFlags & HandshakeFlags.noZeroes.rawValue != 0 { v |= ClientFlags.noZeroes.rawValue }
        out[0] = UInt8(v >> 24); out[1] = UInt8(v >> 16 & 0xff); out[2] = UInt8(v >> 8 & 0xff); out[3] = UInt8(v & 0xff)
        return v & ClientFlags.noZeroes.rawValue != 0
    }

    /// An option reply header in `b[0..<20]`: option, reply type, length.
    public static func optionReply(_ b: [UInt8]) -> (option: UInt32, type: UInt32, length: UInt32)? {
        guard b.count >= 20, bigEndian(b, 0, 8) == Magic.optionReply else { return nil }
        return (UInt32(bigEndian(b, 8, 4)), UInt32(bigEndian(b, 12, 4)), UInt32(bigEndian(b, 16, 4)))
    }

    /// NBD_REP_ACK (1), NBD_REP_INFO (3), error types have bit 31 set.
    public static let replyAck: UInt32 = 1
    public static let replyInfo: UInt32 = 3

    /// The payload of an NBD_REP_INFO in `b[0..<length]`: size and flags
    /// when it is NBD_INFO_EXPORT (type 0, 12 bytes), nil for other infos.
    public static func infoExport(_ b: [UInt8], length: Int) -> (size: UInt64, flags: UInt16)? {
        guard length >= 12, b.count >= 12, bigEndian(b, 0, 2) == 0 else { return nil }
        return (bigEndian(b, 2, 8), UInt16(bigEndian(b, 10, 2)))
    }

    /// The EXPORT_NAME reply in `b[0..<10]`: size and flags (124 zero bytes
    /// follow unless NO_ZEROES was agreed).
    public static func exportNameReply(_ b: [UInt8]) -> (size: UInt64, flags: UInt16) {
        (bigEndian(b, 0, 8), UInt16(bigEndian(b, 8, 2)))
    }
}

/// Netlink answers and notifications, parsed where they lie.
public enum NetlinkScan {
    /// Writes `seq` into the nlmsghdr of a prebuilt message (bytes 8-11).
    public static func setSequence(_ b: inout [UInt8], _ seq: UInt32) {
        let v = seq.littleEndian
        b[8] = UInt8(v & 0xff); b[9] = UInt8(v >> 8 & 0xff); b[10] = UInt8(v >> 16 & 0xff); b[11] = UInt8(v >> 24)
    }

    /// Calls `body(offset, length, type, seq)` for each whole nlmsghdr in
    /// `b[0..<count]`; stops when `body` returns false or a header is bad.
    @inline(__always)
    static func forEachMessage(_ b: [UInt8], _ count: Int, _ body: (Int, Int, UInt16, UInt32) -> Bool) {
        var at = 0
        let end = min(count, b.count)
        while at + Netlink.headerSize <= end {
            let length = Int(hostU32(b, at))
            guard length >= Netlink.headerSize, at + length <= end else { return }
            if !body(at, length, hostU16(b, at + 4), hostU32(b, at + 8)) { return }
            at += Netlink.align(length)
        }
    }

    /// The NLMSG_ERROR answering `seq`: 0 for an ACK, else the positive
    /// errno; nil when the buffer holds none.
    public static func ackError(_ b: [UInt8], count: Int, seq: UInt32) -> Int32? {
        var result: Int32? = nil
        forEachMessage(b, count) { at, length, type, s in
            guard type == Netlink.typeError, s == seq, length >= Netlink.headerSize + 4 else { return true }
            result = -Int32(bitPattern: hostU32(b, at + Netlink.headerSize))
            return false
        }
        return result
    }

    /// How many NBD_CMD_LINK_DEAD notifications for device `index` the buffer holds.
    public static func linkDeadCount(_ b: [UInt8], count: Int, family: UInt16, index: UInt32) -> Int {
        var n = 0
        forEachMessage(b, count) { at, length, type, _ in
            guard type == family, length >= Netlink.headerSize + Netlink.genlHeaderSize,
                  b[at + Netlink.headerSize] == NBDGenl.cmdLinkDead else { return true }
            let attrs = at + Netlink.headerSize + Netlink.genlHeaderSize
            if let v = u32Attribute(b, from: attrs, to: at + length, type: NBDGenl.attrIndex), v == index { n += 1 }
            return true
        }
        return n
    }

    /// The NBD_CMD_STATUS reply to `seq`: whether device `index` has a live
    /// configuration (NBD_DEVICE_CONNECTED), nil when no reply is in the buffer.
    public static func statusConnected(_ b: [UInt8], count: Int, seq: UInt32, family: UInt16, index: UInt32) -> Bool? {
        var result: Bool? = nil
        forEachMessage(b, count) { at, length, type, s in
            guard type == family, s == seq, length >= Netlink.headerSize + Netlink.genlHeaderSize else { return true }
            let end = at + length
            var a = at + Netlink.headerSize + Netlink.genlHeaderSize
            while let (t, start, stop) = attribute(b, at: a, end: end) {
                if t == NBDGenl.attrDeviceList {
                    var item = start
                    while let (_, itemStart, itemStop) = attribute(b, at: item, end: stop) {
                        let i = u32Attribute(b, from: itemStart, to: itemStop, type: NBDGenl.deviceIndex)
                        if i == index {
                            var f = itemStart
                            var connected = false
                            while let (ft, fs, fe) = attribute(b, at: f, end: itemStop) {
                                if ft == NBDGenl.deviceConnected, fe > fs { connected = b[fs] != 0 }
                                f = Netlink.align(fe)
                            }
                            result = connected
                        }
                        item = Netlink.align(itemStop)
                    }
                }
                a = Netlink.align(stop)
            }
            if result == nil { result = false }  // the device is not in the list: no configuration
            return false
        }
        return result
    }

    /// The attribute at `at` (before `end`): its type without flag bits and
    /// its payload's bounds; nil at the end or on a bad length.
    @inline(__always)
    static func attribute(_ b: [UInt8], at: Int, end: Int) -> (UInt16, Int, Int)? {
        guard at + Netlink.attributeHeaderSize <= end else { return nil }
        let length = Int(hostU16(b, at))
        guard length >= Netlink.attributeHeaderSize, at + length <= end else { return nil }
        return (hostU16(b, at + 2) & ~(Netlink.attributeNested | Netlink.attributeByteOrder), at + Netlink.attributeHeaderSize, at + length)
    }

    /// The u32 attribute `type` among those in `b[from..<to]`.
    static func u32Attribute(_ b: [UInt8], from: Int, to: Int, type: UInt16) -> UInt32? {
        var a = from
        while let (t, s, e) = attribute(b, at: a, end: to) {
            if t == type && e - s >= 4 { return hostU32(b, s) }
            a = Netlink.align(e)
        }
        return nil
    }
}

/// /proc/swaps in `b[0..<count]`: whether one of its swap areas is the
/// device `name` ("nbd1") or a partition of it ("nbd1p2"). The first column
/// is a path ("/dev/nbd1", or another prefix after a chroot); the name must
/// follow a '/' and end the word or continue with 'p' and digits.
public func swapsMention(_ b: [UInt8], count: Int, device name: [UInt8]) -> Bool {
    let end = min(count, b.count)
    var lineStart = 0
    while lineStart < end {
        var wordEnd = lineStart
        while wordEnd < end && b[wordEnd] != 32 && b[wordEnd] != 9 && b[wordEnd] != 10 { wordEnd += 1 }
        // The last '/' of the first word.
        var base = lineStart
        var i = lineStart
        while i < wordEnd { if b[i] == 47 { base = i + 1 }; i += 1 }
        if wordEnd - base >= name.count {
            var same = true
            for k in 0..<name.count where b[base + k] != name[k] { same = false; break }
            if same {
                var rest = base + name.count
                if rest == wordEnd { return true }
                if b[rest] == 112 {  // 'p'
                    rest += 1
                    var digits = rest < wordEnd
                    while rest < wordEnd { if b[rest] < 48 || b[rest] > 57 { digits = false }; rest += 1 }
                    if digits { return true }
                }
            }
        }
        var next = wordEnd
        while next < end && b[next] != 10 { next += 1 }
        lineStart = next + 1
    }
    return false
}

/// How many swap areas /proc/swaps in `b[0..<count]` lists (its lines after
/// the "Filename Type Size Used Priority" header).
public func swapAreaCount(_ b: [UInt8], count: Int) -> Int {
    let end = min(count, b.count)
    var lines = 0
    var lineHasText = false
    for i in 0..<end {
        if b[i] == 10 {
            if lineHasText { lines += 1 }
            lineHasText = false
        } else if b[i] != 32 && b[i] != 9 {
            lineHasText = true
        }
    }
    if lineHasText { lines += 1 }
    return max(0, lines - 1)
}
