// DNS messages for the init's stub resolver (RFC 1035 section 4; AAAA:
// RFC 3596), built and parsed without I/O. StationInit/Resolver.swift sends
// the query over UDP to each nameserver and feeds the replies back here.
//
// Layout: a 12-byte header (ID, flags QR|OPCODE|AA|TC|RD|RA|Z|RCODE,
// QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT, all big-endian), the question (QNAME
// as length-prefixed labels ending in a zero byte, QTYPE, QCLASS), then
// resource records (NAME, TYPE, CLASS, TTL, RDLENGTH, RDATA). A name may end
// in a compression pointer: two bytes 11xxxxxx xxxxxxxx giving the offset
// of the rest of the name earlier in the message (section 4.1.4).

/// Record types the resolver asks for or follows.
public enum DNSType {
    public static let a: UInt16 = 1
    public static let cname: UInt16 = 5
    public static let aaaa: UInt16 = 28

    /// `A`, `AAAA`, `CNAME` or the number.
    public static func name(_ type: UInt16) -> String {
        switch type {
        case a: return "A"
        case aaaa: return "AAAA"
        case cname: return "CNAME"
        default: return messageText("type \(type)")
        }
    }
}

/// Why a name cannot be asked for, or why a reply gives no address.
public enum DNSError: Error, Equatable, Sendable {
    /// The name is not a valid host name (the text says why).
    case badName(String)
    /// The reply does not parse (the text says where).
    case malformed(String)
    /// RCODE 3, NXDOMAIN: the name does not exist.
    case nameError
    /// RCODE 2, SERVFAIL.
    case serverFailure
    /// RCODE 5, REFUSED.
    case refused
    /// Any other RCODE.
    case rcode(Int)
    /// TC set and no complete answer in what arrived (no TCP fallback here).
    case truncated

    public var description: String {
        switch self {
        case .badName(let why): return why
        case .malformed(let why): return "malformed reply: " + why
        case .nameError: return "no such name (NXDOMAIN)"
        case .serverFailure: return "server failure (SERVFAIL)"
        case .refused: return "query refused (REFUSED)"
        case .rcode(let n): return messageText("error code \(n)")
        case .truncated: return "truncated reply without an answer (this resolver does not retry over TCP)"
        }
    }
}

/// A question to one nameserver.
public struct DNSQuery: Equatable, Sendable {
    public var id: UInt16
    /// The name in wire form (length-prefixed labels, zero byte).
    public var wireName: [UInt8]
    public var type: UInt16

    /// Checks `name` (letters, digits, `-`, `_`, labels of 1-63 bytes, 253
    /// in all; one trailing dot allowed) and keeps it in wire form.
    public init(id: UInt16, name: String, type: UInt16) throws(DNSError) {
        self.id = id
        self.type = type
        wireName = try encodeDNSName(name)
    }

