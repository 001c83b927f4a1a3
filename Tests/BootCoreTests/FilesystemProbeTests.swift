import Foundation
import XCTest
@testable import BootCore

/// Golden superblocks for each filesystem the probe knows, and real images
/// made by the host's mke2fs and mkswap when they are installed.
final class FilesystemProbeTests: XCTestCase {
    func image(_ fill: (inout [UInt8]) -> Void) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: filesystemProbeLength)
        fill(&b)
        return b
    }
    func put(_ b: inout [UInt8], _ offset: Int, _ bytes: [UInt8]) {
        for (i, x) in bytes.enumerated() { b[offset + i] = x }
    }
    let uuid: [UInt8] = [0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x49, 0x08, 0x87, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00]
    let uuidString = "0f0e0d0c-0b0a-4908-8706-050403020100"

    func testExtFamily() {
        func ext(compat: UInt8, incompat: [UInt8], roCompat: [UInt8]) -> [UInt8] {
            image { b in
                put(&b, 1080, [0x53, 0xEF])
                b[1024 + 0x5C] = compat
                put(&b, 1024 + 0x60, incompat)
                put(&b, 1024 + 0x64, roCompat)
                put(&b, 1024 + 0x68, uuid)
                put(&b, 1024 + 0x78, Array("nbdroot".utf8))
            }
        }
        XCTAssertEqual(probeFilesystem(ext(compat: 0, incompat: [2, 0], roCompat: [1, 0])),
                       FilesystemSignature(type: "ext2", label: "nbdroot", uuid: uuidString))
        XCTAssertEqual(probeFilesystem(ext(compat: 4, incompat: [2, 0], roCompat: [1, 0]))?.type, "ext3")
        XCTAssertEqual(probeFilesystem(ext(compat: 4, incompat: [0x42, 0x02], roCompat: [0x7b, 0x04]))?.type, "ext4")
        XCTAssertEqual(probeFilesystem(ext(compat: 0, incompat: [0, 0], roCompat: [0, 0x04]))?.type, "ext4", "metadata_csum alone")
        // A full 16-byte label has no NUL.
        let full = image { b in put(&b, 1080, [0x53, 0xEF]); put(&b, 1024 + 0x78, Array("0123456789abcdef".utf8)) }
        XCTAssertEqual(probeFilesystem(full), FilesystemSignature(type: "ext2", label: "0123456789abcdef", uuid: ""))
    }

    func testOthers() {
        XCTAssertEqual(probeFilesystem(image { put(&$0, 0, Array("hsqs".utf8)) }), FilesystemSignature(type: "squashfs"))
        XCTAssertEqual(probeFilesystem(image { b in put(&b, 0, Array("XFSB".utf8)); put(&b, 32, uuid); put(&b, 108, Array("xroot".utf8)) }),
                       FilesystemSignature(type: "xfs", label: "xroot", uuid: uuidString))
        XCTAssertEqual(probeFilesystem(image { b in
            put(&b, 65536 + 64, Array("_BHRfS_M".utf8)); put(&b, 65536 + 32, uuid); put(&b, 65536 + 299, Array("broot".utf8))
        }), FilesystemSignature(type: "btrfs", label: "broot", uuid: uuidString))
        XCTAssertEqual(probeFilesystem(image { b in
            put(&b, 4086, Array("SWAPSPACE2".utf8)); put(&b, 1036, uuid); put(&b, 1052, Array("sw".utf8))
        }), FilesystemSignature(type: "swap", label: "sw", uuid: uuidString))
        XCTAssertNil(probeFilesystem(image { _ in }), "zeros")
        XCTAssertNil(probeFilesystem([0x53, 0xEF]), "too short")
        var mbr = image { _ in }
        mbr[510] = 0x55; mbr[511] = 0xAA
        XCTAssertNil(probeFilesystem(mbr), "a partition table is not a filesystem")
        XCTAssertTrue(FilesystemSignature(type: "ext4", uuid: uuidString).matches(uuid: "0F0E0D0C-0B0A-4908-8706-050403020100"))
        XCTAssertFalse(FilesystemSignature(type: "squashfs").matches(uuid: ""))
    }

    func testRealExt4Image() throws {
        let mke2fs = ["/sbin/mke2fs", "/usr/sbin/mke2fs"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let mke2fs else { throw XCTSkip("no mke2fs") }
        let path = NSTemporaryDirectory() + "probe-\(getpid()).img"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mke2fs)
        p.arguments = ["-q", "-F", "-t", "ext4", "-L", "realroot", "-U", uuidString, path, "8M"]
        try p.run(); p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let head = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)).prefix(filesystemProbeLength))
        XCTAssertEqual(probeFilesystem(head), FilesystemSignature(type: "ext4", label: "realroot", uuid: uuidString))
    }
}

final class SwapHeaderTests: XCTestCase {
    let uuid: [UInt8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]

