// Step 1 (the kernel filesystems) and step 6a (the root filesystem).
// mount(2); the Debian kernel does not mount devtmpfs on /dev by itself for
// an initramfs (CONFIG_DEVTMPFS_MOUNT acts only on the real root).
#if canImport(CShims)
import CShims
#endif
#if canImport(BootCore)
import BootCore
#endif

/// mount(2) with typed errors; `data` nil or the options string.
func mountFilesystem(_ source: String, on target: String, type: String?, flags: UInt, data: String? = nil) throws(SysError) {
    let rc: Int32
    switch (type, data) {
    case let (t?, d?): rc = mount(source, target, t, flags, d)
    case let (t?, nil): rc = mount(source, target, t, flags, nil)
    case let (nil, d?): rc = mount(source, target, nil, flags, d)
    case (nil, nil): rc = mount(source, target, nil, flags, nil)
    }
    if rc != 0 { throw SysError("mount", Errno.current, "\(source) on \(target)") }
}

/// Mounts proc, sysfs, devtmpfs and tmpfs (/run); an already mounted one
/// (EBUSY) is fine. Then makes sure fds 0-2 are the console.
func mountKernelFilesystems() throws(InitFailure) {
    let table: [(String, String, String, UInt, String?)] = [
        ("proc", "/proc", "proc", shim_MS_NOSUID | shim_MS_NODEV | shim_MS_NOEXEC, nil),
        ("sysfs", "/sys", "sysfs", shim_MS_NOSUID | shim_MS_NODEV | shim_MS_NOEXEC, nil),
        ("devtmpfs", "/dev", "devtmpfs", shim_MS_NOSUID, "mode=0755"),
        ("tmpfs", "/run", "tmpfs", shim_MS_NOSUID | shim_MS_NODEV, "mode=0755"),
    ]
    for (source, target, type, flags, data) in table {
        do {
            try makeDirectory(target)
            try mountFilesystem(source, on: target, type: type, flags: flags, data: data)
        } catch {
            if error.errno == .busy { continue }
            throw InitFailure("cannot mount \(type) on \(target)", error,
                              hint: "the kernel needs CONFIG_PROC_FS, CONFIG_SYSFS, CONFIG_DEVTMPFS and CONFIG_TMPFS")
        }
    }
    setUpConsole()
    Log.readConsoleLevel()
}

/// If the kernel found no /dev/console in the initramfs, fds 0-2 are
/// closed: open the console from devtmpfs and dup2(2) it onto them.
func setUpConsole() {
    if shim_fcntl(1, F_GETFD, 0) >= 0 && shim_fcntl(0, F_GETFD, 0) >= 0 { return }
    let fd = shim_open("/dev/console", O_RDWR | O_NOCTTY, 0)
    guard fd >= 0 else { return }
    for target: Int32 in 0...2 where shim_fcntl(target, F_GETFD, 0) < 0 { _ = dup2(fd, target) }
    if fd > 2 { _ = close(fd) }
}

/// Mounts `device` on `target` (type, ro, data); a failure names the
/// device and a hint for the usual errno values.
func mountBlockDevice(_ device: String, on target: String, type: String, readOnly: Bool, data: String, flags extra: UInt = 0) throws(InitFailure) {
    try? makeDirectory(target)
    let flags: UInt = (readOnly ? shim_MS_RDONLY : 0) | extra
    do {
        try mountFilesystem(device, on: target, type: type, flags: flags, data: data.isEmpty ? nil : data)
    } catch {
        let hint: Message
        switch error.errno.rawValue {
        case ENODEV: hint = "the kernel does not know filesystem type \(type): add its module to the image (nbdboot initramfs build --add-module \(type)) or fix rootfstype="
        case EINVAL: hint = "the device does not hold a \(type) filesystem (or one with blocks smaller than the NBD block size, bs=)\(data.isEmpty ? "" : ", or the options " + data + " are wrong"): see the kernel's message above, check the export's content and rootfstype="
        case ENOENT, ENXIO: hint = "the device node is missing: check root= (partition number) and the export"
        case EROFS, EACCES: hint = "the device is read-only (a read-only export?): boot with ro or nbdboot.overlay=tmpfs"
        default: hint = "see the kernel messages above for the filesystem's own reason (for ext4 on Debian, crc32c must be loaded)"
        }
        throw InitFailure("cannot mount \(device) on \(target) (\(type), \(readOnly ? "ro" : "rw"))", error, hint: hint)
    }
}

/// mkdir -p.
func makeDirectories(_ path: String) {
    var prefix = ""
    for part in splitFields(path, "/") where !part.isEmpty {
        prefix += "/" + part
        try? makeDirectory(prefix)
    }
}
