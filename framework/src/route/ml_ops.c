/* ml_ops.c - the operations of a wildcard listener on several stacks
 * (FILE_MLISTEN, multilisten.c): the app fd is a private epoll fd over the
 * stacks' wait fds, so the listening calls go to every stack and the
 * questions (names, options, ioctl) to the kernel's listening socket. */
#include "epoll_agg.h"
#include "libc_api.h"
#include "multilisten.h"
#include "sock_ops.h"

static int ml_op_listen(struct file *f, int fd, int backlog)
{
    (void)fd;
    return ml_relisten(f, backlog);
}

static int ml_op_accept(struct file *f, int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    (void)fd;
    return ml_accept(f, addr, len, flags);
}

static int ml_op_shutdown(struct file *f, int fd, int how)
{
    (void)fd;
    return ml_shutdown(f, how);
}

static int ml_op_getsockname(struct file *f, int fd, struct sockaddr *addr, socklen_t *len)
{
    (void)fd;
    return LIBC(getsockname)(ml_kernel_fd(f), addr, len);
}

static int ml_op_getpeername(struct file *f, int fd, struct sockaddr *addr, socklen_t *len)
{
    (void)fd;
    return LIBC(getpeername)(ml_kernel_fd(f), addr, len);
}

static int ml_op_getsockopt(struct file *f, int fd, int level, int name, void *val, socklen_t *len)
{
    (void)fd;
    if (level == SOL_SOCKET && name == SO_ERROR)
        return sock_so_error(f, ml_kernel_fd(f), val, len);
    return LIBC(getsockopt)(ml_kernel_fd(f), level, name, val, len);
}

static int ml_op_setsockopt(struct file *f, int fd, int level, int name, const void *val, socklen_t len)
{
    (void)fd;
    return ml_setsockopt(f, level, name, val, len);
}

static int ml_op_ioctl(struct file *f, int fd, unsigned long req, void *arg)
{
    (void)fd;
    return LIBC(ioctl)(ml_kernel_fd(f), req, arg);
}

const struct file_ops mlisten_file_ops = {
    .release = ml_release,      /* every stack's listener closes with the last fd */
    .listen = ml_op_listen,
    .accept = ml_op_accept,
    .shutdown = ml_op_shutdown,
    .getsockname = ml_op_getsockname,
    .getpeername = ml_op_getpeername,
    .getsockopt = ml_op_getsockopt,
    .setsockopt = ml_op_setsockopt,
    /* O_NONBLOCK is only remembered: accept() honours it (ml_accept) */
    .set_nonblock = sock_set_nonblock_app,
    .getfl = sock_getfl_app,
    .setfl = sock_setfl_app,
    .ioctl = ml_op_ioctl,
    .ep_ctl = ev_ctl_listener,
    /* bind: the app fd's (ENOTSOCK); connect, close, FIONBIO: sock_ops.c */
};
