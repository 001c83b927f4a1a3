// An export: its name, its transmission flags, and the backend that holds the
// bytes. The backend is a small protocol (read/write/flush/trim, as nbdkit's
// plugin API) so later layers — a per-station copy-on-write overlay, a
// memory disk — slot in without touching the connection code.
import CShims
import Glibc
import LinuxSys
import Synchronization
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
    /// The allocation of `offset ..< offset + length` (inside the export) as
    /// consecutive extents from `offset`, at most `maxCount` of them (they may
    /// then cover only a prefix of the range). For BLOCK_STATUS and for
    /// OFFSET_HOLE chunks in structured READ replies.
    func extents(offset: UInt64, length: UInt64, maxCount: Int) throws(SysError) -> [Extent]
    /// Makes a range read as zeroes (NBD_CMD_WRITE_ZEROES). `mayPunch`: it may
    /// become a hole (no NO_HOLE flag); `fast`: fail with EOPNOTSUPP rather
    /// than take a slow path such as writing zeroes (FAST_ZERO).
    func zero(offset: UInt64, length: UInt64, mayPunch: Bool, fast: Bool) throws(SysError)
    /// Prefetch hint (NBD_CMD_CACHE): no effect on the contents.
    func cache(offset: UInt64, length: UInt64) throws(SysError)
    /// False when the backend knows it holds no hole, so a structured READ
    /// need not look for any (finding them costs an lseek(2) SEEK_HOLE that on
    /// tmpfs walks the page cache up to the next hole: milliseconds per READ
    /// on a dense image).
    var mayHaveHoles: Bool { get }
    /// A descriptor whose bytes at an offset are the export's at the same
    /// offset, for sendfile(2) (READ replies straight from the page cache to
    /// the socket); nil when the bytes must be assembled (overlays).
    var sendfileSource: Int32? { get }
    /// Reads like `read` only when that cannot wait for a device (the bytes
    /// are in the page cache, or the file system lives in memory) and
    /// returns true; returns false, having read nothing that counts, when it
    /// might wait or cannot tell. Lets a connection execute a READ without
    /// passing its read turn to another thread first (TransmissionPool).
    func readWithoutWaiting(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SysError) -> Bool
    /// True when reads never wait for a device (tmpfs, ramfs).
    var inMemory: Bool { get }
}

/// A run of bytes with one allocation state.
public struct Extent: Equatable, Sendable {
    public var length: UInt64
    public var state: AllocationState

    public init(length: UInt64, state: AllocationState) {
        self.length = length
        self.state = state
    }

    /// Unallocated and reading as zeroes (NBD_STATE_HOLE | NBD_STATE_ZERO = 3).
    public static func hole(_ length: UInt64) -> Extent { Extent(length: length, state: [.hole, .zero]) }
    /// Allocated data (status 0, always a safe answer).
    public static func data(_ length: UInt64) -> Extent { Extent(length: length, state: []) }
    public var isHole: Bool { state.contains(.zero) }
}

extension BlockBackend {
    public var mayHaveHoles: Bool { true }
    public var sendfileSource: Int32? { nil }
    public var inMemory: Bool { false }
    public func readWithoutWaiting(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SysError) -> Bool { false }

    /// A backend that cannot tell holes from data reports data, the answer
    /// the spec calls always safe.
    public func extents(offset: UInt64, length: UInt64, maxCount: Int) throws(SysError) -> [Extent] {
        length == 0 ? [] : [.data(length)]
    }
}

extension BlockBackend {
    /// Without a faster way, zeroes are written, 1 MiB at a time; that is
    /// never "fast".
    public func zero(offset: UInt64, length: UInt64, mayPunch: Bool, fast: Bool) throws(SysError) {
        if length == 0 { return }
        if fast { throw SysError("write zeroes", Errno(EOPNOTSUPP), "no fast way to zero") }
        try writeZeroes(self, offset: offset, length: length)
    }

    /// A backend without a page cache of its own has nothing to prefetch.
    public func cache(offset: UInt64, length: UInt64) throws(SysError) {}
}

/// Writes `length` zero bytes at `offset` through `backend.write`, 1 MiB at a time.
func writeZeroes(_ backend: some BlockBackend, offset: UInt64, length: UInt64) throws(SysError) {
    let chunk = Int(min(length, 1 << 20))
    let zeroes = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
    defer { zeroes.deallocate() }
    zeroes.initializeMemory(as: UInt8.self, repeating: 0)
    var done: UInt64 = 0
    while done < length {
        let n = Int(min(UInt64(chunk), length - done))
        try backend.write(UnsafeRawBufferPointer(rebasing: zeroes[..<n]), at: offset + done)
        done += UInt64(n)
    }
}

