// Offline management of the stations' files in an overlay directory, behind
// `nbdboot overlay list|reset|commit`: what is there, remove one station's
// overlay or swap file, merge a station's overlay and its base into a new
// image. Each operation takes the same exclusive flock(2) a server holds
// while a station is connected, so it refuses ("in use by a running server")
// instead of pulling files out from under a server.
import Glibc
import LinuxSys

/// One station's files in an overlay directory.
public struct StationFiles: Equatable, Sendable {
    public enum Kind: String, Sendable { case cow, swap }
    public var station: String
    public var kind: Kind
    /// cow: blocks in the overlay (as last flushed) times the block size;
    /// swap: the file's size.
    public var logicalBytes: UInt64
    /// Space used on disk (st_blocks * 512) by the data or swap file.
    public var diskBytes: UInt64
    /// Last modification (seconds since 1970) of the data/map or swap file.
    public var modified: Int64
    /// A server (or another nbdboot) holds the station's lock.
    public var inUse: Bool
    /// cow: the base image recorded in the map header.
    public var basePath: String
    /// Why the overlay cannot be read, if it cannot (damaged header...).
    public var problem: String?
}

public enum OverlayStore {
    /// Every station in `dir`, sorted by name: `*.map` (cow) and `*.swap` files.
    public static func list(dir: String) throws(OverlayError) -> [StationFiles] {
        guard let d = opendir(dir) else {
            throw OverlayError("cannot read overlay directory \(dir): \(Errno.current.description)")
        }
        var names: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            names.append(name)
        }
        closedir(d)
        var result: [StationFiles] = []
        for name in names.sorted() {
            if name.hasSuffix(".map"), StationName.isValid(String(name.dropLast(4))) {
                result.append(cowInfo(dir: dir, station: String(name.dropLast(4))))
            } else if name.hasSuffix(".swap"), StationName.isValid(String(name.dropLast(5))) {
                result.append(swapInfo(dir: dir, station: String(name.dropLast(5))))
            }
        }
        return result
    }

    private static func cowInfo(dir: String, station: String) -> StationFiles {
        let (dataPath, mapPath) = Overlay.paths(dir: dir, station: station)
        var info = StationFiles(station: station, kind: .cow, logicalBytes: 0, diskBytes: 0, modified: 0,
                                inUse: isLocked(dataPath), basePath: "", problem: nil)
        var ds = stat(), ms = stat()
        if stat(dataPath, &ds) == 0 {
            info.diskBytes = UInt64(ds.st_blocks) * 512
            info.modified = Int64(ds.st_mtim.tv_sec)
        }
        if stat(mapPath, &ms) == 0 { info.modified = max(info.modified, Int64(ms.st_mtim.tv_sec)) }
        do {
            let (header, map) = try readMap(mapPath)
            info.basePath = header.basePath
            info.logicalBytes = map.allocatedCount * UInt64(header.blockSize)
        } catch { info.problem = error.description }
        return info
    }

    private static func swapInfo(dir: String, station: String) -> StationFiles {
        let path = SwapFile.path(dir: dir, station: station)
        var st = stat()
        var info = StationFiles(station: station, kind: .swap, logicalBytes: 0, diskBytes: 0, modified: 0,
                                inUse: isLocked(path), basePath: "", problem: nil)
        if stat(path, &st) == 0 {
            info.logicalBytes = UInt64(st.st_size)
            info.diskBytes = UInt64(st.st_blocks) * 512
            info.modified = Int64(st.st_mtim.tv_sec)
        } else {
            info.problem = "stat \(path): \(Errno.current.description)"
        }
        return info
    }

    /// Reads and checks a map file: its header and its bitmap.
    public static func readMap(_ mapPath: String) throws(OverlayError) -> (OverlayHeader, AllocationMap) {
        let fd: Int32
        do { fd = try openFile(mapPath, O_RDONLY) } catch {
            throw OverlayError("cannot open \(mapPath): \(error.errno.description)")
        }
        defer { _ = Glibc.close(fd) }
        let header = try OverlayHeader.decode(try Overlay.readAll(fd, count: OverlayHeader.size, at: 0, path: mapPath), file: mapPath)
        let bits = try Overlay.readAll(fd, count: header.bitmapBytes, at: OverlayHeader.size, path: mapPath)
        return (header, AllocationMap(blockCount: header.blockCount, bitmap: bits))
    }

    /// True when another open file description holds an flock on `path`.
    static func isLocked(_ path: String) -> Bool {
        guard let fd = try? openFile(path, O_RDONLY) else { return false }
        defer { _ = Glibc.close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { return false }
        return errno == EWOULDBLOCK
    }

    /// Takes the station's lock on `path` (exclusive, non-blocking); nil when
    /// the file does not exist.
    private static func lock(_ path: String, station: String) throws(OverlayError) -> Int32? {
        if access(path, F_OK) != 0 { return nil }
        let fd: Int32
        do { fd = try openFile(path, O_RDONLY) } catch {
            throw OverlayError("station '\(station)': cannot open \(path): \(error.errno.description)")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = Errno.current
            _ = Glibc.close(fd)
            if e.rawValue == EWOULDBLOCK {
                throw OverlayError("station '\(station)': \(path) is in use by a running server; stop the station (or the server) first")
            }
            throw OverlayError("station '\(station)': flock \(path): \(e.description)")
        }
        return fd
    }

    /// Removes the station's overlay (data, map, a leftover map.tmp) and its
    /// swap file, whichever exist, under their locks. Returns the files removed.
    public static func reset(dir: String, station: String) throws(OverlayError) -> [String] {
        if let problem = StationName.problem(station) { throw OverlayError("station '\(station)': \(problem)") }
        let (dataPath, mapPath) = Overlay.paths(dir: dir, station: station)
        let swapPath = SwapFile.path(dir: dir, station: station)
        // Take every lock before removing anything: all or nothing.
        let dataLock = try lock(dataPath, station: station)
        defer { if let dataLock { _ = Glibc.close(dataLock) } }
        let swapLock = try lock(swapPath, station: station)
        defer { if let swapLock { _ = Glibc.close(swapLock) } }
        var removed: [String] = []
        // The map goes first: a map without its data file would be refused,
        // a data file without a map is simply recreated.
        for path in [mapPath, mapPath + ".tmp", dataPath, swapPath] where access(path, F_OK) == 0 {
            guard unlink(path) == 0 else {
                throw OverlayError("station '\(station)': cannot remove \(path): \(Errno.current.description)")
            }
            removed.append(path)
        }
        if removed.isEmpty {
            throw OverlayError("station '\(station)': no overlay (\(station).map) or swap file (\(station).swap) in \(dir); nbdboot overlay list --overlays \(dir) shows what is there")
        }
        try? syncDirectory(dir)
        return removed
    }

    /// What `commit` did.
    public struct CommitResult: Equatable, Sendable {
        public var size: UInt64
        public var blocksFromOverlay: UInt64
        public var basePath: String
    }

    /// Writes base + overlay of `station` into the new file `output` (which
    /// must not exist): each block from the overlay if it holds it, else from
    /// the base; all-zero blocks are left as holes. The base and the overlay
    /// are only read. `basePath` overrides the path recorded in the overlay.
    public static func commit(dir: String, station: String, basePath: String?, output: String) throws(OverlayError) -> CommitResult {
        if let problem = StationName.problem(station) { throw OverlayError("station '\(station)': \(problem)") }
        let (dataPath, mapPath) = Overlay.paths(dir: dir, station: station)
        guard access(mapPath, F_OK) == 0 else {
            throw OverlayError("station '\(station)': no overlay \(mapPath); nbdboot overlay list --overlays \(dir) shows what is there")
        }
        guard let dataLock = try lock(dataPath, station: station) else {
            throw OverlayError("station '\(station)': \(dataPath) is missing; the overlay is incomplete")
        }
        defer { _ = Glibc.close(dataLock) }
        let (header, map) = try readMap(mapPath)
        let basePath = basePath ?? header.basePath
        let base: FileBackend
        do { base = try FileBackend(path: basePath, readOnly: true) } catch {
            throw OverlayError("station '\(station)': cannot open its base image \(basePath): \(error.errno.description)")
        }
        defer { base.close() }
        var st = stat()
        guard stat(basePath, &st) == 0 else { throw OverlayError("stat \(basePath): \(Errno.current.description)") }
        let identity = BaseIdentity(size: base.size, mtimeSeconds: Int64(st.st_mtim.tv_sec), mtimeNanoseconds: UInt32(st.st_mtim.tv_nsec))
        if let why = header.mismatch(with: identity, basePath: basePath) {
            throw OverlayError("station '\(station)': \(why); refusing to merge blocks into a base they were not made for")
        }
        let out: Int32
        do { out = try openFile(output, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644) } catch {
            let hint = error.errno == .exists ? "; it exists: commit writes a new file, give another name" : ""
            throw OverlayError("cannot create \(output): \(error.errno.description)\(hint)")
        }
        var ok = false
        defer {
            _ = Glibc.close(out)
            if !ok { unlink(output) }
        }
        let dataFD = dataLock  // the locked descriptor reads the data file too
        let bs = UInt64(header.blockSize)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(bs), alignment: 16)
        defer { buffer.deallocate() }
        var fromOverlay: UInt64 = 0
        do throws(SysError) {
            for block in 0..<header.blockCount {
                let start = block * bs
                let part = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(min(bs, header.base.size - start))])
                if map.isAllocated(block) {
                    try Overlay.preadFully(dataFD, part, at: start, path: dataPath)
                    fromOverlay += 1
                } else {
                    try base.read(into: part, at: start)
                }
                if part.contains(where: { $0 != 0 }) {
                    try Overlay.pwriteFully(out, UnsafeRawBufferPointer(part), at: start, path: output)
                }
            }
            _ = try sysCall("ftruncate", output) { ftruncate(out, off_t(header.base.size)) }
            _ = try sysCall("fsync", output) { fsync(out) }
        } catch {
            throw OverlayError("commit of station '\(station)' into \(output) failed: \(error.description)")
        }
        ok = true
        return CommitResult(size: header.base.size, blocksFromOverlay: fromOverlay, basePath: basePath)
    }
}
