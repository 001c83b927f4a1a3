// The reply coalescing policy against simulated clients: one with a single
// request in flight (never worth holding a reply for), one that always has
// more to send (batches grow to the maximum), one with a fixed queue depth
// (batches settle below it, timed-out waits stay rare), and the length of a
// wait following the client's pace.
import XCTest

@testable import NBDServer

final class ReplyCoalescingTests: XCTestCase {
    /// Runs `batches` batches against a client that has `depth` requests in
    /// flight: a batch can gather at most `depth` requests, and a wait for
    /// one more times out. Returns the policy and the batch sizes.
    private func simulate(depth: Int, batches: Int, arrivalNanos: Int64 = 8_000,
                          _ policy: inout ReplyCoalescing) -> [Int] {
        var sizes: [Int] = []
        for _ in 0..<batches {
            var count = 1
            while policy.shouldWait(count: count) {
                if count < depth && count < ReplyCoalescing.maxTarget {
                    policy.arrived(after: arrivalNanos)
                    count += 1
                } else {
                    policy.timedOut(count: count)
                }
            }
            policy.sent(count: count)
            sizes.append(count)
        }
        return sizes
    }

    func testAClientWithOneRequestInFlightIsRarelyMadeToWait() {
        var policy = ReplyCoalescing()
        let sizes = simulate(depth: 1, batches: 2000, &policy)
        XCTAssertEqual(Set(sizes), [1])
        XCTAssertEqual(policy.target, 1)
        XCTAssertEqual(policy.probeGap, ReplyCoalescing.maxProbeGap)
        // Probes after 1, 2, 4 … 256 batches, then one every 256.
        XCTAssertEqual(policy.waits, policy.timeouts)
        XCTAssertLessThanOrEqual(policy.timeouts, 9 + 2000 / ReplyCoalescing.maxProbeGap)
        XCTAssertGreaterThan(policy.timeouts, 0, "the policy must keep probing")
    }

    func testAPipeliningClientGetsFullBatchesQuickly() {
        var policy = ReplyCoalescing()
        let sizes = simulate(depth: 1000, batches: 100, &policy)
        XCTAssertEqual(policy.timeouts, 0)
        XCTAssertEqual(policy.target, ReplyCoalescing.maxTarget)
        // The first batch probes (2), then 4, 8, 16.
        XCTAssertEqual(Array(sizes.prefix(4)), [2, 4, 8, 16])
        XCTAssertEqual(Set(sizes.dropFirst(3)), [ReplyCoalescing.maxTarget])
    }

    func testBatchesSettleBelowTheClientsQueueDepth() {
        for depth in [2, 4, 8, 12] {
            var policy = ReplyCoalescing()
            _ = simulate(depth: depth, batches: 200, &policy)
            let before = policy.timeouts
            let sizes = simulate(depth: depth, batches: 3200, &policy)
            let timeouts = policy.timeouts - before
            // Once settled, a wait times out only when the ceiling creeps up
            // to probe the depth again: about once per raiseAfter batches.
            XCTAssertLessThanOrEqual(timeouts, 3200 / ReplyCoalescing.raiseAfter + 10, "depth \(depth)")
            let mean = Double(sizes.reduce(0, +)) / Double(sizes.count)
            XCTAssertGreaterThanOrEqual(mean, Double(depth) / 2 - 0.5, "depth \(depth): batches of \(mean) on average")
            XCTAssertLessThanOrEqual(sizes.max() ?? 0, depth, "depth \(depth)")
        }
    }

    func testAStallInAPipelineHalvesTheBatchAndItGrowsBack() {
        var policy = ReplyCoalescing()
        _ = simulate(depth: 1000, batches: 10, &policy)
        XCTAssertEqual(policy.target, 16)
        // The client pauses after 10 requests of this batch.
        _ = simulate(depth: 10, batches: 1, &policy)
        XCTAssertEqual(policy.target, 5)
        XCTAssertEqual(policy.ceiling, 5)
        let sizes = simulate(depth: 1000, batches: 11 * ReplyCoalescing.raiseAfter + 1, &policy)
        XCTAssertEqual(policy.target, 16)
        XCTAssertEqual(sizes.first, 5)
    }

    func testAWaitLastsThreeTimesTheClientsPaceWithinBounds() {
        var policy = ReplyCoalescing()
        XCTAssertEqual(policy.waitNanos, 30_000)
        _ = simulate(depth: 1000, batches: 50, arrivalNanos: 5_000, &policy)
        XCTAssertEqual(policy.waitNanos, 15_000, accuracy: 300)
        _ = simulate(depth: 1000, batches: 50, arrivalNanos: 100, &policy)
        XCTAssertEqual(policy.waitNanos, ReplyCoalescing.minWait)
        _ = simulate(depth: 1000, batches: 50, arrivalNanos: 1_000_000, &policy)
        XCTAssertEqual(policy.waitNanos, ReplyCoalescing.maxWait)
    }

    func testNoWaitAfterATimeoutInTheSameBatch() {
        var policy = ReplyCoalescing()
        _ = simulate(depth: 1000, batches: 10, &policy)
        XCTAssertTrue(policy.shouldWait(count: 3))
        policy.timedOut(count: 3)
        XCTAssertFalse(policy.shouldWait(count: 1), "a batch whose wait timed out goes out")
        policy.sent(count: 3)
        XCTAssertEqual(policy.target, 1)
    }
}
