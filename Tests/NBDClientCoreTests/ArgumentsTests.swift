// The command-line parser against real nbd-client 3.24 command lines
// (Debian's initramfs script, the man page, the 3.27 additions) and against
// the mistakes a user makes, each of which must name the input at fault.
import XCTest
@testable import NBDClientCore
import NBDWire

final class ArgumentsTests: XCTestCase {
    func words(_ line: String) -> [String] { line.split(separator: " ").map(String.init) }

    func connect(_ line: String, file: StaticString = #filePath, line l: UInt = #line) -> (ConnectOptions, Bool)? {
        do {
            let inv = try parseArguments(words(line))
            guard case .connect(let o) = inv.command else {
                XCTFail("'\(line)' parsed as \(inv.command), not a connect", file: file, line: l)
                return nil
            }
            return (o, inv.systemdMark)
        } catch {
            XCTFail("'\(line)' was refused: \(error.message)", file: file, line: l)
            return nil
        }
    }

    func testPlainConnect() throws {
        let (o, mark) = try XCTUnwrap(connect("10.0.2.2 10809 /dev/nbd0 -N root"))
        XCTAssertEqual(o.server, .tcp(host: "10.0.2.2", port: 10809))
        XCTAssertEqual(o.device, NBDDevice(index: 0))
        XCTAssertEqual(o.exportName, "root")
        XCTAssertTrue(o.exportNameGiven)
        XCTAssertNil(o.blockSize)
        XCTAssertEqual(o.connections, 1)
        XCTAssertFalse(o.persist || o.swap || o.noNetlink || o.readOnly || o.noOptGo || o.noFork || mark)
        XCTAssertEqual(o.backendIdentifier, "10.0.2.2:10809/root")
    }

    /// Debian's local-top script: options after and between positionals.
    func testDebianInitramfsLine() throws {
        let (o, mark) = try XCTUnwrap(connect("10.0.2.2 -N myvm 10810 /dev/nbd0 -swap -persist -systemd-mark"))
        XCTAssertEqual(o.server, .tcp(host: "10.0.2.2", port: 10810))
        XCTAssertEqual(o.exportName, "myvm")
        XCTAssertTrue(o.swap && o.persist && mark)
    }

    /// What nbdboot's static init runs.
    func testStationInitLine() throws {
        let (o, mark) = try XCTUnwrap(connect("10.0.2.2 10809 /dev/nbd0 -N station -systemd-mark -persist"))
        XCTAssertEqual(o.exportName, "station")
        XCTAssertTrue(o.persist && mark)
    }

    func testPortDefaultsAndDeviceForms() throws {
        var (o, _) = try XCTUnwrap(connect("server /dev/nbd1 -name x"))
        XCTAssertEqual(o.server, .tcp(host: "server", port: Limits.defaultPort))
        XCTAssertEqual(o.device.index, 1)
        (o, _) = try XCTUnwrap(connect("--name x server nbd3"))
        XCTAssertEqual(o.device.path, "/dev/nbd3")
        XCTAssertEqual(o.exportName, "x")
        (o, _) = try XCTUnwrap(connect("-name=e h /dev/nbd12"))
        XCTAssertEqual(o.exportName, "e")
        XCTAssertEqual(o.device.name, "nbd12")
        (o, _) = try XCTUnwrap(connect("--name=e h /dev/nbd0"))
        XCTAssertEqual(o.exportName, "e")
    }

    func testIPv6Literal() throws {
        let (o, _) = try XCTUnwrap(connect("-N x ::1 /dev/nbd0"))
        XCTAssertEqual(o.server, .tcp(host: "::1", port: 10809))
        XCTAssertEqual(o.server.text, "[::1]:10809")
        XCTAssertEqual(o.backendIdentifier, "[::1]:10809/x")
    }

    func testEveryValueOption() throws {
        let (o, _) = try XCTUnwrap(connect("-t 30 -b 4096 -R -g -L -n -C 2 -i myid -T 60 -B 8192 h 1234 /dev/nbd0 -N e"))
        XCTAssertEqual(o.timeout, 30)
        XCTAssertEqual(o.blockSize, 4096)
        XCTAssertTrue(o.readOnly && o.noOptGo && o.noNetlink && o.noFork)
        XCTAssertEqual(o.connections, 2)
        XCTAssertEqual(o.identifier, "myid")
        XCTAssertEqual(o.backendIdentifier, "myid")
        XCTAssertEqual(o.deadTimeout, 60)
        XCTAssertEqual(o.sizeOverride, 8192)
        XCTAssertEqual(o.server, .tcp(host: "h", port: 1234))
    }