    /// The bytes mkswap (util-linux 2.38) writes for a 1 MiB area with this
    /// UUID and label: `mkswap -U 01234567-89ab-cdef-0123-456789abcdef -L swaplabel`.
    func testGolden() throws {
        let page = try makeSwapHeader(size: 1 << 20, uuid: uuid, label: "swaplabel")
        XCTAssertEqual(page.count, 4096)
        XCTAssertEqual(Array(page[0..<1024]), [UInt8](repeating: 0, count: 1024))
        let golden: [UInt8] = [0x01, 0, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0] + uuid + Array("swaplabel".utf8)
        XCTAssertEqual(Array(page[1024..<(1024 + golden.count)]), golden)
        XCTAssertTrue(page[(1024 + golden.count)..<4086].allSatisfy { $0 == 0 })
        XCTAssertEqual(Array(page[4086...]), Array("SWAPSPACE2".utf8))
        XCTAssertEqual(probeFilesystem(page), FilesystemSignature(type: "swap", label: "swaplabel", uuid: "01234567-89ab-cdef-0123-456789abcdef"))
    }

    func testAgainstMkswap() throws {
        let mkswap = ["/sbin/mkswap", "/usr/sbin/mkswap"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let mkswap else { throw XCTSkip("no mkswap") }
        let path = NSTemporaryDirectory() + "swap-\(getpid()).img"
        defer { try? FileManager.default.removeItem(atPath: path) }
        FileManager.default.createFile(atPath: path, contents: Data(count: 3 << 20), attributes: [.posixPermissions: 0o600])
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mkswap)
        p.arguments = ["-U", "01234567-89ab-cdef-0123-456789abcdef", "-L", "swaplabel", path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run(); p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let theirs = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)).prefix(4096))
        XCTAssertEqual(try makeSwapHeader(size: 3 << 20, uuid: uuid, label: "swaplabel"), theirs)
    }

    func testLimitsAndUUID() {
        XCTAssertThrowsError(try makeSwapHeader(size: 9 * 4096, uuid: uuid)) { e in
            XCTAssertTrue((e as! SwapHeaderError).description.contains("too small"))
        }
        XCTAssertNoThrow(try makeSwapHeader(size: 10 * 4096 + 100, uuid: uuid))
        let u = version4UUID([UInt8](repeating: 0xff, count: 16))
        XCTAssertEqual(u[6], 0x4f)
        XCTAssertEqual(u[8], 0xbf)
    }
}

final class ShutdownPlanTests: XCTestCase {
    func testVerb() {
        XCTAssertEqual(ShutdownVerb.parse(["poweroff"]), .poweroff)
        XCTAssertEqual(ShutdownVerb.parse(["--log-level", "6", "reboot"]), .reboot)
        XCTAssertEqual(ShutdownVerb.parse(["halt"]), .halt)
        XCTAssertEqual(ShutdownVerb.parse(["kexec"]), .kexec)
        XCTAssertEqual(ShutdownVerb.parse([]), .poweroff)
    }

    func testMountPointsToUnmount() {
        let info = """
        22 1 0:5 / / rw - rootfs rootfs rw
        30 22 43:0 / /oldroot rw,relatime - ext4 /dev/nbd0 rw
        31 30 0:6 / /oldroot/dev rw - devtmpfs devtmpfs rw
        32 30 0:22 / /oldroot/run rw - tmpfs tmpfs rw
        33 32 43:0 / /oldroot/run/nbdboot/lower ro - ext4 /dev/nbd0 ro
        34 30 0:30 / /oldroot/my\\040disk rw - tmpfs tmpfs rw
        35 22 0:6 / /dev rw - devtmpfs devtmpfs rw
        36 22 0:31 / /oldrootx rw - tmpfs tmpfs rw

        """
        XCTAssertEqual(mountPointsToUnmount(mountinfo: info, under: "/oldroot"),
                       ["/oldroot/run/nbdboot/lower", "/oldroot/my disk", "/oldroot/run", "/oldroot/dev", "/oldroot"])
        // After pivot_root the old root is listed after the mounts on it
        // (what the shutdown program sees); a stacked mount goes first.
        let pivoted = """
        21 25 0:19 / /oldroot/proc rw - proc proc rw
        23 25 0:5 / /oldroot/dev rw - devtmpfs devtmpfs rw
        24 25 0:21 / /oldroot/run rw - tmpfs tmpfs rw
        25 26 43:0 / /oldroot rw - ext4 /dev/nbd0 rw
        26 1 0:21 /initramfs / rw - tmpfs tmpfs rw
        27 24 0:40 / /oldroot/run rw - tmpfs tmpfs rw
        """
        XCTAssertEqual(mountPointsToUnmount(mountinfo: pivoted, under: "/oldroot"),
                       ["/oldroot/run", "/oldroot/run", "/oldroot/dev", "/oldroot/proc", "/oldroot"])
        XCTAssertEqual(unescapeMountField("a\\011b\\134c\\012"), "a\tb\\c\n")
        XCTAssertEqual(unescapeMountField("a\\0"), "a\\0")
    }

    func testMemoryAndSwaps() {
        let meminfo = "MemTotal:         498000 kB\nMemFree:          400000 kB\nMemAvailable:     420000 kB\n"
        XCTAssertEqual(memAvailableBytes(meminfo: meminfo), 420000 * 1024)
        XCTAssertNil(memAvailableBytes(meminfo: "MemTotal: 1 kB\n"))
        XCTAssertTrue(fitsInRAM(size: 100 << 20, available: 200 << 20))
        XCTAssertFalse(fitsInRAM(size: (100 << 20) + 1, available: 200 << 20))
        let swaps = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/nbd1                               partition\t65532\t\t0\t\t-2\n"
        XCTAssertEqual(swapPaths(procSwaps: swaps), ["/dev/nbd1"])
        XCTAssertEqual(swapPaths(procSwaps: "Filename Type\n"), [])
    }
}
