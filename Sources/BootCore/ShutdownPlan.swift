// The pure parts of the shutdown program (StationInit/Shutdown.swift) and
// of the RAM copy: which verb systemd-shutdown passed, which mounts hold
// the old root, how much memory is available.
//
// systemd-shutdown (src/shutdown/shutdown.c) pivots into /run/initramfs,
// leaves the old root at /oldroot and runs execv("/shutdown", argv) with
// its own argv, whose first non-option word is the verb: poweroff, reboot,
// halt or kexec.

/// What the machine does at the end of the shutdown program.
public enum ShutdownVerb: String, Equatable, Sendable {
    case poweroff, reboot, halt, kexec

    /// The first argument that is a verb; poweroff when there is none.
    public static func parse(_ arguments: [String]) -> ShutdownVerb {
        for a in arguments { if let v = ShutdownVerb(rawValue: a) { return v } }
        return .poweroff
    }
}

/// The mount points at or below `prefix` in /proc/self/mountinfo text
/// (proc(5): field 5 is the mount point, with space, tab, newline and
/// backslash escaped as \040 \011 \012 \134), in the order to unmount them:
/// deepest path first, so every mount goes before the one it sits on; among
/// equal paths (mounts stacked on one point) the later listed first. The
/// listing order alone is not enough: after pivot_root the old root is
/// listed after the mounts on it.
public func mountPointsToUnmount(mountinfo: String, under prefix: String) -> [String] {
    var points: [(depth: Int, index: Int, path: String)] = []
    for line in splitFields(mountinfo, "\n") {
        let f = splitFields(line, " ")
        guard f.count > 4 else { continue }
        let p = unescapeMountField(f[4])
        if p == prefix || p.hasPrefix(prefix + "/") {
            let depth = p.utf8.reduce(0) { $0 + ($1 == UInt8(ascii: "/") ? 1 : 0) }
            points.append((depth, points.count, p))
        }
    }
    points.sort { $0.depth != $1.depth ? $0.depth > $1.depth : $0.index > $1.index }
    return points.map { $0.path }
}

/// Undoes the kernel's octal escapes in /proc/self/mountinfo fields.
public func unescapeMountField(_ s: String) -> String {
    let b = Array(s.utf8)
    var out: [UInt8] = []
    var i = 0
    while i < b.count {
        if b[i] == UInt8(ascii: "\\"), i + 3 < b.count,
           b[(i + 1)...(i + 3)].allSatisfy({ $0 >= 0x30 && $0 <= 0x37 }) {
            out.append((b[i + 1] - 0x30) << 6 | (b[i + 2] - 0x30) << 3 | (b[i + 3] - 0x30))
            i += 4
        } else {
            out.append(b[i])
            i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}

/// `MemAvailable:` of /proc/meminfo in bytes, or nil.
public func memAvailableBytes(meminfo: String) -> UInt64? {
    for line in splitFields(meminfo, "\n") where line.hasPrefix("MemAvailable:") {
        let words = splitFields(line, " ").filter { !$0.isEmpty }
        guard words.count >= 2, let kib = parseDecimal(words[1], max: 1 << 50) else { return nil }
        return UInt64(kib) * 1024
    }
    return nil
}

/// Whether a device of `size` bytes may be copied into RAM: at most half
/// of MemAvailable, so the system keeps room to run.
public func fitsInRAM(size: UInt64, available: UInt64) -> Bool {
    size <= available / 2
}

/// The active swap areas' paths from /proc/swaps (first column after the header).
public func swapPaths(procSwaps: String) -> [String] {
    var out: [String] = []
    for (i, line) in splitFields(procSwaps, "\n").enumerated() where i > 0 {
        let words = splitFields(line, " ").filter { !$0.isEmpty }
        if let w = words.first { out.append(unescapeMountField(w)) }
    }
    return out
}
