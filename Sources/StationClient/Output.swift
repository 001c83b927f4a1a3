// Messages to stdout and stderr with write(2): no stdio buffering, so nothing
// is lost or duplicated across fork().

/// Writes `text` to standard output as is.
func printOut(_ text: String) {
    try? FileDescriptor(1).writeAll(Array(text.utf8))
}

/// "nbd-client: TEXT" on standard error (the kernel log once daemonized), one write.
func printError(_ text: String) {
    try? FileDescriptor(2).writeAll(Array("nbd-client: \(text)\n".utf8))
}

/// Detaches a resident child from its caller: new session, stdin/stdout on
/// /dev/null, stderr on /dev/kmsg (the console's log) or /dev/null. The caller
/// can then wait for the parent alone, even through a pipe.
func detach() {
    _ = setsid()
    _ = chdir("/")
    let null = shim_open("/dev/null", O_RDWR, 0)
    if null >= 0 {
        _ = dup2(null, 0)
        _ = dup2(null, 1)
    }
    let kmsg = shim_open("/dev/kmsg", O_WRONLY, 0)
    if kmsg >= 0 {
        _ = dup2(kmsg, 2)
        _ = close(kmsg)
    } else if null >= 0 {
        _ = dup2(null, 2)
    }
    if null > 2 { _ = close(null) }
}

/// -swap: keep a process that serves the device's I/O path out of swap
/// (mlockall(MCL_CURRENT | MCL_FUTURE): every page now and every page it
/// maps later stays in RAM) and away from the OOM killer.
func lockInMemory() {
    if mlockall(shim_MCL_CURRENT | shim_MCL_FUTURE) != 0 {
        printError("mlockall: \(Errno.current.description) (continuing unlocked)")
    }
    protectFromOOM()
}

/// /proc/self/oom_score_adj = -1000: the OOM killer never picks this process.
func protectFromOOM() {
    let fd = shim_open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC, 0)
    guard fd >= 0 else { return }
    _ = write(fd, "-1000", 5)
    _ = close(fd)
}
