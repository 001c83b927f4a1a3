// Step 6b: the root filesystem on /newroot, in one of three modes.
//   direct        the device itself, ro or rw as the command line says.
//   overlay       nbdboot.overlay=tmpfs (LTSP's model): the device
//                 read-only on /run/nbdboot/lower, a tmpfs on
//                 /run/nbdboot/rw holding upper/ and work/, and overlayfs
//                 (Documentation/filesystems/overlayfs.rst) on /newroot.
//                 /run moves into the new root at the switch, so the layers
//                 stay reachable there as /run/nbdboot/{lower,rw}.
//   toram         nbdboot.toram (archiso's copytoram): the whole NBD disk
//                 copied into /run/nbdboot/ram/root.img (a tmpfs sized to
//                 it; refused when the disk is larger than half of
//                 MemAvailable), NBD disconnected, the copy attached to a
//                 loop device (loop(4), LOOP_CONFIGURE) and mounted.
#if canImport(CShims)
import CShims
#endif
#if canImport(BootCore)
import BootCore
#endif

let nbdbootRunDir = "/run/nbdboot"

/// Mounts the root at `path` (type `fsType`) on /newroot as `mode` says;
/// returns what the switch message calls it.
func mountRoot(path: String, fsType: String, settings: RootMountSettings, mode: RootMode,
               disk: NBDDevice, diskSize: UInt64) throws(InitFailure) -> String {
    switch mode {
    case .direct:
        try mountBlockDevice(path, on: "/newroot", type: fsType, readOnly: settings.readOnly, data: settings.data, flags: settings.flags)
        log("mounted \(path) on /newroot (\(fsType), \(settings.text))")
        return "\(path) (\(fsType), \(settings.readOnly ? "ro" : "rw"))"
    case .overlayTmpfs:
        return try mountOverlay(path: path, fsType: fsType, settings: settings)
    case .toRAM:
        return try mountInRAM(path: path, fsType: fsType, settings: settings, disk: disk, diskSize: diskSize)
    }
}

/// The read-only device under a tmpfs upper layer.
func mountOverlay(path: String, fsType: String, settings: RootMountSettings) throws(InitFailure) -> String {
    let lower = nbdbootRunDir + "/lower", rw = nbdbootRunDir + "/rw"
    makeDirectories(lower)
    makeDirectories(rw)
    try mountBlockDevice(path, on: lower, type: fsType, readOnly: true, data: settings.data, flags: settings.flags)
    do { try mountFilesystem("tmpfs", on: rw, type: "tmpfs", flags: 0, data: "mode=0755") } catch {
        throw InitFailure("cannot mount the overlay's tmpfs on \(rw)", error)
    }
    for d in ["/upper", "/work"] {
        do { try makeDirectory(rw + d) } catch { throw InitFailure("cannot create \(rw + d)", error) }
    }
    let options = "lowerdir=\(lower),upperdir=\(rw)/upper,workdir=\(rw)/work"
    try? makeDirectory("/newroot")
    do { try mountFilesystem("overlay", on: "/newroot", type: "overlay", flags: 0, data: options) } catch {
        throw InitFailure("cannot mount overlayfs on /newroot (\(options))", error,
                          hint: error.errno.rawValue == ENODEV ? "the image lacks the overlay module: nbdboot initramfs build --add-module overlay" : "see the kernel's overlayfs message above")
    }
    log("mounted \(path) (\(fsType), ro) on \(lower) and overlayfs on /newroot with a tmpfs upper layer: writes stay in RAM")
    return "overlay of \(path) (\(fsType), ro) + tmpfs"
}

/// Copies the disk into RAM, disconnects NBD, mounts the copy through a loop device.
func mountInRAM(path: String, fsType: String, settings: RootMountSettings, disk: NBDDevice, diskSize: UInt64) throws(InitFailure) -> String {
    let mib = diskSize >> 20
    guard let meminfo = try? readTextFile("/proc/meminfo"), let available = memAvailableBytes(meminfo: meminfo) else {
        throw InitFailure("nbdboot.toram: cannot read MemAvailable from /proc/meminfo")
    }
    guard fitsInRAM(size: diskSize, available: available) else {
        throw InitFailure("nbdboot.toram: \(disk.path) holds \(mib) MiB, but a RAM copy may take at most half of the \(available >> 20) MiB available (MemAvailable)",
                          hint: "give the station more RAM, use a smaller image, or boot without nbdboot.toram (nbdboot.overlay=tmpfs keeps only the writes in RAM)")
    }
    let dir = nbdbootRunDir + "/ram", image = dir + "/root.img"
    makeDirectories(dir)
    do { try mountFilesystem("tmpfs", on: dir, type: "tmpfs", flags: shim_MS_NODEV | shim_MS_NOSUID, data: "size=\(diskSize + (1 << 20)),mode=0700") } catch {
        throw InitFailure("nbdboot.toram: cannot mount a tmpfs of \(mib + 1) MiB on \(dir)", error)
    }
    let start = shim_monotonic_ms()
    do { try copyFile(disk.path, to: image, mode: 0o600) } catch {
        throw InitFailure("nbdboot.toram: copying \(disk.path) to \(image) failed", error)
    }
    log("nbdboot.toram: copied \(disk.path) (\(mib) MiB) to \(image) in \(shim_monotonic_ms() - start) ms")
    _ = disconnectNBD(disk.path)
    log("nbdboot.toram: disconnected \(disk.path); the root no longer needs the server")
    let fd = shim_open(image, O_RDWR | O_CLOEXEC, 0)
    guard fd >= 0 else { throw InitFailure("nbdboot.toram: cannot open \(image)", SysError("open", Errno.current, image)) }
    let partition = path == disk.path ? "" : String(decoding: Array(path.utf8).dropFirst(disk.path.utf8.count), as: UTF8.self)
    let n = shim_loop_attach(fd, partition.isEmpty ? 0 : 1)
    let e = Errno.current
    _ = close(fd)
    guard n >= 0 else {
        throw InitFailure("nbdboot.toram: cannot attach \(image) to a loop device", SysError("ioctl(LOOP_CONFIGURE)", e, image),
                          hint: "the image needs the loop module: nbdboot initramfs build --add-module loop")
    }
    let loopPath = "/dev/loop\(n)" + partition
    guard waitUntil(timeoutMillis: 5000, { pathExists(loopPath) }) else {
        throw InitFailure("nbdboot.toram: \(loopPath) did not appear after attaching \(image)")
    }
    try mountBlockDevice(loopPath, on: "/newroot", type: fsType, readOnly: settings.readOnly, data: settings.data, flags: settings.flags)
    log("mounted \(loopPath) (the RAM copy of \(path)) on /newroot (\(fsType), \(settings.text))")
    return "\(loopPath), a RAM copy of \(path) (\(fsType), \(settings.readOnly ? "ro" : "rw"))"
}

/// Copies `source` (a file or a block device) to a new file `target`, 1 MiB at a time.
func copyFile(_ source: String, to target: String, mode: Int32 = 0o644) throws(SysError) {
    let input = try FileDescriptor.open(source, O_RDONLY)
    defer { input.close() }
    let output = try FileDescriptor.open(target, O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
    defer { output.close() }
    var buf = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = buf.withUnsafeMutableBytes { b in CShims_read(input.rawValue, b.baseAddress, b.count) }
        if n < 0 {
            if Errno.current == .interrupted { continue }
            throw SysError("read", Errno.current, source)
        }
        if n == 0 { return }
        try output.writeAll(Array(buf[0..<n]))
    }
}
