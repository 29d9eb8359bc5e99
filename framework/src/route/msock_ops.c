/* msock_ops.c - the operations of a direct module socket (FILE_MSOCK, not
 * anchored): the app fd is a dup of the module's wait fd, so every socket
 * call goes to the module - a kernel call on the app fd would reach the
 * wait fd, not a socket. (Anchored module sockets: anchor_ops.c.) */
#include "msock_ops.h"

#include <errno.h>

#include "connect_late.h"
#include "epoll_agg.h"
#include "fw.h"
#include "sock.h"
#include "sock_ops.h"

void msock_release(struct file *f)
{
    ev_socket_gone(f);
    MCALL(f, close);
}

static int msock_bind(struct file *f, int fd, const struct sockaddr *addr, socklen_t len)
{
    (void)fd;
    return MCALL(f, bind, addr, len);
}

static int msock_listen(struct file *f, int fd, int backlog)
{
    (void)fd;
    return MCALL(f, listen, backlog);
}

/* Again on a pending socket: its late fallback may run (connect_late.c). */
static int msock_connect(struct file *f, int fd, const struct sockaddr *addr, socklen_t len)
{
    int r = fb_connect_again(f, MCALL(f, connect, addr, len));
    sock_count_connect(f, fd, r);
    return r;
}

/* accept4 takes no flags but SOCK_NONBLOCK/SOCK_CLOEXEC (as the kernel). */
static int msock_accept(struct file *f, int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    (void)fd;
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) {
        errno = EINVAL;
        return -1;
    }
    return sock_accept_module(f->stack, f, f->sock, addr, len, flags);
}

int msock_shutdown(struct file *f, int fd, int how)
{
    (void)fd;
    return MCALL(f, shutdown, how);
}

int msock_getsockname(struct file *f, int fd, struct sockaddr *addr, socklen_t *len)
{
    (void)fd;
    return MCALL(f, getsockname, addr, len);
}

int msock_getpeername(struct file *f, int fd, struct sockaddr *addr, socklen_t *len)
{
    (void)fd;
    return MCALL(f, getpeername, addr, len);
}

int msock_getsockopt(struct file *f, int fd, int level, int name, void *val, socklen_t *len)
{
    (void)fd;
    if (level == SOL_SOCKET && name == SO_ERROR)
        return fb_so_error(f, val, len);   /* a pending connect may fall back here */
    return MCALL(f, getsockopt, level, name, val, len);
}

static int msock_setsockopt(struct file *f, int fd, int level, int name, const void *val, socklen_t len)
{
    (void)fd;
    return MCALL(f, setsockopt, level, name, val, len);
}

/* The app fd's flag is the wait fd's, which belongs to the module. */
static int msock_set_nonblock(struct file *f, int fd, int on)
{
    (void)fd;
    if (MCALL(f, set_nonblock, on) < 0)
        return -1;
    __atomic_store_n(&f->nonblock, on, __ATOMIC_RELAXED);
    return 0;
}

static int msock_ioctl(struct file *f, int fd, unsigned long req, void *arg)
{
    (void)fd;
    return MCALL(f, ioctl, req, arg);
}

int msock_io_module(const struct file *f)
{
    (void)f;
    return 1;
}

const struct file_ops msock_file_ops = {
    .release = msock_release,
    .bind = msock_bind,
    .listen = msock_listen,
    .connect = msock_connect,
    .accept = msock_accept,
    .shutdown = msock_shutdown,
    .getsockname = msock_getsockname,
    .getpeername = msock_getpeername,
    .getsockopt = msock_getsockopt,
    .setsockopt = msock_setsockopt,
    .set_nonblock = msock_set_nonblock,
    .getfl = sock_getfl_app,
    .setfl = sock_setfl_app,
    .ioctl = msock_ioctl,
    .io_module = msock_io_module,
    .ep_ctl = ev_ctl_module,
    /* close: sock_ops.c; FIONBIO: set_nonblock */
};
