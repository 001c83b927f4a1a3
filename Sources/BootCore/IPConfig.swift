// `ip=`: how the station configures its network.
//
// Values (initramfs-tools' configure_networking and the kernel's
// Documentation/admin-guide/nfs/nfsroot.rst; Debian's kernel has no
// CONFIG_IP_PNP, so the init does it all itself):
//   absent, `dhcp`, `on`, `any`, `bootp`, `both`  DHCP on the first NIC
//   `off`, `none`                                 leave the network alone
//   client:server:gw:netmask:hostname:device:autoconf:dns0:dns1[:ntp]
//     e.g. 10.0.2.15::10.0.2.2:255.255.255.0::eth0:off   (static)
//          :::::eth1:dhcp                                  (DHCP on eth1)
//   autoconf: off/none/static (static; needs client), dhcp/on/any/bootp/both
//   (DHCP); when empty, static if client is given, else DHCP.

/// How to configure the network.
public enum IPMethod: Equatable, Sendable {
    case off
    case dhcp
    case manual
}

/// The parsed `ip=` value.
public struct IPConfig: Equatable, Sendable {
    public var method: IPMethod
    /// Static address (manual), or nil.
    public var address: IPv4Address?
    /// The boot server (field 2); the NBD server when nbdroot's host is left to DHCP.
    public var server: IPv4Address?
    public var gateway: IPv4Address?
    public var netmask: IPv4Address?
    public var hostname: String
    /// Interface name, or "" for the first one found.
    public var device: String
    public var dns: [IPv4Address]

    public init(method: IPMethod, address: IPv4Address? = nil, server: IPv4Address? = nil,
                gateway: IPv4Address? = nil, netmask: IPv4Address? = nil, hostname: String = "",
                device: String = "", dns: [IPv4Address] = []) {
        self.method = method
        self.address = address
        self.server = server
        self.gateway = gateway
        self.netmask = netmask
        self.hostname = hostname
        self.device = device
        self.dns = dns
    }

    /// Parses the value of `ip=` (nil when absent: DHCP).
    public static func parse(_ value: String?) throws(BootConfigError) -> IPConfig {
        guard let value else { return IPConfig(method: .dhcp) }
        let example: Message = "ip=dhcp or ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off"
        func fail(_ problem: Message) -> BootConfigError {
            BootConfigError(parameter: "ip", value: value, problem: problem, example: example)
        }
        switch value {
        case "", "dhcp", "on", "any", "bootp", "both": return IPConfig(method: .dhcp)
        case "off", "none": return IPConfig(method: .off)
        default: break
        }
        let f = splitFields(value, ":")
        guard f.count >= 2 else {
            throw fail("not a known keyword (dhcp, on, any, bootp, off, none) nor the colon-separated client:server:gw:netmask:hostname:device:autoconf form")
        }
        guard f.count <= 10 else { throw fail("more than 10 colon-separated fields") }
        func field(_ i: Int) -> String { i < f.count ? f[i] : "" }
        let names = ["client", "server", "gateway", "netmask", "hostname", "device", "autoconf", "dns0", "dns1", "ntp0"]
        func address(_ i: Int) throws(BootConfigError) -> IPv4Address? {
            let t = field(i)
            if t.isEmpty { return nil }
            guard let a = IPv4Address(t) else {
                throw fail("the \(names[i]) field \"\(t)\" is not an IPv4 address like 10.0.2.15")
            }
            return a
        }
        var c = IPConfig(method: .manual)
        c.address = try address(0)
        c.server = try address(1)
        c.gateway = try address(2)
        c.netmask = try address(3)
        c.hostname = field(4)
        c.device = field(5)
        if let d = try address(7) { c.dns.append(d) }
        if let d = try address(8) { c.dns.append(d) }
        _ = try address(9)
        switch field(6) {
        case "off", "none", "static": c.method = .manual
        case "dhcp", "on", "any", "bootp", "both": c.method = .dhcp
        case "": c.method = c.address == nil ? .dhcp : .manual
        default:
            throw fail("the autoconf field \"\(field(6))\" is not one of off, none, static, dhcp, on, any, bootp, both")
        }
        if c.method == .manual {
            guard let a = c.address else {
                throw fail("autoconf \(field(6)) needs a client address in the first field")
            }
            if c.netmask == nil { c.netmask = a.classfulNetmask }
        }
        return c
    }
}
