/*
 * rs_module.c - the engine as an nStack stack module: one static
 * struct nstack_module, handed out by rsocket_stack_register().
 */
#include "rs_anchor.h"
#include "rs_down.h"
#include "rs_intr.h"
#include "rs_sock.h"

#include <errno.h>
#include <nstack/nstack_module.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>

/* An anchored socket carries calls only once upgraded (rs_anchor_gate:
 * EAGAIN while upgrading, ENOPROTOOPT when it stays on TCP); two unlocked
 * loads on the data path (is_down, rs_anchor_ready). On its way back to
 * TCP (rs_anchor_down.c) RELEASING waits like an upgrading socket
 * (EAGAIN, or a bounded wait) and DOWN is served by rs_down_* (leftover
 * first, sends on TCP). */
static int is_down(struct rsock *r)
{
    return __atomic_load_n(&r->anc_phase, __ATOMIC_ACQUIRE) == RS_ANC_PHASE_DOWN;
}

static int releasing(struct rsock *r)
{
    return __atomic_load_n(&r->anc_phase, __ATOMIC_ACQUIRE) == RS_ANC_PHASE_RELEASING;
}

/* Returns 1 when the call is to be served by rs_down_* (DOWN), 0 when the
 * engine carries it, -1 when it fails (errno). */
static int down_gate(struct rsock *r, int flags, int how)
{
    for (int i = 0; i < 2; i++) {
        if (is_down(r))
            return 1;
        if (rs_anchor_ready(r))
            return 0;
        if (rs_anchor_gate(r, flags, how) == 0)
            return 0;
        if (!releasing(r) && !is_down(r))
            return -1;
        if (releasing(r) && (r->nonblock || (flags & MSG_DONTWAIT) || errno != EAGAIN))
            return -1;           /* EAGAIN, or the wait's own failure */
    }
    return is_down(r) ? 1 : -1;
}

/* The engine refused a call because the socket went down meanwhile. */
static int refused_down(struct rsock *r, ssize_t n)
{
    return n < 0 && errno == ENOPROTOOPT && (is_down(r) || releasing(r));
}

typedef ssize_t (*vec_fn)(struct rsock *, const struct iovec *, int, int);

/* A reply kept while the socket upgraded (rs_anchor_early.c) leaves
 * before this send: 0 once it is out, -1/EAGAIN while a nonblocking
 * send must wait for it. */
static int early_first(struct rsock *r, int flags)
{
    pthread_mutex_lock(&r->lock);
    rs_anchor_early_drain(r, !(r->nonblock || (flags & MSG_DONTWAIT)));
    int left = r->early_len != 0;
    pthread_mutex_unlock(&r->lock);
    if (left)
        errno = EAGAIN;
    return left ? -1 : 0;
}

/* A data call on the engine, or on TCP once down (see down_gate). */
static ssize_t carry(struct rsock *r, const struct iovec *iov, int n, int flags, int how,
                     vec_fn engine, vec_fn down)
{
    ssize_t late;
    if (__builtin_expect(!rs_anchor_ready(r), 0) && rs_anchor_late_io(r, iov, n, flags, how, &late))
        return late;                     /* the long-lived policy's switch: still TCP data */
    for (int i = 0; i < 3; i++) {
        int g = down_gate(r, flags, how);
        if (g < 0 && errno == EAGAIN && how == RS_GATE_WRITE) {
            ssize_t t = rs_anchor_early_take(r, iov, n);   /* a fresh socket would take it */
            if (t >= 0 || !rs_anchor_ready(r))
                return t;
            continue;           /* upgraded meanwhile: the engine takes it */
        }
        if (g)
            return g > 0 ? down(r, iov, n, flags) : -1;
        if (__builtin_expect(r->early_len != 0, 0) && how == RS_GATE_WRITE && early_first(r, flags))
            return -1;
        ssize_t got = engine(r, iov, n, flags);
        if (!refused_down(r, got))
            return got;
    }
    errno = EAGAIN;
    return -1;
}

/* The engine's send with the kernel's order of errors after the peer's
 * close (RS_MSG_TCP); the TCP path after going down never sees the flag. */
static ssize_t tcp_sendv(struct rsock *r, const struct iovec *iov, int n, int flags)
{
    return rs_e_sendv(r, iov, n, flags | RS_MSG_TCP);
}

