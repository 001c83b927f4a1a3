// What an export's configuration adds to NAME=PATH[,readonly]: the clients it
// admits, the transmission flags it advertises, a size override and a cap on
// its connections. Set from a config file section (ConfigFile.swift); an
// export from the command line has the defaults, which keep the behaviour of
// `--export` unchanged.
import NBDWire

public struct ExportPolicy: Equatable, Sendable {
    /// nbd-server's `authfile`: nil admits every client.
    public var allow: AllowList?
    /// nbd-server's `trim`, `flush`, `fua`: whether SEND_TRIM (and
    /// SEND_WRITE_ZEROES/SEND_FAST_ZERO, which also free space), SEND_FLUSH and
    /// SEND_FUA are advertised. nbdboot's default is on (nbd-server's is
    /// off), so a file that leaves them out gets a durable, trimmable export.
    /// A client that sends a command or flag that is not advertised gets EINVAL
    /// (RequestGate), so `trim = false` really keeps holes out of the file.
    public var trim = true
    public var flush = true
    public var fua = true
    /// nbd-server's `rotational`: advertise NBD_FLAG_ROTATIONAL, so the
    /// client's kernel uses an elevator suited to spinning disks.
    public var rotational = false
    /// nbd-server's `filesize`: serve the first N bytes of the file (it must
    /// be at least that large); a missing file is created sparse with N bytes,
    /// as nbd-server does.
    public var fileSize: UInt64?
    /// nbd-server's per-export `maxconnections`: connections in transmission
    /// on this export at once; one more is closed right after it chose the
    /// export. nil: no cap besides the server's.
    public var maxConnections: Int?
    public init() {}

    /// The export's transmission flags with this policy applied.
    public func apply(to flags: TransmissionFlags) -> TransmissionFlags {
        var f = flags
        if !trim { f.subtract([.sendTrim, .sendWriteZeroes, .sendFastZero]) }
        if !flush { f.remove(.sendFlush) }
        if !fua { f.remove(.sendFUA) }
        if rotational { f.insert(.rotational) }
        return f
    }

    /// Why `client` may not use this export, or nil when it may. Unix-socket
    /// clients (`client` nil) are local: the socket file's permissions guard
    /// them, and they pass every allow list.
    public func refusal(for client: IPAddress?) -> String? {
        guard let allow, let client else { return nil }
        if allow.allows(client) { return nil }
        return "client \(client) is not in the allow list \(allow.source)"
    }
}
