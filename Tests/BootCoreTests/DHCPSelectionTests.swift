import XCTest
@testable import BootCore

/// Which offer the station takes, and which ACK/NAK answers its REQUEST.
final class DHCPSelectionTests: XCTestCase {
    let mac: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
    let slirp = IPv4Address(10, 0, 2, 2)
    let boot = IPv4Address(10, 0, 2, 77)
    let station = IPv4Address(10, 0, 2, 15)

    /// A reply as a server sends it: type, yiaddr, server id (nil: none), root-path.
    func reply(_ type: DHCPMessageType, from server: IPv4Address?, address: IPv4Address? = nil,
               rootPath: String = "") -> DHCPMessage {
        var options = [DHCPOption(DHCPOptionCode.messageType, [type.rawValue])]
        if let server { options.append(DHCPOption(DHCPOptionCode.serverID, server.bytes)) }
        options.append(DHCPOption(DHCPOptionCode.subnetMask, [255, 255, 255, 0]))
        if !rootPath.isEmpty { options.append(DHCPOption(DHCPOptionCode.rootPath, Array(rootPath.utf8))) }
        return DHCPMessage(op: 2, xid: 7, yiaddr: address ?? station, siaddr: slirp, chaddr: mac, options: options)
    }

    func offer(from server: IPv4Address, rootPath: String = "", address: IPv4Address? = nil) -> DHCPLease {
        DHCPLease(reply(.offer, from: server, address: address, rootPath: rootPath), source: server)
    }

    /// A normal boot (the root's server is on the command line): the first
    /// offer settles it at once, no window.
    func testFirstOfferWhenTheRootIsNotFromDHCP() {
        var s = DHCPOfferSelection(preferRootPath: false)
        XCTAssertFalse(s.isDone(at: 0))
        XCTAssertNil(s.deadline)
        XCTAssertNil(s.choice)
        XCTAssertEqual(s.add(offer(from: slirp), at: 100), .added)
        XCTAssertTrue(s.settled)
        XCTAssertTrue(s.isDone(at: 100))
        XCTAssertEqual(s.deadline, 100)
        XCTAssertEqual(s.choice?.offer.serverID, slirp)
        XCTAssertEqual(s.choice?.reason, .first)
        XCTAssertEqual(s.report(waited: 0), "taking the offer of 10.0.2.15 from 10.0.2.2: the first offer; offers in 0 ms from 10.0.2.2")
    }

    /// The QEMU test's case: slirp's offer (no root-path) first, the boot
    /// server's with option 17 later: wait for it, take it.
    func testRootPathOfferWinsWithinTheWindow() {
        var s = DHCPOfferSelection(preferRootPath: true)
        XCTAssertEqual(s.add(offer(from: slirp), at: 100), .added)
        XCTAssertFalse(s.settled)
        XCTAssertEqual(s.deadline, 100 + dhcpOfferWindowMillis)
        XCTAssertFalse(s.isDone(at: 300))
        XCTAssertEqual(s.choice?.offer.serverID, slirp, "before the window ends the first offer is the fallback")
        XCTAssertEqual(s.choice?.reason, .noRootPath)
        XCTAssertEqual(s.add(offer(from: boot, rootPath: "10.0.2.2:22345/opt17"), at: 300), .added)
        XCTAssertTrue(s.settled)
        XCTAssertTrue(s.isDone(at: 300))
        XCTAssertEqual(s.choice?.offer.serverID, boot)
        XCTAssertEqual(s.choice?.offer.rootPath, "10.0.2.2:22345/opt17")
        XCTAssertEqual(s.choice?.reason, .rootPath)
        XCTAssertEqual(s.report(waited: 200), "taking the offer of 10.0.2.15 from 10.0.2.77: it carries a root-path (option 17); offers in 200 ms from 10.0.2.2, 10.0.2.77")
    }

    /// A root-path in the first offer ends the wait at once.
    func testRootPathInTheFirstOfferSettlesAtOnce() {
        var s = DHCPOfferSelection(preferRootPath: true)
        XCTAssertEqual(s.add(offer(from: boot, rootPath: "nbd:10.0.2.2:10809"), at: 50), .added)
        XCTAssertTrue(s.isDone(at: 50))
        XCTAssertEqual(s.choice?.offer.serverID, boot)
        XCTAssertEqual(s.choice?.reason, .rootPath)
    }

    /// No root-path within the window: the first offer, once the window is over.
    func testNoRootPathFallsBackToTheFirstOfferAfterTheWindow() {
        var s = DHCPOfferSelection(preferRootPath: true, windowMillis: 500)
        XCTAssertEqual(s.add(offer(from: slirp), at: 1000), .added)
        XCTAssertEqual(s.add(offer(from: IPv4Address(10, 0, 2, 3), address: IPv4Address(10, 0, 2, 16)), at: 1200), .added)
        XCTAssertFalse(s.isDone(at: 1499))
        XCTAssertTrue(s.isDone(at: 1500))
        XCTAssertEqual(s.choice?.offer.serverID, slirp)
        XCTAssertEqual(s.choice?.reason, .noRootPath)
        XCTAssertEqual(s.report(waited: 500), "taking the offer of 10.0.2.15 from 10.0.2.2: no offer carried a root-path (option 17) within 500 ms, so the first; offers in 500 ms from 10.0.2.2, 10.0.2.3")
    }

