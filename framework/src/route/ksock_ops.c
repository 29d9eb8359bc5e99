/* ksock_ops.c - the operations of a kernel socket (FILE_KSOCK): an
 * AF_INET/6 socket still undecided, or carried by the kernel stack (with
 * or without a TCP-anchored candidate or a module listener beside it).
 * bind, listen and connect on an undecided socket are where its stack is
 * decided (sock_decide). */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "anchor.h"
#include "anchor_direct.h"
#include "anchor_side.h"
#include "anchor_urgent.h"
#include "conn_stats.h"
#include "epoll_agg.h"
#include "connect_late.h"
#include "fd_table.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"
#include "multilisten.h"
#include "sock.h"
#include "sock_ops.h"
#include "stats.h"

/* A listener's module listener beside it (anchor_side.c) goes with it. */
static void ksock_release(struct file *f)
{
    if (f->side != NULL)
        anchor_side_release(f);
}

/* ---- the first call on the module socket, when a module wins ---------- */

static int op_bind(struct file *nf, const void *arg)
{
    const struct sockaddr *const *a = arg;
    return MCALL(nf, bind, a[0], (socklen_t)(uintptr_t)a[1]);
}

/* arg: { destination, its length, the undecided kernel socket's file }. */
static int op_connect(struct file *nf, const void *arg)
{
    const void *const *a = arg;
    socklen_t len = (socklen_t)(uintptr_t)a[1];
    fb_arm(nf, a[2], a[0], len);
    int r = MCALL(nf, connect, a[0], len);
    int err = errno;
    fb_connect_returned(nf, r, err);
    errno = err;
    return r;
}

static int op_listen(struct file *nf, const void *arg)
{
    return MCALL(nf, listen, *(const int *)arg);
}

/* The socket is undecided and the address is usable as a routing key. */
static int wants_decision(struct file *f, const struct sockaddr *addr, socklen_t len)
{
    return !__atomic_load_n(&f->decided, __ATOMIC_ACQUIRE) &&
           (addr == NULL || (len >= sizeof(sa_family_t) && addr->sa_family == f->domain &&
                             len >= (f->domain == AF_INET ? sizeof(struct sockaddr_in)
                                                          : sizeof(struct sockaddr_in6))));
}

/* ---- bind / listen ---------------------------------------------------- */

static int ksock_bind(struct file *f, int fd, const struct sockaddr *addr, socklen_t len)
{
    int r;
    if (addr != NULL && wants_decision(f, addr, len) && !sock_addr_is_wild(addr, len)) {
        const void *args[2] = { addr, (void *)(uintptr_t)len };
        int d = sock_decide(fd, f, addr, len, op_bind, args, &r);
        return d == 1 ? LIBC(bind)(fd, addr, len) : d < 0 ? -1 : r;
    }
    r = LIBC(bind)(fd, addr, len);
    if (r == 0 && addr != NULL && sock_addr_is_wild(addr, len)) {
        int err = errno;
        pthread_mutex_lock(&f->lock);
        f->bound_wild = 1;
        pthread_mutex_unlock(&f->lock);
        errno = err;
    }
    return r;
}

static int ksock_listen(struct file *f, int fd, int backlog)
{
    int r;
    if (!wants_decision(f, NULL, 0) || f->type != SOCK_STREAM)
        return LIBC(listen)(fd, backlog);
    if (ml_listen(fd, f, backlog, &r))
        return r;                          /* a wildcard listener on several stacks */
    int d = sock_decide(fd, f, NULL, 0, op_listen, &backlog, &r);
    if (d == 1 && (r = LIBC(listen)(fd, backlog)) == 0) {
        anchor_set_role(f, AR_LISTENER);
        anchor_side_listen(fd, f, backlog);   /* plain rsockets clients come over rdma_cm */
    } else if (d < 0) {
        r = -1;
    }
    return r;
}

/* ---- connect ---------------------------------------------------------- */

/* An ip_route with "fallback": "kernel": the failed module socket is gone
 * and fd still holds its undecided kernel socket, which now takes the
 * connect. Returns 1 (connect on the kernel) or -1 with the module's errno. */
