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

/// -swap: keep a process that serves the device's I/O path out of swap and
/// away from the OOM killer (mlockall(2), /proc/self/oom_score_adj = -1000).
func lockInMemory() {
    if mlockall(shim_MCL_CURRENT | shim_MCL_FUTURE) != 0 {
        printError("mlockall: \(Errno.current.description) (continuing unlocked)")
    }
    if let fd = try? FileDescriptor.open("/proc/self/oom_score_adj", O_WRONLY) {
        try? fd.writeAll(Array("-1000".utf8))
        fd.close()
    }
}