/// Appends `e` to `list`, merging it into the last extent when the state is the same.
func appendExtent(_ e: Extent, to list: inout [Extent]) {
    guard e.length > 0 else { return }
    if let last = list.last, last.state == e.state {
        list[list.count - 1].length += e.length
    } else {
        list.append(e)
    }
}

/// A regular file or a block device, shared by every connection through one
/// descriptor: pread(2)/pwrite(2) at explicit offsets, fdatasync(2) for FLUSH
/// (so a FLUSH on any connection covers writes made on all of them, which is
/// what CAN_MULTI_CONN promises), fallocate(2) PUNCH_HOLE for TRIM.
public final class FileBackend: BlockBackend {
    public let path: String
    public let size: UInt64
    private let fd: Int32
    /// Set at open when the file has fewer blocks than its size (st_blocks),
    /// and by every TRIM or WRITE_ZEROES that may punch a hole. A file made
    /// sparse by another process meanwhile still reads correctly: its holes
    /// then come as data chunks of zeroes, which the spec always allows.
    private let sparse: Atomic<Bool>
    public var mayHaveHoles: Bool { sparse.load(ordering: .relaxed) }
    public var sendfileSource: Int32? { fd }
    /// The file lives on tmpfs or ramfs (statfs at open).
    public let inMemory: Bool
    /// preadv2 RWF_NOWAIT answered EOPNOTSUPP once: this file system cannot tell.
    private let noWaitUnsupported = Atomic<Bool>(false)

    /// Opens `path` read-write, or read-only when `readOnly`. The size is the
    /// file's (fstat) or, for a block device, the device's (lseek SEEK_END);
    /// with `sizeLimit` the first `sizeLimit` bytes (nbd-server's `filesize`),
    /// which the file must hold (EFBIG otherwise).
    public init(path: String, readOnly: Bool, sizeLimit: UInt64? = nil) throws(SysError) {
        let opened = try FileDescriptor.open(path, readOnly ? O_RDONLY : O_RDWR)
        var st = stat()
        if fstat(opened.rawValue, &st) != 0 {
            let e = Errno.current
            opened.close()
            throw SysError("fstat", e, path)
        }
        let type = st.st_mode & S_IFMT
        var found: UInt64
        if type == S_IFREG {
            found = UInt64(st.st_size)
        } else if type == S_IFBLK {
            let end = lseek(opened.rawValue, 0, SEEK_END)
            if end < 0 {
                let e = Errno.current
                opened.close()
                throw SysError("lseek", e, path)
            }
            found = UInt64(end)
        } else {
            opened.close()
            throw SysError("open", Errno(EINVAL), "\(path) (not a regular file or block device)")
        }
        if let sizeLimit {
            guard sizeLimit <= found else {
                opened.close()
                throw SysError("filesize", Errno(EFBIG), "\(path) holds \(found) bytes, less than filesize \(sizeLimit); lower filesize or grow the file (truncate -s)")
            }
            found = sizeLimit
        }
        size = found
        self.path = path
        self.fd = opened.rawValue
        let fsType = shim_fstatfs_type(opened.rawValue)
        inMemory = fsType == 0x0102_1994 || fsType == 0x8584_58f6  // TMPFS_MAGIC, RAMFS_MAGIC
        // Block devices report st_blocks 0: treat them as possibly sparse.
        sparse = Atomic(type != S_IFREG || UInt64(st.st_blocks) * 512 < UInt64(st.st_size))
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SysError) {
        let n = try FileDescriptor(fd).readFully(into: buffer, at: offset, subject: path)
        // The file shrank under us: the client must not get stale bytes.
        if n < buffer.count { throw SysError("pread", Errno(EIO), "\(path) (file shorter than the export size)") }
    }

    public func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(SysError) {
        try FileDescriptor(fd).writeFully(data, at: offset, subject: path)
    }

    /// tmpfs/ramfs: a plain read. Elsewhere preadv2(2) with RWF_NOWAIT,
    /// which fails with EAGAIN (or reads short) rather than wait for the
    /// device; a file system that answers EOPNOTSUPP is not asked again.
    public func readWithoutWaiting(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SysError) -> Bool {
        if inMemory {
            try read(into: buffer, at: offset)
            return true
        }
        if noWaitUnsupported.load(ordering: .relaxed) || buffer.count == 0 { return false }
        let n = shim_pread_nowait(fd, buffer.baseAddress, buffer.count, Int64(offset))
        if n == buffer.count { return true }
        if n < 0 {
            let e = Errno.current
            if e == Errno(EOPNOTSUPP) {
                noWaitUnsupported.store(true, ordering: .relaxed)
                return false
            }
            if e == Errno(EAGAIN) || e == Errno(EINTR) { return false }
            throw SysError("preadv2", e, path)
        }
        return false
    }

