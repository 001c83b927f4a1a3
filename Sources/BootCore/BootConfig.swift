// Everything the init reads from the kernel command line, in one value.
//
//   nbdroot= root= netroot= nbddev=   the NBD server and device (NBDRoot.swift,
//                            NBDServerForms.swift); root=LABEL=x / UUID=y
//   nbdswap=                 swap over NBD (same forms; /dev/nbd1 by default)
//   ip=                      network (IPConfig.swift); DHCP when absent
//   nameserver=              dracut's: a DNS server for server names
//                            (repeatable; IPv4, or IPv6 with or without [ ])
//   BOOTIF=01-aa-bb-cc-dd-ee-ff   pxelinux's boot NIC, chosen by MAC
//   rootfstype=              default: dracut's FSTYPE, else detected
//   rootflags=               mount options, default none (MountOptions: the
//                            VFS ones such as noatime become mount(2) flags)
//   ro / rw                  default rw: Debian's NBD root is mounted
//                            read-write by the initramfs as well when
//                            neither is given; the last of the two wins,
//                            over dracut's FLAGS
//   init=                    default /sbin/init
//   nbdboot.overlay=tmpfs    read-only root under a tmpfs overlay
//   nbdboot.toram            copy the root into RAM, disconnect NBD
//   nbdboot.fail-delay=N     seconds before reboot on a fatal error (10)
//   nbdboot.debug            log low-level details too
//   rd.break                 stop before switching root (rescue shell)
//   rd.shell                 a fatal error opens the rescue shell
// Any other nbdboot.* key stops the boot (a typo would otherwise be ignored).

/// How the root filesystem is mounted.
public enum RootMode: Equatable, Sendable {
    /// The NBD device (or its partition) itself.
    case direct
    /// `nbdboot.overlay=tmpfs`: the device read-only as the lower layer of
    /// an overlayfs whose upper layer is a tmpfs; writes vanish at reboot.
    case overlayTmpfs
    /// `nbdboot.toram`: the device copied into a tmpfs file, loop-mounted;
    /// NBD is disconnected before the switch.
    case toRAM
}

/// The parsed boot parameters.
public struct BootConfig: Equatable, Sendable {
    public var root: NBDRoot
    public var swap: NBDSwap?
    public var ip: IPConfig
    /// nameserver= values, in order: asked before ip='s dns0/dns1 and DHCP's.
    public var nameservers: [IPAddress]
    /// BOOTIF=: the hardware address of the NIC to use, or nil.
    public var bootMAC: [UInt8]?
    /// rootfstype=; nil: dracut's FSTYPE, else what the superblock says.
    public var rootFSType: String?
    /// rootflags=, nil when absent.
    public var rootFlags: String?
    /// ro/rw on the command line, nil when neither is given.
    public var readOnlyFlag: Bool?
    public var initPath: String
    public var mode: RootMode
    public var debug: Bool
    public var breakBeforeSwitch: Bool
    public var shellOnFailure: Bool
    public var failDelaySeconds: Int

    public static let defaultFailDelay = 10
    /// The nbdboot.* keys the init knows.
    public static let knownKeys = ["nbdboot.debug", "nbdboot.fail-delay", "nbdboot.overlay", "nbdboot.toram"]

    public init(root: NBDRoot, ip: IPConfig, nameservers: [IPAddress] = [], swap: NBDSwap? = nil, bootMAC: [UInt8]? = nil,
                rootFSType: String? = nil, rootFlags: String? = nil, readOnlyFlag: Bool? = nil,
                initPath: String = "/sbin/init", mode: RootMode = .direct, debug: Bool = false,
                breakBeforeSwitch: Bool = false, shellOnFailure: Bool = false,
                failDelaySeconds: Int = BootConfig.defaultFailDelay) {
        self.root = root
        self.swap = swap
        self.ip = ip
        self.nameservers = nameservers
        self.bootMAC = bootMAC
        self.rootFSType = rootFSType
        self.rootFlags = rootFlags
        self.readOnlyFlag = readOnlyFlag
        self.initPath = initPath
        self.mode = mode
        self.debug = debug
        self.breakBeforeSwitch = breakBeforeSwitch
        self.shellOnFailure = shellOnFailure
        self.failDelaySeconds = failDelaySeconds
    }

    /// `nbdboot.fail-delay=N`, read on its own so that a fatal error in the
    /// rest of the command line still honours it. Invalid values give the default.
    public static func failDelay(_ cmdline: KernelCommandLine) -> Int {
        guard let v = cmdline.value("nbdboot.fail-delay"), let n = parseDecimal(v, max: 3600) else { return defaultFailDelay }
        return n
    }

