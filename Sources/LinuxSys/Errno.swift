// Errors from system calls, typed: the call's name, errno, and what it was for.
#if canImport(CShims)
import CShims
#endif

/// An errno value.
public struct Errno: Equatable, Sendable {
    public let rawValue: Int32
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// errno of the calling thread, now.
    public static var current: Errno { Errno(shim_errno()) }

    public static let interrupted = Errno(EINTR)
    public static let again = Errno(EAGAIN)
    public static let noEntry = Errno(ENOENT)
    public static let exists = Errno(EEXIST)
    public static let busy = Errno(EBUSY)
    public static let invalid = Errno(EINVAL)
    public static let noSys = Errno(ENOSYS)
    public static let notSupported = Errno(EOPNOTSUPP)

    /// strerror(3) text, e.g. "Connection refused".
    public var description: String {
        guard let p = strerror(rawValue) else { return "errno \(rawValue)" }
        return String(cString: p)
    }
}

/// A failed system call.
public struct SysError: Error, Equatable {
    /// The C function, e.g. "connect".
    public var call: String
    public var errno: Errno
    /// What it was for, e.g. "10.0.2.2:10809".
    public var subject: String

    public init(_ call: String, _ errno: Errno, _ subject: String = "") {
        self.call = call
        self.errno = errno
        self.subject = subject
    }

    public var description: String {
        subject.isEmpty ? "\(call): \(errno.description)" : "\(call) \(subject): \(errno.description)"
    }
}

/// Runs a call that returns -1 and sets errno on failure, retrying EINTR.
@inline(__always)
public func sysCall(_ call: String, _ subject: String = "", _ body: () -> Int32) throws(SysError) -> Int32 {
    while true {
        let r = body()
        if r >= 0 { return r }
        let e = Errno.current
        if e == .interrupted { continue }
        throw SysError(call, e, subject)
    }
}

/// The same for calls that return ssize_t.
@inline(__always)
public func sysCallSize(_ call: String, _ subject: String = "", _ body: () -> Int) throws(SysError) -> Int {
    while true {
        let r = body()
        if r >= 0 { return r }
        let e = Errno.current
        if e == .interrupted { continue }
        throw SysError(call, e, subject)
    }
}
