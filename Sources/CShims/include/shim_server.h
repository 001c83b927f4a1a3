// What nbdboot serve needs beyond the common shims: the file system type of
// an open file, and a read that refuses to wait for the device.
#ifndef NBDBOOT_SHIM_SERVER_H
#define NBDBOOT_SHIM_SERVER_H

#include <sys/vfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/// fstatfs(2) f_type of `fd` (TMPFS_MAGIC 0x01021994, RAMFS_MAGIC 0x858458f6), or -1.
static inline long shim_fstatfs_type(int fd) {
    struct statfs s;
    return fstatfs(fd, &s) == 0 ? (long)s.f_type : -1;
}

/// preadv2(fd, {buf, n}, off, RWF_NOWAIT) through syscall(2), since not every
/// libc has the wrapper: EAGAIN (or a short read) instead of waiting for the
/// device, EOPNOTSUPP where the file system cannot tell.
static inline long shim_pread_nowait(int fd, void *buf, size_t n, long long off) {
    struct iovec iov = { buf, n };
    return syscall(SYS_preadv2, fd, &iov, 1, (unsigned long)off,
                   (unsigned long)((unsigned long long)off >> 32), 0x00000008 /* RWF_NOWAIT */);
}

#endif
