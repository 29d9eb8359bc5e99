/* anchor_ll.c - the long-lived policy, the dispatcher's side (anchor_ll.h,
 * doc/rsocket-framework.md "Long-lived policy"). The module owns the wire
 * (anchor_policy, anchor(NSTACK_ANCHOR_LATE)); this file owns the TCP
 * phase: which connections are in it, their byte counts, and the call that
 * ends it. Every transition runs under the file's lock; the data path only
 * reads ll_limit/ll_gate and adds to ll_bytes (relaxed atomics). */
#include "anchor_ll.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <time.h>

#include "anchor.h"
#include "anchor_local.h"
#include "conn_stats.h"
#include "epoll_agg.h"
#include "fd_table.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"
#include "module_load.h"
#include "module_ops.h"
#include "sig_track.h"
#include "sock.h"
#include "stats.h"
#include "anchor.h"

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
    __atomic_store_n(&kf->ll_gate, answered ? 0 : role == AR_ACTIVE ? LL_GATE_ACTIVE : LL_GATE_PASSIVE,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&kf->defer_role, AR_NONE, __ATOMIC_RELEASE);
    __atomic_store_n(&kf->defer_anchor, 0, __ATOMIC_RELAXED);
    sock_mark_kernel(kf, g_kernel_stack);
    conn_stats_tcp_phase(fd, kf, role == AR_PASSIVE);
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

/* Candidate f stays on TCP without its policy: the announcement could not
 * go out (a peer that answered nothing recently: the module's negative
 * cache). f->lock held. */
static void candidate_stays(int fd, struct file *f, int st)
{
    __atomic_store_n(&f->defer_role, AR_NONE, __ATOMIC_RELEASE);
    __atomic_store_n(&f->defer_anchor, 0, __ATOMIC_RELAXED);
    f->ll_stack = st;
    sock_mark_kernel(f, g_kernel_stack);
    stay_tcp(fd, f, "the peer did not answer recently (peer does not run the framework)");
}

int anchor_ll_connected(int fd, struct file *f, int st)
{
    int code = f->ll_code;
    if (!has_policy(st))
        return 0;
    if (policy(st, fd, NSTACK_LL_SEND, &code) < 0) {
        pthread_mutex_lock(&f->lock);
        if (anchor_pending(f) && !f->decided && fd_table_get(fd) == f)
            candidate_stays(fd, f, st);
        pthread_mutex_unlock(&f->lock);
        return 1;
    }
    pthread_mutex_lock(&f->lock);
    if (anchor_pending(f) && !f->decided && fd_table_get(fd) == f)
        tcp_phase(fd, f, st, AR_ACTIVE, code, 0);
    pthread_mutex_unlock(&f->lock);
    return 1;
}

int anchor_ll_accepted(int fd, struct file *nf, int st)
{
    int code = nf->ll_code;
    /* without a policy of its own the passive answers from its module's
     * handshake (P_HELLO): an upgrade-first route pays nothing here */
    if (code <= 0 || !has_policy(st) || policy(st, fd, NSTACK_LL_ANSWER, &code) != 1)
        return 0;
    tcp_phase(fd, nf, st, AR_PASSIVE, code, 1);
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
    if (role == AR_ACTIVE) {
        if (code <= 0)
            return 0;
        if (connecting(fd))
            return 1;            /* announced once connected: a later use */
        if (policy(st, fd, NSTACK_LL_SEND, &code) < 0)
            candidate_stays(fd, kf, st);
        else
            tcp_phase(fd, kf, st, AR_ACTIVE, code, 0);
        return 1;
    }
    /* the active's announcement came after accept(), or comes later */
    if (code <= 0)
        return 0;                /* no policy here: the module answers one (P_HELLO) */
    int r = policy(st, fd, NSTACK_LL_ANSWER, &code);
    if (r == 2)
        return 0;                /* upgrade first, as the active asks */
    tcp_phase(fd, kf, st, AR_PASSIVE, code, r == 1);
    if (r < 0)
        stay_tcp(fd, kf, "the peer does not run the framework");
    return 1;
}

