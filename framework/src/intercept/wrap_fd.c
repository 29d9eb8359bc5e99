/* wrap_fd.c - interposed fd-level calls: close, close_range, dup, dup2,
 * dup3, fcntl/fcntl64/__fcntl, ioctl. dup'd fds share one struct file; the
 * module socket is closed when the last fd referring to it goes. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/ioctl.h>

#include "anchor.h"
#include "anchor_fd.h"
#include "fd_table.h"
#include "file.h"
#include "fw.h"
#include "libc_api.h"
#include "sock.h"

#define EXPORT __attribute__((visibility("default")))

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Drops the table's reference of fd (the kernel fd is already gone or is
 * about to be replaced). */
static void forget_fd(int fd)
{
    struct file *old = fd_table_take(fd);
    if (old != NULL)
        file_put(old);
}

/* newfd now refers to what oldfd's file is (after a successful dup). */
static void share_fd(struct file *f, int newfd)
{
    forget_fd(newfd);
    if (f == NULL)
        return;
    file_hold(f);
    if (fd_table_set(newfd, f) < 0)
        file_put(f);
}

EXPORT int close(int fd)
{
    if (t_in_module)
        return LIBC(close)(fd);
    struct file *f = fd_table_take(fd);
    if (f == NULL) {
        sock_adopt_forget(fd);
        return LIBC(close)(fd);
    }
    int keep = f->ops->closing(f, fd);
    /* The module socket goes first (if this was its last fd), then the fd
     * number is released, so the number cannot be reused while the
     * framework still maps it. */
    file_put(f);
    return keep ? 0 : LIBC(close)(fd);
}

static void forget_one(int fd, struct file *f, void *arg)
{
    (void)f;
    (void)arg;
    forget_fd(fd);
}

/* The kernel is about to let go of number fd (dup2/dup3 onto it,
 * close_range): as close() does, the table lets go first, so that a
 * module socket of which it was the last number closes while its anchored
 * TCP socket is still there (drained as at close: no reset for a hello
 * left unread), and one that lives on moves its TCP socket off fd. */
static void release_before_kernel(int fd)
{
    struct file *g = fd_table_take(fd);
    if (g == NULL)
        return;
    g->ops->replacing(g, fd);
    file_put(g);
}

static void release_one(int fd, struct file *f, void *arg)
{
    (void)f;
    (void)arg;
    release_before_kernel(fd);
}

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
    int closes = !t_in_module && !((unsigned)flags & ~CLOSE_RANGE_UNSHARE) && first <= last &&
                 first <= (unsigned)INT32_MAX;
    if (closes)
        fd_table_each((int)first, last > (unsigned)INT32_MAX ? -1 : (int)last, release_one, NULL);
    int r = LIBC(close_range)(first, last, flags);
    if (r == 0 && !t_in_module && !(flags & CLOSE_RANGE_CLOEXEC) && first <= (unsigned)INT32_MAX)
        fd_table_each((int)first, last > (unsigned)INT32_MAX ? -1 : (int)last, forget_one, NULL);
    return r;
}

EXPORT int dup(int oldfd)
{
    struct file *f;
    if (t_in_module || (f = file_get(oldfd)) == NULL)
        return LIBC(dup)(oldfd);
    int r = anchor_fd_share(f) < 0 ? -1 : LIBC(dup)(oldfd);
    int err = errno;
    if (r >= 0)
        share_fd(f, r);
    file_put(f);
    errno = err;
    return r;
}

static int dup_to(int oldfd, int newfd, int flags, int is_dup2)
{
    if (t_in_module)
        return is_dup2 ? LIBC(dup2)(oldfd, newfd) : LIBC(dup3)(oldfd, newfd, flags);
    struct file *f = file_get(oldfd);
    int r = 0;
    if (oldfd != newfd && (r = anchor_fd_share(f)) == 0 && LIBC(fcntl)(oldfd, F_GETFD) >= 0 &&
        (is_dup2 || !(flags & ~O_CLOEXEC)))
        release_before_kernel(newfd);     /* the dup cannot fail for its arguments now */
    if (r == 0)
        r = is_dup2 ? LIBC(dup2)(oldfd, newfd) : LIBC(dup3)(oldfd, newfd, flags);
    int err = errno;
    if (r >= 0 && oldfd != newfd)
        share_fd(f, newfd);
    if (f != NULL)
        file_put(f);
    errno = err;
    return r;
}

EXPORT int dup2(int oldfd, int newfd)
{
    return dup_to(oldfd, newfd, 0, 1);
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
    return dup_to(oldfd, newfd, flags, 0);
}

/* ---- fcntl ------------------------------------------------------------- */

/* What the flags and O_NONBLOCK of a tracked fd are is its kind's
 * (file_ops.h: a module socket's app fd shares the module's wait fd, a
 * multi-stack listener's is its epoll fd). */
static int fcntl_tracked(struct file *f, int fd, int cmd, long arg)
{
    switch (cmd) {
    case F_GETFL:
        return f->ops->getfl(f, fd);
    case F_SETFL:
        return f->ops->setfl(f, fd, arg);
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        int r = anchor_fd_share(f) < 0 ? -1 : LIBC(fcntl)(fd, cmd, arg);
        if (r >= 0) {
            int err = errno;
            share_fd(f, r);
            errno = err;
        }
        return r;
    }
    default:
        return LIBC(fcntl)(fd, cmd, arg);
    }
}

static int fcntl_common(int fd, int cmd, long arg)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(fcntl)(fd, cmd, arg);
    int r = fcntl_tracked(f, fd, cmd, arg);
    int err = errno;
    file_put(f);
    errno = err;
    return r;
}

/* fcntl's third argument is an int or a pointer; on x86-64 both travel in
 * the same register, so reading it as a long is exact for both. The three
 * names glibc programs may call share one body. */
#define FCNTL_ENTRY(name)                          \
    EXPORT int name(int fd, int cmd, ...)          \
    {                                              \
        va_list ap;                                \
        va_start(ap, cmd);                         \
        long arg = va_arg(ap, long);               \
        va_end(ap);                                \
        return fcntl_common(fd, cmd, arg);         \
    }

FCNTL_ENTRY(fcntl)
FCNTL_ENTRY(fcntl64)
FCNTL_ENTRY(__fcntl)

/* ---- ioctl --------------------------------------------------------------- */

static int ioctl_tracked(struct file *f, int fd, unsigned long req, void *arg)
{
    if (req == FIONBIO)
        return f->ops->fionbio(f, fd, arg);
    if (req == FIOCLEX || req == FIONCLEX)
        return LIBC(ioctl)(fd, req, arg);     /* the app fd's own flag */
    return f->ops->ioctl(f, fd, req, arg);
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(ioctl)(fd, req, arg);
    if (req == FIONREAD)
        f = anchor_use(fd, f);
    int r = ioctl_tracked(f, fd, req, arg);
    int err = errno;
    file_put(f);
    errno = err;
    return r;
}
