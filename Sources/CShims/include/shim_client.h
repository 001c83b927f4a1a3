// Declarations for the static nbd-client (netlink, nbd ioctls). Owned by the client.
//
// The kernel's uapi headers reach musl through `-isystem inc/linux` (see
// scripts/build-static.sh). <linux/fs.h> is NOT included (it clashes with
// <sys/mount.h> in glibc 2.36): BLKROSET is spelled out below.
#ifndef NBDBOOT_SHIM_CLIENT_H
#define NBDBOOT_SHIM_CLIENT_H

#include <linux/netlink.h>
#include <linux/genetlink.h>
#include <linux/nbd.h>
#include <sys/mman.h>
#include <stddef.h>

// Netlink sockets: socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC), and
// setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group) to join a multicast group.
static const int shim_AF_NETLINK = AF_NETLINK;
static const int shim_NETLINK_GENERIC = NETLINK_GENERIC;
#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
static const int shim_SOL_NETLINK = SOL_NETLINK;
static const int shim_NETLINK_ADD_MEMBERSHIP = NETLINK_ADD_MEMBERSHIP;
static const int shim_MSG_TRUNC = MSG_TRUNC;
static const int shim_SOL_SOCKET = SOL_SOCKET;
static const int shim_SO_RCVTIMEO = SO_RCVTIMEO;
static const int shim_SO_RCVBUF = SO_RCVBUF;

// bind(2) of a netlink socket with a zeroed sockaddr_nl (the kernel picks the port id).
static inline int shim_netlink_bind(int fd) {
    struct sockaddr_nl sa;
    memset(&sa, 0, sizeof sa);
    sa.nl_family = AF_NETLINK;
    return bind(fd, (struct sockaddr *)&sa, sizeof sa);
}

// setsockopt(SO_RCVTIMEO) with whole seconds.
static inline int shim_set_receive_timeout(int fd, int seconds) {
    struct timeval tv = { .tv_sec = seconds, .tv_usec = 0 };
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

// setsockopt(SO_SNDTIMEO) with whole seconds; on Linux it also bounds connect(2).
static inline int shim_set_send_timeout(int fd, int seconds) {
    struct timeval tv = { .tv_sec = seconds, .tv_usec = 0 };
    return setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// TCP_NODELAY on a TCP socket (the NBD spec asks for it; harmless elsewhere).
static inline int shim_tcp_nodelay(int fd) {
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Fills *ss with a sockaddr_un for `path`; returns its length, or -1 when
// the path does not fit sun_path. Built once, so a reconnect copies nothing.
static inline int shim_sockaddr_unix(struct sockaddr_storage *ss, const char *path) {
    struct sockaddr_un *sun = (struct sockaddr_un *)ss;
    size_t n = strlen(path);
    memset(ss, 0, sizeof *ss);
    if (n >= sizeof sun->sun_path) return -1;
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n);
    return (int)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

// connect(2) to a prebuilt address, retried on EINTR.
static inline int shim_connect_storage(int fd, const struct sockaddr_storage *ss, int len) {
    int r;
    do { r = connect(fd, (const struct sockaddr *)ss, (socklen_t)len); } while (r < 0 && errno == EINTR);
    return r;
}

// Touches `kib` KiB of stack below the caller, so that with mlockall those
// pages are present and locked before the reconnect path may need them.
static __attribute__((noinline)) void shim_prefault_stack(int kib) {
    volatile char page[4096];
    page[0] = 0;
    if (kib > 4) shim_prefault_stack(kib - 4);
    page[4095] = page[0];
}

// linux/nbd.h ioctls (_IO(0xab, nr)): function-like macros Swift cannot import.
static const unsigned long shim_NBD_SET_SOCK = NBD_SET_SOCK;
static const unsigned long shim_NBD_SET_BLKSIZE = NBD_SET_BLKSIZE;
static const unsigned long shim_NBD_SET_SIZE = NBD_SET_SIZE;
static const unsigned long shim_NBD_DO_IT = NBD_DO_IT;
static const unsigned long shim_NBD_CLEAR_SOCK = NBD_CLEAR_SOCK;
static const unsigned long shim_NBD_SET_SIZE_BLOCKS = NBD_SET_SIZE_BLOCKS;
static const unsigned long shim_NBD_DISCONNECT = NBD_DISCONNECT;
static const unsigned long shim_NBD_SET_TIMEOUT = NBD_SET_TIMEOUT;
static const unsigned long shim_NBD_SET_FLAGS = NBD_SET_FLAGS;
// BLKROSET = _IO(0x12, 93) from <linux/fs.h>; its argument points to an int.
static const unsigned long shim_BLKROSET = 0x125d;

// mlockall(2) flags for -swap.
static const int shim_MCL_CURRENT = MCL_CURRENT;
static const int shim_MCL_FUTURE = MCL_FUTURE;

#endif
