// The few threading primitives the server needs, over POSIX threads
// (pthread_mutex_t, pthread_cond_t, pthread_create). No Swift concurrency
// runtime: every connection has a reader thread and a handful of workers,
// and they block in read(2)/pread(2)/send(2) like nbd-server's do.
import Glibc
import LinuxSys

/// A mutex with a condition variable attached (pthread_mutex_t + pthread_cond_t).
/// Heap-allocated so their addresses never move, as POSIX requires.
final class Monitor: @unchecked Sendable {
    fileprivate let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        cond.deallocate()
    }

    /// Runs `body` with the mutex held.
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Runs `body` with the mutex held if it can be had within `seconds`
    /// (pthread_mutex_timedlock on CLOCK_REALTIME); nil when time ran out.
    func locked<T>(within seconds: Double, _ body: () throws -> T) rethrows -> T? {
        var deadline = Monitor.deadline(seconds)
        guard pthread_mutex_timedlock(mutex, &deadline) == 0 else { return nil }
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// CLOCK_REALTIME now + `seconds`, as the timed pthread calls take it.
    private static func deadline(_ seconds: Double) -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let whole = Int(seconds)
        var deadline = timespec(tv_sec: now.tv_sec + whole,
                                tv_nsec: now.tv_nsec + Int((seconds - Double(whole)) * 1e9))
        if deadline.tv_nsec >= 1_000_000_000 {
            deadline.tv_sec += 1
            deadline.tv_nsec -= 1_000_000_000
        }
        return deadline
    }

    /// pthread_cond_wait: call only inside `locked`.
    func wait() { pthread_cond_wait(cond, mutex) }

    /// pthread_cond_timedwait on CLOCK_REALTIME for at most `seconds`; call only
    /// inside `locked`. Returns false on timeout.
    @discardableResult
    func wait(seconds: Double) -> Bool {
        var deadline = Monitor.deadline(seconds)
        return pthread_cond_timedwait(cond, mutex, &deadline) != ETIMEDOUT
    }

    /// Wakes every waiter (pthread_cond_broadcast); call inside `locked`.
    func broadcast() { pthread_cond_broadcast(cond) }
}

/// A further condition variable on a Monitor's mutex, for code where waking
/// everyone would be wasteful (one worker per queued job: pthread_cond_signal).
final class Condition: @unchecked Sendable {
    private let cond: UnsafeMutablePointer<pthread_cond_t>

    init() {
        cond = .allocate(capacity: 1)
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        cond.deallocate()
    }

    /// pthread_cond_wait on `monitor`'s mutex: call only inside `monitor.locked`.
    func wait(_ monitor: Monitor) { pthread_cond_wait(cond, monitor.mutex) }

    /// Wakes one waiter (pthread_cond_signal).
    func signal() { pthread_cond_signal(cond) }

    /// Wakes every waiter (pthread_cond_broadcast).
    func broadcast() { pthread_cond_broadcast(cond) }
}

private final class ThreadBody {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// Starts a detached POSIX thread (pthread_create + pthread_detach) running
/// `body`. Throws when the system refuses a thread (EAGAIN: too many).
func startThread(_ what: String, _ body: @escaping @Sendable () -> Void) throws(SysError) {
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var tid = pthread_t()
    let rc = pthread_create(&tid, nil, { arg in
        let body = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
        body.run()
        return nil
    }, box)
    if rc != 0 {
        Unmanaged<ThreadBody>.fromOpaque(box).release()
        throw SysError("pthread_create", Errno(rc), what)
    }
    pthread_detach(tid)
}
