// `ip=`: how the station configures its network.
//
// Values (initramfs-tools' configure_networking, the kernel's
// Documentation/admin-guide/nfs/nfsroot.rst and dracut.cmdline(7); Debian's
// kernel has no CONFIG_IP_PNP, so the init does it all itself):
//   absent, `dhcp`, `on`, `any`, `bootp`, `both`, `single-dhcp`   DHCPv4 on the first NIC
//   `off`, `none`                                 leave the network alone
//   `auto6`                                       IPv6 SLAAC (router advertisements)
//   IFACE:METHOD                                  dracut's: eth0:dhcp, eth0:auto6
//   client:server:gw:netmask:hostname:device:autoconf:dns0:dns1[:ntp]
//     e.g. 10.0.2.15::10.0.2.2:255.255.255.0::eth0:off    (static IPv4)
//          [fec0::15]::[fec0::2]:64::eth0:none           (static IPv6, dracut's)
//          :::::eth1:dhcp                                   (DHCP on eth1)
//   IPv6 addresses are written in brackets in every field (the colons
//   would split it otherwise); with an IPv6 client the netmask field is
//   the prefix length (default 64), or `[addr/len]` carries it.
//   autoconf: off/none/static (static; needs client), dhcp/on/any/bootp/both
//   (DHCPv4), auto6 (SLAAC); when empty, static if client is given, else DHCP.
//   dhcp6, either6 and link6 are refused: there is no DHCPv6 client.

/// How to configure the network.
public enum IPMethod: Equatable, Sendable {
    case off
    case dhcp
    /// A static address (IPv4 in `address`, or IPv6 in `ipv6`).
    case manual
    /// IPv6 stateless autoconfiguration: the kernel's, from router advertisements.
    case auto6
}

/// A static IPv6 address from `ip=`.
public struct StaticIPv6: Equatable, Sendable {
    public var address: IPv6Address
    public var prefixLength: Int
    public var gateway: IPv6Address?

    public init(address: IPv6Address, prefixLength: Int = 64, gateway: IPv6Address? = nil) {
        self.address = address
        self.prefixLength = prefixLength
        self.gateway = gateway
    }
}

/// The parsed `ip=` value.
public struct IPConfig: Equatable, Sendable {
    public var method: IPMethod
    /// Static IPv4 address (manual), or nil.
    public var address: IPv4Address?
    /// The boot server (field 2); the NBD server when nbdroot's host is left to DHCP.
    public var server: IPAddress?
    public var gateway: IPv4Address?
    public var netmask: IPv4Address?
    /// Static IPv6 (manual with a bracketed client), or nil.
    public var ipv6: StaticIPv6?
    public var hostname: String
    /// Interface name, or "" for the first one found.
    public var device: String
    /// dns0 and dns1, in that order.
    public var dns: [IPAddress]

    public init(method: IPMethod, address: IPv4Address? = nil, server: IPAddress? = nil,
                gateway: IPv4Address? = nil, netmask: IPv4Address? = nil, ipv6: StaticIPv6? = nil,
                hostname: String = "", device: String = "", dns: [IPAddress] = []) {
        self.method = method
        self.address = address
        self.server = server
        self.gateway = gateway
        self.netmask = netmask
        self.ipv6 = ipv6
        self.hostname = hostname
        self.device = device
        self.dns = dns
    }

    /// True when the station gets IPv6 addresses it waits for (auto6 or static IPv6).
    public var usesIPv6: Bool { method == .auto6 || ipv6 != nil }

    static let dhcpWords = ["dhcp", "on", "any", "bootp", "both", "single-dhcp"]
    static let unsupported6 = ["dhcp6", "either6", "link6"]

