// The failure path of PID 1. PID 1 must never exit (the kernel panics with
// "Attempted to kill init!"), and the image has no shell to drop into: so a
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

    init(_ what: String, hint: String = "") {
        self.what = what
        self.hint = hint
    }

    init(_ what: String, _ error: SysError, hint: String = "") {
        self.what = "\(what): \(error.description)"
        self.hint = hint
    }

    var description: String { hint.isEmpty ? what : "\(what); \(hint)" }
}

enum Failure {
    nonisolated(unsafe) static var delaySeconds = 10
}

/// Logs `nbdboot-init: FATAL: ...`, waits, reboots. Never returns.
func fatal(_ failure: InitFailure) -> Never {
    Log.write(level: Log.error, "FATAL: \(failure.description)")
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
