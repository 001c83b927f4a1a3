// rtnetlink requests for a static IPv6 address and default route, built as
// bytes without a socket (StationInit/Network6.swift sends them on a
// NETLINK_ROUTE socket), and the kernel's acknowledgement, parsed.
//
// Layouts from the kernel's uapi headers; every integer in HOST byte order
// (netlink's rule), addresses in network order:
//   linux/netlink.h     struct nlmsghdr { u32 len; u16 type; u16 flags; u32 seq; u32 pid; }   16 bytes
//                       struct nlattr   { u16 len; u16 type; } + payload, padded to 4
//                       struct nlmsgerr { s32 error; struct nlmsghdr msg; ... }   (error 0: ACK)
//   linux/if_addr.h     struct ifaddrmsg { u8 family; u8 prefixlen; u8 flags; u8 scope; u32 index; }  8 bytes
//                       IFA_ADDRESS = 1
//   linux/rtnetlink.h   struct rtmsg { u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags; }  12 bytes
//                       RTA_OIF = 4, RTA_GATEWAY = 5, RTA_PRIORITY = 6; RTM_NEWADDR = 20, RTM_NEWROUTE = 24
// `ip -6 addr add fec0::15/64 dev eth0` and `ip -6 route add default via
// fec0::2 dev eth0 metric 1000` send the same two requests.

public enum RouteNetlink {
    public static let headerSize = 16
    public static let typeError: UInt16 = 2
    public static let newAddress: UInt16 = 20
    public static let newRoute: UInt16 = 24
    /// NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE.
    public static let createFlags: UInt16 = 0x1 | 0x4 | 0x200 | 0x400
    /// AF_INET6 on Linux.
    public static let familyIPv6: UInt8 = 10
    static let ifaAddress: UInt16 = 1
    static let rtaOIF: UInt16 = 4
    static let rtaGateway: UInt16 = 5
    static let rtaPriority: UInt16 = 6
    /// The static default route's metric: below the 1024 of the routes the
    /// kernel takes from router advertisements (accept_ra stays on), so the
    /// gateway of ip= wins whichever came first. With NLM_F_EXCL the kernel
    /// refuses a second IPv6 route of the same prefix and metric (EEXIST),
    /// even through another gateway.
    public static let staticRouteMetric: UInt32 = 1000
    /// RT_TABLE_MAIN, RTPROT_BOOT (what `ip route add` uses), RT_SCOPE_UNIVERSE, RTN_UNICAST.
    static let tableMain: UInt8 = 254
    static let protocolBoot: UInt8 = 3
    static let scopeUniverse: UInt8 = 0
    static let typeUnicast: UInt8 = 1

    /// RTM_NEWADDR: `address/prefixLength` on interface `ifindex`, valid forever.
    public static func addAddress(seq: UInt32, ifindex: UInt32, address: IPv6Address, prefixLength: Int) -> [UInt8] {
        var body: [UInt8] = [familyIPv6, UInt8(prefixLength), 0, 0]
        appendU32(&body, ifindex)
        appendAttribute(&body, ifaAddress, address.bytes)
        return message(type: newAddress, seq: seq, body: body)
    }

    /// RTM_NEWROUTE: the default route (::/0) via `gateway` out of `ifindex`
    /// (the interface is given too, so a link-local gateway works), metric
    /// staticRouteMetric.
    public static func addDefaultRoute(seq: UInt32, ifindex: UInt32, gateway: IPv6Address) -> [UInt8] {
        var body: [UInt8] = [familyIPv6, 0, 0, 0, tableMain, protocolBoot, scopeUniverse, typeUnicast]
        appendU32(&body, 0)
        appendAttribute(&body, rtaGateway, gateway.bytes)
        var oif: [UInt8] = []
        appendU32(&oif, ifindex)
        appendAttribute(&body, rtaOIF, oif)
        var metric: [UInt8] = []
        appendU32(&metric, staticRouteMetric)
        appendAttribute(&body, rtaPriority, metric)
        return message(type: newRoute, seq: seq, body: body)
    }

    /// Looks through one datagram from the kernel for the NLMSG_ERROR that
    /// answers `seq`: 0 for an ACK, else the (positive) errno; nil when the
    /// datagram holds no answer to `seq` (or is malformed).
    public static func acknowledgement(_ bytes: [UInt8], seq: UInt32) -> Int32? {
        var at = 0
        while bytes.count - at >= headerSize {
            let len = Int(u32(bytes, at))
            guard len >= headerSize, at + len <= bytes.count else { return nil }
            let type = u16(bytes, at + 4)
            if type == typeError, u32(bytes, at + 8) == seq, len >= headerSize + 4 {
                let error = Int32(bitPattern: u32(bytes, at + headerSize))
                return error == 0 ? 0 : -error
            }
            at += (len + 3) & ~3
        }
        return nil
    }

    static func message(type: UInt16, seq: UInt32, body: [UInt8]) -> [UInt8] {
        var m: [UInt8] = []
        appendU32(&m, UInt32(headerSize + body.count))
        appendU16(&m, type)
        appendU16(&m, createFlags)
        appendU32(&m, seq)
        appendU32(&m, 0)
        return m + body
    }

    static func appendAttribute(_ b: inout [UInt8], _ type: UInt16, _ payload: [UInt8]) {
        appendU16(&b, UInt16(4 + payload.count))
        appendU16(&b, type)
        b += payload
        while b.count % 4 != 0 { b.append(0) }
    }

    static func appendU16(_ b: inout [UInt8], _ v: UInt16) {
        let le = v.littleEndian
        b.append(UInt8(truncatingIfNeeded: le))
        b.append(UInt8(truncatingIfNeeded: le >> 8))
    }

    static func appendU32(_ b: inout [UInt8], _ v: UInt32) {
        let le = v.littleEndian
        for shift in [0, 8, 16, 24] as [UInt32] { b.append(UInt8(truncatingIfNeeded: le >> shift)) }
    }

    static func u16(_ b: [UInt8], _ at: Int) -> UInt16 {
        UInt16(littleEndian: UInt16(b[at]) | UInt16(b[at + 1]) << 8)
    }

    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(b[at + i]) << (8 * UInt32(i)) }
        return UInt32(littleEndian: v)
    }
}
