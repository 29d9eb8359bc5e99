/* wrap_event.c - interposed readiness calls: epoll_*, poll, ppoll, select,
 * pselect and their _FORTIFY_SOURCE variants. Sets and fd lists without
 * module sockets go to the kernel in exactly one call. */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "epoll_agg.h"
#include "fd_table.h"
#include "file.h"
#include "anchor_side.h"
#include "fd_high.h"
#include "fw.h"
#include "libc_api.h"
#include "poll_agg.h"
#include "timeutil.h"

#define EXPORT __attribute__((visibility("default")))

extern void __chk_fail(void) __attribute__((noreturn));

/* Epoll fds are tracked from creation so that dups share one set. */
static int track_epoll(int fd)
{
    if (fd < 0 || t_in_module)
        return fd_module_high(fd);
    struct file *f = file_alloc(FILE_EPOLL);
    if (f == NULL)
        return fd;           /* tracked lazily on the first module socket */
    struct file *old = fd_table_take(fd);
    if (old != NULL)
        file_put(old);
    if (fd_table_set(fd, f) < 0)
        file_put(f);
    return fd;
}

EXPORT int epoll_create(int size)
{
    return track_epoll(LIBC(epoll_create)(size));
}

EXPORT int epoll_create1(int flags)
{
    return track_epoll(LIBC(epoll_create1)(flags));
}

EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    if (t_in_module)
        return LIBC(epoll_ctl)(epfd, op, fd, ev);
    int r = ev_epoll_ctl(epfd, op, fd, ev);
    struct file *f = r == 0 ? fd_table_get(fd) : NULL;
    if (f != NULL && (op == EPOLL_CTL_DEL ? anchor_side_held(f) : anchor_side_usable(fd, f)))
        anchor_side_epoll_ctl(epfd, op, f, ev);   /* the listener's rdma_cm side wakes the set too */
    return r;
}

/* Whether the set holds (or held) module sockets: if not, the kernel call
 * alone serves, counted in raw_waiters while it runs (*raw: the file to
 * uncount with raw_wait_end; only a wait that may sleep) so that a thread
 * adding the set's first module socket wakes it. A lock-free peek: the aggregated path re-checks
 * with a reference. */
static int has_modules(int epfd, int may_sleep, struct file **raw)
{
    struct file *f = fd_table_get(epfd);
    *raw = NULL;
    if (f == NULL || f->kind != FILE_EPOLL)
        return 0;
    if (!may_sleep)             /* a zero timeout: nobody to wake, no count */
        return __atomic_load_n(&f->ep, __ATOMIC_ACQUIRE) != NULL;
    __atomic_add_fetch(&f->raw_waiters, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&f->ep, __ATOMIC_SEQ_CST) != NULL) {
        __atomic_sub_fetch(&f->raw_waiters, 1, __ATOMIC_RELAXED);
        return 1;
    }
    *raw = f;
    return 0;
}

static int raw_wait_end(struct file *raw, int k)
{
    int err = errno;
    if (raw != NULL)
        __atomic_sub_fetch(&raw->raw_waiters, 1, __ATOMIC_RELAXED);
    errno = err;
    return k;
}

static struct timespec ms_to_ts(int ms)
{
    return (struct timespec){ ms / 1000, (long)(ms % 1000) * 1000000 };
}

EXPORT int epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout)
{
    struct timespec ts = ms_to_ts(timeout);
    if (t_in_module)
        return LIBC(epoll_wait)(epfd, evs, max, timeout);
    struct file *raw;
    if (!has_modules(epfd, timeout != 0, &raw))
        return ev_after_raw_wait(epfd, evs, max, raw_wait_end(raw, LIBC(epoll_wait)(epfd, evs, max, timeout)),
                                 timeout < 0 ? NULL : &ts, NULL);
    return ev_epoll_wait(epfd, evs, max, timeout < 0 ? NULL : &ts, NULL);
}

