// nbd-server's configuration format: what each key sets, the FILE:LINE
// messages for bad input, includedir, authfile, and how the file combines
// with the command line. Files come from a dictionary (ConfigSource).
import XCTest

@testable import NBDServer

final class ConfigFileTests: XCTestCase {
    /// A ConfigSource over `files`; a directory lists the names under "DIR/".
    func source(_ files: [String: String]) -> ConfigSource {
        ConfigSource(
            read: { path in files[path].map { .success($0) } ?? .failure(ConfigError("No such file or directory")) },
            listConf: { dir in
                let names = files.keys.filter { $0.hasPrefix(dir + "/") && $0.hasSuffix(".conf") }.map { String($0.dropFirst(dir.count + 1)) }
                return names.isEmpty && !files.keys.contains(dir) ? .failure(ConfigError("No such file or directory")) : .success(names)
            })
    }

    func load(_ text: String, _ extra: [String: String] = [:]) throws -> ConfigFile {
        try ConfigFile.load("/etc/nbd/config", from: source(extra.merging(["/etc/nbd/config": text]) { a, _ in a }))
    }

    func assertRefused(_ text: String, _ needles: [String], _ extra: [String: String] = [:], line: UInt = #line) {
        XCTAssertThrowsError(try load(text, extra), line: line) { error in
            let message = (error as! ConfigError).message
            for n in needles { XCTAssertTrue(message.contains(n), "missing '\(n)' in: \(message)", line: line) }
        }
    }

    func testNbdServerFileMaps() throws {
        let c = try load("""
            # a site's nbd-server file
            [generic]
                port = 20800
                listenaddr = 127.0.0.1, ::1
                allowlist = true
                max_connections = 50
                nbdboot_max_per_client = 4
                nbdboot_handshake_timeout = 2.5
                user = nbd
                group = nbd
            [root]
                exportname = /srv/root.img
                readonly = true
                trim = false
                flush = False
                fua = 0
                rotational = true
                maxconnections = 9
                filesize = 1M
                nbdboot_description = Debian\\s12 root
            [home]
            exportname=/srv/home.img
            """)
        XCTAssertEqual(c.generic.port, 20800)
        XCTAssertEqual(c.generic.listen(), [.tcp(host: "127.0.0.1", port: 20800), .tcp(host: "::1", port: 20800)])
        XCTAssertTrue(c.generic.listAllowed)
        XCTAssertEqual(c.generic.maxConnections, 50)
        XCTAssertEqual(c.generic.maxPerClient, 4)
        XCTAssertEqual(c.generic.handshakeTimeout, 2.5)
        XCTAssertEqual(c.generic.user, "nbd")
        XCTAssertEqual(c.exports.map { $0.name }, ["root", "home"])
        let root = c.exports[0]
        XCTAssertEqual(root.path, "/srv/root.img")
        XCTAssertTrue(root.readOnly)
        XCTAssertEqual(root.description, "Debian 12 root")
        XCTAssertFalse(root.policy.trim)
        XCTAssertFalse(root.policy.flush)
        XCTAssertFalse(root.policy.fua)
        XCTAssertTrue(root.policy.rotational)
        XCTAssertEqual(root.policy.maxConnections, 9)
        XCTAssertEqual(root.policy.fileSize, 1 << 20)
        XCTAssertEqual(c.exports[1], ExportSpec(name: "home", path: "/srv/home.img"))
        XCTAssertEqual(c.exportOrigins, ["/etc/nbd/config:11", "/etc/nbd/config:21"])
        XCTAssertEqual(c.warnings, [])
    }

    func testPolicyFlags() {
        var p = ExportPolicy()
        let all = Export.flags(readOnly: false)
        XCTAssertEqual(p.apply(to: all), all)
        p.trim = false
        p.flush = false
        p.fua = false
        p.rotational = true
        let f = p.apply(to: all)
        XCTAssertFalse(f.contains(.sendTrim) || f.contains(.sendWriteZeroes) || f.contains(.sendFastZero))
        XCTAssertFalse(f.contains(.sendFlush) || f.contains(.sendFUA))
        XCTAssertTrue(f.contains(.rotational) && f.contains(.canMultiConn) && f.contains(.hasFlags))
    }

    func testListenForms() {
        var g = GenericSettings()
        XCTAssertNil(g.listen())
        g.port = 7
        XCTAssertEqual(g.listen(), [.tcp(host: "0.0.0.0", port: 7)])
        g.unixSocket = "/run/nbd.sock"
        XCTAssertEqual(g.listen(), [.unix(path: "/run/nbd.sock")])
        g.dualListen = true
        XCTAssertEqual(g.listen(), [.unix(path: "/run/nbd.sock"), .tcp(host: "0.0.0.0", port: 7)])
    }

