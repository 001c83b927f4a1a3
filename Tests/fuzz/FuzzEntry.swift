// libFuzzer entry point (compiled with `swiftc -sanitize=fuzzer` by
// scripts/fuzz.sh, together with NBDWire and the pure files of NBDServer;
// libFuzzer supplies main). The first input byte picks the target, the rest
// is its input:
//   0  the server's handshake state machine, then the request gate
//      (FuzzServer.swift): bytes a client would send
//   1  the client's handshake, negotiate() and listExports() (FuzzClient.swift):
//      bytes a server would send
//   2  the config file parser and allow lists (FuzzConfig.swift): text
//   3  every NBDWire decoder (FuzzDecoders.swift): one message
// Each target also checks properties (replies the server sends decode again,
// a request the gate lets through lies inside the export, decode/encode
// round trips) with `fuzzCheck`, which traps so libFuzzer records the input.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let input = Array(bytes.dropFirst())
    // The self-test input (Tests/e2e/test-server-fuzz.sh) shows that a broken
    // property reaches libFuzzer as a crash.
    fuzzCheck(bytes != Array("nbdboot fuzz self-test".utf8), "self-test input")
    switch bytes[0] % 4 {
    case 0: FuzzServer.run(input)
    case 1: FuzzClient.run(input)
    case 2: FuzzConfig.run(input)
    default: FuzzDecoders.run(input)
    }
    return 0
}

/// A broken property: trap with a message (libFuzzer saves the input as a crash).
func fuzzCheck(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("fuzz property violated: \(message())") }
}

/// Hands out the input a piece at a time.
struct FuzzCursor {
    var bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - position }

    /// The next `count` bytes, or nil when the input is shorter (the peer hung up).
    mutating func take(_ count: Int) -> [UInt8]? {
        guard count >= 0, count <= remaining else { return nil }
        defer { position += count }
        return Array(bytes[position..<(position + count)])
    }
}
