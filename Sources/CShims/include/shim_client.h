// Declarations for the static nbd-client (netlink, nbd ioctls). Owned by the client.
#ifndef NBDBOOT_SHIM_CLIENT_H
#define NBDBOOT_SHIM_CLIENT_H
#endif