    public func flush() throws(SysError) {
        _ = try sysCall("fdatasync", path) { fdatasync(fd) }
    }

    /// FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE (linux/falloc.h). A file
    /// system or device that cannot punch holes makes TRIM a no-op, which the
    /// spec allows (TRIM is advisory).
    public func trim(offset: UInt64, length: UInt64) throws(SysError) {
        if length == 0 { return }  // fallocate refuses len 0 (EINVAL); a no-op for NBD
        sparse.store(true, ordering: .relaxed)
        let rc = c_fallocate(fd, FallocateMode.punchHole | FallocateMode.keepSize, Int64(offset), Int64(length))
        if rc != 0 {
            let e = Errno.current
            if e == Errno(EOPNOTSUPP) || e == Errno(ENODEV) || e == Errno(ENOSYS) { return }
            throw SysError("fallocate", e, path)
        }
    }

    /// lseek(2) SEEK_DATA / SEEK_HOLE from `offset`: the file system's view
    /// of which ranges hold data. SEEK_DATA failing with ENXIO means "no data
    /// up to the end of the file"; a file system or device without hole
    /// support reports everything as data (block devices do so by answering
    /// SEEK_DATA with the offset itself and SEEK_HOLE with the size). lseek
    /// moves the shared file offset, which nothing here uses (pread/pwrite).
    public func extents(offset: UInt64, length: UInt64, maxCount: Int) throws(SysError) -> [Extent] {
        let end = offset + length
        var out: [Extent] = []
        var pos = offset
        // Each round adds an extent or moves `pos`; the bound only guards
        // against a file whose holes change under us forever.
        var rounds = 0
        while pos < end && out.count < maxCount && rounds < 4 * maxCount + 4 {
            rounds += 1
            let data = lseek(fd, off_t(pos), SEEK_DATA)
            if data < 0 {
                let e = Errno.current
                if e.rawValue == ENXIO {
                    appendExtent(.hole(end - pos), to: &out)
                } else if e.rawValue == EINVAL || e.rawValue == EOPNOTSUPP {
                    appendExtent(.data(end - pos), to: &out)
                } else {
                    throw SysError("lseek", e, "\(path) (SEEK_DATA at \(pos))")
                }
                break
            }
            let dataStart = min(UInt64(data), end)
            if dataStart > pos {
                appendExtent(.hole(dataStart - pos), to: &out)
                pos = dataStart
                continue
            }
            let hole = lseek(fd, off_t(pos), SEEK_HOLE)
            if hole < 0 {
                let e = Errno.current
                if e.rawValue == ENXIO || e.rawValue == EINVAL || e.rawValue == EOPNOTSUPP {
                    appendExtent(.data(end - pos), to: &out)
                    break
                }
                throw SysError("lseek", e, "\(path) (SEEK_HOLE at \(pos))")
            }
            let holeStart = min(UInt64(hole), end)
            if holeStart > pos {
                appendExtent(.data(holeStart - pos), to: &out)
                pos = holeStart
            }
        }
        return out
    }

    /// WRITE_ZEROES: fallocate(2) FALLOC_FL_PUNCH_HOLE|KEEP_SIZE when a hole
    /// is allowed (it then reads as zeroes and frees the space), otherwise or
    /// when punching is unsupported FALLOC_FL_ZERO_RANGE|KEEP_SIZE (the range
    /// stays allocated), and as the slow last resort pwrite(2) of zeroes,
    /// which FAST_ZERO refuses with EOPNOTSUPP (NBD_ENOTSUP) instead.
    public func zero(offset: UInt64, length: UInt64, mayPunch: Bool, fast: Bool) throws(SysError) {
        if length == 0 { return }
        if mayPunch {
            sparse.store(true, ordering: .relaxed)
            if try fallocateSupported(FallocateMode.punchHole | FallocateMode.keepSize, offset, length, "PUNCH_HOLE") { return }
        }
        if try fallocateSupported(FallocateMode.zeroRange | FallocateMode.keepSize, offset, length, "ZERO_RANGE") { return }
        if fast {
            throw SysError("fallocate", Errno(EOPNOTSUPP), "\(path) (no fast zeroing: neither \(mayPunch ? "PUNCH_HOLE nor " : "")ZERO_RANGE works here)")
        }
        try writeZeroes(self, offset: offset, length: length)
    }

