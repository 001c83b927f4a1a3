// Netlink messages byte for byte. Every golden array below was written by hand
// from the uapi layouts (linux/netlink.h: nlmsghdr 16 bytes, nlattr 4 bytes,
// NLA_ALIGN 4; linux/genetlink.h: genlmsghdr 4 bytes; linux/nbd-netlink.h:
// the NBD_ATTR_* numbers), host byte order = little endian on x86-64/arm64.
import XCTest
@testable import NBDClientCore

final class NetlinkTests: XCTestCase {
    func testGetFamilyRequest() {
        let bytes = GenlControl.getFamilyRequest(name: "nbd", seq: 1).encode()
        XCTAssertEqual(bytes, [
            0x1c, 0, 0, 0,  0x10, 0,  0x05, 0,  1, 0, 0, 0,  0, 0, 0, 0,  // len 28, GENL_ID_CTRL, REQUEST|ACK, seq 1, pid 0
            3, 1, 0, 0,                                                    // CTRL_CMD_GETFAMILY, version 1
            8, 0, 2, 0,  0x6e, 0x62, 0x64, 0,                              // CTRL_ATTR_FAMILY_NAME "nbd\0"
        ])
    }

    func testDisconnectRequest() {
        let bytes = NBDGenl.disconnect(family: 0x1a, seq: 7, index: 3).encode()
        XCTAssertEqual(bytes, [
            0x1c, 0, 0, 0,  0x1a, 0,  0x05, 0,  7, 0, 0, 0,  0, 0, 0, 0,
            2, 1, 0, 0,                                                    // NBD_CMD_DISCONNECT, NBD_GENL_VERSION
            8, 0, 1, 0,  3, 0, 0, 0,                                       // NBD_ATTR_INDEX = 3
        ])
    }

    func testConnectRequest() {
        var r = NBDConnectRequest(index: 0, size: 0x80_0000, blockSize: 512, serverFlags: 0x0d, fds: [5])
        r.backendIdentifier = "h:1/x"
        let bytes = r.message(family: 0x1a, seq: 2).encode()
        XCTAssertEqual(bytes, [
            0x5c, 0, 0, 0,  0x1a, 0,  0x05, 0,  2, 0, 0, 0,  0, 0, 0, 0,  // len 92
            1, 1, 0, 0,                                                    // NBD_CMD_CONNECT
            8, 0, 1, 0,  0, 0, 0, 0,                                       // INDEX 0
            12, 0, 2, 0,  0, 0, 0x80, 0, 0, 0, 0, 0,                       // SIZE_BYTES 8 MiB (u64)
            12, 0, 3, 0,  0, 2, 0, 0, 0, 0, 0, 0,                          // BLOCK_SIZE_BYTES 512
            12, 0, 5, 0,  0x0d, 0, 0, 0, 0, 0, 0, 0,                       // SERVER_FLAGS
            10, 0, 10, 0,  0x68, 0x3a, 0x31, 0x2f, 0x78, 0,  0, 0,         // BACKEND_IDENTIFIER "h:1/x\0" + 2 pad
            16, 0, 7, 0x80,                                                // SOCKETS, NLA_F_NESTED
            12, 0, 1, 0x80,                                                //   SOCK_ITEM, NLA_F_NESTED
            8, 0, 1, 0,  5, 0, 0, 0,                                       //     SOCK_FD 5
        ])
    }

    func testConnectWithTimeouts() throws {
        var r = NBDConnectRequest(index: 2, size: 4096, blockSize: 4096, serverFlags: 3, fds: [7, 8])
        r.timeout = 30
        r.deadConnTimeout = 600
        let m = r.message(family: 0x1a, seq: 1)
        let parsed = try parseMessages(m.encode())
        XCTAssertEqual(parsed, [.generic(m)])
        XCTAssertEqual(try first(NBDGenl.attrTimeout, in: m.attributes)?.asU64(), 30)
        XCTAssertEqual(try first(NBDGenl.attrDeadConnTimeout, in: m.attributes)?.asU64(), 600)
        let sockets = try XCTUnwrap(first(NBDGenl.attrSockets, in: m.attributes))
        var fds: [UInt32] = []
        for item in try sockets.children() { fds.append(try XCTUnwrap(first(NBDGenl.sockFD, in: try item.children())).asU32()) }
        XCTAssertEqual(fds, [7, 8])
    }

