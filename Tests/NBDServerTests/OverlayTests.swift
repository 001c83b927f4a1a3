// Overlay, SwapFile and OverlayStore over real temporary files, with a tiny
// block size (512 bytes) so edge cases are cheap: partial blocks, a short
// last block, runs of mixed blocks, TRIM, persistence, torn map pages.
import Dispatch
import Glibc
import LinuxSys
import XCTest

@testable import NBDServer

/// Small file helpers for the tests.
enum Files {
    static func tempDir(_ tag: String) throws -> String {
        var template = Array("/tmp/nbdboot-\(tag)-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw SysError("mkdtemp", Errno.current) }
        return String(cString: p)
    }

    static func write(_ path: String, _ bytes: [UInt8]) throws {
        let fd = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_TRUNC)
        defer { fd.close() }
        try fd.writeAll(bytes)
    }

    static func read(_ path: String) throws -> [UInt8] {
        let fd = try FileDescriptor.open(path, O_RDONLY)
        defer { fd.close() }
        var st = stat()
        fstat(fd.rawValue, &st)
        return try fd.read(exactly: Int(st.st_size)) ?? []
    }

    static func identity(_ path: String) -> BaseIdentity {
        var st = stat()
        stat(path, &st)
        return BaseIdentity(size: UInt64(st.st_size), mtimeSeconds: Int64(st.st_mtim.tv_sec),
                            mtimeNanoseconds: UInt32(st.st_mtim.tv_nsec))
    }

    static func remove(_ dir: String) {
        if let d = opendir(dir) {
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { unlink(dir + "/" + name) }
            }
            closedir(d)
        }
        rmdir(dir)
    }

    /// A deterministic, non-zero pattern.
    static func pattern(_ count: Int, seed: UInt8) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) | 1 }
    }
}

final class OverlayTests: XCTestCase {
    var dir = ""
    var basePath: String { dir + "/base.img" }
    var overlays: String { dir + "/ov" }
    /// 10 blocks of 512 bytes and a short 100-byte 11th block.
    let baseSize = 10 * 512 + 100
    var baseBytes: [UInt8] = []
    var base: FileBackend!

    override func setUpWithError() throws {
        dir = try Files.tempDir("overlay-test")
        baseBytes = Files.pattern(baseSize, seed: 7)
        try Files.write(basePath, baseBytes)
        mkdir(overlays, 0o755)
        base = try FileBackend(path: basePath, readOnly: true)
    }

    override func tearDown() {
        base?.close()
        Files.remove(overlays)
        Files.remove(dir)
    }

    func open(_ station: String = "st1") throws -> Overlay {
        try Overlay(dir: overlays, station: station, base: base, basePath: basePath,
                    identity: Files.identity(basePath), blockSize: 512, now: 1)
    }

