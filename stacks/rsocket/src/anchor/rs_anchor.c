/*
 * rs_anchor.c - TCP-anchored connections, the module side (ABI 1.2).
 *
 * anchor() returns at once a module socket that is "upgrading": its wait
 * fd (the socket's own epoll fd) also watches the TCP socket (kfd), a
 * handshake timer and, later, the rdma_cm channels, so the dispatcher's
 * epoll or poll wakes on every step. Each entry (poll_events, a data
 * call) runs the state machine below without blocking; only a blocking
 * data call waits for it, bounded by RS_ANCHOR_TIMEOUT_MS.
 *
 *   active:  TCPCONN -> A_HELLO -> A_OFFER -> A_RCONN -> UPGRADED
 *   passive: P_HELLO -> P_KICK -> P_OFFERING -> P_LISTEN -> P_ACCEPTING
 *            -> UPGRADED
 *   either:  ... -> FALLBACK (stays on TCP, nothing read or written
 *            in-band that the application could see) or FAILED.
 *
 * Nothing goes in-band before the receiver is committed to read exactly
 * that message: the hellos and the active's KICK are urgent bytes (a
 * late one is dropped by the kernel of an end that already fell back);
 * the passive writes OFFER only after KICK, when the active waits for
 * precisely it; the active writes FAIL only after it read OFFER, when the
 * passive waits for precisely it. The full protocol, timeouts and the
 * behaviour through proxies: doc/rsocket-framework.md.
 *
 * Locking: struct rs_anchor is guarded by the socket's lock, like the
 * rest of struct rsock. The passive side's listener is made and served
 * with the socket lock dropped (its accept path takes listener -> socket,
 * the engine's order); `busy` keeps a second thread away meanwhile, and
 * the listener is closed only with the socket lock dropped (dead_listener).
 */
#include "rs_anchor.h"
#include "rs_anchor_int.h"
#include "rs_down.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

static int final_phase(int p)
{
    return p >= ANC_UPGRADED;
}

/* Lock held. Stored atomically: rs_anchor_ready reads it unlocked. */
static void set_phase(struct rsock *s, int p)
{
    __atomic_store_n(&s->anc_phase, p, __ATOMIC_RELEASE);
    rs_event(s);
}

/* A resource limit of this process: named once (rs_endpoint.c, the
 * dispatcher) and counted per connection, not logged per connection. */
static int local_limit(int err)
{
    return err == ENOMEM || err == EMFILE || err == ENFILE;
}

static void fallback(struct rsock *s, const char *why)
{
    /* a passive that could not accept the RDMA connection (the active
     * then sends FAIL): its own limit is the reason */
    if (!s->anc->fb_err && s->state == RS_CONNECT_ERROR && local_limit(s->err))
        s->anc->fb_err = s->err;
    rs_log(1, "anchor: connection stays on TCP: %s", why);
    if (s->early_len)
        rs_anchor_early_to_tcp(s, s->anc->kfd);   /* before any later send of the app */
    set_phase(s, ANC_FALLBACK);
}

static void retire_listener(struct rsock *s);

/* The peer's TCP side is closed or reset (now; never waits). */
static int peer_tcp_gone(const struct rsock *s)
{
    struct pollfd p = { .fd = s->anc->kfd, .events = POLLRDHUP };
    return s->anc->kfd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLERR | POLLHUP));
}

/* The handshake failed, for good. A handshake that fails because the
 * peer left is not an error of this connection: on TCP the application
 * reads what the kernel says (EOF, or a reset), as it would have without
 * the framework. */
static void fail_now(struct rsock *s, int err, const char *why)
{
    if (s->anc->tcp_eof || peer_tcp_gone(s))
        return fallback(s, "the peer left during the handshake");
    s->anc->err = err ? err : EPROTO;
    rs_log(3, "anchor: handshake failed: %s: %s", why, strerror(s->anc->err));
    set_phase(s, ANC_FAILED);
}

/* A step of the handshake failed. An exiting peer closes its TCP socket
 * and withdraws its RDMA side in no fixed order, so its TCP end gets
 * RS_ANCHOR_LOST_MS to say it left: the socket waits in ANC_LOSING (no
 * readiness, calls EAGAIN or the gate's wait), woken by the TCP socket's
 * FIN or error or by the handshake timer (step_losing), never in a wait
 * of its own with the lock held. `why` is a string literal. */
static void fail(struct rsock *s, int err, const char *why)
{
    struct rs_anchor *a = s->anc;
    if (a->tcp_eof || peer_tcp_gone(s) || a->kfd < 0 || s->anc_phase == ANC_LOSING)
        return fail_now(s, err, why);
    a->lost_err = err;
    a->lost_why = why;
    a->hello_deadline = 0;
    a->deadline = rs_now_ms() + rs_tun.anchor_lost_ms;
    retire_listener(s);            /* a request now would only keep the wait fd readable */
    set_phase(s, ANC_LOSING);      /* advance() watches kfd and arms the timer */
}

void rs_anc_set_phase(struct rsock *s, int p)
{
    set_phase(s, p);
}

void rs_anc_fallback(struct rsock *s, const char *why)
{
    fallback(s, why);
}

void rs_anc_fail(struct rsock *s, int err, const char *why)
{
    fail(s, err, why);
}

static int watch_kfd(struct rsock *s, uint32_t ev)
{
    struct rs_anchor *a = s->anc;
    if (a->kfd_in && a->kfd_ev == ev)
        return 0;
    struct epoll_event e = { .events = ev, .data.fd = a->kfd };
    if (epoll_ctl(s->wait_fd, a->kfd_in ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, a->kfd, &e))
        return -1;
    a->kfd_in = 1;
    a->kfd_ev = ev;
    return 0;
}

static void unwatch_kfd(struct rsock *s)
{
    if (s->anc->kfd_in)
        epoll_ctl(s->wait_fd, EPOLL_CTL_DEL, s->anc->kfd, NULL);
    s->anc->kfd_in = 0;
}

/* ---- deadlines: one timerfd in the wait fd, armed for the nearest ---- */

