// The failure path of PID 1. PID 1 must never exit (the kernel panics with
// "Attempted to kill init!"), and the image usually has no shell to drop
// into (rd.shell opens busybox's when it has): so a
// fatal error is logged with its input and a hint, the console keeps it on
// screen for nbdboot.fail-delay seconds (default 10), and the machine reboots
// with reboot(RB_AUTOBOOT). QEMU tests pass -no-reboot, so the VM exits.
#if canImport(CShims)
import CShims
#endif

/// A step that cannot go on: what failed (with the input) and what to check.
struct InitFailure: Error {
    var what: String
    var hint: String

    init(_ what: Message, hint: Message = "") {
        self.what = what.text
        self.hint = hint.text
    }

    init(_ what: Message, _ error: SysError, hint: Message = "") {
        self.what = what.text + ": " + error.description
        self.hint = hint.text
    }

    var description: String { hint.isEmpty ? what : what + "; " + hint }
}

enum Failure {
    nonisolated(unsafe) static var delaySeconds = 10
    /// rd.shell: open the rescue shell (Rescue.swift) before rebooting.
    nonisolated(unsafe) static var shell = false
}

/// Logs `nbdboot-init: FATAL: ...`, waits (or runs the rescue shell with
/// rd.shell), reboots. Never returns.
func fatal(_ failure: InitFailure) -> Never {
    Log.write(level: Log.error, Message("FATAL: " + failure.description))
    if Failure.shell && runRescueShell("rd.shell", after: "reboot") {
        sync()
        _ = reboot(shim_RB_AUTOBOOT)
    }
    rebootAfterDelay()
}

/// Waits nbdboot.fail-delay seconds, syncs, reboot(RB_AUTOBOOT); if even
/// that fails, sleeps forever rather than exit.
func rebootAfterDelay() -> Never {
    let delay = Failure.delaySeconds
    Log.write(level: Log.error, "rebooting in \(delay) s (nbdboot.fail-delay=N changes this)")
    shim_sleep_ms(delay * 1000)
    sync()
    _ = reboot(shim_RB_AUTOBOOT)
    Log.write(level: Log.error, "reboot failed: \(Errno.current.description); halting here")
    while true { shim_sleep_ms(3_600_000) }
}
