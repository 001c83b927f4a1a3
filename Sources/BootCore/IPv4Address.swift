// IPv4 addresses as numbers, with the dotted-quad text form (RFC 791).

/// An IPv4 address; `value` holds a.b.c.d as (a << 24) | (b << 16) | (c << 8) | d.
public struct IPv4Address: Equatable, Hashable, Sendable {
    public var value: UInt32

    public init(value: UInt32) { self.value = value }
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses strict dotted-quad text (`10.0.2.15`), or nil.
    public init?(_ text: String) {
        let parts = splitFields(text, ".")
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard p.utf8.count <= 3, let n = parseDecimal(p, max: 255) else { return nil }
            v = v << 8 | UInt32(n)
        }
        value = v
    }

    /// From 4 bytes in network order, or nil if `bytes` has fewer than 4 bytes.
    public init?(bytes: ArraySlice<UInt8>) {
        guard bytes.count >= 4 else { return nil }
        let s = bytes.startIndex
        self.init(bytes[s], bytes[s + 1], bytes[s + 2], bytes[s + 3])
    }

    public static let any = IPv4Address(value: 0)
    public static let broadcast = IPv4Address(value: 0xFFFF_FFFF)

    public var isAny: Bool { value == 0 }
    /// The 4 bytes in network order.
    public var bytes: [UInt8] { [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
    /// `10.0.2.15`.
    public var text: String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }

    /// The netmask of the address's old class (A /8, B /16, C /24), which the
    /// kernel's ipconfig uses when none is given.
    public var classfulNetmask: IPv4Address {
        switch value >> 24 {
        case 0..<128: return IPv4Address(255, 0, 0, 0)
        case 128..<192: return IPv4Address(255, 255, 0, 0)
        default: return IPv4Address(255, 255, 255, 0)
        }
    }

    /// The broadcast address of this address's subnet under `netmask`.
    public func broadcast(netmask: IPv4Address) -> IPv4Address {
        IPv4Address(value: value | ~netmask.value)
    }
}
