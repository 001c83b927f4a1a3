import XCTest
@testable import BootCore

final class KernelCommandLineTests: XCTestCase {
    func testTokenizeTable() {
        let table: [(String, [String])] = [
            ("", []),
            ("  \n", []),
            ("console=ttyS0 ro\n", ["console=ttyS0", "ro"]),
            ("a  b\tc", ["a", "b", "c"]),
            ("rootflags=\"data=journal,noatime\" quiet", ["rootflags=data=journal,noatime", "quiet"]),
            ("x=\"a b\" y", ["x=a b", "y"]),
            ("\"quoted=whole word\"", ["quoted=whole word"]),
            ("empty=\"\"", ["empty="]),
            ("a=\"\" b", ["a=", "b"]),
        ]
        for (text, want) in table {
            XCTAssertEqual(tokenizeKernelCommandLine(text), want, "tokenizing \(text)")
        }
    }

    func testKeysValuesAndFlags() {
        let c = KernelCommandLine("BOOT_IMAGE=/vmlinuz ip=dhcp ro nbdroot=a/b nbdroot=c/d init= rw x=y=z -- single --x\n")
        XCTAssertEqual(c.value("nbdroot"), "c/d", "the last value wins")
        XCTAssertEqual(c.value("init"), "")
        XCTAssertEqual(c.value("x"), "y=z", "only the first = splits")
        XCTAssertNil(c.value("ro"), "a bare flag has no value")
        XCTAssertNil(c.value("missing"))
        XCTAssertTrue(c.contains("ro"))
        XCTAssertFalse(c.contains("single"), "words after -- belong to init")
        XCTAssertEqual(c.lastFlag(of: ["ro", "rw"]), "rw")
        XCTAssertEqual(c.initArguments, ["single", "--x"])
    }

    func testDecimal() {
        XCTAssertEqual(parseDecimal("10809", max: 65535), 10809)
        XCTAssertNil(parseDecimal("65536", max: 65535))
        XCTAssertNil(parseDecimal("", max: 10))
        XCTAssertNil(parseDecimal("+1", max: 10))
        XCTAssertNil(parseDecimal("1 ", max: 10))
        XCTAssertEqual(parseDecimal("9223372036854775807", max: Int.max), Int.max)
        XCTAssertNil(parseDecimal("9223372036854775808", max: Int.max), "no overflow trap in PID 1")
        XCTAssertNil(parseDecimal("99999999999999999999999", max: 1 << 60))
        XCTAssertEqual(splitFields("a::b", ":"), ["a", "", "b"])
        XCTAssertEqual(splitFields("", ":"), [""])
    }
}