    func testReconfigureRequest() {
        let bytes = NBDGenl.reconfigure(family: 0x1a, seq: 4, index: 0, identifier: "a", fds: [9]).encode()
        XCTAssertEqual(bytes, [
            0x34, 0, 0, 0,  0x1a, 0,  0x05, 0,  4, 0, 0, 0,  0, 0, 0, 0,  // len 52
            3, 1, 0, 0,                                                    // NBD_CMD_RECONFIGURE
            8, 0, 1, 0,  0, 0, 0, 0,                                       // INDEX 0
            6, 0, 10, 0,  0x61, 0, 0, 0,                                   // BACKEND_IDENTIFIER "a\0" + 2 pad
            16, 0, 7, 0x80,  12, 0, 1, 0x80,  8, 0, 1, 0,  9, 0, 0, 0,     // SOCKETS { ITEM { FD 9 } }
        ])
    }

    /// A GETFAMILY reply as the kernel lays it out (the controller nests
    /// without NLA_F_NESTED), followed in the same datagram by the ACK.
    let familyReply: [UInt8] = [
        0x50, 0, 0, 0,  0x10, 0,  0, 0,  1, 0, 0, 0,  0, 0, 0, 0,         // len 80, GENL_ID_CTRL, seq 1
        1, 2, 0, 0,                                                        // CTRL_CMD_NEWFAMILY, version 2
        8, 0, 2, 0,  0x6e, 0x62, 0x64, 0,                                  // FAMILY_NAME "nbd"
        6, 0, 1, 0,  0x1a, 0,  0, 0,                                       // FAMILY_ID 0x1a (u16) + pad
        8, 0, 3, 0,  1, 0, 0, 0,                                           // CTRL_ATTR_VERSION 1 (ignored)
        36, 0, 7, 0,                                                       // MCAST_GROUPS
        32, 0, 1, 0,                                                       //   group #1
        8, 0, 2, 0,  5, 0, 0, 0,                                           //     GRP_ID 5
        17, 0, 1, 0,  0x6e, 0x62, 0x64, 0x5f, 0x6d, 0x63, 0x5f, 0x67, 0x72, 0x6f, 0x75, 0x70, 0,  0, 0, 0,  // GRP_NAME "nbd_mc_group"
        // NLMSG_ERROR with error 0: the ACK, echoing our request header.
        0x24, 0, 0, 0,  2, 0,  0, 0,  1, 0, 0, 0,  0, 0, 0, 0,
        0, 0, 0, 0,
        0x1c, 0, 0, 0,  0x10, 0,  0x05, 0,  1, 0, 0, 0,  0, 0, 0, 0,
    ]

    func testFamilyReplyAndAck() throws {
        let messages = try parseMessages(familyReply)
        XCTAssertEqual(messages.count, 2)
        guard case .generic(let reply) = messages[0] else { return XCTFail("first message is \(messages[0])") }
        let family = try GenlFamily(reply: reply)
        XCTAssertEqual(family.id, 0x1a)
        XCTAssertEqual(family.multicastGroups, [GenlFamily.MulticastGroup(name: "nbd_mc_group", id: 5)])
        XCTAssertEqual(family.group(NBDGenl.multicastGroup), 5)
        XCTAssertEqual(messages[1], .error(seq: 1, errno: 0))

        var t = NetlinkTransaction(seq: 1)
        XCTAssertEqual(t.feed(messages), .success([reply]))
    }

    /// The same bytes fed one message at a time: the transaction waits for the ACK.
    func testTransactionWaitsForAck() throws {
        let messages = try parseMessages(familyReply)
        var t = NetlinkTransaction(seq: 1)
        XCTAssertNil(t.feed([messages[0]]))
        guard case .success(let replies)? = t.feed([messages[1]]) else { return XCTFail("no success") }
        XCTAssertEqual(replies.count, 1)
    }

