import XCTest
@testable import Initramfs

/// A miniature of Debian 6.1's module tables (same shapes: modules.dep lists a module's
/// dependencies so that loading them last-to-first works; softdep through an alias that
/// two modules provide; globs in modules.alias; built-ins).
enum FakeModules {
    static let dep = """
        kernel/drivers/virtio/virtio_ring.ko:
        kernel/drivers/virtio/virtio.ko:
        kernel/drivers/virtio/virtio_pci_modern_dev.ko:
        kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
        kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
        kernel/net/core/failover.ko:
        kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
        kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
        kernel/drivers/block/nbd.ko:
        kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
        kernel/fs/jbd2/jbd2.ko:
        kernel/fs/mbcache.ko:
        kernel/lib/crc16.ko:
        kernel/crypto/crc32c_generic.ko:
        kernel/arch/x86/crypto/crc32c-intel.ko:
        kernel/fs/overlayfs/overlay.ko:
        kernel/fs/squashfs/squashfs.ko:
        kernel/drivers/block/loop.ko:
        kernel/drivers/ptp/ptp.ko: kernel/drivers/pps/pps_core.ko
        kernel/drivers/pps/pps_core.ko:
        kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko: kernel/drivers/ptp/ptp.ko kernel/drivers/pps/pps_core.ko
        kernel/drivers/net/ethernet/intel/e1000/e1000.ko:
        kernel/drivers/net/ethernet/realtek/r8169.ko:
        kernel/test/loop_a.ko: kernel/test/loop_b.ko
        kernel/test/loop_b.ko: kernel/test/loop_a.ko
        kernel/test/broken.ko: kernel/test/absent.ko

        """
    static let softdep = """
        # Soft dependencies extracted from modules themselves.
        softdep ext4 pre: crypto-crc32c
        softdep jbd2 pre: crypto-crc32c
        softdep nbd post: no-such-helper

        """
    static let alias = """
        # Aliases extracted from modules themselves.
        alias crypto-crc32c-intel crc32c_intel
        alias crypto-crc32c crc32c_intel
        alias crypto-crc32c crc32c_generic
        alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
        alias virtio:d00000001v* virtio_net
        alias fs-ext4 ext4
        alias crypto-crc32 crc32_builtin_alias_target

        """
    static let builtin = """
        kernel/lib/crc32.ko
        kernel/net/unix/unix.ko

        """

    static var index: ModuleIndex {
        var i = ModuleIndex()
        i.parseDep(dep); i.parseSoftdep(softdep); i.parseAlias(alias); i.parseBuiltin(builtin)
        return i
    }

    static var resolver: ModuleResolver {
        ModuleResolver(index: index, release: "6.1.0-test", options: Profile.defaultOptions)
    }
}

final class ModuleResolverTests: XCTestCase {
    func names(_ requests: [String]) throws -> [String] {
        try FakeModules.resolver.resolve(requests).modules.map(\.name)
    }

    func testStationSetInLoadOrder() throws {
        // modprobe --show-depends order (dependencies last-to-first as modules.dep lists them,
        // softdep "pre" before hard dependencies), with crc32c_generic ahead of crc32c_intel.
        XCTAssertEqual(try names(Profile.qemuVirtio.modules(index: FakeModules.index)), [
            "virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
            "failover", "net_failover", "virtio_net", "nbd",
            "crc32c_generic", "crc32c_intel", "jbd2", "mbcache", "crc16", "ext4",
            "overlay", "squashfs", "loop",
        ])
    }

    func testGenericNICAddsEveryEthernetDriver() throws {
        let requested = Profile.genericNIC.modules(index: FakeModules.index)
        XCTAssertEqual(Array(requested.dropFirst(Profile.qemuVirtio.modules(index: FakeModules.index).count)),
                       ["e1000", "e1000e", "r8169"], "every module under kernel/drivers/net/ethernet, by name")
        let loaded = try names(requested)
        XCTAssertEqual(Array(loaded.suffix(5)), ["e1000", "pps_core", "ptp", "e1000e", "r8169"], "with their dependencies first")
        XCTAssertTrue(loaded.starts(with: try names(Profile.qemuVirtio.modules(index: FakeModules.index))))
    }

