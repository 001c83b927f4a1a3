// Clean shutdown with the root on NBD (dracut's and mkinitcpio's model;
// initramfs-tools has none, so Debian halts with the disk still attached).
//
// Before switch_root the init copies itself to /run/initramfs/shutdown and
// the static client to /run/initramfs/sbin/nbd-client. At poweroff,
// systemd-shutdown (src/shutdown/shutdown.c, switch_root_initramfs) sees
// /run/initramfs/shutdown, pivots into /run/initramfs with the old root on
// /oldroot and runs execv("/shutdown", argv) with the verb (poweroff,
// reboot, halt, kexec) in argv. The same binary then sees argv[0] ending in
// "shutdown" and, as PID 1:
//   1. closes inherited descriptors; mounts /proc, /sys, /dev here when
//      they are not already there;
//   2. SIGTERM, then SIGKILL, to every other process (the old root's last
//      users, the client's '@' monitor);
//   3. swapoff for every area in /proc/swaps (nbdswap=);
//   4. unmounts everything at or below /oldroot, innermost first; a busy
//      mount is remounted read-only (ext4 then commits its journal and
//      clears needs_recovery) and detached (MNT_DETACH);
//   5. sync(2);
//   6. `nbd-client -d` for every /dev/nbdN with a size: the server sees
//      NBD_CMD_DISC, nothing is cut mid-write;
//   7. reboot(2) with RB_POWER_OFF, RB_AUTOBOOT, RB_HALT_SYSTEM or
//      LINUX_REBOOT_CMD_KEXEC.
#if canImport(CShims)
import CShims
#endif
#if canImport(BootCore)
import BootCore
#endif

let shutdownRoot = "/run/initramfs"

/// Copies the init and the client to /run/initramfs for systemd-shutdown.
/// A failure is a warning: the system runs, it only shuts down less cleanly.
func installShutdownProgram() {
    for d in ["", "/sbin", "/dev", "/proc", "/sys", "/oldroot"] { makeDirectories(shutdownRoot + d) }
    do {
        try copyFile("/init", to: shutdownRoot + "/shutdown", mode: 0o755)
        try copyFile(nbdClientPath, to: shutdownRoot + nbdClientPath, mode: 0o755)
    } catch {
        logWarning("cannot install the shutdown program in \(shutdownRoot): \(error.description); NBD will not be disconnected at poweroff")
        return
    }
    log("installed \(shutdownRoot)/shutdown: systemd returns to it at poweroff to unmount the root and disconnect NBD")
}

/// The shutdown program's whole run. Never returns.
func shutdownMain(_ arguments: [String]) -> Never {
    let verb = ShutdownVerb.parse(arguments)
    // Descriptors inherited across exec (a shell's script file, say) would
    // keep the old root busy.
    for fd: Int32 in 3..<1024 { _ = close(fd) }
    for (source, target, type) in [("proc", "/proc", "proc"), ("sysfs", "/sys", "sysfs"), ("devtmpfs", "/dev", "devtmpfs")] {
        try? makeDirectory(target)
        try? mountFilesystem(source, on: target, type: type, flags: 0)
    }
    setUpConsole()
    Log.readConsoleLevel()
    Log.debug = (try? readTextFile("/proc/cmdline")).map { KernelCommandLine($0).contains("nbdboot.debug") } ?? false
    log("shutdown: \(verb.rawValue): unmounting /oldroot, disconnecting NBD")

    stopOtherProcesses()
    if let swaps = try? readTextFile("/proc/swaps") {
        for path in swapPaths(procSwaps: swaps) {
            if shim_swapoff(path) == 0 { log("shutdown: swapoff \(path)") } else {
                logWarning("shutdown: swapoff \(path): \(Errno.current.description)")
            }
        }
    }
    unmountOldRoot()
    sync()
    var disconnected: [String] = []
    for name in listDirectory("/sys/block") where name.hasPrefix("nbd") {
        guard let t = try? readTextFile("/sys/block/\(name)/size"), let sectors = parseDecimal(trimSpaces(t), max: 1 << 60), sectors > 0 else { continue }
        if disconnectNBD("/dev/\(name)") { disconnected.append("/dev/\(name)") }
    }
    log("shutdown: disconnected \(disconnected.isEmpty ? "no NBD device" : disconnected.joined(separator: " ")); \(verb.rawValue) now")
    sync()
    let command: Int32
    switch verb {
    case .poweroff: command = shim_RB_POWER_OFF
    case .reboot: command = shim_RB_AUTOBOOT
    case .halt: command = shim_RB_HALT_SYSTEM
    case .kexec: command = shim_RB_KEXEC
    }
    _ = reboot(command)
    if verb == .kexec { _ = reboot(shim_RB_AUTOBOOT) }
    Log.write(level: Log.error, "shutdown: reboot(2) failed: \(Errno.current.description); halting here")
    while true { shim_sleep_ms(3_600_000) }
}

