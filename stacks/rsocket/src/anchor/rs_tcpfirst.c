/*
 * rs_tcpfirst.c - adopt(): move a connected kernel TCP socket onto an
 * rsocket (the dispatcher's fork support, doc/fork.md).
 *
 * Handshake, 8-byte messages "NSFK", version, type, port (BE):
 *   active  (connected side): when it speaks first (a send triggered the
 *           move) it writes KICK; it then reads OFFER and rconnects to the
 *           TCP peer's address at the offered port.
 *   passive (accepted side): when a receive triggered the move it first
 *           reads the KICK; it listens on its TCP address with an
 *           ephemeral port, writes OFFER and accepts one connection.
 * A side that has written nothing and finds other bytes than the magic
 * answers ENOPROTOOPT (the dispatcher stays on TCP, the bytes untouched).
 * Every wait is bounded by RS_FORK_TIMEOUT_MS (default 10000).
 *
 * The TCP fd is the dispatcher's; it may be blocking or not, so every call
 * here uses MSG_DONTWAIT and waits in poll() against a deadline.
 */
#include "rs_tcpfirst.h"

#include "rs_anchor.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "nstack/nstack_module.h"

/* RS_FORK_TIMEOUT_MS (rs_tunables.c: range checked, shown by nstack-stat). */
static int64_t tf_timeout_ms(void)
{
    rs_tunables_load();
    return rs_tun.fork_timeout_ms;
}

/* Waits for events on fd until the deadline; 0, or -1 with ETIMEDOUT. */
static int tf_wait(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - rs_now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = { .fd = fd, .events = events };
        int r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static void tf_encode(uint8_t msg[RS_TF_MSG_LEN], int type, uint16_t port)
{
    memcpy(msg, RS_TF_MAGIC, 4);
    msg[4] = RS_TF_VERSION;
    msg[5] = (uint8_t)type;
    uint16_t be = htons(port);
    memcpy(msg + 6, &be, 2);
}

static int tf_send(int kfd, int type, uint16_t port, int64_t deadline)
{
    uint8_t msg[RS_TF_MSG_LEN];
    tf_encode(msg, type, port);
    size_t done = 0;
    while (done < sizeof(msg)) {
        ssize_t n = send(kfd, msg + done, sizeof(msg) - done, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return -1;
        } else if (tf_wait(kfd, POLLOUT, deadline)) {
            return -1;
        }
    }
    return 0;
}

/* 1 while the bytes seen so far can still become the expected message. */
static int tf_prefix_ok(const uint8_t *b, size_t n, int type)
{
    uint8_t want[RS_TF_MSG_LEN];
    tf_encode(want, type, 0);
    return memcmp(b, want, n < 6 ? n : 6) == 0;
}

/*
 * Reads the peer's message of `type` (peek first, so that foreign bytes
 * stay in the stream). Returns 0 with *port, or -1: ENOPROTOOPT foreign
 * bytes, ECONNRESET the peer closed, ETIMEDOUT.
 */
static int tf_recv(int kfd, int type, uint16_t *port, int64_t deadline)
{
    uint8_t msg[RS_TF_MSG_LEN];
    for (;;) {
        ssize_t n = recv(kfd, msg, sizeof(msg), MSG_PEEK | MSG_DONTWAIT);
        if (n == 0) {
            errno = ECONNRESET;
            return -1;
        }
        if (n > 0 && !tf_prefix_ok(msg, (size_t)n, type)) {
            errno = ENOPROTOOPT;
            return -1;
        }
        if (n == (ssize_t)sizeof(msg))
            break;
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (tf_wait(kfd, POLLIN, deadline))
            return -1;
    }
    if (recv(kfd, msg, sizeof(msg), MSG_DONTWAIT) != (ssize_t)sizeof(msg)) {
        errno = EPROTO;
        return -1;
    }
    uint16_t be;
    memcpy(&be, msg + 6, 2);
    *port = ntohs(be);
    return 0;
}

/* An rsocket listener on the TCP socket's local address, ephemeral port. */
static struct rsock *tf_listen(int kfd, uint16_t *port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct rsock *l = NULL;
    if (getsockname(kfd, (struct sockaddr *)&ss, &len) < 0)
        return NULL;
    if (rs_e_socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0, &l) < 0)
        return NULL;
    rs_anc_set_port(&ss, 0);
    len = sizeof(ss);
    if (rs_e_bind(l, (struct sockaddr *)&ss, ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                      : sizeof(struct sockaddr_in)) < 0 ||
        rs_e_listen(l, 1) < 0 || rs_e_name(l, 0, (struct sockaddr *)&ss, &len) < 0) {
        int err = errno;
        rs_e_close(l);
        errno = err;
        return NULL;
    }
    *port = rs_anc_get_port(&ss);
    return l;
}

