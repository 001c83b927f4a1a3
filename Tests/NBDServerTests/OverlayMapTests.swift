// The pure parts of per-station exports: station names, export options,
// sizes, the overlay header and the allocation bitmap.
import NBDWire
import XCTest

@testable import NBDServer

final class StationNameTests: XCTestCase {
    func testValidNames() {
        for name in ["st1", "station42", "10.0.2.15", "a", "A-b_c.d", String(repeating: "x", count: 64), "2001-db8--1"] {
            XCTAssertNil(StationName.problem(name), name)
        }
    }

    func testInvalidNames() {
        let table: [(String, String)] = [
            ("", "empty"),
            (".", "start with a letter or a digit"),
            ("..", "start with a letter or a digit"),
            (".hidden", "start with a letter or a digit"),
            ("-x", "start with a letter or a digit"),
            ("a/b", "found '/'"),
            ("../etc", "start with a letter or a digit"),
            ("a b", "found ' '"),
            ("st@1", "found '@'"),
            ("é", "start with a letter or a digit"),
            (String(repeating: "x", count: 65), "more than 64"),
        ]
        for (name, expected) in table {
            let problem = StationName.problem(name)
            XCTAssertNotNil(problem, name)
            XCTAssertTrue(problem?.contains(expected) ?? false, "\(name): \(problem ?? "nil")")
        }
    }

    func testSplit() {
        XCTAssertTrue(StationName.split("root@st1") == ("root", "st1"))
        XCTAssertTrue(StationName.split("root") == ("root", nil))
        XCTAssertTrue(StationName.split("a@b@c") == ("a@b", "c"))
        XCTAssertTrue(StationName.split("root@") == ("root", ""))
    }

    func testFromPeer() {
        let table: [(String, String?)] = [
            ("10.0.2.15:40312", "10.0.2.15"),
            ("127.0.0.1:1", "127.0.0.1"),
            ("[::1]:40312", "0--1"),
            ("[fe80::1%eth0]:1", "fe80--1_eth0"),
            ("[2001:db8::5]:10809", "2001-db8--5"),
            ("[::ffff:10.0.2.15]:99", "10.0.2.15"),
            ("unix socket", nil),
            ("unknown peer", nil),
        ]
        for (peer, expected) in table {
            XCTAssertEqual(StationName.fromPeer(peer), expected, peer)
        }
    }

    func testExportIndexAndMessages() {
        var cow = ExportInfo(name: "root", size: 100, flags: [.hasFlags])
        cow.perStation = true
        let plain = ExportInfo(name: "data", size: 100, flags: [.hasFlags])
        let exports = [plain, cow]
        XCTAssertEqual(StationName.exportIndex("root@st1", in: exports), 1)
        XCTAssertNil(StationName.exportIndex("data@st1", in: exports))
        XCTAssertNil(StationName.exportIndex("root@bad/name", in: exports))
        XCTAssertNil(StationName.exportIndex("root@", in: exports))
        XCTAssertNil(StationName.exportIndex("other@st1", in: exports))
        XCTAssertTrue(StationName.noExport("root@x!y", in: exports).contains("found '!'"))
        XCTAssertTrue(StationName.noExport("data@st1", in: exports).contains("not a per-station export"))
        XCTAssertTrue(StationName.noExport("nope", in: exports).contains("no export 'nope'"))

        // Through the handshake machine: GO root@st1 picks export 1, a bad station is ERR_UNKNOWN.
        var machine = ServerHandshake(exports: exports)
        _ = machine.receiveClientFlags(ClientFlagsMessage.encode([.fixedNewstyle, .noZeroes]))
        let go = InfoRequest(name: "root@st1", requests: []).encode()
        let step = machine.receiveOption(OptionHeader(option: .go, length: UInt32(go.count)), data: go)
        XCTAssertEqual(step.next, .transmit(exportIndex: 1))
        XCTAssertEqual(machine.selectedName, "root@st1")
        let bad = InfoRequest(name: "root@../x", requests: []).encode()
        var m2 = ServerHandshake(exports: exports)
        _ = m2.receiveClientFlags(ClientFlagsMessage.encode([.fixedNewstyle]))
        let refused = m2.receiveOption(OptionHeader(option: .go, length: UInt32(bad.count)), data: bad)
        XCTAssertEqual(refused.next, .readOption)
        XCTAssertTrue(refused.note?.contains("start with a letter or a digit") ?? false, refused.note ?? "")
    }
}

