import XCTest
@testable import Initramfs

final class NewcTests: XCTestCase {
    /// The archive below, as `cpio -tv` lists it:
    ///
    ///     drwxr-xr-x   2 root     root            0 Jan  1  1970 d
    ///     -rw-r--r--   1 root     root            3 Jan  1  1970 d/f
    ///     lrwxrwxrwx   1 root     root            3 Jan  1  1970 l -> d/f
    ///
    /// Written by hand from the format: 110-byte header, name + NUL padded to 4, data padded to 4.
    static let golden: [UInt8] = {
        var s = ""
        //       magic   ino      mode     uid      gid      nlink    mtime    filesize devmaj   devmin   rdevmaj  rdevmin  namesize check
        s += "070701" + "00000001" + "000041ED" + "00000000" + "00000000" + "00000002" + "00000000" + "00000000"
            + "00000000" + "00000000" + "00000000" + "00000000" + "00000002" + "00000000"
        s += "d\0"                    // 110 + 2 = 112: aligned, no padding; no data
        s += "070701" + "00000002" + "000081A4" + "00000000" + "00000000" + "00000001" + "00000000" + "00000003"
            + "00000000" + "00000000" + "00000000" + "00000000" + "00000004" + "00000000"
        s += "d/f\0" + "\0\0"         // 110 + 4 = 114 -> 116
        s += "hi\n" + "\0"            // 3 -> 4
        s += "070701" + "00000003" + "0000A1FF" + "00000000" + "00000000" + "00000001" + "00000000" + "00000003"
            + "00000000" + "00000000" + "00000000" + "00000000" + "00000002" + "00000000"
        s += "l\0"                    // 112
        s += "d/f" + "\0"             // symlink target, 3 -> 4
        s += "070701" + "00000000" + "00000000" + "00000000" + "00000000" + "00000001" + "00000000" + "00000000"
            + "00000000" + "00000000" + "00000000" + "00000000" + "0000000B" + "00000000"
        s += "TRAILER!!!\0" + "\0\0\0"  // 110 + 11 = 121 -> 124
        return Array(s.utf8)
    }()

    static let goldenEntries: [CpioEntry] = {
        var d = CpioEntry.directory("d"); d.ino = 1
        var f = CpioEntry.file("d/f", data: Array("hi\n".utf8)); f.ino = 2
        var l = CpioEntry.symlink("l", target: "d/f"); l.ino = 3
        return [d, f, l]
    }()

    func testGoldenBytes() throws {
        XCTAssertEqual(try CpioWriter.archive(Self.goldenEntries), Self.golden)
        XCTAssertEqual(Self.golden.count, 112 + 116 + 4 + 112 + 4 + 124)
    }

    func testGoldenReads() throws {
        let (entries, end) = try CpioReader.readArchive(Self.golden)
        XCTAssertEqual(entries, Self.goldenEntries)
        XCTAssertEqual(end, Self.golden.count)
    }

    func testLowerCaseHexIsAccepted() throws {
        // The kernel and GNU cpio accept both cases; other writers use lower case.
        let lower = Array(String(decoding: Self.golden, as: UTF8.self).replacingOccurrences(of: "41ED", with: "41ed").utf8)
        XCTAssertEqual(try CpioReader.readArchive(lower).entries.first?.mode, 0o40755)
    }

    func testRoundTripAllFields() throws {
        var entries: [CpioEntry] = []
        for i in 0..<20 {
            var e = CpioEntry.file(String(repeating: "n", count: i + 1) + "/x\(i)", permissions: 0o600 + UInt32(i),
                                   data: (0..<i * 3).map { UInt8(truncatingIfNeeded: $0 &* 37) })
            e.ino = UInt32(1000 + i); e.uid = UInt32(i); e.gid = 0xffff_ffff; e.mtime = 1_700_000_000
            e.devMajor = 8; e.devMinor = UInt32(i); e.nlink = 1
            entries.append(e)
        }
        entries.append(.characterDevice("dev/console", permissions: 0o600, major: 5, minor: 1))
        let archive = try CpioWriter.archive(entries)
        XCTAssertEqual(archive.count % 4, 0)
        XCTAssertEqual(try CpioReader.readArchive(archive).entries, entries)
    }

