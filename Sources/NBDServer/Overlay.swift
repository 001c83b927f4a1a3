// One station's copy-on-write overlay over a read-only base image
// (docs/overlays.md): a sparse data file as large as the base, where block i
// lives at offset i * blockSize, and a map file (OverlayMap.swift) with one
// bit per block: set = the block's bytes are in the data file (a hole there
// reads as zeroes, which is how TRIM works), clear = read the base.
//
// Durability (the contract of NBD_CMD_FLUSH and FUA): `flush` takes a
// snapshot of the changed bitmap pages, fdatasync(2)s the data file, then
// writes those pages in place and fdatasync(2)s the map file. Every bit in the
// snapshot was set after its block's data was pwritten, so it reaches the disk
// only after that data did. Bits are never cleared, so a torn page write can
// only lose new bits of an unfinished flush; a kill -9 at any moment leaves
// every flushed block exact, and the base is opened O_RDONLY, never written.
//
// Concurrency: all connections of one station share one Overlay (StationPool
// in StationExport.swift). Writes to the same block are serialised by one of
// `stripeCount` block locks (a partial-block write copies the rest of the
// block from the base first: read-modify-write), the bitmap by `monitor`,
// and flushes by `flushing`, so a FLUSH covers every write replied before it
// on any connection and CAN_MULTI_CONN holds.
import Glibc
import LinuxSys
import Synchronization

public final class Overlay: BlockBackend, @unchecked Sendable {
    public let station: String
    public let header: OverlayHeader
    public let dataPath: String
    public let mapPath: String
    public var size: UInt64 { header.base.size }
    public var blockSize: UInt64 { UInt64(header.blockSize) }

    private let base: any BlockBackend
    private let data: Int32
    /// A second, read-only descriptor of the data file for BLOCK_STATUS
    /// (FileBackend's SEEK_DATA/SEEK_HOLE walk).
    private let dataView: FileBackend
    private let map: Int32
    private let monitor = Monitor()
    private let flushing = Monitor()
    private static let stripeCount = 64
    private let stripes: [Monitor] = (0..<Overlay.stripeCount).map { _ in Monitor() }
    private var bitmap: AllocationMap
    private var closed = false
    /// Blocks of the data file may be holes: TRIM or WRITE_ZEROES punched
    /// them, now or in an earlier session (found at open). Blocks written
    /// with data never are, so without this the overlay has the base's holes
    /// only.
    private let punched: Atomic<Bool>

    /// The two files of `station` in `dir`.
    public static func paths(dir: String, station: String) -> (data: String, map: String) {
        (dir + "/" + station + ".data", dir + "/" + station + ".map")
    }

