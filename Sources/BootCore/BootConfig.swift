// Everything the init reads from the kernel command line, in one value.
//
//   nbdroot= root= nbddev=   the NBD server and device (NBDRoot.swift)
//   ip=                      network (IPConfig.swift); DHCP when absent
//   rootfstype=              default ext4
//   rootflags=               mount options (data string), default none
//   ro / rw                  default rw: Debian's NBD root is mounted
//                            read-write by the initramfs as well when
//                            neither is given; the last of the two wins
//   init=                    default /sbin/init
//   nbdboot.fail-delay=N     seconds before reboot on a fatal error (10)
//   nbdboot.debug            log low-level details too
//   rd.break                 stop before switching root (wait, then reboot)

/// The parsed boot parameters.
public struct BootConfig: Equatable, Sendable {
    public var root: NBDRoot
    public var ip: IPConfig
    public var rootFSType: String
    public var rootFlags: String
    public var readOnly: Bool
    public var initPath: String
    public var debug: Bool
    public var breakBeforeSwitch: Bool
    public var failDelaySeconds: Int

    public static let defaultFailDelay = 10

    public init(root: NBDRoot, ip: IPConfig, rootFSType: String = "ext4", rootFlags: String = "",
                readOnly: Bool = false, initPath: String = "/sbin/init", debug: Bool = false,
                breakBeforeSwitch: Bool = false, failDelaySeconds: Int = BootConfig.defaultFailDelay) {
        self.root = root
        self.ip = ip
        self.rootFSType = rootFSType
        self.rootFlags = rootFlags
        self.readOnly = readOnly
        self.initPath = initPath
        self.debug = debug
        self.breakBeforeSwitch = breakBeforeSwitch
        self.failDelaySeconds = failDelaySeconds
    }

    /// `nbdboot.fail-delay=N`, read on its own so that a fatal error in the
    /// rest of the command line still honours it. Invalid values give the default.
    public static func failDelay(_ cmdline: KernelCommandLine) -> Int {
        guard let v = cmdline.value("nbdboot.fail-delay"), let n = parseDecimal(v, max: 3600) else { return defaultFailDelay }
        return n
    }

    public static func parse(_ cmdline: KernelCommandLine) throws(BootConfigError) -> BootConfig {
        let root = try NBDRoot.parse(nbdroot: cmdline.value("nbdroot"), root: cmdline.value("root"),
                                     nbddev: cmdline.value("nbddev"))
        let ip = try IPConfig.parse(cmdline.value("ip"))
        var c = BootConfig(root: root, ip: ip)
        if let t = cmdline.value("rootfstype") {
            guard !t.isEmpty, !t.utf8.contains(UInt8(ascii: ",")) else {
                throw BootConfigError(parameter: "rootfstype", value: t,
                                      problem: "names no single filesystem type", example: "rootfstype=ext4")
            }
            c.rootFSType = t
        }
        c.rootFlags = cmdline.value("rootflags") ?? ""
        c.readOnly = cmdline.lastFlag(of: ["ro", "rw"]) == "ro"
        if let i = cmdline.value("init") {
            guard i.hasPrefix("/") else {
                throw BootConfigError(parameter: "init", value: i,
                                      problem: "is not an absolute path in the root filesystem", example: "init=/sbin/init")
            }
            c.initPath = i
        }
        c.debug = cmdline.contains("nbdboot.debug")
        c.breakBeforeSwitch = cmdline.contains("rd.break")
        if let v = cmdline.value("nbdboot.fail-delay"), parseDecimal(v, max: 3600) == nil {
            throw BootConfigError(parameter: "nbdboot.fail-delay", value: v,
                                  problem: "is not a number of seconds from 0 to 3600", example: "nbdboot.fail-delay=30")
        }
        c.failDelaySeconds = failDelay(cmdline)
        return c
    }
}
