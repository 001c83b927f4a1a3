// A connection's transmission phase, on a few threads that take turns at the
// socket (nbdkit's model, server/connections.c): the thread holding the read
// turn takes a request (and its WRITE payload), passes the turn on, then
// executes the request and sends the reply itself. No request is handed from
// one thread to another, so a request costs no wake-up on its way to the
// backend; while one thread waits in pread(2) or send(2), the next one is
// already reading. Threads are started on demand, when a request is taken and
// nobody is left waiting for the turn, up to `maxThreads`; a thread that has
// waited `idleSeconds` for the turn leaves (the connection's own thread
// stays), so a burst's threads do not outlive it by long, and an idle
// connection keeps one or two. (Leaving sooner, as soon as two others wait,
// cost a third of small-write throughput in thread churn.)
//
// Requests that have already arrived whole behind the first one are taken in
// the same turn, up to `maxBatch`, executed one after the other and answered
// with one send(2): a pipelining client then costs fewer wake-ups and system
// calls on both sides. FLUSH, FUA requests and READs big enough for sendfile
// end a batch, so nothing quick waits behind something slow.
//
// What cannot wait for a device (a WRITE into the page cache, a READ whose
// bytes are cached: Executor.run with mayWait false) runs before the turn is
// passed on, and the thread keeps the turn and reads on: a client whose
// requests all hit the cache is served by one thread with no hand-off at
// all, as a single-threaded server would, and a request that might wait
// (a READ from disk, FLUSH, FUA) is run after the turn went to another
// thread, as nbdkit's are.
import Glibc
import LinuxSys
import NBDWire

final class TransmissionPool: @unchecked Sendable {
    /// Threads per connection at most (nbdkit's default `--threads` is 16).
    static let maxThreads = 16
    /// Seconds a thread waits for the turn before it leaves.
    static let idleSeconds = 2.0
    /// Requests taken in one turn at most.
    static let maxBatch = 16
    /// Memory requests taken but not yet replied to may hold (Job.memory(of:)):
    /// a client that pipelines big READs and never reads the replies stalls
    /// itself, not the server. One request bigger than this still runs, alone.
    static let maxBytes = 128 << 20

    private let reader: RequestReader
    private let admit: (Request) -> Rejection?
    private let execute: (Job, ReplyBuffer, Bool) -> Bool
    private let refuse: (Request, Rejection, ReplyBuffer) -> Void
    private let send: (UnsafeRawBufferPointer) -> Void
    private let log: Logger

    /// Held by the one thread reading the socket. Lock order: turn, then state.
    private let turn = Monitor()
    /// Why the stream ended (under `turn`); nil while it goes on.
    private var ending: String?
    /// Requests read (under `turn`).
    private var requests = 0
    /// When to hold replies back for the next request (under `turn`).
    private var coalescing = ReplyCoalescing()

    /// Guards the counts below; its condition means "a request finished" or
    /// "a thread left".
    private let state = Monitor()
    private var threads = 0
    private var waiting = 0
    private var heldBytes = 0

    /// `admit` is the request gate; `execute(job, out, mayWait)` runs an
    /// admitted job and builds its reply in `out` (Executor.run: with
    /// mayWait false only if it cannot wait for a device, else it returns
    /// false); `refuse` builds a refused request's error reply; `send` sends
    /// what a buffer holds.
    init(reader: RequestReader, log: Logger, admit: @escaping (Request) -> Rejection?,
         refuse: @escaping (Request, Rejection, ReplyBuffer) -> Void,
         execute: @escaping (Job, ReplyBuffer, Bool) -> Bool,
         send: @escaping (UnsafeRawBufferPointer) -> Void) {
        self.reader = reader
        self.log = log
        self.admit = admit
        self.refuse = refuse
        self.execute = execute
        self.send = send
    }

    /// Runs the transmission phase to its end, the calling thread taking part.
    /// Returns when the stream has ended (DISC, end of stream, a bad request)
    /// and every request taken has been replied to: why it ended and how
    /// many requests were read.
    func run() -> (ending: String, requests: Int) {
        state.locked { threads += 1 }
        member(stays: true)
        state.locked {
            threads -= 1
            state.broadcast()
            while threads > 0 { state.wait() }
        }
        reader.finish()
        return turn.locked { (ending ?? "", requests) }
    }

    /// Threads alive now (tests).
    var liveThreads: Int { state.locked { threads } }

    /// The reply coalescing's state (tests).
    var coalescingNow: ReplyCoalescing { turn.locked { coalescing } }

    private enum Step {
        case job(Job)
        case refused(Request, Rejection)
    }

    /// One thread's life: take the turn, take a batch, pass the turn on,
    /// execute and reply; until the stream ends.
    /// `stays`: the thread that called run(), which never leaves early.
    private func member(stays: Bool) {
        let out = ReplyBuffer()
        var batch: [Step] = []
        batch.reserveCapacity(Self.maxBatch)
        while true {
            state.locked { waiting += 1 }
            // With the turn: take batches and run them while nothing has to
            // wait; stop at the first step that might, or at the end.
            var next = 0
            let took: Void? = turn.locked(within: Self.idleSeconds) {
                state.locked { waiting -= 1 }
                var held: Int64 = 0
                while true {
                    takeBatch(into: &batch)
                    while next < batch.count && runWithoutWaiting(batch[next], out) { next += 1 }
                    if batch.isEmpty || next < batch.count { return }
                    if waitForMore(batch.count, heldSince: &held) { continue }
                    coalescing.sent(count: batch.count)
                    finish(&batch, out)
                    next = 0
                    held = 0
                }
            }
            if took == nil {
                state.locked { waiting -= 1 }
                if stays { continue }
                return
            }
            if batch.isEmpty { return }
            // The turn is passed on; the rest of the batch may wait.
            // (Its size is no verdict on the coalescing: it ended early.)
            growIfNobodyWaits()
            for step in batch[next...] {
                switch step {
                case .refused(let request, let rejection): refuse(request, rejection, out)
                case .job(let job): _ = execute(job, out, true)
                }
            }
            finish(&batch, out)
        }
    }