    func testErrorReply() throws {
        // NLMSG_ERROR, error -EBUSY (-16), answering seq 3.
        let bytes: [UInt8] = [
            0x24, 0, 0, 0,  2, 0,  0, 1,  3, 0, 0, 0,  0, 0, 0, 0,
            0xf0, 0xff, 0xff, 0xff,
            0x30, 0, 0, 0,  0x1a, 0,  0x05, 0,  3, 0, 0, 0,  0, 0, 0, 0,
        ]
        let messages = try parseMessages(bytes)
        XCTAssertEqual(messages, [.error(seq: 3, errno: -16)])
        var t = NetlinkTransaction(seq: 3)
        XCTAssertEqual(t.feed(messages), .failure(errno: 16, replies: []))
    }

    /// A LINK_DEAD multicast (seq 0) arriving mid-transaction is not our answer.
    func testLinkDeadAndTransactionSkipsNotifications() throws {
        let bytes: [UInt8] = [
            0x1c, 0, 0, 0,  0x1a, 0,  0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            4, 1, 0, 0,                                                    // NBD_CMD_LINK_DEAD
            8, 0, 1, 0,  2, 0, 0, 0,                                       // INDEX 2
        ]
        let messages = try parseMessages(bytes)
        guard case .generic(let m) = messages.first else { return XCTFail("not generic") }
        XCTAssertEqual(NBDGenl.linkDeadIndex(m, family: 0x1a), 2)
        XCTAssertNil(NBDGenl.linkDeadIndex(m, family: 0x1b))
        var t = NetlinkTransaction(seq: 9)
        XCTAssertNil(t.feed(messages))
        XCTAssertEqual(t.replies, [])
    }

    func testStatusReply() throws {
        let bytes: [UInt8] = [
            0x2c, 0, 0, 0,  0x1a, 0,  0, 0,  5, 0, 0, 0,  0, 0, 0, 0,     // len 44, seq 5
            5, 1, 0, 0,                                                    // NBD_CMD_STATUS
            24, 0, 9, 0x80,                                                // DEVICE_LIST
            20, 0, 1, 0x80,                                                //   DEVICE_ITEM
            8, 0, 1, 0,  0, 0, 0, 0,                                       //     DEVICE_INDEX 0
            5, 0, 2, 0,  1, 0, 0, 0,                                       //     DEVICE_CONNECTED 1 (u8) + pad
        ]
        let messages = try parseMessages(bytes)
        guard case .generic(let m) = messages.first else { return XCTFail("not generic") }
        XCTAssertEqual(try NBDGenl.statusConnected([m], index: 0), true)
        XCTAssertNil(try NBDGenl.statusConnected([m], index: 1))
    }

    func testStatusRequest() {
        XCTAssertEqual(NBDGenl.status(family: 0x1a, seq: 6, index: 1).encode(), [
            0x1c, 0, 0, 0,  0x1a, 0,  0x05, 0,  6, 0, 0, 0,  0, 0, 0, 0,
            5, 1, 0, 0,
            8, 0, 1, 0,  1, 0, 0, 0,
        ])
    }

    func testTruncatedInputThrows() {
        XCTAssertThrowsError(try parseMessages([0x40, 0, 0, 0, 0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0]))
        XCTAssertThrowsError(try parseAttributes([9, 0, 1, 0, 1, 2, 3]))
        XCTAssertThrowsError(try parseAttributes([2, 0, 1, 0]))
        XCTAssertThrowsError(try NetlinkAttribute.u8(1, 1).asU32())
        // A GETFAMILY reply without FAMILY_ID.
        let m = GenericMessage(family: 0x10, flags: 0, seq: 1, command: 1, version: 2, attributes: [.string(2, "nbd")])
        XCTAssertThrowsError(try GenlFamily(reply: m))
    }

    /// Round trip of every attribute kind, and the 4-byte alignment.
    func testRoundTripAndAlignment() throws {
        let attrs: [NetlinkAttribute] = [.u8(1, 7), .u16(2, 0x1234), .u32(3, 0xdead_beef), .u64(4, 1 << 40),
                                         .string(5, "abcde"), .nest(6, [.u32(1, 1), .string(2, "")])]
        var bytes: [UInt8] = []
        for a in attrs { a.encode(into: &bytes) }
        XCTAssertEqual(bytes.count % 4, 0)
        let back = try parseAttributes(bytes)
        XCTAssertEqual(back, attrs)
        XCTAssertEqual(try back[1].asU16(), 0x1234)
        XCTAssertEqual(back[4].asString(), "abcde")
        XCTAssertEqual(try back[5].children()[1].asString(), "")
    }
}
