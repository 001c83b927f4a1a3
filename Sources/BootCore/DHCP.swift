// DHCPv4 messages (RFC 2131 section 2, options RFC 2132), built and parsed
// without I/O. The client's state machine lives in StationInit/DHCPClient.swift.
//
// Layout: op htype hlen hops | xid | secs flags | ciaddr | yiaddr | siaddr |
// giaddr | chaddr[16] | sname[64] | file[128] = 236 bytes, then the magic
// cookie 99.130.83.99 and the options (code, length, data; 0 pad, 255 end).

/// UDP ports (RFC 2131 section 4.1).
public let dhcpServerPort: UInt16 = 67
public let dhcpClientPort: UInt16 = 68

/// Option 53 values (RFC 2132 section 9.6).
public enum DHCPMessageType: UInt8, Sendable {
    case discover = 1, offer = 2, request = 3, decline = 4, ack = 5, nak = 6, release = 7, inform = 8
}

/// Option codes the station uses (RFC 2132).
public enum DHCPOptionCode {
    public static let pad: UInt8 = 0
    public static let subnetMask: UInt8 = 1
    public static let router: UInt8 = 3
    public static let dns: UInt8 = 6
    public static let hostName: UInt8 = 12
    public static let domainName: UInt8 = 15
    public static let rootPath: UInt8 = 17
    public static let requestedAddress: UInt8 = 50
    public static let leaseTime: UInt8 = 51
    public static let overload: UInt8 = 52
    public static let messageType: UInt8 = 53
    public static let serverID: UInt8 = 54
    public static let parameterList: UInt8 = 55
    public static let maxMessageSize: UInt8 = 57
    public static let clientID: UInt8 = 61
    public static let end: UInt8 = 255
}

/// The options the station asks for (option 55): mask, router, DNS,
/// host name, domain name, root path.
public let dhcpRequestedParameters: [UInt8] = [1, 3, 6, 12, 15, 17]

/// A DHCP option: code and data (repeated codes concatenated, RFC 3396).
public struct DHCPOption: Equatable, Sendable {
    public var code: UInt8
    public var data: [UInt8]
    public init(_ code: UInt8, _ data: [UInt8]) {
        self.code = code
        self.data = data
    }
}

/// Why a received message was not a usable DHCP reply.
public struct DHCPError: Error, Equatable, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}

/// A BOOTP/DHCP message.
public struct DHCPMessage: Equatable, Sendable {
    /// 1 BOOTREQUEST, 2 BOOTREPLY.
    public var op: UInt8
    public var xid: UInt32
    public var secs: UInt16
    /// 0x8000: BROADCAST (the client cannot receive unicast before it has an address).
    public var flags: UInt16
    public var ciaddr: IPv4Address
    public var yiaddr: IPv4Address
    /// "Next server": the boot server (slirp: 10.0.2.2).
    public var siaddr: IPv4Address
    public var giaddr: IPv4Address
    /// The client's Ethernet address (6 bytes).
    public var chaddr: [UInt8]
    /// Boot file name (the `file` field), NUL-trimmed.
    public var file: String
    public var options: [DHCPOption]

    public init(op: UInt8, xid: UInt32, secs: UInt16 = 0, flags: UInt16 = 0x8000,
                ciaddr: IPv4Address = .any, yiaddr: IPv4Address = .any, siaddr: IPv4Address = .any,
                giaddr: IPv4Address = .any, chaddr: [UInt8], file: String = "", options: [DHCPOption]) {
        self.op = op
        self.xid = xid
        self.secs = secs
        self.flags = flags
        self.ciaddr = ciaddr
        self.yiaddr = yiaddr
        self.siaddr = siaddr
        self.giaddr = giaddr
        self.chaddr = chaddr
        self.file = file
        self.options = options
    }

    /// DHCPDISCOVER (RFC 2131 section 4.4.1): broadcast flag, client id
    /// (type 1 = Ethernet + MAC, RFC 2132 9.14), the parameter request list.
    public static func discover(xid: UInt32, mac: [UInt8], secs: UInt16 = 0) -> DHCPMessage {
        DHCPMessage(op: 1, xid: xid, secs: secs, chaddr: mac, options: [
            DHCPOption(DHCPOptionCode.messageType, [DHCPMessageType.discover.rawValue]),
            DHCPOption(DHCPOptionCode.clientID, [1] + mac),
            DHCPOption(DHCPOptionCode.parameterList, dhcpRequestedParameters),
        ])
    }

