// Per-station exports in the server: the export-wide backend (the read-only
// base of a cow export, the all-zero template of a swap export) and, per
// connection, the station's own backend (Overlay or SwapFile) behind a lease.
//
//   Server.init -> openExportBackend(spec)        CowBase / SwapBase / FileBackend
//   Connection.handshake, on the step that enters transmission (before its reply):
//     export.admit(step, option:, requested: "root@st1", peer:)  -> Export over a StationLease,
//                                                   or a refusal step (ERR_UNKNOWN + reason)
//   Connection.run, after transmission:
//     export.detachStation()                       last lease of a station closes it
//
// Every connection of one station shares one Overlay/SwapFile (StationPool),
// so a FLUSH on any of them covers the writes of all: CAN_MULTI_CONN holds.
import Glibc
import LinuxSys
import NBDWire

/// Opens what an export spec names: a plain file or device, a cow export's
/// base (read-only, overlays directory created if missing) or a swap
/// export's directory (created if missing).
func openExportBackend(_ spec: ExportSpec) throws(SysError) -> any BlockBackend {
    switch spec.perStation {
    case nil: return try FileBackend(path: spec.path, readOnly: spec.readOnly, sizeLimit: spec.policy.fileSize)
    case .cow(let overlays): return try CowBase(path: spec.path, overlays: overlays)
    case .swap(let size): return try SwapBase(dir: spec.path, size: size)
    }
}

/// An export whose connections each get their station's own backend.
protocol StationProvider: AnyObject, Sendable {
    /// Opens (or shares) `station`'s backend; the line says what it is, for the log.
    func attach(station: String) throws(OverlayError) -> (lease: StationLease, note: String)
}

/// The backends of one export's stations that are open, each with its number
/// of connections. The last connection to leave closes it (which flushes).
final class StationPool: @unchecked Sendable {
    private let monitor = Monitor()
    private var open: [String: (backend: any BlockBackend, users: Int)] = [:]

    /// The station's backend, opened by `opener` if no connection has it open.
    /// Opening happens under the pool's lock, so two connections of a new
    /// station cannot open it twice. Returns the lease and the number of
    /// connections now sharing it.
    func acquire(_ station: String, opener: (String) throws(OverlayError) -> any BlockBackend) throws(OverlayError) -> (StationLease, users: Int) {
        let result: Result<(any BlockBackend, Int), OverlayError> = monitor.locked {
            if let entry = open[station] {
                open[station] = (entry.backend, entry.users + 1)
                return .success((entry.backend, entry.users + 1))
            }
            do throws(OverlayError) {
                let backend = try opener(station)
                open[station] = (backend, 1)
                return .success((backend, 1))
            } catch { return .failure(error) }
        }
        let (backend, users) = try result.get()
        return (StationLease(backend) { [self] in release(station) }, users)
    }

    /// Closes under the pool's lock: a station reconnecting right now must
    /// not try to open (and lock) its files while the old descriptors still
    /// hold the flock, or it would be refused as "in use".
    private func release(_ station: String) {
        monitor.locked {
            guard let entry = open[station] else { return }
            if entry.users > 1 {
                open[station] = (entry.backend, entry.users - 1)
                return
            }
            open[station] = nil
            entry.backend.close()
        }
    }
}

/// One connection's handle on a station's shared backend: forwards every
/// call; `close()` gives the handle back (once), it does not close the file.
final class StationLease: BlockBackend, @unchecked Sendable {
    let shared: any BlockBackend
    private let monitor = Monitor()
    private var onRelease: (@Sendable () -> Void)?

    init(_ shared: any BlockBackend, release: @escaping @Sendable () -> Void) {
        self.shared = shared
        self.onRelease = release
    }

    var size: UInt64 { shared.size }
    var mayHaveHoles: Bool { shared.mayHaveHoles }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SysError) { try shared.read(into: buffer, at: offset) }
    func readWithoutWaiting(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SysError) -> Bool {
        try shared.readWithoutWaiting(into: buffer, at: offset)
    }
    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(SysError) { try shared.write(data, at: offset) }
    func flush() throws(SysError) { try shared.flush() }
    func trim(offset: UInt64, length: UInt64) throws(SysError) { try shared.trim(offset: offset, length: length) }
    func extents(offset: UInt64, length: UInt64, maxCount: Int) throws(SysError) -> [Extent] {
        try shared.extents(offset: offset, length: length, maxCount: maxCount)
    }
    func zero(offset: UInt64, length: UInt64, mayPunch: Bool, fast: Bool) throws(SysError) {
        try shared.zero(offset: offset, length: length, mayPunch: mayPunch, fast: fast)
    }
    func cache(offset: UInt64, length: UInt64) throws(SysError) { try shared.cache(offset: offset, length: length) }

    func close() {
        let release: (@Sendable () -> Void)? = monitor.locked {
            defer { onRelease = nil }
            return onRelease
        }
        release?()
    }
}

