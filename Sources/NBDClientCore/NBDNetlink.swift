// The generic netlink families nbd-client talks to: the controller (to find
// the "nbd" family id and its multicast group) and "nbd" itself.
// Numbers from linux/genetlink.h (CTRL_*) and linux/nbd-netlink.h (NBD_*);
// what the kernel does with each command: nbd-protocol.md section 4.3.

/// The generic netlink controller (linux/genetlink.h).
public enum GenlControl {
    /// GENL_ID_CTRL: the controller's fixed family id.
    public static let family: UInt16 = 0x10
    /// CTRL_CMD_GETFAMILY.
    public static let getFamily: UInt8 = 3
    /// CTRL_ATTR_FAMILY_ID (u16), CTRL_ATTR_FAMILY_NAME (string), CTRL_ATTR_MCAST_GROUPS (nested).
    public static let attrFamilyID: UInt16 = 1
    public static let attrFamilyName: UInt16 = 2
    public static let attrMulticastGroups: UInt16 = 7
    /// CTRL_ATTR_MCAST_GRP_NAME (string), CTRL_ATTR_MCAST_GRP_ID (u32), inside each group entry.
    public static let attrGroupName: UInt16 = 1
    public static let attrGroupID: UInt16 = 2

    /// CTRL_CMD_GETFAMILY for `name`, asking for an ACK.
    public static func getFamilyRequest(name: String, seq: UInt32) -> GenericMessage {
        GenericMessage(family: family, flags: Netlink.flagRequest | Netlink.flagAck, seq: seq,
                       command: getFamily, version: 1, attributes: [.string(attrFamilyName, name)])
    }
}

/// What the controller says about a family.
public struct GenlFamily: Equatable {
    public var id: UInt16
    public var multicastGroups: [MulticastGroup]

    public struct MulticastGroup: Equatable {
        public var name: String
        public var id: UInt32
        public init(name: String, id: UInt32) { self.name = name; self.id = id }
    }

    public init(id: UInt16, multicastGroups: [MulticastGroup]) {
        self.id = id
        self.multicastGroups = multicastGroups
    }

    /// Reads CTRL_ATTR_FAMILY_ID and CTRL_ATTR_MCAST_GROUPS from a GETFAMILY reply.
    public init(reply: GenericMessage) throws(NetlinkError) {
        guard let idAttr = first(GenlControl.attrFamilyID, in: reply.attributes) else {
            throw NetlinkError("the controller's reply has no CTRL_ATTR_FAMILY_ID")
        }
        id = try idAttr.asU16()
        multicastGroups = []
        if let groups = first(GenlControl.attrMulticastGroups, in: reply.attributes) {
            for entry in try groups.children() {
                let fields = try entry.children()
                guard let n = first(GenlControl.attrGroupName, in: fields),
                      let g = first(GenlControl.attrGroupID, in: fields) else { continue }
                multicastGroups.append(MulticastGroup(name: n.asString(), id: try g.asU32()))
            }
        }
    }

    /// The id of the multicast group called `name`.
    public func group(_ name: String) -> UInt32? {
        for g in multicastGroups where g.name == name { return g.id }
        return nil
    }
}

/// The "nbd" generic netlink family (linux/nbd-netlink.h).
public enum NBDGenl {
    public static let familyName = "nbd"
    public static let version: UInt8 = 1
    public static let multicastGroup = "nbd_mc_group"

    // enum { NBD_CMD_UNSPEC, NBD_CMD_CONNECT, ... }
    public static let cmdConnect: UInt8 = 1
    public static let cmdDisconnect: UInt8 = 2
    public static let cmdReconfigure: UInt8 = 3
    public static let cmdLinkDead: UInt8 = 4
    public static let cmdStatus: UInt8 = 5

    // enum { NBD_ATTR_UNSPEC, NBD_ATTR_INDEX, ... }
    public static let attrIndex: UInt16 = 1
    public static let attrSizeBytes: UInt16 = 2
    public static let attrBlockSizeBytes: UInt16 = 3
    public static let attrTimeout: UInt16 = 4
    public static let attrServerFlags: UInt16 = 5
    public static let attrClientFlags: UInt16 = 6
    public static let attrSockets: UInt16 = 7
    public static let attrDeadConnTimeout: UInt16 = 8
    public static let attrDeviceList: UInt16 = 9
    public static let attrBackendIdentifier: UInt16 = 10

    /// NBD_SOCK_ITEM inside NBD_ATTR_SOCKETS, NBD_SOCK_FD inside the item.
    public static let sockItem: UInt16 = 1
    public static let sockFD: UInt16 = 1
    /// NBD_DEVICE_ITEM inside NBD_ATTR_DEVICE_LIST; NBD_DEVICE_INDEX, NBD_DEVICE_CONNECTED inside.
    public static let deviceItem: UInt16 = 1
    public static let deviceIndex: UInt16 = 1
    public static let deviceConnected: UInt16 = 2