    /// Opens (creating on first use) the overlay of `station` in `dir` over
    /// `base`, whose path and identity (size, mtime) are given. Takes an
    /// exclusive flock(2) on the data file for as long as it is open, so a
    /// second server, `overlay reset` and `overlay commit` see it in use.
    /// Refuses an overlay made over a different base.
    public init(dir: String, station: String, base: any BlockBackend, basePath: String, identity: BaseIdentity,
                blockSize: UInt32 = OverlayHeader.defaultBlockSize, now: UInt64) throws(OverlayError) {
        precondition(StationName.isValid(station), "station name checked by the caller")
        let (dataPath, mapPath) = Self.paths(dir: dir, station: station)
        // A map whose data file is gone would read its blocks as zeroes.
        if access(mapPath, F_OK) == 0 && access(dataPath, F_OK) != 0 {
            throw OverlayError("station '\(station)': \(mapPath) exists but its data file \(dataPath) is missing, so the station's blocks are lost; drop the overlay with nbdboot overlay reset \(station) --overlays \(dir)")
        }
        let dataFD = try Self.openLocked(dataPath, station: station)
        var ok = false
        defer { if !ok { _ = Glibc.close(dataFD) } }

        var header: OverlayHeader
        var bitmap: AllocationMap
        let mapFD: Int32
        if access(mapPath, F_OK) != 0 {
            // First use (or a creation that crashed before the rename, whose
            // data file holds nothing flushed): start from an empty data file
            // of the base's size and publish the map atomically.
            header = OverlayHeader(blockSize: blockSize, base: identity, created: now, basePath: basePath)
            do {
                _ = try sysCall("ftruncate", dataPath) { ftruncate(dataFD, 0) }
                _ = try sysCall("ftruncate", dataPath) { ftruncate(dataFD, off_t(identity.size)) }
                _ = try sysCall("fsync", dataPath) { fsync(dataFD) }
                try Self.createMap(mapPath, header: header, dir: dir)
                mapFD = try openFile(mapPath, O_RDWR)
            } catch { throw OverlayError("station '\(station)': cannot create its overlay in \(dir): \(error.description)") }
            bitmap = AllocationMap(blockCount: header.blockCount)
        } else {
            do { mapFD = try openFile(mapPath, O_RDWR) } catch {
                throw OverlayError("station '\(station)': cannot open \(mapPath): \(error.errno.description)")
            }
            var mapOK = false
            defer { if !mapOK { _ = Glibc.close(mapFD) } }
            let head = try Self.readAll(mapFD, count: OverlayHeader.size, at: 0, path: mapPath)
            header = try OverlayHeader.decode(head, file: mapPath)
            if let why = header.mismatch(with: identity, basePath: basePath) {
                throw OverlayError("station '\(station)': overlay \(mapPath) does not fit its base: \(why); the overlay's blocks would land on other data. Keep the old base, or drop the overlay with: nbdboot overlay reset \(station) --overlays \(dir)")
            }
            var st = stat()
            guard fstat(mapFD, &st) == 0, Int(st.st_size) == header.mapFileSize else {
                throw OverlayError("station '\(station)': \(mapPath) is \(st.st_size) bytes, expected \(header.mapFileSize) (header + bitmap): the map was truncated or damaged outside nbdboot; drop it with nbdboot overlay reset \(station) --overlays \(dir)")
            }
            let bits = try Self.readAll(mapFD, count: header.bitmapBytes, at: OverlayHeader.size, path: mapPath)
            bitmap = AllocationMap(blockCount: header.blockCount, bitmap: bits)
            // The data file may be short after a crash right after creation:
            // regions past its end were never allocated (fdatasync had not run).
            var ds = stat()
            if fstat(dataFD, &ds) == 0 && UInt64(ds.st_size) < identity.size {
                _ = ftruncate(dataFD, off_t(identity.size))
            }
            mapOK = true
        }
        // Allocated blocks that the data file does not back whole are holes
        // (st_blocks counts 512-byte units actually stored).
        var ds = stat()
        let backed = fstat(dataFD, &ds) == 0 ? UInt64(ds.st_blocks) * 512 : 0
        punched = Atomic(backed < bitmap.allocatedCount * UInt64(header.blockSize))
        do { dataView = try FileBackend(path: dataPath, readOnly: true) } catch {
            _ = Glibc.close(mapFD)
            throw OverlayError("station '\(station)': cannot open \(dataPath): \(error.description)")
        }
        self.station = station
        self.header = header
        self.dataPath = dataPath
        self.mapPath = mapPath
        self.base = base
        self.data = dataFD
        self.map = mapFD
        self.bitmap = bitmap
        ok = true
    }

    /// Allocated blocks (including trimmed ones, which read as zeroes).
    public var allocatedBlocks: UInt64 { monitor.locked { bitmap.allocatedCount } }

    public func isAllocated(_ block: UInt64) -> Bool { monitor.locked { bitmap.isAllocated(block) } }

    // MARK: BlockBackend

    /// The base's holes, and the data file's where blocks were punched.
    public var mayHaveHoles: Bool { base.mayHaveHoles || punched.load(ordering: .relaxed) }