    func testIgnoredKeysWarnAndRefusedKeysFail() throws {
        let c = try load("""
            [generic]
            max_threads = 8
            oldstyle = false
            [root]
            exportname = /srv/root.img
            sync = true
            splice = false
            timeout = 30
            force_tls = false
            """)
        XCTAssertEqual(c.warnings.count, 3, "\(c.warnings)")
        XCTAssertTrue(c.warnings[0].hasPrefix("/etc/nbd/config:2: warning: max_threads is nbd-server's and is ignored"), c.warnings[0])
        XCTAssertTrue(c.warnings[1].hasPrefix("/etc/nbd/config:6: warning: sync"), c.warnings[1])
        XCTAssertTrue(c.warnings[2].hasPrefix("/etc/nbd/config:8: warning: timeout"), c.warnings[2])
        assertRefused("[generic]\noldstyle = true\n", ["/etc/nbd/config:2: oldstyle is not supported", "--oldstyle"])
        assertRefused("[a]\nexportname = /a\nprerun = /bin/check %s\n", ["/etc/nbd/config:3: prerun is not supported", "authfile"])
        assertRefused("[a]\nexportname = /a\nmultifile = true\n", [":3: multifile is not supported"])
        assertRefused("[generic]\nkeyfile = /k.pem\n", [":2: keyfile is not supported", "TLS"])
    }

    func testBadInputNamesFileLineAndFix() {
        assertRefused("[generic]\nport = 99999\n", ["/etc/nbd/config:2: port = '99999' is not a whole number from 1 to 65535", "port = 10809"])
        assertRefused("[generic]\nallowlist = yes please\n", [":2: allowlist = 'yes please' is not a boolean; write true or false"])
        assertRefused("[a]\nexportname = /a\nbogus = 1\n", [":3: unknown key 'bogus' in export [a]; known keys:", "exportname"])
        assertRefused("[generic]\nbogus = 1\n", [":2: unknown key 'bogus' in [generic]", "includedir"])
        assertRefused("port = 1\n", [":1: 'port' comes before any section"])
        assertRefused("[generic]\njust words\n", [":2: 'just words' is neither [SECTION] nor KEY = VALUE"])
        assertRefused("[a\n", [":1: '[a' opens a section"])
        assertRefused("[a]\nreadonly = true\n", ["/etc/nbd/config:1: export [a] has no exportname"])
        assertRefused("[a]\nexportname = /a\n[a]\nexportname = /b\n", [":3: export [a] is defined a second time (/etc/nbd/config:1)"])
        assertRefused("[a]\nexportname = /a\nexportname = /b\n", [":3: 'exportname' is set a second time in this section (first at line 2)"])
        assertRefused("[a]\nexportname = /srv/%s.img\n", [":2: exportname '/srv/%s.img' has %s"])
        assertRefused("[a]\nexportname = /a\nfilesize = lots\n", [":3: filesize = 'lots' is not a size", "512M"])
        assertRefused("[a]\nexportname = /a\nauthfile = /nope\n", [":3: authfile /nope: No such file or directory", "remove the key"])
        XCTAssertThrowsError(try ConfigFile.load("/missing", from: source([:]))) {
            XCTAssertEqual(($0 as! ConfigError).message, "/missing: cannot read the configuration file: No such file or directory; check the path given to --config")
        }
    }

    func testSizes() throws {
        func size(_ t: String) throws -> UInt64 { try ConfigValue(text: t, key: "nbdboot_size", location: "f:1").size() }
        XCTAssertEqual(try size("4096"), 4096)
        XCTAssertEqual(try size("512M"), 512 << 20)
        XCTAssertEqual(try size("2GiB"), 2 << 30)
        XCTAssertEqual(try size("1k"), 1024)
        for bad in ["", "0", "M", "-1", "1.5G", "99999999999T"] { XCTAssertThrowsError(try size(bad), bad) }
    }

