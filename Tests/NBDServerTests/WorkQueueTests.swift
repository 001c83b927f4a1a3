// The per-connection memory budget: queued and running jobs may hold at most
// WorkQueue.maxBytes, counting WRITE payloads and READ reply buffers alike,
// so a client pipelining big READs without reading the replies is stalled.
import Glibc
import NBDWire
import XCTest

@testable import NBDServer

final class WorkQueueTests: XCTestCase {
    final class Counter: @unchecked Sendable {
        let monitor = Monitor()
        var submitted = 0
        var released = false
        var executed = 0
    }

    func testReadRepliesCountAgainstTheMemoryBudget() throws {
        let c = Counter()
        let queue = WorkQueue(log: .silent) { _ in
            c.monitor.locked {
                while !c.released { c.monitor.wait() }
                c.executed += 1
            }
        }
        let big = UInt32(64 << 20)
        XCTAssertEqual(Job(request: Request(command: .read, cookie: 1, offset: 0, length: big), payload: []).memory, Int(big))
        XCTAssertEqual(Job(request: Request(command: .write, cookie: 1, offset: 0, length: 3), payload: [1, 2, 3]).memory, 3)
        let done = DispatchSemaphoreBox()
        try startThread("reader") {
            for i in 0..<4 {
                queue.submit(Job(request: Request(command: .read, cookie: UInt64(i), offset: 0, length: big), payload: []))
                c.monitor.locked { c.submitted += 1 }
            }
            done.signal()
        }
        usleep(300_000)
        XCTAssertEqual(c.monitor.locked { c.submitted }, WorkQueue.maxBytes / Int(big),
                       "READs holding \(WorkQueue.maxBytes) bytes must stall the reader")
        c.monitor.locked {
            c.released = true
            c.monitor.broadcast()
        }
        XCTAssertTrue(done.wait(seconds: 5))
        queue.drainAndStop()
        XCTAssertEqual(c.monitor.locked { c.executed }, 4)
    }
}
