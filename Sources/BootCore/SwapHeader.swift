// The swap area header that mkswap(8) writes, so the init can prepare a
// fresh nbdswap= export without util-linux: `union swap_header` of the
// kernel's include/linux/swap.h, version 1, in the CPU's byte order
// (little-endian on x86-64 and arm64), one page long:
//   0     bootbits[1024]     left zero
//   1024  version   u32      1
//   1028  last_page u32      pages - 1 (the last usable page)
//   1032  nr_badpages u32    0
//   1036  uuid[16]
//   1052  volume_name[16]
//   ...   padding, badpages  zero
//   PAGE-10  "SWAPSPACE2"
// The kernel's swapon(2) reads exactly this (mm/swapfile.c
// read_swap_header): the magic, version 1, last_page, nr_badpages.

/// Swap areas need at least this many pages (mkswap's minimum).
public let minimumSwapPages = 10

/// Why a device cannot hold a swap area.
public struct SwapHeaderError: Error, Equatable, Sendable {
    public var description: String
}

/// The first page of a swap area on a device of `size` bytes, or an error
/// when the device is too small. `uuid` must be 16 bytes; `label` at most 16.
public func makeSwapHeader(size: UInt64, pageSize: Int = 4096, uuid: [UInt8], label: String = "") throws(SwapHeaderError) -> [UInt8] {
    let pages = size / UInt64(pageSize)
    guard pages >= UInt64(minimumSwapPages) else {
        throw SwapHeaderError(description: "\(size) bytes is too small for swap: at least \(minimumSwapPages) pages of \(pageSize) bytes are needed")
    }
    guard pages - 1 <= UInt64(UInt32.max) else {
        throw SwapHeaderError(description: "\(size) bytes is more pages than a version 1 swap header can count")
    }
    var page = [UInt8](repeating: 0, count: pageSize)
    func put32(_ v: UInt32, _ o: Int) {
        page[o] = UInt8(v & 0xFF); page[o + 1] = UInt8(v >> 8 & 0xFF)
        page[o + 2] = UInt8(v >> 16 & 0xFF); page[o + 3] = UInt8(v >> 24)
    }
    put32(1, 1024)
    put32(UInt32(pages - 1), 1028)
    put32(0, 1032)
    for (i, b) in uuid.prefix(16).enumerated() { page[1036 + i] = b }
    for (i, b) in Array(label.utf8).prefix(16).enumerated() { page[1052 + i] = b }
    for (i, b) in Array("SWAPSPACE2".utf8).enumerated() { page[pageSize - 10 + i] = b }
    return page
}

/// Makes 16 random bytes a version 4 UUID (RFC 4122 4.4).
public func version4UUID(_ random: [UInt8]) -> [UInt8] {
    var u = Array(random.prefix(16))
    while u.count < 16 { u.append(0) }
    u[6] = u[6] & 0x0F | 0x40
    u[8] = u[8] & 0x3F | 0x80
    return u
}
