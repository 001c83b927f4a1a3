// Step 3: load the kernel modules the generator listed in
// /etc/nbdboot/modules, in order, with finit_module(2) (as u-root's
// pkg/kmodule and booster's init/module.go do). EEXIST (already loaded or
// built in) is success; any other failure is logged and the boot goes on,
// because a later step names what is really missing. crc32c_intel fails
// with ENODEV on CPUs without SSE4.2: expected, so it is logged quietly.
#if canImport(CShims)
import CShims
#endif
#if canImport(BootCore)
import BootCore
#endif

let moduleListPath = "/etc/nbdboot/modules"
let kernelReleasePath = "/etc/nbdboot/kernel-release"

/// Loads every listed module; returns (loaded, failed) counts.
@discardableResult
func loadModules() -> (Int, Int) {
    checkKernelRelease()
    let text: String
    do { text = try readTextFile(moduleListPath) } catch {
        logWarning("no module list (\(error.description)): loading no modules")
        return (0, 0)
    }
    var loaded = 0, failed = 0
    for m in parseModuleList(text) {
        let fd = shim_open(m.path, O_RDONLY | O_CLOEXEC, 0)
        if fd < 0 {
            failed += 1
            logWarning("module \(m.name): cannot open \(m.path): \(Errno.current.description)")
            continue
        }
        let rc = shim_finit_module(fd, m.parameters)
        let e = Errno.current
        _ = close(fd)
        if rc == 0 {
            loaded += 1
            logDebug("loaded module \(m.name)\(m.parameters.isEmpty ? "" : " " + m.parameters)")
        } else if e == .exists {
            loaded += 1
            logDebug("module \(m.name) is already loaded")
        } else if e.rawValue == ENODEV {
            failed += 1
            logDebug("module \(m.name) (\(m.path)) does not apply to this machine: errno \(e.rawValue) (\(e.description))")
        } else {
            failed += 1
            logWarning("module \(m.name) (\(m.path)) failed: errno \(e.rawValue) (\(e.description))")
        }
    }
    log("loaded \(loaded) modules from \(moduleListPath)\(failed > 0 ? ", \(failed) not loaded" : "")")
    return (loaded, failed)
}

/// Warns when the image was built for another kernel than the running one.
func checkKernelRelease() {
    guard let want = try? readTextFile(kernelReleasePath) else { return }
    var buf = [CChar](repeating: 0, count: 256)
    guard shim_uname_release(&buf, buf.count) == 0 else { return }
    let running = String(cString: buf)
    let built = trimSpaces(want)
    if built != running {
        logWarning("the image's modules are for kernel \(built) but this kernel is \(running): they may not load; rebuild the initramfs for \(running)")
    }
}
