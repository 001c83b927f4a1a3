// nbdswap=: swap over NBD, on before switch_root. The client runs with
// -swap (it locks itself in memory; the kernel marks NBD sockets
// SOCK_MEMALLOC either way) and -persist. A device whose first page has
// no swap signature gets a version 1 header (BootCore's makeSwapHeader,
// what mkswap writes) with a random UUID; an existing area is reused as it
// is. Then swapon(2).
#if canImport(CShims)
import CShims
#endif
#if canImport(BootCore)
import BootCore
#endif

/// Connects, prepares and enables the swap device. Failures are fatal: a
/// station told to swap over NBD may not have the memory to run without it.
func enableSwap(_ swap: NBDSwap, rootServer: IPAddress?, names: NameLookup) throws(InitFailure) {
    var server = swap.server
    if server.hostFromDHCP {
        guard let s = rootServer, s != .v4(.any) else {
            throw InitFailure("nbdswap= leaves the server to DHCP, but no boot server is known",
                              hint: "write the server in nbdswap=, e.g. nbdswap=10.0.2.2:10809/\(server.exportName)")
        }
        server = server.with(server: s.text)
    }
    server = try resolvingHost(server, source: "nbdswap=", names)
    let size = try connectNBD(server, device: swap.device, persist: true, swap: true)
    let path = swap.device.path
    guard let head = readDeviceHead(path, length: 4096), head.count == 4096 else {
        throw InitFailure("nbdswap: cannot read the first page of \(path)")
    }
    if let sig = probeFilesystem(head), sig.type == "swap" {
        log("nbdswap: \(path) already holds a swap area\(sig.uuid.isEmpty ? "" : " (UUID=\(sig.uuid))"): reusing it")
    } else if let other = probeFilesystem(head) {
        throw InitFailure("nbdswap: \(path) holds a \(other.type) filesystem, not swap; refusing to overwrite it",
                          hint: "check nbdswap= (export name); wipe the export on the server if it really is a swap export")
    } else {
        var random = [UInt8](repeating: 0, count: 16)
        if let r = readDeviceHead("/dev/urandom", length: 16) { random = r }
        let uuid = version4UUID(random)
        let header: [UInt8]
        do { header = try makeSwapHeader(size: size, uuid: uuid) } catch {
            throw InitFailure("nbdswap: \(path): \(error.description)", hint: "make the swap export larger")
        }
        do {
            let fd = try FileDescriptor.open(path, O_WRONLY)
            defer { fd.close() }
            try fd.writeAll(header)
            _ = fsync(fd.rawValue)
        } catch {
            throw InitFailure("nbdswap: cannot write the swap header to \(path)", error)
        }
        log("nbdswap: wrote a swap header on \(path) (\(size >> 20) MiB, UUID=\(uuidText(uuid, 0)))")
    }
    guard shim_swapon(path) == 0 else {
        throw InitFailure("nbdswap: swapon \(path) failed", SysError("swapon", Errno.current, path),
                          hint: "the kernel needs CONFIG_SWAP; see its message above")
    }
    log("nbdswap: swap on \(path) (\(size >> 20) MiB) from \(server.text)")
}