    func testPaddingEdgeCases() throws {
        // Record length = align4(110 + name + NUL) + align4(size), for every residue of both.
        for nameLength in 1...8 {
            for size in 0...8 {
                let e = CpioEntry.file(String(repeating: "a", count: nameLength), data: [UInt8](repeating: 0x55, count: size))
                var w = CpioWriter()
                try w.append(e)
                let expected = Newc.align4(110 + nameLength + 1) + Newc.align4(size)
                XCTAssertEqual(w.bytes.count, expected, "name \(nameLength), size \(size)")
                let (h, name, dataOffset) = try Newc.decodeHeaderAndName(w.bytes, at: 0)
                XCTAssertEqual(name.count, nameLength)
                XCTAssertEqual(Int(h.fileSize), size)
                XCTAssertEqual(dataOffset, Newc.align4(110 + nameLength + 1))
                XCTAssertTrue(w.bytes[(dataOffset + size)...].allSatisfy { $0 == 0 }, "padding is NULs")
            }
        }
    }

    func testEncoderRejectsBadNames() {
        XCTAssertThrowsError(try CpioWriter.archive([.file("", data: [])]))
        XCTAssertThrowsError(try CpioWriter.archive([.file("a\0b", data: [])]))
        XCTAssertThrowsError(try CpioWriter.archive([.file(String(repeating: "x", count: 5000), data: [])]))
    }

    // MARK: malformed input: a typed error, never a crash

    func decodeError(_ bytes: [UInt8]) -> NewcError? {
        do { _ = try CpioReader.readArchive(bytes); return nil } catch { return error }
    }

    func header(namesize: String = "00000002", filesize: String = "00000000", mode: String = "000081A4") -> String {
        "070701" + "00000001" + mode + "00000000" + "00000000" + "00000001" + "00000000" + filesize
            + "00000000" + "00000000" + "00000000" + "00000000" + namesize + "00000000"
    }

    func testShortInput() {
        XCTAssertEqual(decodeError([]), .truncated(offset: 0, needed: 110, available: 0))
        XCTAssertEqual(decodeError(Array("0707".utf8)), .truncated(offset: 0, needed: 110, available: 4))
        XCTAssertEqual(decodeError(Array("070701".utf8)), .truncated(offset: 0, needed: 110, available: 6))
        XCTAssertEqual(decodeError(Array(header().prefix(50).utf8)), .truncated(offset: 0, needed: 110, available: 50))
    }

    func testBadMagic() {
        // "070707" is the old portable (odc) format, not newc.
        XCTAssertEqual(decodeError(Array((header() + "a\0").replacingOccurrences(of: "070701", with: "070707").utf8)),
                       .badMagic(offset: 0, found: "070707"))
        XCTAssertEqual(decodeError([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]), .badMagic(offset: 0, found: "\\x1f\\x8b\\x08\\x00\\x00\\x00"))
    }

    func testBadHexField() {
        XCTAssertEqual(decodeError(Array(header(mode: "0000zzzz").utf8 + [0x61, 0])),
                       .badField(offset: 0, field: "mode", text: "0000zzzz"))
    }

    func testNameSizeOverflowAndZero() {
        XCTAssertEqual(decodeError(Array((header(namesize: "FFFFFFFF") + "a\0").utf8)),
                       .badNameSize(offset: 0, nameSize: 0xffff_ffff))
        XCTAssertEqual(decodeError(Array((header(namesize: "00000000") + "a\0").utf8)),
                       .badNameSize(offset: 0, nameSize: 0))
        // Within the limit but past the end of the input.
        XCTAssertEqual(decodeError(Array((header(namesize: "00000100") + "a\0").utf8)),
                       .truncated(offset: 0, needed: 110 + 256, available: 112))
    }

    func testNameWithoutNul() {
        XCTAssertEqual(decodeError(Array((header() + "ab").utf8)), .badName(offset: 0))
    }

    func testFileSizePastEnd() {
        XCTAssertEqual(decodeError(Array((header(filesize: "7FFFFFFF") + "a\0" + "xy").utf8)),
                       .truncated(offset: 0, needed: 112 + 0x7fff_ffff, available: 114))
    }

    func testMissingTrailer() {
        let noTrailer = Array(Self.golden.prefix(112 + 116 + 4))
        XCTAssertEqual(decodeError(noTrailer), .truncated(offset: 232, needed: 110, available: 0))
    }

    func testEveryTruncationAndByteFlipThrowsOrReads() {
        // Drip-fed and corrupted input: each prefix and each single-byte change must either
        // decode or throw a NewcError; a crash fails the whole test run.
        for n in 0..<Self.golden.count {
            XCTAssertNotNil(decodeError(Array(Self.golden.prefix(n))), "prefix \(n) decoded")
        }
        var rng = SystemRandomNumberGenerator()
        for i in 0..<Self.golden.count {
            var b = Self.golden
            b[i] = UInt8.random(in: 0...255, using: &rng)
            _ = decodeError(b)
        }
    }
}
