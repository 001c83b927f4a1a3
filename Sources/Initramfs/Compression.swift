// Compression of initramfs images: detection by magic bytes (pure), and
// compressing/decompressing by the standard tools (zstd, gzip, xz, lz4, ...),
// which the kernel's own decompressors (lib/decompress_*.c) are compatible with.
import Foundation

/// A compression format the kernel can unpack an initramfs from.
public enum Compression: String, Sendable, CaseIterable {
    case none, gzip, zstd, xz, lz4, bzip2, lzma, lzo

    public var name: String { rawValue }

    /// Magic bytes at the start of a stream, as in the kernel's
    /// lib/decompress.c `compressed_formats` table.
    static let magics: [(Compression, [UInt8])] = [
        (.gzip, [0x1f, 0x8b]),
        (.gzip, [0x1f, 0x9e]),                          // old gzip
        (.zstd, [0x28, 0xb5, 0x2f, 0xfd]),
        (.xz, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
        (.lz4, [0x02, 0x21, 0x4c, 0x18]),               // legacy frame (`lz4 -l`), what the kernel reads
        (.lz4, [0x04, 0x22, 0x4d, 0x18]),               // current frame format
        (.bzip2, [0x42, 0x5a, 0x68]),                   // "BZh"
        (.lzma, [0x5d, 0x00, 0x00]),
        (.lzo, [0x89, 0x4c, 0x5a, 0x4f]),               // lzop
    ]

    /// The compression whose magic `bytes` start with, or nil.
    public static func detect<C: Collection>(_ bytes: C) -> Compression? where C.Element == UInt8 {
        for (c, m) in magics where bytes.starts(with: m) { return c }
        return nil
    }

    /// Command line that compresses stdin to stdout reproducibly (same input, same bytes):
    /// no names or timestamps in headers (`gzip -n`), one fixed level, no threading choice left to the tool.
    var compressCommand: [String]? {
        switch self {
        case .none: return nil
        case .zstd: return ["zstd", "-19", "-T1", "-q", "-c"]
        case .gzip: return ["gzip", "-n", "-9", "-c"]
        case .xz: return ["xz", "--check=crc32", "-9", "-T1", "-q", "-c"]   // the kernel's xz knows only crc32
        case .lz4: return ["lz4", "-l", "-9", "-q", "-c"]
        case .bzip2: return ["bzip2", "-9", "-q", "-c"]
        case .lzma: return ["xz", "--format=lzma", "-9", "-q", "-c"]
        case .lzo: return ["lzop", "-9", "-q", "-c"]
        }
    }

    /// Command line that decompresses stdin to stdout.
    var decompressCommand: [String]? {
        switch self {
        case .none: return nil
        case .zstd: return ["zstd", "-d", "-q", "-c"]
        case .gzip: return ["gzip", "-d", "-q", "-c"]
        case .xz: return ["xz", "-d", "-q", "-c"]
        case .lz4: return ["lz4", "-d", "-q", "-c"]
        case .bzip2: return ["bzip2", "-d", "-q", "-c"]
        case .lzma: return ["xz", "--format=lzma", "-d", "-q", "-c"]
        case .lzo: return ["lzop", "-d", "-q", "-c"]
        }
    }

    /// Compresses `data` with the standard tool (`none` returns it unchanged).
    public func compress(_ data: [UInt8]) throws -> [UInt8] {
        guard let cmd = compressCommand else { return data }
        return try Tool.filter(cmd, input: data[...])
    }

    /// Decompresses a stream that starts at `data`'s first byte. gzip's "trailing garbage
    /// ignored" (exit 2: zero padding after the stream) counts as success.
    public func decompress(_ data: ArraySlice<UInt8>) throws -> [UInt8] {
        guard let cmd = decompressCommand else { return Array(data) }
        return try Tool.filter(cmd, input: data, acceptWarningExit: self == .gzip)
    }
}

/// Failure of an external tool.
public struct ToolError: Error, CustomStringConvertible {
    public var command: [String]
    public var message: String
    public var description: String { "\(command.joined(separator: " ")): \(message)" }
}

/// Runs standard tools as filters through temporary files (no pipe deadlocks, no
/// threads): stdin from a file, stdout and stderr to files.
enum Tool {
    /// Directories searched for tools, in order.
    static let searchPath = ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"]

    /// The absolute path of `name`, from PATH then the standard directories.
    static func find(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for dir in path + searchPath where !dir.isEmpty {
            let candidate = dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `command` with `input` on stdin and returns its stdout.
    static func filter(_ command: [String], input: ArraySlice<UInt8>, acceptWarningExit: Bool = false) throws -> [UInt8] {
        let dir = try TempDir(prefix: "nbdboot-tool")
        defer { dir.remove() }
        let inURL = dir.url.appendingPathComponent("in")
        try Data(input).write(to: inURL)
        let out = try run(command, stdin: inURL, dir: dir, acceptWarningExit: acceptWarningExit)
        return Array(try Data(contentsOf: out))
    }

    /// Runs `command` (argv[0] looked up with `find`), stdin from `stdin`, and returns the file
    /// holding its stdout. Fails with the tool's stderr when it exits non-zero.
    static func run(_ command: [String], stdin: URL?, dir: TempDir, acceptWarningExit: Bool = false) throws -> URL {
        guard let exe = find(command[0]) else {
            throw ToolError(command: command, message: "\(command[0]) not found in PATH; install it (Debian: apt-get install \(command[0]))")
        }
        let outURL = dir.url.appendingPathComponent("out-\(UUID().uuidString)")
        let errURL = dir.url.appendingPathComponent("err-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: outURL)
        let errHandle = try FileHandle(forWritingTo: errURL)
        let inHandle = try stdin.map { try FileHandle(forReadingFrom: $0) } ?? FileHandle.nullDevice
        defer { try? outHandle.close(); try? errHandle.close(); if stdin != nil { try? inHandle.close() } }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        // Compressors only use pipes: start them in / so that a caller whose
        // working directory they may not enter (another user's, 0700) can
        // still run them (Process chdirs into the cwd before exec).
        p.currentDirectoryURL = URL(fileURLWithPath: "/")
        p.arguments = Array(command.dropFirst())
        p.standardInput = inHandle
        p.standardOutput = outHandle
        p.standardError = errHandle
        try p.run()
        p.waitUntilExit()
        let status = p.terminationStatus
        if p.terminationReason != .exit || !(status == 0 || (acceptWarningExit && status == 2)) {
            let err = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
            let why = p.terminationReason == .exit ? "exit status \(status)" : "killed by signal \(status)"
            throw ToolError(command: command, message: "\(why)\(err.isEmpty ? "" : ": " + err.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return outURL
    }
}

/// A private temporary directory, removed by `remove()`.
struct TempDir {
    let url: URL

    init(prefix: String) throws {
        let base = URL(fileURLWithPath: NSTemporaryDirectory())
        url = base.appendingPathComponent("\(prefix)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
    }

    func remove() { try? FileManager.default.removeItem(at: url) }
}