    /// fallocate(2) with `mode`: true when done, false when this file system
    /// or device does not support the mode; other failures throw.
    private func fallocateSupported(_ mode: Int32, _ offset: UInt64, _ length: UInt64, _ what: String) throws(SysError) -> Bool {
        while true {
            if c_fallocate(fd, mode, Int64(offset), Int64(length)) == 0 { return true }
            let e = Errno.current
            if e == .interrupted { continue }
            if e == Errno(EOPNOTSUPP) || e == Errno(ENODEV) || e == Errno(ENOSYS) { return false }
            throw SysError("fallocate", e, "\(path) (\(what) at \(offset), \(length) bytes)")
        }
    }

    /// CACHE: posix_fadvise(2) POSIX_FADV_WILLNEED, so the kernel starts
    /// reading the range into the page cache; the reply does not wait for it.
    public func cache(offset: UInt64, length: UInt64) throws(SysError) {
        let rc = posix_fadvise(fd, off_t(offset), off_t(length), POSIX_FADV_WILLNEED)
        if rc != 0 { throw SysError("posix_fadvise", Errno(rc), "\(path) (WILLNEED at \(offset), \(length) bytes)") }
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

    /// Opens the export's file; with `filesize` a missing file is first
    /// created sparse (nbd-server does the same).
    public convenience init(spec: ExportSpec) throws(SysError) {
        if let size = spec.policy.fileSize, spec.perStation == nil { try createSparseIfMissing(spec.path, size: size) }
        self.init(spec: spec, backend: try openExportBackend(spec))
    }

    /// HAS_FLAGS|SEND_FLUSH|SEND_FUA|SEND_TRIM|SEND_WRITE_ZEROES|SEND_FAST_ZERO|
    /// SEND_CACHE|CAN_MULTI_CONN, plus READ_ONLY (SEND_DF is added per
    /// connection once structured replies are on). Multi-conn is safe because
    /// every connection shares the backend (one file, no per-connection
    /// cache) and FLUSH syncs that whole file.
    public static func flags(readOnly: Bool) -> TransmissionFlags {
        var f: TransmissionFlags = [.hasFlags, .sendFlush, .sendFUA, .sendTrim, .sendWriteZeroes, .sendFastZero,
                                    .sendCache, .canMultiConn]
        if readOnly { f.insert(.readOnly) }
        return f
    }

    public var info: ExportInfo {
        var info = ExportInfo(name: spec.name, description: spec.description, size: backend.size,
                               flags: spec.policy.apply(to: Self.flags(readOnly: spec.readOnly)))
        info.perStation = isPerStation
        return info
    }

    public var gate: GateExport {
        GateExport(name: spec.name, size: backend.size, readOnly: spec.readOnly,
                   advertised: spec.policy.apply(to: Self.flags(readOnly: spec.readOnly)))
    }
}

/// lseek(2) whence values for sparse files (Linux <linux/fs.h>, also in
/// glibc's <unistd.h> but only under _GNU_SOURCE, which Swift's Glibc module
/// does not define).
private let SEEK_DATA: Int32 = 3
private let SEEK_HOLE: Int32 = 4

/// fallocate(2) modes (<linux/falloc.h>).
enum FallocateMode {
    static let keepSize: Int32 = 0x01
    static let punchHole: Int32 = 0x02
    static let zeroRange: Int32 = 0x10
}

/// fallocate(2). Glibc declares it only under _GNU_SOURCE, which Swift's Glibc
/// module does not define; the symbol is always exported (off_t is 64-bit on
/// the 64-bit targets we build for). A `shim_fallocate` in CShims would be the
/// cleaner home.
@_silgen_name("fallocate")
private func c_fallocate(_ fd: Int32, _ mode: Int32, _ offset: Int64, _ length: Int64) -> Int32

/// Creates `path` as a sparse file of `size` bytes (open O_CREAT|O_EXCL,
/// ftruncate) when nothing is there; an existing file is left alone.
func createSparseIfMissing(_ path: String, size: UInt64) throws(SysError) {
    var st = stat()
    if stat(path, &st) == 0 { return }
    let e = Errno.current
    guard e.rawValue == ENOENT else { throw SysError("stat", e, path) }
    let fd = try FileDescriptor.open(path, O_CREAT | O_EXCL | O_WRONLY)
    defer { fd.close() }
    _ = try sysCall("ftruncate", path) { ftruncate(fd.rawValue, off_t(size)) }
}
