// Handing negotiated sockets to the kernel's nbd driver, and taking them back.
// Two interfaces (nbd-protocol.md 4.1 and 4.3):
//  - generic netlink "nbd": NBD_CMD_CONNECT / DISCONNECT / STATUS / RECONFIGURE;
//    the kernel holds the sockets, no process has to stay;
//  - the ioctls of linux/nbd.h on /dev/nbdN: a process must sit in NBD_DO_IT.

/// The "nbd" generic netlink family, reached through its own socket.
struct NBDNetlink {
    var socket: NetlinkSocket
    var family: GenlFamily

    /// Opens a socket and resolves the family. nil when the kernel has no
    /// "nbd" family (module not loaded, or a kernel older than 4.10).
    static func open() throws(ClientError) -> NBDNetlink? {
        var s: NetlinkSocket
        do { s = try NetlinkSocket.open() } catch { throw ClientError(error) }
        guard let f = try s.family(NBDGenl.familyName) else {
            s.close()
            return nil
        }
        return NBDNetlink(socket: s, family: f)
    }

    func close() { socket.close() }

    /// NBD_CMD_CONNECT. The kernel takes its own references on the sockets.
    mutating func connect(_ setup: DeviceSetup, fds: [Int32]) throws(ClientError) {
        let request = setup.connectRequest(fds: fds)
        let id = family.id
        let outcome = try socket.transact({ request.message(family: id, seq: $0) }, doing: "NBD_CMD_CONNECT for \(setup.device.path)")
        if case .failure(let e, _) = outcome {
            var why = Errno(e).description
            if e == EBUSY { why = "\(setup.device.path) is already in use (disconnect it first with nbd-client -d \(setup.device.path))" }
            if e == EINVAL { why = "the kernel refused the settings (size \(setup.size), block size \(setup.blockSize), flags 0x\(hex(UInt64(setup.flags)))): \(why)" }
            throw ClientError("cannot connect \(setup.device.path): \(why)")
        }
    }

    /// NBD_CMD_DISCONNECT {INDEX}.
    mutating func disconnect(_ device: NBDDevice) throws(ClientError) {
        let id = family.id
        let outcome = try socket.transact({ NBDGenl.disconnect(family: id, seq: $0, index: device.index) },
                                          doing: "NBD_CMD_DISCONNECT for \(device.path)")
        if case .failure(let e, _) = outcome {
            throw ClientError("cannot disconnect \(device.path): \(Errno(e).description)")
        }
    }

    /// NBD_CMD_STATUS {INDEX}: whether the device has a live configuration.
    mutating func isConnected(_ device: NBDDevice) throws(ClientError) -> Bool? {
        let id = family.id
        let outcome = try socket.transact({ NBDGenl.status(family: id, seq: $0, index: device.index) },
                                          doing: "NBD_CMD_STATUS for \(device.path)")
        switch outcome {
        case .failure(let e, _):
            throw ClientError("cannot ask the status of \(device.path): \(Errno(e).description)", exitCode: 2)
        case .success(let replies):
            do { return try NBDGenl.statusConnected(replies, index: device.index) } catch {
                throw ClientError("status of \(device.path): \(error.message)", exitCode: 2)
            }
        }
    }

    /// NBD_CMD_RECONFIGURE {INDEX, BACKEND_IDENTIFIER, SOCKETS}: replace a dead
    /// socket. Returns the kernel's errno (0 = done; ENOSPC = no socket was dead).
    mutating func reconfigure(_ device: NBDDevice, identifier: String?, fds: [Int32]) throws(ClientError) -> Int32 {
        let id = family.id
        let outcome = try socket.transact({ NBDGenl.reconfigure(family: id, seq: $0, index: device.index, identifier: identifier, fds: fds) },
                                          doing: "NBD_CMD_RECONFIGURE for \(device.path)")
        if case .failure(let e, _) = outcome { return e }
        return 0
    }
}

/// ioctl(2) on an nbd device, naming the request in errors.
func nbdIoctl(_ dev: FileDescriptor, _ request: UInt, _ arg: UInt, _ name: String, _ device: NBDDevice) throws(ClientError) {
    do { _ = try sysCall("ioctl", "\(name) on \(device.path)") { shim_ioctl(dev.rawValue, request, arg) } } catch {
        throw ClientError(error)
    }
}

/// The classic ioctl sequence of nbd-client 3.24 up to NBD_SET_SOCK; returns
/// the open device, ready for NBD_DO_IT.
func ioctlConfigure(_ setup: DeviceSetup, fds: [Int32]) throws(ClientError) -> FileDescriptor {
    let d = setup.device
    let dev: FileDescriptor
    do { dev = try FileDescriptor.open(d.path, O_RDWR) } catch {
        if error.errno == .noEntry { throw ClientError("\(d.path) does not exist: is the nbd module loaded (modprobe nbd)?") }
        throw ClientError(error)
    }
    do { try ioctlSetUp(dev, setup, fds: fds) } catch {
        dev.close()
        throw error
    }
    return dev
}

