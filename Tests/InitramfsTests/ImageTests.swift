import Foundation
import XCTest
@testable import Initramfs

/// A module tree on disk built from `FakeModules` (each .ko holds its own path as text,
/// nbd.ko is stored gzip-compressed as nbd.ko.gz), plus stand-in init and nbd-client files.
final class FakeTree {
    let dir: URL
    let release = "6.1.0-test"

    init() throws {
        dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("initramfs-test-\(UUID().uuidString)")
        let mods = dir.appendingPathComponent("root/lib/modules/\(release)")
        try FileManager.default.createDirectory(at: mods, withIntermediateDirectories: true)
        let dep = FakeModules.dep.replacingOccurrences(of: "kernel/drivers/block/nbd.ko", with: "kernel/drivers/block/nbd.ko.gz")
        try dep.write(to: mods.appendingPathComponent("modules.dep"), atomically: true, encoding: .utf8)
        try FakeModules.softdep.write(to: mods.appendingPathComponent("modules.softdep"), atomically: true, encoding: .utf8)
        try FakeModules.alias.write(to: mods.appendingPathComponent("modules.alias"), atomically: true, encoding: .utf8)
        try FakeModules.builtin.write(to: mods.appendingPathComponent("modules.builtin"), atomically: true, encoding: .utf8)
        var index = ModuleIndex()
        index.parseDep(dep)
        for (_, entry) in index.dependencies {
            let url = mods.appendingPathComponent(entry.path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            let plain = Array("module \(entry.path)\n".utf8)
            let data = entry.path.hasSuffix(".gz") ? try Compression.gzip.compress(plain) : plain
            try Data(data).write(to: url)
        }
        try Data("#!/bin/sh\necho init\n".utf8).write(to: dir.appendingPathComponent("init"))
        try Data("client".utf8).write(to: dir.appendingPathComponent("nbd-client"))
        try Data("extra".utf8).write(to: dir.appendingPathComponent("extra.conf"))
    }

    func options(_ compression: Compression = .none) -> BuildOptions {
        var o = BuildOptions(kernelRelease: release, initPath: dir.appendingPathComponent("init").path,
                             nbdClientPath: dir.appendingPathComponent("nbd-client").path)
        o.moduleRoot = dir.appendingPathComponent("root").path
        o.compression = compression
        return o
    }

    deinit { try? FileManager.default.removeItem(at: dir) }
}

final class ImageTests: XCTestCase {
    func entries(_ image: [UInt8]) throws -> [String: CpioEntry] {
        let members = try ImageWalk.members(image) { c, b in try c.decompress(b) }
        XCTAssertEqual(members.count, 1)
        return Dictionary(uniqueKeysWithValues: members[0].entries.map { ($0.path, $0) })
    }

    func testLayoutIsTheInitContract() throws {
        let tree = try FakeTree()
        var o = tree.options()
        o.extraFiles = [(tree.dir.appendingPathComponent("extra.conf").path, "/etc/extra.conf")]
        let result = try ImageBuilder.build(o)
        let e = try entries(result.image)
        for d in ImageLayout.directories + ["lib/modules/6.1.0-test"] {
            XCTAssertEqual(e[d]?.mode, 0o40755, d)
            XCTAssertEqual(e[d]?.nlink, 2, d)
        }
        XCTAssertEqual(e["dev/console"].map { [$0.mode, $0.rdevMajor, $0.rdevMinor] }, [0o20600, 5, 1])
        XCTAssertEqual(e["dev/null"].map { [$0.mode, $0.rdevMajor, $0.rdevMinor] }, [0o20666, 1, 3])
        XCTAssertEqual(e["init"]?.mode, 0o100755)
        XCTAssertEqual(e["init"]?.data, Array("#!/bin/sh\necho init\n".utf8))
        XCTAssertEqual(e["sbin/nbd-client"]?.mode, 0o100755)
        XCTAssertEqual(e["etc/extra.conf"]?.data, Array("extra".utf8))
        XCTAssertEqual(e["etc/nbdboot/kernel-release"]?.data, Array("6.1.0-test\n".utf8))
        // nbd.ko.gz is stored decompressed, under the plain .ko name.
        XCTAssertNil(e["lib/modules/6.1.0-test/kernel/drivers/block/nbd.ko.gz"])
        XCTAssertEqual(e["lib/modules/6.1.0-test/kernel/drivers/block/nbd.ko"]?.data,
                       Array("module kernel/drivers/block/nbd.ko.gz\n".utf8))
        let list = String(decoding: e["etc/nbdboot/modules"]!.data, as: UTF8.self)
        XCTAssertEqual(list.split(separator: "\n").first, "lib/modules/6.1.0-test/kernel/drivers/virtio/virtio_ring.ko")
        XCTAssertTrue(list.contains("lib/modules/6.1.0-test/kernel/drivers/block/nbd.ko max_part=15\n"))
        XCTAssertEqual(list.split(separator: "\n").count, 18)
        XCTAssertEqual(result.resolution.modules.count, 18)
        XCTAssertNil(e["bin/busybox"], "busybox only when asked for")
        for line in list.split(separator: "\n") {
            let path = String(line.split(separator: " ")[0])
            XCTAssertEqual(e[path]?.type, .regular, "listed module \(path) is in the image")
        }
    }

