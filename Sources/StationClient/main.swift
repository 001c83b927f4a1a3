// The static nbd-client: argv in, one of connect / -d / -c / -l out.
// Command-line compatible with Debian's nbd-client 3.24 (NBDClientCore/Arguments.swift).
// Exit status: 0 success; 1 failure (bad arguments, server or kernel refused);
// for -c: 0 connected (pid printed), 1 not connected, 2 could not tell.

@_cdecl("main")
func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    var args: [String] = []
    var i = 1
    while i < Int(argc) {
        if let p = argv[i] { args.append(String(cString: p)) }
        i += 1
    }
    let invocation: Invocation
    do { invocation = try parseArguments(args) } catch {
        printError(error.message)
        try? FileDescriptor(2).writeAll(Array((usageSynopsis + "\n").utf8))
        return 1
    }
    // -systemd-mark: argv[0][0] = '@' (what systemd's killing spree looks at).
    if invocation.systemdMark, let zero = argv[0], zero[0] != 0 { zero[0] = 64 }
    do throws(ClientError) {
        switch invocation.command {
        case .help:
            printOut(helpText + "\n")
            return 0
        case .version:
            printOut("nbd-client (nbdboot), command line of nbd-client 3.24\n")
            return 0
        case .list(let server): return try runList(server)
        case .check(let device): return try runCheck(device)
        case .disconnect(let device, let noNetlink): return try runDisconnect(device, noNetlink: noNetlink)
        case .connect(let options): return try runConnect(options)
        case .connectFromTab(let device, let overrides, let connectionsGiven):
            return try runConnect(try optionsFromTab(device, overrides, connectionsGiven))
        }
    } catch {
        printError(error.message)
        return error.exitCode
    }
}

/// Where `nbd-client nbdN` looks its connection up (nbdtab(5)).
let nbdtabPath = "/etc/nbdtab"

/// The nbdtab entry for `device` with the command line on top.
func optionsFromTab(_ device: NBDDevice, _ overrides: ConnectOptions, _ connectionsGiven: Bool) throws(ClientError) -> ConnectOptions {
    guard let text = readWholeFile(nbdtabPath) else {
        throw ClientError("\(device.name) alone means: connect its entry in \(nbdtabPath), but \(nbdtabPath) cannot be read: \(Errno.current.description) (or give HOST [PORT] \(device.path))")
    }
    let tab: NBDTab
    do { tab = try NBDTab.parse(text, path: nbdtabPath) } catch { throw ClientError(error.message) }
    for w in tab.warnings { printError("warning: \(w)") }
    guard let entry = tab.entry(for: device) else {
        throw ClientError("\(nbdtabPath) has no entry for \(device.name) (a line: \(device.name) HOST EXPORT [OPTIONS])")
    }
    let o = entry.merged(with: overrides, connectionsGiven: connectionsGiven)
    do { try checkCombination(o) } catch { throw ClientError("\(nbdtabPath) line \(entry.line): \(error.message)") }
    return o
}

/// -l: NBD_OPT_LIST, one export per line ("name" or "name: description").
func runList(_ server: ServerAddress) throws(ClientError) -> Int32 {
    let fd = try Dialer(server).dial()
    defer { fd.close() }
    _ = shim_set_receive_timeout(fd.rawValue, handshakeTimeoutSeconds)
    var transport = SocketTransport(fd)
    let entries: [ServerEntry]
    do { entries = try listExports(&transport) } catch {
        throw ClientError("listing the exports of \(server.text) failed: \(describe(error))")
    }
    var out = ""
    for e in entries { out += e.description.isEmpty ? "\(e.name)\n" : "\(e.name): \(e.description)\n" }
    printOut(out)
    return 0
}

/// -c: connected when /sys/block/nbdN/pid exists (as 3.24 decides), unless
/// the netlink STATUS of the device says it has no live configuration.
func runCheck(_ device: NBDDevice) throws(ClientError) -> Int32 {
    guard let pid = devicePid(device) else { return 1 }
    if var nl = try? NBDNetlink.open() {
        defer { nl.close() }
        if let connected = try? nl.isConnected(device), !connected { return 1 }
    }
    printOut(pid + "\n")
    return 0
}