/* The peer's announcement (passive) or answer (active), f->lock held. */
static void classify_locked(int fd, struct file *f, int tx)
{
    int passive = f->ll_role == AR_PASSIVE;
    int code = passive ? f->ll_code : 0;
    int r = policy(f->ll_stack, fd, passive ? NSTACK_LL_ANSWER : NSTACK_LL_PEER, &code);
    if (r == 1) {
        f->ll_code = code;
        __atomic_store_n(&f->ll_limit, limit_of(code), __ATOMIC_RELAXED);
        __atomic_store_n(&f->ll_gate, 0, __ATOMIC_RELAXED);
    } else if (r == 2) {
        /* the active upgrades first (its own policy): so does this end */
        __atomic_store_n(&f->ll_limit, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&f->ll_gate, 0, __ATOMIC_RELAXED);
        if (anchor_attach(fd, f, f->ll_stack, AR_PASSIVE, 0) < 0)
            stay_tcp(fd, f, "no module socket");
    } else if (r < 0) {
        stay_tcp(fd, f, passive ? "the peer does not run the framework"
                                : "the peer did not answer the long-lived policy (peer does not run the framework)");
    } else if (passive && tx) {
        stay_tcp(fd, f, "no announcement from the peer before this end's first send");
    }
}

static int in_tcp_phase(int fd, const struct file *f)
{
    return f->kind == FILE_KSOCK && __atomic_load_n(&f->ll_limit, __ATOMIC_RELAXED) != 0 &&
           fd_table_get(fd) == f;
}

int anchor_ll_classify(int fd, struct file *f, int tx)
{
    int err = errno;
    pthread_mutex_lock(&f->lock);
    if (in_tcp_phase(fd, f) && __atomic_load_n(&f->ll_gate, __ATOMIC_RELAXED) > tx)
        classify_locked(fd, f, tx);
    int moved = fd_table_get(fd) != f;
    pthread_mutex_unlock(&f->lock);
    errno = err;
    return moved;
}

void anchor_ll_cross(int fd, struct file *f)
{
    int err = errno;
    pthread_mutex_lock(&f->lock);
    if (!in_tcp_phase(fd, f) ||
        __atomic_load_n(&f->ll_bytes, __ATOMIC_RELAXED) < __atomic_load_n(&f->ll_limit, __ATOMIC_RELAXED))
        goto out;
    if (anchor_local_other_end(fd)) {
        /* both ends in this process: one thread could wait in a send for
         * the other end's read that only it would make */
        stay_tcp(fd, f, "both ends of the connection are in this process");
        goto out;
    }
    int flags = NSTACK_ANCHOR_LATE;
    if (__atomic_load_n(&f->ll_gate, __ATOMIC_RELAXED)) {
        classify_locked(fd, f, 1);
        if (!in_tcp_phase(fd, f))
            goto out;            /* stays on TCP */
        if (__atomic_load_n(&f->ll_gate, __ATOMIC_RELAXED))
            /* an active written past its N before the answer came */
            flags |= NSTACK_ANCHOR_LL_WAIT | NSTACK_ANCHOR_LL_CODE(f->ll_code);
        else if (__atomic_load_n(&f->ll_bytes, __ATOMIC_RELAXED) < __atomic_load_n(&f->ll_limit, __ATOMIC_RELAXED))
            goto out;            /* the agreed limit is higher */
    }
    /* No other call of the application may be inside a kernel call on
     * the socket once KICK or MARK can be on the wire: close the door,
     * then wait for those inside (never long: TCP-phase reads do not
     * sleep in the kernel). If one stays (a send blocked on a full
     * buffer), the switch waits for a later call. */
    __atomic_store_n(&f->ll_switching, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 1000 && __atomic_load_n(&f->ll_inflight, __ATOMIC_SEQ_CST) > 0; i++)
        sched_yield();
    if (__atomic_load_n(&f->ll_inflight, __ATOMIC_SEQ_CST) > 0) {
        __atomic_store_n(&f->ll_switching, 0, __ATOMIC_SEQ_CST);
        goto out;
    }
    LOG_DBG("fd %d: long-lived policy: %llu bytes on TCP, moving to %s", fd,
            (unsigned long long)__atomic_load_n(&f->ll_bytes, __ATOMIC_RELAXED), g_stacks[f->ll_stack].name);
    /* ll_limit and ll_switching stay set on the retired kernel file: a
     * call that loaded it before the table changed takes the slow path
     * and goes to the module (only a failed switch clears them) */
    __atomic_store_n(&f->ll_gate, 0, __ATOMIC_RELAXED);
    if (anchor_attach(fd, f, f->ll_stack, f->ll_role, flags) < 0) {
        stay_tcp(fd, f, "no module socket for the switch");
        __atomic_store_n(&f->ll_switching, 0, __ATOMIC_SEQ_CST);
    } else if (__atomic_load_n(&g_poll_waiters, __ATOMIC_ACQUIRE) > 0) {
        ev_poll_wake_all();      /* a blocked TCP-phase read goes to the module (read_wait) */
    }
out:
    pthread_mutex_unlock(&f->lock);
    errno = err;
}

