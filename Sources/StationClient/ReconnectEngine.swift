// The resident monitor's reconnect path, with no memory allocation once it
// is prepared: dial a pre-resolved address, replay the handshake the first
// connection used (bytes built at start, answers parsed in place by
// NBDClientCore/ReconnectWire.swift), hand the socket to the kernel with a
// prebuilt NBD_CMD_RECONFIGURE, and log with a preallocated line buffer.
//
// Why: for a device that holds swap (or the root), a fault or a malloc that
// has to reclaim memory may wait on writes to the very device that is dead,
// and nothing would ever reconnect it (nbd-protocol.md 5.5). prepare() builds
// everything while memory is plentiful; lock() then pins it (mlockall) with
// the rest of the process.
//
// The socket number inside the prebuilt RECONFIGURE is a reserved fd: the
// new socket is dup2()ed onto it before sending, and /dev/null back after
// (the kernel holds its own reference by then).

/// One line for standard error (the kernel log once daemonized), built in a
/// buffer allocated once; written with a single write(2).
struct LogLine {
    var bytes: [UInt8]
    var count = 0

    init(capacity: Int = 512) { bytes = [UInt8](repeating: 0, count: capacity) }

    mutating func start() {
        count = 0
        add("nbd-client: ")
    }

    mutating func put(_ b: UInt8) {
        if count < bytes.count - 1 {
            bytes[count] = b
            count += 1
        }
    }

    mutating func add(_ s: StaticString) {
        let p = s.utf8Start
        for i in 0..<s.utf8CodeUnitCount { put(p[i]) }
    }

    /// A string prepared before (its UTF-8 view is read in place).
    mutating func add(_ s: String) { for b in s.utf8 { put(b) } }

    mutating func add(_ n: UInt64) {
        var digits = 1
        var t = n
        while t >= 10 { t /= 10; digits += 1 }
        guard count + digits < bytes.count else { return }
        var v = n
        var i = count + digits - 1
        while i >= count {
            bytes[i] = UInt8(48 + v % 10)
            v /= 10
            i -= 1
        }
        count += digits
    }

    mutating func emit() {
        put(10)
        let n = count
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, n) }
        count = 0
    }
}

/// A socket address built before the monitor runs: TCP from the resolved
/// list, or AF_UNIX from the path.
struct PreparedAddress {
    var family: Int32
    var storage: sockaddr_storage
    var length: Int32
}

/// How one attempt ended.
enum AttemptResult {
    /// A negotiated socket for the same export.
    case socket(Int32)
    /// A system call failed: which, and its errno.
    case system(StaticString, Int32)
    /// The server closed the connection during the handshake.
    case closed
    /// The server answered, but not as the first time.
    case handshake(ReconnectFailure)
}

struct ReconnectEngine {
    var script: ReconnectScript
    var addresses: [PreparedAddress]
    /// The server as text ("10.0.2.2:10809"), formatted once.
    var serverText: String
    /// Handshake reads; option replies longer than this are skipped through it.
    var buffer: [UInt8]
    var clientFlags: [UInt8]
    /// Netlink answers and notifications.
    var netlinkBuffer: [UInt8]
    var reconfigure: [UInt8]
    var status: [UInt8]
    var seq: UInt32 = 1000
    var reservedFd: Int32
    var nullFd: Int32
    var line = LogLine()
    /// /proc/swaps, kept open (after switch_root no path would reach it).
    var swapsFd: Int32
    var deviceName: [UInt8]

    static let connectTimeoutSeconds: Int32 = 10

    /// Builds every buffer and message. Runs before the monitor locks itself.
    static func prepare(dialer: Dialer, options: ConnectOptions, export: NegotiatedExport,
                        family: UInt16, device: NBDDevice, identifier: String?) -> ReconnectEngine? {
        var prepared: [PreparedAddress] = []
        switch dialer.server {
        case .unix(let path):
            var ss = sockaddr_storage()
            let len = shim_sockaddr_unix(&ss, path)
            if len < 0 { return nil }
            prepared.append(PreparedAddress(family: shim_AF_UNIX, storage: ss, length: len))
        case .tcp:
            for a in dialer.addresses { prepared.append(PreparedAddress(family: a.family, storage: a.storage, length: Int32(a.length))) }
        }
        let null = shim_open("/dev/null", O_RDWR | O_CLOEXEC, 0)
        if null < 0 { return nil }
        let reserved = fcntl_dupfd(null)
        if reserved < 0 { _ = close(null); return nil }
        let reconfigure = NBDGenl.reconfigure(family: family, seq: 0, index: device.index, identifier: identifier, fds: [reserved]).encode()
        let status = NBDGenl.status(family: family, seq: 0, index: device.index).encode()
        return ReconnectEngine(script: ReconnectScript(exportName: options.exportName, export: export, preinit: options.preinit),
                               addresses: prepared, serverText: dialer.server.text,
                               buffer: [UInt8](repeating: 0, count: 4096), clientFlags: [0, 0, 0, 0],
                               netlinkBuffer: [UInt8](repeating: 0, count: 32768),
                               reconfigure: reconfigure, status: status, reservedFd: reserved, nullFd: null,
                               swapsFd: shim_open("/proc/swaps", O_RDONLY | O_CLOEXEC, 0),
                               deviceName: Array(device.name.utf8))
    }

