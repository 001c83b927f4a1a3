// Step 4: the network. Loopback up, pick the NIC (ip='s device, else the
// first non-lo name in /sys/class/net, waiting for the driver), bring it
// up, wait for carrier, then DHCP (DHCPClient.swift), the static ip=, or
// IPv6 (Network6.swift: SLAAC or a static address), and record the result
// in /run/net-DEVICE.conf, /run/net6-DEVICE.conf and /etc/resolv.conf.
// Interface ioctls: netdevice(7) on an AF_INET datagram socket.
#if canImport(CShims)
import CShims
#endif
#if canImport(BootCore)
import BootCore
#endif

/// How long to wait for the NIC to appear and for its carrier.
let interfaceWaitMillis: Int64 = 10_000
let carrierWaitMillis: Int64 = 10_000

/// An AF_INET datagram socket for the interface ioctls.
func inetControlSocket() throws(InitFailure) -> Int32 {
    let s = socket(shim_AF_INET, shim_SOCK_DGRAM | shim_SOCK_CLOEXEC, 0)
    if s < 0 { throw InitFailure("socket(AF_INET, SOCK_DGRAM) for interface ioctls", SysError("socket", Errno.current)) }
    return s
}

/// Brings up the network as `config` says; returns what was set up, or
/// nil for ip=off. `nameservers` (nameserver=) go into /etc/resolv.conf
/// with ip='s and DHCP's. `preferRootPath`: the root's server comes from
/// DHCP, so DHCP prefers an offer with a root-path (runDHCP).
func configureNetwork(_ config: IPConfig, bootMAC: [UInt8]? = nil, nameservers: [IPAddress] = [],
                      preferRootPath: Bool = false) throws(InitFailure) -> StationNetwork? {
    let sock = try inetControlSocket()
    defer { _ = close(sock) }
    if shim_if_up(sock, "lo") != 0 { logWarning("cannot bring lo up: \(Errno.current.description)") }
    if config.method == .off {
        log("ip=off: leaving the network unconfigured")
        return nil
    }
    let device = try waitForInterface(named: config.device, mac: bootMAC)
    if config.usesIPv6 { try prepareIPv6(device: device, slaac: config.method == .auto6) }
    if shim_if_up(sock, device) != 0 {
        throw InitFailure("cannot bring \(device) up (SIOCSIFFLAGS)", SysError("ioctl", Errno.current, device))
    }
    if waitUntil(timeoutMillis: carrierWaitMillis, { (try? readTextFile("/sys/class/net/\(device)/carrier")).map { trimSpaces($0) == "1" } ?? false }) {
        log("\(device) is up, carrier detected")
    } else {
        logWarning("\(device) has no carrier after \(carrierWaitMillis / 1000) s; trying anyway (is the cable or the VM's -netdev connected?)")
    }
    var network = StationNetwork(device: device)
    switch config.method {
    case .dhcp:
        var mac = [UInt8](repeating: 0, count: 6)
        if shim_if_hwaddr(sock, device, &mac) != 0 {
            throw InitFailure("cannot read the hardware address of \(device) (SIOCGIFHWADDR)", SysError("ioctl", Errno.current, device))
        }
        let index = Int32(if_nametoindex(device))
        let lease = try runDHCP(device: device, ifindex: index, mac: mac, preferRootPath: preferRootPath)
        network.ipv4 = NetworkSettings(device: device, lease: lease)
    case .manual:
        if config.address != nil { network.ipv4 = NetworkSettings(device: device, config: config) }
        if let v6 = config.ipv6 { network.ipv6 = try configureStaticIPv6(v6, device: device, config: config) }
    case .auto6:
        network.ipv6 = try waitForSLAAC(device: device, hostname: config.hostname)
    case .off:
        break
    }
    if let v4 = network.ipv4 { try apply(v4, socket: sock) }
    var learnt: [IPAddress] = []
    for d in network.ipv4?.dns ?? [] { learnt.append(.v4(d)) }
    network.nameservers = mergeNameservers([nameservers, config.dns, learnt])
    writeNetworkFiles(network)
    if let v4 = network.ipv4 { log("network \(v4.proto == "dhcp" ? "(DHCP)" : "(static)"): \(v4.summary)") }
    if let v6 = network.ipv6 { log("network (\(v6.proto == "auto6" ? "SLAAC" : "static IPv6")): \(v6.summary)") }
    if !network.nameservers.isEmpty {
        log("nameservers: \(network.nameservers.map { $0.text }.joined(separator: " "))")
    }
    return network
}