    /// NBD_ATTR_SOCKETS { NBD_SOCK_ITEM { NBD_SOCK_FD } ... }.
    public static func sockets(_ fds: [Int32]) -> NetlinkAttribute {
        var items: [NetlinkAttribute] = []
        for fd in fds { items.append(.nest(sockItem, [.u32(sockFD, UInt32(bitPattern: fd))])) }
        return .nest(attrSockets, items)
    }

    static func request(_ family: UInt16, _ seq: UInt32, _ command: UInt8, _ attributes: [NetlinkAttribute]) -> GenericMessage {
        GenericMessage(family: family, flags: Netlink.flagRequest | Netlink.flagAck, seq: seq,
                       command: command, version: version, attributes: attributes)
    }

    /// NBD_CMD_DISCONNECT {INDEX}.
    public static func disconnect(family: UInt16, seq: UInt32, index: UInt32) -> GenericMessage {
        request(family, seq, cmdDisconnect, [.u32(attrIndex, index)])
    }

    /// NBD_CMD_STATUS {INDEX}; the reply holds NBD_ATTR_DEVICE_LIST.
    public static func status(family: UInt16, seq: UInt32, index: UInt32) -> GenericMessage {
        request(family, seq, cmdStatus, [.u32(attrIndex, index)])
    }

    /// NBD_CMD_RECONFIGURE {INDEX, BACKEND_IDENTIFIER, SOCKETS}: the kernel
    /// swaps each fd into a dead socket slot of a running netlink device.
    public static func reconfigure(family: UInt16, seq: UInt32, index: UInt32, identifier: String?, fds: [Int32]) -> GenericMessage {
        var attrs: [NetlinkAttribute] = [.u32(attrIndex, index)]
        if let identifier { attrs.append(.string(attrBackendIdentifier, identifier)) }
        attrs.append(sockets(fds))
        return request(family, seq, cmdReconfigure, attrs)
    }

    /// The device index a NBD_CMD_LINK_DEAD notification names, or nil for other messages.
    public static func linkDeadIndex(_ m: GenericMessage, family: UInt16) -> UInt32? {
        guard m.family == family, m.command == cmdLinkDead, let a = first(attrIndex, in: m.attributes) else { return nil }
        return try? a.asU32()
    }

    /// Whether a NBD_CMD_STATUS reply says device `index` has a live configuration.
    /// nil when the reply does not mention it.
    public static func statusConnected(_ replies: [GenericMessage], index: UInt32) throws(NetlinkError) -> Bool? {
        for m in replies {
            guard let list = first(attrDeviceList, in: m.attributes) else { continue }
            for item in try list.children() where item.type == deviceItem {
                let fields = try item.children()
                guard let i = first(deviceIndex, in: fields), try i.asU32() == index else { continue }
                guard let c = first(deviceConnected, in: fields) else { return false }
                return try c.asU8() != 0
            }
        }
        return nil
    }
}

/// NBD_CMD_CONNECT: everything the kernel needs to start /dev/nbdN on sockets
/// that finished the handshake.
public struct NBDConnectRequest: Equatable {
    public var index: UInt32
    public var size: UInt64
    public var blockSize: UInt64
    /// Transmission flags from the handshake (plus READ_ONLY for -R).
    public var serverFlags: UInt64
    public var timeout: UInt64?
    public var deadConnTimeout: UInt64?
    public var backendIdentifier: String?
    public var fds: [Int32]

    public init(index: UInt32, size: UInt64, blockSize: UInt64, serverFlags: UInt64, fds: [Int32]) {
        self.index = index
        self.size = size
        self.blockSize = blockSize
        self.serverFlags = serverFlags
        self.fds = fds
    }

    /// The message, attributes in the order nbd-client sends them.
    public func message(family: UInt16, seq: UInt32) -> GenericMessage {
        var attrs: [NetlinkAttribute] = [
            .u32(NBDGenl.attrIndex, index),
            .u64(NBDGenl.attrSizeBytes, size),
            .u64(NBDGenl.attrBlockSizeBytes, blockSize),
            .u64(NBDGenl.attrServerFlags, serverFlags),
        ]
        if let timeout { attrs.append(.u64(NBDGenl.attrTimeout, timeout)) }
        if let deadConnTimeout { attrs.append(.u64(NBDGenl.attrDeadConnTimeout, deadConnTimeout)) }
        if let backendIdentifier { attrs.append(.string(NBDGenl.attrBackendIdentifier, backendIdentifier)) }
        attrs.append(NBDGenl.sockets(fds))
        return NBDGenl.request(family, seq, NBDGenl.cmdConnect, attrs)
    }
}
