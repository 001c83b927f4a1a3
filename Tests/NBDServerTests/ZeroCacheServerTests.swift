// WRITE_ZEROES (punch, NO_HOLE, FAST_ZERO) and CACHE against real files: one
// on /tmp (ext4 here: PUNCH_HOLE and ZERO_RANGE both work) and one on
// /dev/shm (tmpfs: PUNCH_HOLE works, ZERO_RANGE does not, so FAST_ZERO with
// NO_HOLE has no fast path and must fail with ENOTSUP).
import Glibc
import LinuxSys
import NBDWire
import XCTest

@testable import NBDServer

final class ZeroCacheServerTests: XCTestCase {
    var fixture: ServerFixture!
    var diskPath = ""
    var shmPath = ""
    let size = 1 << 20

    override func setUpWithError() throws {
        fixture = try ServerFixture()
        diskPath = try fixture.sparseFile("disk.img", size: size, data: [(0, size, 0x77)])
        shmPath = "/dev/shm/nbdboot-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).img"
        let fd = try FileDescriptor.open(shmPath, O_CREAT | O_TRUNC | O_RDWR)
        try fd.writeAll([UInt8](repeating: 0x66, count: size))
        fd.close()
        try fixture.start([ExportSpec(name: "disk", path: diskPath), ExportSpec(name: "shm", path: shmPath),
                           ExportSpec(name: "ro", path: diskPath, readOnly: true)])
    }

    override func tearDown() {
        fixture.stop()
        unlink(shmPath)
    }

    func read(_ c: RawClient, _ offset: Int, _ length: Int) throws -> [UInt8] {
        try c.send(Request(command: .read, cookie: 99, offset: UInt64(offset), length: UInt32(length)))
        let head = try SimpleReply.decode(try XCTUnwrap(try c.fd.read(exactly: SimpleReply.size)))
        XCTAssertEqual(head.error, .ok)
        return try XCTUnwrap(try c.fd.read(exactly: length))
    }

    func zero(_ c: RawClient, _ offset: Int, _ length: Int, _ flags: CommandFlags = []) throws -> NBDErrno {
        try c.roundTrip(Request(command: .writeZeroes, flags: flags, cookie: 7, offset: UInt64(offset), length: UInt32(length))).error
    }

    func testReadsWithoutWaitingAreRightOrDeclined() throws {
        // tmpfs never waits for a device: always read, and sendfile may run
        // inline. ext4 answers from the page cache (preadv2 RWF_NOWAIT) or
        // declines; what it reads must be the file's bytes either way.
        let shm = try FileBackend(path: shmPath, readOnly: true)
        let disk = try FileBackend(path: diskPath, readOnly: true)
        defer {
            shm.close()
            disk.close()
        }
        XCTAssertTrue(shm.inMemory)
        var buffer = [UInt8](repeating: 0, count: 8192)
        let gotShm = try buffer.withUnsafeMutableBytes { try shm.readWithoutWaiting(into: $0, at: 4096) }
        XCTAssertTrue(gotShm)
        XCTAssertEqual(buffer, [UInt8](repeating: 0x66, count: 8192))
        buffer = [UInt8](repeating: 0, count: 8192)
        let reader = try FileDescriptor.open(diskPath, O_RDONLY)  // into the page cache
        var warm = [UInt8](repeating: 0, count: 8192)
        XCTAssertEqual(try warm.withUnsafeMutableBytes { try reader.readFully(into: $0, at: 4096) }, 8192)
        reader.close()
        let gotDisk = try buffer.withUnsafeMutableBytes { try disk.readWithoutWaiting(into: $0, at: 4096) }
        if gotDisk { XCTAssertEqual(buffer, [UInt8](repeating: 0x77, count: 8192)) }
    }

    func testFlagsAdvertised() throws {
        let c = try RawClient.connect(fixture.socketPath, export: "disk", structured: false)
        defer { c.close() }
        XCTAssertEqual(c.flags, [.hasFlags, .sendFlush, .sendFUA, .sendTrim, .sendWriteZeroes, .sendFastZero, .sendCache, .canMultiConn])
    }

    func testZeroPunchesAHoleUnlessNoHole() throws {
        let c = try RawClient.connect(fixture.socketPath, export: "disk", structured: false)
        defer { c.close() }
        let before = fixture.allocated(diskPath)
        XCTAssertGreaterThanOrEqual(before, size)
        // Without NO_HOLE: a hole (st_blocks drop, SEEK_DATA sees it), reads as zeroes.
        XCTAssertEqual(try zero(c, 0, 262144), .ok)
        XCTAssertEqual(try read(c, 0, 262144), [UInt8](repeating: 0, count: 262144))
        XCTAssertEqual(try read(c, 262144, 4), [0x77, 0x77, 0x77, 0x77])
        let punched = fixture.allocated(diskPath)
        XCTAssertLessThanOrEqual(punched, before - 262144)
        let backend = try FileBackend(path: diskPath, readOnly: true)
        defer { backend.close() }
        XCTAssertEqual(try backend.extents(offset: 0, length: 524288, maxCount: 10), [.hole(262144), .data(262144)])
        // With NO_HOLE: zeroes, the space stays allocated.
        XCTAssertEqual(try zero(c, 524288, 262144, [.noHole, .fua]), .ok)
        XCTAssertEqual(try read(c, 524288, 262144), [UInt8](repeating: 0, count: 262144))
        XCTAssertGreaterThanOrEqual(fixture.allocated(diskPath), punched, "NO_HOLE must not free space (metadata may add a block)")
        // FAST_ZERO works on both paths here.
        XCTAssertEqual(try zero(c, 4096, 4096, .fastZero), .ok)
        XCTAssertEqual(try zero(c, 786432, 4096, [.fastZero, .noHole]), .ok)
        XCTAssertEqual(try read(c, 786432, 4096), [UInt8](repeating: 0, count: 4096))
        // Length 0 is a no-op.
        XCTAssertEqual(try zero(c, 0, 0), .ok)
    }