    func testLongFormsWithOneAndTwoDashes() throws {
        let (o, mark) = try XCTUnwrap(connect("-timeout 5 --block-size 1024 -readonly --no-optgo -nonetlink --nofork -connections 3 --identifier z -dead-timeout 9 -swap --persist --systemd-mark h /dev/nbd0 -N e"))
        XCTAssertEqual(o.timeout, 5)
        XCTAssertEqual(o.blockSize, 1024)
        XCTAssertTrue(o.readOnly && o.noOptGo && o.noNetlink && o.noFork && o.swap && o.persist && mark)
        XCTAssertEqual(o.connections, 3)
        XCTAssertEqual(o.identifier, "z")
        XCTAssertEqual(o.deadTimeout, 9)
    }

    func testOldStyleSettings() throws {
        let (o, _) = try XCTUnwrap(connect("h /dev/nbd0 bs=1024 timeout=5 -N e"))
        XCTAssertEqual(o.blockSize, 1024)
        XCTAssertEqual(o.timeout, 5)
    }

    func testPrefixesAndClusters() throws {
        var (o, _) = try XCTUnwrap(connect("-pers h /dev/nbd0"))
        XCTAssertTrue(o.persist)
        (o, _) = try XCTUnwrap(connect("-RN e h /dev/nbd0"))
        XCTAssertTrue(o.readOnly)
        XCTAssertEqual(o.exportName, "e")
        (o, _) = try XCTUnwrap(connect("-Nexp h /dev/nbd0"))
        XCTAssertEqual(o.exportName, "exp")
        (o, _) = try XCTUnwrap(connect("-N e -- h /dev/nbd0"))
        XCTAssertEqual(o.server, .tcp(host: "h", port: 10809))
    }

    func testUnixSocket() throws {
        let (o, _) = try XCTUnwrap(connect("-u /run/nbd.sock /dev/nbd0 -N e"))
        XCTAssertEqual(o.server, .unix(path: "/run/nbd.sock"))
        XCTAssertEqual(o.backendIdentifier, "/run/nbd.sock/e")
    }

    func testPreinitWithSize() throws {
        let (o, _) = try XCTUnwrap(connect("-P -B 1048576 h /dev/nbd0"))
        XCTAssertTrue(o.preinit)
        XCTAssertEqual(o.sizeOverride, 1_048_576)
    }

    func testOtherCommands() throws {
        let table: [(String, ClientCommand, Bool)] = [
            ("-d /dev/nbd0", .disconnect(device: NBDDevice(index: 0), noNetlink: false), false),
            ("-disconnect nbd2", .disconnect(device: NBDDevice(index: 2), noNetlink: false), false),
            ("-L -d /dev/nbd1", .disconnect(device: NBDDevice(index: 1), noNetlink: true), false),
            ("-systemd-mark -d /dev/nbd0", .disconnect(device: NBDDevice(index: 0), noNetlink: false), true),
            ("-c /dev/nbd0", .check(device: NBDDevice(index: 0)), false),
            ("--check nbd7", .check(device: NBDDevice(index: 7)), false),
            ("-l h", .list(server: .tcp(host: "h", port: 10809)), false),
            ("-l 10.0.0.1 2000", .list(server: .tcp(host: "10.0.0.1", port: 2000)), false),
            ("--list -u /run/s", .list(server: .unix(path: "/run/s")), false),
            ("-h", .help, false),
            ("--help", .help, false),
            ("-help", .help, false),
            ("-V", .version, false),
        ]
        for (line, want, mark) in table {
            do {
                let inv = try parseArguments(words(line))
                XCTAssertEqual(inv.command, want, line)
                XCTAssertEqual(inv.systemdMark, mark, line)
            } catch {
                XCTFail("'\(line)' was refused: \(error.message)")
            }
        }
    }