final class StationOptionsTests: XCTestCase {
    func testCowAndSwapSpecs() throws {
        let cow = try ExportSpec.parse("root=/srv/root.img,cow")
        XCTAssertEqual(cow.perStation, .cow(overlays: "/srv/root.img.overlays"))
        XCTAssertFalse(cow.readOnly)
        let cow2 = try ExportSpec.parse("root=/srv/root.img,overlays=/var/ov,cow")
        XCTAssertEqual(cow2.perStation, .cow(overlays: "/var/ov"))
        let swap = try ExportSpec.parse("swap=/srv/swap,swap,size=512M")
        XCTAssertEqual(swap.perStation, .swap(size: 512 << 20))
        XCTAssertEqual(swap.path, "/srv/swap")
        XCTAssertNil(try ExportSpec.parse("d=/x.img,ro").perStation)
    }

    func testBadCombinations() {
        let table: [(String, String)] = [
            ("root=/r.img,cow,readonly", "drop readonly"),
            ("root=/r.img,cow,swap,size=1M", "not both"),
            ("root=/r.img,cow,size=1M", "size= belongs to swap"),
            ("s=/d,swap", "needs its size"),
            ("s=/d,swap,size=1M,overlays=/o", "overlays= belongs to cow"),
            ("s=/d,swap,size=1M,ro", "must be writable"),
            ("r=/r.img,overlays=/o", "overlays= needs cow"),
            ("r=/r.img,size=1M", "size= needs swap"),
            ("r=/r.img,cow,overlays=", "needs a directory"),
            ("r=/r.img,frobnicate", "cow, overlays=DIR, swap"),
        ]
        for (text, expected) in table {
            XCTAssertThrowsError(try ExportSpec.parse(text), text) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(text): \(error)")
            }
        }
    }

    func testSharedDirectoriesAreRefused() throws {
        let a = try ExportSpec.parse("a=/srv/a.img,cow,overlays=/ov")
        let b = try ExportSpec.parse("b=/srv/b.img,cow,overlays=/ov")
        let c = try ExportSpec.parse("c=/ov,swap,size=1M")
        let d = try ExportSpec.parse("d=/srv/a.img,cow")
        XCTAssertNoThrow(try ServerConfig(listen: .default, exports: [a, c, d]))
        XCTAssertThrowsError(try ServerConfig(listen: .default, exports: [a, c, b])) {
            XCTAssertTrue("\($0)".contains("'b' and 'a' keep their stations' files in the same directory /ov"), "\($0)")
        }
        XCTAssertThrowsError(try ServerConfig(listen: .default, exports: [c, try ExportSpec.parse("e=/ov,swap,size=2M")]))
    }

    func testConfigFileKeys() throws {
        var cow = StationOptions()
        XCTAssertTrue(try cow.take(key: "copyonwrite", value: "true", input: "f:3"))
        XCTAssertTrue(try cow.take(key: "cowdir", value: "/var/cow", input: "f:4"))
        XCTAssertFalse(try cow.take(key: "readonly", value: "false", input: "f:5"))
        XCTAssertEqual(try cow.resolve(path: "/srv/r.img", readOnly: false, input: "f"), .cow(overlays: "/var/cow"))
        var swap = StationOptions()
        XCTAssertTrue(try swap.take(key: "swap", value: "1", input: "f:3"))
        XCTAssertTrue(try swap.take(key: "swapsize", value: "1G", input: "f:4"))
        XCTAssertEqual(try swap.resolve(path: "/srv/swap", readOnly: false, input: "f"), .swap(size: 1 << 30))
        var off = StationOptions()
        XCTAssertTrue(try off.take(key: "copyonwrite", value: "false", input: "f:3"))
        XCTAssertNil(try off.resolve(path: "/srv/r.img", readOnly: true, input: "f"))
        XCTAssertThrowsError(try off.take(key: "copyonwrite", value: "yes please", input: "f:9")) {
            XCTAssertTrue("\($0)".contains("f:9: copyonwrite = yes please"), "\($0)")
        }
    }

    func testSizes() throws {
        let good: [(String, UInt64)] = [("4096", 4096), ("4K", 4096), ("512M", 512 << 20), ("1G", 1 << 30),
                                        ("2T", 2 << 40), ("8MiB", 8 << 20), ("1g", 1 << 30)]
        for (text, value) in good { XCTAssertEqual(try StationOptions.parseSize(text, input: "t"), value, text) }
        for text in ["", "M", "1X", "-1M", "0", "100", "1.5G", "99999999999T"] {
            XCTAssertThrowsError(try StationOptions.parseSize(text, input: "t"), text)
        }
    }
}

