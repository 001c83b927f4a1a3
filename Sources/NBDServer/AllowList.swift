// Per-export IP allow lists in nbd-server's `authfile` syntax: one address or
// CIDR range per line, IPv4 or IPv6, blank lines and `#` comments ignored:
//
//   # the lab
//   192.168.10.0/24
//   10.0.2.15
//   fd00:1::/64
//
// Parsing is pure (the text is given); ConfigLoader.swift reads the file.
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, what a dual-stack socket
// reports for an IPv4 client) are compared as the IPv4 address, both in the
// list and for the client (nbd-server issue #35).

/// An IPv4 or IPv6 address as 16 bytes; IPv4 is kept in its mapped form
/// ::ffff:a.b.c.d so that one comparison serves both families.
public struct IPAddress: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var bytes: [UInt8]

    /// True for IPv4 (and IPv4-mapped IPv6) addresses.
    public var isV4: Bool { bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff }

    public init?(_ text: String) {
        if let v4 = IPAddress.parseV4(Substring(text)) {
            bytes = [UInt8](repeating: 0, count: 10) + [0xff, 0xff] + v4
        } else if let v6 = IPAddress.parseV6(text) {
            bytes = v6
        } else {
            return nil
        }
    }

    /// "a.b.c.d": four decimal numbers 0-255, no leading '+', at most 3 digits each.
    static func parseV4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard !p.isEmpty, p.utf8.count <= 3, p.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = Int(p), n <= 255 else { return nil }
            out.append(UInt8(n))
        }
        return out
    }

    /// RFC 4291 section 2.2 text forms: eight groups of up to 4 hex digits,
    /// one "::" for a run of zero groups, and an IPv4 tail ("::ffff:1.2.3.4").
    /// A zone ("%eth0") is not accepted.
    static func parseV6(_ text: String) -> [UInt8]? {
        guard text.contains(":"), !text.contains("%") else { return nil }
        func groups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, f) in fields.enumerated() {
                if i == fields.count - 1, f.contains("."), let v4 = parseV4(f) {
                    out.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    out.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                    continue
                }
                guard !f.isEmpty, f.utf8.count <= 4, let n = UInt16(f, radix: 16) else { return nil }
                out.append(n)
            }
            return out
        }
        var words: [UInt16]
        let chars = Array(text)
        // Where "::" is; a second one (or ":::") makes the text ambiguous.
        let doubles = (0..<max(chars.count - 1, 0)).filter { chars[$0] == ":" && chars[$0 + 1] == ":" }
        if let at = doubles.first {
            let head = Substring(String(chars[..<at]))
            let tail = Substring(String(chars[(at + 2)...]))
            guard doubles.count == 1, let h = groups(head), let t = groups(tail), h.count + t.count <= 7 else { return nil }
            words = h + [UInt16](repeating: 0, count: 8 - h.count - t.count) + t
        } else {
            guard let all = groups(Substring(text)), all.count == 8 else { return nil }
            words = all
        }
        return words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }

    public var description: String {
        if isV4 { return bytes[12...].map { String($0) }.joined(separator: ".") }
        var words: [String] = []
        for i in stride(from: 0, to: 16, by: 2) {
            words.append(String(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]), radix: 16))
        }
        return words.joined(separator: ":")
    }
}

/// One line of an allow list: an address and how many leading bits must match.
public struct AddressRange: Equatable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    /// Prefix length counted on the 128-bit form (an IPv4 /24 is 96 + 24).
    public var bits: Int

    /// "10.0.0.0/8", "fd00::/64", "192.168.1.7" (a single address).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(String(parts[0])) else { return nil }
        let maxBits = address.isV4 ? 32 : 128
        var bits = maxBits
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].utf8.count <= 3, parts[1].utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                  let n = Int(parts[1]), n <= maxBits else { return nil }
            bits = n
        }
        self.address = address
        self.bits = address.isV4 ? 96 + bits : bits
    }

    public func contains(_ a: IPAddress) -> Bool {
        var left = bits
        for i in 0..<16 where left > 0 {
            let take = min(8, left)
            let mask = UInt8(truncatingIfNeeded: 0xff << (8 - take))
            if a.bytes[i] & mask != address.bytes[i] & mask { return false }
            left -= take
        }
        return true
    }

    public var description: String {
        let shown = address.isV4 ? bits - 96 : bits
        return shown == (address.isV4 ? 32 : 128) ? address.description : "\(address)/\(shown)"
    }
}

/// The clients an export admits. An empty list admits nobody (as nbd-server
/// with an empty authfile).
public struct AllowList: Equatable, Sendable {
    public var ranges: [AddressRange]
    /// Where the list came from, for log lines ("/etc/nbd-server/lab.allow").
    public var source: String

    public init(ranges: [AddressRange], source: String) {
        self.ranges = ranges
        self.source = source
    }

    /// Parses authfile text; an error names `source`, the line and the entry.
    public static func parse(_ text: String, source: String) throws(ConfigError) -> AllowList {
        var ranges: [AddressRange] = []
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            var line = Substring(raw)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let entry = line.trimmingWhitespace()
            if entry.isEmpty { continue }
            guard let range = AddressRange(String(entry)) else {
                throw ConfigError("\(source):\(number): '\(entry)' is not an IPv4/IPv6 address or CIDR range; write one per line, e.g. 192.168.1.0/24, 10.0.2.15 or fd00::/64")
            }
            ranges.append(range)
        }
        return AllowList(ranges: ranges, source: source)
    }

    public func allows(_ address: IPAddress) -> Bool { ranges.contains { $0.contains(address) } }
}

extension Substring {
    /// Without leading and trailing spaces, tabs and carriage returns.
    func trimmingWhitespace() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }) else { return self[endIndex...] }
        let end = lastIndex(where: { !isSpace($0) })!
        return self[start...end]
    }
}

extension IPAddress {
    /// The address in a peer text from Listener ("10.0.2.15:40312", "[::1]:40312").
    init?(hostOf peer: String) {
        var host = Substring(peer)
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        self.init(String(host))
    }
}
