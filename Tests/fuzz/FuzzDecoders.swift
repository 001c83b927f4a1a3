// Target 3: every NBDWire decoder on one message: each returns a value or
// throws WireError. Where an encoder exists, decode then encode must give
// the bytes back.
import NBDWire

enum FuzzDecoders {
    static func run(_ b: [UInt8]) {
        _ = try? NewstyleGreeting.decode(b)
        _ = try? OldstyleGreeting.decode(b)
        _ = try? ClientFlagsMessage.decode(b, offered: [.fixedNewstyle, .noZeroes])
        _ = try? OptionHeader.decode(b)
        _ = try? OptionReplyHeader.decode(b)
        _ = try? ExportNameReply.decode(b)
        _ = try? InfoRequest.decode(b)
        _ = try? Info.decode(b)
        _ = try? ServerEntry.decode(b)
        _ = try? MetaContextRequest.decode(b)
        _ = try? MetaContextReply.decode(b)
        _ = try? BlockStatusPayload.decode(b)
        _ = try? ChunkHeader.decode(b)
        _ = try? SimpleReply.decode(b)
        for type in [ChunkType.error, .errorOffset, ChunkType(rawValue: 0x8123)] {
            _ = try? ErrorChunk.decode(b, type: type)
        }
        if b.count == Request.size, let r = try? Request.decode(b) {
            fuzzCheck(r.encode() == b, "Request decode/encode is not a round trip")
        }
        if let entry = try? ServerEntry.decode(b) {
            fuzzCheck((try? ServerEntry.decode(entry.encode())) == entry, "ServerEntry does not survive encode/decode")
        }
    }
}
