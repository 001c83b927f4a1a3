// Reply coalescing in the transmission phase, over a socketpair with a
// backend that never waits (a page-cache hit): a client that keeps sending
// without waiting for replies gets them in far fewer sends than requests; a
// client with one request in flight is almost never made to wait.
import Glibc
import NBDWire
import XCTest

@testable import NBDServer

final class TransmissionCoalescingTests: XCTestCase {
    final class Sends: @unchecked Sendable {
        let monitor = Monitor()
        var sizes: [Int] = []
        var count: Int { monitor.locked { sizes.count } }
    }

    /// A pool over a socketpair whose requests all run without waiting and
    /// add one byte each to the reply; every send is recorded.
    private func startPool(_ sends: Sends) throws -> (client: Int32, pool: TransmissionPool, done: DispatchSemaphoreBox) {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        let pool = TransmissionPool(reader: RequestReader(fd: fds[0]), log: .silent, admit: { _ in nil },
                                    refuse: { _, _, _ in },
                                    execute: { _, out, _ in
                                        out.append([1])
                                        return true
                                    },
                                    send: { bytes in sends.monitor.locked { sends.sizes.append(bytes.count) } })
        let done = DispatchSemaphoreBox()
        let serverEnd = fds[0]
        try startThread("pool") {
            _ = pool.run()
            close(serverEnd)
            done.signal()
        }
        let clientEnd = fds[1]
        addTeardownBlock { close(clientEnd) }
        return (clientEnd, pool, done)
    }

    private func send(_ fd: Int32, _ request: Request) {
        let bytes = request.encode()
        XCTAssertEqual(bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }, bytes.count)
    }

    func testAPipeliningClientsRepliesGoOutTogether() throws {
        // 600 READs, one every 10 µs, none waiting for a reply: answered one
        // by one they would take 600 sends.
        let sends = Sends()
        let (client, pool, done) = try startPool(sends)
        let requests = 600
        var due = monotonicNanos()
        for i in 0..<requests {
            while monotonicNanos() < due {}
            send(client, Request(command: .read, cookie: UInt64(i), offset: UInt64(i) * 4096, length: 4096))
            due += 10_000
        }
        send(client, Request(command: .disc, cookie: 9999))
        XCTAssertTrue(done.wait(seconds: 10))
        let sizes = sends.monitor.locked { sends.sizes }
        XCTAssertEqual(sizes.reduce(0, +), requests)
        XCTAssertLessThan(sizes.count, requests / 3, "replies went out in \(sizes.count) sends: \(sizes.prefix(40))")
        XCTAssertGreaterThanOrEqual(sizes.max() ?? 0, 8)
        XCTAssertGreaterThan(pool.coalescingNow.waits, 0)
    }

    func testAClientWithOneRequestInFlightIsAlmostNeverMadeToWait() throws {
        let sends = Sends()
        let (client, pool, done) = try startPool(sends)
        let requests = 300
        for i in 0..<requests {
            send(client, Request(command: .read, cookie: UInt64(i), offset: 0, length: 512))
            var rounds = 0
            while sends.count <= i && rounds < 100_000 {
                usleep(10)
                rounds += 1
            }
        }
        send(client, Request(command: .disc, cookie: 9999))
        XCTAssertTrue(done.wait(seconds: 10))
        XCTAssertEqual(sends.count, requests, "every reply went out before the next request came")
        let policy = pool.coalescingNow
        XCTAssertEqual(policy.target, 1)
        // Probes after 1, 2, 4 … 256 requests: 9 waits, each in vain.
        XCTAssertLessThanOrEqual(policy.waits, 10)
        XCTAssertEqual(policy.waits, policy.timeouts)
    }
}