static void timer_drain(struct rs_anchor *a)
{
    uint64_t n;
    if (a->timer_fd >= 0 && read(a->timer_fd, &n, sizeof(n)) < 0)
        n = 0;                   /* nonblocking: not expired */
}

static int timer_arm(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    int64_t t = a->hello_deadline;
    if (a->deadline && (!t || a->deadline < t))
        t = a->deadline;
    if (a->timer_fd < 0)           /* made with the shell; closed by finish() */
        return 0;
    /* Every step re-arms, mostly for the same deadline: a timerfd_settime
     * (hrtimer cancel and start) was 4-5% of a server's CPU per connection.
     * An expiry already read is not re-armed for the same time: the step
     * it woke judged that deadline. */
    if (t == a->timer_at)
        return 0;
    a->timer_at = t;
    /* rs_now_ms() is CLOCK_MONOTONIC in ms: an absolute expiry */
    struct itimerspec its = { .it_value = { t / 1000, (t % 1000) * 1000000L } };
    int rc = timerfd_settime(a->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
    if (rc)
        a->timer_at = -1;          /* unknown: set it again next time */
    return rc;
}

static void timer_close(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    if (a->timer_fd < 0)
        return;
    epoll_ctl(s->wait_fd, EPOLL_CTL_DEL, a->timer_fd, NULL);
    close(a->timer_fd);
    a->timer_fd = -1;
}

/* ---- the urgent bytes ------------------------------------------------- */

/* 1 with *v: one of ours was read; 2: someone else's urgent data (left
 * for the application), or ours inline (SO_OOBINLINE, taken out); 0:
 * none yet; -1: TCP error. */
static int read_urgent(int kfd, uint8_t *v)
{
    if (!rs_anc_urgent_peek(kfd, v))
        return rs_anc_inline_taken(kfd, NULL, 0) ? 2 : 0;
    if (*v != RS_ANC_HELLO && *v != RS_ANC_KICK && *v != RS_ANC_NOPE && !rs_anc_ll_value(*v))
        return 2;
    return rs_anc_urgent_recv(kfd, v) == 1 ? 1 : -1;
}

/* Nothing urgent: what the in-band stream says. 1 when decided. */
static int inband_decides(struct rsock *s, const char *before)
{
    int ib = rs_anc_inband(s->anc->kfd);
    char why[96];
    if (ib < 0 && ib != -2)
        return 0;
    /* The peer's urgent byte may have arrived between read_urgent's look
     * at the mark and this one: now that a byte is queued, the kernel has
     * set the mark for it (before queueing it), so the look is exact. */
    if (ib == 1 && rs_anc_inline_taken(s->anc->kfd, NULL, 0)) {
        fallback(s, "inline urgent data (SO_OOBINLINE)");
        return 1;
    }
    snprintf(why, sizeof(why), "%s before %s", ib == 1 ? "data" : ib == 0 ? "EOF" : "TCP error",
             before);
    fallback(s, why);
    return 1;
}

/* ---- active side ------------------------------------------------------ */

static void start_active_hello(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    struct sockaddr_storage peer;
    socklen_t len;
    if (rs_anc_addr(a->kfd, 1, &peer, &len))
        return fallback(s, "no peer address");
    if (!a->hello_sent && rs_anc_negcache_hit(&peer))
        return fallback(s, "the peer did not answer a hello recently");
    if (!a->hello_sent && rs_anc_urgent_send(a->kfd, RS_ANC_HELLO))
        return fallback(s, "hello not sent");
    a->hello_sent = 1;
    /* a peer known to answer gets the committed part's time: its hello
     * is late only because it accepts late (load) */
    a->hello_deadline = rs_now_ms() + (rs_anc_poscache_hit(&peer) ? rs_tun.anchor_timeout_ms
                                                                   : rs_tun.anchor_hello_ms);
    set_phase(s, ANC_A_HELLO);
}

static void step_tcpconn(struct rsock *s)
{
    struct pollfd p = { .fd = s->anc->kfd, .events = POLLOUT };
    if (poll(&p, 1, 0) <= 0)
        return;
    /* the error stays in SO_ERROR for the application (not read here) */
    if (p.revents & (POLLERR | POLLHUP))
        return fallback(s, "TCP connect failed");
    if (!rs_anc_tcp_connecting(s->anc->kfd))
        start_active_hello(s);
}

static void negcache_peer(struct rsock *s)
{
    struct sockaddr_storage peer;
    socklen_t len;
    if (rs_anc_addr(s->anc->kfd, 1, &peer, &len) == 0)
        rs_anc_negcache_add(&peer);
}

static void step_active_hello(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    uint8_t v;
    int r = read_urgent(a->kfd, &v);
    if (r == 1 && v == RS_ANC_NOPE)
        return fallback(s, "the peer's end was handed to a process that keeps it on TCP");
    if (r == 1) {
        struct sockaddr_storage peer;
        socklen_t len;
        if (rs_anc_addr(a->kfd, 1, &peer, &len) == 0)
            rs_anc_poscache_add(&peer);
        if (rs_anc_fd_headroom(a->kfd)) {
            a->fb_err = errno;        /* EMFILE/ENFILE: the reason nstack-stat names */
            return fallback(s, "out of descriptors for the RDMA connection");
        }
        if (rs_anc_urgent_send(a->kfd, RS_ANC_KICK))
            return fallback(s, "KICK not sent");
        a->hello_deadline = 0;
        a->deadline = rs_now_ms() + rs_tun.anchor_timeout_ms;
        return set_phase(s, ANC_A_OFFER);
    }
    if (r != 0)
        return fallback(s, r == 2 ? "foreign or inline urgent data" : "TCP error");
    if (inband_decides(s, "the peer's hello")) {
        if (rs_anc_inband(a->kfd) == 1)
            negcache_peer(s);
        return;
    }
    if (rs_now_ms() >= a->hello_deadline) {
        negcache_peer(s);
        fallback(s, "no hello from the peer in time");
    }
}

/* The RDMA connection cannot be made: tell the passive (it waits for
 * exactly this now) and stay on TCP together. */
static void active_rdma_failed(struct rsock *s, int err)
{
    s->anc->fb_err = err;
    rs_log(local_limit(err) ? 1 : 2, "anchor: RDMA connection to the peer failed (%s); staying on TCP",
           strerror(err));
    if (rs_anc_msg_send(s->anc->kfd, RS_ANC_FAIL, 0))
        return fail(s, errno, "sending FAIL");
    fallback(s, "RDMA connect failed");
}

static void step_offer(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    uint16_t port = 0;
    uint8_t v;
    /* our KICK crossed the passive's NOPE: it will never OFFER */
    if (rs_anc_urgent_peek(a->kfd, &v) && v == RS_ANC_NOPE && rs_anc_urgent_recv(a->kfd, &v) == 1)
        return fallback(s, "the peer's end was handed to a process that keeps it on TCP");
    int r = rs_anc_msg_recv(a->kfd, RS_ANC_OFFER, &port);
    if (r == 0) {
        if (rs_now_ms() >= a->deadline)
            fail(s, ETIMEDOUT, "no OFFER from the peer");
        return;
    }
    if (r == -1)
        return fallback(s, errno ? "the peer declined (data instead of OFFER)" : "EOF instead of OFFER");
    if (r == -2)          /* reset: the application reads it from TCP */
        return fallback(s, "TCP error instead of OFFER");
    if (port == 0)
        return fallback(s, "the peer has no RDMA listener");
    struct sockaddr_storage peer;
    socklen_t len;
    if (rs_anc_addr(a->kfd, 1, &peer, &len) || peer.ss_family != s->domain)
        return active_rdma_failed(s, EAFNOSUPPORT);
    rs_anc_set_port(&peer, port);
    if (rs_conn_start(s, (struct sockaddr *)&peer, len))
        return active_rdma_failed(s, errno);
    set_phase(s, ANC_A_RCONN);
}

static void upgraded(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    a->hello_deadline = a->deadline = 0;
    /* from now on the anchor tells peer death (rs_anchor_check) and
     * carries only the downgrade's DOWN/ACK in-band (rs_anchor_down.c) */
    s->anchor_fd = a->kfd;
    s->anchor_ev = EPOLLIN | EPOLLRDHUP;
    if (watch_kfd(s, EPOLLIN | EPOLLRDHUP))
        s->anchor_fd = -1;
    if (s->keepalive || s->user_timeout_ms > 0)
        rs_keepalive_arm(s);
    rs_cms_adopt(s);              /* its own CM channel is not needed any more */
    set_phase(s, ANC_UPGRADED);
}

static void step_rconn(struct rsock *s)
{
    rs_progress(s, 1);
    if (s->state == RS_CONNECTED || s->state == RS_DISCONNECTED)
        return upgraded(s);
    if (s->state == RS_CONNECT_ERROR || s->state == RS_ERROR)
        return active_rdma_failed(s, s->err ? s->err : ECONNREFUSED);
    if (rs_now_ms() >= s->anc->deadline)
        active_rdma_failed(s, ETIMEDOUT);
}

/* ---- passive side ----------------------------------------------------- */

/* Listener for this one connection, on the TCP socket's local address,
 * which accepts straight into s (rs_accept.c, adopt_into): a pooled one
 * when there is one (rs_anchor_lpool.c), else a new one. */
static struct rsock *passive_listener(struct rsock *s, uint16_t *port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    struct rsock *l = NULL;
    if (rs_anc_addr(s->anc->kfd, 0, &ss, &len))
        return NULL;
    if ((l = rs_anc_lpool_take(&ss, s, port)) != NULL) {
        if (rs_wait_fd_add(s, l->cm_chan->fd) == 0)
            return l;
        int err = errno;
        rs_anc_lpool_put(l, 1);
        errno = err;
        return NULL;
    }
    if (rs_e_socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0, &l) < 0)
        return NULL;
    l->adopt_into = s;
    rs_anc_set_port(&ss, 0);
    if (rs_e_bind(l, (struct sockaddr *)&ss, len) || rs_e_listen(l, 1) ||
        rs_e_name(l, 0, (struct sockaddr *)&ss, &len) || rs_wait_fd_add(s, l->cm_chan->fd)) {
        int err = errno;
        rs_e_close(l);
        errno = err;
        return NULL;
    }
    *port = rs_anc_get_port(&ss);
    return l;
}

