import XCTest
@testable import BootCore

final class IPv4UDPTests: XCTestCase {
    func testChecksumVectors() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2; checksum is its complement.
        XCTAssertEqual(internetChecksum([0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]), 0x220D)
        // A well-known IPv4 header (192.168.0.1 -> 192.168.0.199, protocol 0x11 UDP): its checksum is b861.
        let header: [UInt8] = [0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
                               0xC0, 0xA8, 0x00, 0x01, 0xC0, 0xA8, 0x00, 0xC7]
        XCTAssertEqual(internetChecksum(header), 0xB861)
        var filled = header
        filled[10] = 0xB8; filled[11] = 0x61
        XCTAssertEqual(internetChecksum(filled), 0, "a header with its checksum sums to zero")
        XCTAssertEqual(internetChecksum([0xFF]), 0x00FF, "odd length pads with a zero byte")
        XCTAssertEqual(internetChecksum([]), 0xFFFF)
    }

    func testEncodeDHCPDiscoverPacket() {
        let payload = [UInt8](repeating: 0xAB, count: 300)
        let p = UDPDatagram(source: .any, destination: .broadcast, sourcePort: 68, destinationPort: 67, payload: payload).encode(identification: 0x1234)
        XCTAssertEqual(p.count, 328)
        XCTAssertEqual(Array(p[0..<10]), [0x45, 0x00, 0x01, 0x48, 0x12, 0x34, 0x00, 0x00, 64, 17])
        XCTAssertEqual(Array(p[12..<20]), [0, 0, 0, 0, 255, 255, 255, 255])
        XCTAssertEqual(internetChecksum(p[0..<20]), 0)
        XCTAssertEqual(Array(p[20..<26]), [0x00, 0x44, 0x00, 0x43, 0x01, 0x34])
        // UDP checksum: pseudo-header + UDP header + data sums to zero.
        var pseudo: [UInt8] = Array(p[12..<20]) + [0, 17, 0x01, 0x34]
        pseudo += Array(p[20...])
        XCTAssertEqual(internetChecksum(pseudo), 0)
    }

    func testDecodeRoundTripAndRejects() {
        let d = UDPDatagram(source: IPv4Address(10, 0, 2, 2), destination: .broadcast, sourcePort: 67, destinationPort: 68, payload: [1, 2, 3])
        var p = d.encode()
        XCTAssertEqual(UDPDatagram.decode(p), d)
        XCTAssertEqual(UDPDatagram.decode(p + [9, 9, 9]), d, "Ethernet padding after the packet is ignored")
        p[8] = 63  // TTL changed without fixing the checksum
        XCTAssertNil(UDPDatagram.decode(p), "bad header checksum")
        var tcp = d.encode()
        tcp[9] = 6
        tcp[10] = 0; tcp[11] = 0
        let c = internetChecksum(tcp[0..<20])
        tcp[10] = UInt8(c >> 8); tcp[11] = UInt8(c & 0xFF)
        XCTAssertNil(UDPDatagram.decode(tcp), "not UDP")
        XCTAssertNil(UDPDatagram.decode(Array(d.encode()[0..<25])), "truncated")
        var frag = d.encode()
        frag[6] = 0x20  // more fragments
        frag[10] = 0; frag[11] = 0
        let fc = internetChecksum(frag[0..<20])
        frag[10] = UInt8(fc >> 8); frag[11] = UInt8(fc & 0xFF)
        XCTAssertNil(UDPDatagram.decode(frag), "fragment")
    }
}
