// NBD URIs (the NBD URI spec, doc/uri.md in NetworkBlockDevice/nbd; what
// libnbd's nbd_connect_uri and qemu accept), in the forms a station needs:
//   nbd://HOST[:PORT]/EXPORT         TCP (PORT defaults to 10809)
//   nbd://[IPV6]:PORT/EXPORT         an IPv6 literal in brackets
//   nbd+unix:///EXPORT?socket=PATH   a Unix socket
// EXPORT is everything after the first '/' of the path, percent-decoded
// ("nbd://h/" and "nbd://h" name the default export ""). TLS schemes
// (nbds, nbds+unix) and vsock are refused with the reason. Pure code.
#if canImport(NBDWire)
import NBDWire
#endif

/// A parsed NBD URI: where the server is and which export to attach.
public struct NBDURI: Equatable {
    public var server: ServerAddress
    public var exportName: String

    public init(server: ServerAddress, exportName: String) {
        self.server = server
        self.exportName = exportName
    }

    /// Whether `text` looks like a URI (so a parse error is about the URI,
    /// not about a host name).
    public static func looksLikeURI(_ text: String) -> Bool {
        text.hasPrefix("nbd://") || text.hasPrefix("nbd+") || text.hasPrefix("nbds://") || text.hasPrefix("nbds+")
    }

    /// Parses `text`; the error names the URI and what is wrong with it.
    public static func parse(_ text: String) throws(ArgumentError) -> NBDURI {
        guard let colon = text.firstIndex(of: ":"), text[colon...].hasPrefix("://") else {
            throw ArgumentError("URI '\(text)': expected nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH")
        }
        let scheme = String(text[..<colon])
        var rest = text[colon...].dropFirst(3)
        switch scheme {
        case "nbd", "nbd+tcp", "nbd+unix": break
        case "nbds", "nbds+tcp", "nbds+unix":
            throw ArgumentError("URI '\(text)': \(scheme) asks for TLS, which this nbd-client does not implement (use nbd:// on a trusted network)")
        case "nbd+vsock", "nbds+vsock":
            throw ArgumentError("URI '\(text)': vsock is not supported (use nbd:// or nbd+unix://)")
        default:
            throw ArgumentError("URI '\(text)': unknown scheme '\(scheme)' (expected nbd or nbd+unix)")
        }
        // Split off ?query (and drop a #fragment).
        var query = Substring("")
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        var authority = rest
        var path = Substring("")
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        }
        let exportName = try percentDecode(path, uri: text)
        var socketPath: String? = nil
        for pair in query.split(separator: "&") {
            guard let eq = pair.firstIndex(of: "=") else {
                throw ArgumentError("URI '\(text)': query part '\(pair)' is not KEY=VALUE")
            }
            let key = pair[..<eq]
            let value = try percentDecode(pair[pair.index(after: eq)...], uri: text)
            switch key {
            case "socket": socketPath = value
            case "tls":
                if value != "off" && value != "disable" {
                    throw ArgumentError("URI '\(text)': tls=\(value) asks for TLS, which this nbd-client does not implement")
                }
            default:
                throw ArgumentError("URI '\(text)': unsupported query parameter '\(key)' (only socket= is understood)")
            }
        }
        if scheme == "nbd+unix" {
            guard authority.isEmpty else {
                throw ArgumentError("URI '\(text)': nbd+unix takes no host ('\(authority)'); write nbd+unix:///EXPORT?socket=PATH")
            }
            guard let socketPath, !socketPath.isEmpty else {
                throw ArgumentError("URI '\(text)': nbd+unix needs ?socket=PATH")
            }
            return NBDURI(server: .unix(path: socketPath), exportName: exportName)
        }
        if socketPath != nil { throw ArgumentError("URI '\(text)': socket= belongs to nbd+unix://, not \(scheme)://") }
        let (host, port) = try hostAndPort(authority, uri: text)
        return NBDURI(server: .tcp(host: host, port: port), exportName: exportName)
    }

    /// "HOST", "HOST:PORT", "[V6]" or "[V6]:PORT" (userinfo@ is refused).
    static func hostAndPort(_ a: Substring, uri: String) throws(ArgumentError) -> (String, UInt16) {
        if a.contains("@") { throw ArgumentError("URI '\(uri)': user names are not supported ('\(a)')") }
        var host = a
        var portText: Substring? = nil
        if a.hasPrefix("[") {
            guard let close = a.firstIndex(of: "]") else { throw ArgumentError("URI '\(uri)': '[' without ']' around the IPv6 address") }
            host = a[a.index(after: a.startIndex)..<close]
            let after = a[a.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw ArgumentError("URI '\(uri)': unexpected '\(after)' after the IPv6 address") }
                portText = after.dropFirst()
            }
        } else if let colon = a.firstIndex(of: ":") {
            host = a[..<colon]
            portText = a[a.index(after: colon)...]
            if portText?.contains(":") == true {
                throw ArgumentError("URI '\(uri)': an IPv6 address must be in brackets, e.g. nbd://[::1]:10809/export")
            }
        }
        guard !host.isEmpty else { throw ArgumentError("URI '\(uri)': no host (write nbd://HOST/EXPORT, or nbd+unix:// for a socket)") }
        var port = Limits.defaultPort
        if let portText, !portText.isEmpty {
            guard let p = parseDecimal(portText, max: 65535), p > 0 else {
                throw ArgumentError("URI '\(uri)': port '\(portText)' is not a number from 1 to 65535")
            }
            port = UInt16(p)
        }
        return (String(host), port)
    }

    /// %XX escapes to bytes; the result must be UTF-8.
    static func percentDecode(_ s: Substring, uri: String) throws(ArgumentError) -> String {
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let b = bytes.first {
            bytes = bytes.dropFirst()
            guard b == 37 else { out.append(b); continue }  // '%'
            guard bytes.count >= 2, let hi = hexValue(bytes[bytes.startIndex]), let lo = hexValue(bytes[bytes.startIndex + 1]) else {
                throw ArgumentError("URI '\(uri)': bad %-escape in '\(s)'")
            }
            out.append(hi << 4 | lo)
            bytes = bytes.dropFirst(2)
        }
        let text = String(decoding: out, as: UTF8.self)
        guard Array(text.utf8) == out else { throw ArgumentError("URI '\(uri)': '\(s)' does not decode to UTF-8") }
        return text
    }

    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 48...57: return b - 48
        case 65...70: return b - 55
        case 97...102: return b - 87
        default: return nil
        }
    }
}