/* KICK read: the active is committed and waits for exactly one OFFER. */
void rs_anc_passive_commit(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    if (rs_anc_skip_mark(a->kfd))
        return fallback(s, "data behind the peer's KICK");
    a->hello_deadline = 0;
    a->deadline = rs_now_ms() + rs_tun.anchor_timeout_ms;
    set_phase(s, ANC_P_OFFERING);
}

/* The listener is made with the socket lock dropped: once listening it is
 * served by other threads too (rs_lprog.c), whose accept path takes its
 * lock and then this socket's. `busy` keeps other threads out meanwhile. */
static void step_offering(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    uint16_t port = 0;
    if (a->busy)
        return;
    a->busy = 1;
    pthread_mutex_unlock(&s->lock);
    struct rsock *l = rs_anc_fd_headroom(a->kfd) ? NULL : passive_listener(s, &port);
    int err = errno;
    pthread_mutex_lock(&s->lock);
    a->busy = 0;
    a->listener = l;
    if (s->anc_phase != ANC_P_OFFERING)
        return;                      /* a blocking call gave up meanwhile */
    if (!l) {
        /* the active waits for an OFFER: port 0 says "stay on TCP" */
        rs_log(2, "anchor: no RDMA listener (%s); staying on TCP", strerror(err));
        a->fb_err = err;
        if (rs_anc_msg_send(a->kfd, RS_ANC_OFFER, 0))
            return fail(s, errno, "sending OFFER");
        return fallback(s, "no RDMA listener");
    }
    if (rs_anc_msg_send(a->kfd, RS_ANC_OFFER, port))
        return fail(s, errno, "sending OFFER");
    set_phase(s, ANC_P_LISTEN);
}

