// The transmission phase's threads and reader over a socketpair, with the
// executor replaced by a probe: the memory budget (WRITE payloads and READ
// reply buffers alike), requests running side by side, framing kept across
// refused WRITEs and payloads bigger than the read buffer, the ending reasons.
import Glibc
import NBDWire
import XCTest

@testable import NBDServer

final class TransmissionPoolTests: XCTestCase {
    final class Probe: @unchecked Sendable {
        let monitor = Monitor()
        var started = 0
        var executed: [Job] = []
        var refused: [Request] = []
        var released = false
    }

    /// A pool reading one end of a socketpair; `execute` runs in the probe.
    /// Returns the client's end and a function that waits for run()'s result.
    private func startPool(_ probe: Probe, admit: @escaping (Request) -> Rejection? = { _ in nil },
                           execute: @escaping (Job) -> Void) throws -> (Int32, () -> (ending: String, requests: Int)?, TransmissionPool) {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        let serverEnd = fds[0]
        let pool = TransmissionPool(reader: RequestReader(fd: serverEnd), log: .silent, admit: admit,
                                    refuse: { r, _, _ in probe.monitor.locked { probe.refused.append(r) } },
                                    execute: { job, _, mayWait in
                                        // The probe stands for a backend that may wait.
                                        guard mayWait else { return false }
                                        execute(job)
                                        return true
                                    }, send: { _ in })
        final class Result: @unchecked Sendable { var value: (ending: String, requests: Int)? }
        let result = Result()
        let done = DispatchSemaphoreBox()
        try startThread("pool") {
            result.value = pool.run()
            close(serverEnd)
            done.signal()
        }
        addTeardownBlock { close(fds[1]) }
        return (fds[1], { done.wait(seconds: 10) ? result.value : nil }, pool)
    }

