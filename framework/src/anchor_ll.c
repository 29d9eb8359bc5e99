/* anchor_ll.c - the long-lived policy, the dispatcher's side (anchor_ll.h,
 * doc/rsocket-framework.md "Long-lived policy"). The module owns the wire
 * (anchor_policy, anchor(NSTACK_ANCHOR_LATE)); this file owns the TCP
 * phase: which connections are in it, their byte counts, and the call that
 * ends it. Every transition runs under the file's lock; the data path only
 * reads ll_limit/ll_gate and adds to ll_bytes (relaxed atomics). */
#include "anchor_ll.h"

#include <errno.h>
#include <poll.h>

#include "anchor.h"
#include "conn_stats.h"
#include "fd_table.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"
#include "module_load.h"
#include "sock.h"
#include "stats.h"
#include "tcpfirst.h"

static int has_policy(int st)
{
    const struct nstack_module *m = g_stacks[st].mod;
    return m != NULL && MODULE_HAS_OP(m, anchor_policy);
}

static int policy(int st, int fd, int op, int *code)
{
    const struct nstack_module *m = g_stacks[st].mod;
    MOD_ENTER();
    int r = m->anchor_policy(fd, op, code);
    int err = errno;
    MOD_LEAVE();
    errno = err;
    return r;
}

static uint64_t limit_of(int code)
{
    return code > 0 && code < 64 ? (uint64_t)1 << (code - 1) : 0;
}

/* Candidate kf becomes a decided kernel socket in its TCP phase (kf->lock
 * held, or kf not visible to the application yet). The release store of
 * `decided` in sock_mark_kernel publishes the fields before it. */
static void tcp_phase(int fd, struct file *kf, int st, int role, int code, int answered)
{
    kf->ll_role = role;
    kf->ll_stack = st;
    kf->ll_code = code;
    __atomic_store_n(&kf->ll_bytes, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&kf->ll_limit, limit_of(code), __ATOMIC_RELAXED);
    __atomic_store_n(&kf->ll_gate, !answered, __ATOMIC_RELAXED);
    __atomic_store_n(&kf->defer_role, TF_NONE, __ATOMIC_RELEASE);
    __atomic_store_n(&kf->defer_anchor, 0, __ATOMIC_RELAXED);
    sock_mark_kernel(kf, g_kernel_stack);
    conn_stats_tcp_phase(fd, kf, role == TF_PASSIVE);
    LOG_DBG("fd %d: long-lived policy: on TCP until %llu bytes", fd,
            (unsigned long long)limit_of(code));
}

/* The TCP phase ends without a switch: the connection stays on TCP for
 * good (nothing but urgent bytes went out). kf->lock held. */
static void stay_tcp(int fd, struct file *f, const char *why)
{
    __atomic_store_n(&f->ll_limit, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&f->ll_gate, 0, __ATOMIC_RELAXED);
    conn_stats_stay_tcp(fd, f, ENOPROTOOPT);
    stats_add(f->ll_stack, NSTAT_ANCHOR_TCP, 1);
    LOG_INF("fd %d: stays on TCP: %s", fd, why);
}

int anchor_ll_connected(int fd, struct file *f, int st)
{
    int code = f->ll_code;
    if (!has_policy(st) || policy(st, fd, NSTACK_LL_SEND, &code) < 0)
        return 0;
    pthread_mutex_lock(&f->lock);
    if (anchor_pending(f) && !f->decided && fd_table_get(fd) == f)
        tcp_phase(fd, f, st, TF_ACTIVE, code, 0);
    pthread_mutex_unlock(&f->lock);
    return 1;
}

int anchor_ll_accepted(int fd, struct file *nf, int st)
{
    int code = nf->ll_code;
    if (!has_policy(st) || policy(st, fd, NSTACK_LL_ANSWER, &code) != 1)
        return 0;
    tcp_phase(fd, nf, st, TF_PASSIVE, code, 1);
    return 1;
}

/* A nonblocking connect still in progress (no POLLOUT, no error yet). */
static int connecting(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    return LIBC(poll)(&p, 1, 0) == 0;
}

int anchor_ll_first_use(int fd, struct file *kf, int st, int role)
{
    if (!has_policy(st))
        return 0;
    int code = kf->ll_code;
    if (role == TF_ACTIVE) {
        if (code <= 0)
            return 0;
        if (connecting(fd))
            return 1;            /* announced once connected: a later use */
        if (policy(st, fd, NSTACK_LL_SEND, &code) < 0)
            return 0;
        tcp_phase(fd, kf, st, TF_ACTIVE, code, 0);
        return 1;
    }
    /* the active's announcement came after accept() */
    if (policy(st, fd, NSTACK_LL_ANSWER, &code) != 1)
        return 0;
    tcp_phase(fd, kf, st, TF_PASSIVE, code, 1);
    return 1;
}

/* The active learns the passive's answer (f->lock held). */
static void peer_locked(int fd, struct file *f)
{
    int code = 0;
    int r = policy(f->ll_stack, fd, NSTACK_LL_PEER, &code);
    if (r == 1) {
        f->ll_code = code;
        __atomic_store_n(&f->ll_limit, limit_of(code), __ATOMIC_RELAXED);
        __atomic_store_n(&f->ll_gate, 0, __ATOMIC_RELAXED);
    } else if (r < 0) {
        stay_tcp(fd, f, "the peer did not answer the long-lived policy (peer does not run the framework)");
    }
}

static int in_tcp_phase(int fd, const struct file *f)
{
    return f->kind == FILE_KSOCK && __atomic_load_n(&f->ll_limit, __ATOMIC_RELAXED) != 0 &&
           fd_table_get(fd) == f;
}

void anchor_ll_peer(int fd, struct file *f)
{
    int err = errno;
    pthread_mutex_lock(&f->lock);
    if (in_tcp_phase(fd, f) && __atomic_load_n(&f->ll_gate, __ATOMIC_RELAXED))
        peer_locked(fd, f);
    pthread_mutex_unlock(&f->lock);
    errno = err;
}

void anchor_ll_cross(int fd, struct file *f)
{
    int err = errno;
    pthread_mutex_lock(&f->lock);
    if (!in_tcp_phase(fd, f) ||
        __atomic_load_n(&f->ll_bytes, __ATOMIC_RELAXED) < __atomic_load_n(&f->ll_limit, __ATOMIC_RELAXED))
        goto out;
    if (__atomic_load_n(&f->ll_gate, __ATOMIC_RELAXED)) {
        peer_locked(fd, f);
        if (__atomic_load_n(&f->ll_gate, __ATOMIC_RELAXED)) {
            stay_tcp(fd, f, "no answer to the long-lived policy before its threshold");
            goto out;
        }
        if (!in_tcp_phase(fd, f) ||
            __atomic_load_n(&f->ll_bytes, __ATOMIC_RELAXED) < __atomic_load_n(&f->ll_limit, __ATOMIC_RELAXED))
            goto out;            /* the agreed limit is higher */
    }
    __atomic_store_n(&f->ll_limit, 0, __ATOMIC_RELAXED);   /* crosses once */
    LOG_DBG("fd %d: long-lived policy: %llu bytes on TCP, moving to %s", fd,
            (unsigned long long)__atomic_load_n(&f->ll_bytes, __ATOMIC_RELAXED), g_stacks[f->ll_stack].name);
    if (anchor_attach(fd, f, f->ll_stack, f->ll_role, NSTACK_ANCHOR_LATE) < 0)
        stay_tcp(fd, f, "no module socket for the switch");
out:
    pthread_mutex_unlock(&f->lock);
    errno = err;
}