final class OverlayMapTests: XCTestCase {
    func testBits() {
        var map = AllocationMap(blockCount: 70_000)
        XCTAssertEqual(map.bytes.count, 12288)  // 8750 bytes padded to 3 pages
        XCTAssertFalse(map.isAllocated(0))
        map.allocate(0)
        map.allocate(7)
        map.allocate(8)
        map.allocate(69_999)
        map.allocate(69_999)
        XCTAssertTrue(map.isAllocated(0) && map.isAllocated(7) && map.isAllocated(8) && map.isAllocated(69_999))
        XCTAssertFalse(map.isAllocated(1) || map.isAllocated(9) || map.isAllocated(69_998))
        XCTAssertEqual(map.bytes[0], 0b1000_0001)
        XCTAssertEqual(map.bytes[1], 0b0000_0001)
        XCTAssertEqual(map.allocatedCount, 4)
        let pages = map.takeDirtyPages()
        XCTAssertEqual(pages.map(\.page), [0, 2])
        XCTAssertEqual(pages[0].bytes.count, 4096)
        XCTAssertFalse(map.hasDirtyPages)
        map.allocate(0)  // already set: nothing dirty
        XCTAssertFalse(map.hasDirtyPages)
        map.markDirty([1])
        XCTAssertEqual(map.takeDirtyPages().map(\.page), [1])
    }

    func testLoadIgnoresBitsPastTheEnd() {
        let map = AllocationMap(blockCount: 10, bitmap: [0xff, 0xff, 0xff])
        XCTAssertEqual(map.allocatedCount, 10)
        XCTAssertEqual(map.bytes.count, 4096)
        XCTAssertEqual(map, AllocationMap(blockCount: 10, bitmap: [0xff, 0x03]))
    }

    func testHeaderRoundTripAndChecks() throws {
        let identity = BaseIdentity(size: 1_000_000, mtimeSeconds: 1_700_000_000, mtimeNanoseconds: 123)
        let header = OverlayHeader(blockSize: 4096, base: identity, created: 42, basePath: "/srv/root.img")
        let bytes = header.encode()
        XCTAssertEqual(bytes.count, 4096)
        XCTAssertEqual(Array(bytes[0..<8]), Array("NBDBOVL1".utf8))
        XCTAssertEqual(try OverlayHeader.decode(bytes, file: "m"), header)
        XCTAssertEqual(header.blockCount, 245)
        XCTAssertEqual(header.bitmapBytes, 4096)
        XCTAssertEqual(header.mapFileSize, 8192)

        var damaged = bytes
        damaged[20] ^= 1
        XCTAssertThrowsError(try OverlayHeader.decode(damaged, file: "m")) { XCTAssertTrue("\($0)".contains("checksum")) }
        var foreign = bytes
        foreign[0] = UInt8(ascii: "X")
        XCTAssertThrowsError(try OverlayHeader.decode(foreign, file: "m")) { XCTAssertTrue("\($0)".contains("magic")) }
        XCTAssertThrowsError(try OverlayHeader.decode(Array(bytes[0..<100]), file: "m")) { XCTAssertTrue("\($0)".contains("too short")) }

        XCTAssertNil(header.mismatch(with: identity, basePath: "b"))
        var bigger = identity
        bigger.size += 1
        XCTAssertTrue(header.mismatch(with: bigger, basePath: "b")?.contains("bytes") ?? false)
        var touched = identity
        touched.mtimeNanoseconds = 124
        XCTAssertTrue(header.mismatch(with: touched, basePath: "b")?.contains("modified") ?? false)
    }
}
