/*
 * rs_module.c - the engine as an nStack stack module: one static
 * struct nstack_module, handed out by rsocket_stack_register().
 */
#include "rs_anchor.h"
#include "rs_sock.h"
#include "rs_tcpfirst.h"

#include <errno.h>
#include <nstack/nstack_module.h>
#include <stdarg.h>
#include <sys/ioctl.h>

/* An anchored socket carries calls only once upgraded (rs_anchor_gate:
 * EAGAIN while upgrading, ENOPROTOOPT when it stays on TCP). One
 * unlocked load on the data path. */
#define ANCHOR_GATE(r, flags, how) \
    do { \
        if (!rs_anchor_ready(r) && rs_anchor_gate(r, flags, how)) \
            return -1; \
    } while (0)

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
    (void)fw;
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
    ANCHOR_GATE((struct rsock *)s, 0, RS_GATE_WRITE | RS_GATE_WAIT);
    return rs_e_shutdown((struct rsock *)s, how);
}

static int m_close(nstack_sock *s)
{
    return rs_e_close((struct rsock *)s);
}

static ssize_t m_send(nstack_sock *s, const void *buf, size_t len, int flags)
{
    struct iovec iov = { (void *)buf, len };
    ANCHOR_GATE((struct rsock *)s, flags, RS_GATE_WRITE);
    return rs_e_sendv((struct rsock *)s, &iov, 1, flags);
}

static ssize_t m_recv(nstack_sock *s, void *buf, size_t len, int flags)
{
    struct iovec iov = { buf, len };
    ANCHOR_GATE((struct rsock *)s, flags, 0);
    return rs_e_recvv((struct rsock *)s, &iov, 1, flags);
}

static ssize_t m_sendmsg(nstack_sock *s, const struct msghdr *msg, int flags)
{
    ANCHOR_GATE((struct rsock *)s, flags, RS_GATE_WRITE);
    return rs_e_sendv((struct rsock *)s, msg->msg_iov, (int)msg->msg_iovlen, flags);
}

static ssize_t m_recvmsg(nstack_sock *s, struct msghdr *msg, int flags)
{
    ANCHOR_GATE((struct rsock *)s, flags, 0);
    ssize_t r = rs_e_recvv((struct rsock *)s, msg->msg_iov, (int)msg->msg_iovlen, flags);
    if (r >= 0) {
        msg->msg_controllen = 0;
        msg->msg_flags = 0;
    }
    return r;
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
    return rs_e_getsockopt((struct rsock *)s, level, name, v, l);
}

static int m_setsockopt(nstack_sock *s, int level, int name, const void *v, socklen_t l)
{
    return rs_e_setsockopt((struct rsock *)s, level, name, v, l);
}

static int m_set_nonblock(nstack_sock *s, int on)
{
    return rs_e_set_nonblock((struct rsock *)s, on);
}

static int m_ioctl(nstack_sock *s, unsigned long req, void *arg)
{
    struct rsock *r = (struct rsock *)s;
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
    return r->anc ? rs_anchor_poll_events(r, gen) : rs_poll_events(r, gen);
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
    .adopt = rs_tcpfirst_adopt,
    .anchor_hello = rs_anchor_hello,
    .anchor = rs_anchor_open,
};

RS_VISIBLE int rsocket_stack_register(const struct nstack_fw_api *fw,
                                      const struct nstack_module **out)
{
    if (!fw || !out || (fw->abi_version >> 16) != NSTACK_MODULE_ABI_MAJOR) {
        errno = EINVAL;
        return -1;
    }
    rs_fw = fw;
    rs_log_sink = fw_log_sink;
    rs_notify_fn = fw->notify;
    *out = &rs_module;
    return 0;
}
