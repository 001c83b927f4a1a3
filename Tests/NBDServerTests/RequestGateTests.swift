// The request gate from a table: each row is a request and the expected NBD error.
import NBDWire
import XCTest

@testable import NBDServer

final class RequestGateTests: XCTestCase {
    let rw = GateExport(name: "rw", size: 1 << 20, readOnly: false)
    let ro = GateExport(name: "ro", size: 1 << 20, readOnly: true)

    func testTable() {
        let size: UInt64 = 1 << 20
        let served = BlockSizes.servedPayload
        let rows: [(String, Request, GateExport, NBDErrno)] = [
            ("read inside", Request(command: .read, cookie: 1, offset: 0, length: 4096), rw, .ok),
            ("read up to the end", Request(command: .read, cookie: 1, offset: size - 1, length: 1), rw, .ok),
            ("read zero length", Request(command: .read, cookie: 1, offset: size, length: 0), rw, .ok),
            ("read past the end", Request(command: .read, cookie: 1, offset: size - 1, length: 2), rw, .inval),
            ("read offset overflow", Request(command: .read, cookie: 1, offset: UInt64.max, length: 2), rw, .inval),
            ("read on readonly", Request(command: .read, cookie: 1, offset: 0, length: 512), ro, .ok),
            ("read with FUA is ignored", Request(command: .read, flags: .fua, cookie: 1, offset: 0, length: 512), rw, .ok),
            ("read above served payload", Request(command: .read, cookie: 1, offset: 0, length: served + 1), GateExport(name: "big", size: 1 << 40, readOnly: false), .inval),
            ("read 48 MiB is served", Request(command: .read, cookie: 1, offset: 0, length: 48 << 20), GateExport(name: "big", size: 1 << 40, readOnly: false), .ok),
            ("write inside", Request(command: .write, cookie: 1, offset: 512, length: 512), rw, .ok),
            ("write FUA", Request(command: .write, flags: .fua, cookie: 1, offset: 0, length: 512), rw, .ok),
            ("write past the end", Request(command: .write, cookie: 1, offset: size, length: 1), rw, .nospc),
            ("write on readonly", Request(command: .write, cookie: 1, offset: 0, length: 512), ro, .perm),
            ("write on readonly past the end", Request(command: .write, cookie: 1, offset: size, length: 512), ro, .perm),
            ("write above served payload", Request(command: .write, cookie: 1, offset: 0, length: served + 1), rw, .inval),
            ("trim inside", Request(command: .trim, cookie: 1, offset: 0, length: 65536), rw, .ok),
            ("trim past the end", Request(command: .trim, cookie: 1, offset: 4096, length: UInt32(size)), rw, .inval),
            ("trim on readonly", Request(command: .trim, cookie: 1, offset: 0, length: 4096), ro, .perm),
            ("flush", Request(command: .flush, cookie: 1), rw, .ok),
            ("flush on readonly", Request(command: .flush, cookie: 1), ro, .ok),
            ("flush with a range", Request(command: .flush, cookie: 1, offset: 0, length: 512), rw, .inval),
            ("write zeroes", Request(command: .writeZeroes, cookie: 1, offset: 0, length: 512), rw, .ok),
            ("write zeroes all flags", Request(command: .writeZeroes, flags: [.fua, .noHole, .fastZero], cookie: 1, offset: 0, length: 512), rw, .ok),
            ("write zeroes whole export, above max payload", Request(command: .writeZeroes, cookie: 1, offset: 0, length: UInt32.max), GateExport(name: "big", size: 1 << 40, readOnly: false), .ok),
            ("write zeroes past the end", Request(command: .writeZeroes, cookie: 1, offset: size - 1, length: 2), rw, .nospc),
            ("write zeroes on readonly", Request(command: .writeZeroes, cookie: 1, offset: 0, length: 512), ro, .perm),
            ("write zeroes DF", Request(command: .writeZeroes, flags: .df, cookie: 1, offset: 0, length: 512), rw, .inval),
            ("write zeroes REQ_ONE", Request(command: .writeZeroes, flags: .reqOne, cookie: 1, offset: 0, length: 512), rw, .inval),
            ("NO_HOLE on WRITE", Request(command: .write, flags: .noHole, cookie: 1, offset: 0, length: 512), rw, .inval),
            ("FAST_ZERO on TRIM", Request(command: .trim, flags: .fastZero, cookie: 1, offset: 0, length: 512), rw, .inval),
            ("block status not negotiated", Request(command: .blockStatus, cookie: 1, offset: 0, length: 512), rw, .inval),
            ("cache", Request(command: .cache, cookie: 1, offset: 0, length: 512), rw, .ok),
            ("cache on readonly", Request(command: .cache, flags: .fua, cookie: 1, offset: 0, length: 512), ro, .ok),
            ("cache past the end", Request(command: .cache, cookie: 1, offset: size, length: 1), rw, .inval),
            ("cache NO_HOLE", Request(command: .cache, flags: .noHole, cookie: 1, offset: 0, length: 512), rw, .inval),
            ("unknown command", Request(command: Command(0x77), cookie: 1), rw, .inval),
            ("DF without structured replies", Request(command: .read, flags: .df, cookie: 1, offset: 0, length: 512), rw, .inval),
            ("REQ_ONE on READ", Request(command: .read, flags: .reqOne, cookie: 1, offset: 0, length: 512), rw, .inval),
            ("unknown flag", Request(command: .write, flags: CommandFlags(rawValue: 0x8000), cookie: 1, offset: 0, length: 512), rw, .inval),
        ]
        for (what, request, export, expected) in rows {
            let got = RequestGate.check(request, on: export)
            XCTAssertEqual(got?.error ?? .ok, expected, "\(what): \(got?.reason ?? "accepted")")
            if let got { XCTAssertFalse(got.reason.isEmpty, what) }
        }
    }

