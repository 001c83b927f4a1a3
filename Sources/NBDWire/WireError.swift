/// Why a sequence of bytes is not a valid NBD message. Decoders throw it
/// (typed throws) instead of trapping, whatever the input.
public enum WireError: Error, Equatable {
    /// The buffer ended before the message did.
    case short(needed: Int, available: Int)
    /// A magic number was not the one the protocol requires here.
    case badMagic(field: String, expected: UInt64, found: UInt64)
    /// A length field exceeds what the protocol (or this implementation) allows.
    case tooLong(field: String, length: UInt64, limit: UInt64)
    /// A field holds a value the protocol forbids.
    case invalid(String)

    /// One line for a log or an error message.
    public var description: String {
        switch self {
        case .short(let needed, let available):
            return "message too short: needed \(needed) more bytes, have \(available)"
        case .badMagic(let field, let expected, let found):
            return "bad \(field) magic: expected 0x\(hex(expected)), got 0x\(hex(found))"
        case .tooLong(let field, let length, let limit):
            return "\(field) of \(length) bytes exceeds the limit of \(limit)"
        case .invalid(let why):
            return why
        }
    }
}

/// Lower-case hexadecimal without Foundation.
public func hex(_ v: UInt64) -> String {
    let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
    if v == 0 { return "0" }
    var out: [Character] = []
    var x = v
    while x > 0 {
        out.append(digits[Int(x & 0xf)])
        x >>= 4
    }
    return String(out.reversed())
}
