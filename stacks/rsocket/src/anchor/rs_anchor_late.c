/*
 * rs_anchor_late.c - the long-lived policy, the module's side (ABI 1.3;
 * doc/rsocket-framework.md, "Long-lived policy").
 *
 * anchor(NSTACK_ANCHOR_LATE): the connection already carried data on TCP.
 * Each direction ends its TCP data with one urgent byte: the active's KICK
 * (sent at once: every byte it wrote before was written), the passive's
 * MARK (sent when its careful read reached KICK), followed in-band by
 * OFFER; from there on the upgrade-first states run (P_OFFERING, A_OFFER,
 * ...). Until then the module passes the application's data through to
 * the TCP socket: sends of the passive, reads of both, where a read never
 * consumes a byte past the peer's mark (a peek, then SIOCATMARK, then the
 * read: the kernel stops a read at the mark once it copied a byte).
 *
 * Locking: the socket lock, as in rs_anchor.c; a pass-through call holds
 * it only around its nonblocking system calls (a blocking call waits in
 * poll() with it dropped), so KICK/MARK never land inside another
 * thread's write.
 */
#include "rs_anchor.h"
#include "rs_anchor_int.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/sockios.h>

#include "rs_intr.h"

/* The data the application reads still comes from TCP. */
static int reads_through(int p)
{
    return p == ANC_A_ANSWER || p == ANC_A_KICK || p == ANC_A_LATE || p == ANC_P_LATE;
}

/* Sends still carried on TCP: our end of the stream is not marked yet
 * (an active waiting for the answer first waits RS_ANCHOR_HELLO_MS, and so
 * does a passive whose peer's KICK arrived: kick_hold). */
static int sends_through_s(const struct rsock *s, int p)
{
    return (p == ANC_P_LATE && s->anc->kick_hold != 1) || (p == ANC_A_ANSWER && s->anc->answer_late);
}
#define sends_through(p) sends_through_s(s, (p))

/* ---- the switch: states ------------------------------------------------- */

static int kfd_writable(int kfd)
{
    struct pollfd p = { .fd = kfd, .events = POLLOUT };
    return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}

/* KICK goes out as soon as the send buffer takes one byte (nothing
 * in-band follows it before OFFER came). While it cannot (A_KICK: our data
 * before it fills the buffer, the passive does not read), this end's reads
 * wait too, up to RS_ANCHOR_HELLO_MS (kick_late): reading the passive's
 * data through meanwhile lets an application there that writes until
 * EAGAIN before it reads write on and on over TCP, never reading the data
 * in front of KICK. */