/// SIGTERM to all other processes, up to 2 s for them to go, then SIGKILL
/// and up to 1 s more; reaps the children this PID 1 inherits.
/// (kill(-1, 0) cannot tell when they are gone: it counts kernel threads.)
func stopOtherProcesses() {
    var status: Int32 = 0
    func gone() -> Bool {
        while waitpid(-1, &status, WNOHANG) > 0 {}
        return userProcessesLeft() == 0
    }
    if gone() { return }
    _ = kill(-1, SIGTERM)
    if waitUntil(timeoutMillis: 2000, stepMillis: 50, gone) { return }
    _ = kill(-1, SIGKILL)
    if !waitUntil(timeoutMillis: 1000, stepMillis: 50, gone) {
        logWarning("shutdown: \(userProcessesLeft()) processes survived SIGKILL")
    }
}

/// Processes other than this one that are not kernel threads (those have
/// an empty /proc/PID/cmdline) and not zombies (an empty cmdline too).
func userProcessesLeft() -> Int {
    let me = "\(getpid())"
    var n = 0
    for name in listDirectory("/proc") where name != me && parseDecimal(name, max: 1 << 30) != nil {
        let fd = shim_open("/proc/" + name + "/cmdline", O_RDONLY | O_CLOEXEC, 0)
        guard fd >= 0 else { continue }
        var byte: UInt8 = 0
        if CShims_read(fd, &byte, 1) == 1 { n += 1 }
        _ = close(fd)
    }
    return n
}

/// Unmounts /oldroot and everything below it, innermost first, up to three
/// passes; busy mounts are remounted read-only and detached.
func unmountOldRoot() {
    var unmounted = 0
    defer { log("shutdown: unmounted \(unmounted) filesystems at and below /oldroot") }
    for _ in 0..<3 {
        guard let info = try? readTextFile("/proc/self/mountinfo") else { return }
        let points = mountPointsToUnmount(mountinfo: info, under: "/oldroot")
        if points.isEmpty { return }
        for p in points {
            if umount2(p, 0) == 0 { unmounted += 1; logDebug("shutdown: unmounted \(p)"); continue }
            let e = Errno.current
            if e.rawValue == EINVAL || e.rawValue == ENOENT { continue }  // already gone with its parent
            if Log.debug, let fds = try? readTextFile("/proc/self/mountinfo") { logDebug("shutdown: \(p) busy; mounts:\n\(fds)") }
            let ro = mount("", p, nil, shim_MS_REMOUNT | shim_MS_RDONLY, nil) == 0
            if umount2(p, shim_MNT_DETACH) == 0 {
                unmounted += 1
                log("shutdown: \(p) was busy (\(e.description)): \(ro ? "remounted read-only and " : "")detached")
            } else {
                logWarning("shutdown: cannot unmount \(p): \(Errno.current.description)\(ro ? " (it is read-only now)" : "")")
            }
        }
    }
}
