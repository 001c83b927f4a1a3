// IPv6 addresses (RFC 4291 section 2.2 text forms, RFC 5952 canonical
// output), and IPAddress, either family, for the places that take both
// (nameservers, a resolved NBD server, the ip= server field).

/// An IPv6 address as two 64-bit halves, most significant first.
public struct IPv6Address: Equatable, Hashable, Sendable {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// From the eight 16-bit groups, e.g. `IPv6Address(0xfec0, 0, 0, 0, 0, 0, 0, 2)`.
    public init(_ g0: UInt16, _ g1: UInt16, _ g2: UInt16, _ g3: UInt16,
                _ g4: UInt16, _ g5: UInt16, _ g6: UInt16, _ g7: UInt16) {
        high = UInt64(g0) << 48 | UInt64(g1) << 32 | UInt64(g2) << 16 | UInt64(g3)
        low = UInt64(g4) << 48 | UInt64(g5) << 32 | UInt64(g6) << 16 | UInt64(g7)
    }

    /// From 16 bytes in network order, or nil if `bytes` has fewer.
    public init?(bytes: ArraySlice<UInt8>) {
        guard bytes.count >= 16 else { return nil }
        var h: UInt64 = 0, l: UInt64 = 0
        let s = bytes.startIndex
        for i in 0..<8 { h = h << 8 | UInt64(bytes[s + i]) }
        for i in 8..<16 { l = l << 8 | UInt64(bytes[s + i]) }
        high = h
        low = l
    }

    /// Parses RFC 4291 text: eight groups of 1-4 hex digits, one `::` for a
    /// run of zero groups, an IPv4 dotted quad as the last 32 bits
    /// (`::ffff:10.0.2.2`). No brackets, no `%zone`, no `/prefix`. Or nil.
    public init?(_ text: String) {
        let b = Array(text.utf8)
        guard !b.isEmpty, b.count <= 45 else { return nil }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        var i = 0
        // A leading "::".
        if b.count >= 2 && b[0] == UInt8(ascii: ":") && b[1] == UInt8(ascii: ":") {
            sawGap = true
            i = 2
            if i == b.count { self.init(high: 0, low: 0); return }
        } else if b[0] == UInt8(ascii: ":") {
            return nil
        }
        while i < b.count {
            // A dotted quad may end the address.
            var j = i
            while j < b.count && b[j] != UInt8(ascii: ":") { j += 1 }
            let piece = b[i..<j]
            if piece.contains(UInt8(ascii: ".")) {
                guard j == b.count, let v4 = IPv4Address(String(decoding: piece, as: UTF8.self)) else { return nil }
                let groups = [UInt16(v4.value >> 16), UInt16(v4.value & 0xFFFF)]
                if sawGap { tail += groups } else { head += groups }
                i = j
                break
            }
            guard !piece.isEmpty, piece.count <= 4 else { return nil }
            var g: UInt16 = 0
            for c in piece {
                guard let d = hexDigit(c) else { return nil }
                g = g << 4 | UInt16(d)
            }
            if sawGap { tail.append(g) } else { head.append(g) }
            i = j
            if i == b.count { break }
            // At a ':'; "::" opens the gap (once), a trailing ':' is an error.
            i += 1
            if i < b.count && b[i] == UInt8(ascii: ":") {
                guard !sawGap else { return nil }
                sawGap = true
                i += 1
                if i == b.count { break }
            } else if i == b.count {
                return nil
            }
        }
        let count = head.count + tail.count
        if sawGap {
            guard count <= 7 else { return nil }
        } else {
            guard count == 8 else { return nil }
        }
        let groups = head + [UInt16](repeating: 0, count: 8 - count) + tail
        self.init(groups[0], groups[1], groups[2], groups[3], groups[4], groups[5], groups[6], groups[7])
    }

    public static let any = IPv6Address(high: 0, low: 0)

    /// The eight 16-bit groups.
    public var groups: [UInt16] {
        var out: [UInt16] = []
        for shift in [48, 32, 16, 0] as [UInt64] { out.append(UInt16(truncatingIfNeeded: high >> shift)) }
        for shift in [48, 32, 16, 0] as [UInt64] { out.append(UInt16(truncatingIfNeeded: low >> shift)) }
        return out
    }

    /// The 16 bytes in network order.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: low >> UInt64(shift))) }
        return out
    }

    public var isAny: Bool { high == 0 && low == 0 }
    /// fe80::/10.
    public var isLinkLocal: Bool { high >> 54 == 0x3FA }

    /// RFC 5952 text: lowercase, no leading zeros, the longest run of two
    /// or more zero groups (the first of equal runs) as `::`.
    public var text: String {
        let g = groups
        var bestStart = -1, bestLength = 1
        var i = 0
        while i < 8 {
            if g[i] == 0 {
                var j = i
                while j < 8 && g[j] == 0 { j += 1 }
                if j - i > bestLength { bestStart = i; bestLength = j - i }
                i = j
            } else {
                i += 1
            }
        }
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        i = 0
        while i < 8 {
            if i == bestStart {
                out += [UInt8(ascii: ":"), UInt8(ascii: ":")]
                i += bestLength
                continue
            }
            if i > 0 && i != bestStart + bestLength { out.append(UInt8(ascii: ":")) }
            var started = false
            for shift in [12, 8, 4, 0] as [UInt16] {
                let d = Int(g[i] >> shift & 0xF)
                if d != 0 || started || shift == 0 {
                    out.append(digits[d])
                    started = true
                }
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// An address of either family.
public enum IPAddress: Equatable, Hashable, Sendable {
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// A dotted quad, or IPv6 text with or without brackets; nil otherwise.
    public init?(_ text: String) {
        if let a = IPv4Address(text) { self = .v4(a); return }
        if let a = IPv6Address(unbracketed(text)) { self = .v6(a); return }
        return nil
    }

    /// `10.0.2.2` or `fec0::2` (no brackets).
    public var text: String {
        switch self {
        case .v4(let a): return a.text
        case .v6(let a): return a.text
        }
    }

    /// `10.0.2.2:53` or `[fec0::2]:53`.
    public func text(port: UInt16) -> String {
        switch self {
        case .v4(let a): return messageText("\(a.text):\(port)")
        case .v6(let a): return messageText("[\(a.text)]:\(port)")
        }
    }

    public var isV6: Bool {
        if case .v6 = self { return true }
        return false
    }
}

/// `[x]` without its brackets; any other text as it is.
public func unbracketed(_ text: String) -> String {
    let b = Array(text.utf8)
    guard b.count >= 2, b.first == UInt8(ascii: "["), b.last == UInt8(ascii: "]") else { return text }
    return String(decoding: b[1..<(b.count - 1)], as: UTF8.self)
}

/// True when `host` is neither an IPv4 nor an IPv6 literal: a name to resolve.
public func isHostName(_ host: String) -> Bool {
    IPAddress(host) == nil
}
