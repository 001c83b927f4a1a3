/*
 * /sbin/init of a root image that nbdboot did not make (Tests/vm/
 * test-boot-foreign-root.sh): a static C program, no shell, no busybox,
 * nothing of the project's. It runs as PID 1 after nbdboot's initramfs has
 * switched to the NBD root, prints one line
 *     FOREIGN-ROOT-OK root=<device mounted on /> pid=<its pid>
 * on the console, and powers the machine off with reboot(2)
 * (RB_POWER_OFF): PID 1 must never return, or the kernel panics.
 * Build: musl-gcc -static -Os -o init init.c   (or gcc -static)
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

/* The device of the last "/" entry of /proc/mounts (the mount on top). */
static void root_device(char *out, size_t size) {
    char dev[256], dir[256], line[1024];
    FILE *f = fopen("/proc/mounts", "r");
    snprintf(out, size, "unknown");
    if (!f) return;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%255s %255s", dev, dir) == 2 && strcmp(dir, "/") == 0)
            snprintf(out, size, "%s", dev);
    fclose(f);
}

int main(void) {
    struct stat st;
    char root[256];
    /* The initramfs usually moves /dev and /proc here; mount them if not. */
    if (stat("/dev/console", &st) != 0) mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
    if (stat("/proc/mounts", &st) != 0) mount("proc", "/proc", "proc", 0, NULL);
    int fd = open("/dev/console", O_WRONLY | O_NOCTTY);
    if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); if (fd > 2) close(fd); }
    root_device(root, sizeof root);
    printf("FOREIGN-ROOT-OK root=%s pid=%d\n", root, (int)getpid());
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
    perror("foreign init: reboot(RB_POWER_OFF)");
    for (;;) pause();
}
