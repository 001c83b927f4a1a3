// `nbdswap=`: swap over NBD, brought up by the init before switch_root.
// The value takes every server form of the root (Debian's nbdroot= forms,
// dracut's nbd:SRV:PORT|NAME[::::OPTS], an NBD URI; a host left empty or
// `dhcp` is the DHCP boot server). The device is the Debian comma form's
// third field (`HOST,NAME,nbd2`) or /dev/nbd1; it must differ from the
// root's. The client runs with -swap (mlockall, memalloc sockets) and
// -persist; a device without a swap signature gets one (SwapHeader.swift).

/// The parsed `nbdswap=` value.
public struct NBDSwap: Equatable, Sendable {
    public var server: NBDServerSpec
    /// The whole device to connect (never a partition).
    public var device: NBDDevice

    public init(server: NBDServerSpec, device: NBDDevice = NBDDevice(index: 1)) {
        self.server = server
        self.device = device
    }

    public static func parse(_ value: String, rootDevice: NBDDevice) throws(BootConfigError) -> NBDSwap {
        guard !value.isEmpty, value != "dhcp" else {
            throw BootConfigError(parameter: "nbdswap", value: value,
                                  problem: "names no server (the DHCP root-path is for the root, not for swap)",
                                  example: "nbdswap=10.0.2.2:10809/swap")
        }
        let v = try NBDServerValue.parse(value, parameter: "nbdswap")
        if v.fsType != nil || v.flags != nil {
            throw BootConfigError(parameter: "nbdswap", value: value,
                                  problem: "a swap device has no filesystem type or mount flags",
                                  example: "nbdswap=nbd:10.0.2.2:swap")
        }
        let swap = NBDSwap(server: v.server, device: v.device ?? NBDDevice(index: 1))
        guard swap.device.index != rootDevice.index else {
            throw BootConfigError(parameter: "nbdswap", value: value,
                                  problem: "uses \(swap.device.path), the root's device",
                                  example: "nbdswap=10.0.2.2,swap,nbd1")
        }
        return swap
    }
}