    /// Reads runs of blocks with the same state in one pread each: allocated
    /// runs from the data file, the others from the base.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SysError) {
        _ = try readRuns(buffer, at: offset) { (allocated, part, pos) throws(SysError) in
            if allocated {
                try Self.preadFully(data, part, at: pos, path: dataPath)
            } else {
                try base.read(into: part, at: pos)
            }
            return true
        }
    }

    /// Reads like `read` only if neither the data file nor the base has to
    /// wait for a device (page cache, tmpfs); false when one might.
    public func readWithoutWaiting(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SysError) -> Bool {
        try readRuns(buffer, at: offset) { (allocated, part, pos) throws(SysError) in
            try (allocated ? dataView : base).readWithoutWaiting(into: part, at: pos)
        }
    }

    /// Splits `buffer` (at `offset`) into runs of blocks with the same state
    /// and reads each with `part`; stops at the first run it returns false
    /// for, and returns false then.
    private func readRuns(_ buffer: UnsafeMutableRawBufferPointer, at offset: UInt64,
                          _ part: (Bool, UnsafeMutableRawBufferPointer, UInt64) throws(SysError) -> Bool) throws(SysError) -> Bool {
        if buffer.isEmpty { return true }
        let end = offset + UInt64(buffer.count)
        let first = offset / blockSize
        let last = (end - 1) / blockSize
        let states: [Bool] = monitor.locked { (first...last).map { bitmap.isAllocated($0) } }
        var pos = offset
        var i = 0
        while pos < end {
            let allocated = states[i]
            var runEnd = min(end, (first + UInt64(i) + 1) * blockSize)
            i += 1
            while runEnd < end && states[i] == allocated {
                runEnd = min(end, (first + UInt64(i) + 1) * blockSize)
                i += 1
            }
            let run = UnsafeMutableRawBufferPointer(rebasing: buffer[Int(pos - offset)..<Int(runEnd - offset)])
            if try !part(allocated, run, pos) { return false }
            pos = runEnd
        }
        return true
    }

    /// Writes block by block under the block's lock. An allocated block is
    /// written in place; a whole unallocated block is written then marked; a
    /// part of an unallocated block is merged into a copy of the base block,
    /// which is written whole, then marked (copy-on-write).
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(SysError) {
        let end = offset + UInt64(bytes.count)
        var pos = offset
        while pos < end {
            let block = pos / blockSize
            let start = block * blockSize
            let length = min(blockSize, size - start)
            let chunkEnd = min(end, start + length)
            let chunk = UnsafeRawBufferPointer(rebasing: bytes[Int(pos - offset)..<Int(chunkEnd - offset)])
            let lock = stripes[Int(block % UInt64(Self.stripeCount))]
            let failure: SysError? = lock.locked {
                do throws(SysError) {
                    if isAllocated(block) || (pos == start && chunkEnd == start + length) {
                        try Self.pwriteFully(data, chunk, at: pos, path: dataPath)
                    } else {
                        let whole = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(length), alignment: 16)
                        defer { whole.deallocate() }
                        try base.read(into: whole, at: start)
                        UnsafeMutableRawBufferPointer(rebasing: whole[Int(pos - start)...]).copyMemory(from: chunk)
                        try Self.pwriteFully(data, UnsafeRawBufferPointer(whole), at: start, path: dataPath)
                    }
                } catch { return error }
                monitor.locked { bitmap.allocate(block) }
                return nil
            }
            if let failure { throw failure }
            pos = chunkEnd
        }
    }

    /// TRIM: the whole blocks in the range become holes in the data file
    /// (fallocate PUNCH_HOLE|KEEP_SIZE) and are marked allocated, so they
    /// read as zeroes and free their space; the base is untouched. Parts of
    /// blocks at the edges are left as they are (TRIM is advisory). Where the
    /// file system cannot punch holes, TRIM does nothing.
    public func trim(offset: UInt64, length: UInt64) throws(SysError) {
        let firstWhole = (offset + blockSize - 1) / blockSize
        let endOffset = offset + length
        // The short last block counts as whole when the range reaches the end.
        let endBlock = endOffset >= size ? header.blockCount : endOffset / blockSize
        guard firstWhole < endBlock else { return }
        let start = firstWhole * blockSize
        let stop = min(size, endBlock * blockSize)
        let mode = FallocateMode.punchHole | FallocateMode.keepSize
        punched.store(true, ordering: .relaxed)
        guard try fallocateRange(data, mode, from: start, length: stop - start, path: dataPath) else { return }
        monitor.locked { for b in firstWhole..<endBlock { bitmap.allocate(b) } }
    }

    /// WRITE_ZEROES: whole blocks are zeroed in the data file by fallocate
    /// (PUNCH_HOLE when a hole is allowed, else ZERO_RANGE) and marked, like
    /// TRIM; the parts of blocks at the edges are written as zeroes through
    /// `write` (copy-on-write). FAST_ZERO refuses (EOPNOTSUPP) when edges or
    /// an unsupported fallocate mode would need that slow path, before
    /// anything is changed.
    public func zero(offset: UInt64, length: UInt64, mayPunch: Bool, fast: Bool) throws(SysError) {
        if length == 0 { return }
        let end = offset + length
        let firstWhole = (offset + blockSize - 1) / blockSize
        let endBlock = end >= size ? header.blockCount : end / blockSize
        let whole = firstWhole < endBlock
        let headEnd = whole ? firstWhole * blockSize : end
        let tailStart = whole ? min(size, endBlock * blockSize) : end
        if fast && (offset < headEnd || tailStart < end) {
            throw SysError("write zeroes", Errno(EOPNOTSUPP), "\(dataPath) (parts of blocks need a copy-on-write)")
        }
        if whole {
            let mode = (mayPunch ? FallocateMode.punchHole : FallocateMode.zeroRange) | FallocateMode.keepSize
            let start = firstWhole * blockSize
            if mayPunch { punched.store(true, ordering: .relaxed) }
            if try fallocateRange(data, mode, from: start, length: tailStart - start, path: dataPath) {
                monitor.locked { for b in firstWhole..<endBlock { bitmap.allocate(b) } }
            } else if fast {
                throw SysError("write zeroes", Errno(EOPNOTSUPP), "\(dataPath) (this file system cannot zero a range fast)")
            } else {
                try writeZeroes(self, offset: start, length: tailStart - start)
            }
        }
        if offset < headEnd { try writeZeroes(self, offset: offset, length: headEnd - offset) }
        if whole && tailStart < end { try writeZeroes(self, offset: tailStart, length: end - tailStart) }
    }

    /// BLOCK_STATUS: blocks in the overlay report the data file's holes and
    /// data (a trimmed block is a hole there, reading as zeroes), the others
    /// the base's. At most `maxCount` extents, consecutive from `offset`.
    public func extents(offset: UInt64, length: UInt64, maxCount: Int) throws(SysError) -> [Extent] {
        if length == 0 || maxCount <= 0 { return [] }
        let end = offset + length
        let first = offset / blockSize
        let last = (end - 1) / blockSize
        let states: [Bool] = monitor.locked { (first...last).map { bitmap.isAllocated($0) } }
        var out: [Extent] = []
        var pos = offset
        var i = 0
        while pos < end && out.count < maxCount {
            let allocated = states[i]
            var runEnd = min(end, (first + UInt64(i) + 1) * blockSize)
            i += 1
            while runEnd < end && states[i] == allocated {
                runEnd = min(end, (first + UInt64(i) + 1) * blockSize)
                i += 1
            }
            // Blocks written with data are data: the data file need not be
            // asked (its SEEK_DATA walk costs milliseconds on tmpfs) unless
            // some were punched.
            let part: [Extent]
            if allocated && !punched.load(ordering: .relaxed) {
                part = [.data(runEnd - pos)]
            } else {
                let source: any BlockBackend = allocated ? dataView : base
                part = try source.extents(offset: pos, length: runEnd - pos, maxCount: maxCount - out.count + 1)
            }
            var covered: UInt64 = 0
            for e in part {
                appendExtent(e, to: &out)
                covered += e.length
            }
            if covered < runEnd - pos { break }  // the source stopped at its own limit
            pos = runEnd
        }
        return Array(out.prefix(maxCount))
    }

    /// CACHE: a prefetch hint for the base (the data file is the overlay's own).
    public func cache(offset: UInt64, length: UInt64) throws(SysError) {
        try base.cache(offset: offset, length: length)
    }

    /// Makes every write and TRIM completed before the call durable, data
    /// first, then the map pages that name it (see the file comment).
    public func flush() throws(SysError) {
        let failure: SysError? = flushing.locked {
            let pages = monitor.locked { bitmap.takeDirtyPages() }
            do throws(SysError) {
                _ = try sysCall("fdatasync", dataPath) { fdatasync(data) }
                for p in pages {
                    try Self.pwriteFully(map, p.bytes, at: UInt64(OverlayHeader.size + p.page * AllocationMap.pageSize), path: mapPath)
                }
                if !pages.isEmpty { _ = try sysCall("fdatasync", mapPath) { fdatasync(map) } }
            } catch {
                monitor.locked { bitmap.markDirty(pages.map(\.page)) }
                return error
            }
            return nil
        }
        if let failure { throw failure }
    }

    /// Flushes (so a clean disconnect keeps every write, FLUSH or not), then
    /// closes both files, which releases the lock. Idempotent.
    public func close() {
        let first: Bool = monitor.locked {
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        try? flush()
        dataView.close()
        _ = Glibc.close(map)
        _ = Glibc.close(data)
    }

    // MARK: files

    /// open(O_RDWR|O_CREAT, 0600) and flock(LOCK_EX|LOCK_NB): one process at a time.
    static func openLocked(_ path: String, station: String) throws(OverlayError) -> Int32 {
        let fd: Int32
        do { fd = try openFile(path, O_RDWR | O_CREAT) } catch {
            throw OverlayError("station '\(station)': cannot open \(path): \(error.errno.description)")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = Errno.current
            _ = Glibc.close(fd)
            if e.rawValue == EWOULDBLOCK {
                throw OverlayError("station '\(station)': \(path) is in use by a running server (another process holds its lock)")
            }
            throw OverlayError("station '\(station)': flock \(path): \(e.description)")
        }
        return fd
    }

    /// Writes a new map (header, zero bitmap) to PATH.tmp, fsyncs it, renames
    /// it over PATH and fsyncs the directory: the map appears whole or not at all.
    static func createMap(_ path: String, header: OverlayHeader, dir: String) throws(SysError) {
        let tmp = path + ".tmp"
        let fd = try openFile(tmp, O_WRONLY | O_CREAT | O_TRUNC)
        defer { _ = Glibc.close(fd) }
        var bytes = header.encode()
        bytes += [UInt8](repeating: 0, count: header.bitmapBytes)
        try pwriteFully(fd, bytes, at: 0, path: tmp)
        _ = try sysCall("fsync", tmp) { fsync(fd) }
        _ = try sysCall("rename", path) { rename(tmp, path) }
        try syncDirectory(dir)
    }

    static func readAll(_ fd: Int32, count: Int, at offset: Int, path: String) throws(OverlayError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, count - got, off_t(offset + got)) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw OverlayError("\(path): pread: \(Errno.current.description)") }
            if n == 0 { throw OverlayError("\(path): ends at \(offset + got) bytes, expected at least \(offset + count); the file is truncated") }
            got += n
        }
        return bytes
    }

    static func preadFully(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, path: String) throws(SysError) {
        let n = try FileDescriptor(fd).readFully(into: buffer, at: offset, subject: path)
        // Past the end of a data file that is short: reads as a hole.
        if n < buffer.count {
            UnsafeMutableRawBufferPointer(rebasing: buffer[n...]).initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    /// pwriteFully for an array (withUnsafeBytes cannot throw a typed error).
    static func pwriteFully(_ fd: Int32, _ bytes: [UInt8], at offset: UInt64, path: String) throws(SysError) {
        let failure: SysError? = bytes.withUnsafeBytes { b in
            do throws(SysError) { try pwriteFully(fd, b, at: offset, path: path) } catch { return error }
            return nil
        }
        if let failure { throw failure }
    }

    static func pwriteFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: UInt64, path: String) throws(SysError) {
        try FileDescriptor(fd).writeFully(bytes, at: offset, subject: path)
    }
}

