// The early microcode archive: an UNCOMPRESSED newc archive placed before the
// (compressed) main archive, from which the x86 kernel loads CPU microcode before
// anything else runs (Documentation/arch/x86/microcode.rst, "Early load microcode";
// the kernel finds it with lib/earlycpio.c's find_cpio_data, which reads only
// uncompressed archives at the start of the initrd). Paths the kernel looks for:
//
//     kernel/x86/microcode/GenuineIntel.bin   Intel: update blocks, concatenated
//     kernel/x86/microcode/AuthenticAMD.bin   AMD: container files, concatenated
//
// The sources are laid out like /lib/firmware from Debian's intel-microcode and
// amd64-microcode packages: intel-ucode/FF-MM-SS (one file per CPU signature) and
// amd-ucode/microcode_amd*.bin; a directory may also hold GenuineIntel.bin or
// AuthenticAMD.bin ready made. Files are taken in name order, so the archive is
// reproducible. Debian's hooks build the same two files (iucode_tool for Intel,
// `cat amd-ucode/microcode_amd*.bin` for AMD) into an early archive.
import Foundation

public enum Microcode {
    /// Where the kernel looks for microcode in the early archive.
    public static let directory = "kernel/x86/microcode"
    /// The default source directory (/lib/firmware of the intel-microcode/amd64-microcode packages).
    public static let defaultSource = "/lib/firmware"
    /// GNU cpio (and so mkinitramfs's early archives) pads its output to 512-byte blocks.
    static let blockSize = 512

    /// The vendor files of `dir`: (name in the archive, the host files concatenated into it).
    /// Empty when `dir` holds no microcode.
    public static func sources(in dir: String) -> [(name: String, files: [String])] {
        let fm = FileManager.default
        func files(_ sub: String, _ keep: (String) -> Bool) -> [String] {
            let d = dir + "/" + sub
            let names = ((try? fm.contentsOfDirectory(atPath: d)) ?? []).filter(keep).sorted()
            return names.map { d + "/" + $0 }.filter { path in
                var isDir: ObjCBool = false
                return fm.fileExists(atPath: path, isDirectory: &isDir) && !isDir.boolValue
            }
        }
        var out: [(String, [String])] = []
        for (vendor, sub, keep) in [
            ("AuthenticAMD", "amd-ucode", { (n: String) in n.hasPrefix("microcode_amd") && n.hasSuffix(".bin") }),
            ("GenuineIntel", "intel-ucode", { (n: String) in !n.hasPrefix(".") && !n.hasSuffix(".asc") }),
        ] {
            let ready = dir + "/" + vendor + ".bin"
            if fm.fileExists(atPath: ready) { out.append((vendor + ".bin", [ready])); continue }
            let found = files(sub, keep)
            if !found.isEmpty { out.append((vendor + ".bin", found)) }
        }
        return out
    }

    /// The early archive for the microcode in `dir`, padded to 512 bytes.
    /// Fails, naming `dir` and the packages, when it holds no microcode.
    public static func earlyArchive(from dir: String, mtime: UInt32) throws -> (archive: [UInt8], files: [String]) {
        let found = sources(in: dir)
        if found.isEmpty {
            throw BuildError("--microcode: no CPU microcode in \(dir) (looked for \(dir)/intel-ucode/*, "
                + "\(dir)/amd-ucode/microcode_amd*.bin, \(dir)/GenuineIntel.bin, \(dir)/AuthenticAMD.bin); "
                + "install Debian's intel-microcode and/or amd64-microcode (non-free-firmware), or pass --microcode-dir DIR")
        }
        var map = FileMap()
        var listed: [String] = []
        for (name, files) in found {
            var data: [UInt8] = []
            for f in files {
                guard let d = FileManager.default.contents(atPath: f) else {
                    throw BuildError("--microcode: cannot read \(f)")
                }
                data += d
            }
            if data.isEmpty { throw BuildError("--microcode: \(files.joined(separator: ", ")) is empty") }
            try map.add(.file(directory + "/" + name, permissions: 0o644, data: data))
            listed.append(directory + "/" + name)
        }
        var archive = try CpioWriter.archive(map.reproducibleEntries(mtime: mtime))
        while archive.count % blockSize != 0 { archive.append(0) }
        return (archive, listed)
    }
}