static void active_kick(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    if (rs_anc_urgent_send(a->kfd, RS_ANC_KICK) == 0) {
        a->hello_deadline = 0;
        a->deadline = rs_now_ms() + rs_tun.anchor_timeout_ms;
        return rs_anc_set_phase(s, ANC_A_LATE);
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        return rs_anc_fallback(s, "KICK not sent");
    if (s->anc_phase != ANC_A_KICK) {
        a->hello_deadline = rs_now_ms() + rs_tun.anchor_hello_ms;
        rs_anc_set_phase(s, ANC_A_KICK);
        rs_anc_rewatch(s);               /* the timer ends the read hold */
    } else if (!a->kick_late && rs_now_ms() >= a->hello_deadline) {
        a->kick_late = 1;                /* reads pass through from now on */
        a->hello_deadline = 0;
        rs_event(s);
    }
}

static void passive_mark(struct rsock *s)
{
    if (!kfd_writable(s->anc->kfd))
        return rs_anc_set_phase(s, ANC_P_MARK);
    if (rs_anc_urgent_send(s->anc->kfd, RS_ANC_MARK))
        return rs_anc_fail(s, errno, "sending MARK");
    rs_anc_passive_commit(s);            /* OFFER next, as after a KICK */
}

void rs_anc_late_open(struct rsock *s, int flags)
{
    s->anc->hello_sent = 1;
    if (s->anc->role == NSTACK_ADOPT_ACTIVE && (flags & NSTACK_ANCHOR_LL_WAIT)) {
        /* sends wait for the answer (an RTT from a framework peer) before
         * they pass through: the fewer bytes before KICK, the sooner the
         * passive's read reaches it */
        s->anc->hello_deadline = rs_now_ms() + rs_tun.anchor_hello_ms;
        s->anc->own_code = NSTACK_ANCHOR_LL_CODE_OF(flags);
        rs_anc_set_phase(s, ANC_A_ANSWER);
    }
    else if (s->anc->role == NSTACK_ADOPT_ACTIVE)
        active_kick(s);
    else
        rs_anc_set_phase(s, ANC_P_LATE);
}

/* A_ANSWER: in-band data (or EOF) before any answer: a plain passive. */
static void no_answer(struct rsock *s)
{
    struct sockaddr_storage peer;
    socklen_t len;
    if (rs_anc_addr(s->anc->kfd, 1, &peer, &len) == 0)
        rs_anc_negcache_add(&peer);
    rs_anc_fallback(s, "no answer to the long-lived policy before the peer's data");
}

/* The peer's mark reached (lock held): what it ends. */
static void mark_seen(struct rsock *s, uint8_t v)
{
    struct rs_anchor *a = s->anc;
    if (s->anc_phase == ANC_A_ANSWER) {
        if (!rs_anc_ll_value(v))
            return rs_anc_fallback(s, "foreign urgent data instead of an answer");
        /* The passive counts to the agreed (larger) limit: a KICK at ours,
         * below it, could reach its fast path, whose read passes a mark.
         * Nothing in-band was sent: both stay on TCP (the passive passes
         * its data through once it crosses, and never sees a KICK). */
        if (a->own_code && v - RS_ANC_LL_BASE > a->own_code)
            return rs_anc_fallback(s, "the peer's long-lived policy is larger than the one this end "
                                      "crossed before the answer came");
        struct sockaddr_storage peer;
        socklen_t len;
        if (rs_anc_addr(a->kfd, 1, &peer, &len) == 0)
            rs_anc_poscache_add(&peer);
        return active_kick(s);           /* the answer: KICK ends our TCP data here */
    }
    if (a->role == NSTACK_ADOPT_ACTIVE && v == RS_ANC_MARK) {
        a->deadline = rs_now_ms() + rs_tun.anchor_timeout_ms;
        return rs_anc_set_phase(s, ANC_A_OFFER);
    }
    if (a->role == NSTACK_ADOPT_PASSIVE && v == RS_ANC_KICK) {
        if (rs_anc_skip_mark(a->kfd))
            return rs_anc_fail(s, EPROTO, "data behind the KICK of the switch");
        return passive_mark(s);
    }
    rs_anc_fail(s, EPROTO, "unexpected urgent byte during the switch");
}

/* P_LATE: the active's KICK arrived (its urgent byte, or its pointer, is
 * there, in front of it only the application's data the reads have not
 * reached). The passive's
 * TCP data ends where its reads reach KICK (MARK goes out then), so its
 * sends wait meanwhile - an application that writes as long as it can
 * before it reads (edge-triggered epoll) would otherwise carry megabytes on
 * TCP first. Bounded by RS_ANCHOR_HELLO_MS, as the active's wait for the
 * answer: one that reads nothing before its send completes does not hang.
 * Lock held. */
static void kick_arrival(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    uint8_t v;
    ssize_t n = a->kick_hold ? 0 : recv(a->kfd, &v, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT);
    /* EAGAIN: the urgent pointer came (a window probe carries it), its
     * byte not yet - in P_LATE only KICK's can come */
    if (a->kick_hold == 0 && ((n == 1 && v == RS_ANC_KICK) || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))) {
        a->kick_hold = 1;
        a->hello_deadline = rs_now_ms() + rs_tun.anchor_hello_ms;
        rs_anc_rewatch(s);               /* the timer ends the hold */
        rs_event(s);                     /* POLLOUT goes (rs_anc_late_mask) */
    } else if (a->kick_hold == 1 && rs_now_ms() >= a->hello_deadline) {
        a->kick_hold = 2;                /* sends pass through from now on */
        a->hello_deadline = 0;
        rs_event(s);
    }
}

