// The monitor's in-place parsers (ReconnectWire.swift): NBD handshake bytes
// as the spec lays them out (big-endian), netlink messages as the kernel
// sends them (host-endian, little on x86-64), /proc/swaps as the kernel
// prints it. Golden bytes are written by hand from those layouts.
import XCTest
@testable import NBDClientCore
import NBDWire

final class ReconnectWireTests: XCTestCase {
    let nbdMagic: [UInt8] = Array("NBDMAGIC".utf8)
    let ihaveopt: [UInt8] = Array("IHAVEOPT".utf8)

    func testGreetingFlags() {
        XCTAssertEqual(ReconnectWire.greetingFlags(nbdMagic + ihaveopt + [0, 3]), 3)
        // Oldstyle second magic, a wrong first magic, a short buffer.
        XCTAssertNil(ReconnectWire.greetingFlags(nbdMagic + [0, 0, 0x42, 0x02, 0x81, 0x86, 0x12, 0x53] + [0, 3]))
        XCTAssertNil(ReconnectWire.greetingFlags(Array("NBDMAGIX".utf8) + ihaveopt + [0, 3]))
        XCTAssertNil(ReconnectWire.greetingFlags(nbdMagic + ihaveopt))
    }

    func testOldstyleExport() {
        var g = nbdMagic + [0, 0, 0x42, 0x02, 0x81, 0x86, 0x12, 0x53]
        g += [0, 0, 0, 0, 0, 0x10, 0, 0]  // size 1 MiB
        g += [0, 0, 0, 0x03]              // flags HAS_FLAGS|READ_ONLY
        g += [UInt8](repeating: 0, count: 124)
        let e = ReconnectWire.oldstyleExport(g)
        XCTAssertEqual(e?.size, 0x10_0000)
        XCTAssertEqual(e?.flags, 3)
        XCTAssertNil(ReconnectWire.oldstyleExport(Array(g.prefix(100))))
    }

    func testClientFlags() {
        var out: [UInt8] = [9, 9, 9, 9]
        XCTAssertTrue(ReconnectWire.clientFlags(3, into: &out))
        XCTAssertEqual(out, [0, 0, 0, 3])
        XCTAssertFalse(ReconnectWire.clientFlags(1, into: &out))
        XCTAssertEqual(out, [0, 0, 0, 1])
        XCTAssertFalse(ReconnectWire.clientFlags(0, into: &out))
        XCTAssertEqual(out, [0, 0, 0, 0])
    }

    func testOptionReplyAndInfo() {
        let header: [UInt8] = [0, 0x03, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9,  0, 0, 0, 7,  0, 0, 0, 3,  0, 0, 0, 12]
        let h = ReconnectWire.optionReply(header)
        XCTAssertEqual(h?.option, 7)  // NBD_OPT_GO
        XCTAssertEqual(h?.type, ReconnectWire.replyInfo)
        XCTAssertEqual(h?.length, 12)
        XCTAssertNil(ReconnectWire.optionReply([1] + header.dropFirst()))
        let info: [UInt8] = [0, 0,  0, 0, 0, 0, 0x04, 0, 0, 0,  0, 0x4d]
        let e = ReconnectWire.infoExport(info, length: 12)
        XCTAssertEqual(e?.size, 0x400_0000)
        XCTAssertEqual(e?.flags, 0x4d)
        // NBD_INFO_BLOCK_SIZE (3) is not the export.
        XCTAssertNil(ReconnectWire.infoExport([0, 3] + [UInt8](repeating: 0, count: 12), length: 14))
    }

    func testExportNameReply() {
        let r = ReconnectWire.exportNameReply([0, 0, 0, 0, 0, 0, 0x20, 0,  0, 0x01])
        XCTAssertEqual(r.size, 0x2000)
        XCTAssertEqual(r.flags, 1)
    }

    func testScriptRepeatsTheFirstRoute() {
        let go = ReconnectScript(exportName: "root", export: NegotiatedExport(size: 512, flags: .hasFlags, via: .go), preinit: false)
        // IHAVEOPT, NBD_OPT_GO (7), length 12: name length 4, "root", 1 info request, NBD_INFO_BLOCK_SIZE (3).
        XCTAssertEqual(go.option, ihaveopt + [0, 0, 0, 7,  0, 0, 0, 12,  0, 0, 0, 4] + Array("root".utf8) + [0, 1, 0, 3])
        XCTAssertEqual(go.greetingSize, 18)
        let named = ReconnectScript(exportName: "root", export: NegotiatedExport(size: 512, flags: .hasFlags, via: .exportName), preinit: false)
        XCTAssertEqual(named.option, ihaveopt + [0, 0, 0, 1,  0, 0, 0, 4] + Array("root".utf8))
        let old = ReconnectScript(exportName: "", export: NegotiatedExport(size: 512, flags: .hasFlags, via: .oldstyle), preinit: false)
        XCTAssertEqual(old.greetingSize, 152)
    }

    // MARK: netlink

    /// nlmsghdr: len, type, flags, seq, pid (little-endian).
    func header(_ length: Int, _ type: UInt16, _ seq: UInt32) -> [UInt8] {
        le32(UInt32(length)) + [UInt8(type & 0xff), UInt8(type >> 8), 0, 0] + le32(seq) + le32(0)
    }

