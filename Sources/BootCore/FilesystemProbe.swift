// What a block device holds, read from its first bytes: a small probe for
// the filesystems a root image uses, in place of libblkid (which links only
// with glibc and would triple the static init's size). It knows, as
// libblkid's superblocks/*.c do:
//   ext2/3/4  magic 0xEF53 (LE) at 1024+0x38; label 16 bytes at 1024+0x78,
//             UUID at 1024+0x68; ext3 = has_journal (compat 0x4), ext4 =
//             any of extents/64bit/flex_bg (incompat 0x40/0x80/0x200) or
//             huge_file/gdt_csum/dir_nlink/extra_isize/metadata_csum
//             (ro_compat 0x8/0x10/0x20/0x40/0x400)
//   squashfs  "hsqs" at 0 (no label, no UUID)
//   xfs       "XFSB" at 0; UUID at 32, label 12 bytes at 108
//   btrfs     "_BHRfS_M" at 65536+64; fsid (UUID) at 65536+32, label 256
//             bytes at 65536+299
//   swap      "SWAPSPACE2" (or the old "SWAP-SPACE") at PAGE-10; UUID at
//             1024+12, label 16 bytes at 1024+28
// Partition tables are not read here: the kernel does that (BLKRRPART) and
// each /dev/nbdNpM is probed on its own.

/// Bytes to read from the start of a device for `probeFilesystem`.
public let filesystemProbeLength = 65536 + 4096

/// A recognised filesystem (or swap area).
public struct FilesystemSignature: Equatable, Sendable {
    /// blkid's TYPE: ext2, ext3, ext4, squashfs, xfs, btrfs, swap.
    public var type: String
    /// "" when the filesystem has none.
    public var label: String
    /// 8-4-4-4-12 lowercase hex, "" when none.
    public var uuid: String

    public init(type: String, label: String = "", uuid: String = "") {
        self.type = type
        self.label = label
        self.uuid = uuid
    }

    /// Does `root=UUID=` text name this filesystem (case-insensitive)?
    public func matches(uuid text: String) -> Bool {
        !uuid.isEmpty && uuid == lowercaseASCII(text)
    }
}

/// Identifies the filesystem whose first bytes are `head` (at least
/// `filesystemProbeLength` bytes for btrfs; fewer are fine for the others),
/// or nil.
public func probeFilesystem(_ head: [UInt8], pageSize: Int = 4096) -> FilesystemSignature? {
    func has(_ magic: String, at offset: Int) -> Bool {
        let m = Array(magic.utf8)
        return head.count >= offset + m.count && Array(head[offset..<(offset + m.count)]) == m
    }
    func le32(_ o: Int) -> UInt32 {
        UInt32(head[o]) | UInt32(head[o + 1]) << 8 | UInt32(head[o + 2]) << 16 | UInt32(head[o + 3]) << 24
    }
    if head.count >= 1024 + 0x88, head[1080] == 0x53, head[1081] == 0xEF {
        let compat = le32(1024 + 0x5C), incompat = le32(1024 + 0x60), roCompat = le32(1024 + 0x64)
        var type = "ext2"
        if compat & 0x4 != 0 { type = "ext3" }
        if incompat & (0x40 | 0x80 | 0x200) != 0 || roCompat & (0x8 | 0x10 | 0x20 | 0x40 | 0x400) != 0 { type = "ext4" }
        return FilesystemSignature(type: type, label: cString(head, 1024 + 0x78, 16), uuid: uuidText(head, 1024 + 0x68))
    }
    if has("hsqs", at: 0) { return FilesystemSignature(type: "squashfs") }
    if has("XFSB", at: 0), head.count >= 120 {
        return FilesystemSignature(type: "xfs", label: cString(head, 108, 12), uuid: uuidText(head, 32))
    }
    if has("_BHRfS_M", at: 65536 + 64), head.count >= 65536 + 299 + 256 {
        return FilesystemSignature(type: "btrfs", label: cString(head, 65536 + 299, 256), uuid: uuidText(head, 65536 + 32))
    }
    if has("SWAPSPACE2", at: pageSize - 10) || has("SWAP-SPACE", at: pageSize - 10) {
        return FilesystemSignature(type: "swap", label: cString(head, 1024 + 28, 16), uuid: uuidText(head, 1024 + 12))
    }
    return nil
}

/// A NUL-padded text field.
func cString(_ b: [UInt8], _ offset: Int, _ length: Int) -> String {
    var field = Array(b[offset..<(offset + length)])
    if let nul = field.firstIndex(of: 0) { field = Array(field[..<nul]) }
    return String(decoding: field, as: UTF8.self)
}

/// 16 bytes as a UUID's text, or "" when all zero.
public func uuidText(_ b: [UInt8], _ offset: Int) -> String {
    let bytes = Array(b[offset..<(offset + 16)])
    if bytes.allSatisfy({ $0 == 0 }) { return "" }
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for (i, x) in bytes.enumerated() {
        if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
        out.append(digits[Int(x >> 4)])
        out.append(digits[Int(x & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// ASCII letters lowered, everything else kept.
public func lowercaseASCII(_ s: String) -> String {
    String(decoding: s.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
}
