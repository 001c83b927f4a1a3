// Declarations for the static init (mount, modules, network, reboot). Owned by the init.
//
// Thin wrappers, one system call each, for what Swift cannot do directly:
// struct ifreq/rtentry/sockaddr_ll are unions of unions, syscall(2) is
// variadic, and several constants are enums in glibc but macros in musl.
#ifndef NBDBOOT_SHIM_INIT_H
#define NBDBOOT_SHIM_INIT_H

#include <dirent.h>
#include <time.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <net/if.h>
#include <net/route.h>
#include <net/ethernet.h>
#include <netpacket/packet.h>
#include <sys/swap.h>
#include <linux/loop.h>
#include <sys/random.h>

static const unsigned long shim_MS_MOVE = MS_MOVE;
static const unsigned long shim_MS_RDONLY = MS_RDONLY;
static const unsigned long shim_MS_NOSUID = MS_NOSUID;
static const unsigned long shim_MS_NODEV = MS_NODEV;
static const unsigned long shim_MS_NOEXEC = MS_NOEXEC;
static const unsigned long shim_MS_REMOUNT = MS_REMOUNT;
static const int shim_MNT_DETACH = MNT_DETACH;
static const int shim_RB_AUTOBOOT = RB_AUTOBOOT;
static const int shim_RB_POWER_OFF = RB_POWER_OFF;
static const int shim_RB_HALT_SYSTEM = RB_HALT_SYSTEM;
/// LINUX_REBOOT_CMD_KEXEC: boot the kernel systemd loaded with kexec_load.
static const int shim_RB_KEXEC = 0x45584543;
static const int shim_AF_PACKET = AF_PACKET;
/// BLKRRPART (<linux/fs.h>, which clashes with the libc headers): re-read the partition table.
static const unsigned long shim_BLKRRPART = 0x125f; /* _IO(0x12, 95) */

/// BLKGETSIZE64: a block device's size in bytes (_IOR(0x12, 114, size_t)).
static inline int shim_block_size_bytes(int fd, unsigned long long *out) {
    uint64_t n = 0;
    if (ioctl(fd, 0x80081272UL, &n) != 0) return -1;
    *out = n;
    return 0;
}

/// swapon(2) / swapoff(2).
static inline int shim_swapon(const char *path) { return swapon(path, 0); }
static inline int shim_swapoff(const char *path) { return swapoff(path); }

/// Attaches `backing_fd` to a free loop device (loop(4)): LOOP_CTL_GET_FREE
/// on /dev/loop-control, then LOOP_CONFIGURE (Linux 5.8), or LOOP_SET_FD
/// plus LOOP_SET_STATUS64 on older kernels. `partscan` sets
/// LO_FLAGS_PARTSCAN so /dev/loopNpM appear. Returns N, or -1 with errno.
static inline int shim_loop_attach(int backing_fd, int partscan) {
    int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0) return -1;
    int n = ioctl(ctl, LOOP_CTL_GET_FREE);
    int e = errno;
    close(ctl);
    if (n < 0) { errno = e; return -1; }
    char path[32];
    snprintf(path, sizeof path, "/dev/loop%d", n);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return -1;
    struct loop_config c;
    memset(&c, 0, sizeof c);
    c.fd = (uint32_t)backing_fd;
    c.info.lo_flags = partscan ? LO_FLAGS_PARTSCAN : 0;
    if (ioctl(fd, LOOP_CONFIGURE, &c) != 0) {
        if (errno != EINVAL && errno != ENOTTY) { e = errno; close(fd); errno = e; return -1; }
        if (ioctl(fd, LOOP_SET_FD, backing_fd) != 0) { e = errno; close(fd); errno = e; return -1; }
        struct loop_info64 info;
        memset(&info, 0, sizeof info);
        info.lo_flags = partscan ? LO_FLAGS_PARTSCAN : 0;
        if (ioctl(fd, LOOP_SET_STATUS64, &info) != 0) {
            e = errno; ioctl(fd, LOOP_CLR_FD, 0); close(fd); errno = e; return -1;
        }
    }
    close(fd);
    return n;
}

/// finit_module(2): load the module in `fd` with `params` ("" for none).
static inline int shim_finit_module(int fd, const char *params) {
    return (int)syscall(SYS_finit_module, fd, params, 0);
}

/// Mode bits of a stat result.
static inline int shim_is_dir(mode_t m) { return S_ISDIR(m); }

/// statfs(2) f_type of `path` (RAMFS_MAGIC 0x858458f6, TMPFS_MAGIC 0x01021994), or -1.
static inline long shim_statfs_type(const char *path) {
    struct statfs s;
    if (statfs(path, &s) != 0) return -1;
    return (long)s.f_type;
}

/// SIOCGIFFLAGS then SIOCSIFFLAGS with IFF_UP added (netdevice(7)).
static inline int shim_if_up(int sock, const char *name) {
    struct ifreq r;
    memset(&r, 0, sizeof r);
    strncpy(r.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(sock, SIOCGIFFLAGS, &r) != 0) return -1;
    r.ifr_flags |= IFF_UP;
    return ioctl(sock, SIOCSIFFLAGS, &r);
}

