// Text for messages (log lines, errors), written as an interpolated string
// literal: `fail("the port \"\(text)\" is not a number")`. Each piece is
// appended by a call that is never inlined. With Swift's own String
// interpolation, Embedded Swift expands every message in place, about 1 KB
// of machine code each, which the static init (a few hundred messages)
// cannot afford; this keeps a message at a few calls.

/// A message's text, built from an interpolated string literal.
public struct Message: ExpressibleByStringInterpolation, Sendable {
    public var text: String

    public init(_ text: String) { self.text = text }
    public init(stringLiteral value: String) { text = value }
    public init(stringInterpolation: Pieces) { text = stringInterpolation.text }

    /// The interpolation's pieces, appended out of line.
    public struct Pieces: StringInterpolationProtocol {
        public var text = ""
        public init(literalCapacity: Int, interpolationCount: Int) {}
        @inline(never) public mutating func appendLiteral(_ literal: String) { text.append(literal) }
        @inline(never) public mutating func appendInterpolation(_ s: String) { text.append(s) }
        @inline(never) public mutating func appendInterpolation(_ n: Int) { text.append(String(n)) }
        @inline(never) public mutating func appendInterpolation(_ n: Int64) { text.append(String(n)) }
        @inline(never) public mutating func appendInterpolation(_ n: UInt64) { text.append(String(n)) }
        @inline(never) public mutating func appendInterpolation(_ n: Int32) { text.append(String(n)) }
        @inline(never) public mutating func appendInterpolation(_ n: UInt32) { text.append(String(n)) }
        @inline(never) public mutating func appendInterpolation(_ n: UInt16) { text.append(String(n)) }
        @inline(never) public mutating func appendInterpolation(_ n: UInt8) { text.append(String(n)) }
    }
}

/// The text of an interpolated literal, built by Message's out-of-line
/// pieces rather than Swift's inlined String interpolation:
/// `messageText("/proc/sys/net/ipv6/conf/\(device)/autoconf")`.
public func messageText(_ m: Message) -> String { m.text }
