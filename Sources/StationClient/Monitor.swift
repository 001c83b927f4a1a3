// -persist: keep the device alive across server restarts.
//
// Netlink mode: a background child listens on the "nbd_mc_group" multicast
// group; on NBD_CMD_LINK_DEAD for our index it redials (backoff 1, 2, 4 ...
// capped at 16 s), redoes the handshake, checks that size and flags did not
// change, and gives the kernel the new socket with NBD_CMD_RECONFIGURE. The
// kernel holds I/O for DEAD_CONN_TIMEOUT seconds meanwhile (600 by default
// with -persist). The child exits when the device stops (/sys/block/nbdN/pid
// gone: nbd-client -d, or the kernel gave up).
// ioctl mode: the NBD_DO_IT child redials and redoes SET_SOCK + DO_IT when
// DO_IT ends with an error, as nbd-client 3.24 does.

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
    var running: Bool { devicePid(device) != nil }

    /// Waits for LINK_DEAD notifications until the device stops.
    mutating func run() {
        printError("watching \(device.path) for dead connections (pid \(getpid()))")
        while running {
            let bytes: [UInt8]
            do { bytes = try events.receive() } catch {
                if error.errno == .again { continue }
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
                if c.export.size != export.size || c.export.flags.rawValue != export.flags.rawValue {
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
    if monitor.options.swap { lockInMemory() }
    var m = monitor
    m.run()
    _exit(0)
}

/// Runs NBD_DO_IT; with -persist, redials and restarts it after a failure.
/// Returns the exit status for the process that served.
func serveIoctl(_ first: FileDescriptor, _ setup: DeviceSetup, _ o: ConnectOptions, _ dialer: Dialer, _ export: NegotiatedExport) -> Int32 {
    var dev = first
    while true {
        let e = ioctlServe(dev)
        dev.close()
        if e == 0 { return 0 }
        printError("NBD_DO_IT on \(setup.device.path) ended: \(Errno(e).description)")
        if !o.persist { return 1 }
        var delay: UInt32 = 1
        var next: FileDescriptor? = nil
        while next == nil {
            _ = sleep(delay)
            delay = min(delay * 2, 16)
            do throws(ClientError) {
                let c = try dialAndNegotiate(dialer, o)
                defer { c.fd.close() }
                if c.export.size != export.size {
                    printError("export '\(o.exportName)' changed size (\(export.size) -> \(c.export.size)): giving up on \(setup.device.path)")
                    return 1
                }
                next = try ioctlConfigure(setup, fds: [c.fd.rawValue])
                printError("\(setup.device.path) reconnected to \(dialer.server.text)")
            } catch {
                printError("reconnecting \(setup.device.path): \(error.message); next in \(delay) s")
            }
        }
        if let next { dev = next }
    }
}