/// fsync(2) on a directory, so a rename or a new file in it is durable.
func syncDirectory(_ dir: String) throws(SysError) {
    let fd = try openFile(dir, O_RDONLY | O_DIRECTORY)
    defer { _ = Glibc.close(fd) }
    _ = try sysCall("fsync", dir) { fsync(fd) }
}

/// fallocate(fd, mode, ...) with a FallocateMode (linux/falloc.h), e.g.
/// PUNCH_HOLE|KEEP_SIZE. Returns false when the file system does not support
/// the mode (EOPNOTSUPP, ENOSYS, ENODEV).
func fallocateRange(_ fd: Int32, _ mode: Int32, from offset: UInt64, length: UInt64, path: String) throws(SysError) -> Bool {
    if length == 0 { return true }
    while true {
        if overlay_fallocate(fd, mode, Int64(offset), Int64(length)) == 0 { return true }
        let e = Errno.current
        if e == .interrupted { continue }
        if e == Errno(EOPNOTSUPP) || e == Errno(ENODEV) || e == Errno(ENOSYS) { return false }
        throw SysError("fallocate", e, path)
    }
}

/// open(2) through LinuxSys (close-on-exec, EINTR retried); the raw descriptor.
func openFile(_ path: String, _ flags: Int32, mode: Int32 = 0o600) throws(SysError) -> Int32 {
    try FileDescriptor.open(path, flags, mode: mode).rawValue
}

/// fallocate(2): glibc declares it only under _GNU_SOURCE (see Export.swift).
@_silgen_name("fallocate")
func overlay_fallocate(_ fd: Int32, _ mode: Int32, _ offset: Int64, _ length: Int64) -> Int32
