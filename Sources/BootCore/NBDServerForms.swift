// The other ways a command line (or a DHCP root-path) names an NBD server,
// besides Debian's nbdroot= forms (NBDRoot.parseServer):
//
// dracut (modules.d/95nbd/parse-nbdroot.sh, man dracut.cmdline(7) "NBD"):
//   nbd:SRV:PORT[:FSTYPE[:FLAGS[:OPTS]]]      nbd:10.0.2.2:10809:ext4:ro
//   nbd:SRV:NAME[:FSTYPE[:FLAGS[:OPTS]]]      nbd:10.0.2.2:root   (not all digits: a name)
//   nbd:SRV:PORT/NAME[:...]                   nbdboot's addition: both port and name
//   SRV may be [IPv6]. FSTYPE "" or "auto" means detect. FLAGS are mount
//   options, `ro`/`rw` among them. OPTS is a comma list where `bs=N` and
//   `timeout=N` become the client's -b and -t (dracut drops them since
//   2021; here they work); any other option stops the boot, since the
//   static client takes no raw flags.
//
// NBD URIs (github.com/NetworkBlockDevice/nbd/blob/master/doc/uri.md):
//   nbd://HOST[:PORT][/NAME]                  nbd://10.0.2.2:10809/root
//   HOST may be [IPv6]; NAME is percent-decoded, and empty (or no /) means
//   the server's default export. nbds:// (TLS), nbd+unix://, user@ and
//   ?query parameters are refused: the station's client speaks plain TCP.

/// A parsed server value: where to connect and what the value says about
/// the device and the mount.
public struct NBDServerValue: Equatable, Sendable {
    public var server: NBDServerSpec
    /// Debian's third comma field (`HOST,NAME,nbdN`), or nil.
    public var device: NBDDevice?
    /// dracut's FSTYPE, nil when absent or `auto`.
    public var fsType: String?
    /// dracut's FLAGS, nil when absent.
    public var flags: String?

    public init(server: NBDServerSpec, device: NBDDevice? = nil, fsType: String? = nil, flags: String? = nil) {
        self.server = server
        self.device = device
        self.fsType = fsType
        self.flags = flags
    }

    /// True for values in dracut's `nbd:` form or an NBD URI (what root=
    /// and netroot= must hold to be an NBD root).
    public static func isNBDForm(_ value: String) -> Bool {
        value.hasPrefix("nbd:") || value.hasPrefix("nbds:") || value.hasPrefix("nbd+")
    }

    /// Parses any accepted form: an NBD URI, dracut's `nbd:` (unless
    /// `dracut` is false: in Debian's nbdroot=, `nbd:10809/root` is the host
    /// "nbd") or one of Debian's nbdroot= forms. `parameter` names the input
    /// in errors.
    public static func parse(_ value: String, parameter: String, dracut: Bool = true) throws(BootConfigError) -> NBDServerValue {
        if value.hasPrefix("nbd://") { return NBDServerValue(server: try parseNBDURI(value, parameter: parameter)) }
        if value.hasPrefix("nbds:") || value.hasPrefix("nbd+") {
            throw BootConfigError(parameter: parameter, value: value,
                                  problem: "TLS (nbds://) and Unix-socket (nbd+unix://) URIs are not supported by the station's client",
                                  example: "\(parameter)=nbd://10.0.2.2:10809/root")
        }
        if dracut && value.hasPrefix("nbd:") { return try parseDracutNBD(value, parameter: parameter) }
        let (spec, device) = try NBDRoot.parseServer(value, parameter: parameter)
        return NBDServerValue(server: spec, device: device)
    }
}

/// Splits `[V6]REST` or `HOST<sep>REST` into host and the rest (the rest
/// starts at the separator or is empty).
private func splitHost(_ b: ArraySlice<UInt8>, separators: [UInt8]) -> (host: String, rest: ArraySlice<UInt8>, bracketError: String?) {
    if b.first == UInt8(ascii: "[") {
        guard let close = b.firstIndex(of: UInt8(ascii: "]")) else { return ("", b, "the IPv6 address has no closing ]") }
        let host = b[(b.startIndex + 1)..<close]
        if host.isEmpty { return ("", b, "the IPv6 address between [ ] is empty") }
        return (String(decoding: host, as: UTF8.self), b[(close + 1)...], nil)
    }
    let end = b.firstIndex { separators.contains($0) } ?? b.endIndex
    return (String(decoding: b[..<end], as: UTF8.self), b[end...], nil)
}

