/* wrap_socket.c - interposed socket-management calls: socket, socketpair,
 * bind, listen, accept, accept4, connect, shutdown, get/setsockopt,
 * getsockname, getpeername. What a call does with a tracked fd is its
 * kind's (f->ops, file_ops.h); here are only the entry points. */
#include <errno.h>

#include "anchor.h"
#include "conn_stats.h"
#include "file.h"
#include "fd_high.h"
#include "fw.h"
#include "libc_api.h"
#include "sock.h"

#define EXPORT __attribute__((visibility("default")))

static int is_inet(int domain)
{
    return domain == AF_INET || domain == AF_INET6;
}

static int routable_type(int type)
{
    type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    return type == SOCK_STREAM || type == SOCK_DGRAM;
}

EXPORT int socket(int domain, int type, int protocol)
{
    if (t_in_module || !is_inet(domain))
        return fd_module_high(LIBC(socket)(domain, type, protocol));
    fw_start();
    int fd = LIBC(socket)(domain, type, protocol);
    if (fd < 0)
        return fd;
    /* Raw and other types are never routed but still counted as kernel. */
    if (sock_track_kernel(fd, domain, type, protocol, !routable_type(type)) < 0) {
        int err = errno;
        LIBC(close)(fd);
        errno = err;
        return -1;
    }
    return fd;
}

EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
    int r = LIBC(socketpair)(domain, type, protocol, sv);
    if (r == 0 && t_in_module) {
        sv[0] = fd_module_high(sv[0]);
        sv[1] = fd_module_high(sv[1]);
    }
    return r;
}

/* ---- the rest: the file's kind decides (its ops, file_ops.h) ----------- */

/* bind, listen and connect on an undecided kernel socket are where its
 * stack is decided (ksock_ops.c). */
EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(bind)(fd, addr, len);
    return file_put_ret(f, f->ops->bind(f, fd, addr, len));
}

EXPORT int listen(int fd, int backlog)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(listen)(fd, backlog);
    return file_put_ret(f, f->ops->listen(f, fd, backlog));
}

EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(connect)(fd, addr, len);
    return file_put_ret(f, f->ops->connect(f, fd, addr, len));
}

/* An fd the table does not know may be an inherited TCP listener, whose
 * connections are routed too (sock_adopt_listener). */
static int accept_common(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    struct file *f;
    if (t_in_module)
        return fd_module_high(LIBC(accept4)(fd, addr, len, flags));
    if ((f = file_get(fd)) == NULL && (f = sock_adopt_listener(fd)) == NULL)
        return LIBC(accept4)(fd, addr, len, flags);
    int r = f->ops->accept(f, fd, addr, len, flags);
    if (r >= 0)
        conn_stats_accept(r);
    return file_put_ret(f, r);
}

EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    return accept_common(fd, addr, len, 0);
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    return accept_common(fd, addr, len, flags);
}

EXPORT int shutdown(int fd, int how)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(shutdown)(fd, how);
    f = anchor_use(fd, f);               /* ordered with the data: the stream's end is the module's */
    return file_put_ret(f, f->ops->shutdown(f, fd, how));
}

EXPORT int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(getsockname)(fd, addr, len);
    return file_put_ret(f, f->ops->getsockname(f, fd, addr, len));
}

EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(getpeername)(fd, addr, len);
    return file_put_ret(f, f->ops->getpeername(f, fd, addr, len));
}

EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(getsockopt)(fd, level, name, val, len);
    if (level == SOL_SOCKET && name == SO_ERROR)
        f = anchor_use(fd, f);             /* a connect's result is read where it is used */
    return file_put_ret(f, f->ops->getsockopt(f, fd, level, name, val, len));
}

EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(setsockopt)(fd, level, name, val, len);
    return file_put_ret(f, f->ops->setsockopt(f, fd, level, name, val, len));
}
