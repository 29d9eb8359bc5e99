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
 * way - goes to the kernel unchanged. A clone that is a fork (vsftpd's
 * sessions) is made as one (wrap_clone.c). */
#include <errno.h>
#include <fcntl.h>
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
#include "wrap_clone.h"

#define EXPORT __attribute__((visibility("default")))

int close_range(unsigned int first, unsigned int last, int flags);

#define A(i, T) ((T)(a)[i])

static long passthrough(long nr, const long *a)
{
    return LIBC(syscall)(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static int tracked(long fd)
{
    return fd >= 0 && fd <= 0x7fffffff && fd_table_get((int)fd) != NULL;
}

/* The named wrapper when descriptor argument i is one the dispatcher
 * tracks, else the system call unchanged. */
#define ON_FD(i, call) (tracked(a[i]) ? (long)(call) : passthrough(nr, a))

/* Only the socket and fd calls are looked at (one table lookup); every
 * other number - futex, the most frequent through syscall() - goes
 * straight on. dup2/dup3 and epoll_ctl concern two descriptors;
 * close_range and poll may cover tracked ones anywhere in their range or
 * array, and their wrappers are cheap for untracked ones. */
static long dispatch(long nr, const long *a)
{
    switch (nr) {
    case SYS_close:       return ON_FD(0, close(A(0, int)));
    case SYS_dup:         return ON_FD(0, dup(A(0, int)));
    case SYS_fcntl:       return ON_FD(0, fcntl(A(0, int), A(1, int), a[2]));
    case SYS_ioctl:       return ON_FD(0, ioctl(A(0, int), A(1, unsigned long), a[2]));
    case SYS_read:        return ON_FD(0, read(A(0, int), A(1, void *), A(2, size_t)));
    case SYS_write:       return ON_FD(0, write(A(0, int), A(1, const void *), A(2, size_t)));
    case SYS_readv:       return ON_FD(0, readv(A(0, int), A(1, const struct iovec *), A(2, int)));
    case SYS_writev:      return ON_FD(0, writev(A(0, int), A(1, const struct iovec *), A(2, int)));
    case SYS_recvfrom:    return ON_FD(0, recvfrom(A(0, int), A(1, void *), A(2, size_t), A(3, int),
                                                   A(4, struct sockaddr *), A(5, socklen_t *)));
    case SYS_sendto:      return ON_FD(0, sendto(A(0, int), A(1, const void *), A(2, size_t), A(3, int),
                                                 A(4, const struct sockaddr *), A(5, socklen_t)));
    case SYS_recvmsg:     return ON_FD(0, recvmsg(A(0, int), A(1, struct msghdr *), A(2, int)));
    case SYS_sendmsg:     return ON_FD(0, sendmsg(A(0, int), A(1, const struct msghdr *), A(2, int)));
    case SYS_recvmmsg:    return ON_FD(0, recvmmsg(A(0, int), A(1, struct mmsghdr *), A(2, unsigned), A(3, int),
                                                   A(4, struct timespec *)));
    case SYS_sendmmsg:    return ON_FD(0, sendmmsg(A(0, int), A(1, struct mmsghdr *), A(2, unsigned), A(3, int)));
    case SYS_accept:      return ON_FD(0, accept(A(0, int), A(1, struct sockaddr *), A(2, socklen_t *)));
    case SYS_accept4:     return ON_FD(0, accept4(A(0, int), A(1, struct sockaddr *), A(2, socklen_t *), A(3, int)));
    case SYS_connect:     return ON_FD(0, connect(A(0, int), A(1, const struct sockaddr *), A(2, socklen_t)));
    case SYS_bind:        return ON_FD(0, bind(A(0, int), A(1, const struct sockaddr *), A(2, socklen_t)));
    case SYS_listen:      return ON_FD(0, listen(A(0, int), A(1, int)));
    case SYS_shutdown:    return ON_FD(0, shutdown(A(0, int), A(1, int)));
    case SYS_getsockopt:  return ON_FD(0, getsockopt(A(0, int), A(1, int), A(2, int), A(3, void *),
                                                     A(4, socklen_t *)));
    case SYS_setsockopt:  return ON_FD(0, setsockopt(A(0, int), A(1, int), A(2, int), A(3, const void *),
                                                     A(4, socklen_t)));
    case SYS_getsockname: return ON_FD(0, getsockname(A(0, int), A(1, struct sockaddr *), A(2, socklen_t *)));
    case SYS_getpeername: return ON_FD(0, getpeername(A(0, int), A(1, struct sockaddr *), A(2, socklen_t *)));
    case SYS_sendfile:    return ON_FD(0, sendfile(A(0, int), A(1, int), A(2, off_t *), A(3, size_t)));
    case SYS_splice:      return tracked(a[0]) || tracked(a[2])
                                     ? splice(A(0, int), A(1, loff_t *), A(2, int), A(3, loff_t *), A(4, size_t),
                                              A(5, unsigned int))
                                     : passthrough(nr, a);
    case SYS_epoll_wait:  return ON_FD(0, epoll_wait(A(0, int), A(1, struct epoll_event *), A(2, int), A(3, int)));
    case SYS_epoll_pwait: return ON_FD(0, epoll_pwait(A(0, int), A(1, struct epoll_event *), A(2, int), A(3, int),
                                                      A(4, const sigset_t *)));
    case SYS_epoll_ctl:
        return tracked(a[0]) || tracked(a[2])
                   ? epoll_ctl(A(0, int), A(1, int), A(2, int), A(3, struct epoll_event *)) : passthrough(nr, a);
    case SYS_dup3:        return tracked(a[0]) || tracked(a[1]) ? dup3(A(0, int), A(1, int), A(2, int))
                                                                : passthrough(nr, a);
#ifdef SYS_dup2
    case SYS_dup2:        return tracked(a[0]) || tracked(a[1]) ? dup2(A(0, int), A(1, int)) : passthrough(nr, a);
#endif
    case SYS_close_range: return close_range(A(0, unsigned), A(1, unsigned), A(2, int));
#ifdef SYS_poll
    case SYS_poll:        return poll(A(0, struct pollfd *), A(1, nfds_t), A(2, int));
#endif
    case SYS_ppoll:       return ppoll(A(0, struct pollfd *), A(1, nfds_t), A(2, const struct timespec *),
                                       A(3, const sigset_t *));
    /* forks glibc does not see (wrap_clone.c): made as fork() so that
     * every atfork handler runs */
    case SYS_clone:       return wrap_clone_fork_like((unsigned long)a[0], (unsigned long)a[1])
                                     ? wrap_clone_as_fork((unsigned long)a[0]) : passthrough(nr, a);
#ifdef SYS_seccomp
    case SYS_seccomp:     /* libseccomp's seccomp_load(): as prctl(PR_SET_SECCOMP) */
        __atomic_store_n(&g_fw_confined, 1, __ATOMIC_RELAXED);
        return passthrough(nr, a);
#endif
#ifdef SYS_fork
    case SYS_fork:        return fork();
#endif
#ifdef SYS_vfork
    case SYS_vfork:       return fork();      /* as vfork() (wrap_fork.c) */
#endif
    default:              return passthrough(nr, a);
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
    return t_in_module ? passthrough(nr, a) : dispatch(nr, a);
}
