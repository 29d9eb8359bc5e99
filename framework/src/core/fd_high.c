/* fd_high.c - moving the dispatcher's own fds out of the app's range (see fd_high.h). */
#include "fd_high.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/resource.h>
#include <time.h>

#include "libc_api.h"

#define FD_HIGH_MIN 256
#define FD_HIGH_CAP 65536

/* From the limit, read at most every FD_HIGH_REFRESH_MS: an anchored
 * connection's set-up moves about ten fds here (the module's and its
 * device library's), and a getrlimit for each was a tenth of its system
 * calls; the app may raise its limit later, which is seen that much later
 * (until then a new fd lands lower than it could: never wrong). One
 * 64-bit word (base, coarse time) so that threads read it atomically. */
#define FD_HIGH_REFRESH_MS 100
static uint64_t high_cached;   /* base << 32 | coarse ms; atomic loads/stores */

static int base_from_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return FD_HIGH_MIN;
    rlim_t base = rl.rlim_cur == RLIM_INFINITY ? FD_HIGH_CAP : rl.rlim_cur / 2;
    if (base < FD_HIGH_MIN)
        base = FD_HIGH_MIN;
    if (base > FD_HIGH_CAP)
        base = FD_HIGH_CAP;
    return (int)base;
}

static int high_base(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint32_t now = (uint32_t)((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
    uint64_t c = __atomic_load_n(&high_cached, __ATOMIC_RELAXED);
    if (c && now - (uint32_t)c < FD_HIGH_REFRESH_MS)
        return (int)(c >> 32);
    int base = base_from_limit();
    __atomic_store_n(&high_cached, (uint64_t)(uint32_t)base << 32 | now, __ATOMIC_RELAXED);
    return base;
}

int fd_dup_high(int fd)
{
    int h = LIBC(fcntl)(fd, F_DUPFD_CLOEXEC, high_base());
    if (h < 0 && (errno == EINVAL || errno == EMFILE))
        h = LIBC(fcntl)(fd, F_DUPFD_CLOEXEC, 0);   /* base beyond the limit: the lowest */
    return h;
}

int fd_move_high(int fd)
{
    if (fd < 0 || fd >= high_base())
        return fd;
    int err = errno;
    int h = LIBC(fcntl)(fd, F_DUPFD_CLOEXEC, high_base());
    errno = err;
    if (h < 0)
        return fd;
    LIBC(close)(fd);
    return h;
}
