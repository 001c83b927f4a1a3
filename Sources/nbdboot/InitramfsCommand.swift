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
                or 0). Modules (profile qemu-virtio: virtio_pci virtio_net nbd ext4 crc32c overlay \
                squashfs loop; generic-nic adds every driver under kernel/drivers/net/ethernet; plus \
                --add-module) are resolved with their dependencies, soft dependencies and aliases from \
                DIR/lib/modules/VER and listed in load order in /etc/nbdboot/modules. The compression \
                is checked against the kernel's CONFIG_RD_* in DIR/boot/config-VER or \
                /boot/config-VER. Settings may come from --config FILE (TOML: kernel_version, \
                module_root, output, compress, profile, modules, files, busybox, microcode, \
                microcode_dir, init, nbd_client); options given here override the file's values, \
                and --add-module/--add-file add to its lists.
                """)

        @Option(help: "Build settings file (TOML subset; see docs/initramfs.md).")
        var config: String?
        @Option(help: "Kernel release, as in lib/modules/VER (e.g. 6.1.0-56-amd64).")
        var kernelVersion: String?
        @Option(help: "Directory holding lib/modules/VER (default /).")
        var moduleRoot: String?
        @Option(help: "Output image file.")
        var output: String?
        @Option(help: "Compression: \(Compression.buildable.map(\.name).joined(separator: ", ")) (default zstd).")
        var compress: String?
        @Option(help: "The kernel's .config (default: DIR/boot/config-VER, then /boot/config-VER).")
        var kernelConfig: String?
        @Option(help: "Static init (default: static/init beside the nbdboot build dir, then /usr/lib/nbdboot/init).")
        var `init`: String?
        @Option(help: "Static nbd-client (default: found like --init).")
        var nbdClient: String?
        @Option(help: "Module set: \(Profile.allCases.map(\.rawValue).joined(separator: ", ")) (default qemu-virtio).")
        var profile: String?
        @Option(name: .customLong("add-module"), help: "Another module (name or alias) to include; repeatable.")
        var addModule: [String] = []
        @Option(name: .customLong("add-file"), help: "SRC:DST copies host file SRC to DST in the image; repeatable.")
        var addFile: [String] = []
        @Flag(name: .customLong("with-busybox"), help: "Add a static busybox as /bin/busybox (the init's rescue shell).")
        var withBusybox = false
        @Flag(name: .customLong("without-busybox"), help: "No busybox, even if the --config file asks for it.")
        var withoutBusybox = false
        @Option(help: "The static busybox for --with-busybox (default \(Build.defaultBusybox); implies --with-busybox).")
        var busybox: String?
        @Flag(inversion: .prefixedNo, help: "Put an uncompressed early archive with CPU microcode first (from --microcode-dir).")
        var microcode: Bool?
        @Option(help: "Microcode source, laid out like /lib/firmware (intel-ucode/, amd-ucode/) (default /lib/firmware; implies --microcode).")
        var microcodeDir: String?

        static let defaultBusybox = "/bin/busybox"

        /// The settings from --config (empty without one).
        func fileSettings() throws -> BuildSettings {
            guard let config else { return BuildSettings() }
            guard let data = FileManager.default.contents(atPath: config),
                  let text = String(data: data, encoding: .utf8) else {
                throw fail("initramfs build: --config \(config): cannot read the file (missing, unreadable or not UTF-8)")
            }
            let base = URL(fileURLWithPath: config).deletingLastPathComponent().path
            do { return try ConfigFile.parse(text, file: config, baseDirectory: base) } catch {
                throw fail("initramfs build: \(error)")
            }
        }

        func run() throws {
            let file = try fileSettings()
            let from = config.map { " (in --config \($0))" } ?? ""
            guard let kernelVersion = kernelVersion ?? file.kernelVersion else {
                throw ValidationError("missing --kernel-version (or kernel_version in the --config file)")
            }
            guard let output = output ?? file.output else {
                throw ValidationError("missing --output (or output in the --config file)")
            }
            let compressName = compress ?? file.compress ?? "zstd"
            guard let compression = Compression(rawValue: compressName), Compression.buildable.contains(compression) else {
                throw ValidationError("compress \(compressName)\(compress == nil ? from : ""): use \(Compression.buildable.map(\.name).joined(separator: ", "))")
            }
            let profileName = profile ?? file.profile ?? Profile.qemuVirtio.rawValue
            guard let profile = Profile(rawValue: profileName) else {
                throw ValidationError("profile \(profileName)\(self.profile == nil ? from : ""): known profiles are \(Profile.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var files: [(source: String, destination: String)] = []
            for spec in file.files + addFile {
                guard let (src, dst) = ConfigFile.splitFileSpec(spec) else {
                    throw ValidationError("--add-file \(spec): expected SRC:DST, e.g. /etc/hosts:/etc/hosts")
                }
                files.append((src, dst))
            }
            if withBusybox && withoutBusybox { throw ValidationError("--with-busybox and --without-busybox contradict each other") }
            var busyboxPath: String? = nil
            if !withoutBusybox {
                if let busybox { busyboxPath = busybox }
                else if withBusybox { busyboxPath = file.busybox.flatMap { $0.isEmpty ? nil : $0 } ?? Build.defaultBusybox }
                else if let b = file.busybox { busyboxPath = b.isEmpty ? Build.defaultBusybox : b }
            }
            var microcodeDirectory: String? = nil
            let wantMicrocode = microcode ?? (microcodeDir != nil ? true : nil) ?? file.microcode ?? (file.microcodeDir != nil)
            if wantMicrocode { microcodeDirectory = microcodeDir ?? file.microcodeDir ?? Microcode.defaultSource }

            let dirs = ImageBuilder.staticDirectories(invokedAs: CommandLine.arguments[0])
            let initPath: String, clientPath: String
            do {
                initPath = try self.`init` ?? file.initPath ?? ImageBuilder.locateStatic("init", option: "--init", in: dirs)
                clientPath = try nbdClient ?? file.nbdClient ?? ImageBuilder.locateStatic("nbd-client", option: "--nbd-client", in: dirs)
            } catch { throw fail("initramfs build: \(error)") }
            var options = BuildOptions(kernelRelease: kernelVersion, initPath: initPath, nbdClientPath: clientPath)
            options.moduleRoot = moduleRoot ?? file.moduleRoot ?? "/"
            options.profile = profile
            options.extraModules = file.modules + addModule
            options.extraFiles = files
            options.compression = compression
            options.busyboxPath = busyboxPath
            options.microcodeDirectory = microcodeDirectory
            options.kernelConfigPath = kernelConfig
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
                    stderr.write(Data("initramfs: no modules.dep in \(options.moduleRoot)/lib/modules/\(kernelVersion); generated one with depmod in a scratch copy\n".utf8))
                }
                if result.kernelConfig == nil {
                    stderr.write(Data("initramfs: warning: no kernel configuration (\(options.moduleRoot)/boot/config-\(kernelVersion) or /boot/config-\(kernelVersion)); cannot check that the kernel unpacks \(compression.name)\n".utf8))
                }
                for w in result.resolution.warnings + result.warnings { stderr.write(Data("initramfs: warning: \(w)\n".utf8)) }
                let builtin = result.resolution.builtin.isEmpty ? "" : ", built in: \(result.resolution.builtin.joined(separator: " "))"
                let early = result.earlySize == 0 ? "" : " after a \(result.earlySize)-byte early microcode archive (\(result.earlyFiles.joined(separator: " ")))"
                print("\(output): \(result.image.count) bytes (\(compression.name); \(result.archiveSize) uncompressed)\(early), "
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
