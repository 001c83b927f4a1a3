// Target 1: the client side (the static nbd-client's handshake code in
// NBDWire). The input is what a server sends; negotiate() and listExports()
// must end with a result or a NegotiationError, never trap or loop.
import NBDWire

/// A transport that reads from the fuzz input and discards what is written.
struct FuzzTransport: NBDTransport {
    var cursor: FuzzCursor
    var written = 0

    mutating func read(exactly count: Int, doing: String) throws(NegotiationError) -> [UInt8] {
        guard let bytes = cursor.take(count) else { throw .closed(doing: doing) }
        return bytes
    }

    mutating func write(_ bytes: [UInt8], doing: String) throws(NegotiationError) {
        written += bytes.count
        fuzzCheck(written < 1 << 20, "the client wrote over 1 MiB during a handshake")
    }
}

enum FuzzClient {
    static func run(_ input: [UInt8]) {
        var t = FuzzTransport(cursor: FuzzCursor(input))
        let name = input.count % 3 == 0 ? "" : "root"
        // negotiate() passes NBD_INFO_BLOCK_SIZE values through unchecked
        // (a minimum of 0 is returned as is; DeviceSetup only compares it),
        // so no property is asserted on the result, only that it ends.
        _ = try? negotiate(&t, NegotiationOptions(exportName: name, forceExportName: input.count % 5 == 0))
        var l = FuzzTransport(cursor: FuzzCursor(input))
        _ = try? listExports(&l)
    }
}