    /// Writes once to every buffer and message, so that each is owned by
    /// this copy of the engine and present in memory: the Monitor value was
    /// copied into the child, and the first write to a shared array would
    /// otherwise copy it (an allocation) in the middle of a reconnect.
    mutating func warmUp() {
        buffer[0] = 0
        clientFlags[0] = 0
        netlinkBuffer[0] = 0
        NetlinkScan.setSequence(&reconfigure, 0)
        NetlinkScan.setSequence(&status, 0)
        line.bytes[0] = 0
    }

    // MARK: dialing and the handshake

    /// One full attempt: dial, handshake, check the export.
    mutating func attempt() -> AttemptResult {
        var lastErrno: Int32 = ECONNREFUSED
        for i in 0..<addresses.count {
            let a = addresses[i]
            let fd = socket(a.family, shim_SOCK_STREAM | shim_SOCK_CLOEXEC, 0)
            if fd < 0 { return .system("socket", shim_errno()) }
            _ = shim_set_send_timeout(fd, ReconnectEngine.connectTimeoutSeconds)
            _ = shim_set_receive_timeout(fd, handshakeTimeoutSeconds)
            if a.family != shim_AF_UNIX { _ = shim_tcp_nodelay(fd) }
            var storage = a.storage
            if shim_connect_storage(fd, &storage, a.length) < 0 {
                lastErrno = shim_errno()
                _ = close(fd)
                continue
            }
            let r = handshake(fd)
            if case .socket = r {
                _ = shim_set_send_timeout(fd, 0)
                _ = shim_set_receive_timeout(fd, 0)
                return r
            }
            _ = close(fd)
            return r
        }
        return .system("connect", lastErrno)
    }

