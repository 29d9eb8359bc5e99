/* sock_ops.c - the operations every socket kind shares (FOPS_SOCK, the
 * parent of the kernel, module, anchored and multi-stack listener tables;
 * file_ops.h). What is not here passes to libc. */
#include "sock_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "anchor.h"
#include "anchor_fd.h"
#include "fd_table.h"
#include "fw.h"
#include "libc_api.h"
#include "stats.h"

void sock_count_connect(struct file *f, int fd, int r)
{
    if (r == 0 || errno == EINPROGRESS) {
        struct file *now = fd_table_get(fd);
        stats_add(now ? now->stack : f->stack, NSTAT_CONN_OUT, 1);
    }
}

/* A socket that no decision routed (decided before, or a kind without
 * one): the kernel's connect, counted. */
static int sock_connect(struct file *f, int fd, const struct sockaddr *addr, socklen_t len)
{
    int r = LIBC(connect)(fd, addr, len);
    sock_count_connect(f, fd, r);
    return r;
}

int sock_so_error(struct file *f, int kfd, void *val, socklen_t *len)
{
    int r = LIBC(getsockopt)(kfd, SOL_SOCKET, SO_ERROR, val, len);
    if (r < 0 || val == NULL || len == NULL || *len < sizeof(int) ||
        __atomic_load_n(&f->fb_err, __ATOMIC_RELAXED) == 0)
        return r;
    int err;
    memcpy(&err, val, sizeof(err));
    if (err == 0) {
        err = __atomic_exchange_n(&f->fb_err, 0, __ATOMIC_ACQ_REL);
        memcpy(val, &err, sizeof(err));
    }
    return r;
}

static int sock_getsockopt(struct file *f, int fd, int level, int name, void *val, socklen_t *len)
{
    if (level == SOL_SOCKET && name == SO_ERROR)
        return sock_so_error(f, fd, val, len);
    return LIBC(getsockopt)(fd, level, name, val, len);   /* anchored: the TCP socket */
}

/* A socket on a module (or a candidate for one) lets go of what it holds
 * beside the file (anchor.c, anchor_fd.c); one that stayed on TCP after a
 * handshake passes a late urgent byte first (anchor_urgent.c). */
static int sock_closing(struct file *f, int fd)
{
    if (__builtin_expect(f->stack != g_kernel_stack, 0)) {
        anchor_close(fd, f);
        return anchor_fd_closing(fd, f);
    }
    if (__builtin_expect(f->urgent_maybe, 0) && !FW_CONFINED())
        anchor_close_tcp(fd);
    return 0;
}

/* As at close, and one that lives on moves its TCP socket off fd. */
static void sock_replacing(struct file *f, int fd)
{
    if (f->stack != g_kernel_stack) {
        anchor_close(fd, f);
        anchor_fd_replacing(fd, f);
    }
}

/* F_SETFL on a socket sets only O_NONBLOCK, on the socket. */
static int sock_setfl(struct file *f, int fd, long arg)
{
    return f->ops->set_nonblock(f, fd, (arg & O_NONBLOCK) != 0) < 0 ? -1 : 0;
}

static int sock_fionbio(struct file *f, int fd, void *arg)
{
    if (arg == NULL) {
        errno = EFAULT;
        return -1;
    }
    return f->ops->set_nonblock(f, fd, *(int *)arg != 0);
}

int sock_getfl_app(struct file *f, int fd)
{
    int fl = LIBC(fcntl)(fd, F_GETFL);
    if (fl < 0)
        return fl;
    return (fl & ~O_NONBLOCK) | (__atomic_load_n(&f->nonblock, __ATOMIC_RELAXED) ? O_NONBLOCK : 0);
}

/* The other flags go to the app fd, which keeps its own O_NONBLOCK. */
int sock_setfl_app(struct file *f, int fd, long arg)
{
    if (f->ops->set_nonblock(f, fd, (arg & O_NONBLOCK) != 0) < 0)
        return -1;
    int fl = LIBC(fcntl)(fd, F_GETFL);
    return fl < 0 ? -1 : LIBC(fcntl)(fd, F_SETFL, (arg & ~O_NONBLOCK) | (fl & O_NONBLOCK));
}

int sock_set_nonblock_app(struct file *f, int fd, int on)
{
    (void)fd;
    __atomic_store_n(&f->nonblock, on, __ATOMIC_RELAXED);
    return 0;
}

const struct file_ops sock_file_ops = {
    .connect = sock_connect,
    .getsockopt = sock_getsockopt,
    .closing = sock_closing,
    .replacing = sock_replacing,
    .setfl = sock_setfl,
    .fionbio = sock_fionbio,
};
