// Declarations for the static init (mount, modules, network, reboot). Owned by the init.
#ifndef NBDBOOT_SHIM_INIT_H
#define NBDBOOT_SHIM_INIT_H
#endif