    func read(_ o: Overlay, _ offset: Int, _ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0xee, count: count)
        try out.withUnsafeMutableBytes { try o.read(into: $0, at: UInt64(offset)) }
        return out
    }

    func write(_ o: Overlay, _ offset: Int, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try o.write($0, at: UInt64(offset)) }
    }

    func testReadsComeFromTheBaseUntilWritten() throws {
        let o = try open()
        defer { o.close() }
        XCTAssertEqual(o.size, UInt64(baseSize))
        XCTAssertEqual(o.header.blockCount, 11)
        XCTAssertEqual(try read(o, 0, baseSize), baseBytes)
        XCTAssertEqual(o.allocatedBlocks, 0)
    }

    func testPartialWritesCopyTheRestOfTheBlockFromTheBase() throws {
        let o = try open()
        defer { o.close() }
        var expected = baseBytes
        // Inside block 1, across blocks 2-4 (4 whole? no: 1200..<2300 is partial 2, whole 3, partial 4),
        // and into the short last block.
        let writes: [(Int, Int, UInt8)] = [(600, 10, 0xa1), (1200, 1100, 0xb2), (5100, 120, 0xc3), (0, 1, 0xd4)]
        for (offset, count, byte) in writes {
            let data = [UInt8](repeating: byte, count: count)
            try write(o, offset, data)
            expected.replaceSubrange(offset..<(offset + count), with: data)
        }
        XCTAssertEqual(try read(o, 0, baseSize), expected)
        // Reads that start and end inside blocks, across allocated and base blocks.
        for (offset, count) in [(1, 1), (500, 700), (511, 2), (2000, 3000), (5119, 101), (4000, 1220)] {
            XCTAssertEqual(try read(o, offset, count), Array(expected[offset..<(offset + count)]), "\(offset)+\(count)")
        }
        // Blocks 0, 1, 2, 3, 4, 9, 10 hold data; 5-8 do not.
        XCTAssertEqual((0..<11).map { o.isAllocated(UInt64($0)) },
                       [true, true, true, true, true, false, false, false, false, true, true])
        XCTAssertEqual(try Files.read(basePath), baseBytes, "the base is never written")
    }

    func testTrimZeroesWholeBlocksAndLeavesTheBase() throws {
        let o = try open()
        defer { o.close() }
        try write(o, 512, [UInt8](repeating: 0x55, count: 512))
        try o.trim(offset: 300, length: 1500)  // whole blocks 1 and 2 only
        var expected = baseBytes
        expected.replaceSubrange(512..<1536, with: [UInt8](repeating: 0, count: 1024))
        XCTAssertEqual(try read(o, 0, baseSize), expected)
        try o.trim(offset: 5000, length: UInt64(baseSize - 5000))  // reaches the end: the short block counts
        expected.replaceSubrange(5120..<baseSize, with: [UInt8](repeating: 0, count: 100))
        XCTAssertEqual(try read(o, 0, baseSize), expected)
        try o.trim(offset: 10, length: 20)  // no whole block: nothing
        XCTAssertEqual(try read(o, 0, baseSize), expected)
        XCTAssertEqual(try Files.read(basePath), baseBytes)
    }

    func testPersistsAcrossCloseAndReopen() throws {
        var o = try open()
        try write(o, 700, [1, 2, 3])
        try o.flush()
        try write(o, 3000, [9, 9])  // not flushed: close flushes
        o.close()
        o = try open()
        defer { o.close() }
        var expected = baseBytes
        expected.replaceSubrange(700..<703, with: [1, 2, 3])
        expected.replaceSubrange(3000..<3002, with: [9, 9])
        XCTAssertEqual(try read(o, 0, baseSize), expected)
        XCTAssertEqual(o.allocatedBlocks, 2)
        let other = try open("st2")
        defer { other.close() }
        XCTAssertEqual(try read(other, 0, baseSize), baseBytes, "stations are isolated")
    }

    func testSecondOpenIsRefusedWhileLocked() throws {
        let o = try open()
        defer { o.close() }
        XCTAssertThrowsError(try open()) { XCTAssertTrue("\($0)".contains("in use by a running server"), "\($0)") }
    }

    func testChangedBaseIsRefused() throws {
        try open().close()
        base.close()
        var times = [timespec(tv_sec: 1_600_000_000, tv_nsec: 0), timespec(tv_sec: 1_600_000_000, tv_nsec: 0)]
        XCTAssertEqual(utimensat(AT_FDCWD, basePath, &times, 0), 0)
        base = try FileBackend(path: basePath, readOnly: true)
        XCTAssertThrowsError(try open()) { error in
            XCTAssertTrue("\(error)".contains("does not fit its base") && "\(error)".contains("overlay reset"), "\(error)")
        }
    }

    /// A kill -9 in the middle of a flush's map update leaves a page that is
    /// part new, part old. Every block flushed before reads exact; every block
    /// of the interrupted flush reads either its new data or the base, never
    /// anything else; the base is untouched.
    func testTornMapPageKeepsFlushedBlocksExact() throws {
        let (_, mapPath) = Overlay.paths(dir: overlays, station: "st1")
        var o = try open()
        try write(o, 0, [UInt8](repeating: 0x11, count: 512))  // block 0
        try o.flush()
        let mapBefore = try Files.read(mapPath)
        // Blocks 1..10 in a second flush.
        var newer = baseBytes
        for b in 1..<11 {
            let count = min(512, baseSize - b * 512)
            let data = [UInt8](repeating: UInt8(0x20 + b), count: count)
            try write(o, b * 512, data)
            newer.replaceSubrange((b * 512)..<(b * 512 + count), with: data)
        }
        try o.flush()
        o.close()
        let mapAfter = try Files.read(mapPath)
        XCTAssertNotEqual(mapBefore, mapAfter)
        // The torn page: byte 0 of the bitmap new (blocks 0-7), byte 1 old (blocks 8-10).
        var torn = mapBefore
        torn[4096] = mapAfter[4096]
        try Files.write(mapPath, torn)
        o = try open()
        defer { o.close() }
        let got = try read(o, 0, baseSize)
        XCTAssertEqual(Array(got[0..<512]), [UInt8](repeating: 0x11, count: 512), "flushed block 0 is exact")
        for b in 1..<11 {
            let range = (b * 512)..<min(baseSize, b * 512 + 512)
            let block = Array(got[range])
            XCTAssertTrue(block == Array(newer[range]) || block == Array(baseBytes[range]), "block \(b) is new or base")
            XCTAssertEqual(block, b < 8 ? Array(newer[range]) : Array(baseBytes[range]), "block \(b)")
        }
        XCTAssertEqual(try Files.read(basePath), baseBytes)
    }

    func testTruncatedOrDamagedMapIsRefusedClearly() throws {
        let (_, mapPath) = Overlay.paths(dir: overlays, station: "st1")
        try open().close()
        var map = try Files.read(mapPath)
        try Files.write(mapPath, Array(map[0..<5000]))
        XCTAssertThrowsError(try open()) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
        map[30] ^= 0xff
        try Files.write(mapPath, map)
        XCTAssertThrowsError(try open()) { XCTAssertTrue("\($0)".contains("checksum"), "\($0)") }
        map[30] ^= 0xff
        try Files.write(mapPath, map)
        try open().close()
        unlink(Overlay.paths(dir: overlays, station: "st1").data)
        XCTAssertThrowsError(try open()) { XCTAssertTrue("\($0)".contains("data file") && "\($0)".contains("missing"), "\($0)") }
    }

    /// A crash while the overlay was being created leaves a data file (maybe
    /// with junk) and a map.tmp but no map: the next open starts empty.
    func testCrashDuringCreationStartsOver() throws {
        let (dataPath, mapPath) = Overlay.paths(dir: overlays, station: "st1")
        try Files.write(dataPath, [UInt8](repeating: 0x99, count: 2000))
        try Files.write(mapPath + ".tmp", [1, 2, 3])
        let o = try open()
        defer { o.close() }
        XCTAssertEqual(try read(o, 0, baseSize), baseBytes)
        XCTAssertEqual(o.allocatedBlocks, 0)
    }

    func testWriteZeroesWholeBlocksAndEdges() throws {
        let o = try open()
        defer { o.close() }
        // 300 ..< 2000: edge 300..<512, whole blocks 1-2, edge 1536..<2000.
        XCTAssertThrowsError(try o.zero(offset: 300, length: 1700, mayPunch: true, fast: true)) {
            XCTAssertEqual(($0 as? SysError)?.errno, Errno(EOPNOTSUPP))
        }
        XCTAssertEqual(o.allocatedBlocks, 0, "a refused FAST_ZERO changes nothing")
        try o.zero(offset: 1024, length: 1024, mayPunch: true, fast: true)  // whole blocks only: fast
        try o.zero(offset: 300, length: 700, mayPunch: false, fast: false)
        var expected = baseBytes
        expected.replaceSubrange(300..<1000, with: [UInt8](repeating: 0, count: 700))
        expected.replaceSubrange(1024..<2048, with: [UInt8](repeating: 0, count: 1024))
        XCTAssertEqual(try read(o, 0, baseSize), expected)
        XCTAssertEqual(try Files.read(basePath), baseBytes)
    }

    /// BLOCK_STATUS through an overlay (4 KiB blocks, so file-system holes
    /// line up): overlay blocks report the data file, the others the base.
    func testExtentsMixOverlayAndBase() throws {
        let sparse = dir + "/sparse.img"
        try Files.write(sparse, Files.pattern(8 * 4096, seed: 1))
        XCTAssertEqual(truncate(sparse, 16 * 4096), 0)  // blocks 8-15: a hole in the base
        let sparseBase = try FileBackend(path: sparse, readOnly: true)
        defer { sparseBase.close() }
        let o = try Overlay(dir: overlays, station: "map", base: sparseBase, basePath: sparse,
                            identity: Files.identity(sparse), blockSize: 4096, now: 1)
        defer { o.close() }
        try write(o, 9 * 4096 + 100, [1, 2, 3])  // copy-on-write of a base hole block
        try o.trim(offset: 2 * 4096, length: 4096)
        let got = try o.extents(offset: 0, length: 16 * 4096, maxCount: 100)
        let block: UInt64 = 4096
        let want: [Extent] = [.data(2 * block), .hole(block), .data(5 * block), .hole(block), .data(block), .hole(6 * block)]
        XCTAssertEqual(got, want)
        XCTAssertEqual(try o.extents(offset: 0, length: 16 * 4096, maxCount: 2), [.data(2 * 4096), .hole(4096)])
        XCTAssertEqual(try o.extents(offset: 9 * 4096 + 10, length: 100, maxCount: 10), [.data(100)])
    }

    func testReadsWithoutWaitingAndHolesOnlyWherePunched() throws {
        // In tmpfs, so that no read can wait for a device.
        var template = Array("/dev/shm/nbdboot-overlay-nowait-XXXXXX".utf8CString)
        let shm = String(cString: try XCTUnwrap(mkdtemp(&template)))
        defer { Files.remove(shm + "/ov"); Files.remove(shm) }
        mkdir(shm + "/ov", 0o755)
        let denseBytes = Files.pattern(8 * 4096, seed: 5)
        try Files.write(shm + "/base.img", denseBytes)
        let dense = try FileBackend(path: shm + "/base.img", readOnly: true)
        defer { dense.close() }
        func open(_ station: String) throws -> Overlay {
            try Overlay(dir: shm + "/ov", station: station, base: dense, basePath: shm + "/base.img",
                        identity: Files.identity(shm + "/base.img"), blockSize: 4096, now: 1)
        }
        var o = try open("st1")
        XCTAssertFalse(o.mayHaveHoles, "a new overlay over a dense base has no hole to look for")
        try write(o, 4096 + 700, [1, 2, 3])
        try write(o, 2 * 4096, Files.pattern(4096, seed: 9))
        var fast = [UInt8](repeating: 0xee, count: denseBytes.count)
        XCTAssertTrue(try fast.withUnsafeMutableBytes { try o.readWithoutWaiting(into: $0, at: 0) })
        XCTAssertEqual(fast, try read(o, 0, denseBytes.count), "the same bytes as read: overlay blocks and base")
        XCTAssertFalse(o.mayHaveHoles, "blocks written with data are data")
        XCTAssertEqual(try o.extents(offset: 0, length: 8 * 4096, maxCount: 10), [.data(8 * 4096)])
        try o.trim(offset: 2 * 4096, length: 4096)
        XCTAssertTrue(o.mayHaveHoles)
        XCTAssertEqual(try o.extents(offset: 0, length: 8 * 4096, maxCount: 10), [.data(2 * 4096), .hole(4096), .data(5 * 4096)])
        o.close()
        o = try open("st1")
        XCTAssertTrue(o.mayHaveHoles, "a punched block is found again at open")
        o.close()
        let other = try open("st2")
        try write(other, 0, [4, 5, 6])
        other.close()
        let reopened = try open("st2")
        defer { reopened.close() }
        XCTAssertFalse(reopened.mayHaveHoles)
    }

    /// Concurrent partial writes to the same unallocated blocks: each one's
    /// read-modify-write is serialised, so none is lost.
    func testConcurrentPartialWritesToOneBlock() throws {
        let o = try open()
        defer { o.close() }
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            // Byte i of blocks 2 and 3 (offset 1024 + i and 1536 + 511 - i).
            try? [UInt8(i + 100)].withUnsafeBytes { try o.write($0, at: UInt64(1024 + i)) }
            try? [UInt8(i + 1)].withUnsafeBytes { try o.write($0, at: UInt64(1536 + 511 - i)) }
        }
        let got = try read(o, 1024, 1024)
        for i in 0..<64 {
            XCTAssertEqual(got[i], UInt8(i + 100))
            XCTAssertEqual(got[1023 - i], UInt8(i + 1))
        }
        XCTAssertEqual(Array(got[64..<(1024 - 64)]), Array(baseBytes[(1024 + 64)..<(2048 - 64)]))
    }
}

