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

/// Everything the resident child needs, resolved before it forks.
struct Monitor {
    var netlink: NBDNetlink
    var events: NetlinkSocket
    var dialer: Dialer
    var options: ConnectOptions
    var export: NegotiatedExport
    var setup: DeviceSetup

    var device: NBDDevice { setup.device }

    /// Whether the device still has a live configuration, asked by netlink
    /// (NBD_CMD_STATUS): after switch_root this process's /sys is gone, so
    /// sysfs is only the fallback when netlink cannot answer.
    var running: Bool {
        mutating get {
            if let connected = try? netlink.isConnected(device) { return connected }
            return devicePid(device) != nil
        }
    }

    /// Waits for LINK_DEAD notifications until the device stops.
    mutating func run() {
        printError("watching \(device.path) for dead connections (pid \(getpid()))")
        while running {
            let bytes: [UInt8]
            do { bytes = try events.receive() } catch {
                if error.errno == .again { continue }
                if error.errno == Errno(ENOBUFS) {
                    // Notifications were dropped, maybe our LINK_DEAD: offer a
                    // new socket anyway (the kernel answers ENOSPC if none is dead).
                    printError("nbd notifications overflowed; checking \(device.path)'s connection")
                    if !reconnect() { return }
                    continue
                }
                printError("reading nbd notifications: \(error.description)")
                _ = sleep(1)
                continue
            }
            guard let messages = try? parseMessages(bytes) else { continue }
            var dead = 0
            for case .generic(let m) in messages where NBDGenl.linkDeadIndex(m, family: netlink.family.id) == device.index {
                dead += 1
            }
            for _ in 0..<dead where running {
                if !reconnect() { return }
            }
        }
        printError("\(device.path) stopped; no longer watching it")
    }

    /// One replacement socket. False when reconnecting is pointless (the
    /// export changed); returns once the kernel has the socket or the device stopped.
    mutating func reconnect() -> Bool {
        var delay: UInt32 = 1
        var attempt = 0
        while running {
            attempt += 1
            do throws(ClientError) {
                let c = try dialAndNegotiate(dialer, options)
                defer { c.fd.close() }
                if !DeviceSetup.sameExport(c.export, export) {
                    printError("export '\(options.exportName)' changed (size \(export.size) -> \(c.export.size), flags 0x\(hex(UInt64(export.flags.rawValue))) -> 0x\(hex(UInt64(c.export.flags.rawValue)))): not reconnecting \(device.path)")
                    return false
                }
                let e = try netlink.reconfigure(device, identifier: setup.identifier, fds: [c.fd.rawValue])
                if e == 0 {
                    printError("\(device.path) reconnected to \(dialer.server.text) (attempt \(attempt))")
                    return true
                }
                if e == ENOSPC { return true }  // no dead socket left: an earlier attempt already fixed it
                throw ClientError("NBD_CMD_RECONFIGURE: \(Errno(e).description)")
            } catch {
                printError("reconnecting \(device.path), attempt \(attempt): \(error.message); next in \(delay) s")
            }
            _ = sleep(delay)
            delay = min(delay * 2, 16)
        }
        return true
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
    becomeIOHelper(swap: monitor.options.swap)
    var m = monitor
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
/// allocations never recurse into I/O on the device it serves; Linux >= 5.6,
/// ignored when refused) and, with -swap, locked in memory.
func becomeIOHelper(swap: Bool) {
    _ = shim_prctl(57, 1)  // PR_SET_IO_FLUSHER
    if swap { lockInMemory() }
}
