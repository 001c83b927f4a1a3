// IPv6 for step 4: SLAAC (ip=auto6) and static addresses ([addr]::[gw]:len).
//
// Before the link goes up, the interface's sysctls in
// /proc/sys/net/ipv6/conf/DEV/ are set: disable_ipv6=0, accept_ra=1 (take
// router advertisements: the default route, and for SLAAC the prefix),
// autoconf=1 for SLAAC or 0 for a static address (so that the address is
// the one asked for). The kernel does SLAAC itself; the init waits for a
// routable address that has passed duplicate address detection
// (/proc/net/if_inet6: not IFA_F_TENTATIVE). A static address and its
// default route go in by rtnetlink (RTM_NEWADDR, RTM_NEWROUTE, built by
// BootCore/RouteNetlink.swift), with the same wait for DAD before the
// route and before anything connects. The route's metric (1000) is below
// that of the routes router advertisements add (1024), so ip='s gateway
// wins, whichever came first.
#if canImport(CShims)
import CShims
#endif
#if canImport(BootCore)
import BootCore
#endif

/// How long SLAAC may take (a router solicitation, the advertisement, DAD
/// twice: 2-4 s usually; dracut waits 40 s).
let slaacWaitMillis: Int64 = 30_000
/// How long duplicate address detection may take (1 s per probe by default).
let dadWaitMillis: Int64 = 10_000

/// Writes the IPv6 sysctls of `device`; the link must still be down.
func prepareIPv6(device: String, slaac: Bool) throws(InitFailure) {
    let dir = "/proc/sys/net/ipv6/conf/" + device
    guard pathExists(dir) else {
        throw InitFailure("\(dir) does not exist: the kernel has no IPv6 (ip= asks for IPv6)",
                          hint: "use a kernel with CONFIG_IPV6, or add the ipv6 module to the image (nbdboot initramfs build --add-module ipv6)")
    }
    for (key, value) in [("disable_ipv6", "0"), ("accept_ra", "1"), ("autoconf", slaac ? "1" : "0")] {
        do { try writeTextFile(dir + "/" + key, value + "\n") } catch {
            throw InitFailure("cannot set \(dir)/\(key) to \(value)", error)
        }
    }
}

/// ip=auto6: waits for the kernel to configure a routable address from a
/// router advertisement, then reads the default route it installed.
func waitForSLAAC(device: String, hostname: String) throws(InitFailure) -> IPv6Settings {
    let start = shim_monotonic_ms()
    var found: InterfaceAddress6? = nil
    var tentative: InterfaceAddress6? = nil
    let ok = waitUntil(timeoutMillis: slaacWaitMillis, stepMillis: 50) {
        for a in interfaceAddresses6(device) where a.isRoutable && !a.dadFailed {
            if a.isTentative { tentative = a } else { found = a; return true }
        }
        return false
    }
    guard ok, let a = found else {
        if let t = tentative {
            throw InitFailure("SLAAC on \(device): \(t.address.text)/\(t.prefixLength) is still tentative (duplicate address detection) after \(slaacWaitMillis / 1000) s")
        }
        let have = interfaceAddresses6(device).map { $0.address.text }.joined(separator: " ")
        throw InitFailure("SLAAC on \(device) (ip=auto6) gave no routable IPv6 address in \(slaacWaitMillis / 1000) s; \(device) has \(have.isEmpty ? "no IPv6 address" : have)",
                          hint: "is a router sending advertisements with an autonomous prefix on this link (radvd, or QEMU's -netdev user with ipv6=on)? Or give a static address: ip=[fec0::15]::[fec0::2]:64::\(device):none")
    }
    let gateway = defaultGateway6((try? readTextFile("/proc/net/ipv6_route")) ?? "", device: device)
    log("SLAAC: \(a.address.text)/\(a.prefixLength) on \(device) in \(shim_monotonic_ms() - start) ms")
    return IPv6Settings(device: device, proto: "auto6", address: a.address, prefixLength: a.prefixLength,
                        gateway: gateway, hostname: hostname)
}