static int connect_fallback(int fd, struct file *f, const struct sockaddr *addr)
{
    int err = errno;
    int st = fb_is_unreachable(err) ? fw_connect_fallback(f, addr) : -1;
    if (st < 0) {
        errno = err;
        return -1;
    }
    pthread_mutex_lock(&f->lock);
    int ok = !f->decided && fd_table_get(fd) == f;
    if (ok)
        sock_mark_kernel(f, st);
    pthread_mutex_unlock(&f->lock);
    if (!ok) {
        errno = err;
        return -1;
    }
    stats_add(st, NSTAT_FALLBACK, 1);
    fw_log(NSTACK_LOG_INF, NULL, "fd %d: connect failed on the routed stack (%s); falling back to %s",
           fd, strerror(err), g_stacks[st].name);
    return 1;
}

/* connect() on an undecided socket: the destination picks the stack. */
static int connect_decide(int fd, struct file *f, const struct sockaddr *addr, socklen_t len)
{
    const void *args[3] = { addr, (void *)(uintptr_t)len, f };
    int r;
    int d = sock_decide(fd, f, addr, len, op_connect, args, &r);
    if (d < 0)
        d = connect_fallback(fd, f, addr);
    if (d == 1 && ((r = LIBC(connect)(fd, addr, len)) == 0 || errno == EINPROGRESS)) {
        int err = errno;
        if (r < 0 && __atomic_load_n(&f->defer_anchor, __ATOMIC_ACQUIRE))
            anchor_direct_note(f, addr, len);
        anchor_set_role(f, AR_ACTIVE);
        anchor_connected(fd, f, r);
        errno = err;
    } else if (d == 1 && errno == ECONNREFUSED && __atomic_load_n(&f->defer_anchor, __ATOMIC_ACQUIRE)) {
        r = anchor_direct_connect(fd, f, addr, len);   /* a plain rsockets server: rdma_cm only */
    } else if (d < 0) {
        r = -1;
    }
    conn_stats_connect(fd, addr, r);
    return r;
}

static int is_inet_addr(const struct sockaddr *addr, socklen_t len)
{
    return addr != NULL &&
           ((addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) ||
            (addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)));
}

static int ksock_connect(struct file *f, int fd, const struct sockaddr *addr, socklen_t len)
{
    int r;
    if (addr != NULL && wants_decision(f, addr, len)) {
        r = connect_decide(fd, f, addr, len);
    } else {
        r = LIBC(connect)(fd, addr, len);
        /* decided before (bound to a route's address first, as DMM's
         * clients do): the connection gets its record here */
        if (is_inet_addr(addr, len))
            conn_stats_connect(fd, addr, r);
    }
    sock_count_connect(f, fd, r);
    return r;
}

/* ---- accept ----------------------------------------------------------- */

/* A connection of a kernel listener: anchored by the route of its local
 * address (unless the module listener beside it took it), else a kernel
 * socket; counted. */
static int ksock_accept(struct file *f, int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    int r = anchor_side_usable(fd, f) ? anchor_side_accept(fd, f, addr, len, flags)
                                      : LIBC(accept4)(fd, addr, len, flags);
    struct file *nf = r >= 0 ? fd_table_get(r) : NULL;
    if (r >= 0 && (nf == NULL || nf->kind != FILE_MSOCK)) {
        int err = errno;
        int nb = (flags & SOCK_NONBLOCK) != 0;
        if (anchor_track_accepted(r, f, nb) == 0 &&
            sock_track_kernel(r, f->domain, f->type | (nb ? SOCK_NONBLOCK : 0), f->protocol, 1) == 0)
            stats_add(f->stack, NSTAT_CONN_IN, 1);
        errno = err;
    }
    return r;
}

/* ---- options ---------------------------------------------------------- */

/* The kernel's; an undecided socket's options are replayed on the module
 * that wins, and SO_OOBINLINE changes how a late urgent byte is read. */
static int ksock_setsockopt(struct file *f, int fd, int level, int name, const void *val, socklen_t len)
{
    int r = LIBC(setsockopt)(fd, level, name, val, len);
    if (r == 0 && !__atomic_load_n(&f->decided, __ATOMIC_ACQUIRE))
        sock_log_opt(f, level, name, val, len);
    if (r == 0 && level == SOL_SOCKET && name == SO_OOBINLINE && val != NULL && len >= sizeof(int))
        anchor_urgent_inline(f, *(const int *)val);
    return r;
}

const struct file_ops ksock_file_ops = {
    .release = ksock_release,
    .bind = ksock_bind,
    .listen = ksock_listen,
    .connect = ksock_connect,
    .accept = ksock_accept,
    .setsockopt = ksock_setsockopt,
    .ep_ctl = ev_ctl_kernel_socket,
    /* getsockopt, close, O_NONBLOCK, ioctl: the socket's (sock_ops.c, file_ops.c) */
};
