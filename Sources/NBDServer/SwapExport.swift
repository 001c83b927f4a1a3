// A station's swap file: `DIR/STATION.swap`, a sparse file of the export's
// configured size, created on the station's first connect and found again on
// every reconnect (and after a server restart). No copy-on-write: every
// command goes straight to the file through a FileBackend (pread/pwrite,
// fdatasync for FLUSH, PUNCH_HOLE for TRIM, so the file only holds what is
// swapped out; SEEK_DATA/SEEK_HOLE for BLOCK_STATUS; WRITE_ZEROES and CACHE).
// An flock(2) held while it is open makes `nbdboot overlay reset` refuse to
// remove it under a running server.
import Glibc
import LinuxSys

public final class SwapFile: BlockBackend, @unchecked Sendable {
    public let station: String
    public let path: String
    public var size: UInt64 { file.size }
    /// True when this open created the file.
    public let created: Bool
    /// Holds the lock (and created the file); `file` does the I/O.
    private let lockFD: Int32
    private let file: FileBackend
    private let lock = Monitor()
    private var closed = false

    public static func path(dir: String, station: String) -> String { dir + "/" + station + ".swap" }

    /// Opens or creates the swap file of `station` in `dir` with `size`
    /// bytes. An existing file of another size is refused (the station's
    /// swap signature and page slots would not fit): reset it to recreate.
    public init(dir: String, station: String, size: UInt64) throws(OverlayError) {
        precondition(StationName.isValid(station), "station name checked by the caller")
        let path = Self.path(dir: dir, station: station)
        let fd = try Overlay.openLocked(path, station: station)
        var ok = false
        defer { if !ok { _ = Glibc.close(fd) } }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw OverlayError("station '\(station)': fstat \(path): \(Errno.current.description)")
        }
        var created = false
        if st.st_size == 0 {
            // New (or created by a run that died before ftruncate): sparse, no blocks.
            do {
                _ = try sysCall("ftruncate", path) { ftruncate(fd, off_t(size)) }
                _ = try sysCall("fsync", path) { fsync(fd) }
                try syncDirectory(dir)
            } catch {
                throw OverlayError("station '\(station)': cannot create \(path) of \(size) bytes: \(error.description)")
            }
            created = true
        } else if UInt64(st.st_size) != size {
            throw OverlayError("station '\(station)': \(path) is \(st.st_size) bytes but the export's size= is \(size); remove it with nbdboot overlay reset \(station) --overlays \(dir) (the station then gets a new, empty swap file) or set size=\(st.st_size)")
        }
        do { file = try FileBackend(path: path, readOnly: false) } catch {
            throw OverlayError("station '\(station)': cannot open \(path): \(error.description)")
        }
        self.station = station
        self.path = path
        self.created = created
        self.lockFD = fd
        ok = true
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SysError) {
        try file.read(into: buffer, at: offset)
    }
    public func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(SysError) { try file.write(data, at: offset) }
    public func flush() throws(SysError) { try file.flush() }
    public func trim(offset: UInt64, length: UInt64) throws(SysError) { try file.trim(offset: offset, length: length) }
    public func extents(offset: UInt64, length: UInt64, maxCount: Int) throws(SysError) -> [Extent] {
        try file.extents(offset: offset, length: length, maxCount: maxCount)
    }
    public func zero(offset: UInt64, length: UInt64, mayPunch: Bool, fast: Bool) throws(SysError) {
        try file.zero(offset: offset, length: length, mayPunch: mayPunch, fast: fast)
    }
    public func cache(offset: UInt64, length: UInt64) throws(SysError) { try file.cache(offset: offset, length: length) }

    /// fdatasync, then close (releasing the lock). Idempotent.
    public func close() {
        let first: Bool = lock.locked {
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        try? file.flush()
        file.close()
        _ = Glibc.close(lockFD)
    }
}