    func testEveryDependencyBeforeItsUser() throws {
        let r = try FakeModules.resolver.resolve(Profile.qemuVirtio.modules(index: FakeModules.index))
        let position = Dictionary(uniqueKeysWithValues: r.modules.enumerated().map { ($1.name, $0) })
        let index = FakeModules.index
        for m in r.modules {
            for d in index.dependencies[m.name]!.deps {
                XCTAssertLessThan(position[ModuleIndex.moduleName(d)]!, position[m.name]!, "\(d) before \(m.name)")
            }
        }
        XCTAssertLessThan(position["crc32c_generic"]!, position["jbd2"]!, "softdep pre before its user")
    }

    func testPathsAndOptions() throws {
        let r = try FakeModules.resolver.resolve(["nbd", "crc32c-intel"])
        XCTAssertEqual(r.modules, [
            ResolvedModule(name: "nbd", path: "kernel/drivers/block/nbd.ko", options: "max_part=15"),
            ResolvedModule(name: "crc32c_intel", path: "kernel/arch/x86/crypto/crc32c-intel.ko", options: ""),
        ])
        XCTAssertEqual(r.warnings, ["softdep no-such-helper of nbd not found; skipped"])
    }

    func testDashAndUnderscoreAreTheSame() throws {
        XCTAssertEqual(try names(["virtio-pci-modern-dev"]), ["virtio_pci_modern_dev"])
        XCTAssertEqual(ModuleIndex.moduleName("kernel/arch/x86/crypto/crc32c-intel.ko.xz"), "crc32c_intel")
        XCTAssertEqual(ModuleIndex.normalizeAlias("pci:v-[a-c]-x"), "pci:v_[a-c]_x")
    }

    func testAliases() throws {
        XCTAssertEqual(try names(["fs-ext4"]).last, "ext4")
        XCTAssertEqual(try names(["crypto-crc32c"]), ["crc32c_generic", "crc32c_intel"])
        XCTAssertEqual(try names(["pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"]).last, "virtio_pci")
        XCTAssertEqual(try names(["virtio:d00000001v00001AF4"]).last, "virtio_net")
    }

    func testBuiltinIsSatisfiedWithoutFiles() throws {
        let r = try FakeModules.resolver.resolve(["crc32", "unix", "nbd"])
        XCTAssertEqual(r.builtin, ["crc32", "unix"])
        XCTAssertEqual(r.modules.map(\.name), ["nbd"])
    }

    func testBuiltinAliasFromModinfo() throws {
        var index = FakeModules.index
        index.parseBuiltinModinfo(Array("crc32c.alias=crypto-crc32c-builtin\0crc32c.license=GPL\0".utf8))
        let r = try ModuleResolver(index: index, release: "t").resolve(["crypto-crc32c-builtin"])
        XCTAssertEqual(r.builtin, ["crypto_crc32c_builtin"])
        XCTAssertTrue(r.modules.isEmpty)
    }

    func testMissingModuleIsNamed() {
        XCTAssertThrowsError(try FakeModules.resolver.resolve(["nbd", "no_such_module"])) { error in
            XCTAssertEqual(error as? ModuleError, .notFound("no_such_module", requiredBy: [], release: "6.1.0-test"))
            XCTAssertTrue("\(error)".contains("no_such_module"))
            XCTAssertTrue("\(error)".contains("6.1.0-test"))
        }
        // An alias whose module is neither loadable nor built in.
        XCTAssertThrowsError(try FakeModules.resolver.resolve(["crypto-crc32"]))
    }

    func testMissingDependencyAndCycle() {
        XCTAssertThrowsError(try FakeModules.resolver.resolve(["broken"])) { error in
            XCTAssertEqual(error as? ModuleError,
                           .missingDependency(module: "broken", dependency: "kernel/test/absent.ko", release: "6.1.0-test"))
        }
        XCTAssertThrowsError(try FakeModules.resolver.resolve(["loop_a"])) { error in
            XCTAssertEqual(error as? ModuleError, .cycle(["loop_a", "loop_b", "loop_a"]))
        }
    }

    func testGlob() {
        XCTAssertTrue(Glob.match("a*c", "abbbc"))
        XCTAssertTrue(Glob.match("a?c", "abc"))
        XCTAssertFalse(Glob.match("a?c", "ac"))
        XCTAssertTrue(Glob.match("x[0-9]y", "x5y"))
        XCTAssertFalse(Glob.match("x[!0-9]y", "x5y"))
        XCTAssertTrue(Glob.match("*", ""))
        XCTAssertFalse(Glob.match("abc", "abd"))
        XCTAssertFalse(Glob.match("a[bc", "ab"), "unterminated set matches literally only")
    }
}
