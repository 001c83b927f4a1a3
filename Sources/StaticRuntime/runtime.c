// Runtime pieces that Embedded Swift expects from the C library and musl
// lacks. Linked only into the static station binaries (scripts/build-static.sh).
#include <stddef.h>
#include <stdint.h>
#include <sys/random.h>

// Seeds Swift's hashing. Early in boot the kernel's pool may not be ready and
// a blocking getrandom() would hang PID 1, so ask without blocking and fall
// back to a fixed pattern: hash seeds protect against collision attacks, which
// do not apply to a station's init.
void arc4random_buf(void *buf, size_t n) {
    ssize_t got = getrandom(buf, n, GRND_NONBLOCK);
    if (got == (ssize_t)n) return;
    uint8_t *p = buf;
    for (size_t i = (got > 0 ? (size_t)got : 0); i < n; i++) p[i] = (uint8_t)(i * 131 + 7);
}
