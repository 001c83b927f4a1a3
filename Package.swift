// swift-tools-version:6.0
//
// nbdboot: diskless boot over NBD. The libraries here build for the host;
// the static station binaries (nbd-client, init) are built by `make static`
// from the Embedded-Swift-compatible modules (NBDWire, LinuxSys, NBDClientCore,
// BootCore) plus their own main files under Sources/Station*/, which SwiftPM
// does not build.
import PackageDescription

let package = Package(
    name: "nbdboot",
    products: [
        .executable(name: "nbdboot", targets: ["nbdboot"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Pure protocol: magics, flags, codecs, the client handshake. No I/O.
        .target(name: "NBDWire"),
        // C declarations the Swift syscall layer needs (variadic calls, errno, constants).
        .target(name: "CShims"),
        // Thin typed syscall layer shared by the host tools and the static binaries.
        .target(name: "LinuxSys", dependencies: ["CShims", "NBDWire"]),
        // The NBD server behind `nbdboot serve`.
        .target(name: "NBDServer", dependencies: ["NBDWire", "LinuxSys", "CShims"]),
        // newc cpio, module resolution, compression: `nbdboot initramfs`.
        .target(name: "Initramfs"),
        .executableTarget(name: "nbdboot", dependencies: [
            "NBDServer", "Initramfs",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Pure parts of the static nbd-client: command line, nbdtab, netlink messages.
        .target(name: "NBDClientCore", dependencies: ["NBDWire"]),
        // Pure parts of the static init: kernel command line, ip=, DHCP messages.
        .target(name: "BootCore"),
        .testTarget(name: "NBDWireTests", dependencies: ["NBDWire"]),
        .testTarget(name: "NBDServerTests", dependencies: ["NBDServer", "NBDWire", "LinuxSys"]),
        .testTarget(name: "InitramfsTests", dependencies: ["Initramfs"]),
        .testTarget(name: "NBDClientCoreTests", dependencies: ["NBDClientCore", "NBDWire"]),
        .testTarget(name: "BootCoreTests", dependencies: ["BootCore"]),
    ]
)