    func testStructuredSessionRows() {
        let structured = Session(structuredReplies: true)
        let allocation = Session(structuredReplies: true, allocationContext: 1)
        let size: UInt64 = 1 << 20
        let rows: [(String, Request, GateExport, Session, NBDErrno)] = [
            ("DF with structured replies", Request(command: .read, flags: .df, cookie: 1, offset: 0, length: 65536), rw, structured, .ok),
            ("DF on WRITE", Request(command: .write, flags: .df, cookie: 1, offset: 0, length: 512), rw, structured, .inval),
            ("block status without a context", Request(command: .blockStatus, cookie: 1, offset: 0, length: 512), rw, structured, .inval),
            ("block status", Request(command: .blockStatus, cookie: 1, offset: 0, length: 512), rw, allocation, .ok),
            ("block status on read-only", Request(command: .blockStatus, cookie: 1, offset: 0, length: 512), ro, allocation, .ok),
            ("block status REQ_ONE", Request(command: .blockStatus, flags: [.reqOne, .fua], cookie: 1, offset: 0, length: 512), rw, allocation, .ok),
            ("block status whole export", Request(command: .blockStatus, cookie: 1, offset: 0, length: UInt32(size)), rw, allocation, .ok),
            ("block status past the end", Request(command: .blockStatus, cookie: 1, offset: 4096, length: UInt32(size)), rw, allocation, .inval),
            ("block status length 0", Request(command: .blockStatus, cookie: 1, offset: 0, length: 0), rw, allocation, .inval),
            ("block status DF", Request(command: .blockStatus, flags: .df, cookie: 1, offset: 0, length: 512), rw, allocation, .inval),
            ("REQ_ONE on READ", Request(command: .read, flags: .reqOne, cookie: 1, offset: 0, length: 512), rw, allocation, .inval),
        ]
        for (what, request, export, session, expected) in rows {
            let got = RequestGate.check(request, on: export, session: session)
            XCTAssertEqual(got?.error ?? .ok, expected, "\(what): \(got?.reason ?? "accepted")")
        }
    }

    func testReasonsNameTheExportAndTheRange() {
        let r = RequestGate.check(Request(command: .read, cookie: 1, offset: 1 << 20, length: 512), on: rw)
        XCTAssertEqual(r?.reason, "READ: offset 1048576 + length 512 is beyond the end of export 'rw' (1048576 bytes)")
        XCTAssertEqual(RequestGate.check(Request(command: .write, cookie: 1, length: 1), on: ro)?.reason,
                       "WRITE: export 'ro' is read-only")
    }

    /// trim/flush/fua = false in a config file: what is not advertised is refused.
    func testCommandsTheExportDoesNotAdvertiseAreRefused() {
        let bare = GateExport(name: "bare", size: 1 << 20, readOnly: false, advertised: [])
        for (what, request) in [("FLUSH", Request(command: .flush, cookie: 1)),
                                ("TRIM", Request(command: .trim, cookie: 1, offset: 0, length: 512)),
                                ("WRITE_ZEROES", Request(command: .writeZeroes, cookie: 1, offset: 0, length: 512)),
                                ("WRITE+FUA", Request(command: .write, flags: .fua, cookie: 1, offset: 0, length: 1))] {
            let r = RequestGate.check(request, on: bare)
            XCTAssertEqual(r?.error, .inval, what)
            XCTAssertTrue(r?.reason.contains("export 'bare'") ?? false, "\(what): \(r?.reason ?? "accepted")")
        }
        XCTAssertNil(RequestGate.check(Request(command: .write, cookie: 1, offset: 0, length: 1), on: bare))
        XCTAssertNil(RequestGate.check(Request(command: .read, cookie: 1, offset: 0, length: 1), on: bare))
    }
}