    func testFastZeroWithoutAFastPathIsEnotsup() throws {
        let c = try RawClient.connect(fixture.socketPath, export: "shm")
        defer { c.close() }
        // tmpfs has no ZERO_RANGE: FAST_ZERO + NO_HOLE fails fast and changes nothing...
        let reply = try c.roundTrip(Request(command: .writeZeroes, flags: [.fastZero, .noHole], cookie: 1, offset: 0, length: 4096))
        XCTAssertEqual(reply.error, .notsup)
        XCTAssertTrue(reply.errorMessage?.contains("ZERO_RANGE") ?? false, "\(String(describing: reply.errorMessage))")
        XCTAssertEqual(try c.roundTrip(Request(command: .read, flags: .df, cookie: 2, offset: 0, length: 4)).chunks.last?.payload.suffix(4),
                       [0x66, 0x66, 0x66, 0x66])
        // ...while NO_HOLE alone takes the slow path (pwrite) and must not fail with ENOTSUP...
        XCTAssertEqual(try zero(c, 0, 8192, .noHole), .ok)
        // ...and FAST_ZERO alone punches.
        XCTAssertEqual(try zero(c, 65536, 65536, .fastZero), .ok)
        let fd = try FileDescriptor.open(shmPath, O_RDONLY)
        defer { fd.close() }
        var bytes = [UInt8](repeating: 1, count: 131072)
        XCTAssertEqual(bytes.withUnsafeMutableBytes { pread(fd.rawValue, $0.baseAddress, 131072, 0) }, 131072)
        XCTAssertEqual(Array(bytes[0..<8192]), [UInt8](repeating: 0, count: 8192))
        XCTAssertEqual(Array(bytes[8192..<65536]), [UInt8](repeating: 0x66, count: 65536 - 8192))
        XCTAssertEqual(Array(bytes[65536...]), [UInt8](repeating: 0, count: 65536))
    }

    func testZeroAndCacheErrors() throws {
        let c = try RawClient.connect(fixture.socketPath, export: "disk", structured: false)
        defer { c.close() }
        XCTAssertEqual(try zero(c, size - 512, 1024), .nospc)
        XCTAssertEqual(try zero(c, 0, 512, .df), .inval)
        XCTAssertEqual(try zero(c, 0, 512, CommandFlags(rawValue: 0x40)), .inval)
        XCTAssertEqual(try c.roundTrip(Request(command: .cache, cookie: 1, offset: 0, length: UInt32(size))).error, .ok)
        XCTAssertEqual(try c.roundTrip(Request(command: .cache, flags: .fua, cookie: 2, offset: 0, length: 4096)).error, .ok)
        XCTAssertEqual(try c.roundTrip(Request(command: .cache, cookie: 3, offset: 4096, length: UInt32(size))).error, .inval)
        XCTAssertEqual(try c.roundTrip(Request(command: .cache, flags: .noHole, cookie: 4, offset: 0, length: 4096)).error, .inval)
        XCTAssertEqual(try read(c, 0, 4), [0x77, 0x77, 0x77, 0x77], "CACHE changes nothing")
        let ro = try RawClient.connect(fixture.socketPath, export: "ro")
        defer { ro.close() }
        let refused = try ro.roundTrip(Request(command: .writeZeroes, cookie: 5, offset: 0, length: 512))
        XCTAssertEqual(refused.error, .perm)
        XCTAssertEqual(refused.errorMessage, "WRITE_ZEROES: export 'ro' is read-only")
        XCTAssertEqual(try ro.roundTrip(Request(command: .cache, cookie: 6, offset: 0, length: 512)).simple?.error, .ok)
    }

    func testBackendWithoutFastZeroWritesZeroes() throws {
        let memory = MemoryBackend(size: 65536, fill: 9)
        try memory.zero(offset: 100, length: 200, mayPunch: true, fast: false)
        XCTAssertEqual(Array(memory.bytes[99..<301]), [9] + [UInt8](repeating: 0, count: 200) + [9])
        XCTAssertThrowsError(try memory.zero(offset: 0, length: 10, mayPunch: true, fast: true)) { error in
            XCTAssertEqual((error as? SysError)?.errno, Errno(EOPNOTSUPP))
        }
    }
}

/// A backend in memory that relies on BlockBackend's default zero/cache/extents.
final class MemoryBackend: BlockBackend, @unchecked Sendable {
    var bytes: [UInt8]
    var size: UInt64 { UInt64(bytes.count) }
    init(size: Int, fill: UInt8) { bytes = [UInt8](repeating: fill, count: size) }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SysError) {
        for i in 0..<buffer.count { buffer[i] = bytes[Int(offset) + i] }
    }
    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(SysError) {
        for i in 0..<data.count { bytes[Int(offset) + i] = data[i] }
    }
    func flush() throws(SysError) {}
    func trim(offset: UInt64, length: UInt64) throws(SysError) {}
    func close() {}
}
