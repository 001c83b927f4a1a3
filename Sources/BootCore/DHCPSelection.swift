// Which DHCP offer the station takes, and which replies answer its REQUEST
// (RFC 2131 sections 3.1 and 4.4.1), without I/O. The socket loop is in
// StationInit/DHCPClient.swift.
//
// A network may hold more than one DHCP server: the site's address server
// and a boot server that adds the root-path (what PXE firmware meets as
// ProxyDHCP), or, in the QEMU test, slirp and a responder on the same hub.
// The first offer is often not the one that says where the root is. So when
// the root comes from DHCP (root=dhcp, nbdroot=dhcp, nbdroot=/NAME) the
// station keeps listening for a short window after the first offer and
// takes the first one that carries a root-path (option 17), or, when none
// came, the first offer. Otherwise it takes the first offer at once, as
// before. The REQUEST then names the chosen server (option 54), and only an
// ACK or NAK from that server counts: other servers' replies are for a
// REQUEST that declined them (RFC 2131 4.3.2). slirp ACKs any REQUEST for
// the address it gave, whatever server it names, and its NAK carries no
// server identifier: the IP source stands in for it, as in DHCPLease.

/// How long the station listens for more offers after the first one when
/// its root comes from DHCP and that offer has no root-path.
public let dhcpOfferWindowMillis: Int64 = 1000

/// The offers of one DISCOVER, and the rule that picks one of them.
public struct DHCPOfferSelection: Sendable {
    /// Look for an offer with a root-path (the root comes from DHCP).
    public let preferRootPath: Bool
    /// How long to wait for such an offer after the first offer.
    public let windowMillis: Int64
    /// The usable offers (with an address), the first of each server, in
    /// arrival order.
    public private(set) var offers: [DHCPLease] = []
    /// When the first usable offer came (the caller's monotonic clock).
    public private(set) var firstMillis: Int64? = nil

    public init(preferRootPath: Bool, windowMillis: Int64 = dhcpOfferWindowMillis) {
        self.preferRootPath = preferRootPath
        self.windowMillis = windowMillis
    }

    /// What `add` made of an offer.
    public enum Added: Equatable, Sendable {
        case added
        /// yiaddr 0: nothing to take (a ProxyDHCP-style offer, or broken).
        case noAddress
        /// The same server again (it answered a repeated DISCOVER).
        case repeated
    }

    /// Records an offer received at `now`.
    public mutating func add(_ offer: DHCPLease, at now: Int64) -> Added {
        if offer.address.isAny { return .noAddress }
        if offers.contains(where: { $0.serverID == offer.serverID }) { return .repeated }
        if firstMillis == nil { firstMillis = now }
        offers.append(offer)
        return .added
    }

    /// Nothing better can come: an offer is in and either any offer will
    /// do or one carries a root-path.
    public var settled: Bool {
        guard !offers.isEmpty else { return false }
        return !preferRootPath || offers.contains { !$0.rootPath.isEmpty }
    }

    /// Until when to listen for offers: nil before the first one (the
    /// caller's own round applies); the first offer's time when any offer
    /// will do, else that time plus the window.
    public var deadline: Int64? {
        guard let f = firstMillis else { return nil }
        return preferRootPath ? f + windowMillis : f
    }

    /// Stop listening at `now`?
    public func isDone(at now: Int64) -> Bool {
        if settled { return true }
        guard let d = deadline else { return false }
        return now >= d
    }

    /// Why an offer was taken.
    public enum Reason: Equatable, Sendable {
        /// Any offer would do: the first one.
        case first
        /// The first offer that carries a root-path.
        case rootPath
        /// The root comes from DHCP, but no offer carried a root-path
        /// within the window: the first offer.
        case noRootPath
    }

    /// The offer to REQUEST and why, or nil while there is none.
    public var choice: (offer: DHCPLease, reason: Reason)? {
        guard let first = offers.first else { return nil }
        if !preferRootPath { return (first, .first) }
        if let r = offers.first(where: { !$0.rootPath.isEmpty }) { return (r, .rootPath) }
        return (first, .noRootPath)
    }

    /// One line for the log: the offer taken, why, and every server that
    /// offered in the `waited` ms since the first offer: `taking the offer
    /// of 10.0.2.15 from 10.0.2.77: it carries a root-path (option 17);
    /// offers in 216 ms from 10.0.2.2, 10.0.2.77`.
    public func report(waited: Int64) -> String {
        guard let c = choice else { return "no offer" }
        let why: String
        switch c.reason {
        case .first: why = "the first offer"
        case .rootPath: why = "it carries a root-path (option 17)"
        case .noRootPath: why = messageText("no offer carried a root-path (option 17) within \(windowMillis) ms, so the first")
        }
        let servers = offers.map { $0.serverID.text }.joined(separator: ", ")
        return messageText("taking the offer of \(c.offer.address.text) from \(c.offer.serverID.text): \(why); offers in \(waited) ms from \(servers)")
    }
}

extension DHCPMessage {
    /// The server that sent this message: option 54, else `source` (the
    /// IP source address); DHCPLease.serverID reads it the same way.
    public func serverIdentifier(source: IPv4Address) -> IPv4Address {
        address(DHCPOptionCode.serverID) ?? source
    }

    /// Is this the ACK or NAK to a REQUEST that named `server` (option 54)?
    /// A reply from any other server answers for an offer the station
    /// declined (RFC 2131 4.3.2) and must be ignored.
    public func answersRequest(to server: IPv4Address, source: IPv4Address) -> Bool {
        guard let t = messageType, t == .ack || t == .nak else { return false }
        return serverIdentifier(source: source) == server
    }
}

extension NBDRoot {
    /// Does the root's server come from DHCP: the whole value from the
    /// root-path (root=dhcp, netroot=dhcp, nbdroot=dhcp, an empty nbdroot=)
    /// or the host from the boot server (nbdroot=/NAME, nbdroot=dhcp,NAME)?
    /// Then the DHCP client prefers an offer with a root-path
    /// (DHCPOfferSelection).
    public var serverFromDHCP: Bool {
        guard let s = server else { return true }
        return s.hostFromDHCP
    }
}
