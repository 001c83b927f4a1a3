// IPv4 and UDP headers for the DHCP client, which sends and receives raw IP
// packets on an AF_PACKET socket because the interface has no address yet.
//   IPv4 header: RFC 791 section 3.1; checksum: RFC 1071.
//   UDP header: RFC 768 (checksum over a pseudo-header; 0 means "none").

/// The Internet checksum (RFC 1071): the one's complement of the one's
/// complement sum of 16-bit big-endian words, odd byte padded with zero.
public func internetChecksum(_ bytes: ArraySlice<UInt8>, initial: UInt32 = 0) -> UInt16 {
    var sum = initial
    var i = bytes.startIndex
    while i + 1 < bytes.endIndex {
        sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
        i += 2
    }
    if i < bytes.endIndex { sum += UInt32(bytes[i]) << 8 }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}

public func internetChecksum(_ bytes: [UInt8]) -> UInt16 { internetChecksum(bytes[...]) }

/// A UDP datagram inside an IPv4 packet.
public struct UDPDatagram: Equatable, Sendable {
    public var source: IPv4Address
    public var destination: IPv4Address
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var payload: [UInt8]

    public init(source: IPv4Address, destination: IPv4Address, sourcePort: UInt16, destinationPort: UInt16, payload: [UInt8]) {
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.payload = payload
    }

    /// The IPv4 packet: a 20-byte header (no options, TTL 64, DF clear,
    /// `identification` as given) then UDP with its checksum.
    public func encode(identification: UInt16 = 0) -> [UInt8] {
        let udpLength = 8 + payload.count
        let total = 20 + udpLength
        var p: [UInt8] = []
        p.reserveCapacity(total)
        p += [0x45, 0x00, UInt8(total >> 8), UInt8(total & 0xFF)]       // version 4, IHL 5; TOS; length
        p += [UInt8(identification >> 8), UInt8(identification & 0xFF), 0x00, 0x00]  // id; flags+fragment
        p += [64, 17, 0, 0]                                                // TTL, protocol UDP, checksum
        p += source.bytes
        p += destination.bytes
        let hc = internetChecksum(p[0..<20])
        p[10] = UInt8(hc >> 8); p[11] = UInt8(hc & 0xFF)
        p += [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF)]
        p += [UInt8(udpLength >> 8), UInt8(udpLength & 0xFF), 0, 0]
        p += payload
        // Pseudo-header: source, destination, zero, protocol, UDP length.
        var pseudo: UInt32 = 0
        for a in [source.value, destination.value] { pseudo += a >> 16 + (a & 0xFFFF) }
        pseudo += 17 + UInt32(udpLength)
        var uc = internetChecksum(p[20...], initial: pseudo)
        if uc == 0 { uc = 0xFFFF }  // 0 would mean "no checksum"
        p[26] = UInt8(uc >> 8); p[27] = UInt8(uc & 0xFF)
        return p
    }

    /// Parses an IPv4 packet carrying UDP. Returns nil for anything else:
    /// another protocol, a fragment, a bad header checksum, a bad length.
    /// The UDP checksum is not checked (receive offload may leave it partial).
    public static func decode(_ p: [UInt8]) -> UDPDatagram? {
        guard p.count >= 20, p[0] >> 4 == 4 else { return nil }
        let ihl = Int(p[0] & 0x0F) * 4
        let total = Int(p[2]) << 8 | Int(p[3])
        guard ihl >= 20, total >= ihl + 8, total <= p.count, p[9] == 17 else { return nil }
        guard internetChecksum(p[0..<ihl]) == 0 else { return nil }
        let fragment = (UInt16(p[6]) << 8 | UInt16(p[7])) & 0x3FFF  // MF flag + offset
        guard fragment == 0 else { return nil }
        let u = ihl
        let udpLength = Int(p[u + 4]) << 8 | Int(p[u + 5])
        guard udpLength >= 8, u + udpLength <= total else { return nil }
        return UDPDatagram(
            source: IPv4Address(bytes: p[12..<16])!, destination: IPv4Address(bytes: p[16..<20])!,
            sourcePort: UInt16(p[u]) << 8 | UInt16(p[u + 1]),
            destinationPort: UInt16(p[u + 2]) << 8 | UInt16(p[u + 3]),
            payload: Array(p[(u + 8)..<(u + udpLength)]))
    }
}