/* ---- reads in the TCP phase ---------------------------------------------- */

/* The switch ran (or runs: its lock is held meanwhile): the read goes to
 * the module now. -2 when fd holds no module file (the caller reads TCP). */
static ssize_t read_moved(int fd, struct file *f, struct msghdr *msg, int flags)
{
    pthread_mutex_lock(&f->lock);        /* a switch in progress ends first */
    pthread_mutex_unlock(&f->lock);
    struct file *m = file_get(fd);
    if (m == NULL)
        return -2;
    ssize_t r = -2;
    if (m->kind == FILE_MSOCK && MODULE_IMPLEMENTS(m->mod, recvmsg))
        r = MCALL(m, recvmsg, msg, flags);
    int err = errno;
    file_put(m);
    errno = err;
    return r;
}

static int rcv_timeout_ms(int fd)
{
    struct timeval tv = { 0, 0 };
    socklen_t l = sizeof(tv);
    if (LIBC(getsockopt)(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &l) < 0 || (!tv.tv_sec && !tv.tv_usec))
        return -1;
    return (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000);
}

/* Blocking read: wait until the socket is readable, or until urgent data
 * (the peer's mark) came, which may need the switch first, or until
 * another thread's call switched the connection: its module may consume
 * the peer's mark before this poll looks again (then nothing on the TCP
 * socket would ever wake it), so the switch wakes the process's
 * registered waiters (this thread's wake eventfd, poll_agg.c). 0 to try
 * again, -1/errno (EAGAIN: SO_RCVTIMEO expired; EINTR). */
static int read_wait(int fd, struct file *f)
{
    int ms = rcv_timeout_ms(fd);
    int wfd = ev_poll_wait_register();
    struct pollfd p[2] = { { .fd = fd, .events = POLLIN | POLLPRI | POLLRDHUP },
                           { .fd = wfd, .events = POLLIN } };
    /* registered first, then looked: a switch after the look wakes us */
    uint64_t mark = sig_mark();
    int r = 1;
    if (fd_table_get(fd) == f && !__atomic_load_n(&f->ll_switching, __ATOMIC_SEQ_CST))
        r = LIBC(poll)(p, wfd >= 0 ? 2 : 1, ms);
    int err = errno;
    if (wfd >= 0)
        ev_poll_wait_unregister(wfd);
    errno = err;
    if (r < 0 && errno == EINTR && sig_restarts(mark, ms >= 0))
        return 0;
    if (r == 0)
        errno = EAGAIN;
    if (r <= 0)
        return -1;
    if (p[0].revents & POLLPRI) {
        if (__atomic_load_n(&f->ll_gate, __ATOMIC_RELAXED))
            anchor_ll_classify(fd, f, 0);
        if (__atomic_load_n(&f->ll_bytes, __ATOMIC_RELAXED) >= __atomic_load_n(&f->ll_limit, __ATOMIC_RELAXED))
            anchor_ll_cross(fd, f);       /* a mark can only come once we crossed */
    }
    return 0;
}