static ssize_t carry_sendv(struct rsock *r, const struct iovec *iov, int n, int flags)
{
    return carry(r, iov, n, flags & ~RS_MSG_TCP, RS_GATE_WRITE, tcp_sendv, rs_down_sendv);
}

static ssize_t carry_recvv(struct rsock *r, const struct iovec *iov, int n, int flags)
{
    return carry(r, iov, n, flags, 0, rs_e_recvv, rs_down_recvv);
}

/* An anchored socket is connected from the start (its TCP socket is):
 * bind/listen/accept/connect on it fail as on a connected TCP socket. */
static int refuse_anchored(nstack_sock *s, int err)
{
    if (((struct rsock *)s)->anc == NULL)
        return 0;
    rs_log(3, "an anchored socket is connected: bind/listen/accept/connect refused");
    errno = err;
    return 1;
}

/* Set once in rsocket_stack_register(), before any socket exists. */
static const struct nstack_fw_api *rs_fw;

static void fw_log_sink(int level, const char *line)
{
    if (rs_fw && rs_fw->log)
        rs_fw->log((enum nstack_log_level)level, "rsocket", "%s", line);
}

static int m_init(const struct nstack_fw_api *fw)
{
    /* what differs from rsockets' defaults, for nstack-stat (ABI 1.3) */
    if (fw != NULL && NSTACK_FW_HAS(fw, publish_setting))
        rs_tunables_publish(fw->publish_setting);
    /* which signal interrupted a sleep in the engine (ABI 1.4) */
    if (fw != NULL && NSTACK_FW_HAS(fw, intr_restarts) && NSTACK_FW_HAS(fw, intr_mark))
        rs_intr_use(fw->intr_mark, fw->intr_restarts);
    return 0;
}

static void m_fork_child(void)
{
    rs_fork_child_reset();
}

static int m_socket(int domain, int type, int protocol, nstack_sock **out)
{
    return rs_e_socket(domain, type, protocol, (struct rsock **)out);
}

static void m_set_cookie(nstack_sock *s, void *cookie)
{
    struct rsock *r = (struct rsock *)s;
    pthread_mutex_lock(&r->lock);
    r->cookie = cookie;
    pthread_mutex_unlock(&r->lock);
}

static int m_bind(nstack_sock *s, const struct sockaddr *a, socklen_t l)
{
    if (refuse_anchored(s, EINVAL))
        return -1;
    return rs_e_bind((struct rsock *)s, a, l);
}

static int m_listen(nstack_sock *s, int backlog)
{
    if (refuse_anchored(s, EINVAL))
        return -1;
    return rs_e_listen((struct rsock *)s, backlog);
}

static int m_accept(nstack_sock *s, struct sockaddr *a, socklen_t *l, int flags,
                    nstack_sock **out)
{
    if (refuse_anchored(s, EINVAL))
        return -1;
    return rs_e_accept((struct rsock *)s, a, l, flags, (struct rsock **)out);
}

static int m_connect(nstack_sock *s, const struct sockaddr *a, socklen_t l)
{
    if (refuse_anchored(s, EISCONN))
        return -1;
    return rs_e_connect((struct rsock *)s, a, l);
}

static int m_shutdown(nstack_sock *s, int how)
{
    /* waits for the handshake (bounded) even when nonblocking: a
     * shutdown has no "try again" */
    int g = down_gate((struct rsock *)s, 0, RS_GATE_WRITE | RS_GATE_WAIT);
    if (g)
        return g > 0 ? shutdown(rs_down_kfd((struct rsock *)s), how) : -1;
    return rs_e_shutdown((struct rsock *)s, how);
}

static int m_close(nstack_sock *s)
{
    if (__builtin_expect(((struct rsock *)s)->early_len != 0, 0))
        rs_anchor_early_close((struct rsock *)s);
    if (is_down((struct rsock *)s)) {
        rs_free((struct rsock *)s);      /* quietly: the peer is on TCP too */
        return 0;
    }
    return rs_e_close((struct rsock *)s);
}

static ssize_t m_send(nstack_sock *s, const void *buf, size_t len, int flags)
{
    struct iovec iov = { (void *)buf, len };
    return carry_sendv((struct rsock *)s, &iov, 1, flags);
}