static struct rsock *tf_accept(struct rsock *l, int64_t deadline)
{
    for (;;) {
        struct rsock *c = NULL;
        if (rs_e_accept(l, NULL, NULL, SOCK_NONBLOCK, &c) >= 0)
            return c;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return NULL;
        if (tf_wait(l->wait_fd, POLLIN, deadline))
            return NULL;
    }
}

static struct rsock *tf_passive(int kfd, int flags, int64_t deadline)
{
    uint16_t port = 0, unused;
    if (!(flags & NSTACK_ADOPT_WRITE_FIRST) && tf_recv(kfd, RS_TF_KICK, &unused, deadline))
        return NULL;
    struct rsock *l = tf_listen(kfd, &port);
    if (l == NULL)
        return NULL;
    struct rsock *c = NULL;
    if (tf_send(kfd, RS_TF_OFFER, port, deadline) == 0)
        c = tf_accept(l, deadline);
    int err = errno;
    rs_e_close(l);
    errno = err;
    return c;
}

/* Runs a nonblocking rconnect to completion or the deadline. */
static int tf_connect_wait(struct rsock *c, int64_t deadline)
{
    for (;;) {
        uint64_t gen;
        uint32_t mask = rs_poll_events(c, &gen);
        if (mask & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            int err = 0;
            socklen_t len = sizeof(err);
            if (rs_e_getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0 &&
                (mask & EPOLLOUT))
                return 0;
            errno = err ? err : ECONNRESET;
            return -1;
        }
        if (tf_wait(c->wait_fd, POLLIN, deadline))
            return -1;
    }
}

static struct rsock *tf_active(int kfd, int flags, int64_t deadline)
{
    uint16_t port;
    if ((flags & NSTACK_ADOPT_WRITE_FIRST) && tf_send(kfd, RS_TF_KICK, 0, deadline))
        return NULL;
    if (tf_recv(kfd, RS_TF_OFFER, &port, deadline)) {
        if (errno == ENOPROTOOPT && (flags & NSTACK_ADOPT_WRITE_FIRST)) {
            rs_log(3, "TCP-first: the peer answered our handshake with foreign bytes "
                      "(no fork support there?)");
            errno = EPROTO;
        }
        return NULL;
    }
    struct sockaddr_storage peer;
    socklen_t len = sizeof(peer);
    struct rsock *c = NULL;
    if (getpeername(kfd, (struct sockaddr *)&peer, &len) < 0 ||
        rs_e_socket(peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0, &c) < 0)
        return NULL;
    rs_anc_set_port(&peer, port);
    if ((rs_e_connect(c, (struct sockaddr *)&peer, len) < 0 && errno != EINPROGRESS) ||
        tf_connect_wait(c, deadline) < 0) {
        int err = errno;
        rs_e_close(c);
        errno = err;
        return NULL;
    }
    return c;
}

int rs_tcpfirst_adopt(int kfd, int role, int flags, nstack_sock **out)
{
    if (kfd < 0 || out == NULL || (role != NSTACK_ADOPT_ACTIVE && role != NSTACK_ADOPT_PASSIVE)) {
        errno = EINVAL;
        return -1;
    }
    int64_t deadline = rs_now_ms() + tf_timeout_ms();
    struct rsock *c = role == NSTACK_ADOPT_ACTIVE ? tf_active(kfd, flags, deadline)
                                                  : tf_passive(kfd, flags, deadline);
    if (c == NULL)
        return -1;
    rs_e_set_nonblock(c, (flags & NSTACK_ADOPT_NONBLOCK) != 0);
    *out = (nstack_sock *)c;
    return c->wait_fd;
}
