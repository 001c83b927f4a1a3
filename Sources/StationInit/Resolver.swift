// A stub resolver for the NBD server's name (nbdroot=nbd-server.lab:...).
// The nameservers are dracut's nameserver=, then ip='s dns0/dns1, then
// DHCP option 6 (BootCore.mergeNameservers). Each try asks every
// nameserver in turn over UDP port 53 and waits 1 s, 2 s, then 3 s for its
// reply; a reply ends the search (an address, "no such record", or
// NXDOMAIN), a timeout or an error code moves on to the next server. The
// station asks for A records, and first for AAAA when it has IPv6. The
// messages are built and parsed by BootCore/DNS.swift; the address found
// goes to nbd-client, which then needs no resolver of its own.
#if canImport(CShims)
import CShims
#endif
#if canImport(BootCore)
import BootCore
#endif

/// Per try, the wait for each nameserver's reply.
let dnsTryMillis: [Int64] = [1000, 2000, 3000]
/// One record type's lookup gives up after this long.
let dnsTotalMillis: Int64 = 10_000

/// Whom to ask, and whether AAAA records come first (the station has IPv6).
struct NameLookup {
    var nameservers: [IPAddress]
    var preferIPv6: Bool
}

/// The spec with its host name, if it has one, replaced by an address.
func resolvingHost(_ spec: NBDServerSpec, source: String, _ names: NameLookup) throws(InitFailure) -> NBDServerSpec {
    guard isHostName(spec.host) else { return spec }
    var s = spec
    s.host = try resolveHostName(spec.host, source: source, nameservers: names.nameservers, preferIPv6: names.preferIPv6).text
    return s
}

/// The first address of `name`: AAAA (when `preferIPv6`), else A.
func resolveHostName(_ name: String, source: String, nameservers: [IPAddress], preferIPv6: Bool) throws(InitFailure) -> IPAddress {
    let asked = nameservers.map { $0.text(port: 53) }.joined(separator: ", ")
    guard !nameservers.isEmpty else {
        throw InitFailure("the NBD server \"\(name)\" (\(source)) is a name, but no nameserver is known to resolve it",
                          hint: "give nameserver=IP, the dns0 field of ip=, or have the DHCP server send option 6; or write the server's address")
    }
    var notes: [String] = []
    for type in preferIPv6 ? [DNSType.aaaa, DNSType.a] : [DNSType.a] {
        let query: DNSQuery
        do { query = try DNSQuery(id: randomQueryID(), name: name, type: type) } catch {
            throw InitFailure("the NBD server \"\(name)\" (\(source)) is neither an IP address nor a valid host name: \(error.description)",
                              hint: "write an address (10.0.2.2, [fec0::2]) or a host name such as nbd-server.lab")
        }
        let start = shim_monotonic_ms()
        switch ask(query, nameservers: nameservers) {
        case .found(let addresses, let server):
            log("DNS: \(name) is \(addresses[0].text) (\(DNSType.name(type)) from \(server.text), \(shim_monotonic_ms() - start) ms)")
            return addresses[0]
        case .noRecord(let server):
            notes.append(messageText("no \(DNSType.name(type)) record (\(server.text))"))
        case .noSuchName(let server):
            throw InitFailure("cannot resolve the NBD server \"\(name)\" (\(source)): no such name (NXDOMAIN from \(server.text); asked \(asked))",
                              hint: "check the name in \(source), or the nameserver (nameserver=, ip='s dns0, DHCP option 6)")
        case .failed(let why):
            notes.append(DNSType.name(type) + ": " + why)
        }
    }
    throw InitFailure("cannot resolve the NBD server \"\(name)\" (\(source)): \(notes.joined(separator: "; ")) (asked \(asked))",
                      hint: "check the nameservers (nameserver=, ip='s dns0, DHCP option 6) and the name, or write the server's address")
}

enum LookupOutcome {
    case found([IPAddress], IPAddress)
    case noRecord(IPAddress)
    case noSuchName(IPAddress)
    /// Every try failed: what each server did last.
    case failed(String)
}

/// Tries every nameserver, up to three rounds, within dnsTotalMillis.
func ask(_ query: DNSQuery, nameservers: [IPAddress]) -> LookupOutcome {
    let deadline = shim_monotonic_ms() + dnsTotalMillis
    var last = [String](repeating: "no answer", count: nameservers.count)
    let packet = query.encode()
    for wait in dnsTryMillis {
        for (i, server) in nameservers.enumerated() {
            let now = shim_monotonic_ms()
            if now >= deadline { break }
            let until = min(now + wait, deadline)
            switch exchange(packet, query, server: server, until: until) {
            case .reply(let addresses):
                if addresses.isEmpty { return .noRecord(server) }
                return .found(addresses, server)
            case .error(let e):
                if e == .nameError { return .noSuchName(server) }
                last[i] = e.description
            case .sendFailed(let why):
                last[i] = why
            case .timeout:
                last[i] = "no answer"
            }
            logDebug("DNS: \(DNSType.name(query.type)) query to \(server.text(port: 53)): \(last[i])")
        }
    }
    var parts: [String] = []
    for (i, server) in nameservers.enumerated() { parts.append(server.text + ": " + last[i]) }
    return .failed(parts.joined(separator: ", "))
}

enum ExchangeResult {
    case reply([IPAddress])
    case error(DNSError)
    case sendFailed(String)
    case timeout
}

/// Sends the query to one server and waits for its reply until `until`.
func exchange(_ packet: [UInt8], _ query: DNSQuery, server: IPAddress, until: Int64) -> ExchangeResult {
    let family: Int32
    let bytes: [UInt8]
    switch server {
    case .v4(let a): family = shim_AF_INET; bytes = a.bytes
    case .v6(let a): family = shim_AF_INET6; bytes = a.bytes
    }
    let fd = bytes.withUnsafeBufferPointer { b in shim_udp_connect(family, b.baseAddress, 53) }
    if fd < 0 { return .sendFailed("cannot reach it (" + Errno.current.description + ")") }
    defer { _ = CShims_close(fd) }
    let sent = packet.withUnsafeBytes { b in send(fd, b.baseAddress, b.count, 0) }
    if sent < 0 { return .sendFailed("send failed (" + Errno.current.description + ")") }
    var buffer = [UInt8](repeating: 0, count: 1500)
    while true {
        let left = until - shim_monotonic_ms()
        if left <= 0 { return .timeout }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = poll(&pfd, 1, Int32(left))
        if r < 0 && Errno.current == .interrupted { continue }
        if r <= 0 { return .timeout }
        let n = buffer.withUnsafeMutableBytes { b in recv(fd, b.baseAddress, b.count, 0) }
        if n < 0 {
            // ECONNREFUSED: an ICMP port unreachable came back; nothing listens there.
            if Errno.current == .interrupted { continue }
            return .sendFailed(Errno.current.description)
        }
        do {
            guard let addresses = try query.decodeReply(Array(buffer[0..<n])) else { continue }
            return .reply(addresses)
        } catch {
            return .error(error)
        }
    }
}

/// A query ID (shim_random16: /dev/urandom would stall the boot while the
/// kernel gathers entropy).
func randomQueryID() -> UInt16 {
    UInt16(truncatingIfNeeded: shim_random16())
}
