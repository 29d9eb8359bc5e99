/*
 * rs_anchor_down.c - an upgraded anchored connection goes back to TCP
 * (the "downgrade"), so that a fork child or an exec'd image, which
 * cannot use the parent's RDMA resources, carries it with kernel
 * semantics. Protocol (doc/rsocket-framework.md, "Back to TCP"):
 *
 *   D (forks)                                   P (peer)
 *   stop sending on RDMA (RELEASING)
 *   DOWN(tx bytes) ------- TCP in-band ------->  read in rs_anchor_check:
 *                                                stop sending on RDMA,
 *                                                wait until D's tx bytes
 *                                                arrived and its own writes
 *                                                completed, keep what the app
 *                                                has not read (leftover),
 *                <------ TCP in-band --------  ACK(tx bytes)   -> DOWN
 *   wait until P's tx bytes arrived, keep the                    (sends on TCP,
 *   unread bytes in the leftover, destroy the                     reads: leftover
 *   RDMA side quietly -> DOWN                                     first, then TCP)
 *
 * After the upgrade no application byte crosses TCP and both ends run the
 * framework, so DOWN and ACK are the first in-band bytes either end reads
 * there; everything sent on TCP after them follows in order. Both ends
 * forking at once: each reads the other's DOWN while RELEASING, answers
 * ACK and finishes at the other's ACK.
 *
 * DOWN: the leftover lives in a MAP_SHARED mapping made before the fork,
 * so a parent and its children consume it once, in order, under a
 * process-shared robust mutex. Data calls in DOWN take neither the socket
 * lock nor any RDMA resource (a fork child may make them): reads take
 * from the leftover, sends go to the TCP socket; once the leftover is
 * empty every call says ENOPROTOOPT and poll_events NSTACK_EV_FALLBACK,
 * and the dispatcher carries the connection on TCP for good.
 */
#include "rs_anchor.h"
#include "rs_down.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define RS_DOWN_MSG_LEN 16        /* "NSAN", version, type, 0, 0, count (BE 64) */
#define RS_DOWN_TYPE    3         /* "I stopped sending on RDMA after <count> bytes" */
#define RS_ACK_TYPE     4         /* the answer, with the answerer's count */
#define RS_DRAIN_MS     2000      /* bound of the wait for bytes in flight */

/* Bytes RDMA delivered that no read took before the downgrade. head/len
 * are guarded by mu (process-shared: fork children consume it too). */
struct rs_leftover {
    pthread_mutex_t mu;
    size_t map_len, cap, head, len;
    uint64_t taken;               /* grows at every read: the ET generation */
    uint8_t data[];
};

/* Written under the socket lock until the phase becomes DOWN (a release
 * store), read-only after it: the DOWN calls read it without the lock. */
struct rs_down {
    struct rs_leftover *lo;       /* NULL: nothing left over */
    int kfd;                      /* the TCP socket (the dispatcher's dup) */
    int keep_rdma;                /* P: the RDMA side lives until close */
};

/* ---- the leftover ------------------------------------------------------ */

static struct rs_leftover *lo_create(size_t cap)
{
    size_t len = sizeof(struct rs_leftover) + cap;
    struct rs_leftover *lo = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (lo == MAP_FAILED)
        return NULL;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&lo->mu, &a);
    pthread_mutexattr_destroy(&a);
    lo->map_len = len;
    lo->cap = cap;
    return lo;
}

static void lo_lock(struct rs_leftover *lo)
{
    /* a process that died holding it left head/len consistent: every
     * update is made before the unlock in one short section */
    if (pthread_mutex_lock(&lo->mu) == EOWNERDEAD)
        pthread_mutex_consistent(&lo->mu);
}

static size_t lo_len(struct rs_leftover *lo)
{
    if (!lo)
        return 0;
    return __atomic_load_n(&lo->len, __ATOMIC_ACQUIRE);
}

/* Copies up to the iovecs' room out of the leftover; consumes it unless
 * peeking. Returns the bytes copied (0: empty). */