static void step_passive_hello(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    uint8_t v;
    int r = read_urgent(a->kfd, &v);
    if (r == 2 || r < 0)
        return fallback(s, r == 2 ? "foreign or inline urgent data" : "TCP error");
    if (r == 1 && v == RS_ANC_NOPE)
        return fallback(s, "the peer's end was handed to a process that keeps it on TCP");
    if (r == 1 && rs_anc_ll_value(v) && s->anc_phase == ANC_P_HELLO) {
        /* the active announced the long-lived policy after our accept():
         * answer it; this end passes the stream through until KICK */
        if (rs_anc_urgent_send(a->kfd, v))
            return fallback(s, "long-lived answer not sent");
        a->hello_deadline = 0;
        return set_phase(s, ANC_P_LATE);
    }
    if (r == 1 && rs_anc_ll_value(v))
        return fallback(s, "a long-lived announcement after the hellos");
    if (r == 1 && !a->hello_sent && rs_anc_inband(a->kfd) != 0) {
        if (rs_anc_urgent_send(a->kfd, RS_ANC_HELLO))
            return fallback(s, "hello not sent");
        a->hello_sent = 1;
    }
    if (r == 1 && v == RS_ANC_KICK)
        return rs_anc_passive_commit(s);
    if (r == 1) {
        if (a->write_wanted)
            a->hello_deadline = rs_now_ms() + rs_tun.anchor_hello_ms;
        return set_phase(s, ANC_P_KICK);
    }
    if (inband_decides(s, s->anc_phase == ANC_P_HELLO ? "the peer's hello" : "KICK"))
        return;
    /* The application wants to speak first and the peer is silent: a
     * plain client of a server-first protocol. A KICK after this is
     * dropped by our kernel; the active then reads our data, not OFFER. */
    if (a->hello_deadline && rs_now_ms() >= a->hello_deadline)
        fallback(s, "the application sends first and the peer did not commit in time");
}

/* P_LISTEN and P_ACCEPTING: only FAIL (or EOF) may come in-band. EOF
 * without FAIL: the active may have upgraded (it sends FAIL before
 * anything else when its RDMA connect fails), sent its data over RDMA and
 * closed already, before this end served its listener: its connection
 * request was made before that EOF, so it is still awaited for
 * RS_ANCHOR_HELLO_MS (then the active left during the handshake: stay on
 * TCP, whose EOF the application reads); the TCP socket is watched for
 * errors only from then on. */
static int passive_fail_msg(struct rsock *s)
{
    uint16_t port;
    if (s->anc->tcp_eof)
        return 0;
    int r = rs_anc_msg_recv(s->anc->kfd, RS_ANC_FAIL, &port);
    if (r == 0 || (r == -1 && errno == ENOPROTOOPT && rs_down_waiting(s->anc->kfd)))
        return 0;
    if (r == 1) {
        s->anc->fb_err = EREMOTEIO;
        fallback(s, "the peer's RDMA connect failed");
    }
    else if (r == -1 && errno == 0) {
        int64_t grace = rs_now_ms() + rs_tun.anchor_hello_ms;
        s->anc->tcp_eof = 1;
        if (s->anc_phase == ANC_P_LISTEN && grace < s->anc->deadline)
            s->anc->deadline = grace;
        return 0;
    }
    else if (r == -2)
        fallback(s, "TCP error during the handshake");
    else
        fail(s, EPROTO, "unexpected bytes during the handshake");
    return 1;
}

/* rs_accept.c, s locked: whether a connection request to s's listener
 * comes from the TCP peer's address (anyone could connect to the port;
 * only the peer may be paired with this anchor). */
int rs_anchor_request_ok(struct rsock *s, const struct sockaddr *from)
{
    struct sockaddr_storage peer;
    socklen_t len;
    if (!s->anc || !from || rs_anc_addr(s->anc->kfd, 1, &peer, &len) ||
        peer.ss_family != from->sa_family)
        return 0;
    if (from->sa_family == AF_INET6)
        return !memcmp(&((const struct sockaddr_in6 *)from)->sin6_addr,
                       &((struct sockaddr_in6 *)&peer)->sin6_addr, 16);
    return ((const struct sockaddr_in *)from)->sin_addr.s_addr ==
           ((struct sockaddr_in *)&peer)->sin_addr.s_addr;
}

/* Serve the listener with the socket lock dropped (lock order listener ->
 * socket: its accept path locks s). Returns with the lock held again. */
static void serve_listener_unlocked(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    struct rsock *l = a->listener;
    a->busy = 1;
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_lock(&l->lock);
    rs_conn_process_cm(l);
    pthread_mutex_unlock(&l->lock);
    pthread_mutex_lock(&s->lock);
    a->busy = 0;
}

static void retire_listener(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    if (!a->listener || a->busy)
        return;
    epoll_ctl(s->wait_fd, EPOLL_CTL_DEL, a->listener->cm_chan->fd, NULL);
    a->dead_listener = a->listener;
    a->listener = NULL;
}

static void step_listen(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    if (passive_fail_msg(s))
        return;
    if (!s->id && !a->busy && a->listener) {
        serve_listener_unlocked(s);
        if (s->anc_phase != ANC_P_LISTEN)
            return;                  /* another thread moved on meanwhile */
    }
    if (s->id) {
        retire_listener(s);
        return set_phase(s, ANC_P_ACCEPTING);
    }
    if (rs_now_ms() >= a->deadline && a->tcp_eof)
        fallback(s, "EOF during the handshake");
    else if (rs_now_ms() >= a->deadline)
        fail(s, ETIMEDOUT, "no RDMA connection from the peer");
}

static void step_accepting(struct rsock *s)
{
    if (passive_fail_msg(s))
        return;
    rs_progress(s, 1);
    if (s->state == RS_CONNECTED || s->state == RS_DISCONNECTED)
        return upgraded(s);
    /* The active closed its TCP end without FAIL and our RDMA side failed
     * (rdma_accept of a request whose sender is gone: EINVAL) or never
     * came: it left during the handshake. TCP's EOF is what the
     * application reads, as in P_LISTEN - not the device's errno. */
    int rdma_failed = s->state == RS_CONNECT_ERROR || s->state == RS_ERROR;
    if (s->anc->tcp_eof && (rdma_failed || rs_now_ms() >= s->anc->deadline))
        return fallback(s, "EOF during the handshake");
    /* a failure here is the active's too: it sends FAIL, awaited until
     * the deadline */
    if (rs_now_ms() >= s->anc->deadline)
        fail(s, s->err ? s->err : ETIMEDOUT, "RDMA connection not established");
}

