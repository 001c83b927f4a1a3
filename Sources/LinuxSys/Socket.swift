// Stream sockets: connect to a host and port (IPv4, IPv6 or a name), or to a
// Unix socket, and the NBD transport over a connected socket.
#if canImport(CShims)
import CShims
#endif
#if canImport(NBDWire)
import NBDWire
#endif

/// A resolved address, kept so a reconnect needs no DNS (and no allocation).
public struct SocketAddress: Sendable {
    public var family: Int32
    public var storage: sockaddr_storage
    public var length: socklen_t
    /// Printable form, e.g. "10.0.2.2:10809" or "[::1]:10809".
    public var text: String
}

/// Resolves `host` (a literal or a name, brackets allowed around IPv6) and `port`.
public func resolve(host: String, port: UInt16) throws(SysError) -> [SocketAddress] {
    var h = host
    if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
    var hints = addrinfo()
    hints.ai_family = shim_AF_UNSPEC
    hints.ai_socktype = shim_SOCK_STREAM
    hints.ai_flags = AI_NUMERICSERV
    var list: UnsafeMutablePointer<addrinfo>? = nil
    let rc = getaddrinfo(h, "\(port)", &hints, &list)
    if rc != 0 {
        let why = gai_strerror(rc).map { String(cString: $0) } ?? "error \(rc)"
        throw SysError("getaddrinfo", Errno(EHOSTUNREACH), "\(host) (\(why))")
    }
    defer { freeaddrinfo(list) }
    var out: [SocketAddress] = []
    var p = list
    while let ai = p {
        var st = sockaddr_storage()
        withUnsafeMutableBytes(of: &st) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: ai.pointee.ai_addr, count: Int(ai.pointee.ai_addrlen)))
        }
        let text = ai.pointee.ai_family == shim_AF_INET6 ? "[\(h)]:\(port)" : "\(h):\(port)"
        out.append(SocketAddress(family: ai.pointee.ai_family, storage: st, length: ai.pointee.ai_addrlen, text: text))
        p = ai.pointee.ai_next
    }
    return out
}

/// Connects a TCP socket to `address`, with TCP_NODELAY as the protocol asks.
public func connect(to address: SocketAddress) throws(SysError) -> FileDescriptor {
    let fd = try sysCall("socket", address.text) { socket(address.family, shim_SOCK_STREAM | shim_SOCK_CLOEXEC, 0) }
    var st = address.storage
    let rc = withUnsafePointer(to: &st) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
            connectRetrying(fd, sa, address.length)
        }
    }
    if rc < 0 {
        let e = Errno.current
        _ = close(fd)
        throw SysError("connect", e, address.text)
    }
    var one: Int32 = 1
    _ = setsockopt(fd, shim_IPPROTO_TCP, TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    return FileDescriptor(fd)
}

private func connectRetrying(_ fd: Int32, _ sa: UnsafePointer<sockaddr>, _ len: socklen_t) -> Int32 {
    while true {
        let r = connect(fd, sa, len)
        if r == 0 || Errno.current != .interrupted { return r }
    }
}

/// Resolves and connects, trying each address in turn.
public func connectTCP(host: String, port: UInt16) throws(SysError) -> FileDescriptor {
    let addresses = try resolve(host: host, port: port)
    var last = SysError("connect", Errno(EHOSTUNREACH), "\(host):\(port)")
    for a in addresses {
        do { return try connect(to: a) } catch { last = error }
    }
    throw last
}

/// Connects to a Unix stream socket at `path`.
public func connectUnix(path: String) throws(SysError) -> FileDescriptor {
    let fd = try sysCall("socket", path) { socket(shim_AF_UNIX, shim_SOCK_STREAM | shim_SOCK_CLOEXEC, 0) }
    var sun = sockaddr_un()
    sun.sun_family = sa_family_t(shim_AF_UNIX)
    let bytes = Array(path.utf8)
    let capacity = MemoryLayout.size(ofValue: sun.sun_path)
    guard bytes.count < capacity else {
        _ = close(fd)
        throw SysError("connect", Errno(ENAMETOOLONG), path)
    }
    withUnsafeMutableBytes(of: &sun.sun_path) { dst in
        for (i, b) in bytes.enumerated() { dst[i] = b }
    }
    let rc = withUnsafePointer(to: &sun) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
            connectRetrying(fd, sa, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    if rc < 0 {
        let e = Errno.current
        _ = close(fd)
        throw SysError("connect", e, path)
    }
    return FileDescriptor(fd)
}

/// The NBD handshake over a connected, blocking socket.
public struct SocketTransport: NBDTransport {
    public let fd: FileDescriptor
    public init(_ fd: FileDescriptor) { self.fd = fd }

    public mutating func read(exactly count: Int, doing: String) throws(NegotiationError) -> [UInt8] {
        let got: [UInt8]?
        do { got = try fd.read(exactly: count) } catch { throw .io(errno: error.errno.rawValue, doing: doing) }
        guard let got else { throw .closed(doing: doing) }
        return got
    }

    public mutating func write(_ bytes: [UInt8], doing: String) throws(NegotiationError) {
        do { try fd.sendAll(bytes) } catch { throw .io(errno: error.errno.rawValue, doing: doing) }
    }
}
