// The transmission phase's incoming byte stream, read through one small
// buffer: a recv(2) takes whatever the client has sent, so a pipelining
// client's next requests (and small WRITE payloads) are parsed from memory
// without further system calls. Big payloads bypass the buffer and go
// straight into their own memory. Only the thread holding the connection's
// read turn (TransmissionPool) touches a reader.
//
// A connection whose client answered quickly last time (a station reading
// one block after another, queue depth 1) polls for its next request for a
// few microseconds before it goes to sleep in recv(2), as the kernel's busy
// polling does for NICs: a sleeping thread costs a wake-up (tens of µs in a
// VM) on every round trip. Only while it is the server's one hot connection,
// and one thread at a time, so many busy connections never burn the CPUs
// their clients need.
import Glibc
import LinuxSys
import NBDWire
import Synchronization

/// The one polling permit of the server (RequestReader's busy polling).
private let pollPermit = Atomic<Bool>(false)
/// Connections whose last request came soon after the server waited for it.
private let hotConnections = Atomic<Int>(0)


final class RequestReader {
    /// Buffer size: 4 pages, enough for a burst of 28-byte requests or a few
    /// 4 KiB WRITEs. Pages it never needs are never touched, so an idle
    /// connection costs little of it.
    static let capacity = 16 << 10
    /// How long a hot connection polls before it sleeps in recv(2).
    static let pollNanos: Int64 = 50_000
    /// A connection is hot when its last request came this soon after the
    /// server started waiting for it.
    static let hotNanos: Int64 = 200_000

    /// What the stream held next.
    enum Next {
        case request(Request)
        /// The stream ended or cannot go on: why, for the connection's last log line.
        case end(String)
    }

    private let fd: Int32
    private let buffer: UnsafeMutableRawBufferPointer
    /// Bytes buffer[start..<end] have been received and not consumed yet.
    private var start = 0
    private var end = 0
    /// The last wait for a request was short (see `hotNanos`); counted in
    /// `hotConnections`.
    private var hot = false {
        didSet {
            if hot != oldValue { hotConnections.add(hot ? 1 : -1, ordering: .relaxed) }
        }
    }

    init(fd: Int32) {
        self.fd = fd
        buffer = .allocate(byteCount: Self.capacity, alignment: 16)
    }

    deinit {
        // Observers do not run in deinit: count this connection out by hand.
        if hot { hotConnections.add(-1, ordering: .relaxed) }
        buffer.deallocate()
    }

    /// The stream is over: this connection no longer counts as hot.
    func finish() { hot = false }

    /// The next request header; its WRITE payload, if any, is still unread.
    func next() -> Next {
        let got: Bool
        do { got = try fill(Request.size) } catch {
            return .end("reading a request: \(error.errno.description)")
        }
        guard got else {
            return .end(end == start ? "client closed the connection without DISC"
                        : "client closed the connection inside a request header (\(end - start) of \(Request.size) bytes)")
        }
        do {
            let request = try Request.decode(UnsafeRawBufferPointer(rebasing: buffer[start..<(start + Request.size)]))
            consume(Request.size)
            return .request(request)
        } catch {
            return .end("\(error.description); closing this connection")
        }
    }

    /// The next request when it has been received whole, with its WRITE
    /// payload, so taking it costs no wait; nil otherwise (and for a bad
    /// header, which `next` then reports). Consumes nothing.
    func peekReceived() -> Request? {
        guard let r = bufferedHeader(), r.command != .write || payloadBuffered(r) else { return nil }
        return r
    }

    /// The next request header when it is buffered whole and decodes.
    private func bufferedHeader() -> Request? {
        guard end - start >= Request.size else { return nil }
        return try? Request.decode(UnsafeRawBufferPointer(rebasing: buffer[start..<(start + Request.size)]))
    }

    /// The buffer holds the whole payload of WRITE `r`, whose header is at its start.
    private func payloadBuffered(_ r: Request) -> Bool {
        UInt64(end - start - Request.size) >= UInt64(r.length)
    }

    /// How a wait for the next request ended (TransmissionPool's reply
    /// coalescing).
    enum Await {
        /// A whole request header is buffered now, after this many nanoseconds.
        case arrived(Int64)
        /// Nothing came in time.
        case timedOut
        /// Not waited: another thread of the server is polling, or the
        /// stream ended or failed (the next `next` reports that).
        case unavailable
    }

    /// Polls (recv with MSG_DONTWAIT) for up to `nanos` until the next
    /// request is buffered whole (with its WRITE payload, when that fits
    /// the buffer), holding the server's one polling permit, so that of all
    /// connections only one spins at a time.
    func awaitRequest(within nanos: Int64) -> Await {
        if headIsWhole() { return .arrived(0) }
        compact()
        switch spin(for: nanos, until: headIsWhole) {
        case .done(let nanos): return .arrived(nanos)
        case .timedOut: return .timedOut
        case .unavailable, .ended: return .unavailable
        }
    }