/* ANC_LOSING: the TCP end tells whether the peer left, or the time is up
 * and the failure stands. What the RDMA side still reports is consumed
 * (its outcome no longer matters), so that it does not keep the wait fd
 * readable meanwhile. */
static void step_losing(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    if (s->id)
        rs_progress(s, 1);
    if (peer_tcp_gone(s))
        return fallback(s, "the peer left during the handshake");
    if (rs_now_ms() >= a->deadline)
        fail_now(s, a->lost_err, a->lost_why);
}

/* ---- the machine ------------------------------------------------------ */

static void step(struct rsock *s)
{
    switch (s->anc_phase) {
    case ANC_TCPCONN:     step_tcpconn(s); break;
    case ANC_A_HELLO:     step_active_hello(s); break;
    case ANC_A_OFFER:     step_offer(s); break;
    case ANC_A_RCONN:     step_rconn(s); break;
    case ANC_P_HELLO:
    case ANC_P_KICK:      step_passive_hello(s); break;
    case ANC_P_OFFERING:  step_offering(s); break;
    case ANC_P_LISTEN:    step_listen(s); break;
    case ANC_P_ACCEPTING: step_accepting(s); break;
    case ANC_LOSING:      step_losing(s); break;
    default:
        if (rs_anc_is_late(s->anc_phase))
            rs_anc_late_step(s);
        break;
    }
}

static uint32_t phase_interest(int p)
{
    switch (p) {
    case ANC_TCPCONN: return EPOLLOUT;
    case ANC_A_HELLO:
    case ANC_P_HELLO:
    case ANC_P_KICK:  return EPOLLIN | EPOLLPRI;
    case ANC_A_RCONN: return 0;            /* errors only */
    case ANC_A_OFFER: return EPOLLIN | EPOLLPRI;   /* OFFER, or the passive's NOPE */
    case ANC_LOSING:  return EPOLLRDHUP;   /* the peer's FIN (errors always) */
    default:          return EPOLLIN;      /* an in-band message or EOF */
    }
}

static uint32_t interest(const struct rsock *s)
{
    if (rs_anc_is_late(s->anc_phase))
        return rs_anc_late_interest(s);
    return s->anc->tcp_eof ? 0 : phase_interest(s->anc_phase);
}

void rs_anc_rewatch(struct rsock *s)
{
    (void)watch_kfd(s, interest(s));
    (void)timer_arm(s);
}

/* Release what the handshake held once it ended; the anchor stays in
 * the wait fd only on an upgraded socket. */
static void finish(struct rsock *s)
{
    rs_anc_pair_leave(s, &s->anc->link);
    timer_close(s);
    retire_listener(s);
    if (s->anc_phase != ANC_UPGRADED)
        unwatch_kfd(s);
}

/* A paired socket: the fds its next step waits for, mirrored into the
 * process's pair fd (rs_anchor_pair.c). Lock held. */
void rs_anchor_mirror(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    if (!a || final_phase(s->anc_phase))
        return;
    int p = s->anc_phase;
    int rdma = (p == ANC_A_RCONN || p == ANC_P_ACCEPTING) && s->cm_chan;
    int fds[4] = { a->kfd_in ? a->kfd : -1, a->timer_fd, a->listener ? a->listener->cm_chan->fd : -1,
                   rdma ? s->cm_chan->fd : -1 };
    uint32_t evs[4] = { a->kfd_ev, EPOLLIN, EPOLLIN, EPOLLIN };
    if (rs_anc_paired(&a->link))
        rs_anc_pair_sync(s, &a->link, fds, evs);
}

/*
 * A passive whose hello went out (at accept) but which cannot make its
 * module socket now (out of descriptors or memory): an active that saw the
 * hello commits with KICK and then waits only for OFFER, so staying on TCP
 * silently would end that connection with ETIMEDOUT. Wait (bounded, twice
 * RS_ANCHOR_HELLO_MS; only on this failure) for its KICK and answer OFFER
 * port 0, "stay on TCP", as a passive without an RDMA listener does. In-band
 * data, EOF or no KICK in time: the active fell back (our kernel drops a
 * later KICK).
 */
static void decline_without_shell(int kfd)
{
    int64_t end = rs_now_ms() + 2 * (int64_t)rs_tun.anchor_hello_ms;
    uint8_t v = 0;
    for (int i = 0; i < 64; i++) {
        int r = read_urgent(kfd, &v);
        if (r == 1 && v == RS_ANC_KICK) {
            if (rs_anc_skip_mark(kfd))
                return;                  /* it did not commit: no OFFER into its stream */
            if (rs_anc_msg_send(kfd, RS_ANC_OFFER, 0))
                rs_log(3, "anchor: OFFER 0 not sent (%s)", strerror(errno));
            return;
        }
        if (r == 2 || r < 0 || (r == 0 && rs_anc_inband(kfd) != -1))
            return;
        int64_t left = end - rs_now_ms();
        struct pollfd p = { .fd = kfd, .events = POLLPRI | POLLIN };
        if (r == 0 && (left <= 0 || poll(&p, 1, (int)left) == 0))
            return;
    }
}

/* No descriptor left to watch the handshake (timerfd, epoll_ctl): before
 * the commitment the connection stays on TCP (a passive that said hello
 * declines as above), after it the handshake fails. */
static void cannot_watch(struct rsock *s)
{
    int ph = s->anc_phase;
    int passive = ph == ANC_P_HELLO || ph == ANC_P_KICK;
    if (ph == ANC_TCPCONN || ph == ANC_A_HELLO || ph == ANC_A_KICK || ph == ANC_A_ANSWER || ph == ANC_P_LATE ||
        passive) {
        rs_log(2, "anchor: cannot watch the handshake (%s); staying on TCP", strerror(errno));
        if (passive && s->anc->hello_sent)
            decline_without_shell(s->anc->kfd);
        fallback(s, "no descriptor to watch the handshake");
    } else {
        fail_now(s, errno, "watching the TCP socket");
    }
    finish(s);
}

