// DHCPv4 client (RFC 2131 section 4.4): DISCOVER, wait for an OFFER (or,
// when the root comes from DHCP, a short while for one with a root-path:
// BootCore/DHCPSelection.swift), REQUEST it, wait for that server's ACK;
// a NAK starts over. The interface has no address yet, so the messages
// travel as raw IPv4/UDP packets (built by BootCore) on an AF_PACKET
// SOCK_DGRAM socket for ETH_P_IP (packet(7)), sent to the Ethernet
// broadcast address with the BROADCAST flag set so the server broadcasts
// its reply too.
#if canImport(CShims)
import CShims
#endif
#if canImport(BootCore)
import BootCore
#endif

/// The whole exchange gives up after this long.
let dhcpTotalMillis: Int64 = 30_000
/// Wait for a reply after each send: 1 s, 2 s, 4 s, then 4 s each.
let dhcpRoundMillis: [Int64] = [1000, 2000, 4000]

/// Runs DISCOVER/OFFER/REQUEST/ACK on `device`; returns the ACK's lease.
/// `preferRootPath` (the root comes from DHCP): after the first offer,
/// listen up to dhcpOfferWindowMillis more for one with a root-path
/// (BootCore's DHCPOfferSelection); otherwise take the first offer.
func runDHCP(device: String, ifindex: Int32, mac: [UInt8], preferRootPath: Bool = false) throws(InitFailure) -> DHCPLease {
    let fd = shim_packet_socket(ifindex)
    if fd < 0 {
        throw InitFailure("cannot open a packet socket on \(device) for DHCP", SysError("socket(AF_PACKET)", Errno.current, device))
    }
    defer { _ = close(fd) }
    let start = shim_monotonic_ms()
    let deadline = start + dhcpTotalMillis
    var xid = UInt32(truncatingIfNeeded: start) &* 2654435761
    for b in mac { xid = (xid << 5 | xid >> 27) ^ UInt32(b) }
    var round = 0
    var offers = 0
    while shim_monotonic_ms() < deadline {
        let wait = dhcpRoundMillis[min(round, dhcpRoundMillis.count - 1)]
        round += 1
        let secs = UInt16(min((shim_monotonic_ms() - start) / 1000, 65535))
        // SELECTING: broadcast DISCOVER, collect offers (DHCPOfferSelection).
        sendDHCP(fd, ifindex, DHCPMessage.discover(xid: xid, mac: mac, secs: secs))
        logDebug("DHCP: DISCOVER on \(device) (xid \(xid), round \(round))")
        let roundEnd = min(shim_monotonic_ms() + wait, deadline)
        var selection = DHCPOfferSelection(preferRootPath: preferRootPath)
        while !selection.isDone(at: shim_monotonic_ms()) {
            // After the first offer the window applies, even past the round's end.
            let until = min(selection.deadline ?? roundEnd, deadline)
            guard let offer = receiveDHCP(fd, xid: xid, mac: mac, types: [.offer], until: until) else { break }
            let offered = DHCPLease(offer.0, source: offer.1)
            switch selection.add(offered, at: shim_monotonic_ms()) {
            case .noAddress:
                logWarning("DHCP: OFFER from \(offered.serverID.text) carries no address: ignored")
            case .repeated:
                logDebug("DHCP: another OFFER from \(offered.serverID.text)")
            case .added:
                offers += 1
                let what: Message = "DHCP: OFFER of \(offered.address.text) from \(offered.serverID.text)\(offered.rootPath.isEmpty ? ", no root-path" : messageText(", root-path \(offered.rootPath)"))"
                if preferRootPath { log(what) } else { logDebug(what) }
            }
        }
        guard let chosen = selection.choice?.offer else { continue }
        if preferRootPath {
            log("DHCP: \(selection.report(waited: shim_monotonic_ms() - (selection.firstMillis ?? start)))")
        }
        // REQUESTING: ask for it, wait for the chosen server's ACK or NAK.
        sendDHCP(fd, ifindex, DHCPMessage.request(xid: xid, mac: mac, secs: secs, address: chosen.address, server: chosen.serverID))
        let replyEnd = min(shim_monotonic_ms() + wait, deadline)
        var answer: (DHCPMessage, IPv4Address)? = nil
        while let reply = receiveDHCP(fd, xid: xid, mac: mac, types: [.ack, .nak], until: replyEnd) {
            if reply.0.answersRequest(to: chosen.serverID, source: reply.1) {
                answer = reply
                break
            }
            // RFC 2131 4.3.2: the REQUEST declined this server's offer.
            log("DHCP: ignored a\(reply.0.messageType == .nak ? " NAK" : "n ACK") from \(reply.0.serverIdentifier(source: reply.1).text): the REQUEST named \(chosen.serverID.text)")
        }
        guard let reply = answer else { continue }
        if reply.0.messageType == .nak {
            logWarning("DHCP: server \(chosen.serverID.text) refused (NAK) \(chosen.address.text): starting over")
            xid &+= 1
            continue
        }
        let lease = DHCPLease(reply.0, source: reply.1)
        log("DHCP: \(lease.address.text) from \(lease.serverID.text) in \(shim_monotonic_ms() - start) ms")
        return lease
    }
    throw InitFailure("DHCP on \(device) got no \(offers == 0 ? "OFFER" : "ACK") in \(dhcpTotalMillis / 1000) s",
                      hint: "is a DHCP server on this network? Or give a static address: ip=CLIENT::GATEWAY:NETMASK::\(device):off")
}

private func sendDHCP(_ fd: Int32, _ ifindex: Int32, _ message: DHCPMessage) {
    let packet = UDPDatagram(source: .any, destination: .broadcast, sourcePort: dhcpClientPort,
                             destinationPort: dhcpServerPort, payload: message.encode()).encode()
    let n = packet.withUnsafeBytes { b in shim_packet_send_broadcast(fd, ifindex, b.baseAddress, b.count) }
    if n < 0 { logWarning("DHCP: send failed: \(Errno.current.description)") }
}

/// Waits for a reply of one of `types` to `xid`; returns it and its IP source.
private func receiveDHCP(_ fd: Int32, xid: UInt32, mac: [UInt8], types: [DHCPMessageType], until deadline: Int64) -> (DHCPMessage, IPv4Address)? {
    var buf = [UInt8](repeating: 0, count: 2048)
    while true {
        let left = deadline - shim_monotonic_ms()
        if left <= 0 { return nil }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = poll(&pfd, 1, Int32(left))
        if r < 0 && Errno.current == .interrupted { continue }
        if r <= 0 { return nil }
        let n = buf.withUnsafeMutableBytes { b in recv(fd, b.baseAddress, b.count, 0) }
        if n <= 0 { continue }
        // The packet socket sees every IPv4 packet, our own sends included.
        guard let udp = UDPDatagram.decode(Array(buf[0..<n])), udp.destinationPort == dhcpClientPort,
              let m = try? DHCPMessage.decode(udp.payload), m.isReply(to: xid, mac: mac),
              let t = m.messageType, types.contains(t) else { continue }
        return (m, udp.source)
    }
}
