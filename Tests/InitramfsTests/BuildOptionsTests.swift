import Foundation
import XCTest
@testable import Initramfs

/// Compressions against the kernel's configuration, the early microcode archive, busybox,
/// and settings from a config file.
final class BuildOptionsTests: XCTestCase {
    static let config = """
        CONFIG_BLK_DEV_INITRD=y
        CONFIG_INITRAMFS_SOURCE=""
        CONFIG_RD_GZIP=y
        CONFIG_RD_XZ=y
        # CONFIG_RD_LZ4 is not set
        CONFIG_RD_ZSTD=m
        CONFIG_MICROCODE=y
        CONFIG_MICROCODE_INTEL=y
        # CONFIG_MICROCODE_AMD is not set

        """

    func testKernelConfigParse() {
        let c = KernelConfig(text: Self.config, source: "cfg")
        XCTAssertEqual(c.values["CONFIG_INITRAMFS_SOURCE"], "")
        XCTAssertTrue(c.isBuiltIn("CONFIG_RD_GZIP"))
        XCTAssertFalse(c.isBuiltIn("CONFIG_RD_LZ4"))
        XCTAssertNil(c.values["CONFIG_RD_LZ4"])
        XCTAssertFalse(c.isBuiltIn("CONFIG_RD_ZSTD"), "m is not built in")
    }

    func testCompressionCheckedAgainstConfig() throws {
        let c = KernelConfig(text: Self.config, source: "/boot/config-x")
        XCTAssertNoThrow(try c.check(.gzip))
        XCTAssertNoThrow(try c.check(.xz))
        XCTAssertNoThrow(try c.check(.none))
        XCTAssertThrowsError(try c.check(.lz4)) {
            let m = "\($0)"
            XCTAssertTrue(m.contains("CONFIG_RD_LZ4 is not set in /boot/config-x"), m)
            XCTAssertTrue(m.contains("--compress gzip or xz or none"), m)
        }
        XCTAssertThrowsError(try c.check(.zstd)) { XCTAssertTrue("\($0)".contains("CONFIG_RD_ZSTD is \"m\""), "\($0)") }
        let noInitrd = KernelConfig(text: "# CONFIG_BLK_DEV_INITRD is not set\nCONFIG_RD_GZIP=y\n", source: "k")
        XCTAssertThrowsError(try noInitrd.check(.none)) { XCTAssertTrue("\($0)".contains("CONFIG_BLK_DEV_INITRD"), "\($0)") }
        XCTAssertEqual(c.microcodeWarnings(), ["CONFIG_MICROCODE_AMD is not set in /boot/config-x: AuthenticAMD.bin will be ignored"])
    }