final class SwapAndStoreTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws { dir = try Files.tempDir("swap-test") }
    override func tearDown() { Files.remove(dir) }

    func testSwapFileCreateReopenTrimAndSizeCheck() throws {
        let size: UInt64 = 1 << 20
        var swap = try SwapFile(dir: dir, station: "st1", size: size)
        XCTAssertTrue(swap.created)
        var st = stat()
        stat(SwapFile.path(dir: dir, station: "st1"), &st)
        XCTAssertEqual(UInt64(st.st_size), size)
        XCTAssertEqual(st.st_blocks, 0, "created sparse")
        let data = [UInt8](repeating: 0x77, count: 256 << 10)
        try data.withUnsafeBytes { try swap.write($0, at: 0) }
        try swap.flush()
        stat(SwapFile.path(dir: dir, station: "st1"), &st)
        let before = st.st_blocks
        XCTAssertGreaterThan(before, 0)
        try swap.trim(offset: 0, length: 128 << 10)
        stat(SwapFile.path(dir: dir, station: "st1"), &st)
        XCTAssertLessThan(st.st_blocks, before, "TRIM punched a hole")
        XCTAssertThrowsError(try SwapFile(dir: dir, station: "st1", size: size)) { XCTAssertTrue("\($0)".contains("in use")) }
        swap.close()
        swap = try SwapFile(dir: dir, station: "st1", size: size)
        XCTAssertFalse(swap.created)
        var back = [UInt8](repeating: 1, count: 4)
        try back.withUnsafeMutableBytes { try swap.read(into: $0, at: (128 << 10) + 10) }
        XCTAssertEqual(back, [0x77, 0x77, 0x77, 0x77], "a reconnect lands on the same file")
        try back.withUnsafeMutableBytes { try swap.read(into: $0, at: 10) }
        XCTAssertEqual(back, [0, 0, 0, 0])
        swap.close()
        XCTAssertThrowsError(try SwapFile(dir: dir, station: "st1", size: size * 2)) { XCTAssertTrue("\($0)".contains("overlay reset")) }
    }

    func testListResetCommit() throws {
        let basePath = dir + "/base.img"
        let baseBytes = Files.pattern(3 * 4096 + 10, seed: 3)
        try Files.write(basePath, baseBytes)
        let base = try FileBackend(path: basePath, readOnly: true)
        defer { base.close() }
        let overlay = try Overlay(dir: dir, station: "a", base: base, basePath: basePath,
                                  identity: Files.identity(basePath), now: 1)
        try [UInt8](repeating: 0xab, count: 100).withUnsafeBytes { try overlay.write($0, at: 5000) }
        try overlay.trim(offset: 8192, length: 4096)
        let swap = try SwapFile(dir: dir, station: "b", size: 65536)

        var list = try OverlayStore.list(dir: dir)
        XCTAssertEqual(list.map(\.station), ["a", "b"])
        XCTAssertEqual(list.map(\.kind), [.cow, .swap])
        XCTAssertEqual(list.map(\.inUse), [true, true])
        XCTAssertEqual(list[1].logicalBytes, 65536)
        XCTAssertEqual(list[0].basePath, basePath)
        XCTAssertThrowsError(try OverlayStore.reset(dir: dir, station: "a")) { XCTAssertTrue("\($0)".contains("in use by a running server")) }
        XCTAssertThrowsError(try OverlayStore.commit(dir: dir, station: "a", basePath: nil, output: dir + "/new.img")) {
            XCTAssertTrue("\($0)".contains("in use"))
        }
        overlay.close()
        swap.close()
        list = try OverlayStore.list(dir: dir)
        XCTAssertEqual(list.map(\.inUse), [false, false])
        XCTAssertEqual(list[0].logicalBytes, 2 * 4096, "a written and a trimmed block, flushed by close")

        let result = try OverlayStore.commit(dir: dir, station: "a", basePath: nil, output: dir + "/new.img")
        XCTAssertEqual(result.blocksFromOverlay, 2)
        var expected = baseBytes
        expected.replaceSubrange(5000..<5100, with: [UInt8](repeating: 0xab, count: 100))
        expected.replaceSubrange(8192..<12288, with: [UInt8](repeating: 0, count: 4096))
        XCTAssertEqual(try Files.read(dir + "/new.img"), expected)
        XCTAssertEqual(try Files.read(basePath), baseBytes)
        XCTAssertThrowsError(try OverlayStore.commit(dir: dir, station: "a", basePath: nil, output: dir + "/new.img")) {
            XCTAssertTrue("\($0)".contains("exists"))
        }
        unlink(dir + "/new.img")

        XCTAssertEqual(try OverlayStore.reset(dir: dir, station: "a").count, 2)
        XCTAssertEqual(try OverlayStore.reset(dir: dir, station: "b"), [dir + "/b.swap"])
        XCTAssertThrowsError(try OverlayStore.reset(dir: dir, station: "a")) { XCTAssertTrue("\($0)".contains("no overlay")) }
        XCTAssertThrowsError(try OverlayStore.reset(dir: dir, station: "../x")) { XCTAssertTrue("\($0)".contains("start with")) }
        XCTAssertEqual(try OverlayStore.list(dir: dir).count, 0)
    }
}