    /// Parses the value of `ip=` (nil when absent: DHCP).
    public static func parse(_ value: String?) throws(BootConfigError) -> IPConfig {
        guard let value else { return IPConfig(method: .dhcp) }
        let example: Message = "ip=dhcp, ip=auto6, ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off or ip=[fec0::15]::[fec0::2]:64::eth0:none"
        func fail(_ problem: Message) -> BootConfigError {
            BootConfigError(parameter: "ip", value: value, problem: problem, example: example)
        }
        func noDHCPv6(_ word: String) -> BootConfigError {
            fail("\(word) is not supported (the init has no DHCPv6 client): use auto6 (SLAAC from router advertisements) or a static address such as [fec0::15]::[fec0::2]:64::eth0:none")
        }
        if value.isEmpty || dhcpWords.contains(value) { return IPConfig(method: .dhcp) }
        if value == "off" || value == "none" { return IPConfig(method: .off) }
        if value == "auto6" { return IPConfig(method: .auto6) }
        if unsupported6.contains(value) { throw noDHCPv6(value) }
        let f: [String]
        do { f = try splitBracketed(value) } catch { throw fail(Message(error.problem)) }
        guard f.count >= 2 else {
            throw fail("not a known keyword (dhcp, on, any, bootp, off, none, auto6) nor the colon-separated client:server:gw:netmask:hostname:device:autoconf form")
        }
        // dracut's IFACE:METHOD[:MTU[:MAC]].
        if dhcpWords.contains(f[1]) || f[1] == "auto6" || unsupported6.contains(f[1]) {
            if unsupported6.contains(f[1]) { throw noDHCPv6(f[1]) }
            if f.count > 2 && f[2...].contains(where: { !$0.isEmpty }) {
                throw fail("the MTU and MAC fields after \(f[0]):\(f[1]) are not supported; write ip=\(f[0]):\(f[1])")
            }
            return IPConfig(method: f[1] == "auto6" ? .auto6 : .dhcp, device: f[0])
        }
        // An IPv6 client without brackets splits into hex pieces.
        if !f[0].isEmpty && !f[0].utf8.contains(where: { hexDigit($0) == nil }) && !value.utf8.contains(UInt8(ascii: "[")) {
            throw fail("\"\(f[0])\" is no IPv4 address; an IPv6 address must be written in brackets: [fec0::15]::[fec0::2]:64::eth0:none")
        }
        guard f.count <= 10 else { throw fail("more than 10 colon-separated fields") }
        func field(_ i: Int) -> String { i < f.count ? f[i] : "" }
        let names = ["client", "server", "gateway", "netmask", "hostname", "device", "autoconf", "dns0", "dns1", "ntp0"]
        func address(_ i: Int) throws(BootConfigError) -> IPAddress? {
            let t = field(i)
            if t.isEmpty { return nil }
            if let a = IPv4Address(t) { return .v4(a) }
            if isBracketed(t), let a = IPv6Address(unbracketed(t)) { return .v6(a) }
            throw fail("the \(names[i]) field \"\(t)\" is not an IPv4 address like 10.0.2.15 nor an IPv6 address in brackets like [fec0::15]")
        }
        var c = IPConfig(method: .manual)
        var prefixInClient: Int? = nil
        var client: IPAddress? = nil
        let clientText = field(0)
        if isBracketed(clientText), splitFields(unbracketed(clientText), "/").count == 2 {
            // [addr/len]
            let parts = splitFields(unbracketed(clientText), "/")
            guard let a = IPv6Address(parts[0]), let n = parseDecimal(parts[1], max: 128), n > 0 else {
                throw fail("the client field \"\(clientText)\" is not [IPV6/PREFIXLENGTH] like [fec0::15/64]")
            }
            client = .v6(a)
            prefixInClient = n
        } else {
            client = try address(0)
        }
        c.server = try address(1)
        let gateway = try address(2)
        c.hostname = field(4)
        c.device = field(5)
        if let d = try address(7) { c.dns.append(d) }
        if let d = try address(8) { c.dns.append(d) }
        _ = try address(9)
        let autoconf = field(6)
        switch autoconf {
        case "off", "none", "static": c.method = .manual
        case "auto6": c.method = .auto6
        case "": c.method = client == nil ? .dhcp : .manual
        default:
            if dhcpWords.contains(autoconf) {
                c.method = .dhcp
            } else if unsupported6.contains(autoconf) {
                throw noDHCPv6(autoconf)
            } else {
                throw fail("the autoconf field \"\(autoconf)\" is not one of off, none, static, dhcp, on, any, bootp, both, auto6")
            }
        }
        switch client {
        case .v6(let a):
            var prefix = prefixInClient ?? 64
            let mask = field(3)
            if !mask.isEmpty {
                guard prefixInClient == nil else { throw fail("the prefix length is given twice (in the client field and as the netmask)") }
                guard let n = parseDecimal(mask, max: 128), n > 0 else {
                    throw fail("the netmask field \"\(mask)\" is not an IPv6 prefix length from 1 to 128 (the client is IPv6)")
                }
                prefix = n
            }
            var v6 = StaticIPv6(address: a, prefixLength: prefix)
            switch gateway {
            case .v4(let g): throw fail("the gateway \(g.text) is IPv4 but the client is IPv6: write it in brackets, like [fec0::2]")
            case .v6(let g): v6.gateway = g
            case nil: break
            }
            c.ipv6 = v6
        case .v4(let a):
            c.address = a
            switch gateway {
            case .v6(let g): throw fail("the gateway [\(g.text)] is IPv6 but the client is IPv4")
            case .v4(let g): c.gateway = g
            case nil: break
            }
            if !field(3).isEmpty {
                guard let m = IPv4Address(field(3)) else {
                    throw fail("the netmask field \"\(field(3))\" is not an IPv4 netmask like 255.255.255.0")
                }
                c.netmask = m
            }
        case nil:
            if case .v4(let g) = gateway { c.gateway = g }
            if case .v6 = gateway { throw fail("a gateway without a client address: give the client's IPv6 address in the first field") }
            if !field(3).isEmpty {
                guard let m = IPv4Address(field(3)) else {
                    throw fail("the netmask field \"\(field(3))\" is not an IPv4 netmask like 255.255.255.0")
                }
                c.netmask = m
            }
        }
        if c.method == .manual {
            guard client != nil else {
                throw fail("autoconf \(autoconf) needs a client address in the first field")
            }
            if let a = c.address, c.netmask == nil { c.netmask = a.classfulNetmask }
        } else if client != nil && c.method == .auto6 {
            throw fail("auto6 takes its address from router advertisements: leave the client field empty, or use autoconf none for a static address")
        }
        return c
    }
}

