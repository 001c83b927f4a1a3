// The IPv6 side of the station's network and the files that record it.
//
// initramfs-tools keeps IPv6 apart from IPv4: its DHCPv6 hook (Ubuntu's
// scripts/functions with dhclient -6) writes /run/net6-DEVICE.conf with
// DEVICE6, IPV6PROTO, IPV6ADDR, IPV6NETMASK (the prefix length, despite the
// name), IPV6DNS0/1 and IPV6DOMAINSEARCH, which cloud-init's klibc reader
// takes along with /run/net-*.conf. nbdboot writes the same names, plus
// IPV6GATEWAY (initramfs-tools has no IPv6 gateway to record). IPV6PROTO is
// `none` for a static address (as PROTO for IPv4) and `auto6` for SLAAC.

/// The configured IPv6 of one interface.
public struct IPv6Settings: Equatable, Sendable {
    public var device: String
    /// "none" (static) or "auto6" (SLAAC).
    public var proto: String
    public var address: IPv6Address
    public var prefixLength: Int
    public var gateway: IPv6Address?
    public var dns: [IPv6Address]
    public var hostname: String

    public init(device: String, proto: String, address: IPv6Address, prefixLength: Int,
                gateway: IPv6Address? = nil, dns: [IPv6Address] = [], hostname: String = "") {
        self.device = device
        self.proto = proto
        self.address = address
        self.prefixLength = prefixLength
        self.gateway = gateway
        self.dns = dns
        self.hostname = hostname
    }

    /// One line for the log: `eth0 fec0::15/64 gw fec0::2 dns fec0::3`.
    public var summary: String {
        var s = messageText("\(device) \(address.text)/\(prefixLength)")
        if let g = gateway { s += " gw " + g.text }
        if !dns.isEmpty { s += " dns " + dns.map { $0.text }.joined(separator: ",") }
        return s
    }

    /// The text of /run/net6-DEVICE.conf.
    public var netConfText: String {
        shellAssignments([
            ("DEVICE6", device),
            ("IPV6PROTO", proto),
            ("IPV6ADDR", address.text),
            ("IPV6NETMASK", String(prefixLength)),
            ("IPV6GATEWAY", gateway?.text ?? ""),
            ("IPV6DNS0", dns.count > 0 ? dns[0].text : ""),
            ("IPV6DNS1", dns.count > 1 ? dns[1].text : ""),
            ("IPV6DOMAINSEARCH", ""),
            ("HOSTNAME", hostname),
        ])
    }
}

/// What the network step set up: IPv4 (DHCP or static), IPv6 (static or
/// SLAAC), or both on one interface.
public struct StationNetwork: Equatable, Sendable {
    public var device: String
    public var ipv4: NetworkSettings?
    public var ipv6: IPv6Settings?
    /// Whom to ask for names, in order (mergeNameservers).
    public var nameservers: [IPAddress]

    public init(device: String, ipv4: NetworkSettings? = nil, ipv6: IPv6Settings? = nil, nameservers: [IPAddress] = []) {
        self.device = device
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.nameservers = nameservers
    }

    /// The boot server from DHCP or the static ip='s IPv4 server field.
    public var rootServer: IPAddress? { ipv4?.rootServer.map { .v4($0) } }
    public var rootPath: String { ipv4?.rootPath ?? "" }
    /// DHCP's domain name (option 15), or "".
    public var domain: String { ipv4?.domain ?? "" }
}

/// The nameservers to ask, in order: dracut's `nameserver=`, then ip='s
/// dns0/dns1, then those the network step learnt (DHCP option 6); each once.
public func mergeNameservers(_ lists: [[IPAddress]]) -> [IPAddress] {
    var out: [IPAddress] = []
    for list in lists {
        for a in list where !out.contains(a) { out.append(a) }
    }
    return out
}

/// /etc/resolv.conf: `search DOMAIN` and one `nameserver` line each.
public func resolvConfText(nameservers: [IPAddress], domain: String) -> String {
    var text = ""
    if !domain.isEmpty { text += "search " + domain + "\n" }
    for d in nameservers { text += "nameserver " + d.text + "\n" }
    return text
}

