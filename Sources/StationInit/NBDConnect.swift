// Step 5: connect the NBD device with the image's static client,
//   /sbin/nbd-client HOST PORT /dev/nbdN -N NAME -systemd-mark [-persist]
//                    [-swap] [-b BS] [-t SEC]
// which exits 0 once the device is connected (with -persist it leaves an
// '@'-marked child to reconnect), then wait until the kernel reports the
// disk's size. nbdboot.toram connects without -persist (the device is
// disconnected with `nbd-client -d` once copied); nbdswap= adds -swap.
#if canImport(CShims)
import CShims
#endif
#if canImport(BootCore)
import BootCore
#endif

let nbdClientPath = "/sbin/nbd-client"
let deviceSizeWaitMillis: Int64 = 10_000

/// Connects `device` to `server` and waits for /sys/block/nbdN/size > 0
/// (and the partition node when root= names one); returns the size in bytes.
@discardableResult
func connectNBD(_ server: NBDServerSpec, device: NBDDevice, persist: Bool = true, swap: Bool = false) throws(InitFailure) -> UInt64 {
    let whole = device.whole
    var args = [nbdClientPath, server.host, "\(server.port)", whole.path, "-N", server.exportName, "-systemd-mark"]
    if persist { args.append("-persist") }
    if swap { args.append("-swap") }
    if let bs = server.blockSize { args += ["-b", "\(bs)"] }
    if let t = server.timeoutSeconds { args += ["-t", "\(t)"] }
    log("connecting \(whole.path) to \(server.text): \(args.joined(separator: " "))")
    let status: ExitStatus
    do { status = try runProgram(nbdClientPath, args) } catch {
        throw InitFailure("cannot run \(nbdClientPath)", error, hint: "the initramfs must contain the static nbd-client")
    }
    guard status.code == 0 else {
        throw InitFailure("nbd-client for \(server.text) on \(whole.path) failed with \(status.text)",
                          hint: "check that the NBD server runs on \(server.host) port \(server.port) and exports \"\(server.exportName)\" (nbdroot=), and the client's message above")
    }
    let sizePath = "/sys/block/\(whole.blockName)/size"
    var sectors = 0
    let ok = waitUntil(timeoutMillis: deviceSizeWaitMillis) {
        guard let t = try? readTextFile(sizePath), let n = parseDecimal(trimSpaces(t), max: 1 << 60) else { return false }
        sectors = n
        return n > 0
    }
    guard ok else {
        throw InitFailure("\(whole.path) still has size 0 after \(deviceSizeWaitMillis / 1000) s although nbd-client succeeded",
                          hint: "see the kernel's nbd messages above; is the export empty?")
    }
    log("\(whole.path) connected: \(sectors / 2048) MiB")
    if device.partition != nil {
        scanPartitions(whole)
        guard waitUntil(timeoutMillis: deviceSizeWaitMillis, { pathExists(device.path) }) else {
            throw InitFailure("\(device.path) did not appear (root=)",
                              hint: "the export has no such partition, or nbd was loaded without max_part (use nbd.ko max_part=15 in /etc/nbdboot/modules)")
        }
    }
    return UInt64(sectors) * 512
}

/// `nbd-client -d /dev/nbdN`: the kernel sends NBD_CMD_DISC and drops the
/// device's configuration. Returns whether the client said it worked.
@discardableResult
func disconnectNBD(_ devicePath: String, client: String = nbdClientPath) -> Bool {
    do {
        let status = try runProgram(client, [client, "-d", devicePath])
        if status.code == 0 { return true }
        logWarning("\(client) -d \(devicePath) ended with \(status.text)")
    } catch {
        logWarning("cannot run \(client) -d \(devicePath): \(error.description)")
    }
    return false
}

/// Makes the kernel read the partition table: nbd marks the disk for a
/// partition scan when its size is set (max_part > 0), and the scan runs on
/// the next open of the whole device (blkdev_get_whole); udev would do
/// that open, the initramfs has none. BLKRRPART asks again, as
/// `blockdev --rereadpt` does in Debian's newer nbd initramfs script.
func scanPartitions(_ whole: NBDDevice) {
    let fd = shim_open(whole.path, O_RDONLY | O_CLOEXEC, 0)
    guard fd >= 0 else {
        logWarning("cannot open \(whole.path) to read its partition table: \(Errno.current.description)")
        return
    }
    if shim_ioctl(fd, shim_BLKRRPART, 0) != 0 {
        logDebug("BLKRRPART on \(whole.path): \(Errno.current.description)")
    }
    _ = close(fd)
}
