// An export: its name, its transmission flags, and the backend that holds the
// bytes. The backend is a small protocol (read/write/flush/trim, as nbdkit's
// plugin API) so later layers — a per-station copy-on-write overlay, a
// memory disk — slot in without touching the connection code.
import Glibc
import LinuxSys
import NBDWire

/// Where an export's bytes live. Called concurrently from many workers:
/// implementations must be safe for that (pread/pwrite on one fd are).
public protocol BlockBackend: AnyObject, Sendable {
    /// Size in bytes, fixed while serving.
    var size: UInt64 { get }
    /// Fills `buffer` from `offset` (offset + count <= size).
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SysError)
    /// Writes `data` at `offset` (offset + count <= size).
    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(SysError)
    /// Makes every completed write durable (NBD_CMD_FLUSH, and FUA).
    func flush() throws(SysError)
    /// Drops a range's contents (NBD_CMD_TRIM); reads of it may then return anything.
    func trim(offset: UInt64, length: UInt64) throws(SysError)
    /// Releases the backend's resources.
    func close()
}

/// A regular file or a block device, shared by every connection through one
/// descriptor: pread(2)/pwrite(2) at explicit offsets, fdatasync(2) for FLUSH
/// (so a FLUSH on any connection covers writes made on all of them, which is
/// what CAN_MULTI_CONN promises), fallocate(2) PUNCH_HOLE for TRIM.
public final class FileBackend: BlockBackend {
    public let path: String
    public let size: UInt64
    private let fd: Int32

    /// Opens `path` read-write, or read-only when `readOnly`. The size is the
    /// file's (fstat) or, for a block device, the device's (lseek SEEK_END).
    public init(path: String, readOnly: Bool) throws(SysError) {
        let opened = try FileDescriptor.open(path, readOnly ? O_RDONLY : O_RDWR)
        var st = stat()
        if fstat(opened.rawValue, &st) != 0 {
            let e = Errno.current
            opened.close()
            throw SysError("fstat", e, path)
        }
        let type = st.st_mode & S_IFMT
        if type == S_IFREG {
            size = UInt64(st.st_size)
        } else if type == S_IFBLK {
            let end = lseek(opened.rawValue, 0, SEEK_END)
            if end < 0 {
                let e = Errno.current
                opened.close()
                throw SysError("lseek", e, path)
            }
            size = UInt64(end)
        } else {
            opened.close()
            throw SysError("open", Errno(EINVAL), "\(path) (not a regular file or block device)")
        }
        self.path = path
        self.fd = opened.rawValue
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SysError) {
        var done = 0
        while done < buffer.count {
            let n = Glibc.pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                let e = Errno.current
                if e == .interrupted { continue }
                throw SysError("pread", e, path)
            }
            // The file shrank under us: the client must not get stale bytes.
            if n == 0 { throw SysError("pread", Errno(EIO), "\(path) (file shorter than the export size)") }
            done += n
        }
    }

    public func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(SysError) {
        var done = 0
        while done < data.count {
            let n = Glibc.pwrite(fd, data.baseAddress! + done, data.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                let e = Errno.current
                if e == .interrupted { continue }
                throw SysError("pwrite", e, path)
            }
            done += n
        }
    }

    public func flush() throws(SysError) {
        _ = try sysCall("fdatasync", path) { fdatasync(fd) }
    }

    /// FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE (linux/falloc.h). A file
    /// system or device that cannot punch holes makes TRIM a no-op, which the
    /// spec allows (TRIM is advisory).
    public func trim(offset: UInt64, length: UInt64) throws(SysError) {
        if length == 0 { return }  // fallocate refuses len 0 (EINVAL); a no-op for NBD
        let punchHoleKeepSize: Int32 = 0x02 | 0x01
        let rc = c_fallocate(fd, punchHoleKeepSize, Int64(offset), Int64(length))
        if rc != 0 {
            let e = Errno.current
            if e == Errno(EOPNOTSUPP) || e == Errno(ENODEV) || e == Errno(ENOSYS) { return }
            throw SysError("fallocate", e, path)
        }
    }

    public func close() { _ = Glibc.close(fd) }
}

/// One export as served: name, flags and backend.
public final class Export: Sendable {
    public let spec: ExportSpec
    public let backend: any BlockBackend

    public init(spec: ExportSpec, backend: any BlockBackend) {
        self.spec = spec
        self.backend = backend
    }

    /// Opens the export's file.
    public convenience init(spec: ExportSpec) throws(SysError) {
        self.init(spec: spec, backend: try openExportBackend(spec))
    }

    /// HAS_FLAGS|SEND_FLUSH|SEND_FUA|SEND_TRIM|CAN_MULTI_CONN, plus READ_ONLY.
    /// Multi-conn is safe because every connection shares the backend (one
    /// file, no per-connection cache) and FLUSH syncs that whole file.
    public static func flags(readOnly: Bool) -> TransmissionFlags {
        var f: TransmissionFlags = [.hasFlags, .sendFlush, .sendFUA, .sendTrim, .canMultiConn]
        if readOnly { f.insert(.readOnly) }
        return f
    }

    public var info: ExportInfo {
        var info = ExportInfo(name: spec.name, description: spec.description, size: backend.size,
                               flags: Self.flags(readOnly: spec.readOnly))
        info.perStation = isPerStation
        return info
    }

    public var gate: GateExport {
        GateExport(name: spec.name, size: backend.size, readOnly: spec.readOnly)
    }
}

/// fallocate(2). Glibc declares it only under _GNU_SOURCE, which Swift's Glibc
/// module does not define; the symbol is always exported (off_t is 64-bit on
/// the 64-bit targets we build for). A `shim_fallocate` in CShims would be the
/// cleaner home.
@_silgen_name("fallocate")
private func c_fallocate(_ fd: Int32, _ mode: Int32, _ offset: Int64, _ length: Int64) -> Int32