/// -d: NBD_CMD_DISCONNECT, or the ioctls when there is no netlink family or
/// with -nonetlink; then waits (up to 5 s) for the device to stop.
func runDisconnect(_ device: NBDDevice, noNetlink: Bool) throws(ClientError) -> Int32 {
    var done = false
    if !noNetlink, var nl = try NBDNetlink.open() {
        defer { nl.close() }
        do {
            try nl.disconnect(device)
            done = true
        } catch {
            printError("\(error.message); trying the ioctl interface")
        }
    }
    if !done {
        try ioctlDisconnect(device)
        printOut("disconnect, sock, done\n")
    }
    if !waitForDevice(device, running: false, tenthsOfSeconds: 50) {
        printError("\(device.path) was told to disconnect but still runs after 5 s")
    }
    return 0
}

/// HOST [PORT] DEVICE: negotiate every connection, then hand them to the kernel.
func runConnect(_ o: ConnectOptions) throws(ClientError) -> Int32 {
    if !o.exportNameGiven && !o.preinit {
        printError("warning: no export name given (-N NAME): asking for the server's default export")
    }
    let dialer = try Dialer(o.server)
    var connections: [Negotiated] = []
    do {
        for _ in 0..<o.connections { connections.append(try dialAndNegotiate(dialer, o)) }
    } catch {
        for c in connections { c.fd.close() }
        throw error
    }
    defer { for c in connections { c.fd.close() } }
    var exports: [NegotiatedExport] = []
    for c in connections { exports.append(c.export) }
    let export = exports[0]
    let setup: DeviceSetup
    do {
        let (s, notes) = try DeviceSetup.derive(o, exports: exports)
        for n in notes { printError(n) }
        setup = s
    } catch { throw ClientError(error.message) }
    var fds: [Int32] = []
    for c in connections { fds.append(c.fd.rawValue) }

    if !o.noNetlink {
        if var nl = try NBDNetlink.open() {
            defer { nl.close() }
            // Join the multicast group before CONNECT so no LINK_DEAD is missed.
            let events = o.persist ? try openEvents(nl.family) : nil
            try nl.connect(setup, fds: fds)
            // The kernel holds its own references now: a resident monitor
            // must not keep the original sockets alive after they die.
            for c in connections { c.fd.close() }
            connections = []
            capRequests(setup)
            scanPartitions(o.device)
            printOut("Connected \(o.device.path)\n")
            guard let events else { return 0 }
            guard let monitor = Monitor(netlink: nl, events: events, dialer: dialer, options: o, export: export, setup: setup) else {
                printError("cannot prepare the -persist monitor (no /dev/null, or the Unix socket path is too long): \(o.device.path) stays connected without reconnects")
                return 0
            }
            return startMonitor(monitor)
        }
        printError("the kernel has no 'nbd' netlink family (old kernel?): using the ioctl interface")
    }
    return try runIoctl(setup, fds: fds, options: o, dialer: dialer, export: export)
}

/// The ioctl model: configure, then a child sits in NBD_DO_IT while the
/// parent waits (up to 10 s) for /sys/block/nbdN/pid and returns.
func runIoctl(_ setup: DeviceSetup, fds: [Int32], options o: ConnectOptions, dialer: Dialer, export: NegotiatedExport) throws(ClientError) -> Int32 {
    let dev = try ioctlConfigure(setup, fds: fds)
    if o.noFork {
        printOut("Connected \(o.device.path)\n")
        becomeIOHelper(swap: o.swap)
        return serveIoctl(dev, setup, o, dialer, export)
    }
    let child = fork()
    if child < 0 {
        dev.close()
        throw ClientError(SysError("fork", Errno.current, "for NBD_DO_IT"))
    }
    if child == 0 {
        detach()
        becomeIOHelper(swap: o.swap)
        _exit(serveIoctl(dev, setup, o, dialer, export))
    }
    dev.close()
    for _ in 0..<100 {
        if devicePid(o.device) != nil {
            capRequests(setup)
            scanPartitions(o.device)
            printOut("Connected \(o.device.path)\n")
            return 0
        }
        var status: Int32 = 0
        if waitpid(child, &status, WNOHANG) == child {
            throw ClientError("NBD_DO_IT on \(o.device.path) ended at once (see the kernel log)")
        }
        _ = usleep(100_000)
    }
    throw ClientError("\(o.device.path) did not start within 10 s (no /sys/block/\(o.device.name)/pid)")
}
