/* wrap_socket.c - interposed socket-management calls: socket, socketpair,
 * bind, listen, accept, accept4, connect, shutdown, get/setsockopt,
 * getsockname, getpeername. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>

#include "anchor.h"
#include "anchor_urgent.h"
#include "anchor_direct.h"
#include "anchor_side.h"
#include "conn_stats.h"
#include "connect_late.h"
#include "fd_table.h"
#include "file.h"
#include "fd_high.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"
#include "multilisten.h"
#include "sock.h"
#include "stats.h"

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

/* Where a kernel-side call goes: a multi-stack listener's kernel socket
 * lives at a private fd (the app fd is its epoll fd). */
static int kernel_fd(const struct file *f, int fd)
{
    return f->kind == FILE_MLISTEN ? ml_kernel_fd(f) : fd;
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

/* ---- bind / listen / connect: where the stack is decided -------------- */

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
    return f->kind == FILE_KSOCK && !__atomic_load_n(&f->decided, __ATOMIC_ACQUIRE) &&
           (addr == NULL || (len >= sizeof(sa_family_t) && addr->sa_family == f->domain &&
                             len >= (f->domain == AF_INET ? sizeof(struct sockaddr_in)
                                                          : sizeof(struct sockaddr_in6))));
}

EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(bind)(fd, addr, len);
    int r;
    if (file_is_direct_msock(f)) {
        r = MCALL(f, bind, addr, len);
    } else if (addr != NULL && wants_decision(f, addr, len) && !sock_addr_is_wild(addr, len)) {
        const void *args[2] = { addr, (void *)(uintptr_t)len };
        int d = sock_decide(fd, f, addr, len, op_bind, args, &r);
        if (d == 1)
            r = LIBC(bind)(fd, addr, len);
        else if (d < 0)
            r = -1;
    } else {
        r = LIBC(bind)(fd, addr, len);
        if (r == 0 && f->kind == FILE_KSOCK && addr != NULL && sock_addr_is_wild(addr, len)) {
            pthread_mutex_lock(&f->lock);
            f->bound_wild = 1;
            pthread_mutex_unlock(&f->lock);
        }
    }
    int err = errno;
    file_put(f);
    errno = err;
    return r;
}

EXPORT int listen(int fd, int backlog)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(listen)(fd, backlog);
    int r;
    if (file_is_direct_msock(f)) {
        r = MCALL(f, listen, backlog);
    } else if (f->kind == FILE_MLISTEN) {
        r = ml_relisten(f, backlog);
    } else if (wants_decision(f, NULL, 0) && f->type == SOCK_STREAM && ml_listen(fd, f, backlog, &r)) {
        /* a wildcard listener on several stacks (multilisten.c) */
    } else if (wants_decision(f, NULL, 0) && f->type == SOCK_STREAM) {
        int d = sock_decide(fd, f, NULL, 0, op_listen, &backlog, &r);
        if (d == 1 && (r = LIBC(listen)(fd, backlog)) == 0) {
            anchor_set_role(f, AR_LISTENER);
            anchor_side_listen(fd, f, backlog);   /* plain rsockets clients come over rdma_cm */
        }
        else if (d < 0)
            r = -1;
    } else {
        r = LIBC(listen)(fd, backlog);
    }
    return file_put_ret(f, r);
}

static void count_connect(struct file *f, int fd, int r)
{
    if (r == 0 || errno == EINPROGRESS) {
        struct file *now = fd_table_get(fd);
        stats_add(now ? now->stack : f->stack, NSTAT_CONN_OUT, 1);
    }
}

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

EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(connect)(fd, addr, len);
    int r;
    if (file_is_direct_msock(f)) {
        r = fb_connect_again(f, MCALL(f, connect, addr, len));
    } else if (addr != NULL && wants_decision(f, addr, len)) {
        r = connect_decide(fd, f, addr, len);
    } else {
        r = LIBC(connect)(fd, addr, len);
        /* decided before (bound to a route's address first, as DMM's
         * clients do): the connection gets its record here */
        if (f->kind == FILE_KSOCK && addr != NULL &&
            ((addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) ||
             (addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6))))
            conn_stats_connect(fd, addr, r);
    }
    int err = errno;
    if (f->kind != FILE_EPOLL)
        count_connect(f, fd, r);
    file_put(f);
    errno = err;
    return r;
}

/* ---- accept ----------------------------------------------------------- */

