// `nbdboot initramfs build|ls|extract`: argv -> Initramfs library calls.
import ArgumentParser
import Foundation
import Initramfs

struct InitramfsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "initramfs",
        abstract: "Build and inspect initramfs images.",
        subcommands: [Build.self, List.self, Extract.self])

    struct Build: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build a station initramfs: static init, static nbd-client, kernel modules.",
            discussion: """
                Writes a reproducible newc cpio (entries sorted, uid/gid 0, mtime SOURCE_DATE_EPOCH \
                or 0). Modules (profile qemu-virtio: virtio_pci virtio_net nbd ext4, plus --add-module) \
                are resolved with their dependencies, soft dependencies and aliases from \
                DIR/lib/modules/VER and listed in load order in /etc/nbdboot/modules.
                """)

        @Option(help: "Kernel release, as in lib/modules/VER (e.g. 6.1.0-56-amd64).")
        var kernelVersion: String
        @Option(help: "Directory holding lib/modules/VER.")
        var moduleRoot = "/"
        @Option(help: "Output image file.")
        var output: String
        @Option(help: "Compression: zstd, gzip or none.")
        var compress = "zstd"
        @Option(help: "Static init (default: static/init beside the nbdboot build dir, then /usr/lib/nbdboot/init).")
        var `init`: String?
        @Option(help: "Static nbd-client (default: found like --init).")
        var nbdClient: String?
        @Option(help: "Module set: \(Profile.allCases.map(\.rawValue).joined(separator: ", ")).")
        var profile = Profile.qemuVirtio.rawValue
        @Option(name: .customLong("add-module"), help: "Another module (name or alias) to include; repeatable.")
        var addModule: [String] = []
        @Option(name: .customLong("add-file"), help: "SRC:DST copies host file SRC to DST in the image; repeatable.")
        var addFile: [String] = []

        func run() throws {
            let compression: Compression
            switch compress {
            case "zstd": compression = .zstd
            case "gzip": compression = .gzip
            case "none": compression = .none
            default: throw ValidationError("--compress \(compress): use zstd, gzip or none")
            }
            guard let profile = Profile(rawValue: profile) else {
                throw ValidationError("--profile \(self.profile): known profiles are \(Profile.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var files: [(source: String, destination: String)] = []
            for spec in addFile {
                guard let colon = spec.lastIndex(of: ":"), colon != spec.startIndex,
                      spec.index(after: colon) != spec.endIndex else {
                    throw ValidationError("--add-file \(spec): expected SRC:DST, e.g. /etc/hosts:/etc/hosts")
                }
                files.append((String(spec[..<colon]), String(spec[spec.index(after: colon)...])))
            }
            let dirs = ImageBuilder.staticDirectories(invokedAs: CommandLine.arguments[0])
            let initPath: String, clientPath: String
            do {
                initPath = try self.`init` ?? ImageBuilder.locateStatic("init", option: "--init", in: dirs)
                clientPath = try nbdClient ?? ImageBuilder.locateStatic("nbd-client", option: "--nbd-client", in: dirs)
            } catch { throw fail("initramfs build: \(error)") }
            var options = BuildOptions(kernelRelease: kernelVersion, initPath: initPath, nbdClientPath: clientPath)
            options.moduleRoot = moduleRoot
            options.profile = profile
            options.extraModules = addModule
            options.extraFiles = files
            options.compression = compression
            if let epoch = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"], !epoch.isEmpty {
                guard let v = UInt32(epoch) else {
                    throw ValidationError("SOURCE_DATE_EPOCH=\(epoch): expected seconds since 1970 (a non-negative integer)")
                }
                options.mtime = v
            }
            do {
                let result = try ImageBuilder.build(options)
                try ImageBuilder.write(result.image, to: output)
                let stderr = FileHandle.standardError
                if result.ranDepmod {
                    stderr.write(Data("initramfs: no modules.dep in \(moduleRoot)/lib/modules/\(kernelVersion); generated one with depmod in a scratch copy\n".utf8))
                }
                for w in result.resolution.warnings { stderr.write(Data("initramfs: warning: \(w)\n".utf8)) }
                let builtin = result.resolution.builtin.isEmpty ? "" : ", built in: \(result.resolution.builtin.joined(separator: " "))"
                print("\(output): \(result.image.count) bytes (\(compression.name); \(result.archiveSize) uncompressed), "
                    + "\(result.entries.count) entries, \(result.fileCount) files, \(result.resolution.modules.count) modules: "
                    + result.resolution.modules.map(\.name).joined(separator: " ") + builtin)
            } catch {
                throw fail("initramfs build: \(error)")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls",
            abstract: "List an initramfs image (like lsinitramfs -l).",
            discussion: "Reads uncompressed, gzip, zstd, xz, lz4, bzip2 and lzma archives, and concatenations of them.")
        @Argument(help: "Image file.") var file: String

        func run() throws {
            let members: [ImageMember]
            do { members = try Inspect.read(file) } catch { throw fail("initramfs ls: \(file): \(error)") }
            for m in members {
                for e in m.entries { print(Inspect.line(e)) }
            }
        }
    }

    struct Extract: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Extract an initramfs image into a directory.",
            discussion: "Device nodes are created only when running as root. Paths with \"..\" are refused.")
        @Argument(help: "Image file.") var file: String
        @Argument(help: "Directory to extract into (created if missing).") var dir: String

        func run() throws {
            do {
                let report = try Inspect.extract(try Inspect.read(file), to: dir)
                for n in report.notes { FileHandle.standardError.write(Data("initramfs extract: \(n)\n".utf8)) }
                print("\(dir): extracted \(report.extracted) entries from \(file)")
            } catch {
                throw fail("initramfs extract: \(file): \(error)")
            }
        }
    }
}

/// Prints `message` to stderr and returns the failure exit code to throw (no usage text:
/// the arguments were fine, the inputs were not).
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("nbdboot: \(message)\n".utf8))
    return ExitCode.failure
}