    private func send(_ fd: Int32, _ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            XCTAssertGreaterThan(n, 0)
            if n <= 0 { return }
            off += n
        }
    }

    func testReadRepliesCountAgainstTheMemoryBudget() throws {
        let probe = Probe()
        let (client, finish, _) = try startPool(probe) { job in
            probe.monitor.locked {
                probe.started += 1
                probe.monitor.broadcast()
                while !probe.released { probe.monitor.wait() }
                probe.executed.append(job)
            }
        }
        let big = UInt32(64 << 20)
        XCTAssertEqual(Job.memory(of: Request(command: .read, cookie: 1, length: big)), Int(big))
        XCTAssertEqual(Job.memory(of: Request(command: .write, cookie: 1, length: 3)), 3)
        XCTAssertEqual(Job.memory(of: Request(command: .flush, cookie: 1)), 0)
        var stream: [UInt8] = []
        for i in 0..<4 { stream += Request(command: .read, cookie: UInt64(i), offset: 0, length: big).encode() }
        stream += Request(command: .disc, cookie: 9).encode()
        send(client, stream)
        usleep(300_000)
        XCTAssertEqual(probe.monitor.locked { probe.started }, TransmissionPool.maxBytes / Int(big),
                       "READs holding \(TransmissionPool.maxBytes) bytes must stall the reading")
        probe.monitor.locked {
            probe.released = true
            probe.monitor.broadcast()
        }
        let result = finish()
        XCTAssertEqual(result?.ending, "DISC")
        XCTAssertEqual(result?.requests, 5)
        XCTAssertEqual(probe.monitor.locked { probe.executed.map(\.request.cookie).sorted() }, [0, 1, 2, 3])
    }

    func testRequestsRunSideBySide() throws {
        // Each execution waits until all eight have started: only threads
        // taking turns at the socket can get there. The requests are sent
        // one by one, so none joins another's batch.
        let probe = Probe()
        let (client, finish, pool) = try startPool(probe) { job in
            probe.monitor.locked {
                probe.started += 1
                probe.monitor.broadcast()
                var rounds = 0
                while probe.started < 8 && rounds < 50 {
                    probe.monitor.wait(seconds: 0.1)
                    rounds += 1
                }
                probe.executed.append(job)
            }
        }
        for i in 0..<8 {
            send(client, Request(command: .read, cookie: UInt64(i), offset: UInt64(i) * 4096, length: 4096).encode())
            var rounds = 0
            while probe.monitor.locked({ probe.started }) <= i && rounds < 200 {
                usleep(10_000)
                rounds += 1
            }
        }
        // The burst over, its threads leave after idleSeconds: the one
        // waiting in recv and the connection's own thread may stay.
        var rounds = 0
        while (probe.monitor.locked { probe.executed.count } < 8 || pool.liveThreads > 2) && rounds < Int(TransmissionPool.idleSeconds * 100) + 200 {
            usleep(10_000)
            rounds += 1
        }
        XCTAssertLessThanOrEqual(pool.liveThreads, 2, "threads left after the burst")
        send(client, Request(command: .disc, cookie: 99).encode())
        _ = finish()
        XCTAssertEqual(probe.monitor.locked { probe.started }, 8)
        XCTAssertLessThanOrEqual(8, TransmissionPool.maxThreads)
    }

    func testRequestsReceivedTogetherAreAnsweredTogether() throws {
        // Eight READs in one burst are one batch: one send carries the eight
        // replies. A FLUSH does not join a batch (READ 20 goes alone); a READ
        // behind it joins its batch.
        let probe = Probe()
        final class Sends: @unchecked Sendable {
            let monitor = Monitor()
            var sizes: [Int] = []
        }
        let sends = Sends()
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        defer { close(fds[1]) }
        let pool = TransmissionPool(reader: RequestReader(fd: fds[0]), log: .silent, admit: { _ in nil },
                                    refuse: { _, _, _ in },
                                    execute: { job, out, _ in
                                        out.append([UInt8(truncatingIfNeeded: job.request.cookie)])
                                        probe.monitor.locked { probe.executed.append(job) }
                                        return true
                                    },
                                    send: { bytes in sends.monitor.locked { sends.sizes.append(bytes.count) } })
        var stream: [UInt8] = []
        for i in 0..<8 { stream += Request(command: .read, cookie: UInt64(i), offset: UInt64(i) * 4096, length: 4096).encode() }
        send(fds[1], stream)
        let first = DispatchSemaphoreBox()
        try startThread("pool") {
            _ = pool.run()
            first.signal()
        }
        var rounds = 0
        while sends.monitor.locked({ sends.sizes.count }) < 1 && rounds < 500 {
            usleep(10_000)
            rounds += 1
        }
        XCTAssertEqual(sends.monitor.locked { sends.sizes }, [8])
        send(fds[1], Request(command: .read, cookie: 20, length: 512).encode() + Request(command: .flush, cookie: 21).encode()
             + Request(command: .read, cookie: 22, length: 512).encode() + Request(command: .disc, cookie: 23).encode())
        XCTAssertTrue(first.wait(seconds: 10))
        XCTAssertEqual(sends.monitor.locked { sends.sizes.sorted() }, [1, 2, 8])
        XCTAssertEqual(probe.monitor.locked { probe.executed.count }, 11)
        XCTAssertTrue(TransmissionPool.mayJoinBatch(Request(command: .write, cookie: 1, length: 4096)))
        XCTAssertFalse(TransmissionPool.mayJoinBatch(Request(command: .write, flags: .fua, cookie: 1, length: 4096)))
        XCTAssertFalse(TransmissionPool.mayJoinBatch(Request(command: .read, cookie: 1, length: Executor.sendfileMinimum)))
        close(fds[0])
    }

    func testPayloadsKeepTheirFramingAcrossRefusalsAndTheBuffer() throws {
        // A refused WRITE's payload is read and dropped; a payload bigger than
        // the read buffer and a small one sent in the same burst arrive whole.
        let probe = Probe()
        let refuseCookie: UInt64 = 7
        let (client, finish, _) = try startPool(probe, admit: { $0.cookie == refuseCookie ? Rejection(.perm, "test") : nil }) { job in
            probe.monitor.locked { probe.executed.append(job) }
        }
        let large = (0..<(RequestReader.capacity * 3 + 5)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let small: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        let dropped = [UInt8](repeating: 0xee, count: 5000)
        var stream = Request(command: .write, cookie: refuseCookie, length: UInt32(dropped.count)).encode() + dropped
        stream += Request(command: .write, cookie: 1, length: UInt32(large.count)).encode() + large
        stream += Request(command: .write, cookie: 2, offset: 512, length: UInt32(small.count)).encode() + small
        stream += Request(command: .read, cookie: 3, length: 512).encode()
        stream += Request(command: .disc, cookie: 4).encode()
        send(client, stream)
        let result = finish()
        XCTAssertEqual(result?.ending, "DISC")
        XCTAssertEqual(result?.requests, 5)
        let jobs = probe.monitor.locked { probe.executed }.sorted { $0.request.cookie < $1.request.cookie }
        XCTAssertEqual(jobs.map(\.request.cookie), [1, 2, 3])
        XCTAssertEqual(jobs.first?.payload, large)
        XCTAssertEqual(jobs.dropFirst().first?.payload, small)
        XCTAssertEqual(probe.monitor.locked { probe.refused.map(\.cookie) }, [refuseCookie])
    }

    func testEndings() throws {
        let cases: [([UInt8], String)] = [
            ([], "client closed the connection without DISC"),
            (Array(Request(command: .read, cookie: 1, length: 1).encode()[0..<10]), "inside a request header (10 of 28 bytes)"),
            ([0xde, 0xad, 0xbe, 0xef] + [UInt8](repeating: 0, count: 24), "magic"),
            (Request(command: .write, cookie: 1, length: 100).encode() + [1, 2, 3], "inside a WRITE payload (3 of 100 bytes)"),
        ]
        for (stream, expected) in cases {
            let probe = Probe()
            let (client, finish, _) = try startPool(probe) { _ in }
            send(client, stream)
            shutdown(client, Int32(SHUT_WR))
            let ending = finish()?.ending ?? "no result"
            XCTAssertTrue(ending.contains(expected), "\(stream.count) bytes: ending \"\(ending)\", expected \"\(expected)\"")
        }
    }
}
