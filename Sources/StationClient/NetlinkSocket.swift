// A generic netlink socket to the kernel: send a request, gather its answer.
// The bytes are built and parsed by NBDClientCore (Netlink.swift); this file
// only moves them: socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC), bind(2),
// send(2) to the kernel (port id 0, the default destination), recv(2).

/// An error the user sees: one line, and the exit status it leads to.
struct ClientError: Error {
    var message: String
    var exitCode: Int32 = 1
    init(_ message: String, exitCode: Int32 = 1) {
        self.message = message
        self.exitCode = exitCode
    }
    init(_ e: SysError) { message = e.description }
}

/// A bound NETLINK_GENERIC socket and the next sequence number.
struct NetlinkSocket {
    let fd: FileDescriptor
    var seq: UInt32 = 1

    /// Opens and binds the socket; answers wait at most `timeout` seconds.
    static func open(timeout: Int32 = 10) throws(SysError) -> NetlinkSocket {
        let raw = try sysCall("socket", "AF_NETLINK/NETLINK_GENERIC") {
            socket(shim_AF_NETLINK, shim_SOCK_RAW | shim_SOCK_CLOEXEC, shim_NETLINK_GENERIC)
        }
        let fd = FileDescriptor(raw)
        do {
            _ = try sysCall("bind", "netlink socket") { shim_netlink_bind(raw) }
            _ = try sysCall("setsockopt", "SO_RCVTIMEO") { shim_set_receive_timeout(raw, timeout) }
        } catch {
            fd.close()
            throw error
        }
        return NetlinkSocket(fd: fd, seq: 1)
    }

    func close() { fd.close() }

    /// Sends one message to the kernel.
    func send(_ message: GenericMessage) throws(SysError) {
        try fd.sendAll(message.encode())
    }

    /// One datagram: every message the kernel queued in it. Throws EAGAIN when
    /// nothing came within the receive timeout.
    func receive() throws(SysError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 32768)
        let n = try sysCallSize("recv", "netlink socket") {
            buffer.withUnsafeMutableBytes { recv(fd.rawValue, $0.baseAddress, $0.count, 0) }
        }
        return Array(buffer[0..<n])
    }

    /// Sends `message` (built for the sequence number given) and waits for its ACK or error.
    mutating func transact(_ build: (UInt32) -> GenericMessage, doing: String) throws(ClientError) -> NetlinkTransaction.Outcome {
        seq &+= 1
        var transaction = NetlinkTransaction(seq: seq)
        do { try send(build(seq)) } catch { throw ClientError("\(doing): \(error.description)") }
        // Bounded: a reply, its ACK, and whatever multicast traffic interleaves.
        for _ in 0..<256 {
            let bytes: [UInt8]
            do { bytes = try receive() } catch {
                if error.errno == .again { throw ClientError("\(doing): the kernel did not answer within the timeout") }
                throw ClientError("\(doing): \(error.description)")
            }
            let messages: [NetlinkMessage]
            do { messages = try parseMessages(bytes) } catch { throw ClientError("\(doing): \(error.message)") }
            if let outcome = transaction.feed(messages) { return outcome }
        }
        throw ClientError("\(doing): no answer from the kernel among 256 netlink messages")
    }

    /// CTRL_CMD_GETFAMILY: the family's id and multicast groups, or nil when
    /// the kernel does not know it (ENOENT: for "nbd", the module is not loaded).
    mutating func family(_ name: String) throws(ClientError) -> GenlFamily? {
        let outcome = try transact({ GenlControl.getFamilyRequest(name: name, seq: $0) },
                                   doing: "looking up the generic netlink family '\(name)'")
        switch outcome {
        case .failure(let e, _):
            if e == ENOENT { return nil }
            throw ClientError("looking up the generic netlink family '\(name)': \(Errno(e).description)")
        case .success(let replies):
            guard let reply = replies.first else {
                throw ClientError("looking up the generic netlink family '\(name)': the kernel acknowledged without a reply")
            }
            do { return try GenlFamily(reply: reply) } catch { throw ClientError("the kernel's description of '\(name)': \(error.message)") }
        }
    }

    /// setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP): receive the group's notifications.
    func join(group: UInt32) throws(SysError) {
        var g = group
        _ = try sysCall("setsockopt", "NETLINK_ADD_MEMBERSHIP \(group)") {
            setsockopt(fd.rawValue, shim_SOL_NETLINK, shim_NETLINK_ADD_MEMBERSHIP, &g, socklen_t(MemoryLayout<UInt32>.size))
        }
    }
}
