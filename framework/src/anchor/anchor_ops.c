/* anchor_ops.c - the operations of a TCP-anchored module socket
 * (FILE_MSOCK beside its TCP socket, anchor.c): the app fd is the TCP
 * socket, so the kernel answers for names and options, and the module
 * carries the stream (its end, what is readable) and gets O_NONBLOCK and
 * the options too. One whose TCP connect was refused (anchor_direct.c)
 * has no TCP peer: the module answers for its names and options. */
#include <fcntl.h>
#include <sys/ioctl.h>

#include "epoll_agg.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"
#include "msock_ops.h"
#include "sock.h"

/* The TCP socket is closed here when it is the dispatcher's own dup
 * (anchor_fd.h); the app's numbers are closed by the app. */
static void anchored_release(struct file *f)
{
    msock_release(f);
    if (__atomic_load_n(&f->anchor_fd_own, __ATOMIC_ACQUIRE))
        LIBC(close)(f->anchor_fd);
}

/* The kernel's answer is the app's; an option the module cannot take is
 * the kernel's to honour (logged, not an error). */
static int anchored_setsockopt(struct file *f, int fd, int level, int name, const void *val, socklen_t len)
{
    int r = LIBC(setsockopt)(fd, level, name, val, len);
    if (r == 0 && MCALL(f, setsockopt, level, name, val, len) < 0)
        LOG_DBG("fd %d: %s: option level %d name %d left to the TCP socket", fd, f->mod->name, level, name);
    return r;
}

/* Both the TCP socket (the app fd) and the module socket get the flag. */
static int anchored_set_nonblock(struct file *f, int fd, int on)
{
    int fl = LIBC(fcntl)(fd, F_GETFL);
    if (fl < 0 || LIBC(fcntl)(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) < 0)
        return -1;
    if (MCALL(f, set_nonblock, on) < 0)
        return -1;
    __atomic_store_n(&f->nonblock, on, __ATOMIC_RELAXED);
    return 0;
}

/* What is readable is the module's business; every other request is the
 * TCP socket's. */
static int anchored_ioctl(struct file *f, int fd, unsigned long req, void *arg)
{
    return req == FIONREAD ? MCALL(f, ioctl, req, arg) : LIBC(ioctl)(fd, req, arg);
}

const struct file_ops anchored_file_ops = {
    .release = anchored_release,
    .shutdown = msock_shutdown,
    .setsockopt = anchored_setsockopt,
    .set_nonblock = anchored_set_nonblock,
    .ioctl = anchored_ioctl,
    /* the module carries the stream (a downgraded one's sends: wrap_io.c) */
    .io_module = msock_io_module,
    .ep_ctl = ev_ctl_module,
    /* bind, listen, accept, names, getsockopt: the TCP socket's;
     * connect (counted), SO_ERROR, close, F_SETFL: sock_ops.c */
};

/* The rest as anchored_file_ops (its parent, file_ops.c). */
const struct file_ops anchored_direct_file_ops = {
    .getsockname = msock_getsockname,
    .getpeername = msock_getpeername,
    .getsockopt = msock_getsockopt,
};