// /proc/net/if_inet6 and /proc/net/ipv6_route, as the kernel prints them
// (net/ipv6/addrconf.c if6_seq_show, net/ipv6/route.c ipv6_route_native_seq_show):
//   if_inet6:    ADDR32HEX IFINDEX PREFIXLEN SCOPE FLAGS DEVNAME        (hex fields)
//   ipv6_route:  DST32HEX DSTLEN SRC32HEX SRCLEN NEXTHOP32HEX METRIC REFCNT USE FLAGS DEVNAME

/// One line of /proc/net/if_inet6.
public struct InterfaceAddress6: Equatable, Sendable {
    public var address: IPv6Address
    public var prefixLength: Int
    /// IPV6_ADDR_* scope bits: 0 global, 0x10 host, 0x20 link, 0x40 site.
    public var scope: Int
    /// IFA_F_* flags (the low byte): 0x40 tentative, 0x08 DAD failed, 0x20 deprecated.
    public var flags: Int
    public var device: String

    public static let tentative = 0x40
    public static let dadFailed = 0x08

    public init(address: IPv6Address, prefixLength: Int, scope: Int, flags: Int, device: String) {
        self.address = address
        self.prefixLength = prefixLength
        self.scope = scope
        self.flags = flags
        self.device = device
    }

    /// Reaches beyond the link: global scope, or site scope (fec0::/10,
    /// which the kernel still ranks apart; QEMU's user network hands it out).
    public var isRoutable: Bool { scope == 0 || scope == 0x40 }
    public var isTentative: Bool { flags & InterfaceAddress6.tentative != 0 }
    public var dadFailed: Bool { flags & InterfaceAddress6.dadFailed != 0 }
    /// Routable and past duplicate address detection.
    public var isUsable: Bool { isRoutable && !isTentative && !dadFailed }
}

/// 32 hex digits as an address.
func hexIPv6(_ text: String) -> IPv6Address? {
    let b = Array(text.utf8)
    guard b.count == 32 else { return nil }
    var bytes: [UInt8] = []
    var i = 0
    while i < 32 {
        guard let h = hexDigit(b[i]), let l = hexDigit(b[i + 1]) else { return nil }
        bytes.append(h << 4 | l)
        i += 2
    }
    return IPv6Address(bytes: bytes[...])
}

/// A hex number of at most 8 digits.
func hexNumber(_ text: String) -> Int? {
    let b = Array(text.utf8)
    guard !b.isEmpty, b.count <= 8 else { return nil }
    var n = 0
    for c in b {
        guard let d = hexDigit(c) else { return nil }
        n = n << 4 | Int(d)
    }
    return n
}

/// Whitespace-separated words of one line.
func words(_ line: String) -> [String] {
    var out: [String] = []
    for w in splitFields(line, " ") {
        for t in splitFields(w, "\t") where !t.isEmpty { out.append(t) }
    }
    return out
}

/// The lines of /proc/net/if_inet6 that parse (malformed lines are skipped).
public func parseIfInet6(_ text: String) -> [InterfaceAddress6] {
    var out: [InterfaceAddress6] = []
    for line in splitFields(text, "\n") {
        let w = words(line)
        guard w.count == 6, let a = hexIPv6(w[0]), let plen = hexNumber(w[2]),
              let scope = hexNumber(w[3]), let flags = hexNumber(w[4]) else { continue }
        out.append(InterfaceAddress6(address: a, prefixLength: plen, scope: scope, flags: flags, device: w[5]))
    }
    return out
}

/// The gateway of the IPv6 default route (::/0 with RTF_GATEWAY) on
/// `device` in /proc/net/ipv6_route, or nil.
public func defaultGateway6(_ text: String, device: String) -> IPv6Address? {
    for line in splitFields(text, "\n") {
        let w = words(line)
        guard w.count == 10, w[9] == device, let dst = hexIPv6(w[0]), dst.isAny, w[1] == "00",
              let gw = hexIPv6(w[4]), !gw.isAny, let flags = hexNumber(w[8]), flags & 0x2 != 0 else { continue }
        return gw
    }
    return nil
}