    /// DHCPREQUEST in SELECTING state (RFC 2131 section 4.3.2): ciaddr 0,
    /// the offered address in option 50, the chosen server in option 54.
    public static func request(xid: UInt32, mac: [UInt8], secs: UInt16 = 0,
                               address: IPv4Address, server: IPv4Address) -> DHCPMessage {
        DHCPMessage(op: 1, xid: xid, secs: secs, chaddr: mac, options: [
            DHCPOption(DHCPOptionCode.messageType, [DHCPMessageType.request.rawValue]),
            DHCPOption(DHCPOptionCode.clientID, [1] + mac),
            DHCPOption(DHCPOptionCode.requestedAddress, address.bytes),
            DHCPOption(DHCPOptionCode.serverID, server.bytes),
            DHCPOption(DHCPOptionCode.parameterList, dhcpRequestedParameters),
        ])
    }

    /// The wire bytes, padded to the 300-byte BOOTP minimum (RFC 1542 2.1).
    public func encode() -> [UInt8] {
        var p: [UInt8] = [op, 1, 6, 0]  // htype Ethernet, hlen 6, hops 0
        p += [UInt8(xid >> 24), UInt8(xid >> 16 & 0xFF), UInt8(xid >> 8 & 0xFF), UInt8(xid & 0xFF)]
        p += [UInt8(secs >> 8), UInt8(secs & 0xFF), UInt8(flags >> 8), UInt8(flags & 0xFF)]
        p += ciaddr.bytes + yiaddr.bytes + siaddr.bytes + giaddr.bytes
        var ch = Array(chaddr.prefix(16))
        ch += [UInt8](repeating: 0, count: 16 - ch.count)
        p += ch
        p += [UInt8](repeating: 0, count: 64)  // sname
        var f = Array(file.utf8.prefix(127))
        f += [UInt8](repeating: 0, count: 128 - f.count)
        p += f
        p += [99, 130, 83, 99]
        for o in options {
            var rest = o.data[...]
            repeat {  // RFC 3396: split data longer than 255 bytes
                let chunk = rest.prefix(255)
                p += [o.code, UInt8(chunk.count)] + chunk
                rest = rest.dropFirst(chunk.count)
            } while !rest.isEmpty
        }
        p.append(DHCPOptionCode.end)
        if p.count < 300 { p += [UInt8](repeating: 0, count: 300 - p.count) }
        return p
    }

    /// Parses a message; honours option overload (52) into `file`/`sname`.
    public static func decode(_ p: [UInt8]) throws(DHCPError) -> DHCPMessage {
        guard p.count >= 240 else { throw DHCPError("message of \(p.count) bytes is shorter than 240") }
        guard p[236] == 99, p[237] == 130, p[238] == 83, p[239] == 99 else {
            throw DHCPError("no DHCP magic cookie (a plain BOOTP reply)")
        }
        guard p[1] == 1, p[2] == 6 else { throw DHCPError("hardware type \(p[1]) length \(p[2]) is not Ethernet") }
        func u32(_ i: Int) -> UInt32 { UInt32(p[i]) << 24 | UInt32(p[i + 1]) << 16 | UInt32(p[i + 2]) << 8 | UInt32(p[i + 3]) }
        var options: [DHCPOption] = []
        var overload: UInt8 = 0
        try parseOptions(p[240...], into: &options)
        if let o = options.first(where: { $0.code == DHCPOptionCode.overload }), let v = o.data.first {
            overload = v
            if v & 1 != 0 { try parseOptions(p[108..<236], into: &options) }
            if v & 2 != 0 { try parseOptions(p[44..<108], into: &options) }
        }
        let fileBytes = overload & 1 != 0 ? [] : Array(p[108..<236].prefix { $0 != 0 })
        return DHCPMessage(op: p[0], xid: u32(4), secs: UInt16(p[8]) << 8 | UInt16(p[9]),
                           flags: UInt16(p[10]) << 8 | UInt16(p[11]),
                           ciaddr: IPv4Address(value: u32(12)), yiaddr: IPv4Address(value: u32(16)),
                           siaddr: IPv4Address(value: u32(20)), giaddr: IPv4Address(value: u32(24)),
                           chaddr: Array(p[28..<34]), file: String(decoding: fileBytes, as: UTF8.self),
                           options: options)
    }

