// The --oldstyle listener in-process.
import Glibc
import LinuxSys
import NBDWire
import XCTest

@testable import NBDServer

/// The oldstyle listener: 152 bytes, then transmission with simple replies.
final class OldstyleServerTests: XCTestCase {
    func testGreetingThenTransmission() throws {
        let fixture = try ServerFixture()
        defer { fixture.stop() }
        let path = try fixture.sparseFile("old.img", size: 65536, data: [(4096, 4096, 0x42)])
        try fixture.start([ExportSpec(name: "old", path: path)], oldstyle: true)
        let fd = try connectUnix(path: fixture.socketPath)
        defer { fd.close() }
        let greeting = try XCTUnwrap(try fd.read(exactly: OldstyleGreeting.size))
        // NBDMAGIC, 0x00420281861253, size 65536, flags 0x00000d6d, 124 zeroes
        XCTAssertEqual(Array(greeting[0..<28]), Array("NBDMAGIC".utf8) + [0, 0, 0x42, 0x02, 0x81, 0x86, 0x12, 0x53]
                       + [0, 0, 0, 0, 0, 1, 0, 0] + [0, 0, 0x0d, 0x6d])
        XCTAssertEqual(Array(greeting[28...]), [UInt8](repeating: 0, count: 124))
        let client = RawClient(fd: fd)
        try client.send(Request(command: .read, cookie: 5, offset: 4096, length: 4))
        XCTAssertEqual(try SimpleReply.decode(try XCTUnwrap(try fd.read(exactly: SimpleReply.size))), SimpleReply(error: .ok, cookie: 5))
        XCTAssertEqual(try fd.read(exactly: 4), [0x42, 0x42, 0x42, 0x42])
        XCTAssertEqual(try client.roundTrip(Request(command: .write, cookie: 6, offset: 0, length: 2), payload: [1, 2]).simple?.error, .ok)
        XCTAssertEqual(try client.roundTrip(Request(command: .read, flags: .df, cookie: 7, offset: 0, length: 2)).simple?.error, .inval)
        XCTAssertEqual(try client.roundTrip(Request(command: .blockStatus, cookie: 8, offset: 0, length: 2)).simple?.error, .inval)
        XCTAssertTrue(fixture.log.all.contains { $0.contains("via oldstyle greeting") }, "\(fixture.log.all)")
    }

    func testOldstyleNeedsExactlyOneExport() {
        XCTAssertThrowsError(try ServerConfig(listen: .default, exports: [ExportSpec(name: "a", path: "/1"), ExportSpec(name: "b", path: "/2")],
                                              oldstyle: true)) {
            XCTAssertTrue(($0 as! ConfigError).message.contains("exactly one export per listener"), "\($0)")
        }
    }
}
