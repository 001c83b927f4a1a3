// C declarations for the Swift syscall layer (Sources/LinuxSys).
//
// The same header serves SwiftPM (glibc, as the CShims module) and the static
// Embedded Swift build (musl, as the bridging header, see scripts/build-static.sh).
// It exists for what Swift cannot call directly:
//   - variadic functions (ioctl, fcntl, open with a mode, prctl): wrapped;
//   - errno, a macro: a function;
//   - constants that glibc declares as enums and musl as macros: one int each.
// Topic headers (shim_netlink.h, shim_init.h, ...) hold the rest; this file
// includes them all so both builds see one umbrella.
#ifndef NBDBOOT_SHIM_H
#define NBDBOOT_SHIM_H

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>
#include <stdlib.h>
#include <stdio.h>
#include <signal.h>
#include <poll.h>
#include <netdb.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

static inline int shim_errno(void) { return errno; }
static inline void shim_set_errno(int e) { errno = e; }

static inline int shim_ioctl(int fd, unsigned long req, unsigned long arg) { return ioctl(fd, req, arg); }
static inline int shim_ioctl_ptr(int fd, unsigned long req, void *arg) { return ioctl(fd, req, arg); }
static inline int shim_open(const char *path, int flags, int mode) { return open(path, flags, (mode_t)mode); }
static inline int shim_fcntl(int fd, int cmd, long arg) { return fcntl(fd, cmd, arg); }
static inline int shim_prctl(int option, unsigned long a2) { return prctl(option, a2, 0, 0, 0); }

// Socket constants: enums in glibc, macros in musl.
static const int shim_AF_INET = AF_INET;
static const int shim_AF_INET6 = AF_INET6;
static const int shim_AF_UNIX = AF_UNIX;
static const int shim_AF_UNSPEC = AF_UNSPEC;
static const int shim_SOCK_STREAM = SOCK_STREAM;
static const int shim_SOCK_DGRAM = SOCK_DGRAM;
static const int shim_SOCK_RAW = SOCK_RAW;
static const int shim_SOCK_CLOEXEC = SOCK_CLOEXEC;
static const int shim_IPPROTO_TCP = IPPROTO_TCP;
static const int shim_IPPROTO_UDP = IPPROTO_UDP;
static const int shim_MSG_NOSIGNAL = MSG_NOSIGNAL;
static const int shim_SHUT_RDWR = SHUT_RDWR;

#include "shim_client.h"
#include "shim_init.h"
#include "shim_server.h"

#endif