    /// Of two offers with a root-path, the first; offers without an
    /// address and a server's repeated offer are not counted, and the
    /// window runs from the first usable offer.
    func testFirstRootPathOfferAndIgnoredOffers() {
        var s = DHCPOfferSelection(preferRootPath: true)
        XCTAssertEqual(s.add(offer(from: boot, rootPath: "x/y", address: .any), at: 10), .noAddress)
        XCTAssertNil(s.firstMillis)
        XCTAssertEqual(s.add(offer(from: slirp), at: 20), .added)
        XCTAssertEqual(s.add(offer(from: slirp, rootPath: "late/z"), at: 30), .repeated)
        XCTAssertFalse(s.settled, "a repeated offer is not looked at again")
        XCTAssertEqual(s.add(offer(from: boot, rootPath: "10.0.2.2/a"), at: 40), .added)
        XCTAssertEqual(s.add(offer(from: IPv4Address(10, 0, 2, 99), rootPath: "10.0.2.2/b"), at: 41), .added)
        XCTAssertEqual(s.offers.count, 3)
        XCTAssertEqual(s.firstMillis, 20)
        XCTAssertEqual(s.choice?.offer.rootPath, "10.0.2.2/a")
    }

    /// RFC 2131 4.3.2: only the chosen server's ACK or NAK answers the REQUEST.
    /// slirp ACKs a REQUEST naming another server, with its own server id;
    /// its NAK carries no server id, so the IP source stands in.
    func testOnlyTheChosenServersReplyAnswersTheRequest() throws {
        XCTAssertTrue(reply(.ack, from: boot).answersRequest(to: boot, source: boot))
        XCTAssertTrue(reply(.ack, from: boot).answersRequest(to: boot, source: IPv4Address(10, 0, 2, 1)),
                      "option 54 counts, not the relay's or router's source address")
        XCTAssertFalse(reply(.ack, from: slirp).answersRequest(to: boot, source: slirp))
        XCTAssertFalse(reply(.ack, from: slirp).answersRequest(to: boot, source: boot), "option 54 wins over the source")
        XCTAssertTrue(reply(.nak, from: nil).answersRequest(to: slirp, source: slirp))
        XCTAssertFalse(reply(.nak, from: nil).answersRequest(to: boot, source: slirp))
        XCTAssertFalse(reply(.offer, from: boot).answersRequest(to: boot, source: boot), "an OFFER is no answer to a REQUEST")
        XCTAssertEqual(reply(.nak, from: nil).serverIdentifier(source: slirp), slirp)
        XCTAssertEqual(reply(.ack, from: boot).serverIdentifier(source: slirp), boot)
        // The same rule on the wire bytes of slirp's ACK (DHCPTests.handAck: server id 10.0.2.3).
        let wire = try DHCPMessage.decode(reply(.ack, from: IPv4Address(10, 0, 2, 3)).encode())
        XCTAssertFalse(wire.answersRequest(to: boot, source: slirp))
        XCTAssertTrue(wire.answersRequest(to: IPv4Address(10, 0, 2, 3), source: slirp))
    }

    /// The root comes from DHCP (and the client then prefers a root-path
    /// offer) for every form without a server of its own.
    func testServerFromDHCP() throws {
        let fromDHCP: [(String?, String?, String?)] = [
            ("dhcp", nil, nil), ("", nil, nil), (nil, "dhcp", nil), (nil, nil, "dhcp"),
            ("/root", nil, nil), (":10810/root", nil, nil), ("dhcp,root", nil, nil), (",root,nbd1", nil, nil),
        ]
        for (nbdroot, root, netroot) in fromDHCP {
            let r = try NBDRoot.parse(nbdroot: nbdroot, root: root, nbddev: nil, netroot: netroot)
            XCTAssertTrue(r.serverFromDHCP, "nbdroot=\(nbdroot ?? "nil") root=\(root ?? "nil") netroot=\(netroot ?? "nil")")
        }
        let fromCommandLine: [(String?, String?, String?)] = [
            ("10.0.2.2/root", nil, nil), ("10.0.2.2,root", nil, nil), ("nbd://10.0.2.2/root", nil, nil),
            (nil, "nbd:10.0.2.2:10809", nil), (nil, "nbd://10.0.2.2:10809/root", nil),
            (nil, "/dev/root", "nbd:10.0.2.2:root"), ("dhcp", "nbd:10.0.2.2:10809", nil),
        ]
        for (nbdroot, root, netroot) in fromCommandLine {
            let r = try NBDRoot.parse(nbdroot: nbdroot, root: root, nbddev: nil, netroot: netroot)
            XCTAssertFalse(r.serverFromDHCP, "nbdroot=\(nbdroot ?? "nil") root=\(root ?? "nil") netroot=\(netroot ?? "nil")")
        }
    }
}