/* Run the handshake as far as it goes now (lock held; may drop it in
 * P_LISTEN). Bounded: every step either changes phase or stops. */
static void advance(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    timer_drain(a);
    for (int i = 0; i < 8 && !final_phase(s->anc_phase); i++) {
        int before = s->anc_phase;
        step(s);
        if (s->anc_phase == before)
            break;
    }
    if (final_phase(s->anc_phase)) {
        finish(s);
        return;
    }
    if (watch_kfd(s, interest(s)) || timer_arm(s)) {
        cannot_watch(s);
        return;
    }
    rs_anchor_mirror(s);
}

/* Lock held on entry, dropped on return; closes a retired listener. */
static void unlock_and_tidy(struct rsock *s)
{
    struct rsock *l = s->anc->busy ? NULL : s->anc->dead_listener;
    int used = s->id != NULL;     /* its one request was ours: reusable */
    if (l)
        s->anc->dead_listener = NULL;
    pthread_mutex_unlock(&s->lock);
    if (l)
        rs_anc_lpool_put(l, used);
}

static int result(struct rsock *s)
{
    switch (s->anc_phase) {
    case ANC_UPGRADED: return 0;
    case ANC_FALLBACK: errno = ENOPROTOOPT; return -1;
    case ANC_FAILED:   errno = s->anc->err; return -1;
    default:           errno = EAGAIN; return -1;
    }
}

/* A blocking call gave up waiting: safe to stay on TCP while the active
 * has not committed (passive before KICK); else the connection failed. */
static void give_up(struct rsock *s)
{
    int p = s->anc_phase;
    if (p == ANC_P_HELLO || p == ANC_P_KICK || p == ANC_P_LATE || p == ANC_A_KICK || p == ANC_A_ANSWER)
        fallback(s, "nothing from the peer within RS_ANCHOR_TIMEOUT_MS");
    else if (p == ANC_LOSING)
        fail_now(s, s->anc->lost_err, s->anc->lost_why);
    else
        fail_now(s, ETIMEDOUT, "handshake timed out");
    finish(s);
}

/* ---- module entries --------------------------------------------------- */

/* Lock held (dropped meanwhile): the other end of a pair steps too. */
static void run_pair_unlocked(struct rsock *s)
{
    if (!s->anc || !rs_anc_paired(&s->anc->link))
        return;
    pthread_mutex_unlock(&s->lock);
    rs_anc_pair_run();
    pthread_mutex_lock(&s->lock);
}

void rs_anchor_drive(struct rsock *s)
{
    if (pthread_mutex_trylock(&s->lock))
        return;                  /* its holder steps it */
    void *cookie = NULL;
    if (s->anc && !final_phase(s->anc_phase) && !s->anc->busy && rs_check_usable(s) == 0) {
        uint64_t before = s->gen;
        advance(s);
        if (s->gen != before)
            cookie = s->cookie;
    }
    if (s->anc)
        unlock_and_tidy(s);
    else
        pthread_mutex_unlock(&s->lock);
    /* the application may sleep on it in the dispatcher */
    if (cookie && rs_notify_fn)
        rs_notify_fn(cookie);
}

/* The gated call has a socket timeout for its direction (signal(7)). */
static int gate_timed(const struct rsock *s, int how)
{
    const struct timeval *tv = (how & RS_GATE_WRITE) ? &s->sndtimeo : &s->rcvtimeo;
    return tv->tv_sec || tv->tv_usec;
}

int rs_anchor_gate(struct rsock *s, int flags, int how)
{
    if (rs_anchor_ready(s))
        return 0;
    if (rs_wait_serves_listeners(s))
        rs_lprog_run();
    if (s->anc && rs_anc_paired(&s->anc->link))
        rs_anc_pair_run();
    pthread_mutex_lock(&s->lock);
    if (rs_check_usable(s)) {
        pthread_mutex_unlock(&s->lock);
        return -1;
    }
    struct rs_anchor *a = s->anc;
    if ((how & RS_GATE_WRITE) && !a->write_wanted) {
        a->write_wanted = 1;
        if (s->anc_phase == ANC_P_HELLO || s->anc_phase == ANC_P_KICK)
            a->hello_deadline = rs_now_ms() + rs_tun.anchor_hello_ms;
    }
    int nb = !(how & RS_GATE_WAIT) && (s->nonblock || (flags & MSG_DONTWAIT));
    int64_t deadline = rs_now_ms() + rs_tun.anchor_timeout_ms;
    int r = 0;
    advance(s);
    while (!nb && !final_phase(s->anc_phase) && r == 0) {
        r = rs_wait_timed(s, deadline, gate_timed(s, how));
        if (r && errno == EAGAIN) {
            give_up(s);
            r = 0;
        }
        run_pair_unlocked(s);
        advance(s);
    }
    if (r == 0)
        r = result(s);
    int err = errno;
    unlock_and_tidy(s);
    errno = err;
    return r;
}

uint32_t rs_anchor_poll_events(struct rsock *s, uint64_t *gen)
{
    if (rs_anchor_ready(s))
        return rs_poll_events(s, gen);
    if (rs_wait_serves_listeners(s))
        rs_lprog_run();
    if (s->anc && rs_anc_paired(&s->anc->link))
        rs_anc_pair_run();
    pthread_mutex_lock(&s->lock);
    uint32_t m = EPOLLERR | EPOLLHUP;
    if (rs_check_usable(s) == 0) {
        advance(s);
        switch (s->anc_phase) {
        case ANC_UPGRADED: rs_progress(s, 1); m = rs_poll_mask(s); break;
        case ANC_FALLBACK: m = NSTACK_EV_FALLBACK; break;
        case ANC_FAILED:   m = EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP; break;
        default:           m = rs_anc_is_late(s->anc_phase) ? rs_anc_late_mask(s) : 0; break;
        }
    }
    if (gen)
        *gen = s->gen;
    unlock_and_tidy(s);
    return m;
}

/* Upgraded socket, lock held: an error on the anchor (RST, keepalive or
 * TCP_USER_TIMEOUT expiry) while the RDMA connection is still open means
 * the peer is gone. A FIN alone changes nothing: the RDMA connection has
 * its own orderly close, and data in flight on it is still delivered. */
