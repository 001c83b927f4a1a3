// nbdboot's static init: PID 1 of the station's initramfs. The steps, in
// order (each logged as `nbdboot-init: ...`):
//   1. mount /proc /sys /dev /run, console on fds 0-2     (Mounts.swift)
//   2. parse /proc/cmdline                                (BootCore)
//   3. load /etc/nbdboot/modules                          (Modules.swift)
//   4. network: lo, the NIC, DHCP or static ip=           (Network.swift, DHCPClient.swift)
//   5. /sbin/nbd-client connects /dev/nbdN                (NBDConnect.swift)
//   6. mount the root on /newroot, switch root, exec init (Mounts.swift, SwitchRoot.swift)
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
    Log.debug = cmdline.contains("nbdboot.debug")
    let config: BootConfig
    do { config = try BootConfig.parse(cmdline) } catch {
        throw InitFailure("bad kernel command line: \(error.description)",
                          hint: "fix it in the boot loader's kernel arguments")
    }

    loadModules()

    let network = try configureNetwork(config.ip)

    // The server: from nbdroot=, or filled in from DHCP / the static ip=.
    let server: NBDServerSpec
    do {
        server = try config.root.resolveServer(rootServer: network?.rootServer ?? config.ip.server,
                                               rootPath: network?.rootPath ?? "")
    } catch {
        throw InitFailure(error.what, hint: error.hint)
    }
    try connectNBD(server, device: config.root.device)

    let device = config.root.device.path
    try mountRoot(device: device, config: config)
    if config.breakBeforeSwitch {
        log("rd.break: stopping before switch root as asked; the image has no shell")
        rebootAfterDelay()
    }
    try switchRoot(initPath: config.initPath, arguments: arguments,
                   description: "\(device) (\(config.rootFSType), \(config.readOnly ? "ro" : "rw"))")
}
