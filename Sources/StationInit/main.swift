// nbdboot's static init: PID 1 of the station's initramfs. The steps, in
// order (each logged as `nbdboot-init: ...`):
//   1. mount /proc /sys /dev /run, console on fds 0-2     (Mounts.swift)
//   2. parse /proc/cmdline                                (BootCore)
//   3. load /etc/nbdboot/modules                          (Modules.swift)
//   4. network: lo, the NIC, DHCP, static ip=, IPv6       (Network.swift, DHCPClient.swift, Network6.swift)
//   5. a server name resolved, /sbin/nbd-client connects /dev/nbdN
//                                                         (Resolver.swift, NBDConnect.swift)
//   6. find the root (LABEL=/UUID=, type), mount it on /newroot directly,
//      under a tmpfs overlay or from a RAM copy            (RootDevice.swift, RootMount.swift)
//   7. nbdswap=: connect, mkswap if needed, swapon         (Swap.swift)
//   8. rd.break: rescue shell                             (Rescue.swift)
//   9. install /run/initramfs/shutdown, switch root, exec init
//                                                         (Shutdown.swift, SwitchRoot.swift)
// Started as .../shutdown, the binary is the shutdown program instead.
// Any failure ends in Failure.swift: a FATAL line, a delay, a reboot.
#if canImport(CShims)
import CShims
#endif
#if canImport(BootCore)
import BootCore
#endif

@_cdecl("main")
func initMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    Log.startMillis = shim_monotonic_ms()
    // The kernel's arguments for init (bare words it did not know), passed on.
    var arguments: [String] = []
    if argc > 1 {
        for i in 1..<Int(argc) { if let a = argv[i] { arguments.append(String(cString: a)) } }
    }
    // The same binary is the shutdown program systemd runs from /run/initramfs.
    if let a0 = argv[0], String(cString: a0).hasSuffix("shutdown") {
        shutdownMain(arguments)
    }
    do {
        try boot(arguments: arguments)
    } catch {
        fatal(error)
    }
}

/// The ordered steps; returns only by throwing (success ends in execve).
func boot(arguments: [String]) throws(InitFailure) -> Never {
    try mountKernelFilesystems()
    log("started as PID \(getpid()), \(Log.startMillis) ms after the kernel")

    let cmdlineText: String
    do { cmdlineText = try readTextFile("/proc/cmdline") } catch {
        throw InitFailure("cannot read /proc/cmdline", error)
    }
    let cmdline = KernelCommandLine(cmdlineText)
    Failure.delaySeconds = BootConfig.failDelay(cmdline)
    Failure.shell = cmdline.contains("rd.shell")
    Log.debug = cmdline.contains("nbdboot.debug")
    let config: BootConfig
    do { config = try BootConfig.parse(cmdline) } catch {
        throw InitFailure("bad kernel command line: \(error.description)",
                          hint: "fix it in the boot loader's kernel arguments")
    }

    loadModules()

    let network = try configureNetwork(config.ip, bootMAC: config.bootMAC, nameservers: config.nameservers,
                                       preferRootPath: config.root.serverFromDHCP)
    let rootServer = network?.rootServer ?? config.ip.server
    let names = NameLookup(nameservers: network?.nameservers ?? mergeNameservers([config.nameservers, config.ip.dns]),
                           preferIPv6: network?.ipv6 != nil)

    // The server: from the command line, or filled in from DHCP / the static ip=.
    let value: NBDServerValue
    do {
        value = try config.root.resolveServer(rootServer: rootServer, rootPath: network?.rootPath ?? "")
    } catch {
        throw InitFailure(Message(error.what), hint: Message(error.hint))
    }
    let disk = config.root.device.whole
    let server = try resolvingHost(value.server, source: config.root.source, names)
    let diskSize = try connectNBD(server, device: config.root.device, persist: config.mode != .toRAM)

    var settings = config.mountSettings(value)
    let (path, fsType) = try locateRoot(config.root, fsType: settings.fsType)
    if fsType == "squashfs" && !settings.readOnly {
        settings.readOnly = true  // squashfs has no write support: mount it as what it is
        log("\(path) holds squashfs, which is read-only\(config.mode == .direct ? " (nbdboot.overlay=tmpfs gives a writable root)" : "")")
    }
    let description = try mountRoot(path: path, fsType: fsType, settings: settings, mode: config.mode,
                                    disk: disk, diskSize: diskSize)
    if let swap = config.swap { try enableSwap(swap, rootServer: rootServer, names: names) }
    if config.breakBeforeSwitch {
        if !runRescueShell("rd.break", after: "switch to the root") {
            log("rd.break: stopping before switch root as asked; the image has no shell (add busybox as /bin/busybox)")
            rebootAfterDelay()
        }
    }
    installShutdownProgram()
    try switchRoot(initPath: config.initPath, arguments: arguments, description: description)
}