    /// The UDP payload: RD set (ask the server to recurse), one question, class IN.
    public func encode() -> [UInt8] {
        var m: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        m += wireName
        m += [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
        return m
    }

    /// Parses a reply. Returns nil when `bytes` is not a reply to this
    /// query (another ID, not a response, another question: a stray or
    /// spoofed datagram to ignore); else the addresses of the answer's A or
    /// AAAA records (whichever `type` asked) for the name or, through
    /// CNAME records in the answer, its aliases; [] when the name exists
    /// but has no such record. Throws for an error RCODE or a bad message.
    public func decodeReply(_ bytes: [UInt8]) throws(DNSError) -> [IPAddress]? {
        guard bytes.count >= 12 else { return nil }
        let id = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        let flags = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
        guard id == self.id, flags & 0x8000 != 0, flags >> 11 & 0xF == 0 else { return nil }
        let qdcount = Int(bytes[4]) << 8 | Int(bytes[5])
        let ancount = Int(bytes[6]) << 8 | Int(bytes[7])
        let truncated = flags & 0x0200 != 0
        var at = 12
        // The question must be ours (case-insensitively, RFC 4343).
        if qdcount > 0 {
            guard qdcount == 1 else { return nil }
            let (qname, next) = try readDNSName(bytes, at)
            guard next + 4 <= bytes.count else {
                if truncated { throw DNSError.truncated }
                throw DNSError.malformed("the question ends early")
            }
            let qtype = UInt16(bytes[next]) << 8 | UInt16(bytes[next + 1])
            guard qname == lowercased(wireName), qtype == type else { return nil }
            at = next + 4
        }
        switch flags & 0xF {
        case 0: break
        case 2: throw DNSError.serverFailure
        case 3: throw DNSError.nameError
        case 5: throw DNSError.refused
        case let n: throw DNSError.rcode(Int(n))
        }
        var names = [lowercased(wireName)]
        var addresses: [IPAddress] = []
        for _ in 0..<ancount {
            let record: (name: [UInt8], type: UInt16, rdata: Range<Int>, next: Int)
            do { record = try readRecord(bytes, at) } catch {
                if truncated { break }  // TC: use the complete records before the cut
                throw error
            }
            at = record.next
            guard names.contains(record.name) else { continue }
            let rdata = bytes[record.rdata]
            if record.type == DNSType.cname {
                let (target, _) = try readDNSName(bytes, record.rdata.lowerBound)
                if !names.contains(target) { names.append(target) }
            } else if record.type == type && type == DNSType.a {
                guard rdata.count == 4, let a = IPv4Address(bytes: rdata) else { throw DNSError.malformed("an A record that is not 4 bytes long") }
                addresses.append(.v4(a))
            } else if record.type == type && type == DNSType.aaaa {
                guard rdata.count == 16, let a = IPv6Address(bytes: rdata) else { throw DNSError.malformed("an AAAA record that is not 16 bytes long") }
                addresses.append(.v6(a))
            }
        }
        if addresses.isEmpty && truncated { throw DNSError.truncated }
        return addresses
    }
}

/// One resource record at `at`: owner name (lowercase wire form), type,
/// the range of its RDATA, and where the next record starts. Class IN only.
func readRecord(_ b: [UInt8], _ at: Int) throws(DNSError) -> (name: [UInt8], type: UInt16, rdata: Range<Int>, next: Int) {
    let (name, p) = try readDNSName(b, at)
    guard p + 10 <= b.count else { throw DNSError.malformed("a record header runs past the end") }
    let type = UInt16(b[p]) << 8 | UInt16(b[p + 1])
    let rdlength = Int(b[p + 8]) << 8 | Int(b[p + 9])
    let start = p + 10
    guard start + rdlength <= b.count else { throw DNSError.malformed("a record's data runs past the end") }
    return (name, type, start..<(start + rdlength), start + rdlength)
}

/// Reads a possibly compressed name at `at`: its labels in wire form,
/// lowercased, ending in the zero byte, and the offset after the name as
/// it sits at `at` (after the first pointer, if any). Pointers must point
/// backwards, which rules out loops; the name may not exceed 255 bytes.
public func readDNSName(_ b: [UInt8], _ at: Int) throws(DNSError) -> ([UInt8], Int) {
    var out: [UInt8] = []
    var p = at
    var after: Int? = nil
    while true {
        guard p < b.count else { throw DNSError.malformed("a name runs past the end") }
        let len = Int(b[p])
        if len == 0 {
            out.append(0)
            return (out, after ?? p + 1)
        }
        switch len & 0xC0 {
        case 0xC0:
            guard p + 1 < b.count else { throw DNSError.malformed("a compression pointer is cut off") }
            let target = (len & 0x3F) << 8 | Int(b[p + 1])
            guard target < p else { throw DNSError.malformed("a compression pointer points forward (a loop)") }
            if after == nil { after = p + 2 }
            p = target
        case 0:
            guard p + 1 + len <= b.count else { throw DNSError.malformed("a label runs past the end") }
            out.append(UInt8(len))
            out += lowercased(Array(b[(p + 1)...(p + len)]))
            guard out.count < 255 else { throw DNSError.malformed("a name longer than 255 bytes") }
            p += 1 + len
        default:
            throw DNSError.malformed("a label type other than 0 (plain) and 3 (pointer)")
        }
    }
}

/// A host name in wire form; throws `badName` with the reason.
public func encodeDNSName(_ name: String) throws(DNSError) -> [UInt8] {
    var text = Array(name.utf8)
    if text.last == UInt8(ascii: ".") { text.removeLast() }
    guard !text.isEmpty else { throw DNSError.badName("the name is empty") }
    guard text.count <= 253 else { throw DNSError.badName("the name is longer than 253 characters") }
    var out: [UInt8] = []
    var label: [UInt8] = []
    func flush() throws(DNSError) {
        guard !label.isEmpty else { throw DNSError.badName("the name has an empty label (two dots in a row, or a leading dot)") }
        guard label.count <= 63 else { throw DNSError.badName("a label is longer than 63 characters") }
        out.append(UInt8(label.count))
        out += label
        label.removeAll()
    }
    for c in text {
        if c == UInt8(ascii: ".") {
            try flush()
            continue
        }
        let ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
            || c == UInt8(ascii: "-") || c == UInt8(ascii: "_")
        guard ok else {
            throw DNSError.badName(messageText("the character '\(String(decoding: [c], as: UTF8.self))' is not allowed in a host name (letters, digits, - and _)"))
        }
        label.append(c)
    }
    try flush()
    out.append(0)
    return out
}

/// ASCII letters to lowercase (DNS compares names case-insensitively).
func lowercased(_ b: [UInt8]) -> [UInt8] {
    b.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }
}
