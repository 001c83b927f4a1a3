// From a negotiated export and the command line to what the kernel is told
// (NBD_CMD_CONNECT attributes or the NBD_SET_* ioctls). Pure: the rules live
// here and are unit-tested; StationClient only sends the result.
#if canImport(NBDWire)
import NBDWire
#endif

/// Why the negotiated export and the command line cannot make a device.
public struct SetupError: Error, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// What the kernel is told about the export.
public struct DeviceSetup: Equatable {
    public var device: NBDDevice
    public var size: UInt64
    public var blockSize: UInt32
    /// Transmission flags from the handshake, with READ_ONLY added for -R.
    public var flags: UInt16
    public var timeout: UInt64?
    public var deadTimeout: UInt64?
    public var identifier: String?
    public var readOnly: Bool
    /// The largest request the server takes, in KiB, when it is below the
    /// kernel's own limit (32 MiB): written to
    /// /sys/block/nbdN/queue/max_sectors_kb after connecting, since neither
    /// netlink nor the ioctls can carry it.
    public var maxRequestKiB: UInt32? = nil

    /// Checks the connections agree and applies the options:
    /// - block size: -b, else 512, raised to the server's NBD_INFO_BLOCK_SIZE
    ///   minimum when larger (the kernel accepts powers of two up to 4096);
    /// - size: -B, else the negotiated size;
    /// - flags: the negotiated ones, plus NBD_FLAG_READ_ONLY with -R;
    /// - several connections need NBD_FLAG_CAN_MULTI_CONN;
    /// - dead-connection timeout: -T, else 600 s with -persist (so a server
    ///   restart stalls I/O instead of failing it), else none;
    /// - request timeout: -t, else 30 s with -persist: a server that vanished
    ///   without closing the connection (network cut, host frozen) is only
    ///   noticed when a request times out; with timeout 0 and one socket the
    ///   kernel just logs "Possible stuck request" forever and never reports
    ///   the link dead, so -persist could not reconnect;
    /// - largest request: the server's NBD_INFO_BLOCK_SIZE maximum payload
    ///   when it is below the kernel's 32 MiB (rounded down to whole KiB
    ///   and to the block size; a maximum below one page cannot be obeyed).
    /// Returns the setup and notes worth telling the user.
    public static func derive(_ o: ConnectOptions, exports: [NegotiatedExport]) throws(SetupError) -> (DeviceSetup, [String]) {
        guard let export = exports.first else { throw SetupError("no connection was negotiated") }
        for e in exports.dropFirst() where !sameExport(e, export) {
            throw SetupError("the connections to \(o.server.text) disagree on the size or flags of export '\(o.exportName)'")
        }
        if exports.count > 1 && !export.flags.contains(.canMultiConn) {
            throw SetupError("export '\(o.exportName)' does not allow several connections (no NBD_FLAG_CAN_MULTI_CONN): drop -C \(exports.count)")
        }
        var notes: [String] = []
        var bs = o.blockSize ?? 512
        if let minimum = export.minimumBlock, minimum > bs {
            guard minimum <= 4096, minimum & (minimum - 1) == 0 else {
                throw SetupError("the server's minimum block size \(minimum) is not one the kernel accepts (a power of two up to 4096)")
            }
            if o.blockSize != nil { notes.append("block size \(bs) is below the server's minimum, using \(minimum)") }
            bs = minimum
        }
        let size = o.sizeOverride ?? export.size
        if o.sizeOverride != nil && size % UInt64(bs) != 0 {
            throw SetupError("-size \(size) is not a multiple of the block size \(bs)")
        }
        var flags = export.flags
        if o.readOnly { flags.insert(.readOnly) }
        var setup = DeviceSetup(device: o.device, size: size, blockSize: bs, flags: flags.rawValue, timeout: o.timeout ?? (o.persist ? 30 : nil),
                                deadTimeout: o.deadTimeout ?? (o.persist ? 600 : nil),
                                identifier: o.backendIdentifier, readOnly: o.readOnly)
        if let maximum = export.maximumPayload, maximum < DeviceSetup.kernelMaxRequest {
            let whole = maximum / 1024
            let kib = whole - whole % max(1, bs / 1024)
            if kib >= 4 {
                setup.maxRequestKiB = kib
            } else {
                notes.append("the server's maximum request of \(maximum) bytes is below one page: the kernel cannot be held to it")
            }
        }
        return (setup, notes)
    }

    /// The kernel's largest NBD request: max_hw_sectors 65536 x 512 bytes.
    public static let kernelMaxRequest: UInt32 = 32 << 20

    /// NBD_CMD_CONNECT for this setup and the given sockets.
    public func connectRequest(fds: [Int32]) -> NBDConnectRequest {
        var r = NBDConnectRequest(index: device.index, size: size, blockSize: UInt64(blockSize), serverFlags: UInt64(flags), fds: fds)
        r.timeout = timeout
        r.deadConnTimeout = deadTimeout
        r.backendIdentifier = identifier
        return r
    }

    /// Whether a reconnection reached the same export: same size and flags
    /// (the kernel keeps the old ones, so anything else would corrupt data).
    public static func sameExport(_ a: NegotiatedExport, _ b: NegotiatedExport) -> Bool {
        a.size == b.size && a.flags.rawValue == b.flags.rawValue
    }
}
