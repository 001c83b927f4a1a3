// Step 6a: which block device holds the root and what filesystem it is.
// root=/dev/nbdN[pM] names it; root=LABEL=x / root=UUID=y are looked up on
// the connected disk and its partitions (/sys/block/nbdN/nbdNpM, after
// BLKRRPART) with BootCore's superblock probe, as libblkid would. The
// filesystem type is rootfstype= (or dracut's FSTYPE) when given, else the
// probe's answer.
#if canImport(CShims)
import CShims
#endif
#if canImport(BootCore)
import BootCore
#endif

/// Reads the first bytes of a device (up to `length`); nil when it cannot be read.
func readDeviceHead(_ path: String, length: Int = filesystemProbeLength) -> [UInt8]? {
    let fd = shim_open(path, O_RDONLY | O_CLOEXEC, 0)
    guard fd >= 0 else { return nil }
    defer { _ = close(fd) }
    var buf = [UInt8](repeating: 0, count: length)
    var done = 0
    while done < length {
        let n = buf.withUnsafeMutableBytes { b in pread(fd, b.baseAddress! + done, length - done, off_t(done)) }
        if n < 0 && Errno.current == .interrupted { continue }
        if n <= 0 { break }
        done += n
    }
    return done > 0 ? Array(buf[0..<done]) : nil
}

/// The probe's answer for a device, nil when unknown or unreadable.
func probeDevice(_ path: String) -> FilesystemSignature? {
    readDeviceHead(path).flatMap { probeFilesystem($0) }
}

/// The whole disk and its partitions, as device paths (partitions by number).
func diskAndPartitions(_ whole: NBDDevice) -> [String] {
    let name = whole.blockName
    var parts: [(Int, String)] = []
    for entry in listDirectory("/sys/block/\(name)") where entry.hasPrefix(name + "p") {
        let number = String(decoding: Array(entry.utf8).dropFirst(name.utf8.count + 1), as: UTF8.self)
        if let n = parseDecimal(number, max: 255) { parts.append((n, "/dev/" + entry)) }
    }
    parts.sort { $0.0 < $1.0 }
    return [whole.path] + parts.map { $0.1 }
}

/// The root device's path and its filesystem type, as the selector and
/// `fsType` (nil: detect) say.
func locateRoot(_ root: NBDRoot, fsType: String?) throws(InitFailure) -> (path: String, fsType: String) {
    var path = root.device.path
    var found: FilesystemSignature? = nil
    switch root.selector {
    case .device:
        break
    case .label(let want), .uuid(let want):
        let isLabel: Bool
        if case .label = root.selector { isLabel = true } else { isLabel = false }
        let what = isLabel ? "LABEL=\(want)" : "UUID=\(want)"
        scanPartitions(root.device.whole)
        var seen: [String] = []
        // The partition nodes appear shortly after the scan (devtmpfs).
        _ = waitUntil(timeoutMillis: 2000) {
            seen = []
            found = nil
            for candidate in diskAndPartitions(root.device.whole) {
                guard let sig = probeDevice(candidate) else {
                    seen.append("\(candidate): unknown")
                    continue
                }
                seen.append("\(candidate): \(sig.type)\(sig.label.isEmpty ? "" : " LABEL=" + sig.label)\(sig.uuid.isEmpty ? "" : " UUID=" + sig.uuid)")
                if (isLabel && sig.label == want) || (!isLabel && sig.matches(uuid: want)) {
                    path = candidate
                    found = sig
                    return true
                }
            }
            return false
        }
        guard let sig = found else {
            throw InitFailure("no filesystem with \(what) on \(root.device.whole.path) or its partitions (found: \(seen.joined(separator: "; ")))",
                              hint: "check root= against the image (e2label / blkid on the server), or name the device: root=/dev/nbd0p1")
        }
        log("root \(what) is \(path) (\(sig.type))")
    }
    if let t = fsType { return (path, t) }
    if found == nil { found = probeDevice(path) }
    guard let sig = found else {
        throw InitFailure("cannot tell the filesystem type of \(path): no ext2/3/4, squashfs, xfs or btrfs superblock",
                          hint: "give it with rootfstype=, or check that the export holds a filesystem (a partitioned disk needs root=/dev/nbd0p1)")
    }
    if sig.type == "swap" {
        throw InitFailure("\(path) holds a swap area, not a root filesystem", hint: "check root= and the export name")
    }
    logDebug("\(path) holds \(sig.type)")
    return (path, sig.type)
}
