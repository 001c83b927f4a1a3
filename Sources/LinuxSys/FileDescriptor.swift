// An owned file descriptor and the whole-buffer read/write loops around it.
#if canImport(CShims)
import CShims
#endif

/// A file descriptor. Not closed implicitly: call `close()`.
public struct FileDescriptor: Equatable, Sendable {
    public let rawValue: Int32
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// open(2); `mode` is used when `flags` contains O_CREAT.
    public static func open(_ path: String, _ flags: Int32, mode: Int32 = 0o644) throws(SysError) -> FileDescriptor {
        let fd = try sysCall("open", path) { shim_open(path, flags | O_CLOEXEC, mode) }
        return FileDescriptor(fd)
    }

    public func close() { _ = CShims_close(rawValue) }

    /// read(2) once; 0 means end of file.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SysError) -> Int {
        try sysCallSize("read") { Int(CShims_read(rawValue, buffer.baseAddress, buffer.count)) }
    }

    /// Reads exactly `count` bytes; returns nil when the peer closed first.
    public func read(exactly count: Int) throws(SysError) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { buf in
                CShims_read(rawValue, buf.baseAddress! + done, count - done)
            }
            if n < 0 {
                let e = Errno.current
                if e == .interrupted { continue }
                throw SysError("read", e)
            }
            if n == 0 { return nil }
            done += n
        }
        return out
    }

    /// Writes every byte, looping over short writes. Sockets get MSG_NOSIGNAL
    /// through `send` so a dead peer gives EPIPE, not SIGPIPE.
    public func writeAll(_ bytes: [UInt8]) throws(SysError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { buf in
                CShims_write(rawValue, buf.baseAddress! + done, buf.count - done)
            }
            if n < 0 {
                let e = Errno.current
                if e == .interrupted { continue }
                throw SysError("write", e)
            }
            done += n
        }
    }

    /// Writes every byte with send(2) and MSG_NOSIGNAL.
    public func sendAll(_ bytes: [UInt8]) throws(SysError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { buf in
                send(rawValue, buf.baseAddress! + done, buf.count - done, shim_MSG_NOSIGNAL)
            }
            if n < 0 {
                let e = Errno.current
                if e == .interrupted { continue }
                throw SysError("send", e)
            }
            done += n
        }
    }
}

extension FileDescriptor {
    /// pread(2) at `offset` until `buffer` is full or the file ends, retrying
    /// EINTR and short reads. Returns how many bytes were read: fewer than
    /// `buffer.count` only at the end of the file. `subject` (a path) goes
    /// into the error.
    public func readFully(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, subject: String = "") throws(SysError) -> Int {
        var done = 0
        while done < buffer.count {
            let n = CShims_pread(rawValue, buffer.baseAddress! + done, buffer.count - done, Int64(offset) + Int64(done))
            if n < 0 {
                let e = Errno.current
                if e == .interrupted { continue }
                throw SysError("pread", e, subject)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// pwrite(2) of every byte of `bytes` at `offset`, retrying EINTR and
    /// short writes.
    public func writeFully(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, subject: String = "") throws(SysError) {
        var done = 0
        while done < bytes.count {
            let n = CShims_pwrite(rawValue, bytes.baseAddress! + done, bytes.count - done, Int64(offset) + Int64(done))
            if n < 0 {
                let e = Errno.current
                if e == .interrupted { continue }
                throw SysError("pwrite", e, subject)
            }
            done += n
        }
    }
}

// read/write/close are also names of Swift methods above; these aliases keep
// the C calls unambiguous.
@inline(__always) func CShims_read(_ fd: Int32, _ p: UnsafeMutableRawPointer?, _ n: Int) -> Int { read(fd, p, n) }
@inline(__always) func CShims_write(_ fd: Int32, _ p: UnsafeRawPointer?, _ n: Int) -> Int { write(fd, p, n) }
@inline(__always) func CShims_pread(_ fd: Int32, _ p: UnsafeMutableRawPointer?, _ n: Int, _ o: Int64) -> Int { pread(fd, p, n, off_t(o)) }
@inline(__always) func CShims_pwrite(_ fd: Int32, _ p: UnsafeRawPointer?, _ n: Int, _ o: Int64) -> Int { pwrite(fd, p, n, off_t(o)) }
@inline(__always) func CShims_close(_ fd: Int32) -> Int32 { close(fd) }