/// NBD_SET_BLKSIZE, NBD_SET_SIZE_BLOCKS, NBD_CLEAR_SOCK, NBD_SET_FLAGS,
/// BLKROSET (-R), NBD_SET_TIMEOUT (-t), then NBD_SET_SOCK for each socket.
func ioctlSetUp(_ dev: FileDescriptor, _ setup: DeviceSetup, fds: [Int32]) throws(ClientError) {
    let d = setup.device
    try nbdIoctl(dev, shim_NBD_SET_BLKSIZE, UInt(setup.blockSize), "NBD_SET_BLKSIZE", d)
    try nbdIoctl(dev, shim_NBD_SET_SIZE_BLOCKS, UInt(setup.size / UInt64(setup.blockSize)), "NBD_SET_SIZE_BLOCKS", d)
    try nbdIoctl(dev, shim_NBD_CLEAR_SOCK, 0, "NBD_CLEAR_SOCK", d)
    try nbdIoctl(dev, shim_NBD_SET_FLAGS, UInt(setup.flags), "NBD_SET_FLAGS", d)
    if setup.readOnly {
        var one: Int32 = 1
        if shim_ioctl_ptr(dev.rawValue, shim_BLKROSET, &one) < 0 {
            throw ClientError(SysError("ioctl", Errno.current, "BLKROSET on \(d.path)"))
        }
    }
    if let t = setup.timeout { try nbdIoctl(dev, shim_NBD_SET_TIMEOUT, UInt(t), "NBD_SET_TIMEOUT", d) }
    for fd in fds where shim_ioctl(dev.rawValue, shim_NBD_SET_SOCK, UInt(fd)) < 0 {
        let e = Errno.current
        if e == .busy {
            throw ClientError("\(d.path) is busy: it is in use or configured by netlink (disconnect it first with nbd-client -d \(d.path))")
        }
        throw ClientError(SysError("ioctl", e, "NBD_SET_SOCK on \(d.path)"))
    }
}

/// NBD_DO_IT: runs the device until it is disconnected, then clears its
/// sockets. Returns the errno DO_IT ended with (0 after a requested disconnect).
func ioctlServe(_ dev: FileDescriptor) -> Int32 {
    let rc = shim_ioctl(dev.rawValue, shim_NBD_DO_IT, 0)
    let e = rc < 0 ? shim_errno() : 0
    _ = shim_ioctl(dev.rawValue, shim_NBD_CLEAR_SOCK, 0)
    return e
}

/// `-d` on a device set up with ioctls: NBD_DISCONNECT, then NBD_CLEAR_SOCK.
func ioctlDisconnect(_ device: NBDDevice) throws(ClientError) {
    let dev: FileDescriptor
    do { dev = try FileDescriptor.open(device.path, O_RDWR) } catch { throw ClientError(error) }
    defer { dev.close() }
    try nbdIoctl(dev, shim_NBD_DISCONNECT, 0, "NBD_DISCONNECT", device)
    try nbdIoctl(dev, shim_NBD_CLEAR_SOCK, 0, "NBD_CLEAR_SOCK", device)
}

/// /sys/block/nbdN/pid: the pid of the process that started the device; the
/// file exists exactly while the device has a running configuration.
func devicePid(_ device: NBDDevice) -> String? {
    guard let text = readSmallFile("/sys/block/\(device.name)/pid") else { return nil }
    var pid = ""
    for c in text where c != "\n" { pid.append(c) }
    return pid.isEmpty ? nil : pid
}

/// Waits (bounded, 100 ms steps) until the device is running or not.
func waitForDevice(_ device: NBDDevice, running: Bool, tenthsOfSeconds: Int) -> Bool {
    for _ in 0..<tenthsOfSeconds {
        if (devicePid(device) != nil) == running { return true }
        _ = usleep(100_000)
    }
    return (devicePid(device) != nil) == running
}

/// Holds the kernel to the server's maximum request (NBD_INFO_BLOCK_SIZE):
/// /sys/block/nbdN/queue/max_sectors_kb, which no netlink attribute or ioctl
/// sets. A failure only warns: the server may then refuse large requests.
func capRequests(_ setup: DeviceSetup) {
    guard let kib = setup.maxRequestKiB else { return }
    let path = "/sys/block/\(setup.device.name)/queue/max_sectors_kb"
    let text = "\(kib)"
    let fd = shim_open(path, O_WRONLY | O_CLOEXEC, 0)
    if fd < 0 || write(fd, text, text.utf8.count) < 0 {
        printError("warning: cannot limit requests to the server's maximum of \(kib) KiB (\(path): \(Errno.current.description))")
    }
    if fd >= 0 { _ = close(fd) }
}

/// Opens the device once and closes it: the kernel reads the partition table
/// on the first open after a (re)start (GD_NEED_PART_SCAN), and an initramfs
/// has no udev to do that open, so /dev/nbdNpM would never appear. nbd-client
/// does the same for the ioctl path. Quietly does nothing without /dev/nbdN.
func scanPartitions(_ device: NBDDevice) {
    if let d = try? FileDescriptor.open(device.path, O_RDONLY) { d.close() }
}

/// Reads a regular file whole (up to 1 MiB); nil when it cannot be opened.
func readWholeFile(_ path: String) -> String? {
    guard let fd = try? FileDescriptor.open(path, O_RDONLY) else { return nil }
    defer { fd.close() }
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while data.count < 1 << 20 {
        let n = chunk.withUnsafeMutableBytes { (try? fd.read(into: $0)) ?? -1 }
        if n < 0 { return nil }
        if n == 0 { break }
        data += chunk[0..<n]
    }
    return String(decoding: data, as: UTF8.self)
}

/// Reads a small file (sysfs, procfs) whole; nil when it cannot be opened.
func readSmallFile(_ path: String) -> String? {
    guard let fd = try? FileDescriptor.open(path, O_RDONLY) else { return nil }
    defer { fd.close() }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let n = buffer.withUnsafeMutableBytes { (try? fd.read(into: $0)) ?? -1 }
    if n < 0 { return nil }
    return String(decoding: buffer[0..<n], as: UTF8.self)
}
