// Step 6b: leave the initramfs for the real root, as busybox switch_root
// (util-linux/switch_root.c) and systemd's switch_root do:
//   1. mount --move /dev /proc /sys /run into /newroot;
//   2. delete the initramfs's own files (it is a ramfs/tmpfs whose memory
//      is only freed that way), staying on the rootfs device so nothing
//      mounted (the new root) is touched;
//   3. chdir /newroot, mount --move . /, chroot ., chdir /;
//   4. execve the real init with the kernel's arguments.
#if canImport(CShims)
import CShims
#endif
#if canImport(BootCore)
import BootCore
#endif

let ramfsMagic: Int = 0x8584_58f6
let tmpfsMagic: Int = 0x0102_1994

/// Switches to /newroot and executes `initPath` there. Returns only by throwing.
func switchRoot(initPath: String, arguments: [String], description: String) throws(InitFailure) -> Never {
    var initStat = stat()
    guard lstat("/newroot" + initPath, &initStat) == 0 else {
        throw InitFailure("the root filesystem has no \(initPath): \(Errno.current.description)",
                          hint: "is this export a system image? Use init= to name another program")
    }
    for dir in ["/dev", "/proc", "/sys", "/run"] {
        let target = "/newroot" + dir
        if !pathExists(target) {
            do { try makeDirectory(target) } catch {
                logWarning("cannot create \(target) (\(error.description)): \(dir) stays behind")
                continue
            }
        }
        do { try mountFilesystem(dir, on: target, type: nil, flags: shim_MS_MOVE) } catch {
            logWarning("cannot move \(dir) to \(target): \(error.description)")
        }
    }
    let type = shim_statfs_type("/")
    var rootStat = stat()
    if (type == ramfsMagic || type == tmpfsMagic) && lstat("/", &rootStat) == 0 {
        deleteTree("/", device: rootStat.st_dev)
    } else {
        logWarning("/ is not an initramfs (statfs type \(type)): not deleting its files")
    }
    guard chdir("/newroot") == 0 else { throw InitFailure("chdir /newroot", SysError("chdir", Errno.current)) }
    do { try mountFilesystem(".", on: "/", type: nil, flags: shim_MS_MOVE) } catch {
        throw InitFailure("cannot move /newroot to / (mount --move)", error)
    }
    guard chroot(".") == 0 else { throw InitFailure("chroot into the new root", SysError("chroot", Errno.current)) }
    _ = chdir("/")
    log("switching to \(initPath) on \(description)")
    let argv = cStringArray([initPath] + arguments)
    let envp = cStringArray(childEnvironment())
    _ = execve(initPath, argv, envp)
    throw InitFailure("cannot execute \(initPath) in the new root", SysError("execve", Errno.current, initPath),
                      hint: "the initramfs is already gone: check init= and the root image")
}

/// Deletes `path` and everything below it that lives on `device`; entries
/// on other devices (mount points) are left alone, and so is `/` itself.
func deleteTree(_ path: String, device: dev_t) {
    var st = stat()
    guard lstat(path, &st) == 0, st.st_dev == device else { return }
    if shim_is_dir(st.st_mode) != 0 {
        for name in listDirectory(path) {
            deleteTree(path == "/" ? "/" + name : path + "/" + name, device: device)
        }
        if path != "/" { _ = rmdir(path) }
    } else {
        _ = unlink(path)
    }
}
