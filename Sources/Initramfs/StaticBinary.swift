// Is an executable statically linked? An initramfs without a C library can run
// only static binaries: a dynamic one names its loader in a PT_INTERP program
// header (ELF spec, "Program Header": p_type 3), and the kernel's execve fails with
// ENOENT when that loader is missing. Pure: reads the ELF header and program headers.

public enum StaticBinary {
    /// What the bytes are.
    public enum Kind: Equatable { case staticELF, dynamicELF(interpreter: String), notELF }

    /// Classifies `bytes` by their ELF header (32- or 64-bit, either byte order).
    public static func kind(_ b: [UInt8]) -> Kind {
        guard b.count >= 52, b[0] == 0x7f, b[1] == 0x45, b[2] == 0x4c, b[3] == 0x46 else { return .notELF }
        let is64 = b[4] == 2, little = b[5] == 1
        func read(_ at: Int, _ size: Int) -> Int? {
            guard at >= 0, at + size <= b.count else { return nil }
            var v = 0
            for i in 0..<size { v |= Int(b[at + (little ? i : size - 1 - i)]) << (8 * i) }
            return v
        }
        let phoff = is64 ? read(0x20, 8) : read(0x1c, 4)
        let phentsize = read(is64 ? 0x36 : 0x2a, 2), phnum = read(is64 ? 0x38 : 0x2c, 2)
        guard let off = phoff, let size = phentsize, let count = phnum, size > 0 else { return .notELF }
        for i in 0..<count {
            let ph = off + i * size
            guard let type = read(ph, 4) else { return .notELF }
            if type == 3 {  // PT_INTERP
                let o = is64 ? read(ph + 8, 8) : read(ph + 4, 4)
                let n = is64 ? read(ph + 32, 8) : read(ph + 16, 4)
                var name = ""
                if let o, let n, o + n <= b.count { name = String(decoding: b[o..<o + n].prefix { $0 != 0 }, as: UTF8.self) }
                return .dynamicELF(interpreter: name)
            }
        }
        return .staticELF
    }
}
