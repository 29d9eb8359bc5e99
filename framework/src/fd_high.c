/* fd_high.c - moving the dispatcher's own fds out of the app's range (see fd_high.h). */
#include "fd_high.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>

#include "libc_api.h"

#define FD_HIGH_MIN 256
#define FD_HIGH_CAP 65536

/* Read each time (off the hot path): the app may raise its limit later. */
static int high_base(void)
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