/// dracut's `nbd:SRV:PORT|NAME[:FSTYPE[:FLAGS[:OPTS]]]` (and `PORT/NAME`).
public func parseDracutNBD(_ value: String, parameter: String) throws(BootConfigError) -> NBDServerValue {
    func fail(_ problem: Message) -> BootConfigError {
        BootConfigError(parameter: parameter, value: value, problem: problem,
                        example: "\(parameter)=nbd:10.0.2.2:10809:ext4 or \(parameter)=nbd:10.0.2.2:root")
    }
    let all = Array(value.utf8)
    let body = all[4...]  // after "nbd:"
    let (host, rest, bracketError) = splitHost(body, separators: [UInt8(ascii: ":")])
    if let bracketError { throw fail(Message(bracketError)) }
    guard !host.isEmpty else { throw fail("the server (after nbd:) is empty") }
    guard rest.first == UInt8(ascii: ":") else { throw fail("there is no :PORT or :NAME after the server") }
    let fields = splitFields(String(decoding: rest.dropFirst(), as: UTF8.self), ":")
    guard fields.count <= 4 else {
        throw fail("it has \(fields.count + 1) fields after nbd:; the form is nbd:SRV:PORT|NAME[:FSTYPE[:FLAGS[:OPTS]]]")
    }
    var spec = NBDServerSpec(host: host, exportName: "")
    let target = fields[0]
    guard !target.isEmpty else { throw fail("the port or export name (second field) is empty") }
    let slash = splitFields(target, "/")
    if let p = parseDecimal(slash[0], max: 65535) {
        guard p > 0 else { throw fail("the port \"\(slash[0])\" is not a number from 1 to 65535") }
        spec.port = UInt16(p)
        if slash.count > 1 {
            let name = String(decoding: Array(target.utf8).dropFirst(slash[0].utf8.count + 1), as: UTF8.self)
            guard !name.isEmpty else { throw fail("the export name after \(p)/ is empty") }
            spec.exportName = name
        }
    } else {
        spec.exportName = target
    }
    var out = NBDServerValue(server: spec)
    if fields.count > 1, !fields[1].isEmpty, fields[1] != "auto" {
        guard !fields[1].utf8.contains(UInt8(ascii: ",")) else { throw fail("the filesystem type \"\(fields[1])\" names more than one type") }
        out.fsType = fields[1]
    }
    if fields.count > 2, !fields[2].isEmpty { out.flags = fields[2] }
    if fields.count > 3 {
        for opt in splitFields(fields[3], ",") where !opt.isEmpty {
            let kv = splitFields(opt, "=")
            switch kv[0] {
            case "bs":
                guard kv.count == 2, let n = parseDecimal(kv[1], max: 4096), [512, 1024, 2048, 4096].contains(n) else {
                    throw fail("the option \"\(opt)\" is not bs=512, 1024, 2048 or 4096")
                }
                out.server.blockSize = n
            case "timeout":
                guard kv.count == 2, let n = parseDecimal(kv[1], max: 86400), n > 0 else {
                    throw fail("the option \"\(opt)\" is not timeout=SECONDS (1-86400)")
                }
                out.server.timeoutSeconds = n
            default:
                throw fail("the client option \"\(opt)\" is not supported (only bs=N and timeout=N)")
            }
        }
    }
    return out
}

/// An NBD URI, `nbd://HOST[:PORT][/NAME]`.
public func parseNBDURI(_ value: String, parameter: String) throws(BootConfigError) -> NBDServerSpec {
    func fail(_ problem: Message) -> BootConfigError {
        BootConfigError(parameter: parameter, value: value, problem: problem,
                        example: "\(parameter)=nbd://10.0.2.2:10809/root")
    }
    let all = Array(value.utf8)
    let body = all[6...]  // after "nbd://"
    if body.contains(UInt8(ascii: "?")) { throw fail("query parameters (?...) are not supported") }
    let authorityEnd = body.firstIndex(of: UInt8(ascii: "/")) ?? body.endIndex
    if body[..<authorityEnd].contains(UInt8(ascii: "@")) { throw fail("a user name (user@) is for TLS, which the station's client does not speak") }
    let (host, rest, bracketError) = splitHost(body[..<authorityEnd], separators: [UInt8(ascii: ":")])
    if let bracketError { throw fail(Message(bracketError)) }
    guard !host.isEmpty else { throw fail("the host is empty") }
    var spec = NBDServerSpec(host: host, exportName: "")
    if rest.first == UInt8(ascii: ":") {
        let text = String(decoding: rest.dropFirst(), as: UTF8.self)
        guard let p = parseDecimal(text, max: 65535), p > 0 else { throw fail("the port \"\(text)\" is not a number from 1 to 65535") }
        spec.port = UInt16(p)
    } else if !rest.isEmpty {
        throw fail("unexpected text after the host")
    }
    if authorityEnd < body.endIndex {
        guard let name = percentDecode(body[(authorityEnd + 1)...]) else {
            throw fail("the export name has a bad %-escape (write %XX with two hex digits)")
        }
        spec.exportName = name
    }
    return spec
}

/// Decodes %XX escapes (RFC 3986 2.1); nil on a malformed escape.
public func percentDecode(_ b: ArraySlice<UInt8>) -> String? {
    var out: [UInt8] = []
    var i = b.startIndex
    while i < b.endIndex {
        if b[i] == UInt8(ascii: "%") {
            guard i + 2 < b.endIndex, let h = hexDigit(b[i + 1]), let l = hexDigit(b[i + 2]) else { return nil }
            out.append(h << 4 | l)
            i += 3
        } else {
            out.append(b[i])
            i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}
