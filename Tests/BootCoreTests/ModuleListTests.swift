import XCTest
@testable import BootCore

final class ModuleListTests: XCTestCase {
    func testParse() {
        let text = """
            # built by nbdboot initramfs
            lib/modules/6.1.0-56-amd64/kernel/drivers/virtio/virtio_ring.ko

              lib/modules/6.1.0-56-amd64/kernel/drivers/block/nbd.ko max_part=15 nbds_max=4\r
            /lib/modules/x/crc32c-intel.ko
            """
        XCTAssertEqual(parseModuleList(text), [
            ModuleEntry(path: "/lib/modules/6.1.0-56-amd64/kernel/drivers/virtio/virtio_ring.ko"),
            ModuleEntry(path: "/lib/modules/6.1.0-56-amd64/kernel/drivers/block/nbd.ko", parameters: "max_part=15 nbds_max=4"),
            ModuleEntry(path: "/lib/modules/x/crc32c-intel.ko"),
        ])
        XCTAssertEqual(ModuleEntry(path: "/a/b/nbd.ko").name, "nbd")
        XCTAssertEqual(ModuleEntry(path: "/a/b/ext4.ko.zst").name, "ext4")
        XCTAssertEqual(parseModuleList(""), [])
    }
}