static size_t lo_take(struct rs_leftover *lo, const struct iovec *iov, int iovcnt, int peek)
{
    size_t done = 0;
    lo_lock(lo);
    size_t head = lo->head, left = lo->len;
    for (int i = 0; i < iovcnt && left; i++) {
        size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
        memcpy(iov[i].iov_base, lo->data + head, n);
        head += n;
        left -= n;
        done += n;
    }
    if (!peek && done) {
        lo->head = head;
        __atomic_store_n(&lo->len, left, __ATOMIC_RELEASE);
        lo->taken++;
    }
    pthread_mutex_unlock(&lo->mu);
    return done;
}

/* ---- in-band messages ---------------------------------------------------- */

static void msg_encode(uint8_t m[RS_DOWN_MSG_LEN], int type, uint64_t count)
{
    memcpy(m, RS_ANC_MAGIC, 4);
    m[4] = RS_ANC_VERSION;
    m[5] = (uint8_t)type;
    m[6] = m[7] = 0;
    for (int i = 0; i < 8; i++)
        m[8 + i] = (uint8_t)(count >> (56 - 8 * i));
}

static int msg_send(int kfd, int type, uint64_t count)
{
    uint8_t m[RS_DOWN_MSG_LEN];
    msg_encode(m, type, count);
    /* the TCP send buffer is empty: nothing went on TCP since the upgrade */
    return rs_anc_send_whole(kfd, m, sizeof(m));
}

/* 1: a whole message read (*type, *count); 0: not yet (incomplete or
 * nothing); -1: EOF or a TCP error (nothing read: the anchor check deals
 * with it); -2: bytes that are no message of ours. */
static int msg_recv(int kfd, int *type, uint64_t *count)
{
    uint8_t m[RS_DOWN_MSG_LEN];
    ssize_t n = recv(kfd, m, sizeof(m), MSG_PEEK | MSG_DONTWAIT);
    if (n <= 0)
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    if (memcmp(m, RS_ANC_MAGIC, (size_t)n < 4 ? (size_t)n : 4) ||
        (n > 4 && m[4] != RS_ANC_VERSION) ||
        (n > 5 && m[5] != RS_DOWN_TYPE && m[5] != RS_ACK_TYPE))
        return -2;
    if (n < (ssize_t)sizeof(m))
        return 0;
    if (recv(kfd, m, sizeof(m), MSG_DONTWAIT) != (ssize_t)sizeof(m))
        return -2;
    *type = m[5];
    *count = 0;
    for (int i = 0; i < 8; i++)
        *count = *count << 8 | m[8 + i];
    return 1;
}

int rs_down_waiting(int kfd)
{
    uint8_t m[RS_DOWN_MSG_LEN], want[RS_DOWN_MSG_LEN];
    ssize_t n = recv(kfd, m, 6, MSG_PEEK | MSG_DONTWAIT);
    msg_encode(want, RS_DOWN_TYPE, 0);
    return n > 0 && memcmp(m, want, (size_t)n) == 0;
}

/* ---- the steps (socket lock held) --------------------------------------- */

static void set_phase(struct rsock *s, int p)
{
    __atomic_store_n(&s->anc_phase, p, __ATOMIC_RELEASE);
    rs_event(s);
    if (s->cookie && rs_notify_fn)
        rs_notify_fn(s->cookie);
}

static int down_state(struct rsock *s)
{
    if (s->down)
        return 0;
    s->down = calloc(1, sizeof(*s->down));
    if (!s->down) {
        errno = ENOMEM;
        return -1;
    }
    s->down->kfd = rs_anchor_kfd(s);
    return 0;
}

/* Completions until the peer's `count` data bytes arrived (they were
 * posted before its DOWN/ACK). Bounded by RS_DRAIN_MS; CQ only, so the
 * anchor is not read again from inside. */
static int wait_rx(struct rsock *s, uint64_t count)
{
    int64_t deadline = rs_now_ms() + RS_DRAIN_MS;
    while (s->rx_bytes < count) {
        if (s->state == RS_ERROR || !s->cq || rs_now_ms() >= deadline) {
            errno = s->state == RS_ERROR ? (s->err ? s->err : EIO) : ETIMEDOUT;
            return -1;
        }
        rs_progress_sources(s, RS_SRC_CQ, 1);
        if (s->rx_bytes < count) {
            struct pollfd p = { .fd = s->comp_chan->fd, .events = POLLIN };
            poll(&p, 1, 1);
        }
    }
    return 0;
}