    func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }

    func testAckError() {
        // NLMSG_ERROR with error -16 (EBUSY) for seq 5, after an unrelated one for seq 4.
        var b = header(36, 2, 4) + le32(0) + header(16, 0x1a, 4)
        b += header(36, 2, 5) + le32(UInt32(bitPattern: -16)) + header(16, 0x1a, 5)
        XCTAssertEqual(NetlinkScan.ackError(b, count: b.count, seq: 5), 16)
        XCTAssertEqual(NetlinkScan.ackError(b, count: b.count, seq: 4), 0)
        XCTAssertNil(NetlinkScan.ackError(b, count: b.count, seq: 6))
        // Only the first message counts when `count` says so.
        XCTAssertNil(NetlinkScan.ackError(b, count: 36, seq: 5))
    }

    func testSetSequence() {
        var m = NBDGenl.status(family: 0x1a, seq: 0, index: 1).encode()
        NetlinkScan.setSequence(&m, 0x0102_0304)
        XCTAssertEqual(m, NBDGenl.status(family: 0x1a, seq: 0x0102_0304, index: 1).encode())
    }

    func testLinkDeadCount() {
        // NBD_CMD_LINK_DEAD (4) for index 0, for index 1, and a STATUS (5) for index 1.
        func event(_ cmd: UInt8, _ index: UInt32) -> [UInt8] {
            header(28, 0x1a, 0) + [cmd, 1, 0, 0] + [8, 0, 1, 0] + le32(index)
        }
        let b = event(4, 0) + event(4, 1) + event(5, 1) + event(4, 1)
        XCTAssertEqual(NetlinkScan.linkDeadCount(b, count: b.count, family: 0x1a, index: 1), 2)
        XCTAssertEqual(NetlinkScan.linkDeadCount(b, count: b.count, family: 0x1a, index: 0), 1)
        XCTAssertEqual(NetlinkScan.linkDeadCount(b, count: b.count, family: 0x1b, index: 1), 0)
        // A truncated message is not read past.
        XCTAssertEqual(NetlinkScan.linkDeadCount(b, count: 40, family: 0x1a, index: 0), 1)
        XCTAssertEqual(NetlinkScan.linkDeadCount(b, count: 40, family: 0x1a, index: 1), 0)
    }

    func testStatusConnected() {
        // STATUS reply: DEVICE_LIST { DEVICE_ITEM { INDEX 2, CONNECTED 1 } }.
        let item: [UInt8] = [8, 0, 1, 0] + le32(2) + [5, 0, 2, 0, 1, 0, 0, 0]
        let list: [UInt8] = [UInt8(4 + item.count), 0, 1, 0x80] + item
        let attr: [UInt8] = [UInt8(4 + list.count), 0, 9, 0x80] + list
        let reply = header(16 + 4 + attr.count, 0x1a, 9) + [5, 1, 0, 0] + attr
        XCTAssertEqual(NetlinkScan.statusConnected(reply, count: reply.count, seq: 9, family: 0x1a, index: 2), true)
        XCTAssertEqual(NetlinkScan.statusConnected(reply, count: reply.count, seq: 9, family: 0x1a, index: 3), false)
        XCTAssertNil(NetlinkScan.statusConnected(reply, count: reply.count, seq: 8, family: 0x1a, index: 2))
        var off = reply
        off[off.count - 4] = 0  // CONNECTED 0
        XCTAssertEqual(NetlinkScan.statusConnected(off, count: off.count, seq: 9, family: 0x1a, index: 2), false)
        // The same bytes through the allocating parser agree.
        let parsed = try? parseMessages(reply)
        if case .generic(let m)? = parsed?.first {
            XCTAssertEqual(try? NBDGenl.statusConnected([m], index: 2), true)
        } else {
            XCTFail("parseMessages did not read the STATUS reply")
        }
    }

    // MARK: /proc/swaps

    func testSwapsMention() {
        let text = """
        Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority
        /dev/nbd1                               partition\t524284\t\t0\t\t-2
        /swapfile                               file\t\t65532\t\t0\t\t-3
        /dev/nbd12p3                            partition\t1024\t\t0\t\t-4

        """
        let b = Array(text.utf8)
        XCTAssertTrue(swapsMention(b, count: b.count, device: Array("nbd1".utf8)))
        XCTAssertTrue(swapsMention(b, count: b.count, device: Array("nbd12".utf8)))
        XCTAssertFalse(swapsMention(b, count: b.count, device: Array("nbd0".utf8)))
        XCTAssertFalse(swapsMention(b, count: b.count, device: Array("nbd2".utf8)))
        // Only the bytes read count.
        XCTAssertFalse(swapsMention(b, count: 40, device: Array("nbd1".utf8)))
        // A header alone, or nothing.
        XCTAssertFalse(swapsMention(Array("Filename Type\n".utf8), count: 14, device: Array("nbd1".utf8)))
        XCTAssertFalse(swapsMention([], count: 0, device: Array("nbd1".utf8)))
        XCTAssertEqual(swapAreaCount(b, count: b.count), 3)
        XCTAssertEqual(swapAreaCount(Array("Filename Type\n".utf8), count: 14), 0)
        XCTAssertEqual(swapAreaCount([], count: 0), 0)
    }
}
