// Replies leave a connection's socket whole: one send lock, so the chunks of
// one reply never interleave with another's (spec "Ordering of messages and
// writes" lets the replies themselves go out in any order).
import Glibc
import LinuxSys
import NBDWire

/// Serialises replies on one socket: one send lock, send(2) with MSG_NOSIGNAL.
/// After the first failure (peer gone) it shuts the socket down, so the
/// reader's read(2) returns and the connection winds down.
final class ReplySender: @unchecked Sendable {
    let fd: Int32
    private let monitor = Monitor()
    private var failed = false

    init(fd: Int32) {
        self.fd = fd
    }

    /// Sends `bytes` whole; false once the connection is broken.
    @discardableResult
    func send(_ bytes: UnsafeRawBufferPointer) -> Bool {
        monitor.locked {
            if failed { return false }
            if sendAll(bytes, flags: Int32(MSG_NOSIGNAL)) { return true }
            failed = true
            shutdown(fd, Int32(SHUT_RDWR))
            return false
        }
    }

    /// send(2) until `bytes` are all out; false on a failure (errno tells).
    /// Call with the monitor held.
    private func sendAll(_ bytes: UnsafeRawBufferPointer, flags: Int32) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = Glibc.send(fd, bytes.baseAddress! + done, bytes.count - done, flags)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            done += n
        }
        return true
    }

    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { send($0) } }

    /// Sends `header`, then `length` bytes of `file` from `offset` with
    /// sendfile(2): the data goes from the page cache to the socket without
    /// a copy through this process. The header is already out when the file
    /// fails, so the stream cannot be repaired: the error is returned and
    /// the connection is shut down, as for a dead peer.
    func send(_ header: [UInt8], file: Int32, offset: UInt64, length: Int) -> SysError? {
        monitor.locked {
            if failed { return SysError("send", Errno(EPIPE)) }
            let sentHeader = header.withUnsafeBytes { sendAll($0, flags: Int32(MSG_NOSIGNAL | MSG_MORE)) }
            var problem: SysError? = sentHeader ? nil : SysError("send", Errno.current)
            var position = off_t(offset)
            var left = length
            while problem == nil && left > 0 {
                let n = sendfile(fd, file, &position, left)
                if n < 0 && errno == EINTR { continue }
                if n < 0 { problem = SysError("sendfile", Errno.current) }
                // End of file inside the export: the file shrank under us.
                else if n == 0 { problem = SysError("sendfile", Errno(EIO), "file shorter than the export size") }
                else { left -= n }
            }
            if problem != nil {
                failed = true
                shutdown(fd, Int32(SHUT_RDWR))
            }
            return problem
        }
    }
}
