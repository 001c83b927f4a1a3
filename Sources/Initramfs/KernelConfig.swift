// The kernel's build configuration (`/boot/config-VER`, the `.config` the kernel
// was built from), read to refuse an image the kernel could not unpack: the
// initramfs decompressors are compiled in only when CONFIG_RD_<FORMAT>=y
// (usr/Kconfig), an initramfs at all needs CONFIG_BLK_DEV_INITRD=y, and the early
// microcode archive is read only with CONFIG_MICROCODE_{INTEL,AMD}=y
// (arch/x86/kernel/cpu/microcode/). initramfs-tools (mkinitramfs) and dracut make
// the same check before they compress. Pure parsing; `locate` is the only I/O.
import Foundation

/// Symbol values of a kernel .config: "y", "m", a string or number; unset symbols are absent.
public struct KernelConfig: Sendable {
    /// Where the configuration was read from (for messages).
    public var source: String
    public private(set) var values: [String: String] = [:]

    /// Parses .config text: `CONFIG_X=value` lines; `# CONFIG_X is not set` and other comments
    /// leave X absent. Quotes around string values are removed.
    public init(text: String, source: String) {
        self.source = source
        for raw in text.split(separator: "\n") {
            let line = String(raw).trimmingSpaces()
            guard line.hasPrefix("CONFIG_"), let eq = line.firstIndex(of: "=") else { continue }
            var value = String(line[line.index(after: eq)...])
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            values[String(line[..<eq])] = value
        }
    }

    /// True when `symbol` (with its CONFIG_ prefix) is built in.
    public func isBuiltIn(_ symbol: String) -> Bool { values[symbol] == "y" }

    /// The config file of kernel `release`: `ROOT/boot/config-VER` (the module root, e.g.
    /// an unpacked kernel package), else `/boot/config-VER`; nil when neither exists.
    public static func locate(moduleRoot: String, release: String) -> String? {
        let candidates = [URL(fileURLWithPath: moduleRoot).appendingPathComponent("boot/config-\(release)").path,
                          "/boot/config-\(release)"]
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// Reads `path`.
    public static func load(_ path: String) throws -> KernelConfig {
        do { return KernelConfig(text: try String(contentsOfFile: path, encoding: .utf8), source: path) } catch {
            throw BuildError("cannot read the kernel configuration \(path): \(error.localizedDescription)")
        }
    }

    /// Refuses a compression the kernel cannot unpack (its CONFIG_RD_* is not `y`), and any
    /// image when the kernel has no initramfs support at all.
    public func check(_ compression: Compression) throws(BuildError) {
        if !isBuiltIn("CONFIG_BLK_DEV_INITRD") {
            throw BuildError("the kernel cannot load an initramfs: CONFIG_BLK_DEV_INITRD is not set in \(source)")
        }
        guard let symbol = compression.kernelOption else { return }
        if !isBuiltIn(symbol) {
            let usable = Compression.buildable.filter { c in c.kernelOption.map(isBuiltIn) ?? true }.map(\.name)
            throw BuildError("the kernel cannot unpack a \(compression.name)-compressed initramfs: \(symbol) is "
                + "\(values[symbol].map { "\"\($0)\"" } ?? "not set") in \(source); use --compress "
                + usable.joined(separator: " or "))
        }
    }

    /// Warnings for an early microcode archive the kernel would ignore.
    public func microcodeWarnings() -> [String] {
        if !isBuiltIn("CONFIG_MICROCODE") {
            return ["CONFIG_MICROCODE is not set in \(source): the kernel ignores the early microcode archive"]
        }
        return [("CONFIG_MICROCODE_INTEL", "GenuineIntel"), ("CONFIG_MICROCODE_AMD", "AuthenticAMD")]
            .filter { !isBuiltIn($0.0) }
            .map { "\($0.0) is not set in \(source): \($0.1).bin will be ignored" }
    }
}

extension Compression {
    /// The kernel option that compiles in the decompressor for an initramfs in this format
    /// (usr/Kconfig `RD_*`); nil for an uncompressed archive.
    public var kernelOption: String? {
        switch self {
        case .none: return nil
        case .gzip: return "CONFIG_RD_GZIP"
        case .zstd: return "CONFIG_RD_ZSTD"
        case .xz: return "CONFIG_RD_XZ"
        case .lz4: return "CONFIG_RD_LZ4"
        case .bzip2: return "CONFIG_RD_BZIP2"
        case .lzma: return "CONFIG_RD_LZMA"
        case .lzo: return "CONFIG_RD_LZO"
        }
    }

    /// What `build` can write (every format is readable by `ls`/`extract`).
    public static let buildable: [Compression] = [.zstd, .gzip, .xz, .lz4, .none]
}
