// Logging for PID 1: every line goes to the console (fd 1, /dev/console)
// and to the kernel log (/dev/kmsg, with a <level> prefix as booster's
// init/logging.go does), so it is seen on the serial console and in dmesg
// after the switch. Lines look like
//   nbdboot-init: mounted /dev/nbd0 on /newroot (ext4, rw) [+812 ms]
// where the suffix is the time since the init started.
#if canImport(CShims)
import CShims
#endif

enum Log {
    nonisolated(unsafe) static var startMillis: Int64 = 0
    nonisolated(unsafe) static var kmsg: Int32 = -1
    nonisolated(unsafe) static var debug = false

    /// kmsg levels (syslog(3)): 3 err, 4 warning, 6 info, 7 debug.
    static let error = 3, warning = 4, info = 6, debugLevel = 7

    /// Milliseconds since the init started.
    static var elapsed: Int64 { shim_monotonic_ms() - startMillis }

    /// Opens /dev/kmsg (close-on-exec so the real init does not inherit it).
    static func openKmsg() {
        if kmsg >= 0 { return }
        kmsg = shim_open("/dev/kmsg", O_WRONLY | O_CLOEXEC | O_NOCTTY, 0)
    }

    static func write(level: Int, _ message: String) {
        let line = "nbdboot-init: \(message)"
        if level < debugLevel || debug {
            writeAllIgnoringErrors(1, "\(line) [+\(elapsed) ms]\n")
        }
        if kmsg >= 0 {
            writeAllIgnoringErrors(kmsg, "<\(level)>\(line)\n")
        }
    }
}

/// Logs a step at info level.
func log(_ message: String) { Log.write(level: Log.info, message) }
/// Logs something unexpected that does not stop the boot.
func logWarning(_ message: String) { Log.write(level: Log.warning, "warning: \(message)") }
/// Logs a detail: kmsg at debug level; the console only with nbdboot.debug.
func logDebug(_ message: String) { Log.write(level: Log.debugLevel, message) }

/// write(2) until done; errors are dropped (nothing to report them to).
func writeAllIgnoringErrors(_ fd: Int32, _ text: String) {
    var bytes = Array(text.utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeMutableBytes { b in CShims_write(fd, b.baseAddress! + done, b.count - done) }
        if n < 0 && Errno.current == .interrupted { continue }
        if n <= 0 { return }
        done += n
    }
}