/* Every write we posted completed, so the peer has all our bytes whatever
 * becomes of our queue pair: a signalled empty write (the keepalive
 * probe: no receive consumed there) behind them, then completions (RC
 * completes in order). Bounded by RS_DRAIN_MS. */
static int wait_sent(struct rsock *s)
{
    int64_t deadline = rs_now_ms() + RS_DRAIN_MS;
    if (s->sq_track.count && s->ctrl_avail && s->id && s->id->qp &&
        rs_post_write(s, rs_wrid(RS_OP_CTRL, RS_CTRL_KEEPALIVE, 0), 0, 0, NULL, 0, 0,
                      s->remote_sgl.addr, s->remote_sgl.key) == 0) {
        s->ctrl_avail--;
        s->ka_outstanding = 1;
    }
    while (s->sq_track.count) {
        if (s->state == RS_ERROR || !s->cq || rs_now_ms() >= deadline) {
            errno = s->state == RS_ERROR ? (s->err ? s->err : EIO) : ETIMEDOUT;
            return -1;
        }
        rs_progress_sources(s, RS_SRC_CQ, 1);
        if (s->sq_track.count) {
            struct pollfd p = { .fd = s->comp_chan->fd, .events = POLLIN };
            poll(&p, 1, 1);
        }
    }
    return 0;
}

/* What the application has not read from the receive buffer. */
static int keep_unread(struct rsock *s)
{
    size_t q = s->rx_queued;
    if (!q)
        return 0;
    struct rs_leftover *lo = lo_create(q);
    if (!lo)
        return -1;
    /* no credit update goes back for what we take: the peer is done with
     * RDMA (and may have destroyed its side) */
    s->peer_gone = 1;
    size_t got = 0;
    for (int i = 0; i < 64 && got < q; i++) {
        struct iovec iov = { lo->data + got, q - got };
        ssize_t n = rs_recvv_locked(s, &iov, 1, MSG_DONTWAIT);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    lo->len = got;
    s->down->lo = lo;
    return 0;
}

static void unwatch(struct rsock *s, int fd)
{
    if (fd >= 0)
        epoll_ctl(s->wait_fd, EPOLL_CTL_DEL, fd, NULL);
}

/* The RDMA side leaves the wait fd (its events mean nothing now); the
 * initiator destroys it: the peer has everything it sent (its ACK came
 * after it waited for our count). */
static void drop_rdma(struct rsock *s)
{
    unwatch(s, s->comp_chan ? s->comp_chan->fd : -1);
    unwatch(s, s->cm_chan ? s->cm_chan->fd : -1);
    unwatch(s, s->timer_fd);
    if (s->timer_fd >= 0)
        close(s->timer_fd);
    s->timer_fd = -1;
    s->anchor_fd = -1;            /* no liveness check of the engine any more */
    if (s->down->keep_rdma)
        return;
    rs_endpoint_destroy(s);
    rs_iomap_free(s);
    rs_cms_destroy_id(s);
    if (s->cm_chan)
        rdma_destroy_event_channel(s->cm_chan);
    s->cm_chan = NULL;
    free(s->rmsg);
    s->rmsg = NULL;
}

/* Everything the peer sent on RDMA arrived: keep what the application
 * has not read, answer the peer's DOWN when `ack` (before DOWN shows: a
 * send of another thread then goes on TCP, after the ACK), leave RDMA. */
static void finish(struct rsock *s, uint64_t peer_count, int ack)
{
    if (wait_rx(s, peer_count) || keep_unread(s)) {
        rs_set_error(s, errno, "anchor: returning the connection to TCP failed");
        return;
    }
    if (ack && (wait_sent(s) || msg_send(s->down->kfd, RS_ACK_TYPE, s->tx_bytes))) {
        rs_set_error(s, errno, "anchor: cannot answer the peer's DOWN");
        return;
    }
    drop_rdma(s);
    struct epoll_event e = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = s->down->kfd };
    if (epoll_ctl(s->wait_fd, EPOLL_CTL_MOD, s->down->kfd, &e))
        epoll_ctl(s->wait_fd, EPOLL_CTL_ADD, s->down->kfd, &e);
    rs_log(1, "anchor: connection returned to TCP (%zu bytes RDMA delivered kept for reading first)",
           lo_len(s->down->lo));
    set_phase(s, RS_ANC_PHASE_DOWN);
}

