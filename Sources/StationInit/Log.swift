// Logging for PID 1: each line goes to the kernel log (/dev/kmsg, with a
// <level> prefix, as booster's init/logging.go does) so it is in dmesg
// after the switch, and to the console, once: when the kernel already
// echoes the kmsg line to the console (its level is below the console
// log level, /proc/sys/kernel/printk's first field; `quiet` lowers it to
// 4), the init does not write it again. Lines look like
//   nbdboot-init: mounted /dev/nbd0 on /newroot (ext4, rw) [+812 ms]
// where the suffix is the time since the init started.
// /dev/kmsg is opened per line: the kernel rate-limits each open file to
// 10 lines per 5 s (printk.devkmsg=ratelimit), which a boot exceeds.
#if canImport(CShims)
import CShims
#endif
#if canImport(BootCore)
import BootCore
#endif

enum Log {
    nonisolated(unsafe) static var startMillis: Int64 = 0
    nonisolated(unsafe) static var debug = false
    /// Lines below this level reach the console through the kernel; 0
    /// until /proc is mounted (so nothing is assumed echoed).
    nonisolated(unsafe) static var consoleLevel = 0

    /// kmsg levels (syslog(3)): 3 err, 4 warning, 6 info, 7 debug.
    static let error = 3, warning = 4, info = 6, debugLevel = 7

    /// Milliseconds since the init started.
    static var elapsed: Int64 { shim_monotonic_ms() - startMillis }

    /// Reads the console log level once /proc is mounted.
    static func readConsoleLevel() {
        guard let t = try? readTextFile("/proc/sys/kernel/printk") else { return }
        let first = splitFields(trimSpaces(t), "\t").first ?? ""
        consoleLevel = parseDecimal(trimSpaces(first), max: 15) ?? 0
    }

    static func write(level: Int, _ message: Message) {
        let line = "nbdboot-init: \(message.text) [+\(elapsed) ms]"
        var echoed = false
        let fd = shim_open("/dev/kmsg", O_WRONLY | O_CLOEXEC | O_NOCTTY, 0)
        if fd >= 0 {
            echoed = writeAllIgnoringErrors(fd, "<\(level)>\(line)\n") && level < consoleLevel
            _ = close(fd)
        }
        if !echoed && (level < debugLevel || debug) {
            _ = writeAllIgnoringErrors(1, line + "\n")
        }
    }
}

/// Logs a step at info level.
func log(_ message: Message) { Log.write(level: Log.info, message) }
/// Logs something unexpected that does not stop the boot.
func logWarning(_ message: Message) { Log.write(level: Log.warning, Message("warning: " + message.text)) }
/// Logs a detail: always to kmsg (debug level); to the console only with nbdboot.debug.
func logDebug(_ message: Message) { Log.write(level: Log.debugLevel, message) }

/// write(2) until done; returns false on an error (nothing to report it to).
@discardableResult
func writeAllIgnoringErrors(_ fd: Int32, _ text: String) -> Bool {
    var bytes = Array(text.utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeMutableBytes { b in CShims_write(fd, b.baseAddress! + done, b.count - done) }
        if n < 0 && Errno.current == .interrupted { continue }
        if n <= 0 { return false }
        done += n
    }
    return true
}