void rs_anc_late_step(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    uint8_t v;
    switch (s->anc_phase) {
    case ANC_A_KICK:
        return active_kick(s);
    case ANC_P_MARK:
        return passive_mark(s);
    case ANC_A_LATE:
        if (rs_now_ms() >= a->deadline)
            return rs_anc_fail(s, ETIMEDOUT, "no MARK from the peer");
        break;
    case ANC_A_ANSWER:
        if (!a->answer_late && rs_now_ms() >= a->hello_deadline) {
            a->answer_late = 1;          /* sends pass through from now on */
            a->hello_deadline = 0;
            rs_event(s);
        }
        break;
    case ANC_P_LATE:
        kick_arrival(s);
        break;
    default:
        return;
    }
    if (rs_anc_mark_at_head(a->kfd, &v) == 1)
        mark_seen(s, v);
    else if (s->anc_phase == ANC_A_ANSWER && rs_anc_inband(a->kfd) >= 0)
        no_answer(s);
}

uint32_t rs_anc_late_interest(const struct rsock *s)
{
    switch (s->anc_phase) {
    case ANC_A_KICK: return EPOLLOUT | EPOLLPRI | EPOLLRDHUP | (s->anc->kick_late ? EPOLLIN : 0);
    case ANC_P_MARK: return EPOLLOUT;
    case ANC_A_ANSWER:
    case ANC_P_LATE: return EPOLLIN | EPOLLPRI | EPOLLRDHUP |
                            (s->anc->out_wanted && sends_through(s->anc_phase) ? EPOLLOUT : 0);
    default:         return EPOLLIN | EPOLLPRI | EPOLLRDHUP;
    }
}


/* Readiness while data passes through: the TCP socket's, without the urgent
 * byte alone (POLLIN with nothing in-band) and without POLLOUT where sends
 * wait for RDMA. */
