// Running a program from PID 1: fork(2), execve(2) in the child,
// waitpid(2) in the parent; and the exec of the real init.
#if canImport(CShims)
import CShims
#endif

/// The environment for children and the real init: the kernel's (the
/// unknown key=value words of the command line, HOME, TERM) plus a PATH.
func childEnvironment() -> [String] {
    var env: [String] = []
    if var p = shim_environ() {
        while let s = p.pointee {
            env.append(String(cString: s))
            p += 1
        }
    }
    if !env.contains(where: { $0.hasPrefix("PATH=") }) {
        env.append("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    }
    return env
}

/// A NULL-terminated C string array (strdup'ed: used right before exec).
func cStringArray(_ items: [String]) -> [UnsafeMutablePointer<CChar>?] {
    var out: [UnsafeMutablePointer<CChar>?] = items.map { strdup($0) }
    out.append(nil)
    return out
}

/// How a child ended: exit status, or the signal that killed it.
struct ExitStatus {
    var code: Int32?
    var signal: Int32?
    var text: String { code.map { "exit status \($0)" } ?? "killed by signal \(signal ?? 0)" }
}

/// Runs `path` with `arguments` (argv[0] included) and waits for it.
func runProgram(_ path: String, _ arguments: [String]) throws(SysError) -> ExitStatus {
    let argv = cStringArray(arguments)
    let envp = cStringArray(childEnvironment())
    let pid = fork()
    if pid < 0 { throw SysError("fork", Errno.current, path) }
    if pid == 0 {
        _ = execve(path, argv, envp)
        let e = Errno.current
        writeAllIgnoringErrors(2, "nbdboot-init: cannot execute \(path): \(e.description)\n")
        _exit(127)
    }
    var status: Int32 = 0
    while true {
        let r = waitpid(pid, &status, 0)
        if r == pid { break }
        if r < 0 && Errno.current != .interrupted { throw SysError("waitpid", Errno.current, path) }
    }
    if status & 0x7F == 0 { return ExitStatus(code: (status >> 8) & 0xFF, signal: nil) }
    return ExitStatus(code: nil, signal: status & 0x7F)
}