    /// Runs `step` if it cannot wait for a device; false when it might.
    private func runWithoutWaiting(_ step: Step, _ out: ReplyBuffer) -> Bool {
        switch step {
        case .refused(let request, let rejection):
            refuse(request, rejection, out)
            return true
        case .job(let job):
            return execute(job, out, false)
        }
    }

    /// Sends the replies of a batch that has run, and gives its memory back.
    private func finish(_ batch: inout [Step], _ out: ReplyBuffer) {
        var held = 0
        for case .job(let job) in batch { held += Job.memory(of: job.request) }
        batch.removeAll(keepingCapacity: true)
        if out.count > 0 { send(out.bytes) }
        out.reset()
        state.locked {
            heldBytes -= held
            state.broadcast()
        }
    }

    /// With the turn held: the next request, and those received whole
    /// behind it that may join its batch; a batch that already holds
    /// requests takes only those. Adds nothing when the stream has ended.
    private func takeBatch(into batch: inout [Step]) {
        if !batch.isEmpty && !mayTakeMore(batch.count) { return }
        while let step = take() {
            batch.append(step)
            if !mayTakeMore(batch.count) { return }
        }
    }

    /// Whether a batch of `count` may take the next request now: it is
    /// received whole (no waiting) and quick (mayJoinBatch).
    private func mayTakeMore(_ count: Int) -> Bool {
        guard count < Self.maxBatch, let next = reader.peekReceived() else { return false }
        return Self.mayJoinBatch(next)
    }

    /// With the turn held and a batch of `count` replies built: waits a
    /// moment for the next request, if the coalescing policy says the client
    /// is sending without waiting for these replies. True when one came.
    private func waitForMore(_ count: Int, heldSince held: inout Int64) -> Bool {
        guard ending == nil, count < Self.maxBatch, coalescing.shouldWait(count: count) else { return false }
        if held == 0 {
            held = monotonicNanos()
        } else if monotonicNanos() - held > ReplyCoalescing.batchBudget {
            return false
        }
        switch reader.awaitRequest(within: coalescing.waitNanos) {
        case .arrived(let nanos):
            coalescing.arrived(after: nanos)
            // One that cannot join (FLUSH, FUA, a big READ or WRITE) ends the batch.
            return mayTakeMore(count)
        case .timedOut:
            coalescing.timedOut(count: count)
            return false
        case .unavailable:
            return false
        }
    }

    /// Quick requests only: not FLUSH, not FUA, not a READ big enough to go
    /// out with sendfile (which sends on its own).
    static func mayJoinBatch(_ r: Request) -> Bool {
        r.command != .flush && !r.flags.contains(.fua) && !(r.command == .read && r.length >= Executor.sendfileMinimum)
    }

    /// The next request off the socket, with the turn held; nil when the
    /// stream has ended. A WRITE's payload is read here too (a refused one
    /// is read and dropped, or the stream would lose its framing).
    private func take() -> Step? {
        if ending != nil { return nil }
        let request: Request
        switch reader.next() {
        case .end(let why):
            ending = why
            return nil
        case .request(let r):
            request = r
        }
        requests += 1
        if request.command == .disc {
            ending = "DISC"
            return nil
        }
        let rejection = admit(request)
        if let rejection {
            if request.command == .write && !reader.skip(UInt64(request.length)) {
                ending = "client closed the connection inside a WRITE payload"
                return nil
            }
            return .refused(request, rejection)
        }
        reserve(Job.memory(of: request))
        var payload: [UInt8] = []
        if request.command == .write {
            switch reader.payload(Int(request.length)) {
            case .success(let data):
                payload = data
            case .failure(let failure):
                state.locked {
                    heldBytes -= Job.memory(of: request)
                    state.broadcast()
                }
                ending = failure.text
                return nil
            }
        }
        return .job(Job(request: request, payload: payload))
    }

    /// Waits until `bytes` more fit in the budget (or nothing else is held).
    private func reserve(_ bytes: Int) {
        state.locked {
            while heldBytes > 0 && heldBytes + bytes > Self.maxBytes { state.wait() }
            heldBytes += bytes
        }
    }

    /// Starts one more thread when no thread waits for the turn, so the next
    /// request is read while this one executes.
    private func growIfNobodyWaits() {
        let grow: Bool = state.locked {
            guard waiting == 0 && threads < Self.maxThreads else { return false }
            threads += 1
            return true
        }
        guard grow else { return }
        do {
            try startThread("transmission") { [self] in
                member(stays: false)
                state.locked {
                    threads -= 1
                    state.broadcast()
                }
            }
        } catch {
            state.locked { threads -= 1 }
            log("cannot start another thread for this connection (\(error.description)); carrying on with fewer")
        }
    }
}
