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
//   1. mounts /proc, /sys, /dev here when they are not already there;
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
    for (source, target, type) in [("proc", "/proc", "proc"), ("sysfs", "/sys", "sysfs"), ("devtmpfs", "/dev", "devtmpfs")] {
        try? makeDirectory(target)
        try? mountFilesystem(source, on: target, type: type, flags: 0)
    }
    setUpConsole()
    Log.readConsoleLevel()
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

/// SIGTERM to all other processes, up to 2 s for them to go, then SIGKILL;
/// reaps the children this PID 1 inherits.
func stopOtherProcesses() {
    _ = kill(-1, SIGTERM)
    var status: Int32 = 0
    _ = waitUntil(timeoutMillis: 2000) {
        while waitpid(-1, &status, WNOHANG) > 0 {}
        return kill(-1, 0) != 0 && Errno.current.rawValue == ESRCH
    }
    _ = kill(-1, SIGKILL)
    _ = waitUntil(timeoutMillis: 1000) {
        while waitpid(-1, &status, WNOHANG) > 0 {}
        return kill(-1, 0) != 0 && Errno.current.rawValue == ESRCH
    }
}

/// Unmounts /oldroot and everything below it, innermost first, up to three
/// passes; busy mounts are remounted read-only and detached.
func unmountOldRoot() {
    for _ in 0..<3 {
        guard let info = try? readTextFile("/proc/self/mountinfo") else { return }
        let points = mountPointsToUnmount(mountinfo: info, under: "/oldroot")
        if points.isEmpty { return }
        for p in points {
            if umount2(p, 0) == 0 { logDebug("shutdown: unmounted \(p)"); continue }
            let e = Errno.current
            if e.rawValue == EINVAL || e.rawValue == ENOENT { continue }  // already gone with its parent
            let ro = mount("", p, nil, shim_MS_REMOUNT | shim_MS_RDONLY, nil) == 0
            if umount2(p, shim_MNT_DETACH) == 0 {
                log("shutdown: \(p) was busy (\(e.description)): \(ro ? "remounted read-only and " : "")detached")
            } else {
                logWarning("shutdown: cannot unmount \(p): \(Errno.current.description)\(ro ? " (it is read-only now)" : "")")
            }
        }
    }
}