void rs_anchor_check(struct rsock *s)
{
    struct pollfd p = { .fd = s->anchor_fd, .events = (short)s->anchor_ev };
    if (s->anchor_fd < 0 || poll(&p, 1, 0) <= 0)
        return;
    /* errors first: reading the anchor would consume its SO_ERROR */
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (!(p.revents & POLLERR) ||
            getsockopt(s->anchor_fd, SOL_SOCKET, SO_ERROR, &err, &len) || err == 0)
            err = ECONNRESET;
        epoll_ctl(s->wait_fd, EPOLL_CTL_DEL, s->anchor_fd, NULL);
        s->anchor_fd = -1;
        if (s->anc)
            s->anc->kfd_in = 0;
        /* both directions shut without an error: the peer's FIN came (a
         * detached CM no longer tells its end: rs_anchor_fin_step) */
        if ((p.revents & (POLLHUP | POLLERR | POLLNVAL)) == POLLHUP && s->cm_detached)
            s->anchor_fin = 1;
        /* also after the peer's DISCONNECT: a peer that closed with
         * unread data resets its anchor (rs_ops.c), as TCP resets */
        if ((p.revents & POLLERR) && (s->state == RS_CONNECTED || s->state == RS_DISCONNECTED))
            rs_set_error(s, err, "the anchor TCP connection failed: peer dead or reset");
        return;
    }
    if ((p.revents & POLLIN) && rs_down_inband(s))
        return;
    if (p.revents & POLLRDHUP) {
        /* FIN: keep watching for errors only (level-triggered RDHUP would
         * keep the wait fd readable) */
        s->anchor_ev = 0;
        s->anchor_fin = 1;
        if (s->anc && watch_kfd(s, 0) == 0)
            return;
        epoll_ctl(s->wait_fd, EPOLL_CTL_DEL, s->anchor_fd, NULL);
        s->anchor_fd = -1;
    }
}

int rs_anchor_kfd(const struct rsock *s)
{
    return s->anc ? s->anc->kfd : -1;
}

/* The wait fd's registration of the TCP socket moves from number `from` to
 * `to` (the same open file): added under the new number before the old
 * one leaves, so no event is lost in between. */
static int rewatch(struct rsock *s, int from, int to, uint32_t ev)
{
    struct epoll_event e = { .events = ev, .data.fd = to };
    if (epoll_ctl(s->wait_fd, EPOLL_CTL_ADD, to, &e))
        return -1;
    epoll_ctl(s->wait_fd, EPOLL_CTL_DEL, from, NULL);
    return 0;
}

/* ABI 1.5 anchor_kfd(): the dispatcher hands the TCP socket over at
 * another number (its own dup, made when the application gave the file a
 * second number); the old number stays open until this returns, so a
 * thread that read it just before keeps a valid descriptor for its call. */