/// A cow export's shared base: the image opened O_RDONLY, read by every
/// station's overlay for the blocks it does not hold. Writes through it are
/// refused (connections write to their overlay, never here).
final class CowBase: BlockBackend, StationProvider, @unchecked Sendable {
    let base: FileBackend
    let path: String
    let overlays: String
    /// The base as it was when the server opened it (fstat-equivalent stat of
    /// the path, right after open); overlays are checked against it.
    let identity: BaseIdentity
    let pool = StationPool()
    var size: UInt64 { base.size }

    init(path: String, overlays: String) throws(SysError) {
        base = try FileBackend(path: path, readOnly: true)
        var st = stat()
        guard stat(path, &st) == 0 else {
            let e = Errno.current
            base.close()
            throw SysError("stat", e, path)
        }
        identity = BaseIdentity(size: base.size, mtimeSeconds: Int64(st.st_mtim.tv_sec),
                                mtimeNanoseconds: UInt32(st.st_mtim.tv_nsec))
        self.path = absolutePath(path)
        self.overlays = overlays
        do { try makeDirectory(overlays) } catch {
            base.close()
            throw error
        }
    }

    func attach(station: String) throws(OverlayError) -> (lease: StationLease, note: String) {
        let (lease, users) = try pool.acquire(station) { [self] (s) throws(OverlayError) in
            try Overlay(dir: overlays, station: s, base: base, basePath: path, identity: identity, now: UInt64(time(nil)))
        }
        let overlay = lease.shared as! Overlay
        let shared = users > 1 ? ", shared with \(users - 1) other connection(s)" : ""
        return (lease, "station '\(station)': overlay \(overlay.mapPath) (\(overlay.allocatedBlocks) of \(overlay.header.blockCount) blocks of \(overlay.blockSize) bytes in the overlay\(shared))")
    }

    var mayHaveHoles: Bool { base.mayHaveHoles }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SysError) { try base.read(into: buffer, at: offset) }
    func readWithoutWaiting(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SysError) -> Bool {
        try base.readWithoutWaiting(into: buffer, at: offset)
    }
    func extents(offset: UInt64, length: UInt64, maxCount: Int) throws(SysError) -> [Extent] {
        try base.extents(offset: offset, length: length, maxCount: maxCount)
    }
    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(SysError) {
        throw SysError("pwrite", Errno(EROFS), "\(path) (the base of a cow export is never written)")
    }
    func zero(offset: UInt64, length: UInt64, mayPunch: Bool, fast: Bool) throws(SysError) {
        throw SysError("fallocate", Errno(EROFS), "\(path) (the base of a cow export is never written)")
    }
    func flush() throws(SysError) {}
    func trim(offset: UInt64, length: UInt64) throws(SysError) {
        throw SysError("fallocate", Errno(EROFS), "\(path) (the base of a cow export is never written)")
    }
    func close() { base.close() }
}

/// A swap export's template: `size` bytes of zeroes (what a new swap file
/// holds) and the directory of the stations' swap files.
final class SwapBase: BlockBackend, StationProvider, @unchecked Sendable {
    let dir: String
    let size: UInt64
    let pool = StationPool()

    init(dir: String, size: UInt64) throws(SysError) {
        self.dir = dir
        self.size = size
        try makeDirectory(dir)
    }

    func attach(station: String) throws(OverlayError) -> (lease: StationLease, note: String) {
        let (lease, users) = try pool.acquire(station) { [self] (s) throws(OverlayError) in
            try SwapFile(dir: dir, station: s, size: size)
        }
        let swap = lease.shared as! SwapFile
        let what = swap.created && users == 1 ? "created" : "reopened"
        return (lease, "station '\(station)': swap file \(swap.path) (\(size) bytes, \(what))")
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SysError) {
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
    }
    func extents(offset: UInt64, length: UInt64, maxCount: Int) throws(SysError) -> [Extent] {
        length == 0 ? [] : [.hole(length)]
    }
    func zero(offset: UInt64, length: UInt64, mayPunch: Bool, fast: Bool) throws(SysError) {
        throw SysError("fallocate", Errno(EROFS), "\(dir) (a swap export is written through a station's file only)")
    }
    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(SysError) {
        throw SysError("pwrite", Errno(EROFS), "\(dir) (a swap export is written through a station's file only)")
    }
    func flush() throws(SysError) {}
    func trim(offset: UInt64, length: UInt64) throws(SysError) {}
    func close() {}
}

extension Export {
    /// For the server's start-up log: "read-only", "read-write",
    /// "copy-on-write, overlays in DIR" or "swap files of N bytes in DIR".
    var mode: String {
        switch spec.perStation {
        case .cow(let overlays)?: return "copy-on-write, one overlay per station in \(overlays)"
        case .swap(let size)?: return "swap, one file of \(size) bytes per station in \(spec.path)"
        case nil: return spec.readOnly ? "read-only" : "read-write"
        }
    }