/* The peer's DOWN: stop sending on RDMA, wait for its bytes, answer. */
static void on_down(struct rsock *s, uint64_t count)
{
    int was = s->anc_phase;
    if ((was != RS_ANC_PHASE_UPGRADED && was != RS_ANC_PHASE_RELEASING) || down_state(s)) {
        rs_set_error(s, EPROTO, "anchor: DOWN from the peer in a wrong state");
        return;
    }
    if (was == RS_ANC_PHASE_UPGRADED) {
        s->down->keep_rdma = 1;   /* the peer destroys it once it has our bytes */
        set_phase(s, RS_ANC_PHASE_RELEASING);
        finish(s, count, 1);
        return;
    }
    /* both ends went down at once: answer; ours finishes at the peer's
     * ACK (sent once it has our bytes) */
    if (wait_rx(s, count) || wait_sent(s) || msg_send(s->down->kfd, RS_ACK_TYPE, s->tx_bytes))
        rs_set_error(s, errno, "anchor: cannot answer the peer's DOWN");
}

int rs_down_inband(struct rsock *s)
{
    int kfd = rs_anchor_kfd(s), type = 0;
    uint64_t count = 0;
    if (kfd < 0)
        return 0;
    int r = msg_recv(kfd, &type, &count);
    if (r == 0)
        return 1;
    if (r == -1)
        return 0;
    if (r == -2) {
        rs_set_error(s, EPROTO, "anchor: foreign in-band bytes on an upgraded connection");
        return 0;
    }
    if (type == RS_DOWN_TYPE)
        on_down(s, count);
    else if (s->anc_phase == RS_ANC_PHASE_RELEASING)
        finish(s, count, 0);
    else
        rs_set_error(s, EPROTO, "anchor: ACK from the peer without a DOWN");
    return 1;
}

/* ---- the module op (dispatcher's fork/exec) ------------------------------ */