    /// Reads a WRITE payload of `count` bytes into an array whose memory is
    /// allocated but not touched beforehand (unsafeUninitializedCapacity),
    /// so the pages that become resident are the ones the client really
    /// sent: a client that announces 64 MiB and stalls costs what it sent,
    /// not 64 MiB. The failure text when the peer is gone.
    func payload(_ count: Int) -> Result<[UInt8], PayloadError> {
        var failure: PayloadError?
        let data = [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
            initialized = 0
            do throws(SysError) {
                initialized = try copyOut(into: out.baseAddress!, count)
                if initialized < count {
                    failure = PayloadError("client closed the connection inside a WRITE payload (\(initialized) of \(count) bytes)")
                }
            } catch {
                failure = PayloadError("reading a WRITE payload: \(error.errno.description)")
            }
        }
        if let failure { return .failure(failure) }
        return .success(data)
    }

    /// Reads and drops `count` payload bytes of a refused WRITE; false when
    /// the peer is gone first.
    func skip(_ count: UInt64) -> Bool {
        var left = count
        while left > 0 {
            if start == end {
                do { guard try fill(1) else { return false } } catch { return false }
            }
            let n = Int(min(UInt64(end - start), left))
            consume(n)
            left -= UInt64(n)
        }
        return true
    }

    /// Copies up to `count` bytes into `out`: buffered bytes first; then a
    /// remainder smaller than the buffer through it (one recv may bring the
    /// next requests along), a bigger one straight into `out`. Returns the
    /// bytes copied: fewer than `count` only at end of stream.
    private func copyOut(into out: UnsafeMutableRawPointer, _ count: Int) throws(SysError) -> Int {
        var done = 0
        while done < count {
            let want = count - done
            if start == end && want >= Self.capacity {
                let n = recv(fd, out + done, want, 0)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SysError("recv", Errno.current)
                }
                if n == 0 { return done }
                done += n
                continue
            }
            if start == end {
                guard try fill(1) else { return done }
            }
            let n = min(end - start, want)
            (out + done).copyMemory(from: buffer.baseAddress! + start, byteCount: n)
            consume(n)
            done += n
        }
        return done
    }

    private func consume(_ n: Int) {
        start += n
        if start == end {
            start = 0
            end = 0
        }
    }

    /// The next request is buffered whole: its header, and a WRITE's
    /// payload unless that is too big to ever fit the buffer. A header that
    /// does not decode counts as whole (`next` reports it).
    private func headIsWhole() -> Bool {
        guard end - start >= Request.size else { return false }
        guard let r = bufferedHeader(), r.command == .write else { return true }
        return payloadBuffered(r) || UInt64(r.length) > UInt64(Self.capacity - Request.size)
    }

    /// Moves the unconsumed bytes to the buffer's start, making room behind them.
    private func compact() {
        guard start > 0 else { return }
        (buffer.baseAddress!).copyMemory(from: buffer.baseAddress! + start, byteCount: end - start)
        end -= start
        start = 0
    }

    /// Makes at least `count` (≤ capacity) bytes available, receiving as much
    /// as the buffer holds; false when the stream ends first.
    private func fill(_ count: Int) throws(SysError) -> Bool {
        if end - start >= count { return true }
        compact()
        let waitStart = end == 0 ? monotonicNanos() : 0
        // Busy polling: until the first bytes come, for up to `pollNanos`;
        // when it cannot, the recv below sleeps as usual (and reports errors).
        if end == 0 && hot && hotConnections.load(ordering: .relaxed) == 1,
           case .ended = spin(for: Self.pollNanos, until: { end > 0 }) {
            return false
        }
        while end < count {
            let n = recv(fd, buffer.baseAddress! + end, Self.capacity - end, 0)
            if n < 0 {
                if errno == EINTR { continue }
                throw SysError("recv", Errno.current)
            }
            if n == 0 { return false }
            end += n
        }
        if waitStart != 0 { hot = monotonicNanos() - waitStart < Self.hotNanos }
        return true
    }

    /// How busy polling ended.
    private enum Spin {
        /// `until` held, after this many nanoseconds.
        case done(Int64)
        case timedOut
        /// Another thread of the server holds the polling permit, or recv failed.
        case unavailable
        /// End of stream.
        case ended
    }

    /// Busy polling, holding the server's one polling permit (so that of
    /// all connections only one spins at a time): recv(2) with MSG_DONTWAIT
    /// into the buffer for up to `nanos`, until `until()` holds.
    private func spin(for nanos: Int64, until: () -> Bool) -> Spin {
        guard pollPermit.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return .unavailable }
        defer { pollPermit.store(false, ordering: .releasing) }
        let began = monotonicNanos()
        var now = began
        repeat {
            let n = recv(fd, buffer.baseAddress! + end, Self.capacity - end, Int32(MSG_DONTWAIT))
            now = monotonicNanos()
            if n == 0 { return .ended }
            if n > 0 {
                end += n
                if until() { return .done(now - began) }
            } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                return .unavailable
            }
        } while now - began < nanos
        return .timedOut
    }
}

/// Why a WRITE payload could not be read (the peer went away).
struct PayloadError: Error {
    let text: String
    init(_ text: String) { self.text = text }
}