/// A static address: RTM_NEWADDR, wait for DAD, then the default route.
func configureStaticIPv6(_ v6: StaticIPv6, device: String, config: IPConfig) throws(InitFailure) -> IPv6Settings {
    let index = UInt32(if_nametoindex(device))
    guard index != 0 else { throw InitFailure("interface \(device) has no index (if_nametoindex)") }
    var socket = try RouteSocket.open()
    defer { socket.close() }
    let what = messageText("\(v6.address.text)/\(v6.prefixLength) on \(device)")
    try socket.request(doing: "adding " + what + " (RTM_NEWADDR)") { seq in
        RouteNetlink.addAddress(seq: seq, ifindex: index, address: v6.address, prefixLength: v6.prefixLength)
    }
    try waitForDAD(v6.address, device: device)
    if let gw = v6.gateway {
        try socket.request(doing: messageText("adding the default route via \(gw.text) on \(device) (RTM_NEWROUTE)"),
                           hint: "the gateway must be inside \(v6.address.text)/\(v6.prefixLength) or link-local") { seq in
            RouteNetlink.addDefaultRoute(seq: seq, ifindex: index, gateway: gw)
        }
    }
    setHostname(config.hostname)
    var dns: [IPv6Address] = []
    for d in config.dns { if case .v6(let a) = d { dns.append(a) } }
    return IPv6Settings(device: device, proto: "none", address: v6.address, prefixLength: v6.prefixLength,
                        gateway: v6.gateway, dns: dns, hostname: config.hostname)
}

/// Waits until `address` on `device` is no longer tentative.
func waitForDAD(_ address: IPv6Address, device: String) throws(InitFailure) {
    let start = shim_monotonic_ms()
    var state = "missing"
    let ok = waitUntil(timeoutMillis: dadWaitMillis, stepMillis: 50) {
        guard let a = interfaceAddresses6(device).first(where: { $0.address == address }) else { state = "missing"; return false }
        if a.dadFailed { state = "dadfailed"; return true }
        state = a.isTentative ? "tentative" : "ok"
        return !a.isTentative
    }
    if state == "dadfailed" {
        throw InitFailure("\(address.text) on \(device): duplicate address detection failed, another host on the link has this address",
                          hint: "choose another address in ip=")
    }
    guard ok else {
        throw InitFailure("\(address.text) on \(device) is \(state == "missing" ? "not in /proc/net/if_inet6" : "still tentative") after \(dadWaitMillis / 1000) s")
    }
    logDebug("\(address.text) on \(device) passed duplicate address detection in \(shim_monotonic_ms() - start) ms")
}

/// The IPv6 addresses of `device` (/proc/net/if_inet6).
func interfaceAddresses6(_ device: String) -> [InterfaceAddress6] {
    guard let t = try? readTextFile("/proc/net/if_inet6") else { return [] }
    return parseIfInet6(t).filter { $0.device == device }
}

/// A NETLINK_ROUTE socket for requests that the kernel acknowledges.
struct RouteSocket {
    let fd: Int32
    var seq: UInt32 = 0

    static func open() throws(InitFailure) -> RouteSocket {
        let fd = socket(shim_AF_NETLINK, shim_SOCK_RAW | shim_SOCK_CLOEXEC, shim_NETLINK_ROUTE)
        if fd < 0 { throw InitFailure("cannot open a netlink socket", SysError("socket(AF_NETLINK, NETLINK_ROUTE)", Errno.current)) }
        if shim_netlink_bind(fd) != 0 {
            let e = Errno.current
            _ = CShims_close(fd)
            throw InitFailure("cannot bind a netlink socket", SysError("bind", e))
        }
        return RouteSocket(fd: fd)
    }

    func close() { _ = CShims_close(fd) }

    /// Sends the message `build` makes for the next sequence number and
    /// waits (5 s at most) for the kernel's answer; EEXIST counts as done.
    mutating func request(doing: String, hint: Message = "", _ build: (UInt32) -> [UInt8]) throws(InitFailure) {
        seq &+= 1
        let message = build(seq)
        let sent = message.withUnsafeBytes { b in send(fd, b.baseAddress, b.count, 0) }
        if sent < 0 { throw InitFailure("\(doing)", SysError("send", Errno.current, "netlink")) }
        var buffer = [UInt8](repeating: 0, count: 8192)
        let deadline = shim_monotonic_ms() + 5000
        while true {
            let left = deadline - shim_monotonic_ms()
            guard left > 0 else { throw InitFailure("\(doing): the kernel did not answer within 5 s") }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&pfd, 1, Int32(left))
            if r < 0 && Errno.current == .interrupted { continue }
            if r <= 0 { continue }
            let n = buffer.withUnsafeMutableBytes { b in recv(fd, b.baseAddress, b.count, 0) }
            if n <= 0 { continue }
            guard let error = RouteNetlink.acknowledgement(Array(buffer[0..<n]), seq: seq) else { continue }
            if error == 0 || Errno(error) == .exists { return }
            throw InitFailure("\(doing)", SysError("netlink", Errno(error)), hint: hint)
        }
    }
}
