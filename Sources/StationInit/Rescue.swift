// The rescue shell: when the image holds busybox (nbdboot initramfs build
// --add-file /bin/busybox:/bin/busybox, or the generator's --with-busybox),
// `rd.break` opens `/bin/busybox sh` on the console just before the switch
// to the real root (exit the shell to go on booting), and `rd.shell` opens
// it after a fatal error (exit it to reboot). Without busybox both print a
// message and the boot goes on (rd.break: reboot after the delay).
#if canImport(CShims)
import CShims
#endif

let busyboxPath = "/bin/busybox"

/// Runs `/bin/busybox sh` on the console and waits for it; false when the
/// image has no busybox.
func runRescueShell(_ reason: String, after: String) -> Bool {
    guard pathExists(busyboxPath) else { return false }
    log("\(reason): rescue shell (\(busyboxPath) sh); exit it to \(after)")
    do {
        let status = try runProgram(busyboxPath, [busyboxPath, "sh"])
        log("rescue shell ended (\(status.text)); going on to \(after)")
    } catch {
        logWarning("cannot start the rescue shell: \(error.description)")
    }
    return true
}
