// Command-line pieces: --listen and --export parsing and their messages.
import XCTest

@testable import NBDServer

final class ConfigTests: XCTestCase {
    func testListenForms() throws {
        XCTAssertEqual(try ListenAddress.parse("127.0.0.1:20800"), .tcp(host: "127.0.0.1", port: 20800))
        XCTAssertEqual(try ListenAddress.parse("[::1]:10809"), .tcp(host: "::1", port: 10809))
        XCTAssertEqual(try ListenAddress.parse("localhost:1"), .tcp(host: "localhost", port: 1))
        XCTAssertEqual(try ListenAddress.parse("10809"), .tcp(host: "0.0.0.0", port: 10809))
        XCTAssertEqual(try ListenAddress.parse("unix:/tmp/x.sock"), .unix(path: "/tmp/x.sock"))
        XCTAssertEqual(ListenAddress.tcp(host: "::1", port: 5).description, "[::1]:5")
        XCTAssertEqual(ListenAddress.default, .tcp(host: "0.0.0.0", port: 10809))
    }

    func testListenErrorsNameTheInput() {
        for (bad, needle) in [("127.0.0.1:0", "1 to 65535"), ("127.0.0.1:65536", "1 to 65535"), ("127.0.0.1:", "port ''"),
                              ("127.0.0.1:x", "port 'x'"), (":80", "host is empty"), ("::1:80", "brackets"),
                              ("[::1", "missing ']'"), ("[::1]80", ":PORT"), ("unix:", "socket path"), ("+80", "port '+80'")] {
            XCTAssertThrowsError(try ListenAddress.parse(bad), bad) { error in
                let message = (error as! ConfigError).message
                XCTAssertTrue(message.contains("'\(bad)'") && message.contains(needle), "\(bad): \(message)")
            }
        }
    }

    func testExportSpecs() throws {
        XCTAssertEqual(try ExportSpec.parse("root=/srv/r.img"), ExportSpec(name: "root", path: "/srv/r.img"))
        XCTAssertEqual(try ExportSpec.parse("r=/a=b,readonly"), ExportSpec(name: "r", path: "/a=b", readOnly: true))
        XCTAssertEqual(try ExportSpec.parse("=/x,ro"), ExportSpec(name: "", path: "/x", readOnly: true))
        XCTAssertEqual(try ExportSpec.parse("x=/x,ro,rw"), ExportSpec(name: "x", path: "/x", readOnly: false))
        XCTAssertEqual(try ExportSpec.parse("x=/x,desc=Station root, Debian 12"),
                       ExportSpec(name: "x", path: "/x", description: "Station root, Debian 12"))
        XCTAssertEqual(try ExportSpec.parse("x=/x,ro,description=a=b,,c"),
                       ExportSpec(name: "x", path: "/x", readOnly: true, description: "a=b,,c"))
        XCTAssertEqual(try ExportSpec.parse("x=/x,desc=ro"), ExportSpec(name: "x", path: "/x", description: "ro"))
        XCTAssertEqual(try ExportSpec.parse("x=/x,desc="), ExportSpec(name: "x", path: "/x"))
    }

    func testLongDescriptionIsRefused() {
        XCTAssertThrowsError(try ExportSpec.parse("x=/x,desc=" + String(repeating: "d", count: 1025))) {
            XCTAssertTrue(($0 as! ConfigError).message.contains("1025 bytes, more than 1024"), "\($0)")
        }
    }

    func testExportSpecErrors() {
        for (bad, needle) in [("root", "NAME=PATH"), ("root=", "path after '=' is empty"), ("root=,readonly", "empty"),
                              ("root=/x,fast", "unknown option 'fast'"), ("root=/x,dsc=y", "desc=TEXT"), ("root=/x,", "unknown option ''")] {
            XCTAssertThrowsError(try ExportSpec.parse(bad), bad) { error in
                let message = (error as! ConfigError).message
                XCTAssertTrue(message.contains("'\(bad)'") && message.contains(needle), "\(bad): \(message)")
            }
        }
    }

    func testServerConfigNeedsUniqueExports() {
        XCTAssertThrowsError(try ServerConfig(listen: .default, exports: []))
        XCTAssertThrowsError(try ServerConfig(listen: .default, exports: [ExportSpec(name: "a", path: "/1"), ExportSpec(name: "a", path: "/2")])) {
            XCTAssertTrue(($0 as! ConfigError).message.contains("'a' is given twice"))
        }
    }
}