    private static func parseOptions(_ area: ArraySlice<UInt8>, into options: inout [DHCPOption]) throws(DHCPError) {
        var i = area.startIndex
        while i < area.endIndex {
            let code = area[i]
            if code == DHCPOptionCode.end { return }
            if code == DHCPOptionCode.pad { i += 1; continue }
            guard i + 1 < area.endIndex else { throw DHCPError("option \(code) has no length byte") }
            let len = Int(area[i + 1])
            guard i + 2 + len <= area.endIndex else { throw DHCPError("option \(code) runs past the end of the message") }
            let data = Array(area[(i + 2)..<(i + 2 + len)])
            if let k = options.firstIndex(where: { $0.code == code }) {
                options[k].data += data
            } else {
                options.append(DHCPOption(code, data))
            }
            i += 2 + len
        }
    }

    /// The data of option `code`, or nil.
    public func option(_ code: UInt8) -> [UInt8]? {
        options.first { $0.code == code }?.data
    }

    /// Option 53, or nil (plain BOOTP or an unknown value).
    public var messageType: DHCPMessageType? {
        guard let d = option(DHCPOptionCode.messageType), d.count == 1 else { return nil }
        return DHCPMessageType(rawValue: d[0])
    }

    /// An option holding one address, or nil.
    public func address(_ code: UInt8) -> IPv4Address? {
        guard let d = option(code) else { return nil }
        return IPv4Address(bytes: d[...])
    }

    /// An option holding a list of addresses (routers, DNS servers).
    public func addresses(_ code: UInt8) -> [IPv4Address] {
        guard let d = option(code) else { return [] }
        var out: [IPv4Address] = []
        var i = 0
        while i + 4 <= d.count {
            out.append(IPv4Address(bytes: d[i..<(i + 4)])!)
            i += 4
        }
        return out
    }

    /// An option holding text, NUL-trimmed, or "".
    public func text(_ code: UInt8) -> String {
        guard let d = option(code) else { return "" }
        return String(decoding: d.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Is this a reply to our request `xid` from our `mac`?
    public func isReply(to xid: UInt32, mac: [UInt8]) -> Bool {
        op == 2 && self.xid == xid && chaddr == Array(mac.prefix(6))
    }
}

/// What an ACK gives the station.
public struct DHCPLease: Equatable, Sendable {
    public var address: IPv4Address
    public var netmask: IPv4Address
    public var gateway: IPv4Address?
    public var dns: [IPv4Address]
    public var hostname: String
    public var domain: String
    public var rootPath: String
    /// Seconds (option 51), nil when not given.
    public var leaseTime: UInt32?
    /// Option 54, else the packet's source.
    public var serverID: IPv4Address
    /// siaddr, the "next server"; may be 0.
    public var nextServer: IPv4Address
    public var bootFile: String

    /// The boot server, as klibc ipconfig's ROOTSERVER: siaddr when set, else the server id.
    public var rootServer: IPv4Address { nextServer.isAny ? serverID : nextServer }

    /// Reads an OFFER or ACK; `source` is the IP source address, the fallback for the server id.
    public init(_ m: DHCPMessage, source: IPv4Address = .any) {
        address = m.yiaddr
        netmask = m.address(DHCPOptionCode.subnetMask) ?? m.yiaddr.classfulNetmask
        gateway = m.addresses(DHCPOptionCode.router).first
        dns = m.addresses(DHCPOptionCode.dns)
        hostname = m.text(DHCPOptionCode.hostName)
        domain = m.text(DHCPOptionCode.domainName)
        rootPath = m.text(DHCPOptionCode.rootPath)
        if let d = m.option(DHCPOptionCode.leaseTime), d.count == 4 {
            leaseTime = UInt32(d[0]) << 24 | UInt32(d[1]) << 16 | UInt32(d[2]) << 8 | UInt32(d[3])
        } else {
            leaseTime = nil
        }
        serverID = m.address(DHCPOptionCode.serverID) ?? source
        nextServer = m.siaddr
        bootFile = m.file
    }
}
