/*
 * ds_module.c - the rsocket stack module with datagram sockets: the stream
 * module's operations (rs_module.c) with every socket operation first
 * asking whether the socket is a datagram rsocket (ds_is, a range check
 * of the pointer) and then calling the datagram engine (ds_*.c). Stream
 * sockets pay one comparison per call. The module declares SOCK_DGRAM in
 * its caps, so the dispatcher routes UDP sockets by rd_config.json.
 */
#include "ds_sock.h"
#include "rs_sock.h"

#include <errno.h>
#include <nstack/nstack_module.h>

const struct nstack_module *rs_stream_module(const struct nstack_fw_api *fw);

static const struct nstack_module *st;   /* set once at registration */
static struct nstack_module mod;

#define D(s) ((struct dsock *)(void *)(s))

static int w_socket(int domain, int type, int protocol, nstack_sock **out)
{
    if ((type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == SOCK_DGRAM)
        return ds_socket(domain, type, protocol, (struct dsock **)out);
    return st->socket(domain, type, protocol, out);
}

static void w_set_cookie(nstack_sock *s, void *c)
{
    ds_is(s) ? ds_set_cookie(D(s), c) : st->set_cookie(s, c);
}

static int w_bind(nstack_sock *s, const struct sockaddr *a, socklen_t l)
{
    return ds_is(s) ? ds_bind(D(s), a, l) : st->bind(s, a, l);
}

static int w_listen(nstack_sock *s, int backlog)
{
    return ds_is(s) ? (errno = EOPNOTSUPP, -1) : st->listen(s, backlog);
}

static int w_accept(nstack_sock *s, struct sockaddr *a, socklen_t *l, int f, nstack_sock **o)
{
    return ds_is(s) ? (errno = EOPNOTSUPP, -1) : st->accept(s, a, l, f, o);
}

static int w_connect(nstack_sock *s, const struct sockaddr *a, socklen_t l)
{
    return ds_is(s) ? ds_connect(D(s), a, l) : st->connect(s, a, l);
}

static int w_shutdown(nstack_sock *s, int how)
{
    return ds_is(s) ? 0 : st->shutdown(s, how);   /* no datagram effect, as librdmacm */
}

static int w_close(nstack_sock *s)
{
    return ds_is(s) ? ds_close(D(s)) : st->close(s);
}

static ssize_t w_send(nstack_sock *s, const void *b, size_t n, int f)
{
    if (!ds_is(s))
        return st->send(s, b, n, f);
    struct iovec iov = { (void *)b, n };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    return ds_sendmsg(D(s), &m, f);
}

static ssize_t w_recv(nstack_sock *s, void *b, size_t n, int f)
{
    if (!ds_is(s))
        return st->recv(s, b, n, f);
    struct iovec iov = { b, n };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    return ds_recvmsg(D(s), &m, f);
}

static ssize_t w_sendmsg(nstack_sock *s, const struct msghdr *m, int f)
{
    return ds_is(s) ? ds_sendmsg(D(s), m, f) : st->sendmsg(s, m, f);
}

static ssize_t w_recvmsg(nstack_sock *s, struct msghdr *m, int f)
{
    return ds_is(s) ? ds_recvmsg(D(s), m, f) : st->recvmsg(s, m, f);
}

static int w_getsockname(nstack_sock *s, struct sockaddr *a, socklen_t *l)
{
    return ds_is(s) ? ds_name(D(s), 0, a, l) : st->getsockname(s, a, l);
}

static int w_getpeername(nstack_sock *s, struct sockaddr *a, socklen_t *l)
{
    return ds_is(s) ? ds_name(D(s), 1, a, l) : st->getpeername(s, a, l);
}

static int w_getsockopt(nstack_sock *s, int lv, int n, void *v, socklen_t *l)
{
    return ds_is(s) ? ds_getsockopt(D(s), lv, n, v, l) : st->getsockopt(s, lv, n, v, l);
}

static int w_setsockopt(nstack_sock *s, int lv, int n, const void *v, socklen_t l)
{
    return ds_is(s) ? ds_setsockopt(D(s), lv, n, v, l) : st->setsockopt(s, lv, n, v, l);
}

static int w_set_nonblock(nstack_sock *s, int on)
{
    return ds_is(s) ? ds_set_nonblock(D(s), on) : st->set_nonblock(s, on);
}

static int w_ioctl(nstack_sock *s, unsigned long req, void *arg)
{
    return ds_is(s) ? ds_ioctl(D(s), req, arg) : st->ioctl(s, req, arg);
}

static uint32_t w_poll_events(nstack_sock *s, uint64_t *gen)
{
    return ds_is(s) ? ds_poll_events(D(s), gen) : st->poll_events(s, gen);
}

/* Datagram sockets have no cheaper re-check: their full pass. */
static uint32_t w_poll_recheck(nstack_sock *s, uint64_t *gen)
{
    return ds_is(s) ? ds_poll_events(D(s), gen) : st->poll_recheck(s, gen);
}

static uint32_t w_poll_lazy(nstack_sock *s, uint64_t *gen, int fired)
{
    return ds_is(s) ? ds_poll_events(D(s), gen) : st->poll_lazy(s, gen, fired);
}

static int w_arm(nstack_sock *s)
{
    return ds_is(s) ? 0 : st->arm(s);
}

/* Datagram sockets' looks are full passes: no busy polling. */
static uint64_t w_busy_poll_ns(nstack_sock *s)
{
    return ds_is(s) ? 0 : st->busy_poll_ns(s);
}

RS_VISIBLE int rsocket_stack_register(const struct nstack_fw_api *fw,
                                      const struct nstack_module **out)
{
    if (!out) {
        errno = EINVAL;
        return -1;
    }
    if (!(st = rs_stream_module(fw)))
        return -1;
    mod = *st;
    mod.caps |= NSTACK_CAP_DGRAM;
    mod.socket = w_socket;
    mod.set_cookie = w_set_cookie;
    mod.bind = w_bind;
    mod.listen = w_listen;
    mod.accept = w_accept;
    mod.connect = w_connect;
    mod.shutdown = w_shutdown;
    mod.close = w_close;
    mod.send = w_send;
    mod.recv = w_recv;
    mod.sendmsg = w_sendmsg;
    mod.recvmsg = w_recvmsg;
    mod.getsockname = w_getsockname;
    mod.getpeername = w_getpeername;
    mod.getsockopt = w_getsockopt;
    mod.setsockopt = w_setsockopt;
    mod.set_nonblock = w_set_nonblock;
    mod.ioctl = w_ioctl;
    mod.poll_events = w_poll_events;
    mod.poll_recheck = w_poll_recheck;
    mod.poll_lazy = w_poll_lazy;
    mod.arm = w_arm;
    mod.busy_poll_ns = w_busy_poll_ns;
    *out = &mod;
    return 0;
}
