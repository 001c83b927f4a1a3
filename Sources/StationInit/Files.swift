// Small file helpers for the init: whole-file read and write, directory
// listing, existence checks. Paths are kernel paths (/proc, /sys, /run).
#if canImport(CShims)
import CShims
#endif

/// Reads a whole (small) file as text, or throws.
func readTextFile(_ path: String) throws(SysError) -> String {
    let fd = try FileDescriptor.open(path, O_RDONLY)
    defer { fd.close() }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buf.withUnsafeMutableBytes { b in CShims_read(fd.rawValue, b.baseAddress, b.count) }
        if n < 0 {
            if Errno.current == .interrupted { continue }
            throw SysError("read", Errno.current, path)
        }
        if n == 0 { break }
        out += buf[0..<n]
        if out.count > 1 << 20 { break }  // nothing the init reads is this big
    }
    return String(decoding: out, as: UTF8.self)
}

/// Writes `text` to `path`, creating or truncating it.
func writeTextFile(_ path: String, _ text: String, mode: Int32 = 0o644) throws(SysError) {
    let fd = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
    defer { fd.close() }
    try fd.writeAll(Array(text.utf8))
}

/// Names in a directory (without . and ..), sorted; [] if it cannot be read.
func listDirectory(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = String(cString: shim_dirent_name(entry))
        if name != "." && name != ".." { names.append(name) }
    }
    names.sort()
    return names
}

/// lstat(2) succeeds.
func pathExists(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0
}

/// Creates a directory if missing.
func makeDirectory(_ path: String, mode: mode_t = 0o755) throws(SysError) {
    if mkdir(path, mode) != 0 && Errno.current != .exists {
        throw SysError("mkdir", Errno.current, path)
    }
}

/// Polls `condition` every `stepMillis` until it holds or `timeoutMillis`
/// passed; returns whether it held.
func waitUntil(timeoutMillis: Int64, stepMillis: Int = 100, _ condition: () -> Bool) -> Bool {
    let deadline = shim_monotonic_ms() + timeoutMillis
    while true {
        if condition() { return true }
        if shim_monotonic_ms() >= deadline { return false }
        shim_sleep_ms(stepMillis)
    }
}
