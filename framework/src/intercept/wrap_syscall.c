/* wrap_syscall.c - syscall(): socket and fd calls made through glibc's
 * generic syscall() instead of their named wrappers.
 *
 * libuv (node.js, and everything built on it) closes every descriptor with
 * syscall(SYS_close) to avoid close()'s cancellation point. Unseen, such a
 * close leaves the fd table's entry behind; the kernel hands the number out
 * again at the next accept(), and the app's calls on the new connection
 * would reach the old, closed socket. So the calls that act on a
 * descriptor the dispatcher tracks (or that change what a number holds)
 * run through the named wrappers here; every other system call - and every
 * call on a descriptor the dispatcher does not know, such as the software
 * RDMA device's own, which uses syscall() to stay out of every preload's
 * way - goes to the kernel unchanged. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fd_table.h"
#include "fw.h"
#include "libc_api.h"

#define EXPORT __attribute__((visibility("default")))

int close_range(unsigned int first, unsigned int last, int flags);

#define A(i, T) ((T)(a)[i])

/* Calls whose first argument is the descriptor they act on. */
static long fd_call(long nr, const long *a)
{
    switch (nr) {
    case SYS_close:       return close(A(0, int));
    case SYS_dup:         return dup(A(0, int));
    case SYS_fcntl:       return fcntl(A(0, int), A(1, int), a[2]);
    case SYS_ioctl:       return ioctl(A(0, int), A(1, unsigned long), a[2]);
    case SYS_read:        return read(A(0, int), A(1, void *), A(2, size_t));
    case SYS_write:       return write(A(0, int), A(1, const void *), A(2, size_t));
    case SYS_readv:       return readv(A(0, int), A(1, const struct iovec *), A(2, int));
    case SYS_writev:      return writev(A(0, int), A(1, const struct iovec *), A(2, int));
    case SYS_recvfrom:    return recvfrom(A(0, int), A(1, void *), A(2, size_t), A(3, int),
                                          A(4, struct sockaddr *), A(5, socklen_t *));
    case SYS_sendto:      return sendto(A(0, int), A(1, const void *), A(2, size_t), A(3, int),
                                        A(4, const struct sockaddr *), A(5, socklen_t));
    case SYS_recvmsg:     return recvmsg(A(0, int), A(1, struct msghdr *), A(2, int));
    case SYS_sendmsg:     return sendmsg(A(0, int), A(1, const struct msghdr *), A(2, int));
    case SYS_recvmmsg:    return recvmmsg(A(0, int), A(1, struct mmsghdr *), A(2, unsigned), A(3, int),
                                          A(4, struct timespec *));
    case SYS_sendmmsg:    return sendmmsg(A(0, int), A(1, struct mmsghdr *), A(2, unsigned), A(3, int));
    case SYS_accept:      return accept(A(0, int), A(1, struct sockaddr *), A(2, socklen_t *));
    case SYS_accept4:     return accept4(A(0, int), A(1, struct sockaddr *), A(2, socklen_t *), A(3, int));
    case SYS_connect:     return connect(A(0, int), A(1, const struct sockaddr *), A(2, socklen_t));
    case SYS_bind:        return bind(A(0, int), A(1, const struct sockaddr *), A(2, socklen_t));
    case SYS_listen:      return listen(A(0, int), A(1, int));
    case SYS_shutdown:    return shutdown(A(0, int), A(1, int));
    case SYS_getsockopt:  return getsockopt(A(0, int), A(1, int), A(2, int), A(3, void *), A(4, socklen_t *));
    case SYS_setsockopt:  return setsockopt(A(0, int), A(1, int), A(2, int), A(3, const void *),
                                            A(4, socklen_t));
    case SYS_getsockname: return getsockname(A(0, int), A(1, struct sockaddr *), A(2, socklen_t *));
    case SYS_getpeername: return getpeername(A(0, int), A(1, struct sockaddr *), A(2, socklen_t *));
    case SYS_sendfile:    return sendfile(A(0, int), A(1, int), A(2, off_t *), A(3, size_t));
    case SYS_epoll_wait:  return epoll_wait(A(0, int), A(1, struct epoll_event *), A(2, int), A(3, int));
    case SYS_epoll_pwait: return epoll_pwait(A(0, int), A(1, struct epoll_event *), A(2, int), A(3, int),
                                             A(4, const sigset_t *));
    default:              return LIBC(syscall)(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    }
}

static int tracked(long fd)
{
    return fd >= 0 && fd <= 0x7fffffff && fd_table_get((int)fd) != NULL;
}

/* A call the dispatcher must see: on a tracked descriptor, or one that
 * may put something at a tracked number (dup2/dup3 onto it, close_range
 * over it) or wait on tracked sockets (poll). */
static int routed(long nr, const long *a)
{
    switch (nr) {
    case SYS_close_range:
#ifdef SYS_poll
    case SYS_poll:
#endif
    case SYS_ppoll:
        return 1;
    case SYS_dup3:
#ifdef SYS_dup2
    case SYS_dup2:
#endif
    case SYS_epoll_ctl:
        return tracked(a[0]) || tracked(nr == SYS_epoll_ctl ? a[2] : a[1]);
    default:
        return tracked(a[0]);
    }
}

/* Six arguments are read whatever the call takes, as glibc's own
 * syscall() passes them: past the caller's last one this reads its stack
 * (or registers), which AddressSanitizer would report. */
EXPORT __attribute__((no_sanitize("address"))) long syscall(long nr, ...)
{
    long a[6];
    va_list ap;
    va_start(ap, nr);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);    /* as glibc's own syscall() reads them */
    va_end(ap);
    if (t_in_module || !routed(nr, a))
        return LIBC(syscall)(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    switch (nr) {
    case SYS_close_range: return close_range(A(0, unsigned), A(1, unsigned), A(2, int));
    case SYS_dup3:        return dup3(A(0, int), A(1, int), A(2, int));
#ifdef SYS_dup2
    case SYS_dup2:        return dup2(A(0, int), A(1, int));
#endif
    case SYS_epoll_ctl:   return epoll_ctl(A(0, int), A(1, int), A(2, int), A(3, struct epoll_event *));
#ifdef SYS_poll
    case SYS_poll:        return poll(A(0, struct pollfd *), A(1, nfds_t), A(2, int));
#endif
    case SYS_ppoll:       return ppoll(A(0, struct pollfd *), A(1, nfds_t), A(2, const struct timespec *),
                                       A(3, const sigset_t *));
    default:              return fd_call(nr, a);
    }
}