EXPORT int epoll_pwait(int epfd, struct epoll_event *evs, int max, int timeout, const sigset_t *sigmask)
{
    struct timespec ts = ms_to_ts(timeout);
    if (t_in_module)
        return LIBC(epoll_pwait)(epfd, evs, max, timeout, sigmask);
    struct file *raw;
    if (!has_modules(epfd, timeout != 0, &raw))
        return ev_after_raw_wait(epfd, evs, max, raw_wait_end(raw, LIBC(epoll_pwait)(epfd, evs, max, timeout, sigmask)),
                                 timeout < 0 ? NULL : &ts, sigmask);
    return ev_epoll_wait(epfd, evs, max, timeout < 0 ? NULL : &ts, sigmask);
}

EXPORT int epoll_pwait2(int epfd, struct epoll_event *evs, int max, const struct timespec *timeout,
                        const sigset_t *sigmask)
{
    if (t_in_module)
        return LIBC(epoll_pwait2)(epfd, evs, max, timeout, sigmask);
    struct file *raw;
    if (!has_modules(epfd, timeout == NULL || timeout->tv_sec || timeout->tv_nsec, &raw))
        return ev_after_raw_wait(epfd, evs, max, raw_wait_end(raw, LIBC(epoll_pwait2)(epfd, evs, max, timeout, sigmask)),
                                 timeout, sigmask);
    if (timeout != NULL && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000)) {
        errno = EINVAL;
        return -1;
    }
    return ev_epoll_wait(epfd, evs, max, timeout, sigmask);
}

/* ---- poll --------------------------------------------------------------- */

static int poll_impl(struct pollfd *fds, nfds_t n, int timeout)
{
    if (t_in_module || !poll_needs_agg(fds, n))
        return LIBC(poll)(fds, n, timeout);
    struct timespec ts = ms_to_ts(timeout);
    return ev_poll(fds, n, timeout < 0 ? NULL : &ts, NULL);
}

EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    return poll_impl(fds, n, timeout);
}

static int ppoll_impl(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *sigmask)
{
    if (t_in_module || !poll_needs_agg(fds, n))
        return LIBC(ppoll)(fds, n, timeout, sigmask);
    return ev_poll(fds, n, timeout, sigmask);
}

EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *sigmask)
{
    return ppoll_impl(fds, n, timeout, sigmask);
}

EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
    if (fdslen / sizeof(*fds) < n)
        __chk_fail();
    return poll_impl(fds, n, timeout);
}

EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *timeout,
                       const sigset_t *sigmask, size_t fdslen)
{
    if (fdslen / sizeof(*fds) < n)
        __chk_fail();
    return ppoll_impl(fds, n, timeout, sigmask);
}

/* ---- select --------------------------------------------------------------- */

EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
    if (t_in_module || nfds < 0 || !select_needs_agg(nfds, r, w, e))
        return LIBC(select)(nfds, r, w, e, tv);
    if (tv != NULL && (tv->tv_sec < 0 || tv->tv_usec < 0)) {
        errno = EINVAL;
        return -1;
    }
    struct timespec ts = { 0, 0 };
    int64_t start = now_ns();
    if (tv != NULL)
        ts = (struct timespec){ tv->tv_sec + tv->tv_usec / 1000000, (tv->tv_usec % 1000000) * 1000 };
    int k = ev_select(nfds, r, w, e, tv ? &ts : NULL, NULL);
    if (tv != NULL) {
        /* Linux select() reports the time not slept. */
        int64_t left = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - (now_ns() - start);
        if (left < 0)
            left = 0;
        tv->tv_sec = left / 1000000000;
        tv->tv_usec = (left % 1000000000) / 1000;
    }
    return k;
}

EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts, const sigset_t *sigmask)
{
    if (t_in_module || nfds < 0 || !select_needs_agg(nfds, r, w, e))
        return LIBC(pselect)(nfds, r, w, e, ts, sigmask);
    return ev_select(nfds, r, w, e, ts, sigmask);
}

/* glibc's version aborts for fd >= FD_SETSIZE even when the program's
 * fd_set is larger; only a negative fd is a real error. */
EXPORT long int __fdelt_chk(long int d)
{
    if (d < 0)
        __chk_fail();
    return d / NFDBITS;
}
