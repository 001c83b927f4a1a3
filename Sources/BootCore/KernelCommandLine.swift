// The kernel command line (/proc/cmdline) split the way the kernel splits it.
//
// The kernel's own tokenizer is next_arg() in lib/cmdline.c: words are
// separated by spaces (and tabs/newlines), double quotes group a word that
// contains spaces and are themselves removed, the first `=` of a word splits
// key from value, and a lone `--` ends the kernel's parameters: what follows
// is handed to init untouched.

/// One word of the kernel command line: `key=value`, or a bare `flag`.
public struct KernelParameter: Equatable, Sendable {
    public var key: String
    /// nil for a bare word such as `ro`; "" for `key=`.
    public var value: String?

    public init(key: String, value: String?) {
        self.key = key
        self.value = value
    }
}

/// The parsed command line. Later words win over earlier ones, as for the
/// kernel's own parameters (a boot loader appends, the user's word comes last).
public struct KernelCommandLine: Equatable, Sendable {
    public var parameters: [KernelParameter]
    /// Words after a lone `--`, for init.
    public var initArguments: [String]

    public init(_ text: String) {
        parameters = []
        initArguments = []
        var afterDashes = false
        for word in tokenizeKernelCommandLine(text) {
            if afterDashes { initArguments.append(word); continue }
            if word == "--" { afterDashes = true; continue }
            let bytes = Array(word.utf8)
            if let eq = bytes.firstIndex(of: UInt8(ascii: "=")) {
                parameters.append(KernelParameter(
                    key: String(decoding: bytes[..<eq], as: UTF8.self),
                    value: String(decoding: bytes[(eq + 1)...], as: UTF8.self)))
            } else {
                parameters.append(KernelParameter(key: word, value: nil))
            }
        }
    }

    /// The value of the last `key=value` word, or nil when there is none
    /// (a bare `key` has no value).
    public func value(_ key: String) -> String? {
        for p in parameters.reversed() where p.key == key {
            if let v = p.value { return v }
        }
        return nil
    }

    /// The values of every `key=value` word, in command-line order (for
    /// repeatable parameters such as dracut's `nameserver=`).
    public func values(_ key: String) -> [String] {
        var out: [String] = []
        for p in parameters where p.key == key {
            if let v = p.value { out.append(v) }
        }
        return out
    }

    /// True when `key` appears at all, bare or with a value.
    public func contains(_ key: String) -> Bool {
        parameters.contains { $0.key == key }
    }

    /// The last of the bare flags in `keys` (e.g. `ro` or `rw`), or nil.
    public func lastFlag(of keys: [String]) -> String? {
        for p in parameters.reversed() where p.value == nil && keys.contains(p.key) { return p.key }
        return nil
    }
}

/// Splits a command line into words: whitespace separates words except
/// inside double quotes; the quote characters are dropped
/// (`a="b c"` gives the word `a=b c`).
public func tokenizeKernelCommandLine(_ text: String) -> [String] {
    var words: [String] = []
    var current: [UInt8] = []
    var inWord = false
    var inQuote = false
    for b in text.utf8 {
        if b == UInt8(ascii: "\"") {
            inQuote.toggle()
            inWord = true
            continue
        }
        let space = b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D
        if space && !inQuote {
            if inWord { words.append(String(decoding: current, as: UTF8.self)) }
            current.removeAll()
            inWord = false
        } else {
            current.append(b)
            inWord = true
        }
    }
    if inWord { words.append(String(decoding: current, as: UTF8.self)) }
    return words
}

/// Parses a plain decimal number (digits only, no sign, no spaces) up to
/// `max`, or nil.
public func parseDecimal(_ text: String, max: Int) -> Int? {
    var n = 0
    var any = false
    for b in text.utf8 {
        guard b >= 0x30 && b <= 0x39 else { return nil }
        let d = Int(b - 0x30)
        guard n <= (max - d) / 10 else { return nil }  // n * 10 + d <= max, without overflow
        n = n * 10 + d
        any = true
    }
    return any ? n : nil
}

/// Splits on one ASCII byte, keeping empty fields (`"a::b"` gives a, "", b).
public func splitFields(_ text: String, _ separator: Unicode.Scalar) -> [String] {
    let sep = UInt8(truncatingIfNeeded: separator.value)
    var out: [String] = []
    var current: [UInt8] = []
    for b in text.utf8 {
        if b == sep {
            out.append(String(decoding: current, as: UTF8.self))
            current.removeAll()
        } else {
            current.append(b)
        }
    }
    out.append(String(decoding: current, as: UTF8.self))
    return out
}