static int accept_common(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    struct file *f;
    if (t_in_module)
        return fd_module_high(LIBC(accept4)(fd, addr, len, flags));
    if ((f = file_get(fd)) == NULL && (f = sock_adopt_listener(fd)) == NULL)
        return LIBC(accept4)(fd, addr, len, flags);
    int r;
    if (file_is_direct_msock(f) && (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))) {
        errno = EINVAL;
        r = -1;
    } else if (file_is_direct_msock(f)) {
        r = sock_accept_module(f->stack, f, f->sock, addr, len, flags);
    } else if (f->kind == FILE_MLISTEN) {
        r = ml_accept(f, addr, len, flags);
    } else {
        r = anchor_side_usable(fd, f) ? anchor_side_accept(fd, f, addr, len, flags) : LIBC(accept4)(fd, addr, len, flags);
        struct file *nf = r >= 0 ? fd_table_get(r) : NULL;
        if (r >= 0 && f->kind == FILE_KSOCK && (nf == NULL || nf->kind != FILE_MSOCK)) {
            int err = errno;
            int nb = (flags & SOCK_NONBLOCK) != 0;
            /* anchored by the route of its local address, else a kernel socket */
            if (anchor_track_accepted(r, f, nb) == 0 &&
                sock_track_kernel(r, f->domain, f->type | (nb ? SOCK_NONBLOCK : 0), f->protocol, 1) == 0)
                stats_add(f->stack, NSTAT_CONN_IN, 1);
            errno = err;
        }
    }
    if (r >= 0)
        conn_stats_accept(r);
    int err = errno;
    file_put(f);
    errno = err;
    return r;
}

EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    return accept_common(fd, addr, len, 0);
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    return accept_common(fd, addr, len, flags);
}

/* ---- the rest: module op, else kernel ---------------------------------- */

EXPORT int shutdown(int fd, int how)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(shutdown)(fd, how);
    f = anchor_use(fd, f);               /* ordered with the data: the stream's end is the module's */
    int r = f->kind == FILE_MSOCK      ? MCALL(f, shutdown, how)   /* anchored too: the module's stream */
            : f->kind == FILE_MLISTEN ? ml_shutdown(f, how)
                                      : LIBC(shutdown)(fd, how);
    return file_put_ret(f, r);
}

EXPORT int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(getsockname)(fd, addr, len);
    int r = file_module_named(f) ? MCALL(f, getsockname, addr, len)
                                  : LIBC(getsockname)(kernel_fd(f, fd), addr, len);
    return file_put_ret(f, r);
}

EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(getpeername)(fd, addr, len);
    int r = file_module_named(f) ? MCALL(f, getpeername, addr, len)
                                  : LIBC(getpeername)(kernel_fd(f, fd), addr, len);
    return file_put_ret(f, r);
}

/* A kernel socket's SO_ERROR, or the error the dispatcher read from it
 * before (anchor_direct_late), handed out once. */
static int kernel_so_error(struct file *f, int fd, void *val, socklen_t *len)
{
    int r = LIBC(getsockopt)(kernel_fd(f, fd), SOL_SOCKET, SO_ERROR, val, len);
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

EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(getsockopt)(fd, level, name, val, len);
    int r;
    if (level == SOL_SOCKET && name == SO_ERROR)
        f = anchor_use(fd, f);             /* a connect's result is read where it is used */
    if (file_module_named(f) && level == SOL_SOCKET && name == SO_ERROR)
        r = fb_so_error(f, val, len);      /* a pending connect may fall back here */
    else if (file_module_named(f))
        r = MCALL(f, getsockopt, level, name, val, len);
    else if (level == SOL_SOCKET && name == SO_ERROR)
        r = kernel_so_error(f, fd, val, len);
    else
        r = LIBC(getsockopt)(kernel_fd(f, fd), level, name, val, len);   /* anchored: the TCP socket */
    return file_put_ret(f, r);
}

/* An anchored socket: the kernel's answer is the app's (the TCP socket is
 * its socket); the module gets the option too, and one it cannot take is
 * the kernel's to honour (logged, not an error). */
static int setsockopt_anchored(struct file *f, int fd, int level, int name, const void *val, socklen_t len)
{
    int r = LIBC(setsockopt)(fd, level, name, val, len);
    if (r == 0 && MCALL(f, setsockopt, level, name, val, len) < 0)
        LOG_DBG("fd %d: %s: option level %d name %d left to the TCP socket", fd, f->mod->name, level, name);
    return r;
}

EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    struct file *f;
    if (t_in_module || (f = file_get(fd)) == NULL)
        return LIBC(setsockopt)(fd, level, name, val, len);
    int r;
    if (file_is_direct_msock(f)) {
        r = MCALL(f, setsockopt, level, name, val, len);
    } else if (file_is_anchored(f)) {
        r = setsockopt_anchored(f, fd, level, name, val, len);
    } else if (f->kind == FILE_MLISTEN) {
        r = ml_setsockopt(f, level, name, val, len);
    } else {
        r = LIBC(setsockopt)(fd, level, name, val, len);
        if (r == 0 && f->kind == FILE_KSOCK && !__atomic_load_n(&f->decided, __ATOMIC_ACQUIRE))
            sock_log_opt(f, level, name, val, len);
        if (r == 0 && level == SOL_SOCKET && name == SO_OOBINLINE && val != NULL && len >= sizeof(int))
            anchor_urgent_inline(f, *(const int *)val);
    }
    return file_put_ret(f, r);
}
