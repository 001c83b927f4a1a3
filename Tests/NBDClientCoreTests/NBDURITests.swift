// NBD URIs (doc/uri.md of the NBD project): the forms a station uses, and
// each malformed one refused with a message naming the URI and the fault.
import XCTest
@testable import NBDClientCore

final class NBDURITests: XCTestCase {
    func testAcceptedForms() throws {
        let table: [(String, ServerAddress, String)] = [
            ("nbd://server/root", .tcp(host: "server", port: 10809), "root"),
            ("nbd://server:10900/root", .tcp(host: "server", port: 10900), "root"),
            ("nbd://10.0.2.2:21300/", .tcp(host: "10.0.2.2", port: 21300), ""),
            ("nbd://10.0.2.2", .tcp(host: "10.0.2.2", port: 10809), ""),
            ("nbd://[::1]:10809/x", .tcp(host: "::1", port: 10809), "x"),
            ("nbd://[fe80::1%25eth0]/x", .tcp(host: "fe80::1%25eth0", port: 10809), "x"),
            ("nbd://h/dir/with%20space", .tcp(host: "h", port: 10809), "dir/with space"),
            ("nbd+tcp://h:1/e", .tcp(host: "h", port: 1), "e"),
            ("nbd+unix:///swap?socket=/run/nbd.sock", .unix(path: "/run/nbd.sock"), "swap"),
            ("nbd+unix:///?socket=/tmp/a%20b", .unix(path: "/tmp/a b"), ""),
            ("nbd://h/e?tls=off", .tcp(host: "h", port: 10809), "e"),
            ("nbd://h/e#fragment", .tcp(host: "h", port: 10809), "e"),
        ]
        for (text, server, export) in table {
            do {
                let u = try NBDURI.parse(text)
                XCTAssertEqual(u.server, server, text)
                XCTAssertEqual(u.exportName, export, text)
            } catch {
                XCTFail("\(text) refused: \(error.message)")
            }
        }
    }

    func testRefusedForms() {
        let table: [(String, String)] = [
            ("nbds://h/e", "TLS"),
            ("nbds+unix:///e?socket=/s", "TLS"),
            ("nbd+vsock://2/e", "vsock"),
            ("http://h/e", "unknown scheme 'http'"),
            ("nbd:/h/e", "expected nbd://"),
            ("nbd://::1/e", "brackets"),
            ("nbd://[::1/e", "without ']'"),
            ("nbd://[::1]x/e", "after the IPv6 address"),
            ("nbd://h:0/e", "port '0'"),
            ("nbd://h:http/e", "port 'http'"),
            ("nbd:///e", "no host"),
            ("nbd://u@h/e", "user names"),
            ("nbd+unix:///e", "needs ?socket=PATH"),
            ("nbd+unix://h/e?socket=/s", "takes no host"),
            ("nbd://h/e?socket=/s", "belongs to nbd+unix"),
            ("nbd://h/e?tls=require", "tls=require"),
            ("nbd://h/e?frob=1", "'frob'"),
            ("nbd://h/e?frob", "not KEY=VALUE"),
            ("nbd://h/%zz", "bad %-escape"),
            ("nbd://h/%ff", "UTF-8"),
        ]
        for (text, fragment) in table {
            do {
                let u = try NBDURI.parse(text)
                XCTFail("\(text) was accepted as \(u)")
            } catch {
                XCTAssertTrue(error.message.contains(fragment), "\(text): '\(error.message)' lacks '\(fragment)'")
                XCTAssertTrue(error.message.contains(text), "\(text): the message does not name the URI: \(error.message)")
            }
        }
    }
}
