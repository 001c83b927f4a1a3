// One line per event on stderr, in one write(2) so lines from different
// threads never interleave:
//   nbdboot serve: listening on 127.0.0.1:10809
//   nbdboot serve: conn 3 from 127.0.0.1:51234
//   nbdboot serve: conn 3: export 'root' via GO (8388608 bytes, flags 0x12d)
//   nbdboot serve: conn 3: WRITE offset=0 length=512 flags=0x0: EPERM (WRITE: export 'root' is read-only)
//   nbdboot serve: conn 3: DISC after 120 requests, closed
import Glibc

/// Where log lines go. The server takes one so tests can capture them.
public struct Logger: Sendable {
    public let sink: @Sendable (String) -> Void

    public init(_ sink: @escaping @Sendable (String) -> Void) { self.sink = sink }

    public func callAsFunction(_ line: String) { sink(line) }

    /// `nbdboot serve: LINE` on stderr.
    public static let stderr = Logger { line in
        let text = Array("nbdboot serve: \(line)\n".utf8)
        text.withUnsafeBytes { buf in
            var done = 0
            while done < buf.count {
                let n = Glibc.write(2, buf.baseAddress! + done, buf.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                done += n
            }
        }
    }

    /// Drops every line.
    public static let silent = Logger { _ in }
}