static ssize_t m_recv(nstack_sock *s, void *buf, size_t len, int flags)
{
    struct iovec iov = { buf, len };
    return carry_recvv((struct rsock *)s, &iov, 1, flags);
}

static ssize_t m_sendmsg(nstack_sock *s, const struct msghdr *msg, int flags)
{
    return carry_sendv((struct rsock *)s, msg->msg_iov, (int)msg->msg_iovlen, flags);
}

static ssize_t m_recvmsg(nstack_sock *s, struct msghdr *msg, int flags)
{
    ssize_t r = carry_recvv((struct rsock *)s, msg->msg_iov, (int)msg->msg_iovlen, flags);
    if (r >= 0) {
        msg->msg_controllen = 0;
        msg->msg_flags = 0;
    }
    return r;
}

static int m_anchor_release(nstack_sock *s, int timeout_ms)
{
    return rs_anchor_release((struct rsock *)s, timeout_ms);
}

static int m_anchor_kfd(nstack_sock *s, int kfd)
{
    return rs_anchor_move_kfd((struct rsock *)s, kfd);
}

static int m_getsockname(nstack_sock *s, struct sockaddr *a, socklen_t *l)
{
    return rs_e_name((struct rsock *)s, 0, a, l);
}

static int m_getpeername(nstack_sock *s, struct sockaddr *a, socklen_t *l)
{
    return rs_e_name((struct rsock *)s, 1, a, l);
}

static int m_getsockopt(nstack_sock *s, int level, int name, void *v, socklen_t *l)
{
    if (level == NSTACK_SOL_MODULE && name == NSTACK_SO_FALLBACK_ERRNO && v && l && *l >= sizeof(int)) {
        *(int *)v = rs_anchor_fallback_err((struct rsock *)s);
        *l = sizeof(int);
        return 0;
    }
    if (is_down((struct rsock *)s))
        return getsockopt(rs_down_kfd((struct rsock *)s), level, name, v, l);
    return rs_e_getsockopt((struct rsock *)s, level, name, v, l);
}

static int m_setsockopt(nstack_sock *s, int level, int name, const void *v, socklen_t l)
{
    if (is_down((struct rsock *)s))
        return setsockopt(rs_down_kfd((struct rsock *)s), level, name, v, l);
    return rs_e_setsockopt((struct rsock *)s, level, name, v, l);
}

static int m_set_nonblock(nstack_sock *s, int on)
{
    if (is_down((struct rsock *)s))
        return 0;                        /* the app fd is the TCP socket: set there */
    return rs_e_set_nonblock((struct rsock *)s, on);
}

static int m_ioctl(nstack_sock *s, unsigned long req, void *arg)
{
    struct rsock *r = (struct rsock *)s;
    if (is_down(r))
        return rs_down_ioctl(r, req, arg);
    if (req == FIONREAD && !rs_anchor_ready(r) && arg && rs_anchor_late_kfd(r) >= 0)
        return ioctl(rs_anchor_late_kfd(r), FIONREAD, arg);   /* still TCP data */
    if (req == FIONREAD && !rs_anchor_ready(r) && arg) {
        if (rs_anchor_gate(r, MSG_DONTWAIT, 0) && errno != EAGAIN)
            return -1;
        if (!rs_anchor_ready(r)) {
            *(int *)arg = 0;          /* nothing readable while upgrading */
            return 0;
        }
    }
    return rs_e_ioctl((struct rsock *)s, req, arg);
}

static uint32_t m_poll_events(nstack_sock *s, uint64_t *gen)
{
    struct rsock *r = (struct rsock *)s;
    if (r->anc && releasing(r)) {
        /* the peer's ACK completes it here too (a release that timed out) */
        pthread_mutex_lock(&r->lock);
        if (rs_check_usable(r) == 0 && releasing(r))
            rs_progress(r, 1);
        pthread_mutex_unlock(&r->lock);
    }
    if (r->anc && is_down(r))
        return rs_down_poll_events(r, gen);
    uint32_t m = r->anc ? rs_anchor_poll_events(r, gen) : rs_poll_events(r, gen);
    /* The peer's DOWN read in this very call (its progress runs
     * rs_anchor_check): the mask above is the torn-down RDMA side's, e.g.
     * EPOLLIN with nothing to read - a nonblocking read after that poll
     * got EAGAIN, which OpenSSH's client takes as fatal. Answer for the
     * connection as it is now: the leftover, or back on TCP. */
    if (r->anc && is_down(r))
        return rs_down_poll_events(r, gen);
    return m;
}

