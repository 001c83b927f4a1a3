// /etc/nbdtab (nbdtab(5) of nbd-client 3.24): a table of lines and what they
// mean, the errors that name the file and line, and the merge with the
// command line that `nbd-client nbdN [options]` does.
import XCTest
@testable import NBDClientCore

final class NBDTabTests: XCTestCase {
    let sample = """
    # nbdtab for a station
    nbd0\tserver.example   root   persist,timeout=30,port=10900   # the root
    nbd1 server.example swap swap,persist,bs=4096,conns=2,dead-timeout=60
      /dev/nbd2   /run/nbd.sock   data   unix,no_optgo,_local=1
    nbd3 10.0.0.1 plain

    nbd4 h e frobnicate
    """

    func testEntries() throws {
        let tab = try NBDTab.parse(sample)
        XCTAssertEqual(tab.entries.count, 5)
        let root = try XCTUnwrap(tab.entry(for: NBDDevice(index: 0)))
        XCTAssertEqual(root.options.server, .tcp(host: "server.example", port: 10900))
        XCTAssertEqual(root.options.exportName, "root")
        XCTAssertTrue(root.options.persist)
        XCTAssertEqual(root.options.timeout, 30)
        XCTAssertEqual(root.line, 2)
        let swap = try XCTUnwrap(tab.entry(for: NBDDevice(index: 1)))
        XCTAssertTrue(swap.options.swap && swap.options.persist)
        XCTAssertEqual(swap.options.blockSize, 4096)
        XCTAssertEqual(swap.options.connections, 2)
        XCTAssertEqual(swap.options.deadTimeout, 60)
        XCTAssertEqual(swap.options.server, .tcp(host: "server.example", port: 10809))
        let data = try XCTUnwrap(tab.entry(for: NBDDevice(index: 2)))
        XCTAssertEqual(data.options.server, .unix(path: "/run/nbd.sock"))
        XCTAssertTrue(data.options.noOptGo)
        let plain = try XCTUnwrap(tab.entry(for: NBDDevice(index: 3)))
        XCTAssertFalse(plain.options.persist)
        XCTAssertEqual(plain.options.connections, 1)
        XCTAssertNil(tab.entry(for: NBDDevice(index: 9)))
        // Unknown options warn (not _local ones), naming the line.
        XCTAssertEqual(tab.warnings, ["/etc/nbdtab line 7: unknown option 'frobnicate' ignored"])
    }

    func testErrorsNameFileAndLine() {
        let table: [(String, String)] = [
            ("nbd0 host", "line 1: expected DEVICE HOST EXPORT"),
            ("\nnbd0 h e a b", "line 2: too many fields"),
            ("sda h e", "'sda' is not an nbd device"),
            ("nbd0 h e port=abc", "'port=abc' needs a number"),
            ("nbd0 h e port=0", "port=0"),
            ("nbd0 h e bs=1000", "bs=1000"),
            ("nbd0 h e persist=1", "'persist' is a flag"),
            ("nbd0 h e conns=0", "conns=0"),
            ("nbd0 h e tls", "TLS is not implemented"),
            ("nbd0 h e certfile=/c.pem", "TLS is not implemented"),
            ("nbd0 h e sdp", "sdp"),
            ("nbd0 /s e unix,port=1", "port= makes no sense with unix"),
        ]
        for (text, fragment) in table {
            do {
                let tab = try NBDTab.parse(text, path: "/etc/nbdtab")
                XCTFail("'\(text)' was accepted: \(tab)")
            } catch {
                XCTAssertTrue(error.message.contains(fragment), "'\(text)': '\(error.message)' lacks '\(fragment)'")
                XCTAssertTrue(error.message.hasPrefix("/etc/nbdtab line "), "'\(text)': '\(error.message)'")
            }
        }
    }

    func testCommandLineOnTop() throws {
        let entry = try XCTUnwrap(try NBDTab.parse(sample).entry(for: NBDDevice(index: 1)))
        guard case .connectFromTab(_, let cl, let given) = try parseArguments(["nbd1", "-t", "7", "-R", "-systemd-mark"]).command else {
            return XCTFail()
        }
        let o = entry.merged(with: cl, connectionsGiven: given)
        XCTAssertEqual(o.timeout, 7)          // the command line's value wins
        XCTAssertEqual(o.connections, 2)      // -C not given: the entry's conns=
        XCTAssertTrue(o.readOnly && o.swap && o.persist)
        XCTAssertEqual(o.exportName, "swap")
        guard case .connectFromTab(_, let cl2, let given2) = try parseArguments(["nbd1", "-C", "1", "-N", "other"]).command else {
            return XCTFail()
        }
        let o2 = entry.merged(with: cl2, connectionsGiven: given2)
        XCTAssertEqual(o2.connections, 1)
        XCTAssertEqual(o2.exportName, "other")
    }
}