/* Unclassified (ll_gate): a read must not consume a byte before the
 * peer's announcement or answer is known, or it could pass that urgent
 * byte. A peek first: with a byte there, the classification is decisive
 * (the urgent byte precedes every in-band one). 1: go on reading, 0:
 * nothing there yet (EAGAIN). */
static int gate_settled(int fd, struct file *f)
{
    if (!__atomic_load_n(&f->ll_gate, __ATOMIC_RELAXED))
        return 1;
    uint8_t b;
    ssize_t pk = LIBC(recv)(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    int err = errno;
    anchor_ll_classify(fd, f, 0);
    errno = err;
    return pk >= 0 || (err != EAGAIN && err != EWOULDBLOCK) || !__atomic_load_n(&f->ll_gate, __ATOMIC_RELAXED);
}

/* A switch that is due but waits for another thread's call to leave the
 * kernel (a send blocked on a full buffer), or that may be due (that
 * send's bytes are not counted yet): the peer's KICK may come, and a read
 * at its mark would pass it. So the head is checked without a race:
 * a peek, then the pending urgent byte, then SIOCATMARK - in this order,
 * as in the module's rs_anc_mark_at_head: SIOCATMARK first would also be
 * true at the hole of our own answer/announcement read before, while a
 * KICK arriving after that look lies behind data. 0: no switch due, or
 * data at the head (a read copies it first and stops at any mark behind
 * it); 1: the peer's mark at the head; 2: nothing there yet. */
static int due_head(int fd, struct file *f)
{
    /* with another thread's send inside the kernel the count lags: the
     * peer may have crossed on bytes it read of that send */
    if (anchor_ll_seen(f) < __atomic_load_n(&f->ll_limit, __ATOMIC_RELAXED))
        return 0;
    anchor_ll_cross(fd, f);
    if (fd_table_get(fd) != f)
        return 0;                        /* switched: the caller goes to the module */
    uint8_t b, u;
    int at = 0;
    ssize_t pk = LIBC(recv)(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    ssize_t ob = LIBC(recv)(fd, &u, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT);
    int pending = ob == 1 || (ob < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    if (pending && LIBC(ioctl)(fd, SIOCATMARK, &at) == 0 && at)
        return ob == 1 ? 1 : 2;          /* 2: the mark's byte is not here yet */
    return pk >= 0 ? 0 : 2;
}

ssize_t anchor_ll_recvmsg(int fd, struct file *f, struct msghdr *msg, int flags)
{
    int nb = __atomic_load_n(&f->nonblock, __ATOMIC_RELAXED) || (flags & MSG_DONTWAIT);
    for (;;) {
        if (!gate_settled(fd, f)) {
            if (nb) {
                errno = EAGAIN;
                return -1;
            }
            if (read_wait(fd, f) < 0)
                return -1;
            continue;
        }
        int due = due_head(fd, f);
        if (due && nb) {
            errno = EAGAIN;
            return -1;
        }
        if (due == 1) {
            struct timespec ts = { 0, 1000000 };   /* until the switch can run */
            nanosleep(&ts, NULL);
            continue;
        }
        if (due == 2) {
            if (read_wait(fd, f) < 0)
                return -1;
            continue;
        }
        if (anchor_ll_gate(fd, f, 0) || fd_table_get(fd) != f || !anchor_ll_enter(f)) {
            ssize_t r = read_moved(fd, f, msg, flags);
            if (r != -2)
                return r;
            if (fd_table_get(fd) == f && __atomic_load_n(&f->ll_limit, __ATOMIC_RELAXED))
                continue;                    /* the switch waits for a later call */
            return LIBC(recvmsg)(fd, msg, flags);   /* stays on TCP */
        }
        ssize_t r = LIBC(recvmsg)(fd, msg, flags | MSG_DONTWAIT);
        int err = errno;
        anchor_ll_leave(f);
        if (r > 0 && !(flags & MSG_PEEK))
            anchor_ll_count(fd, f, r);       /* a peek moves nothing */
        if (r >= 0 || nb || (err != EAGAIN && err != EWOULDBLOCK)) {
            errno = err;
            return r;
        }
        if (read_wait(fd, f) < 0)
            return -1;
    }
}