int rs_anchor_move_kfd(struct rsock *s, int kfd)
{
    pthread_mutex_lock(&s->lock);
    struct rs_anchor *a = s->anc;
    int old = a ? a->kfd : -1, r = 0;
    if (a && old != kfd && kfd >= 0) {
        int down = s->anc_phase == RS_ANC_PHASE_DOWN && s->down && rs_down_kfd(s) == old;
        if (down)
            r = rewatch(s, old, kfd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
        else if (a->kfd_in)
            r = rewatch(s, old, kfd, a->kfd_ev);
        if (r == 0) {
            a->kfd = kfd;
            if (s->anchor_fd == old)
                s->anchor_fd = kfd;
            rs_down_moved_kfd(s, old, kfd);
            rs_anchor_mirror(s);      /* a paired handshake's mirror follows */
        }
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

int rs_anchor_fallback_err(struct rsock *s)
{
    pthread_mutex_lock(&s->lock);
    int e = s->anc ? s->anc->fb_err : 0;
    pthread_mutex_unlock(&s->lock);
    return e;
}

void rs_anchor_free(struct rsock *s)
{
    struct rs_anchor *a = s->anc;
    rs_anc_linger_reap();
    if (!a)
        return;
    rs_anc_pair_close(s, &a->link);
    if (a->listener)
        rs_anc_lpool_put(a->listener, 0);
    if (a->dead_listener)
        rs_anc_lpool_put(a->dead_listener, s->id != NULL);
    if (a->timer_fd >= 0)
        close(a->timer_fd);
    free(a);
    s->anc = NULL;
}

/*
 * This end will never anchor the connection (NSTACK_ANCHOR_DECLINE: it was
 * handed to another process before its first use). A passive whose peer
 * committed (its KICK is here: it waits for exactly one OFFER) answers
 * OFFER port 0, as a passive without an RDMA listener does; otherwise,
 * when the peer is known to run the framework (its hello is here, or ours
 * went out) or this end is the active (whose hello any peer may get), an
 * urgent NOPE makes the peer's module stay on TCP at once, in whatever
 * phase (A_HELLO, A_OFFER after a crossing KICK, P_HELLO, P_KICK). The
 * peer's urgent byte is taken out first, so that the process that gets
 * the socket reads a clean stream. Never blocks.
 */
static int decline(int kfd, int role, int hello_sent)
{
    uint8_t v = 0;
    int peer_urgent = rs_anc_urgent_peek(kfd, &v) && (v == RS_ANC_HELLO || v == RS_ANC_KICK);
    if (peer_urgent && rs_anc_urgent_take(kfd, &v) != 1)
        return -1;
    if (!peer_urgent)             /* SO_OOBINLINE: it sits in the stream */
        peer_urgent = rs_anc_inline_taken(kfd, &v, 0);
    if (role == NSTACK_ADOPT_PASSIVE && peer_urgent && v == RS_ANC_KICK)
        return rs_anc_skip_mark(kfd) ? 0 : rs_anc_msg_send(kfd, RS_ANC_OFFER, 0);
    if (role == NSTACK_ADOPT_PASSIVE && !peer_urgent && !hello_sent) {
        errno = EAGAIN;              /* no sign of a framework peer: no byte for it */
        return -1;
    }
    return rs_anc_urgent_send(kfd, RS_ANC_NOPE);
}

/* NSTACK_ANCHOR_STALE: an urgent byte of a peer's module that came after
 * this end settled on TCP (a late hello, a NOPE) is taken out, passing
 * the mark when nothing follows it; anyone else's is left. Never blocks. */
static int take_stale(int kfd)
{
    uint8_t v;
    if (rs_anc_urgent_peek(kfd, &v))
        return rs_anc_ours(v) && rs_anc_urgent_take(kfd, &v) == 1 ? 0 : (errno = EAGAIN, -1);
    if (rs_anc_inline_taken(kfd, NULL, 1))      /* SO_OOBINLINE: in the stream at the mark */
        return 0;
    errno = EAGAIN;
    return -1;
}

int rs_anchor_hello(int kfd, int role)
{
    uint8_t v;
    if (kfd >= 0 && role == NSTACK_ANCHOR_STALE)
        return take_stale(kfd);
    if (kfd >= 0 && (role & NSTACK_ANCHOR_DECLINE)) {
        int r = role & ~(NSTACK_ANCHOR_DECLINE | NSTACK_ANCHOR_HELLO_SENT);
        if (r == NSTACK_ADOPT_ACTIVE || r == NSTACK_ADOPT_PASSIVE) {
            rs_global_init_once();
            return decline(kfd, r, (role & NSTACK_ANCHOR_HELLO_SENT) != 0);
        }
    }
    if (kfd < 0 || (role != NSTACK_ADOPT_ACTIVE && role != NSTACK_ADOPT_PASSIVE)) {
        rs_log(3, "anchor_hello(): bad argument (fd %d, role %d)", kfd, role);
        errno = EINVAL;
        return -1;
    }
    rs_global_init_once();
    if (role == NSTACK_ADOPT_PASSIVE) {
        /* answer only a framework peer: a plain client never gets an
         * urgent byte (it would stay unread in its socket) */
        if (!rs_anc_urgent_peek(kfd, &v) || (v != RS_ANC_HELLO && v != RS_ANC_KICK) ||
            rs_anc_inband(kfd) == 0) {
            errno = EAGAIN;   /* no framework peer (yet), or it left already */
            return -1;
        }
    } else {
        struct sockaddr_storage peer;
        socklen_t len;
        if (rs_anc_addr(kfd, 1, &peer, &len))
            return -1;
        if (rs_anc_negcache_hit(&peer)) {
            errno = ENOPROTOOPT;
            return -1;
        }
    }
    return rs_anc_urgent_send(kfd, RS_ANC_HELLO);
}

static struct rsock *new_shell(int kfd, int role)
{
    struct sockaddr_storage ss;
    socklen_t len;
    struct rsock *s = NULL;
    if (rs_anc_addr(kfd, 0, &ss, &len))
        return NULL;
    if (role == NSTACK_ADOPT_ACTIVE) {
        if (rs_e_socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0, &s) < 0)
            return NULL;
    } else if (errno = 0, !(s = rs_alloc(ss.ss_family, NULL))) {
        /* the rdma_cm id comes with the connect request; EMFILE stays */
        errno = errno ? errno : ENOMEM;
        return NULL;
    }
    /* A TCP application never sized these for rsockets: as large as TCP's
     * autotuning lets a bulk stream grow (rsockets' 128 KiB halves the
     * throughput; doc/rsocket.md "Tunables"). SO_RCVBUF/SO_SNDBUF the
     * application set are replayed afterwards and win; the locked-memory
     * fit still caps them, and only RS_ANCHOR_BUF_CONNS connections of a
     * process have them at a time (rs_memlock.c). */
    rs_anchor_buf_take(s);
    s->anc = calloc(1, sizeof(*s->anc));
    if (!s->anc) {
        rs_free(s);
        errno = ENOMEM;
        return NULL;
    }
    s->anc->kfd = kfd;
    s->anc->role = role;
    /* made now, not at the first deadline: out of descriptors must stop
     * the anchor here, before anything commits it (a committed end cannot
     * fall back alone) */
    s->anc->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->anc->timer_fd < 0 || rs_wait_fd_add(s, s->anc->timer_fd)) {
        int err = errno;
        rs_free(s);
        errno = err;
        return NULL;
    }
    return s;
}

int rs_anchor_open(int kfd, int role, int flags, nstack_sock **out)
{
    if (kfd < 0 || !out || (role != NSTACK_ADOPT_ACTIVE && role != NSTACK_ADOPT_PASSIVE)) {
        rs_log(3, "anchor(): bad argument (fd %d, role %d, out %p)", kfd, role, (void *)out);
        errno = EINVAL;
        return -1;
    }
    rs_global_init_once();
    rs_anc_linger_reap();
    struct rsock *s = new_shell(kfd, role);
    if (!s) {
        /* nothing in-band was sent: TCP carries the connection */
        rs_log(2, "anchor: no module socket (%s); staying on TCP", strerror(errno));
        int err = errno;
        if (role == NSTACK_ADOPT_PASSIVE && (flags & NSTACK_ANCHOR_HELLO_SENT))
            decline_without_shell(kfd);
        /* a cause the dispatcher reports per connection (nstack-stat) keeps its errno */
        errno = err == ENODEV || err == EMFILE || err == ENFILE || err == ENOMEM ? err : ENOPROTOOPT;
        return -1;
    }
    s->nonblock = (flags & NSTACK_ADOPT_NONBLOCK) != 0;
    rs_kick_for_mode(s);
    s->anc->hello_sent = (flags & NSTACK_ANCHOR_HELLO_SENT) != 0;
    pthread_mutex_lock(&s->lock);
    if (flags & NSTACK_ANCHOR_LATE)
        rs_anc_late_open(s, flags);
    else if (role == NSTACK_ADOPT_PASSIVE)
        set_phase(s, ANC_P_HELLO);
    else if (rs_anc_tcp_connecting(kfd))
        set_phase(s, ANC_TCPCONN);
    else
        start_active_hello(s);
    rs_anc_pair_join(s, &s->anc->link, kfd);
    advance(s);
    unlock_and_tidy(s);
    *out = (nstack_sock *)s;
    return s->wait_fd;
}