/// Why a value could not be split into fields.
struct FieldSplitError: Error {
    var problem: String
}

/// `[x]` with at least the two brackets.
func isBracketed(_ text: String) -> Bool {
    text.hasPrefix("[") && text.hasSuffix("]") && text.utf8.count >= 2
}

/// Splits on `:` except inside `[...]` (dracut's ip_to_var), keeping the
/// brackets in the field and empty fields.
func splitBracketed(_ text: String) throws(FieldSplitError) -> [String] {
    var out: [String] = []
    var current: [UInt8] = []
    var depth = 0
    for b in text.utf8 {
        if b == UInt8(ascii: "[") {
            guard depth == 0, current.isEmpty else { throw FieldSplitError(problem: "a [ inside a field; brackets must enclose a whole field, like [fec0::15]") }
            depth = 1
        } else if b == UInt8(ascii: "]") {
            guard depth == 1 else { throw FieldSplitError(problem: "a ] without its [") }
            depth = 0
        } else if b == UInt8(ascii: ":") && depth == 0 {
            if current.first == UInt8(ascii: "["), current.last != UInt8(ascii: "]") {
                throw FieldSplitError(problem: "text after the ] of an IPv6 address; write [IPV6] alone in its field")
            }
            out.append(String(decoding: current, as: UTF8.self))
            current.removeAll()
            continue
        }
        current.append(b)
    }
    guard depth == 0 else { throw FieldSplitError(problem: "an IPv6 address has no closing ]") }
    if current.first == UInt8(ascii: "["), current.last != UInt8(ascii: "]") {
        throw FieldSplitError(problem: "text after the ] of an IPv6 address; write [IPV6] alone in its field")
    }
    out.append(String(decoding: current, as: UTF8.self))
    return out
}