    /// Each bad command line fails, and the message names what is wrong.
    func testErrorsNameTheInput() {
        let table: [(String, String)] = [
            ("", "no server given"),
            ("-foo h /dev/nbd0", "'-foo'"),
            ("--frobnicate", "'--frobnicate'"),
            ("h", "no nbd device given after 'h'"),
            ("h /dev/sda", "'/dev/sda' is not an nbd device"),
            ("h 99999 /dev/nbd0", "port '99999'"),
            ("h 0 /dev/nbd0", "port '0'"),
            ("h /dev/nbd0 -N", "'-N' needs a value"),
            ("-b 1000 h /dev/nbd0", "block size '1000'"),
            ("-no h /dev/nbd0", "'-no' is ambiguous"),
            ("--p h /dev/nbd0", "'--p' is ambiguous"),
            ("h 1 /dev/nbd0 extra", "'extra'"),
            ("-t abc h /dev/nbd0", "'abc'"),
            ("-certfile c.pem h /dev/nbd0", "TLS is not implemented"),
            ("-x h /dev/nbd0", "TLS is not implemented"),
            ("-P h /dev/nbd0", "-B BYTES"),
            ("-u /run/s 10 /dev/nbd0", "'/run/s'"),
            ("-u nbd0", "no nbd device given"),
            ("nbd://h/x 10809 /dev/nbd0", "put the port in the URI"),
            ("-u nbd+unix:///x?socket=/s /dev/nbd0", "both say where the server is"),
            ("nbd://h/x /dev/nbd0 -N y", "disagree"),
            ("nbds://h/x /dev/nbd0", "TLS"),
            ("-l h /dev/nbd0", "'/dev/nbd0'"),
            ("-C 0 h /dev/nbd0", "'0'"),
            ("--persist=1 h /dev/nbd0", "'--persist=1' does not take a value"),
            ("-d /dev/loop0", "'/dev/loop0' is not an nbd device"),
            ("-c", "'-c' needs a value"),
            ("h /dev/nbd0 bogus=1", "'bogus=1'"),
            ("-b 512 -B 1000 h /dev/nbd0", "not a multiple"),
        ]
        for (line, fragment) in table {
            do {
                let inv = try parseArguments(words(line))
                XCTFail("'\(line)' was accepted as \(inv.command)")
            } catch {
                XCTAssertTrue(error.message.contains(fragment), "'\(line)': message '\(error.message)' lacks '\(fragment)'")
            }
        }
    }

    /// nbd-client nbdN: the nbdtab form, with the command line's options kept.
    func testNBDTabForm() throws {
        let inv = try parseArguments(words("nbd1 -persist -t 5 -systemd-mark"))
        guard case .connectFromTab(let d, let o, let given) = inv.command else { return XCTFail("\(inv.command)") }
        XCTAssertEqual(d, NBDDevice(index: 1))
        XCTAssertTrue(o.persist)
        XCTAssertEqual(o.timeout, 5)
        XCTAssertFalse(given)
        XCTAssertTrue(inv.systemdMark)
        guard case .connectFromTab(let d2, _, let given2) = try parseArguments(words("/dev/nbd3 -C 2")).command else { return XCTFail() }
        XCTAssertEqual(d2.index, 3)
        XCTAssertTrue(given2)
    }

    /// A URI in place of HOST [PORT] (and the export name).
    func testURIForms() throws {
        let (o, _) = try XCTUnwrap(connect("nbd://srv:10900/root /dev/nbd0 -persist"))
        XCTAssertEqual(o.server, .tcp(host: "srv", port: 10900))
        XCTAssertEqual(o.exportName, "root")
        XCTAssertTrue(o.exportNameGiven)
        XCTAssertTrue(o.persist)
        let (u, _) = try XCTUnwrap(connect("nbd+unix:///swap?socket=/run/nbd.sock /dev/nbd1 -swap"))
        XCTAssertEqual(u.server, .unix(path: "/run/nbd.sock"))
        XCTAssertEqual(u.exportName, "swap")
        let (v6, _) = try XCTUnwrap(connect("nbd://[fd00::1]/x /dev/nbd0 -N x"))
        XCTAssertEqual(v6.server, .tcp(host: "fd00::1", port: 10809))
        XCTAssertEqual(v6.backendIdentifier, "[fd00::1]:10809/x")
        guard case .list(let server) = try parseArguments(words("-l nbd://h:1234")).command else { return XCTFail() }
        XCTAssertEqual(server, .tcp(host: "h", port: 1234))
    }

    func testHelpListsEveryOption() {
        for spec in optionTable {
            XCTAssertTrue(helpText.contains("-" + spec.long), "help lacks -\(spec.long)")
            if let s = spec.short, !"FKAHxy".contains(s) {
                XCTAssertTrue(helpText.contains("-\(s),"), "help lacks -\(s)")
            }
        }
    }
}