    func testBuildRefusesWhatTheKernelCannotUnpack() throws {
        let tree = try FakeTree()
        let boot = tree.dir.appendingPathComponent("root/boot")
        try FileManager.default.createDirectory(at: boot, withIntermediateDirectories: true)
        try Self.config.write(to: boot.appendingPathComponent("config-\(tree.release)"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ImageBuilder.build(tree.options(.lz4))) { XCTAssertTrue("\($0)".contains("CONFIG_RD_LZ4"), "\($0)") }
        let ok = try ImageBuilder.build(tree.options(.xz))
        XCTAssertEqual(ok.kernelConfig, boot.appendingPathComponent("config-\(tree.release)").path)
        XCTAssertEqual(Compression.detect(ok.image), .xz)
        // An explicit configuration wins over the one beside the modules.
        var o = tree.options(.lz4)
        let other = tree.dir.appendingPathComponent("other-config")
        try "CONFIG_BLK_DEV_INITRD=y\nCONFIG_RD_LZ4=y\n".write(to: other, atomically: true, encoding: .utf8)
        o.kernelConfigPath = other.path
        XCTAssertEqual(Compression.detect(try ImageBuilder.build(o).image), .lz4)
    }

    func testEveryBuildableCompressionRoundTrips() throws {
        let tree = try FakeTree()
        let plain = try ImageBuilder.build(tree.options(.none)).image
        for c in Compression.buildable where c != .none {
            let image = try ImageBuilder.build(tree.options(c)).image
            XCTAssertEqual(Compression.detect(image), c)
            XCTAssertEqual(try c.decompress(image[...]), plain, "\(c)")
        }
        // The kernel reads only lz4's legacy frame (lib/decompress_unlz4.c): magic 02 21 4c 18.
        XCTAssertEqual(Array(try ImageBuilder.build(tree.options(.lz4)).image.prefix(4)), [0x02, 0x21, 0x4c, 0x18])
        // xz with CRC32 checks (stream flags byte 1 = 0x01), the only check the kernel's xz knows besides none.
        XCTAssertEqual(try ImageBuilder.build(tree.options(.xz)).image[7], 0x01)
    }

    func makeFirmware(_ dir: URL) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: dir.appendingPathComponent("intel-ucode"), withIntermediateDirectories: true)
        try fm.createDirectory(at: dir.appendingPathComponent("amd-ucode"), withIntermediateDirectories: true)
        try Data("INTEL-B".utf8).write(to: dir.appendingPathComponent("intel-ucode/06-9e-0a"))
        try Data("INTEL-A".utf8).write(to: dir.appendingPathComponent("intel-ucode/06-8e-09"))
        try Data("AMD17".utf8).write(to: dir.appendingPathComponent("amd-ucode/microcode_amd_fam17h.bin"))
        try Data("AMD15".utf8).write(to: dir.appendingPathComponent("amd-ucode/microcode_amd_fam15h.bin"))
        try Data("sig".utf8).write(to: dir.appendingPathComponent("amd-ucode/microcode_amd_fam17h.bin.asc"))
    }

    func testMicrocodeEarlyArchiveComesFirstUncompressed() throws {
        let tree = try FakeTree()
        let fw = tree.dir.appendingPathComponent("firmware")
        try makeFirmware(fw)
        var o = tree.options(.zstd)
        o.microcodeDirectory = fw.path
        let result = try ImageBuilder.build(o)
        XCTAssertEqual(result.earlySize % 512, 0)
        XCTAssertEqual(Array(result.image.prefix(6)), Array("070701".utf8), "the early archive starts the image")
        XCTAssertEqual(Compression.detect(result.image[result.earlySize...]), .zstd)
        let members = try ImageWalk.members(result.image) { c, b in try c.decompress(b) }
        XCTAssertEqual(members.map(\.compression), [.none, .zstd])
        let early = Dictionary(uniqueKeysWithValues: members[0].entries.map { ($0.path, $0) })
        XCTAssertEqual(members[0].entries.map(\.path), ["kernel", "kernel/x86", "kernel/x86/microcode",
                                                       "kernel/x86/microcode/AuthenticAMD.bin", "kernel/x86/microcode/GenuineIntel.bin"])
        XCTAssertEqual(early["kernel/x86/microcode/GenuineIntel.bin"]?.data, Array("INTEL-AINTEL-B".utf8), "files in name order")
        XCTAssertEqual(early["kernel/x86/microcode/AuthenticAMD.bin"]?.data, Array("AMD15AMD17".utf8), "only microcode_amd*.bin")
        XCTAssertEqual(result.earlyFiles.count, 2)
        // Reproducible too.
        XCTAssertEqual(try ImageBuilder.build(o).image, result.image)
        // A ready-made vendor file is taken as is.
        try Data("READY".utf8).write(to: fw.appendingPathComponent("GenuineIntel.bin"))
        XCTAssertEqual(Microcode.sources(in: fw.path).map(\.files.count), [2, 1])
    }

    func testMissingMicrocodeIsABuildError() throws {
        let tree = try FakeTree()
        var o = tree.options()
        o.microcodeDirectory = tree.dir.appendingPathComponent("no-firmware").path
        XCTAssertThrowsError(try ImageBuilder.build(o)) {
            let m = "\($0)"
            XCTAssertTrue(m.contains("no CPU microcode in") && m.contains("intel-microcode") && m.contains("--microcode-dir"), m)
        }
    }

    func testBusyboxMustBeStatic() throws {
        let tree = try FakeTree()
        var o = tree.options()
        o.busyboxPath = "/bin/busybox"
        let bb = try XCTUnwrap(FileManager.default.contents(atPath: "/bin/busybox"), "busybox-static is installed")
        XCTAssertEqual(StaticBinary.kind(Array(bb)), .staticELF)
        let r = try ImageBuilder.build(o)
        let e = Dictionary(uniqueKeysWithValues: r.entries.map { ($0.path, $0) })
        XCTAssertEqual(e["bin/busybox"]?.mode, 0o100755)
        XCTAssertEqual(e["bin/busybox"]?.data, Array(bb))
        XCTAssertEqual(e["bin/sh"]?.data, Array("busybox".utf8))
        // A dynamic executable (ls from coreutils) would not run without its C library.
        o.busyboxPath = "/bin/ls"
        guard case .dynamicELF(let interp)? = FileManager.default.contents(atPath: "/bin/ls").map({ StaticBinary.kind(Array($0)) }) else {
            return XCTFail("/bin/ls is not dynamic?")
        }
        XCTAssertTrue(interp.hasPrefix("/lib"), interp)
        XCTAssertThrowsError(try ImageBuilder.build(o)) {
            XCTAssertTrue("\($0)".contains("dynamically linked") && "\($0)".contains("busybox-static"), "\($0)")
        }
        o.busyboxPath = tree.dir.appendingPathComponent("extra.conf").path
        XCTAssertThrowsError(try ImageBuilder.build(o)) { XCTAssertTrue("\($0)".contains("not an ELF"), "\($0)") }
        XCTAssertEqual(StaticBinary.kind([0x7f, 0x45, 0x4c]), .notELF)
    }

    func testConfigFileValues() throws {
        let text = """
            # lab stations
            kernel_version = "6.1.0-56-amd64"
            module_root = "kernels"        # relative: to the file's directory
            compress = 'xz'
            profile = "generic-nic"
            modules = [
              "e1000e",   # Intel
              "igb",
            ]
            files = ["motd:/etc/motd", "/abs/a:b:/etc/ab"]
            busybox = true
            microcode = false
            microcode_dir = "/lib/firmware"
            init = "/usr/lib/nbdboot/init"
            nbd_client = "bin/nbd-client"
            output = "out/\\u0069nitrd.img"
            """
        let s = try ConfigFile.parse(text, file: "lab.toml", baseDirectory: "/etc/nbdboot")
        XCTAssertEqual(s.kernelVersion, "6.1.0-56-amd64")
        XCTAssertEqual(s.moduleRoot, "/etc/nbdboot/kernels")
        XCTAssertEqual(s.compress, "xz")
        XCTAssertEqual(s.profile, "generic-nic")
        XCTAssertEqual(s.modules, ["e1000e", "igb"])
        XCTAssertEqual(s.files, ["/etc/nbdboot/motd:/etc/motd", "/abs/a:b:/etc/ab"])
        XCTAssertEqual(s.busybox, "")
        XCTAssertEqual(s.microcode, false)
        XCTAssertEqual(s.microcodeDir, "/lib/firmware")
        XCTAssertEqual(s.initPath, "/usr/lib/nbdboot/init")
        XCTAssertEqual(s.nbdClient, "/etc/nbdboot/bin/nbd-client")
        XCTAssertEqual(s.output, "/etc/nbdboot/out/initrd.img")
        XCTAssertEqual(try ConfigFile.parse("busybox = \"/opt/bb\"\n", file: "f", baseDirectory: "").busybox, "/opt/bb")
        XCTAssertEqual(try ConfigFile.parse("", file: "f", baseDirectory: ""), BuildSettings())
    }

    func testConfigFileErrorsNameFileLineKey() {
        let cases: [(String, Int, String?, String)] = [
            ("compress = zstd", 1, "compress", "put strings in double quotes"),
            ("\n\nmodulez = [\"a\"]", 3, "modulez", "unknown key"),
            ("[build]\ncompress = \"xz\"", 1, nil, "tables"),
            ("modules = \"nbd\"", 1, "modules", "expected an array"),
            ("microcode = \"yes\"", 1, "microcode", "true or false"),
            ("busybox = 1", 1, "busybox", "not a value"),
            ("compress = \"xz\"\ncompress = \"gzip\"", 2, "compress", "given twice (first on line 1)"),
            ("files = [\"nocolon\"]", 1, "files", "not SRC:DST"),
            ("modules = [\"a\",\n \"b\"\n", 3, "modules", "expected"),
            ("output = \"x\" extra", 1, "output", "unexpected text"),
            ("output = \"unterminated", 1, "output", "not closed"),
            ("kernel_version = \"\"", 1, "kernel_version", "empty"),
            ("a.b = \"x\"", 1, "a", "dotted"),
            ("= \"x\"", 1, nil, "expected a key"),
            ("init = \"bad\\q\"", 1, "init", "unknown escape"),
        ]
        for (text, line, key, words) in cases {
            XCTAssertThrowsError(try ConfigFile.parse(text, file: "site.toml", baseDirectory: "")) { error in
                guard let e = error as? ConfigError else { return XCTFail("\(error)") }
                XCTAssertEqual(e.line, line, text)
                XCTAssertEqual(e.key, key, text)
                XCTAssertTrue(e.description.hasPrefix("site.toml:\(line): "), e.description)
                XCTAssertTrue(e.description.contains(words), "\(text): \(e.description)")
            }
        }
    }
}
