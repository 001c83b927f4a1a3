// Module sets for kinds of stations ("profiles"), resolved against a kernel's
// module index so that a class of hardware ("every Ethernet driver") becomes a
// list of names. `--add-module` adds to the profile's set.

/// A module set for a kind of station.
public enum Profile: String, CaseIterable, Sendable {
    /// A QEMU station: virtio-net-pci NIC, root on NBD (ext4, and the init's other root modes).
    case qemuVirtio = "qemu-virtio"
    /// A PC with any wired NIC: every driver under kernel/drivers/net/ethernet plus qemu-virtio's set.
    case genericNIC = "generic-nic"

    /// What the station's init needs whatever the hardware:
    /// - `nbd`: the block device; `ext4` and `crypto-crc32c` (ext4's metadata checksums: its
    ///   softdep, listed explicitly so a kernel without modules.softdep still gets it);
    /// - `overlay` (`nbdboot.overlay=tmpfs`), `squashfs` (squashfs root images) and `loop`
    ///   (`nbdboot.toram`: the image copied to RAM is mounted through a loop device).
    public static let rootModules = ["nbd", "ext4", "crypto-crc32c", "overlay", "squashfs", "loop"]

    /// The virtio transport and NIC of QEMU's virtio-net-pci.
    public static let virtioModules = ["virtio_pci", "virtio_net"]

    /// Directory (relative to lib/modules/VER) whose modules `generic-nic` adds.
    public static let ethernetDirectory = "kernel/drivers/net/ethernet/"

    /// The module names to resolve for this profile, in request order. `generic-nic` lists
    /// every module of modules.dep under kernel/drivers/net/ethernet, sorted by name.
    public func modules(index: ModuleIndex) -> [String] {
        let base = Profile.virtioModules + Profile.rootModules
        switch self {
        case .qemuVirtio: return base
        case .genericNIC:
            let nics = index.dependencies.filter { $0.value.path.hasPrefix(Profile.ethernetDirectory) }.keys.sorted()
            return base + nics
        }
    }

    /// Module parameters, as Debian's nbd-client package sets them in
    /// /etc/modprobe.d/nbd-client.conf ("options nbd max_part=15").
    public static let defaultOptions = ["nbd": "max_part=15"]
}
