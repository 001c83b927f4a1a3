// /etc/nbdboot/modules: the kernel modules the init loads, in order.
// The generator resolved dependencies at build time; one line per module:
//   lib/modules/6.1.0-56-amd64/kernel/drivers/block/nbd.ko max_part=15
// a path relative to / then optional parameters (the rest of the line, given
// to finit_module(2) as is). Blank lines and lines starting with # are skipped.

/// One module to load.
public struct ModuleEntry: Equatable, Sendable {
    /// Absolute path, e.g. /lib/modules/6.1.0-56-amd64/kernel/drivers/block/nbd.ko.
    public var path: String
    /// Parameters, e.g. "max_part=15", or "".
    public var parameters: String

    public init(path: String, parameters: String = "") {
        self.path = path
        self.parameters = parameters
    }

    /// `nbd` from .../nbd.ko, for messages.
    public var name: String {
        var base = splitFields(path, "/").last ?? path
        for ext in [".ko", ".ko.xz", ".ko.zst", ".ko.gz"] where base.hasSuffix(ext) {
            base = String(base.dropLast(ext.count))
            break
        }
        return base
    }
}

/// Parses the list. Lines are trimmed of surrounding spaces; the path is
/// made absolute.
public func parseModuleList(_ text: String) -> [ModuleEntry] {
    var out: [ModuleEntry] = []
    for raw in splitFields(text, "\n") {
        let line = trimSpaces(raw)
        if line.isEmpty || line.hasPrefix("#") { continue }
        let b = Array(line.utf8)
        let sp = b.firstIndex { $0 == 0x20 || $0 == 0x09 } ?? b.endIndex
        var path = String(decoding: b[..<sp], as: UTF8.self)
        if !path.hasPrefix("/") { path = "/" + path }
        let params = sp < b.endIndex ? trimSpaces(String(decoding: b[(sp + 1)...], as: UTF8.self)) : ""
        out.append(ModuleEntry(path: path, parameters: params))
    }
    return out
}

/// Drops leading and trailing spaces, tabs, CR and LF.
public func trimSpaces(_ s: String) -> String {
    let b = Array(s.utf8)
    func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }
    guard let first = b.firstIndex(where: { !isSpace($0) }) else { return "" }
    let last = b.lastIndex(where: { !isSpace($0) })!
    return String(decoding: b[first...last], as: UTF8.self)
}