/// SIOCGIFHWADDR: the interface's 6-byte Ethernet address into `out`.
static inline int shim_if_hwaddr(int sock, const char *name, unsigned char *out) {
    struct ifreq r;
    memset(&r, 0, sizeof r);
    strncpy(r.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(sock, SIOCGIFHWADDR, &r) != 0) return -1;
    memcpy(out, r.ifr_hwaddr.sa_data, 6);
    return 0;
}

/// SIOCSIFADDR (request 0) or SIOCSIFNETMASK (request 1) with an IPv4
/// address given in host order.
static inline int shim_if_set_ipv4(int sock, const char *name, int which, uint32_t addr) {
    struct ifreq r;
    memset(&r, 0, sizeof r);
    strncpy(r.ifr_name, name, IFNAMSIZ - 1);
    struct sockaddr_in *sin = (struct sockaddr_in *)&r.ifr_addr;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(addr);
    return ioctl(sock, which == 0 ? SIOCSIFADDR : SIOCSIFNETMASK, &r);
}

/// SIOCADDRT: the default route (0.0.0.0/0) via `gateway` (host order) on `dev`.
static inline int shim_add_default_route(int sock, uint32_t gateway, const char *dev) {
    struct rtentry rt;
    memset(&rt, 0, sizeof rt);
    struct sockaddr_in *dst = (struct sockaddr_in *)&rt.rt_dst;
    struct sockaddr_in *gw = (struct sockaddr_in *)&rt.rt_gateway;
    struct sockaddr_in *mask = (struct sockaddr_in *)&rt.rt_genmask;
    dst->sin_family = AF_INET;
    mask->sin_family = AF_INET;
    gw->sin_family = AF_INET;
    gw->sin_addr.s_addr = htonl(gateway);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    rt.rt_dev = (char *)dev;
    return ioctl(sock, SIOCADDRT, &rt);
}

/// An AF_PACKET SOCK_DGRAM socket for IPv4 (ETH_P_IP) bound to `ifindex`:
/// it sends and receives IP packets, the kernel adds the Ethernet header
/// (packet(7)).
static inline int shim_packet_socket(int ifindex) {
    int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_IP));
    if (fd < 0) return -1;
    struct sockaddr_ll a;
    memset(&a, 0, sizeof a);
    a.sll_family = AF_PACKET;
    a.sll_protocol = htons(ETH_P_IP);
    a.sll_ifindex = ifindex;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) { int e = errno; close(fd); errno = e; return -1; }
    return fd;
}

/// Sends an IP packet to the Ethernet broadcast address ff:ff:ff:ff:ff:ff.
static inline long shim_packet_send_broadcast(int fd, int ifindex, const void *buf, size_t len) {
    struct sockaddr_ll a;
    memset(&a, 0, sizeof a);
    a.sll_family = AF_PACKET;
    a.sll_protocol = htons(ETH_P_IP);
    a.sll_ifindex = ifindex;
    a.sll_halen = 6;
    memset(a.sll_addr, 0xff, 6);
    return (long)sendto(fd, buf, len, 0, (struct sockaddr *)&a, sizeof a);
}

/// NETLINK_ROUTE, for rtnetlink (RTM_NEWADDR, RTM_NEWROUTE).
static const int shim_NETLINK_ROUTE = NETLINK_ROUTE;

/// A UDP socket connected to `addr` (4 bytes for AF_INET, 16 for AF_INET6,
/// network order) port `port`, so that it only receives that peer's
/// datagrams. Returns the fd, or -1 with errno.
static inline int shim_udp_connect(int family, const unsigned char *addr, int port) {
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        memcpy(&a->sin6_addr, addr, 16);
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        memcpy(&a->sin_addr, addr, 4);
        len = sizeof *a;
    }
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) { int e = errno; close(fd); errno = e; return -1; }
    return fd;
}

/// 16 random bits that never wait for the kernel's RNG: early in boot a
/// read of /dev/urandom first tries to gather entropy (over a second under
/// QEMU's TCG). getrandom(GRND_INSECURE) (Linux 5.6), else GRND_NONBLOCK,
/// else the clock's nanoseconds. For DNS query IDs, not for keys.
static inline unsigned shim_random16(void) {
    unsigned short v;
    if (getrandom(&v, sizeof v, GRND_INSECURE) == (ssize_t)sizeof v) return v;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v) return v;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (unsigned)((t.tv_nsec ^ (t.tv_nsec >> 16) ^ t.tv_sec) & 0xffff);
}

/// clock_gettime(CLOCK_MONOTONIC) in milliseconds (about the time since the kernel started).
static inline long long shim_monotonic_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/// Sleeps `ms` milliseconds (nanosleep, restarted after signals).
static inline void shim_sleep_ms(long ms) {
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000 };
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {}
}

/// The kernel release (uname -r) into `out`.
static inline int shim_uname_release(char *out, size_t len) {
    struct utsname u;
    if (uname(&u) != 0) return -1;
    strncpy(out, u.release, len - 1);
    out[len - 1] = 0;
    return 0;
}

/// The name of a directory entry (d_name is an array Swift sees as a tuple).
static inline const char *shim_dirent_name(struct dirent *d) { return d->d_name; }

/// The process environment (environ).
extern char **environ;
static inline char **shim_environ(void) { return environ; }

#endif
