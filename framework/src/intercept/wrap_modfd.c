/* wrap_modfd.c - descriptors a module (and the device library under it)
 * creates during a call the dispatcher made into it.
 *
 * An anchored connection gets its module socket at its first use, in the
 * middle of the application's poll, epoll_ctl or send: the module's fds
 * (wait epoll fd, eventfds, timerfds, rdma_cm and completion channels,
 * the device's pipes and sockets) would take the lowest free numbers
 * there - numbers the application has just closed (poll then says the
 * closed number is open) or sized its tables for (wrk's event loop holds
 * 10 + 3 x connections entries: a connection whose socket number lands
 * beyond it is counted as a connect error). Like the dispatcher's own fds
 * (fd_high.h), they are moved to the high range as they are created, when
 * the creating thread is inside a module call (t_in_module); any other
 * caller gets the plain libc call. */
#include <sys/eventfd.h>
#include <sys/timerfd.h>

#include "fd_high.h"
#include "fw.h"
#include "libc_api.h"

#define EXPORT __attribute__((visibility("default")))

int fd_module_high(int fd)
{
    return __builtin_expect(t_in_module, 0) ? fd_move_high(fd) : fd;
}

static int pair_high(int r, int fds[2])
{
    if (r == 0 && __builtin_expect(t_in_module, 0)) {
        fds[0] = fd_move_high(fds[0]);
        fds[1] = fd_move_high(fds[1]);
    }
    return r;
}

EXPORT int pipe(int fds[2])
{
    return pair_high(LIBC(pipe)(fds), fds);
}

EXPORT int pipe2(int fds[2], int flags)
{
    return pair_high(LIBC(pipe2)(fds, flags), fds);
}

EXPORT int eventfd(unsigned int initval, int flags)
{
    return fd_module_high(LIBC(eventfd)(initval, flags));
}

EXPORT int timerfd_create(int clockid, int flags)
{
    return fd_module_high(LIBC(timerfd_create)(clockid, flags));
}