/// The interface to use: `name` if given (ip='s device field), else the
/// one whose address is `mac` (BOOTIF=), else the first Ethernet entry of
/// /sys/class/net (sorted by name), as initramfs-tools' configure_networking
/// orders them; waits up to interfaceWaitMillis for the driver to create it.
func waitForInterface(named name: String, mac: [UInt8]? = nil) throws(InitFailure) -> String {
    var found = ""
    let ok = waitUntil(timeoutMillis: interfaceWaitMillis) {
        let names = listDirectory("/sys/class/net")
        if !name.isEmpty {
            if names.contains(name) { found = name }
        } else if let mac {
            let want = macText(mac)
            for n in names where (try? readTextFile("/sys/class/net/\(n)/address")).map({ trimSpaces($0) }) == want {
                found = n
            }
        } else if let first = names.first(where: { $0 != "lo" && isEthernet($0) }) {
            found = first
        }
        return !found.isEmpty
    }
    if ok {
        if name.isEmpty, let mac { log("BOOTIF=\(macText(mac)) is \(found)") }
        return found
    }
    let present = listDirectory("/sys/class/net").joined(separator: " ")
    let want = !name.isEmpty ? "no interface \(name) (from ip=)" : mac.map { "no interface with address \(macText($0)) (from BOOTIF=)" } ?? "no network interface besides lo"
    throw InitFailure("\(want) after \(interfaceWaitMillis / 1000) s; present: \(present.isEmpty ? "none" : present)",
                      hint: "is the NIC's driver (e.g. virtio_net) in /etc/nbdboot/modules, and the device field of ip= right?")
}

/// /sys/class/net/NAME/type is 1 (ARPHRD_ETHER): skips tunnels such as
/// sit0 or tunl0 that some modules create, which DHCP cannot use.
func isEthernet(_ name: String) -> Bool {
    guard let t = try? readTextFile("/sys/class/net/\(name)/type") else { return false }
    return trimSpaces(t) == "1"
}

/// SIOCSIFADDR, SIOCSIFNETMASK, then the default route (SIOCADDRT) and the host name.
func apply(_ s: NetworkSettings, socket sock: Int32) throws(InitFailure) {
    if shim_if_set_ipv4(sock, s.device, 0, s.address.value) != 0 {
        throw InitFailure("cannot set address \(s.address.text) on \(s.device) (SIOCSIFADDR)", SysError("ioctl", Errno.current, s.device))
    }
    if shim_if_set_ipv4(sock, s.device, 1, s.netmask.value) != 0 {
        throw InitFailure("cannot set netmask \(s.netmask.text) on \(s.device) (SIOCSIFNETMASK)", SysError("ioctl", Errno.current, s.device))
    }
    if let gw = s.gateway, !gw.isAny {
        if shim_add_default_route(sock, gw.value, s.device) != 0 && Errno.current != .exists {
            throw InitFailure("cannot add the default route via \(gw.text) on \(s.device) (SIOCADDRT)",
                              SysError("ioctl", Errno.current, s.device),
                              hint: "the gateway must be inside \(s.address.text)/\(s.netmask.text)")
        }
    }
    setHostname(s.hostname)
}

/// sethostname(2), when ip= or DHCP named the station.
func setHostname(_ name: String) {
    guard !name.isEmpty else { return }
    if sethostname(name, name.utf8.count) != 0 { logWarning("sethostname \(name): \(Errno.current.description)") }
}

/// /run/net-DEVICE.conf and /run/net6-DEVICE.conf (initramfs-tools
/// format) and /etc/resolv.conf.
func writeNetworkFiles(_ n: StationNetwork) {
    var files: [(String, String)] = []
    if let v4 = n.ipv4 { files.append(("/run/net-" + n.device + ".conf", v4.netConfText)) }
    if let v6 = n.ipv6 { files.append(("/run/net6-" + n.device + ".conf", v6.netConfText)) }
    for (path, text) in files {
        do { try writeTextFile(path, text) } catch { logWarning("cannot write \(path): \(error.description)") }
    }
    if !n.nameservers.isEmpty || !n.domain.isEmpty {
        try? makeDirectory("/etc")
        do { try writeTextFile("/etc/resolv.conf", resolvConfText(nameservers: n.nameservers, domain: n.domain)) } catch {
            logWarning("cannot write /etc/resolv.conf: \(error.description)")
        }
    }
}
