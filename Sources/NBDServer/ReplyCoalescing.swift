// When a connection holds a batch's replies back for a moment, so that the
// next requests join the batch and all go out in one send(2): adaptive reply
// coalescing, as a NIC moderates its interrupts. Pure policy, no I/O:
// TransmissionPool asks it and RequestReader does the waiting.
//
// Why: a client that pipelines (fio, qemu, the kernel's nbd driver under
// load) sends a request each time it takes a reply. Answered one by one,
// every reply is a segment of its own that the client's CPU receives,
// acknowledges and polls for; held back until a few more requests have come,
// the replies cost the client one segment and one wake-up between them, and
// the client, which is what bounds a fast server, completes more requests
// per second. Holding is right only while the client keeps sending without
// waiting for the held replies: a client with one request in flight (a
// station booting) sends nothing until it has its reply, so there a wait
// is pure latency. The policy therefore learns from every wait:
//
//  - `target` is how many replies a batch gathers. It starts at 1 (nothing
//    held) and doubles each time a batch reaches it, up to `ceiling`.
//  - A wait that times out means the client had nothing more to send: the
//    ceiling drops to half of what the batch had gathered, so the batch
//    size settles well below the client's queue depth. The ceiling creeps
//    back up by one after `raiseAfter` batches that reached their target.
//  - At target 1 the policy probes: it waits once, after 1, 2, 4 … up to
//    `maxProbeGap` batches; a probe that times out doubles the gap, one
//    that brings a request starts the doubling. A client with one request
//    in flight pays one short wait in `maxProbeGap` requests.
//  - A wait lasts three times the smoothed time requests took to arrive in
//    the waits that worked, between `minWait` and `maxWait`; a batch holds
//    its replies no longer than `batchBudget` in all.
struct ReplyCoalescing {
    /// Most replies one batch gathers (TransmissionPool.maxBatch).
    static let maxTarget = 16
    /// Bounds of one wait, in nanoseconds.
    static let minWait: Int64 = 4_000
    static let maxWait: Int64 = 50_000
    /// Longest a batch holds its first reply back, in nanoseconds.
    static let batchBudget: Int64 = 150_000
    /// Most batches between two probes while nothing is held.
    static let maxProbeGap = 256
    /// Batches that reach their target before the ceiling rises by one.
    static let raiseAfter = 32

    /// Replies a batch gathers before it goes out; 1 holds nothing.
    private(set) var target = 1
    /// The highest target allowed now.
    private(set) var ceiling = maxTarget
    /// Smoothed nanoseconds the next request took to arrive in a wait.
    private(set) var gap: Int64 = 10_000
    /// Batches that reached their target at the ceiling since it last moved.
    private var reached = 0
    /// At target 1: batches between probes, and until the next one.
    private(set) var probeGap = 1
    private var untilProbe = 1
    /// The current wait is a probe (target 2 on trial).
    private var probing = false
    /// This batch's wait timed out: its send is not a success.
    private var timedOutThisBatch = false
    /// Waits so far, and how many of them timed out (tests, logs).
    private(set) var waits = 0
    private(set) var timeouts = 0

    init() {}

    /// How long one wait may last, in nanoseconds.
    var waitNanos: Int64 { min(max(3 * gap, Self.minWait), Self.maxWait) }

    /// A batch of `count` replies has been built and no further request has
    /// been received whole: wait for one?
    mutating func shouldWait(count: Int) -> Bool {
        if timedOutThisBatch { return false }
        if count < target { return true }
        guard target == 1 && count == 1 else { return false }
        untilProbe -= 1
        if untilProbe > 0 { return false }
        probing = true
        target = 2
        return true
    }

    /// The wait ended with a request, after `nanos`.
    mutating func arrived(after nanos: Int64) {
        waits += 1
        gap = (gap * 7 + max(nanos, 0)) / 8
        if probing {
            probing = false
            probeGap = 1
            untilProbe = 1
            ceiling = max(ceiling, 2)
        }
    }

    /// The wait for the request after `count` gathered ones timed out.
    mutating func timedOut(count: Int) {
        waits += 1
        timeouts += 1
        timedOutThisBatch = true
        if probing {
            probing = false
            target = 1
            probeGap = min(probeGap * 2, Self.maxProbeGap)
            untilProbe = probeGap
            return
        }
        ceiling = max(1, count / 2)
        target = ceiling
        reached = 0
        if target == 1 { untilProbe = probeGap }
    }

    /// A batch of `count` replies goes out.
    mutating func sent(count: Int) {
        if timedOutThisBatch {
            timedOutThisBatch = false
            return
        }
        guard count >= target && target > 1 else { return }
        if target < ceiling {
            target = min(target * 2, ceiling)
            return
        }
        reached += 1
        if reached >= Self.raiseAfter && ceiling < Self.maxTarget {
            ceiling += 1
            target = ceiling
            reached = 0
        }
    }
}