int rs_anchor_release(struct rsock *s, int timeout_ms)
{
    /* released already (s->down is published before the phase): no lock,
     * a fork child may ask */
    if (__atomic_load_n(&s->anc_phase, __ATOMIC_ACQUIRE) == RS_ANC_PHASE_DOWN)
        return lo_len(s->down->lo) ? 1 : 0;
    if (timeout_ms <= 0) {
        errno = ENOTCONN;       /* a question only: nothing to start */
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    int r = -1;
    int64_t deadline = rs_now_ms() + timeout_ms;
    if (s->anc_phase == RS_ANC_PHASE_DOWN) {
        r = lo_len(s->down->lo) ? 1 : 0;
        goto out;
    }
    if (rs_check_usable(s))
        goto out;
    /* a release an earlier call started (the dispatcher starts those of a
     * fork with a short wait each, then waits for the rest together) is
     * waited for again; any other state starts nothing */
    int again = s->anc_phase == RS_ANC_PHASE_RELEASING && s->state == RS_CONNECTED && s->down != NULL;
    if (!again && (!s->anc || s->anc_phase != RS_ANC_PHASE_UPGRADED || s->state != RS_CONNECTED ||
                   s->peer_gone || down_state(s))) {
        errno = s->anc_phase == RS_ANC_PHASE_RELEASING ? EALREADY : ENOTCONN;
        goto out;
    }
    if (!again) {
        set_phase(s, RS_ANC_PHASE_RELEASING);      /* no send goes on RDMA now */
        if (msg_send(s->down->kfd, RS_DOWN_TYPE, s->tx_bytes)) {
            int err = errno;
            set_phase(s, RS_ANC_PHASE_UPGRADED);   /* nothing was written */
            errno = err;
            goto out;
        }
    }
    while (s->anc_phase == RS_ANC_PHASE_RELEASING && s->state == RS_CONNECTED) {
        if (rs_wait_locked(s, deadline) && errno != EINTR)
            break;
    }
    if (s->anc_phase == RS_ANC_PHASE_DOWN) {
        r = lo_len(s->down->lo) ? 1 : 0;
    } else {
        rs_log(0, "anchor: the peer did not answer DOWN within %d ms; the connection stays on RDMA in "
                  "this process until it does (a fork child gets EOWNERDEAD on it)", timeout_ms);
        errno = s->anc_phase == RS_ANC_PHASE_RELEASING ? ETIMEDOUT : (s->err ? s->err : ECONNRESET);
    }
out:;
    int err = errno;
    pthread_mutex_unlock(&s->lock);
    errno = err;
    return r;
}

/* ---- calls in DOWN: no socket lock, no RDMA (a fork child makes them) ---- */

static struct rs_leftover *leftover_of(struct rsock *s)
{
    return s->down ? s->down->lo : NULL;
}

ssize_t rs_down_recvv(struct rsock *s, const struct iovec *iov, int iovcnt, int flags)
{
    struct rs_leftover *lo = leftover_of(s);
    if (flags & MSG_OOB) {        /* urgent data is the TCP socket's own */
        struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
        return recvmsg(s->down->kfd, &m, flags);
    }
    size_t n = lo && lo_len(lo) ? lo_take(lo, iov, iovcnt, flags & MSG_PEEK) : 0;
    if (n)
        return (ssize_t)n;
    errno = ENOPROTOOPT;          /* the dispatcher reads TCP from now on */
    return -1;
}

ssize_t rs_down_sendv(struct rsock *s, const struct iovec *iov, int iovcnt, int flags)
{
    if (!lo_len(leftover_of(s))) {
        errno = ENOPROTOOPT;      /* nothing left: the dispatcher falls back */
        return -1;
    }
    struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
    return sendmsg(s->down->kfd, &m, flags);
}

uint32_t rs_down_poll_events(struct rsock *s, uint64_t *gen)
{
    struct rs_leftover *lo = leftover_of(s);
    if (!lo_len(lo))
        return NSTACK_EV_FALLBACK;
    struct pollfd p = { .fd = s->down->kfd, .events = POLLOUT | POLLRDHUP };
    uint32_t m = EPOLLIN | EPOLLRDNORM;
    if (poll(&p, 1, 0) > 0)
        m |= (p.revents & POLLOUT ? EPOLLOUT | EPOLLWRNORM : 0) | (p.revents & POLLRDHUP ? EPOLLRDHUP : 0) |
             (p.revents & POLLERR ? EPOLLERR : 0) | (p.revents & POLLHUP ? EPOLLHUP : 0);
    if (gen)
        *gen = __atomic_load_n(&s->gen, __ATOMIC_RELAXED) + __atomic_load_n(&lo->taken, __ATOMIC_RELAXED);
    return m;
}

int rs_down_ioctl(struct rsock *s, unsigned long req, void *arg)
{
    if (req != FIONREAD)
        return ioctl(s->down->kfd, req, arg);
    if (!arg) {
        errno = EFAULT;
        return -1;
    }
    int k = 0;
    if (ioctl(s->down->kfd, FIONREAD, &k))
        return -1;
    *(int *)arg = (int)lo_len(leftover_of(s)) + k;
    return 0;
}

void rs_down_moved_kfd(struct rsock *s, int from, int to)
{
    if (s->down && s->down->kfd == from)
        s->down->kfd = to;
}

int rs_down_kfd(struct rsock *s)
{
    return s->down->kfd;
}

/* From rs_free: the leftover mapping of this process. */
void rs_down_free(struct rsock *s)
{
    if (!s->down)
        return;
    if (s->down->lo)
        munmap(s->down->lo, s->down->lo->map_len);
    free(s->down);
    s->down = NULL;
}