    func testEntriesSortedNumberedOwnedByRoot() throws {
        let tree = try FakeTree()
        var o = tree.options()
        o.mtime = 1_700_000_000
        let result = try ImageBuilder.build(o)
        let paths = result.entries.map(\.path)
        XCTAssertEqual(paths, paths.sorted { FileMap.pathLess($0, $1) })
        XCTAssertEqual(result.entries.map(\.ino), Array(1...UInt32(paths.count)))
        XCTAssertTrue(result.entries.allSatisfy { $0.uid == 0 && $0.gid == 0 && $0.mtime == 1_700_000_000 })
        var seen: Set<String> = []
        for p in paths {
            if let slash = p.lastIndex(of: "/") { XCTAssertTrue(seen.contains(String(p[..<slash])), "parent of \(p) first") }
            seen.insert(p)
        }
        XCTAssertTrue(FileMap.pathLess("a", "a/b"))
        XCTAssertTrue(FileMap.pathLess("a/b", "a-b"))
    }

    func testReproducible() throws {
        for c in Compression.buildable {
            // Two separate trees (different directories, file times and inode numbers), same contents.
            let (t1, t2) = (try FakeTree(), try FakeTree())
            let a = try ImageBuilder.build(t1.options(c)).image
            let b = try ImageBuilder.build(t2.options(c)).image
            XCTAssertEqual(a, b, "\(c) builds differ")
            XCTAssertEqual(Compression.detect(a), c == .none ? nil : c)
        }
    }

    func testBuildErrorsNameTheProblem() throws {
        let tree = try FakeTree()
        var o = tree.options()
        o.extraModules = ["no_such_module"]
        XCTAssertThrowsError(try ImageBuilder.build(o)) { XCTAssertTrue("\($0)".contains("no_such_module")) }
        o = tree.options()
        o.kernelRelease = "9.9.9"
        XCTAssertThrowsError(try ImageBuilder.build(o)) { XCTAssertTrue("\($0)".contains("6.1.0-test"), "\($0)") }
        o = tree.options()
        o.extraFiles = [(tree.dir.appendingPathComponent("extra.conf").path, "init")]
        XCTAssertThrowsError(try ImageBuilder.build(o)) { XCTAssertTrue("\($0)".contains("/init"), "\($0)") }
        o = tree.options()
        o.extraFiles = [(tree.dir.appendingPathComponent("extra.conf").path, "../x")]
        XCTAssertThrowsError(try ImageBuilder.build(o)) { XCTAssertTrue("\($0)".contains(".."), "\($0)") }
        o = tree.options()
        o.initPath = tree.dir.appendingPathComponent("missing-init").path
        XCTAssertThrowsError(try ImageBuilder.build(o)) { XCTAssertTrue("\($0)".contains("--init"), "\($0)") }
        XCTAssertThrowsError(try ImageBuilder.locateStatic("init", option: "--init", in: [tree.dir.path + "/nope"])) {
            XCTAssertTrue("\($0)".contains("make static"))
        }
    }

    func testStaticDirectoriesBesideTheBuildDirectory() {
        let dirs = ImageBuilder.staticDirectories(invokedAs: "/repo/.build/release/nbdboot")
        XCTAssertEqual(dirs.first, "/repo/.build/static")
        XCTAssertEqual(dirs.last, "/usr/lib/nbdboot")
    }

    // MARK: reading images

    func archive(_ names: [String]) throws -> [UInt8] {
        try CpioWriter.archive(names.map { CpioEntry.file($0, data: Array($0.utf8)) })
    }

    func testConcatenatedEarlyAndCompressedMembers() throws {
        let early = try archive(["kernel/x86/microcode/GenuineIntel.bin"])
        for c in [Compression.gzip, .zstd, .xz, .lz4] {
            var image = early + [UInt8](repeating: 0, count: 512 - early.count % 512)   // block padding
            image += try c.compress(try archive(["init"]) + [0, 0, 0, 0] + (try archive(["usr/bin/x"])))
            let members = try ImageWalk.members(image) { c, b in try c.decompress(b) }
            XCTAssertEqual(members.map(\.compression), [.none, c, c], "\(c)")
            XCTAssertEqual(members.flatMap(\.entries).map(\.path), ["kernel/x86/microcode/GenuineIntel.bin", "init", "usr/bin/x"])
        }
    }