    public static func parse(_ cmdline: KernelCommandLine) throws(BootConfigError) -> BootConfig {
        for p in cmdline.parameters where p.key.hasPrefix("nbdboot.") && !knownKeys.contains(p.key) {
            throw BootConfigError(parameter: p.key, value: p.value,
                                  problem: "is not an nbdboot parameter (known: \(knownKeys.joined(separator: ", ")))",
                                  example: "nbdboot.overlay=tmpfs")
        }
        let root = try NBDRoot.parse(nbdroot: cmdline.value("nbdroot"), root: cmdline.value("root"),
                                     nbddev: cmdline.value("nbddev"), netroot: cmdline.value("netroot"))
        let ip = try IPConfig.parse(cmdline.value("ip"))
        var c = BootConfig(root: root, ip: ip)
        for v in cmdline.values("nameserver") {
            guard let a = IPAddress(v) else {
                throw BootConfigError(parameter: "nameserver", value: v,
                                      problem: "is not an IPv4 or IPv6 address (a DNS server for the server's name)",
                                      example: "nameserver=10.0.2.3 or nameserver=[fec0::3]")
            }
            if !c.nameservers.contains(a) { c.nameservers.append(a) }
        }
        if let v = cmdline.value("nbdswap") {
            c.swap = try NBDSwap.parse(v, rootDevice: root.device.whole)
        }
        if let v = cmdline.value("BOOTIF") { c.bootMAC = try parseBootIF(v) }
        if let t = cmdline.value("rootfstype") {
            guard !t.isEmpty, !t.utf8.contains(UInt8(ascii: ",")) else {
                throw BootConfigError(parameter: "rootfstype", value: t,
                                      problem: "names no single filesystem type", example: "rootfstype=ext4")
            }
            c.rootFSType = t
        }
        c.rootFlags = cmdline.value("rootflags")
        if let f = cmdline.lastFlag(of: ["ro", "rw"]) { c.readOnlyFlag = f == "ro" }
        if let i = cmdline.value("init") {
            guard i.hasPrefix("/") else {
                throw BootConfigError(parameter: "init", value: i,
                                      problem: "is not an absolute path in the root filesystem", example: "init=/sbin/init")
            }
            c.initPath = i
        }
        if cmdline.contains("nbdboot.overlay") {
            let v = cmdline.value("nbdboot.overlay")
            guard v == "tmpfs" else {
                throw BootConfigError(parameter: "nbdboot.overlay", value: v,
                                      problem: "the only overlay is tmpfs", example: "nbdboot.overlay=tmpfs")
            }
            c.mode = .overlayTmpfs
        }
        if cmdline.contains("nbdboot.toram") {
            switch cmdline.value("nbdboot.toram") {
            case nil, "", "1", "yes", "on":
                guard c.mode == .direct else {
                    throw BootConfigError(parameter: "nbdboot.toram", value: cmdline.value("nbdboot.toram"),
                                          problem: "cannot be combined with nbdboot.overlay (the RAM copy is writable already)",
                                          example: "nbdboot.toram")
                }
                c.mode = .toRAM
            case "0", "no", "off": break
            case let v:
                throw BootConfigError(parameter: "nbdboot.toram", value: v,
                                      problem: "is a flag: give it bare (or =1/=0)", example: "nbdboot.toram")
            }
        }
        c.debug = cmdline.contains("nbdboot.debug")
        c.breakBeforeSwitch = cmdline.contains("rd.break")
        c.shellOnFailure = cmdline.contains("rd.shell")
        if let v = cmdline.value("nbdboot.fail-delay"), parseDecimal(v, max: 3600) == nil {
            throw BootConfigError(parameter: "nbdboot.fail-delay", value: v,
                                  problem: "is not a number of seconds from 0 to 3600", example: "nbdboot.fail-delay=30")
        }
        c.failDelaySeconds = failDelay(cmdline)
        return c
    }

    /// How to mount the root, once the server value is known (a DHCP
    /// root-path in dracut's form may carry FSTYPE and FLAGS):
    /// rootfstype= over dracut's FSTYPE (nil: detect); rootflags= over
    /// dracut's FLAGS; ro/rw on the command line over a ro/rw in FLAGS,
    /// default read-write.
    public func mountSettings(_ value: NBDServerValue) -> RootMountSettings {
        let dracut = MountOptions.parse(value.flags ?? "")
        var options = rootFlags.map { MountOptions.parse($0) } ?? dracut
        options.readOnly = readOnlyFlag ?? options.readOnly ?? dracut.readOnly ?? false
        return RootMountSettings(fsType: rootFSType ?? value.fsType, data: options.data,
                                 readOnly: options.readOnly ?? false, flags: options.flags)
    }
}