uint32_t rs_anc_late_mask(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    int p = s->anc_phase;
    if (!reads_through(p))
        return 0;
    struct pollfd pf = { .fd = a->kfd, .events = POLLIN | POLLRDHUP | (sends_through(p) ? POLLOUT : 0) };
    if (poll(&pf, 1, 0) < 0)
        return 0;
    uint32_t m = pf.revents & (POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDHUP);
    uint8_t b;
    if ((m & POLLIN) && !(m & (POLLRDHUP | POLLHUP | POLLERR)) &&
        recv(a->kfd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0)
        m &= ~POLLIN;
    if (sends_through(p))
        a->out_wanted = !(m & POLLOUT);
    if (p == ANC_A_KICK && !a->kick_late)
        m &= ~POLLIN;                    /* reads wait for KICK (active_kick) */
    /* Edge-triggered waiters see an event only when gen moves: the TCP
     * queues changed since the last look (bytes arrived or were acked;
     * a read in between moved gen itself: late_recv). */
    int inq = 0, outq = 0;
    if (ioctl(a->kfd, SIOCINQ, &inq) == 0 && ioctl(a->kfd, SIOCOUTQ, &outq) == 0 &&
        ((uint64_t)inq != a->seen_rcv || (uint64_t)outq != a->seen_ack)) {
        a->seen_rcv = (uint64_t)inq;
        a->seen_ack = (uint64_t)outq;
        s->gen++;
    }
    return m;
}

/* ---- the switch: data passed through ------------------------------------ */

#define RS_LATE_IOV 64    /* a longer vector moves what one call moves */

int rs_anchor_late_kfd(struct rsock *s)
{
    int p = __atomic_load_n(&s->anc_phase, __ATOMIC_ACQUIRE);
    return s->anc && reads_through(p) ? s->anc->kfd : -1;
}

/* A read of TCP data that stops at the peer's mark (lock held). >= 0 bytes
 * (0: EOF), -1/errno, -2: the mark was reached (phase changed). */
static ssize_t late_recv(struct rsock *s, const struct iovec *iov, int n, int flags)
{
    int kfd = s->anc->kfd;
    struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
    int fl = (flags & ~(MSG_WAITALL | MSG_PEEK)) | MSG_DONTWAIT;
    uint8_t v;
    ssize_t p = -1;
    int perr = EAGAIN, mk = 1;
    /* at most two marks in a row: the passive's answer, then its MARK */
    for (int i = 0; i < 3 && mk == 1; i++) {
        p = recvmsg(kfd, &m, fl | MSG_PEEK);
        perr = errno;
        mk = rs_anc_mark_at_head(kfd, &v);
        if (mk == 1) {
            mark_seen(s, v);             /* what the peek saw lies past the mark */
            if (!reads_through(s->anc_phase))
                return -2;
        }
    }
    if (mk == 1 || mk == -1 || p < 0) {
        errno = mk == 0 ? perr : EAGAIN;
        return -1;
    }
    if (p > 0 && s->anc_phase == ANC_A_ANSWER)
        no_answer(s);                    /* data first: a plain peer; it is the app's */
    if (p == 0) {
        rs_anc_fallback(s, "EOF before the switch");
        return 0;
    }
    if (flags & MSG_PEEK)
        return p;
    /* The head is data, so this read copies a byte first and stops at any
     * mark that arrived meanwhile. */
    ssize_t r = recvmsg(kfd, &m, fl);
    if (r > 0)
        s->gen++;                        /* the queue moved (rs_anc_late_mask) */
    return r;
}

static ssize_t late_send(struct rsock *s, const struct iovec *iov, int n, int flags)
{
    uint8_t v;
    /* A_ANSWER: the answer (at the head of the passive's stream when the
     * application read nothing yet) ends our TCP data as soon as it is here */
    if (s->anc_phase == ANC_A_ANSWER && rs_anc_mark_at_head(s->anc->kfd, &v) == 1) {
        mark_seen(s, v);
        if (!sends_through(s->anc_phase))
            return -2;
    }
    struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
    ssize_t r = sendmsg(s->anc->kfd, &m, flags | MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !s->anc->out_wanted) {
        s->anc->out_wanted = 1;
        int err = errno;
        rs_anc_rewatch(s);               /* the wait fd's interest grows EPOLLOUT */
        errno = err;
    }
    return r;
}

static int passes(const struct rsock *s, int p, int tx)
{
    return tx ? sends_through(p) : reads_through(p);
}

/* Blocking pass-through: wait on the TCP socket itself with its own
 * timeout (the application's SO_RCVTIMEO/SO_SNDTIMEO are set there), and
 * on the socket's kick, which every phase change writes (rs_event): a
 * thread asleep here while another one's call ends the pass-through
 * (the switch) must not sleep on a TCP socket that carries nothing more.
 * A read also wakes for urgent data: the peer's mark. */
static int late_wait(struct rsock *s, int tx)
{
    struct timeval tv = { 0, 0 };
    socklen_t l = sizeof(tv);
    int kfd = s->anc->kfd;
    getsockopt(kfd, SOL_SOCKET, tx ? SO_SNDTIMEO : SO_RCVTIMEO, &tv, &l);
    int ms = tv.tv_sec || tv.tv_usec ? (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000) : -1;
    struct pollfd p[2] = { { .fd = kfd, .events = tx ? POLLOUT : POLLIN | POLLPRI | POLLRDHUP },
                           { .fd = s->kick_fd, .events = POLLIN } };
    pthread_mutex_lock(&s->lock);
    if (!passes(s, s->anc_phase, tx)) {
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    s->rpoll_sleepers++;
    pthread_mutex_unlock(&s->lock);
    uint64_t mark = rs_intr_mark();
    int r = poll(p, s->kick_fd >= 0 ? 2 : 1, ms);
    int err = errno;
    pthread_mutex_lock(&s->lock);
    s->rpoll_sleepers--;
    rs_kick_drain(s);
    pthread_mutex_unlock(&s->lock);
    if (r < 0 && err == EINTR && rs_intr_restarts(mark, ms >= 0))
        return 0;
    errno = r == 0 ? EAGAIN : err;
    return r > 0 ? 0 : -1;
}

/* What a blocking call must move before it returns: a send all of it (as
 * the kernel's), a MSG_WAITALL read all of it; 0 when one step is enough. */
static size_t must_move(const struct iovec *iov, int n, int flags, int tx, int nb)
{
    size_t t = 0;
    if (nb || (!tx && !(flags & MSG_WAITALL)) || n > RS_LATE_IOV)
        return 0;
    for (int i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

/* Drops `done` bytes from the front of the vector v (n entries). */
static int iov_advance(struct iovec *v, int n, size_t done, int *first)
{
    int i = *first;
    while (i < n && done >= v[i].iov_len)
        done -= v[i++].iov_len;
    if (i < n) {
        v[i].iov_base = (char *)v[i].iov_base + done;
        v[i].iov_len -= done;
    }
    *first = i;
    return n - i;
}

/* A send of an active that waits for the answer (A_ANSWER, before
 * RS_ANCHOR_HELLO_MS): the answer may be here (then KICK), or the time
 * over (then sends pass through). Lock held; 1 while it still waits. */
static int answer_awaited(struct rsock *s, int tx)
{
    if (!tx && s->anc_phase == ANC_A_KICK) {
        active_kick(s);
        return s->anc_phase == ANC_A_KICK && !s->anc->kick_late;
    }
    if (!tx)
        return 0;
    if (s->anc_phase == ANC_P_LATE) {
        kick_arrival(s);
        return s->anc->kick_hold == 1;
    }
    if (s->anc_phase != ANC_A_ANSWER || s->anc->answer_late)
        return 0;
    rs_anc_late_step(s);
    return s->anc_phase == ANC_A_ANSWER && !s->anc->answer_late;
}

/* One nonblocking step under the lock: >= 0, -1/errno, -2 the gate takes
 * it, -3 a send waits for the answer. */
static ssize_t late_step_io(struct rsock *s, const struct iovec *iov, int n, int flags, int tx, int first)
{
    pthread_mutex_lock(&s->lock);
    if (answer_awaited(s, tx)) {
        pthread_mutex_unlock(&s->lock);
        return -3;
    }
    if (!passes(s, s->anc_phase, tx) || (first && rs_check_usable(s))) {
        pthread_mutex_unlock(&s->lock);
        return -2;
    }
    ssize_t r = tx ? late_send(s, iov, n, flags) : late_recv(s, iov, n, flags);
    int err = errno;
    pthread_mutex_unlock(&s->lock);
    errno = err;
    return r;
}

/* A blocking send waits for the answer (A_ANSWER: urgent data) or for
 * the reads to reach KICK (P_LATE: a phase change), a blocking read for
 * room for KICK (A_KICK), on the TCP socket and the socket's kick (every
 * phase change writes it), until the end of RS_ANCHOR_HELLO_MS. */
static void answer_wait(struct rsock *s)
{
    pthread_mutex_lock(&s->lock);
    int64_t left = s->anc->hello_deadline - rs_now_ms();
    int ph = s->anc_phase, tx = ph != ANC_A_KICK;
    struct pollfd p[2] = { { .fd = s->kick_fd, .events = POLLIN },
                           { .fd = ph == ANC_P_LATE ? -1 : s->anc->kfd,
                             .events = ph == ANC_A_KICK ? POLLOUT : POLLPRI | POLLIN } };
    if (left <= 0 || !answer_awaited(s, tx)) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    s->rpoll_sleepers++;
    pthread_mutex_unlock(&s->lock);
    (void)poll(p, 2, (int)(left < 1000 ? left : 1000));
    pthread_mutex_lock(&s->lock);
    s->rpoll_sleepers--;
    rs_kick_drain(s);
    pthread_mutex_unlock(&s->lock);
}

int rs_anchor_late_io(struct rsock *s, const struct iovec *iov, int n, int flags, int how, ssize_t *out)
{
    int tx = (how & RS_GATE_WRITE) != 0;
    int p0 = __atomic_load_n(&s->anc_phase, __ATOMIC_ACQUIRE);
    if (!s->anc || !(passes(s, p0, tx) || (tx && (p0 == ANC_A_ANSWER || p0 == ANC_P_LATE))))
        return 0;
    int nb = s->nonblock || (flags & MSG_DONTWAIT);
    size_t want = must_move(iov, n, flags, tx, nb), done = 0;
    struct iovec v[RS_LATE_IOV];
    int at = 0, left = n;
    if (want)
        memcpy(v, iov, (size_t)n * sizeof(*v));
    for (int round = 0;; round++) {
        ssize_t r = late_step_io(s, want ? v + at : iov, want ? left : n, flags, tx, round == 0);
        int err = errno;
        if (r == -2 && done == 0)
            return 0;                    /* the gate takes it from here */
        if (r == -3 && !nb) {
            answer_wait(s);
            continue;
        }
        if (r == -3) {
            r = -1;
            err = EAGAIN;
        }
        if (r > 0) {
            done += (size_t)r;
            if (want && done < want) {
                left = iov_advance(v, n, (size_t)r, &at);
                continue;
            }
        } else if (r == -1 && (err == EAGAIN || err == EWOULDBLOCK) && !nb) {
            if (late_wait(s, tx) == 0)
                continue;
            err = errno;
        }
        if (done > 0) {
            *out = (ssize_t)done;        /* what moved before EOF, an error or the switch */
            return 1;
        }
        errno = err;
        *out = r < 0 ? -1 : 0;
        return 1;
    }
}