    func testUnknownDataAfterTrailerIsAnError() throws {
        let image = try archive(["a"]) + Array("garbage!".utf8)
        XCTAssertThrowsError(try ImageWalk.members(image) { c, b in try c.decompress(b) }) { error in
            XCTAssertTrue("\(error)".contains("unrecognised data"), "\(error)")
        }
        XCTAssertThrowsError(try ImageWalk.members([0, 0, 0, 0]) { c, b in try c.decompress(b) })
    }

    func testRandomImagesThrowOrReadNeverCrash() throws {
        // Random bytes, random bytes after a valid archive, and valid archives with one byte
        // changed: the walk must return or throw. Decompression is an identity here (no tools).
        var rng = SystemRandomNumberGenerator()
        let valid = try archive(["init", "etc/nbdboot/modules"])
        for i in 0..<2000 {
            var b: [UInt8]
            switch i % 3 {
            case 0: b = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1: b = valid + (0..<8).map { _ in UInt8.random(in: 0...255, using: &rng) }
            default: b = valid; b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            _ = try? ImageWalk.members(b) { _, bytes in Array(bytes.dropFirst(4)) }
        }
    }

    func testCorruptCompressedMemberIsAnError() throws {
        let bad: [UInt8] = [0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4, 5]
        XCTAssertThrowsError(try ImageWalk.members(bad) { c, b in try c.decompress(b) }) { error in
            XCTAssertTrue("\(error)".contains("zstd"), "\(error)")
        }
    }

    func testListingLine() {
        XCTAssertEqual(Inspect.line(.characterDevice("dev/console", permissions: 0o600, major: 5, minor: 1)),
                       "crw-------   1 0     0           5, 1 dev/console")
        XCTAssertEqual(Inspect.line(.symlink("bin/sh", target: "busybox")),
                       "lrwxrwxrwx   1 0     0              7 bin/sh -> busybox")
        XCTAssertEqual(Inspect.modeString(0o104755), "-rwsr-xr-x")
        XCTAssertEqual(Inspect.modeString(0o41777), "drwxrwxrwt")
    }

    // MARK: extraction

    func scratch() throws -> URL {
        let u = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("initramfs-x-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    func testExtractRoundTrip() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var a = CpioEntry.file("bin/busybox", permissions: 0o755, data: []); a.nlink = 2; a.ino = 7
        var b = CpioEntry.file("bin/ash", permissions: 0o755, data: Array("BB".utf8)); b.nlink = 2; b.ino = 7
        let entries: [CpioEntry] = [.directory("."), .directory("bin"), a, b, .symlink("bin/sh", target: "busybox"),
                                    .file("/etc/x", data: Array("x".utf8))]
        let members = try ImageWalk.members(try CpioWriter.archive(entries)) { _, b in Array(b) }
        let out = dir.appendingPathComponent("root").path
        let report = try Inspect.extract(members, to: out)
        XCTAssertEqual(report.extracted, 5)
        XCTAssertEqual(try String(contentsOfFile: out + "/bin/busybox", encoding: .utf8), "BB", "hard link data")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: out + "/bin/sh"), "busybox")
        XCTAssertEqual(try String(contentsOfFile: out + "/etc/x", encoding: .utf8), "x", "leading / dropped")
        let attrs = try FileManager.default.attributesOfItem(atPath: out + "/bin/ash")
        XCTAssertEqual((attrs[.posixPermissions] as? NSNumber)?.intValue, 0o755)
        XCTAssertEqual((attrs[.referenceCount] as? NSNumber)?.intValue, 2)
    }

    func testExtractRefusesDotDot() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let members = try ImageWalk.members(try archive(["ok", "a/../../evil"])) { _, b in Array(b) }
        let out = dir.appendingPathComponent("root").path
        XCTAssertThrowsError(try Inspect.extract(members, to: out)) { XCTAssertTrue("\($0)".contains("..")) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/ok"), "nothing written")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("evil").path))
    }

    func testExtractRefusesWritingThroughSymlink() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let outside = dir.appendingPathComponent("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        let entries: [CpioEntry] = [.symlink("link", target: outside.path), .file("link/pwned", data: [1])]
        let members = try ImageWalk.members(try CpioWriter.archive(entries)) { _, b in Array(b) }
        XCTAssertThrowsError(try Inspect.extract(members, to: dir.appendingPathComponent("root").path)) {
            XCTAssertTrue("\($0)".contains("symlink"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: outside.appendingPathComponent("pwned").path))
    }
}