/* ABI 1.5: the dispatcher saw no wake-up of the wait fd since its last
 * poll_events. Only an upgraded (or direct) connection has a cheaper
 * pass (rs_progress_recheck); every other phase makes the full one. */
static uint32_t m_poll_recheck(nstack_sock *s, uint64_t *gen)
{
    struct rsock *r = (struct rsock *)s;
    if (!rs_anchor_ready(r))
        return m_poll_events(s, gen);
    uint32_t m = rs_poll_recheck(r, gen);
    if (r->anc && is_down(r))        /* went down meanwhile (another thread) */
        return rs_down_poll_events(r, gen);
    return m;
}

/* ABI 1.5: a pass that may leave the CQ unarmed (NSTACK_EV_UNARMED), for
 * the dispatcher to arm before it sleeps (m_arm); only for an upgraded
 * (or direct) connection, other phases make their usual pass. */
static uint32_t m_poll_lazy(nstack_sock *s, uint64_t *gen, int fired)
{
    struct rsock *r = (struct rsock *)s;
    if (!rs_anchor_ready(r))
        return fired ? m_poll_events(s, gen) : m_poll_recheck(s, gen);
    uint32_t m = rs_poll_lazy(r, gen, fired);
    if (r->anc && is_down(r))
        return rs_down_poll_events(r, gen);
    return m;
}

static int m_arm(nstack_sock *s)
{
    return rs_poll_arm((struct rsock *)s);
}

/* ABI 1.6: only an upgraded (or direct) connection's looks are cheap. */
static uint64_t m_busy_poll_ns(nstack_sock *s)
{
    struct rsock *r = (struct rsock *)s;
    if (!rs_anchor_ready(r) || (r->anc && is_down(r)))
        return 0;
    return rs_busy_poll_ns(r);
}

static const struct nstack_module rs_module = {
    .abi_version = NSTACK_MODULE_ABI_VERSION,
    .struct_size = sizeof(struct nstack_module),
    .name = "rsocket",
    .caps = NSTACK_CAP_INET | NSTACK_CAP_INET6 | NSTACK_CAP_STREAM,
    .init = m_init,
    .fork_child = m_fork_child,
    .socket = m_socket,
    .set_cookie = m_set_cookie,
    .bind = m_bind,
    .listen = m_listen,
    .accept = m_accept,
    .connect = m_connect,
    .shutdown = m_shutdown,
    .close = m_close,
    .send = m_send,
    .recv = m_recv,
    .sendmsg = m_sendmsg,
    .recvmsg = m_recvmsg,
    .getsockname = m_getsockname,
    .getpeername = m_getpeername,
    .getsockopt = m_getsockopt,
    .setsockopt = m_setsockopt,
    .set_nonblock = m_set_nonblock,
    .ioctl = m_ioctl,
    .poll_events = m_poll_events,
    .poll_recheck = m_poll_recheck,
    .poll_lazy = m_poll_lazy,
    .arm = m_arm,
    .anchor_hello = rs_anchor_hello,
    .anchor = rs_anchor_open,
    .anchor_release = m_anchor_release,
    .anchor_policy = rs_anchor_policy,
    .anchor_kfd = m_anchor_kfd,
    .busy_poll_ns = m_busy_poll_ns,
};

/* The stream module; ds_module.c's rsocket_stack_register adds datagram
 * sockets in front of it. NULL/EINVAL for a dispatcher of another ABI. */
const struct nstack_module *rs_stream_module(const struct nstack_fw_api *fw);
const struct nstack_module *rs_stream_module(const struct nstack_fw_api *fw)
{
    if (!fw || (fw->abi_version >> 16) != NSTACK_MODULE_ABI_MAJOR) {
        errno = EINVAL;
        return NULL;
    }
    rs_fw = fw;
    rs_log_sink = fw_log_sink;
    rs_notify_fn = fw->notify;
    return &rs_module;
}