    func testIncludeDirAndAuthfile() throws {
        let c = try load("[generic]\nincludedir = /etc/nbd/conf.d\n[main]\nexportname = /m\n", [
            "/etc/nbd/conf.d": "",
            "/etc/nbd/conf.d/20-b.conf": "[b]\nexportname = /b\n",
            "/etc/nbd/conf.d/10-a.conf": "# lab\n[a]\nexportname = /a\nauthfile = /etc/nbd/lab.allow\n",
            "/etc/nbd/lab.allow": "# the lab\n10.0.2.0/24\n\n::1 # loopback\n",
        ])
        XCTAssertEqual(c.exports.map { $0.name }, ["main", "a", "b"])
        XCTAssertEqual(c.exportOrigins, ["/etc/nbd/config:3", "/etc/nbd/conf.d/10-a.conf:2", "/etc/nbd/conf.d/20-b.conf:1"])
        let allow = try XCTUnwrap(c.exports[1].policy.allow)
        XCTAssertEqual(allow.ranges.map { $0.description }, ["10.0.2.0/24", "0:0:0:0:0:0:0:1"])
        XCTAssertNil(c.exports[2].policy.allow)
        assertRefused("[generic]\nincludedir = /etc/nbd/conf.d\n", ["/etc/nbd/conf.d/x.conf:1: [generic] is not allowed in an includedir file"],
                      ["/etc/nbd/conf.d/x.conf": "[generic]\n"])
        assertRefused("[generic]\nincludedir = /none\n", ["/etc/nbd/config:2: includedir /none: No such file or directory"])
        assertRefused("[a]\nexportname = /a\nauthfile = /bad.allow\n", ["/bad.allow:2: 'host.example' is not an IPv4/IPv6 address"],
                      ["/bad.allow": "10.0.0.1\nhost.example\n"])
    }

    func testComposeWithCommandLine() throws {
        let file = try load("[generic]\nport = 20800\n[root]\nexportname = /r\n")
        var cli = CommandLineSettings()
        cli.exports = [ExportSpec(name: "extra", path: "/e")]
        cli.maxPerClient = 3
        let a = try LoadedConfig.compose(file: file, commandLine: cli)
        XCTAssertEqual(a.config.exports.map { $0.name }, ["root", "extra"])
        XCTAssertEqual(a.config.listeners, [.tcp(host: "0.0.0.0", port: 20800)])
        XCTAssertEqual(a.config.limits.maxPerClient, 3)
        XCTAssertFalse(a.config.listAllowed, "a config file without allowlist = true refuses LIST, as nbd-server")
        cli.listen = [.unix(path: "/s")]
        XCTAssertEqual(try LoadedConfig.compose(file: file, commandLine: cli).config.listeners, [.unix(path: "/s")])
        XCTAssertTrue(try LoadedConfig.compose(file: nil, commandLine: cli).config.listAllowed)
        cli.exports = [ExportSpec(name: "root", path: "/other")]
        XCTAssertThrowsError(try LoadedConfig.compose(file: file, commandLine: cli)) {
            XCTAssertTrue(($0 as! ConfigError).message.contains("'root' is given twice"), "\($0)")
        }
        XCTAssertThrowsError(try LoadedConfig.compose(file: try load("[generic]\n"), commandLine: CommandLineSettings())) {
            XCTAssertTrue(($0 as! ConfigError).message.contains("defines no export"), "\($0)")
        }
    }

    func testPerStationKeys() throws {
        let c = try load("""
            [root]
            exportname = /srv/root.img
            copyonwrite = true
            cowdir = /srv/overlays
            [plain-cow]
            exportname = /srv/b.img
            copyonwrite = 1
            [swap]
            exportname = /srv/swap
            swap = true
            swapsize = 512M
            [plain]
            exportname = /srv/p.img
            copyonwrite = false
            """)
        XCTAssertEqual(c.exports.map { $0.perStation }, [.cow(overlays: "/srv/overlays"), .cow(overlays: "/srv/b.img.overlays"),
                                                         .swap(size: 512 << 20), nil])
        XCTAssertEqual(try LoadedConfig.compose(file: c, commandLine: CommandLineSettings()).config.exports.count, 4)
        assertRefused("[s]\nexportname = /srv/swap\nswap = true\n", ["/etc/nbd/config:1: export [s]: a swap export needs its size", "swapsize ="])
        assertRefused("[r]\nexportname = /r\ncopyonwrite = true\nreadonly = true\n", ["/etc/nbd/config:1: export [r]: a cow export takes every write"])
        assertRefused("[r]\nexportname = /r\ncopyonwrite = true\nfilesize = 1M\n", [":1: export [r]: filesize applies to plain exports"])
        assertRefused("[r]\nexportname = /r\ncopyonwrite = maybe\n", ["/etc/nbd/config:3: copyonwrite = maybe: write true or false"])
        XCTAssertThrowsError(try LoadedConfig.compose(file: try load("[a]\nexportname = /a\ncopyonwrite = true\n[b]\nexportname = /b\ncopyonwrite = true\ncowdir = /a.overlays\n"),
                                                      commandLine: CommandLineSettings())) {
            XCTAssertTrue(($0 as! ConfigError).message.contains("same directory"), "\($0)")
        }
    }
}
