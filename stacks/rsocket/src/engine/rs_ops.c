/*
 * rs_ops.c - the engine's socket operations on struct rsock, shared by the
 * rsocket API (rs_api.c, fd based) and the nStack module (rs_module.c).
 */
#include "rs_sock.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static pthread_once_t rs_once = PTHREAD_ONCE_INIT;

static void rs_global_init(void)
{
    rs_tunables_load();
    /* Registered memory must survive a fork in the parent (MADV_DONTFORK). */
    if (ibv_fork_init())
        rs_log(2, "ibv_fork_init failed: sockets must not be used across fork");
    pthread_atfork(NULL, NULL, rs_fork_child_reset);
}

void rs_global_init_once(void)
{
    pthread_once(&rs_once, rs_global_init);
}

static int create_channel_and_id(struct rsock *s)
{
    s->cm_chan = rdma_create_event_channel();
    if (!s->cm_chan)
        return -1;
    int fl = fcntl(s->cm_chan->fd, F_GETFL);
    if (fl < 0 || fcntl(s->cm_chan->fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    if (rs_wait_fd_add(s, s->cm_chan->fd))
        return -1;
    return rdma_create_id(s->cm_chan, &s->id, s, RDMA_PS_TCP);
}

int rs_e_socket(int domain, int type, int protocol, struct rsock **out)
{
    pthread_once(&rs_once, rs_global_init);
    if (domain != AF_INET && domain != AF_INET6) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    if ((type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != SOCK_STREAM ||
        (protocol != 0 && protocol != IPPROTO_TCP)) {
        errno = EPROTONOSUPPORT;
        return -1;
    }
    errno = 0;
    struct rsock *s = rs_alloc(domain, NULL);
    if (!s) {
        /* out of descriptors is EMFILE/ENFILE, as the kernel says it */
        errno = errno ? errno : ENOMEM;
        return -1;
    }
    if (create_channel_and_id(s)) {
        int saved = errno ? errno : ENODEV;
        rs_free(s);
        errno = saved;
        return -1;
    }
    s->nonblock = !!(type & SOCK_NONBLOCK);
    rs_kick_for_mode(s);
    *out = s;
    return s->wait_fd;
}

int rs_e_bind(struct rsock *s, const struct sockaddr *addr, socklen_t len)
{
    if (!addr || len < sizeof(sa_family_t) || addr->sa_family != s->domain) {
        errno = addr ? EAFNOSUPPORT : EFAULT;
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    int r = rs_check_usable(s) ? -1 : rs_conn_bind(s, addr, len);
    pthread_mutex_unlock(&s->lock);
    return r;
}

int rs_e_listen(struct rsock *s, int backlog)
{
    pthread_mutex_lock(&s->lock);
    int r = rs_check_usable(s) ? -1 : rs_conn_listen(s, backlog);
    pthread_mutex_unlock(&s->lock);
    return r;
}

static int accept_wait(struct rsock *s, struct rsock **out)
{
    int64_t deadline = rs_deadline(&s->rcvtimeo, s->nonblock);
    if (rs_check_usable(s))
        return -1;
    for (;;) {
        /* also re-checked after every wait: shutdown() from another
         * thread stops the listener */
        if (s->state != RS_LISTENING || !s->rd_open) {
            errno = EINVAL;
            return -1;
        }
        rs_lprog_run();
        rs_progress(s, 0);
        if ((*out = rs_conn_accept_pop(s)))
            return 0;
        if (s->accept_err) {     /* a request found no descriptors */
            errno = s->accept_err;
            s->accept_err = 0;
            return -1;
        }
        if (rs_wait_locked(s, deadline))
            return -1;
    }
}

int rs_e_accept(struct rsock *s, struct sockaddr *addr, socklen_t *len, int flags,
                struct rsock **out)
{
    struct rsock *c = NULL;
    pthread_mutex_lock(&s->lock);
    int r = accept_wait(s, &c);
    pthread_mutex_unlock(&s->lock);
    if (r)
        return -1;
    c->nonblock = !!(flags & SOCK_NONBLOCK);
    rs_kick_for_mode(c);
    if (addr && len)
        rs_e_name(c, 1, addr, len);
    if (c->keepalive || c->user_timeout_ms > 0)
        rs_keepalive_arm(c);
    *out = c;
    return c->wait_fd;
}

static int take_error(struct rsock *s)
{
    errno = s->err ? s->err : ECONNREFUSED;
    s->err = 0;
    return -1;
}

static int connect_locked(struct rsock *s, const struct sockaddr *addr, socklen_t len)
{
    if (rs_check_usable(s))
        return -1;
    switch (s->state) {
    case RS_INIT:
    case RS_BOUND:
        if (!addr || len < sizeof(sa_family_t) || addr->sa_family != s->domain) {
            errno = addr ? EAFNOSUPPORT : EFAULT;
            return -1;
        }
        if (rs_conn_start(s, addr, len))
            return -1;
        if (s->nonblock) {
            errno = EINPROGRESS;
            return -1;
        }
        break;
    case RS_RESOLVING_ADDR:
    case RS_RESOLVING_ROUTE:
    case RS_CONNECTING:
        if (s->nonblock) {
            errno = EALREADY;
            return -1;
        }
        break;
    case RS_CONNECT_ERROR:
        return take_error(s);
    default:
        errno = EISCONN;
        return -1;
    }
    int64_t deadline = rs_now_ms() + rs_tun.connect_timeout_ms;
    /* the deadline is the engine's; a signal ends the wait only with
     * SO_SNDTIMEO set or without SA_RESTART (the connect goes on) */
    int timed = s->sndtimeo.tv_sec || s->sndtimeo.tv_usec;
    while (s->state >= RS_RESOLVING_ADDR && s->state <= RS_CONNECTING) {
        if (rs_wait_timed(s, deadline, timed)) {
            if (errno == EAGAIN)
                rs_set_error(s, ETIMEDOUT, "connect timed out");
            break;
        }
    }
    if (s->state == RS_CONNECT_ERROR)
        return take_error(s);
    if (s->state < RS_CONNECTED) {
        errno = ETIMEDOUT;
        return -1;
    }
    if (s->keepalive || s->user_timeout_ms > 0)
        rs_keepalive_arm(s);
    return 0;
}

int rs_e_connect(struct rsock *s, const struct sockaddr *addr, socklen_t len)
{
    pthread_mutex_lock(&s->lock);
    int r = connect_locked(s, addr, len);
    pthread_mutex_unlock(&s->lock);
    return r;
}

/* A listener's connections not accepted yet are closed (its lock held). */
static void close_queued(struct rsock *s)
{
    struct rsock *c;
    while ((c = rs_accept_take_any(s))) {
        pthread_mutex_lock(&c->lock);
        rs_close_drain(c);
        pthread_mutex_unlock(&c->lock);
        rs_free(c);
    }
}

/*
 * shutdown(SHUT_RD or SHUT_RDWR) of a listener stops it as Linux does (the
 * usual graceful stop of a server): every accept, blocked or later, fails
 * with EINVAL, queued connections are closed, new requests rejected
 * (rs_accept_request), poll says IN|OUT|HUP|RDHUP. SHUT_WR alone does
 * nothing. listen() again restarts it. Lock held.
 */
static int listener_shutdown_locked(struct rsock *s, int how)
{
    if (how == SHUT_WR)
        return 0;
    s->rd_open = 0;
    close_queued(s);
    rs_event(s);
    return 0;
}

int rs_e_shutdown(struct rsock *s, int how)
{
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    int r = rs_check_usable(s)              ? -1
            : s->state == RS_LISTENING      ? listener_shutdown_locked(s, how)
                                            : rs_shutdown_locked(s, how);
    void *cookie = r == 0 ? s->cookie : NULL;
    pthread_mutex_unlock(&s->lock);
    /* SHUT_RD makes the socket readable (EOF), SHUT_WR may make it hang
     * up: another thread may sleep on it in the dispatcher's epoll */
    if (cookie && rs_notify_fn)
        rs_notify_fn(cookie);
    return r;
}

/* Closing with unread data resets a TCP connection (RST), and the peer's
 * calls then fail with ECONNRESET. An anchored connection does the same on
 * its TCP socket, the anchor (the dispatcher closes it after this): the
 * peer's module reports the reset (rs_anchor_check). Lock held. */
static void reset_if_unread(struct rsock *s)
{
    struct linger abort_close = { 1, 0 };
    if (s->anchor_fd >= 0 && s->rx_queued &&
        setsockopt(s->anchor_fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close)))
        rs_log(3, "close with unread data: SO_LINGER on the anchor: %s", strerror(errno));
}

int rs_e_close(struct rsock *s)
{
    rs_lprog_unregister(s);      /* before anyone else can find it there */
    pthread_mutex_lock(&s->lock);
    if (rs_check_usable(s) == 0) {
        close_queued(s);
        reset_if_unread(s);
        rs_close_drain(s);
    }
    pthread_mutex_unlock(&s->lock);
    rs_free(s);
    return 0;
}

ssize_t rs_e_sendv(struct rsock *s, const struct iovec *iov, int iovcnt, int flags)
{
    if (iovcnt < 0 || (iovcnt && !iov)) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    ssize_t r = rs_check_usable(s) ? -1 : rs_sendv_locked(s, iov, iovcnt, flags);
    pthread_mutex_unlock(&s->lock);
    return r;
}

ssize_t rs_e_recvv(struct rsock *s, const struct iovec *iov, int iovcnt, int flags)
{
    if (iovcnt < 0 || (iovcnt && !iov)) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    ssize_t r = rs_check_usable(s) ? -1 : rs_recvv_locked(s, iov, iovcnt, flags);
    pthread_mutex_unlock(&s->lock);
    return r;
}

int rs_e_name(struct rsock *s, int peer, struct sockaddr *addr, socklen_t *len)
{
    struct sockaddr_storage zero = { .ss_family = (sa_family_t)s->domain };
    const struct sockaddr *sa;
    socklen_t real = s->domain == AF_INET6 ? sizeof(struct sockaddr_in6)
                                           : sizeof(struct sockaddr_in);
    if (!addr || !len) {
        errno = EFAULT;
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    if (peer && s->state != RS_CONNECTED && s->state != RS_DISCONNECTED) {
        pthread_mutex_unlock(&s->lock);
        errno = ENOTCONN;
        return -1;
    }
    sa = !s->id ? NULL : peer ? rdma_get_peer_addr(s->id) : rdma_get_local_addr(s->id);
    if (!sa || sa->sa_family != s->domain)
        sa = (const struct sockaddr *)&zero;
    memcpy(addr, sa, *len < real ? *len : real);
    *len = real;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int rs_e_set_nonblock(struct rsock *s, int on)
{
    pthread_mutex_lock(&s->lock);
    s->nonblock = !!on;
    rs_kick_for_mode(s);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int rs_e_ioctl(struct rsock *s, unsigned long req, void *arg)
{
    if (!arg) {
        errno = EFAULT;
        return -1;
    }
    if (req == FIONBIO)
        return rs_e_set_nonblock(s, *(int *)arg);
    if (req != FIONREAD) {
        errno = ENOTTY;
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    if (rs_check_usable(s) == 0)
        rs_progress(s, 0);
    *(int *)arg = s->rx_queued > INT32_MAX ? INT32_MAX : (int)s->rx_queued;
    pthread_mutex_unlock(&s->lock);
    return 0;
}
