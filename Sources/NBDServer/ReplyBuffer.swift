// Where one thread builds replies before they leave in one send(2): READ data
// is pread(2) straight into it behind its header, and the replies of a batch
// of requests (TransmissionPool) go out together. Kept from request to
// request, so building a reply allocates nothing; memory beyond `kept` is
// given back after each send, so a big READ does not stay resident in every
// thread of every connection (READs of a plain file that big go out with
// sendfile anyway).
final class ReplyBuffer {
    /// Capacity kept between sends.
    static let kept = 64 << 10

    private var base: UnsafeMutableRawPointer?
    private var capacity = 0
    /// Bytes built so far.
    private(set) var count = 0

    init() {}

    deinit { base?.deallocate() }

    /// The bytes built so far.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Room for `n` more bytes, right after the ones built; `commit` says how
    /// many of them became part of the reply.
    func reserve(_ n: Int) -> UnsafeMutableRawPointer {
        if count + n > capacity {
            let grown = max(count + n, min(capacity * 2, count + n + Self.kept), 4096)
            let fresh = UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: 16)
            if let base {
                fresh.copyMemory(from: base, byteCount: count)
                base.deallocate()
            }
            base = fresh
            capacity = grown
        }
        return base! + count
    }

    func commit(_ n: Int) { count += n }

    /// Forgets the bytes after the first `n` (a reply that failed half-built).
    func truncate(to n: Int) { count = min(count, n) }

    func append(_ bytes: [UInt8]) {
        if bytes.isEmpty { return }
        bytes.withUnsafeBytes { raw in
            reserve(raw.count).copyMemory(from: raw.baseAddress!, byteCount: raw.count)
        }
        count += bytes.count
    }

    /// Empties the buffer after a send, giving back memory beyond `kept`.
    func reset() {
        count = 0
        if capacity > Self.kept {
            base?.deallocate()
            base = nil
            capacity = 0
        }
    }
}