    /// True for cow and swap exports: their clients may ask for `NAME@STATION`.
    var isPerStation: Bool { backend is StationProvider }

    /// Admission at the end of the handshake, before the reply that enters
    /// transmission is sent (Connection calls it on every `.transmit` step).
    /// A plain export passes as it is. For a per-station export the station is
    /// the one named in `requested` (`root@st1`), else the client's address
    /// from `peer`; its backend is opened (or shared) and the connection gets
    /// an Export over it. When that fails (no name for a Unix-socket client,
    /// overlay in use by another process, base changed...) the step becomes
    /// a refusal: NBD_REP_ERR_UNKNOWN with the reason for GO (the client may
    /// try again), a close for EXPORT_NAME (which cannot be refused).
    func admit(_ step: ServerHandshake.Step, option: OptionCode, requested: String, peer: String)
        -> (step: ServerHandshake.Step, export: Export?) {
        switch attachStation(requested: requested, peer: peer) {
        case .notPerStation:
            return (step, nil)
        case .attached(let export, let line):
            var admitted = step
            admitted.note = [step.note, line].compactMap { $0 }.joined(separator: "; ")
            return (admitted, export)
        case .refused(let problem):
            return (refusal(option, problem), nil)
        }
    }

    /// The oldstyle protocol sends no export name: a per-station export's
    /// station is the client's address. Returns the export to transmit on
    /// (self for a plain export), or nil, after a line to `note`, when the
    /// station's backend cannot be opened (oldstyle can only close then).
    func attachOldstyle(peer: String, note: (String) -> Void) -> Export? {
        switch attachStation(requested: spec.name, peer: peer) {
        case .notPerStation: return self
        case .attached(let export, let line):
            note(line)
            return export
        case .refused(let problem):
            note("oldstyle: \(problem); closing")
            return nil
        }
    }

    enum Attachment {
        case notPerStation
        case attached(Export, String)
        case refused(String)
    }

    /// Picks the station (named in `requested`, else the peer's address) and
    /// opens or shares its backend.
    func attachStation(requested: String, peer: String) -> Attachment {
        guard let provider = backend as? StationProvider else { return .notPerStation }
        let parts = StationName.split(requested)
        let station: String
        if requested != spec.name, let given = parts.station, StationName.isValid(given) {
            station = given
        } else if let fromPeer = StationName.fromPeer(peer) {
            station = fromPeer
        } else {
            return .refused("export '\(spec.name)' is per station and this client (\(peer)) has no address to name it by; ask for '\(spec.name)@STATION'")
        }
        do {
            let (lease, line) = try provider.attach(station: station)
            return .attached(Export(spec: spec, backend: lease), line)
        } catch {
            return .refused(error.description)
        }
    }

    /// NBD_REP_ERR_UNKNOWN with the reason, or a close for EXPORT_NAME.
    private func refusal(_ option: OptionCode, _ problem: String) -> ServerHandshake.Step {
        if option == .exportName { return ServerHandshake.Step(next: .close(reason: "EXPORT_NAME: \(problem)")) }
        let line = "\(option.name): \(problem)"
        return ServerHandshake.Step(send: OptionReplyHeader.encode(option, .errUnknown, data: Array(line.utf8.prefix(Limits.maxReplyPayload))),
                                    next: .readOption, note: line)
    }

    /// Gives the station's backend back (the last connection closes it).
    func detachStation() {
        if let lease = backend as? StationLease { lease.close() }
    }
}

extension ExportSpec {
    /// The start-up error for a cow or swap export that cannot be opened
    /// (openExportBackend), naming the base image or the directory at fault;
    /// nil for a plain export.
    func perStationOpenError(_ e: SysError) -> String? {
        switch perStation {
        case nil:
            return nil
        case .cow(let overlays):
            if e.call == "mkdir" {
                return "cannot create the overlay directory \(overlays) of cow export '\(name)': \(e.errno.description); create it, or choose another with ,overlays=DIR"
            }
            return "cannot open the base image \(path) of cow export '\(name)': \(e.errno.description) (\(e.call)); check the PATH in --export NAME=PATH,cow (it is opened read-only and never written)"
        case .swap:
            return "cannot create the swap directory \(path) of swap export '\(name)': \(e.errno.description); create it, or check the DIR in --export NAME=DIR,swap,size=N"
        }
    }
}

/// mkdir(2) with mode 0755 unless `path` is already a directory.
func makeDirectory(_ path: String) throws(SysError) {
    if mkdir(path, 0o755) == 0 { return }
    let e = Errno.current
    var st = stat()
    if e == .exists && stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { return }
    throw SysError("mkdir", e == .exists ? Errno(ENOTDIR) : e, path)
}

/// realpath(3), or the path as given when that fails.
func absolutePath(_ path: String) -> String {
    guard let p = realpath(path, nil) else { return path }
    defer { free(p) }
    return String(cString: p)
}