/// The root mount's type (nil: detect), data string, ro and other MS_* flags.
public struct RootMountSettings: Equatable, Sendable {
    public var fsType: String?
    public var data: String
    public var readOnly: Bool
    /// MS_NOATIME and the like (MountOptions), without MS_RDONLY.
    public var flags: UInt

    public init(fsType: String?, data: String, readOnly: Bool, flags: UInt = 0) {
        self.fsType = fsType
        self.data = data
        self.readOnly = readOnly
        self.flags = flags
    }

    /// The options as mount(8) would show them: ro/rw, then the rest.
    public var text: String {
        var parts = [readOnly ? "ro" : "rw"]
        for (name, bit, set) in MountOptions.table where set && flags & bit != 0 { parts.append(name) }
        if !data.isEmpty { parts.append(data) }
        return parts.joined(separator: ", ")
    }
}

/// pxelinux's `BOOTIF=01-aa-bb-cc-dd-ee-ff` (ARP hardware type 1, then the
/// MAC); `aa-bb-cc-dd-ee-ff` and colons are accepted too.
public func parseBootIF(_ value: String) throws(BootConfigError) -> [UInt8] {
    var parts = splitFields(value, value.utf8.contains(UInt8(ascii: ":")) ? ":" : "-")
    if parts.count == 7 && parts[0] == "01" { parts.removeFirst() }
    var mac: [UInt8] = []
    for p in parts {
        let b = Array(p.utf8)
        guard b.count == 2, let h = hexDigit(b[0]), let l = hexDigit(b[1]) else { break }
        mac.append(h << 4 | l)
    }
    guard parts.count == 6, mac.count == 6 else {
        throw BootConfigError(parameter: "BOOTIF", value: value,
                              problem: "is not 01- followed by a hardware address of six hex bytes",
                              example: "BOOTIF=01-52-54-00-12-34-56")
    }
    return mac
}

/// The value of one hex digit, or nil.
public func hexDigit(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
}

/// `aa:bb:cc:dd:ee:ff`, lowercase.
public func macText(_ mac: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for (i, b) in mac.enumerated() {
        if i > 0 { out.append(UInt8(ascii: ":")) }
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Mount options as mount(8) splits them (libmount's optmap): the generic
/// VFS ones become mount(2) flags, the rest stay in the data string for
/// the filesystem. `ro`/`rw` are returned apart. Linux's MS_* values.
public struct MountOptions: Equatable, Sendable {
    public var flags: UInt
    public var data: String
    /// true for `ro`, false for `rw`, nil when neither (the last one wins).
    public var readOnly: Bool?

    public init(flags: UInt = 0, data: String = "", readOnly: Bool? = nil) {
        self.flags = flags
        self.data = data
        self.readOnly = readOnly
    }

    /// The VFS options and their MS_* bits (include/uapi/linux/mount.h).
    static let table: [(String, UInt, Bool)] = [  // name, bit, true: set / false: clear
        ("nosuid", 2, true), ("suid", 2, false), ("nodev", 4, true), ("dev", 4, false),
        ("noexec", 8, true), ("exec", 8, false), ("sync", 16, true), ("async", 16, false),
        ("dirsync", 128, true), ("noatime", 1024, true), ("atime", 1024, false),
        ("nodiratime", 2048, true), ("diratime", 2048, false), ("relatime", 1 << 21, true),
        ("norelatime", 1 << 21, false), ("strictatime", 1 << 24, true), ("lazytime", 1 << 25, true),
        ("nolazytime", 1 << 25, false),
    ]

    public static func parse(_ text: String) -> MountOptions {
        var out = MountOptions()
        var rest: [String] = []
        for o in splitFields(text, ",") where !o.isEmpty && o != "defaults" {
            if o == "ro" { out.readOnly = true; continue }
            if o == "rw" { out.readOnly = false; continue }
            if let entry = table.first(where: { $0.0 == o }) {
                if entry.2 { out.flags |= entry.1 } else { out.flags &= ~entry.1 }
                continue
            }
            rest.append(o)
        }
        out.data = rest.joined(separator: ",")
        return out
    }
}
