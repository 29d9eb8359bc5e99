/* connect_late.c - the late connect fallback (see connect_late.h). */
#include "connect_late.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "epoll_agg.h"
#include "fd_table.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"
#include "migrate.h"
#include "sock.h"
#include "stats.h"

void fb_arm(struct file *nf, const struct file *kf, const struct sockaddr *dest, socklen_t len)
{
    /* A wildcard-bound socket gave its port up to the module; re-binding
     * it on a new kernel socket is not attempted (doc/framework.md). */
    if (kf->bound_wild || len > sizeof(nf->fb_dest))
        return;
    int st = fw_connect_fallback(nf, dest);
    if (st < 0)
        return;
    nf->fb_stack = st;
    nf->fb_dest_len = len;
    memcpy(&nf->fb_dest, dest, len);
    nf->n_opts = kf->n_opts;
    memcpy(nf->opts, kf->opts, sizeof(nf->opts));
    __atomic_store_n(&nf->fb_state, FB_PENDING, __ATOMIC_RELEASE);
}

/* Leaves FB_PENDING for FB_NONE unless someone else left it first. */
static void fb_settle(struct file *f)
{
    int pending = FB_PENDING;
    __atomic_compare_exchange_n(&f->fb_state, &pending, FB_NONE, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

void fb_connect_returned(struct file *nf, int r, int err)
{
    if (r == 0 || err != EINPROGRESS)
        fb_settle(nf);
}

uint32_t fb_filter(struct file *f, uint32_t mask, int *due)
{
    if (mask & (EPOLLERR | EPOLLHUP)) {
        *due = 1;
        return 0;
    }
    if (mask & EPOLLOUT)
        fb_settle(f);          /* connected on the module: nothing to fall back from */
    return mask;
}

/* The module's pending error (consumed, as SO_ERROR does), 0 if none or
 * if the module cannot tell. */
static int module_so_error(struct file *f)
{
    int v = 0;
    socklen_t l = sizeof(v);
    if (MCALL(f, getsockopt, SOL_SOCKET, SO_ERROR, &v, &l) < 0)
        return 0;
    return v;
}

/* The module's error stands: report it as without a fallback. `keep`: the
 * error was consumed here, so SO_ERROR hands it out once later. Caller
 * holds f->lock. */
static void fb_decline(struct file *f, int err, int keep)
{
    if (keep && err > 0)
        __atomic_store_n(&f->fb_err, err, __ATOMIC_RELEASE);
    __atomic_store_n(&f->fb_state, FB_NONE, __ATOMIC_RELEASE);
    ev_force_report(f);
}

static int clear_nonblock(int k)
{
    int fl = LIBC(fcntl)(k, F_GETFL);
    return fl < 0 ? -1 : LIBC(fcntl)(k, F_SETFL, fl & ~O_NONBLOCK);
}

/* A new kernel socket with f's options, connecting (nonblocking) to f's
 * destination; its O_NONBLOCK then follows what the app set. Returns the
 * fd or -1/errno. */
static int kernel_connect(const struct file *f)
{
    int k = LIBC(socket)(f->domain, f->type | SOCK_NONBLOCK | SOCK_CLOEXEC, f->protocol);
    if (k < 0)
        return -1;
    for (int i = 0; i < f->n_opts; i++)
        (void)LIBC(setsockopt)(k, f->opts[i].level, f->opts[i].name, f->opts[i].val, f->opts[i].len);
    int r = LIBC(connect)(k, (const struct sockaddr *)&f->fb_dest, f->fb_dest_len);
    if ((r == 0 || errno == EINPROGRESS) &&
        (__atomic_load_n(&f->nonblock, __ATOMIC_RELAXED) || clear_nonblock(k) == 0))
        return k;
    int err = errno;
    LIBC(close)(k);
    errno = err;
    return -1;
}

/* Moves every fd of module socket f onto kernel socket k. Caller holds
 * f->lock. Returns 0, or -1/errno with nothing moved. */
static int move_to_kernel(struct file *f, int k, int err)
{
    struct file *kf = sock_file_like(FILE_KSOCK, f, f->fb_stack);
    struct pre_reg *regs = NULL;
    int n = kf ? ev_take_regs(f, &regs) : -1;
    if (n < 0) {
        if (kf != NULL)
            file_put(kf);
        errno = ENOMEM;
        return -1;
    }
    int first = fd_migrate(f, kf, k, -1, "the fallback kernel socket");
    ev_reregister(kf, regs, n);
    free(regs);
    __atomic_store_n(&f->fb_state, FB_MOVED, __ATOMIC_RELEASE);
    stats_add(kf->stack, NSTAT_SOCKETS, 1);
    stats_add(kf->stack, NSTAT_CONN_OUT, 1);
    stats_add(kf->stack, NSTAT_FALLBACK, 1);
    fw_log(NSTACK_LOG_INF, NULL, "fd %d: connect failed on the routed stack (%s); falling back to %s",
           first, strerror(err), g_stacks[kf->stack].name);
    file_put(kf);                   /* the fds' table entries hold it now */
    return 0;
}

int fb_run(struct file *f, int known_err)
{
    pthread_mutex_lock(&f->lock);
    if (!fb_is_pending(f)) {
        int moved = __atomic_load_n(&f->fb_state, __ATOMIC_ACQUIRE) == FB_MOVED;
        pthread_mutex_unlock(&f->lock);
        return moved;
    }
    int err = known_err >= 0 ? known_err : module_so_error(f);
    int k = fb_is_unreachable(err) ? kernel_connect(f) : -1;
    if (k < 0 || move_to_kernel(f, k, err) < 0) {
        if (fb_is_unreachable(err))
            LOG_WAR("connect fallback to %s failed: %s; the module's error (%s) stands",
                    g_stacks[f->fb_stack].name, strerror(errno), strerror(err));
        fb_decline(f, err, known_err < 0);
    }
    if (k >= 0)
        LIBC(close)(k);             /* the app fds hold their dups */
    int moved = __atomic_load_n(&f->fb_state, __ATOMIC_ACQUIRE) == FB_MOVED;
    pthread_mutex_unlock(&f->lock);
    return moved;
}

int fb_so_error(struct file *f, void *val, socklen_t *len)
{
    int r = MCALL(f, getsockopt, SOL_SOCKET, SO_ERROR, val, len);
    if (r < 0 || val == NULL || len == NULL || *len < sizeof(int))
        return r;
    int err;
    memcpy(&err, val, sizeof(err));
    if (err == 0)
        err = __atomic_exchange_n(&f->fb_err, 0, __ATOMIC_ACQ_REL);
    else if (fb_is_pending(f) && fb_is_unreachable(err) && fb_run(f, err) == 1)
        err = 0;                    /* the kernel connect is in progress now */
    memcpy(val, &err, sizeof(err));
    return r;
}

int fb_connect_again(struct file *f, int r)
{
    if (!fb_is_pending(f))
        return r;
    int err = errno;
    if (r == 0 || err == EISCONN) {
        fb_settle(f);
    } else if (fb_is_unreachable(err) && fb_run(f, err) == 1) {
        errno = EALREADY;           /* as a kernel connect still in progress */
        return -1;
    }
    errno = err;
    return r;
}
