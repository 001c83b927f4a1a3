// -persist: keep the device alive across server restarts.
//
// Netlink mode: a background child listens on the "nbd_mc_group" multicast
// group; on NBD_CMD_LINK_DEAD for our index it redials (backoff 1, 2, 4 ...
// capped at 16 s), redoes the handshake, checks that size and flags did not
// change, and gives the kernel the new socket with NBD_CMD_RECONFIGURE. The
// kernel holds I/O for DEAD_CONN_TIMEOUT seconds meanwhile (600 by default
// with -persist, and the request timeout is 30 s so a silent server is
// declared dead too). The child exits when the device stops (NBD_CMD_STATUS
// says it has no configuration: nbd-client -d and unmount).
// ioctl mode: the NBD_DO_IT child redials and redoes SET_SOCK + DO_IT when
// DO_IT ends with an error, as nbd-client 3.24 does. Linux 6.1 ends DO_IT
// with 0 both after a requested disconnect and when the only socket dies, so
// there the ioctl model cannot tell them apart and does not reconnect: use
// netlink (the default) for -persist.

/// Opens the socket that receives the nbd family's notifications.
func openEvents(_ family: GenlFamily) throws(ClientError) -> NetlinkSocket {
    guard let group = family.group(NBDGenl.multicastGroup) else {
        throw ClientError("the kernel's nbd family has no '\(NBDGenl.multicastGroup)' multicast group: -persist cannot watch the device")
    }
    do throws(SysError) {
        let s = try NetlinkSocket.open(timeout: 2)
        do { try s.join(group: group) } catch {
            s.close()
            throw error
        }
        return s
    } catch { throw ClientError(error) }
}

/// Seconds between reconnect attempts: 1, 2, then every 4 (a root device
/// waits for us, so the cap is short; a refused connect costs nothing).
let reconnectBackoffCap: UInt32 = 4

/// Everything the resident child needs, resolved before it forks.
struct Monitor {
    var netlink: NBDNetlink
    var events: NetlinkSocket
    var dialer: Dialer
    var options: ConnectOptions
    var export: NegotiatedExport
    var setup: DeviceSetup
    var engine: ReconnectEngine
    var locked = false

    var device: NBDDevice { setup.device }

    init?(netlink: NBDNetlink, events: NetlinkSocket, dialer: Dialer, options: ConnectOptions, export: NegotiatedExport, setup: DeviceSetup) {
        guard let e = ReconnectEngine.prepare(dialer: dialer, options: options, export: export, family: netlink.family.id,
                                              device: setup.device, identifier: setup.identifier) else { return nil }
        self.netlink = netlink
        self.events = events
        self.dialer = dialer
        self.options = options
        self.export = export
        self.setup = setup
        self.engine = e
    }

    /// Whether the device still has a live configuration, asked by netlink
    /// (NBD_CMD_STATUS, prebuilt, answered in place): after switch_root this
    /// process's /sys is gone, so sysfs is only the fallback when netlink
    /// cannot answer.
    var running: Bool {
        mutating get {
            if let connected = engine.deviceConnected(netlink.socket.fd.rawValue, family: netlink.family.id, index: device.index) {
                return connected
            }
            return devicePid(device) != nil
        }
    }

    /// Swap-aware mode: with -swap, or as soon as the system swaps at all
    /// (/proc/swaps lists an area: this device, or another one that a page
    /// of ours could be written to), lock every page (mlockall) so that
    /// reconnecting never waits for a swap-in. Seen in QEMU without it: the
    /// root's monitor was swapped out to the NBD swap of the same server, and
    /// only ran again once the swap device's locked monitor had reconnected.
    mutating func lockIfSwap() {
        guard !locked else { return }
        let use: SwapUse = options.swap ? .thisDevice : engine.swapUse()
        if case .none = use { return }
        locked = true
        lockInMemory()
        engine.line.start()
        engine.line.add("/dev/")
        engine.line.add(device.name)
        if options.swap {
            engine.line.add(" (-swap): monitor locked in memory")
        } else if case .thisDevice = use {
            engine.line.add(" holds swap: monitor locked in memory")
        } else {
            engine.line.add(": the system swaps, monitor locked in memory")
        }
        engine.line.emit()
    }

