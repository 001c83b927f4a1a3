// The network settings the init applied, and the files that record them:
// /run/net-DEVICE.conf in initramfs-tools' format (what klibc ipconfig
// writes and scripts/functions sources) and /etc/resolv.conf.

/// The configured network of one interface.
public struct NetworkSettings: Equatable, Sendable {
    public var device: String
    /// "dhcp" or "none" (static), as initramfs-tools' PROTO.
    public var proto: String
    public var address: IPv4Address
    public var netmask: IPv4Address
    public var gateway: IPv4Address?
    public var dns: [IPv4Address]
    public var hostname: String
    public var domain: String
    /// The boot server: DHCP siaddr/server id, or ip='s server field.
    public var rootServer: IPv4Address?
    public var rootPath: String
    public var bootFile: String

    public init(device: String, proto: String, address: IPv4Address, netmask: IPv4Address,
                gateway: IPv4Address? = nil, dns: [IPv4Address] = [], hostname: String = "",
                domain: String = "", rootServer: IPv4Address? = nil, rootPath: String = "", bootFile: String = "") {
        self.device = device
        self.proto = proto
        self.address = address
        self.netmask = netmask
        self.gateway = gateway
        self.dns = dns
        self.hostname = hostname
        self.domain = domain
        self.rootServer = rootServer
        self.rootPath = rootPath
        self.bootFile = bootFile
    }

    /// From a DHCP lease on `device`.
    public init(device: String, lease: DHCPLease) {
        self.init(device: device, proto: "dhcp", address: lease.address, netmask: lease.netmask,
                  gateway: lease.gateway, dns: lease.dns, hostname: lease.hostname, domain: lease.domain,
                  rootServer: lease.rootServer, rootPath: lease.rootPath, bootFile: lease.bootFile)
    }

    /// From a static `ip=` (its method must be .manual with an IPv4
    /// address, so address and netmask are set); its IPv4 dns0/dns1 and server.
    public init(device: String, config c: IPConfig) {
        let a = c.address ?? .any
        var dns: [IPv4Address] = []
        for d in c.dns { if case .v4(let v) = d { dns.append(v) } }
        var server: IPv4Address? = nil
        if case .v4(let v) = c.server { server = v }
        self.init(device: device, proto: "none", address: a, netmask: c.netmask ?? a.classfulNetmask,
                  gateway: c.gateway, dns: dns, hostname: c.hostname, rootServer: server)
    }

    /// One line for the log: `eth0 10.0.2.15/255.255.255.0 gw 10.0.2.2 dns 10.0.2.3 server 10.0.2.2`.
    public var summary: String {
        var s = "\(device) \(address.text)/\(netmask.text)"
        if let g = gateway { s += " gw \(g.text)" }
        if !dns.isEmpty { s += " dns " + dns.map { $0.text }.joined(separator: ",") }
        if let r = rootServer { s += " server \(r.text)" }
        if !rootPath.isEmpty { s += " root-path \(rootPath)" }
        return s
    }

    /// The text of /run/net-DEVICE.conf, shell-sourceable, values in single quotes.
    public var netConfText: String {
        let zero = IPv4Address.any.text
        let lines: [(String, String)] = [
            ("DEVICE", device),
            ("PROTO", proto),
            ("IPV4ADDR", address.text),
            ("IPV4BROADCAST", address.broadcast(netmask: netmask).text),
            ("IPV4NETMASK", netmask.text),
            ("IPV4GATEWAY", gateway?.text ?? zero),
            ("IPV4DNS0", dns.count > 0 ? dns[0].text : zero),
            ("IPV4DNS1", dns.count > 1 ? dns[1].text : zero),
            ("HOSTNAME", hostname),
            ("DNSDOMAIN", domain),
            ("NISDOMAIN", ""),
            ("ROOTSERVER", rootServer?.text ?? zero),
            ("ROOTPATH", rootPath),
            ("filename", bootFile),
        ]
        return shellAssignments(lines)
    }

    /// The text of /etc/resolv.conf: `search` then one `nameserver` per server.
    public var resolvConfText: String {
        var text = ""
        if !domain.isEmpty { text += "search \(domain)\n" }
        for d in dns { text += "nameserver \(d.text)\n" }
        return text
    }
}

/// `KEY='value'` lines, shell-sourceable: single quotes, ' written as '\''.
func shellAssignments(_ lines: [(String, String)]) -> String {
    var text = ""
    for (k, v) in lines {
        var out: [UInt8] = Array(k.utf8) + [UInt8(ascii: "="), UInt8(ascii: "'")]
        for ch in v.utf8 {
            if ch == UInt8(ascii: "'") { out += Array("'\\''".utf8) } else { out.append(ch) }
        }
        out += [UInt8(ascii: "'"), UInt8(ascii: "\n")]
        text += String(decoding: out, as: UTF8.self)
    }
    return text
}