    /// Reads exactly `n` bytes into buffer[0..<n]: 0, -1 when the peer
    /// closed, or the errno.
    mutating func readExactly(_ fd: Int32, _ n: Int) -> Int32 {
        var done = 0
        while done < n {
            let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, n - done) }
            if got == 0 { return -1 }
            if got < 0 {
                let e = shim_errno()
                if e == EINTR { continue }
                return e
            }
            done += got
        }
        return 0
    }

    /// Skips `n` bytes of the stream through the buffer.
    mutating func skip(_ fd: Int32, _ n: Int) -> Int32 {
        var left = n
        while left > 0 {
            let chunk = min(left, buffer.count)
            let e = readExactly(fd, chunk)
            if e != 0 { return e }
            left -= chunk
        }
        return 0
    }

    func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32 {
        var done = 0
        while done < bytes.count {
            let put = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
            if put < 0 {
                let e = shim_errno()
                if e == EINTR { continue }
                return e
            }
            done += put
        }
        return 0
    }

    static func readFailure(_ e: Int32) -> AttemptResult {
        e == -1 ? .closed : .system("read", e)
    }

    /// The handshake the first connection used, answers checked in place.
    mutating func handshake(_ fd: Int32) -> AttemptResult {
        if script.preinit { return .socket(fd) }
        var e = readExactly(fd, script.greetingSize)
        if e != 0 { return ReconnectEngine.readFailure(e) }
        var got: (size: UInt64, flags: UInt16)? = nil
        if script.route == .oldstyle {
            guard let x = ReconnectWire.oldstyleExport(buffer) else { return .handshake(.oldstyleMismatch) }
            got = x
        } else {
            guard let serverFlags = ReconnectWire.greetingFlags(buffer) else { return .handshake(.badGreeting) }
            let noZeroes = ReconnectWire.clientFlags(serverFlags, into: &clientFlags)
            e = writeAll(fd, clientFlags)
            if e != 0 { return .system("write", e) }
            e = writeAll(fd, script.option)
            if e != 0 { return .system("write", e) }
            if script.route == .go {
                var finished = false
                for _ in 0..<64 {
                    e = readExactly(fd, 20)
                    if e != 0 { return ReconnectEngine.readFailure(e) }
                    guard let h = ReconnectWire.optionReply(buffer) else { return .handshake(.badReply) }
                    let length = Int(h.length)
                    if h.type == ReconnectWire.replyAck { finished = true; break }
                    if h.type & 0x8000_0000 != 0 {
                        _ = skip(fd, length)
                        return .handshake(.refused(h.type))
                    }
                    if h.type == ReconnectWire.replyInfo && length <= buffer.count {
                        e = readExactly(fd, length)
                        if e != 0 { return ReconnectEngine.readFailure(e) }
                        if let x = ReconnectWire.infoExport(buffer, length: length) { got = x }
                    } else {
                        e = skip(fd, length)
                        if e != 0 { return ReconnectEngine.readFailure(e) }
                    }
                }
                if !finished { return .handshake(.badReply) }
            } else {
                e = readExactly(fd, 10)
                if e != 0 { return ReconnectEngine.readFailure(e) }
                got = ReconnectWire.exportNameReply(buffer)
                if !noZeroes {
                    e = skip(fd, 124)
                    if e != 0 { return ReconnectEngine.readFailure(e) }
                }
            }
        }
        guard let x = got else { return .handshake(.badReply) }
        if x.size != script.size || x.flags != script.flags { return .handshake(.changed(size: x.size, flags: x.flags)) }
        return .socket(fd)
    }

    // MARK: netlink, in place

    /// Sends a prebuilt message with a new sequence number and receives
    /// until `done` finds its answer in the buffer (at most 16 datagrams).
    mutating func exchange<R>(_ fd: Int32, _ which: Int, _ done: (inout ReconnectEngine, Int, UInt32) -> R?) -> R? {
        seq &+= 1
        let s = seq
        let sent: Int
        if which == 0 {
            NetlinkScan.setSequence(&reconfigure, s)
            sent = reconfigure.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        } else {
            NetlinkScan.setSequence(&status, s)
            sent = status.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        }
        if sent < 0 { return nil }
        for _ in 0..<16 {
            let n = netlinkBuffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if shim_errno() == EINTR { continue }
                return nil
            }
            if let r = done(&self, n, s) { return r }
        }
        return nil
    }

    /// NBD_CMD_RECONFIGURE with `socket` as the replacement: the kernel's
    /// errno (0 = taken; ENOSPC = no socket was dead), or nil when the
    /// kernel did not answer.
    mutating func handOver(_ control: Int32, socket: Int32) -> Int32? {
        if dup2(socket, reservedFd) < 0 { return shim_errno() }
        let r = exchange(control, 0) { engine, n, s in NetlinkScan.ackError(engine.netlinkBuffer, count: n, seq: s) }
        _ = dup2(nullFd, reservedFd)
        return r
    }

    /// NBD_CMD_STATUS for the device: nil when netlink cannot tell.
    mutating func deviceConnected(_ control: Int32, family: UInt16, index: UInt32) -> Bool? {
        exchange(control, 1) { engine, n, s -> Bool? in
            if let e = NetlinkScan.ackError(engine.netlinkBuffer, count: n, seq: s), e != 0 { return false }
            return NetlinkScan.statusConnected(engine.netlinkBuffer, count: n, seq: s, family: family, index: index)
        }
    }

    /// What /proc/swaps says: none, swap elsewhere, or swap on this device
    /// (or one of its partitions).
    mutating func swapUse() -> SwapUse {
        guard swapsFd >= 0, lseek(swapsFd, 0, SEEK_SET) == 0 else { return .none }
        var total = 0
        while total < buffer.count {
            let got = buffer.withUnsafeMutableBytes { read(swapsFd, $0.baseAddress! + total, $0.count - total) }
            if got <= 0 { break }
            total += got
        }
        if swapsMention(buffer, count: total, device: deviceName) { return .thisDevice }
        return swapAreaCount(buffer, count: total) > 0 ? .elsewhere : .none
    }
}

enum SwapUse { case none, elsewhere, thisDevice }

/// fcntl(F_DUPFD_CLOEXEC) above the standard descriptors.
func fcntl_dupfd(_ fd: Int32) -> Int32 {
    shim_fcntl(fd, F_DUPFD_CLOEXEC, 10)
}