    /// Waits for LINK_DEAD notifications until the device stops.
    mutating func run() {
        printError("watching \(device.path) for dead connections (pid \(getpid()))")
        lockIfSwap()
        let eventsFd = events.fd.rawValue
        while running {
            lockIfSwap()
            let n = engine.netlinkBuffer.withUnsafeMutableBytes { recv(eventsFd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                let e = shim_errno()
                if e == EAGAIN || e == EINTR { continue }
                if e == ENOBUFS {
                    // Notifications were dropped, maybe our LINK_DEAD: offer a
                    // new socket anyway (the kernel answers ENOSPC if none is dead).
                    engine.line.start()
                    engine.line.add("nbd notifications overflowed; checking the connection of /dev/")
                    engine.line.add(device.name)
                    engine.line.emit()
                    if !reconnect() { return }
                    continue
                }
                engine.line.start()
                engine.line.add("reading nbd notifications failed, errno ")
                engine.line.add(UInt64(e))
                engine.line.emit()
                _ = sleep(1)
                continue
            }
            let dead = NetlinkScan.linkDeadCount(engine.netlinkBuffer, count: n, family: netlink.family.id, index: device.index)
            for _ in 0..<dead where running {
                if !reconnect() { return }
            }
        }
        printError("\(device.path) stopped; no longer watching it")
    }

    /// One replacement socket. False when reconnecting is pointless (the
    /// export changed); returns once the kernel has the socket or the device
    /// stopped. Allocation-free: see ReconnectEngine.
    mutating func reconnect() -> Bool {
        var delay: UInt32 = 1
        var attempt: UInt64 = 0
        let control = netlink.socket.fd.rawValue
        while running {
            attempt += 1
            switch engine.attempt() {
            case .socket(let fd):
                let e = engine.handOver(control, socket: fd)
                _ = close(fd)
                if e == 0 || e == ENOSPC {
                    // ENOSPC: no dead socket left, an earlier attempt fixed it.
                    engine.line.start()
                    engine.line.add("/dev/")
                    engine.line.add(device.name)
                    engine.line.add(" reconnected to ")
                    engine.line.add(engine.serverText)
                    engine.line.add(" (attempt ")
                    engine.line.add(attempt)
                    engine.line.add(")")
                    engine.line.emit()
                    return true
                }
                logAttempt(attempt, "NBD_CMD_RECONFIGURE failed", errno: e ?? ETIMEDOUT, delay: delay)
            case .system(let call, let e):
                logAttempt(attempt, call, errno: e, delay: delay)
            case .closed:
                logAttempt(attempt, "the server closed the connection during the handshake", errno: nil, delay: delay)
            case .handshake(let failure):
                if case .changed(let size, let flags) = failure {
                    engine.line.start()
                    engine.line.add("not reconnecting /dev/")
                    engine.line.add(device.name)
                    engine.line.add(": the export changed (size ")
                    engine.line.add(engine.script.size)
                    engine.line.add(" -> ")
                    engine.line.add(size)
                    engine.line.add(", flags ")
                    engine.line.add(UInt64(engine.script.flags))
                    engine.line.add(" -> ")
                    engine.line.add(UInt64(flags))
                    engine.line.add(")")
                    engine.line.emit()
                    return false
                }
                logAttempt(attempt, failure.text, errno: 0, delay: delay)
            }
            _ = sleep(delay)
            delay = min(delay * 2, reconnectBackoffCap)
        }
        return true
    }

    /// "reconnecting /dev/nbdN, attempt K: WHAT (errno E); next in D s".
    mutating func logAttempt(_ attempt: UInt64, _ what: StaticString, errno e: Int32?, delay: UInt32) {
        engine.line.start()
        engine.line.add("reconnecting /dev/")
        engine.line.add(device.name)
        engine.line.add(" to ")
        engine.line.add(engine.serverText)
        engine.line.add(", attempt ")
        engine.line.add(attempt)
        engine.line.add(": ")
        engine.line.add(what)
        if let e, e != 0 {
            engine.line.add(" (errno ")
            engine.line.add(UInt64(e))
            engine.line.add(e == ECONNREFUSED ? ", connection refused)" : ")")
        }
        engine.line.add("; next in ")
        engine.line.add(UInt64(delay))
        engine.line.add(" s")
        engine.line.emit()
    }
}

/// Forks the monitor. The parent returns 0 at once: the device is connected.
func startMonitor(_ monitor: Monitor) -> Int32 {
    let child = fork()
    if child < 0 {
        printError("fork for -persist: \(Errno.current.description); \(monitor.device.path) stays connected without reconnects")
        return 0
    }
    if child > 0 { return 0 }
    detach()
    var m = monitor
    // Every page the reconnect path touches exists now: the buffers and
    // messages (ReconnectEngine.prepare, owned by this copy after warmUp),
    // and 128 KiB of stack.
    m.engine.warmUp()
    shim_prefault_stack(128)
    becomeIOHelper(swap: false)
    m.run()
    _exit(0)
}

/// Runs NBD_DO_IT; with -persist, redials and restarts it after a failure,
/// on the same open device (no path lookups: they may fail after switch_root).
/// Returns the exit status for the process that served.
func serveIoctl(_ dev: FileDescriptor, _ setup: DeviceSetup, _ o: ConnectOptions, _ dialer: Dialer, _ export: NegotiatedExport) -> Int32 {
    defer { dev.close() }
    while true {
        let e = ioctlServe(dev)
        if e == 0 {
            if o.persist {
                printError("NBD_DO_IT on \(setup.device.path) returned 0: disconnected, or the server went away (the ioctl interface does not say which); not reconnecting")
            }
            return 0
        }
        printError("NBD_DO_IT on \(setup.device.path) ended: \(Errno(e).description)")
        if !o.persist { return 1 }
        var delay: UInt32 = 1
        var reconnected = false
        while !reconnected {
            _ = sleep(delay)
            delay = min(delay * 2, 16)
            do throws(ClientError) {
                let c = try dialAndNegotiate(dialer, o)
                defer { c.fd.close() }
                if c.export.size != export.size {
                    printError("export '\(o.exportName)' changed size (\(export.size) -> \(c.export.size)): giving up on \(setup.device.path)")
                    return 1
                }
                try ioctlSetUp(dev, setup, fds: [c.fd.rawValue])
                printError("\(setup.device.path) reconnected to \(dialer.server.text)")
                reconnected = true
            } catch {
                printError("reconnecting \(setup.device.path): \(error.message); next in \(delay) s")
            }
        }
    }
}

/// A process that stays in the device's I/O path: PR_SET_IO_FLUSHER (its
/// allocations never recurse into I/O on the device it serves and it is not
/// throttled as a dirtier; Linux >= 5.6, needs CAP_SYS_RESOURCE, ignored
/// when refused), oom_score_adj -1000 (killing it would leave the device
/// unable to reconnect), and with `swap` locked in memory.
func becomeIOHelper(swap: Bool) {
    _ = shim_prctl(57, 1)  // PR_SET_IO_FLUSHER
    protectFromOOM()
    if swap { lockInMemory() }
}
