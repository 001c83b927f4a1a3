// The listening socket: socket(2), SO_REUSEADDR (so a restart on the same port
// works while old connections sit in TIME_WAIT), bind(2), listen(2), and
// accept(2) with the peer's printable address.
import Glibc
import LinuxSys

final class Listener: @unchecked Sendable {
    let fd: Int32
    /// The bound address, e.g. "127.0.0.1:10809", "[::1]:10809" or "unix:/run/nbd.sock".
    let text: String
    private let unixPath: String?

    init(_ address: ListenAddress) throws(SysError) {
        switch address {
        case .tcp(let host, let port):
            var last = SysError("bind", Errno(EADDRNOTAVAIL), address.description)
            for a in try resolve(host: host, port: port) {
                do {
                    fd = try Listener.bind(family: a.family, storage: a.storage, length: a.length, what: a.text)
                    text = a.text
                    unixPath = nil
                    return
                } catch { last = error }
            }
            throw last
        case .unix(let path):
            var sun = sockaddr_un()
            sun.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: sun.sun_path) else {
                throw SysError("bind", Errno(ENAMETOOLONG), path)
            }
            withUnsafeMutableBytes(of: &sun.sun_path) { dst in
                for (i, b) in bytes.enumerated() { dst[i] = b }
            }
            // A socket file left by a previous run would make bind fail with EADDRINUSE.
            var st = stat()
            if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { dst in
                withUnsafeBytes(of: &sun) { src in dst.copyMemory(from: src) }
            }
            fd = try Listener.bind(family: AF_UNIX, storage: storage,
                                   length: socklen_t(MemoryLayout<sockaddr_un>.size), what: path)
            text = "unix:\(path)"
            unixPath = path
        }
    }

    private static func bind(family: Int32, storage: sockaddr_storage, length: socklen_t, what: String) throws(SysError) -> Int32 {
        let fd = try sysCall("socket", what) { socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        var one: Int32 = 1
        if family != AF_UNIX {
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        if family == AF_INET6 {
            // IPv6 only, so "::" and "0.0.0.0" on one port can both be bound
            // (two listeners); IPv4 clients come through the IPv4 socket.
            _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        var st = storage
        let rc = withUnsafePointer(to: &st) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
        }
        if rc != 0 {
            let e = Errno.current
            _ = Glibc.close(fd)
            throw SysError("bind", e, what)
        }
        if listen(fd, 128) != 0 {
            let e = Errno.current
            _ = Glibc.close(fd)
            throw SysError("listen", e, what)
        }
        return fd
    }

    /// accept(2): a new connection (close-on-exec, TCP_NODELAY as the
    /// protocol recommends), its peer as text and its IP address (nil for a
    /// Unix socket). Retries EINTR.
    func accept() throws(SysError) -> (fd: Int32, peer: String, client: IPAddress?) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let client = try sysCall("accept", text) {
            withUnsafeMutablePointer(to: &storage) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(fd, $0, &length) }
            }
        }
        // accept4(SOCK_CLOEXEC) needs _GNU_SOURCE in Swift's Glibc; fcntl does the same.
        _ = fcntl(client, F_SETFD, FD_CLOEXEC)
        if Int32(storage.ss_family) == AF_UNIX { return (client, "unix socket", nil) }
        var one: Int32 = 1
        _ = setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let peer = Listener.describe(&storage, length)
        return (client, peer, IPAddress(hostOf: peer))
    }

    /// getnameinfo(3) with numeric host and port: "10.0.2.15:40312", "[::1]:40312".
    static func describe(_ storage: inout sockaddr_storage, _ length: socklen_t) -> String {
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var serv = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let rc = withUnsafePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &host, socklen_t(host.count), &serv, socklen_t(serv.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard rc == 0 else { return "unknown peer" }
        let h = cText(host)
        let s = cText(serv)
        return h.contains(":") ? "[\(h)]:\(s)" : "\(h):\(s)"
    }

    /// A NUL-terminated C buffer as a String.
    private static func cText(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func close() {
        _ = Glibc.close(fd)
        if let unixPath { unlink(unixPath) }
    }
}
