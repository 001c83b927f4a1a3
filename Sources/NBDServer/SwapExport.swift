// A station's swap file: `DIR/STATION.swap`, a sparse file of the export's
// configured size, created on the station's first connect and found again on
// every reconnect (and after a server restart). No copy-on-write: reads and
// writes go straight to the file, TRIM punches holes (the kernel discards
// swap pages it frees, so the file only holds what is swapped out), FLUSH is
// fdatasync(2). An flock(2) held while it is open makes `nbdboot overlay
// reset` refuse to remove it under a running server.
import Glibc
import LinuxSys

public final class SwapFile: BlockBackend, @unchecked Sendable {
    public let station: String
    public let path: String
    public let size: UInt64
    /// True when this open created the file.
    public let created: Bool
    private let fd: Int32
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
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = Errno.current
            _ = Glibc.close(fd)
            throw OverlayError("station '\(station)': fstat \(path): \(e.description)")
        }
        var created = false
        if st.st_size == 0 {
            // New (or created by a run that died before ftruncate): sparse, no blocks.
            do {
                _ = try sysCall("ftruncate", path) { ftruncate(fd, off_t(size)) }
                _ = try sysCall("fsync", path) { fsync(fd) }
                try syncDirectory(dir)
            } catch {
                _ = Glibc.close(fd)
                throw OverlayError("station '\(station)': cannot create \(path) of \(size) bytes: \(error.description)")
            }
            created = true
        } else if UInt64(st.st_size) != size {
            _ = Glibc.close(fd)
            throw OverlayError("station '\(station)': \(path) is \(st.st_size) bytes but the export's size= is \(size); remove it with nbdboot overlay reset \(station) --overlays \(dir) (the station then gets a new, empty swap file) or set size=\(st.st_size)")
        }
        self.station = station
        self.path = path
        self.size = size
        self.created = created
        self.fd = fd
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SysError) {
        try Overlay.preadFully(fd, buffer, at: offset, path: path)
    }

    public func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(SysError) {
        try Overlay.pwriteFully(fd, data, at: offset, path: path)
    }

    public func flush() throws(SysError) {
        _ = try sysCall("fdatasync", path) { fdatasync(fd) }
    }

    /// fallocate PUNCH_HOLE|KEEP_SIZE over the range; a no-op where the file
    /// system cannot punch holes (TRIM is advisory).
    public func trim(offset: UInt64, length: UInt64) throws(SysError) {
        _ = try punchHole(fd, from: offset, length: length, path: path)
    }

    /// fdatasync, then close (releasing the lock). Idempotent.
    public func close() {
        let first: Bool = lock.locked {
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        _ = fdatasync(fd)
        _ = Glibc.close(fd)
    }
}
