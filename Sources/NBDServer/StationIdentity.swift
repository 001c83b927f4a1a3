// Who a station is, for per-station exports (copy-on-write overlays, swap
// files): the name it gives in the export name, `root@station42`, or else its
// client address. The name becomes a file name in the overlay directory, so
// it is checked strictly here, in pure code, before anything touches a file.
import NBDWire

public enum StationName {
    /// The longest station name accepted.
    public static let maxLength = 64

    /// Checks a station name: 1 to 64 of `A-Z a-z 0-9 . _ -`, starting with a
    /// letter or a digit (so ".", ".." and hidden files cannot be named).
    /// Returns nil when valid, or what is wrong.
    public static func problem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        if bytes.isEmpty { return "the station name is empty" }
        if bytes.count > maxLength { return "the station name is \(bytes.count) bytes long, more than \(maxLength)" }
        if !isAlnum(bytes[0]) { return "a station name must start with a letter or a digit" }
        for b in bytes where !(isAlnum(b) || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")) {
            return "a station name may hold only A-Z a-z 0-9 . _ - (found '\(String(decoding: [b], as: UTF8.self))')"
        }
        return nil
    }

    public static func isValid(_ name: String) -> Bool { problem(name) == nil }

    /// ASCII letter or digit.
    private static func isAlnum(_ b: UInt8) -> Bool {
        (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122)
    }

    /// Splits an export name asked for by a client into the export and the
    /// station: "root@st1" -> ("root", "st1"); "root" -> ("root", nil). The
    /// last '@' separates them, so an export name may itself hold an '@'.
    public static func split(_ requested: String) -> (export: String, station: String?) {
        guard let at = requested.lastIndex(of: "@") else { return (requested, nil) }
        return (String(requested[..<at]), String(requested[requested.index(after: at)...]))
    }

    /// The default station name from the peer text the listener prints
    /// ("10.0.2.15:40312", "[fe80::1]:40312", "unix socket"): the address
    /// without the port. An IPv4-mapped IPv6 address gives the IPv4 address;
    /// other IPv6 addresses have ':' replaced by '-' ("fe80--1", "::1" gives "0--1"), and a zone
    /// ("%eth0") by '_'. nil for a Unix socket peer, which has no address:
    /// such a client must name itself (`root@NAME`).
    public static func fromPeer(_ peer: String) -> String? {
        var host: Substring
        if peer.hasPrefix("[") {
            guard let close = peer.firstIndex(of: "]") else { return nil }
            host = peer[peer.index(after: peer.startIndex)..<close]
            let lower = host.lowercased()
            if lower.hasPrefix("::ffff:"), !host.dropFirst(7).contains(":") { host = host.dropFirst(7) }
            // "::1" is "0::1": a name must start with a letter or a digit.
            else if host.hasPrefix(":") { host = "0" + host }
        } else {
            guard let colon = peer.lastIndex(of: ":") else { return nil }
            host = peer[..<colon]
        }
        let name = String(host.map { c -> Character in c == ":" ? "-" : c == "%" ? "_" : c })
        return isValid(name) ? name : nil
    }

    /// The index of the per-station export a client means by `requested`
    /// (`NAME@STATION` with a valid station), or nil.
    public static func exportIndex(_ requested: String, in exports: [ExportInfo]) -> Int? {
        let parts = split(requested)
        guard let station = parts.station, isValid(station) else { return nil }
        return exports.firstIndex { $0.perStation && $0.name == parts.export }
    }

    /// Why no export matches `requested`, for the ERR_UNKNOWN reply and the log:
    /// a bad station name on a per-station export, a station name given to an
    /// export without stations, or simply an unknown name.
    public static func noExport(_ requested: String, in exports: [ExportInfo]) -> String {
        let parts = split(requested)
        let list = "exports: " + exports.map { "'\($0.name)'\($0.perStation ? " (per station: NAME@STATION)" : "")" }.joined(separator: ", ")
        if let station = parts.station, let e = exports.first(where: { $0.name == parts.export }) {
            if !e.perStation {
                return "export '\(e.name)' is not a per-station export (cow or swap), so '\(requested)' names nothing; ask for '\(e.name)'"
            }
            if let problem = problem(station) {
                return "'\(requested)': \(problem); use 1 to \(maxLength) of A-Z a-z 0-9 . _ -, e.g. \(e.name)@station42"
            }
        }
        return "no export '\(requested)' (\(list))"
    }
}
