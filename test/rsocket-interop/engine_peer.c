/*
 * engine_peer - the engine's end of an interop scenario.
 *
 *   rs_engine_peer server|client ADDR PORT SCENARIO   (rsocket API; run
 *       with LD_PRELOAD=libdmm_rsocket.so so the engine implements it)
 *   rs_sock_peer   server|client ADDR PORT SCENARIO   (plain sockets; run
 *       under the libnStackAPI.so preload with the rsocket route)
 *
 * The same source builds both: IO_PLAIN_SOCKETS selects the plain calls.
 * Sockets are nonblocking and every wait is a poll with a deadline.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "interop_common.h"
#include "interop_scen.h"

#ifdef IO_PLAIN_SOCKETS
#define API(f) f
#define PEER_NAME "rs_sock_peer"
#else
#include <rdma/rsocket.h>
#define API(f) r##f
#define PEER_NAME "rs_engine_peer"
#endif

#define ACCEPT_TIMEOUT_MS 60000

struct engine_end { int fd; };

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* wait_ready: the socket is ready for EVENTS before the deadline */
static int wait_ready(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = events };
        int64_t left = deadline - now_ms();
        int r;
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        r = API(poll)(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static int eng_send_all(void *ctx, const void *buf, size_t len)
{
    struct engine_end *e = ctx;
    int64_t dl = now_ms() + IO_DEADLINE_MS;
    size_t done = 0;
    while (done < len) {
        ssize_t r = API(send)(e->fd, (const uint8_t *)buf + done, len - done, 0);
        if (r > 0) {
            done += (size_t)r;
            continue;
        }
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        if (wait_ready(e->fd, POLLOUT, dl))
            return -1;
    }
    return 0;
}

static ssize_t eng_recv(void *ctx, void *buf, size_t len)
{
    struct engine_end *e = ctx;
    int64_t dl = now_ms() + IO_DEADLINE_MS;
    for (;;) {
        ssize_t r = API(recv)(e->fd, buf, len, 0);
        if (r >= 0)
            return r;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        if (wait_ready(e->fd, POLLIN, dl))
            return -1;
    }
}

static int eng_shut_wr(void *ctx)
{
    return API(shutdown)(((struct engine_end *)ctx)->fd, SHUT_WR);
}

static int eng_close(void *ctx)
{
    struct engine_end *e = ctx;
    int r = API(close)(e->fd);
    e->fd = -1;
    return r ? -1 : 0;
}

#ifndef IO_PLAIN_SOCKETS
/* riowrite into the reference peer's published buffer */
static int eng_iomap_write(void *ctx)
{
    struct engine_end *e = ctx;
    uint8_t *buf = malloc(IOMAP_WRITE_LEN);
    int64_t dl = now_ms() + IO_DEADLINE_MS;
    size_t done = 0;
    if (!buf)
        return -1;
    io_fill(buf, IOMAP_WRITE_LEN, 0, 13);
    while (done < IOMAP_WRITE_LEN) {
        size_t r = riowrite(e->fd, buf + done, IOMAP_WRITE_LEN - done,
                            (off_t)(IOMAP_OFFSET + IOMAP_WRITE_AT + done), 0);
        if (r != (size_t)-1 && r > 0) {
            done += r;
            continue;
        }
        if ((r == 0 || errno == EAGAIN || errno == EWOULDBLOCK) && !wait_ready(e->fd, POLLOUT, dl))
            continue;
        fprintf(stderr, PEER_NAME ": riowrite at %zu of %u: %s\n", done, IOMAP_WRITE_LEN, strerror(errno));
        free(buf);
        return -1;
    }
    free(buf);
    return 0;
}

static uint8_t *map_buf;             /* this process's one mapping (single-threaded) */

/* riomap a zeroed buffer at IOMAP_OFFSET; the next rsend publishes it */
static int eng_map_publish(void *ctx)
{
    struct engine_end *e = ctx;
    off_t off;
    map_buf = calloc(1, IOMAP_LEN);
    if (!map_buf)
        return -1;
    off = riomap(e->fd, map_buf, IOMAP_LEN, PROT_WRITE, 0, IOMAP_OFFSET);
    if (off != IOMAP_OFFSET) {
        fprintf(stderr, PEER_NAME ": riomap returned %lld: %s\n", (long long)off, strerror(errno));
        return -1;
    }
    return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static int eng_map_verify(void *ctx)
{
    struct engine_end *e = ctx;
    long bad = io_check(map_buf + IOMAP_WRITE_AT, IOMAP_WRITE_LEN, 0, 13);
    int rc = 0;
    if (bad >= 0) {
        fprintf(stderr, PEER_NAME ": riowrite data wrong at byte %ld of the write\n", bad);
        rc = -1;
    } else if (!all_zero(map_buf, IOMAP_WRITE_AT) ||
               !all_zero(map_buf + IOMAP_WRITE_AT + IOMAP_WRITE_LEN,
                         IOMAP_LEN - IOMAP_WRITE_AT - IOMAP_WRITE_LEN)) {
        fprintf(stderr, PEER_NAME ": riowrite touched bytes outside its range\n");
        rc = -1;
    }
    if (riounmap(e->fd, map_buf, IOMAP_LEN)) {
        fprintf(stderr, PEER_NAME ": riounmap: %s\n", strerror(errno));
        rc = -1;
    }
    return rc;
}
#endif

static int set_int(int fd, int level, int name, int v, const char *what)
{
    if (API(setsockopt)(fd, level, name, &v, sizeof(v))) {
        fprintf(stderr, PEER_NAME ": setsockopt %s=%d: %s\n", what, v, strerror(errno));
        return -1;
    }
    return 0;
}

/* per-scenario options, before listen/connect (accepted sockets inherit) */
static int scenario_options(int fd, const char *sc)
{
#ifndef IO_PLAIN_SOCKETS
    if (!strcmp(sc, "small-window"))
        return set_int(fd, SOL_RDMA, RDMA_SQSIZE, SMALL_WINDOW_RQ, "RDMA_SQSIZE") ||
               set_int(fd, SOL_RDMA, RDMA_RQSIZE, SMALL_WINDOW_RQ, "RDMA_RQSIZE") ||
               set_int(fd, SOL_SOCKET, SO_RCVBUF, SMALL_WINDOW_BUF, "SO_RCVBUF") ||
               set_int(fd, SOL_SOCKET, SO_SNDBUF, SMALL_WINDOW_BUF, "SO_SNDBUF") ? -1 : 0;
    if (!strcmp(sc, "iomap"))
        return set_int(fd, SOL_RDMA, RDMA_IOMAPSIZE, 1, "RDMA_IOMAPSIZE");
#endif
    if (!strcmp(sc, "keepalive"))
        return set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE") ||
               set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, 1, "TCP_KEEPIDLE") ? -1 : 0;
    return 0;
}

static int set_nonblock(int fd)
{
    int fl = API(fcntl)(fd, F_GETFL);
    return fl < 0 ? -1 : API(fcntl)(fd, F_SETFL, fl | O_NONBLOCK);
}

/* PEER_WAIT_EPOLL=1 (plain sockets): waits use epoll, as event loops do;
 * a connecting socket is registered before its connect(), so that the
 * connect is still in progress when the set first looks at it. */
static bool epoll_mode(void)
{
#ifdef IO_PLAIN_SOCKETS
    const char *e = getenv("PEER_WAIT_EPOLL");
    return e && !strcmp(e, "1");
#else
    return false;
#endif
}

/* An epoll fd holding fd for EVENTS, or -1. */
static int epoll_holding(int fd, uint32_t events)
{
#ifdef IO_PLAIN_SOCKETS
    struct epoll_event ev = { .events = events, .data.fd = fd };
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0)
        return ep;
    if (ep >= 0)
        close(ep);
#else
    (void)fd;
    (void)events;
#endif
    return -1;
}

/* One event of ep before the deadline (0), else -1; closes ep. */
static int epoll_one(int ep, int64_t deadline)
{
    int n = -1;
#ifdef IO_PLAIN_SOCKETS
    struct epoll_event out;
    int left = (int)(deadline - now_ms());
    n = ep < 0 ? -1 : epoll_wait(ep, &out, 1, left > 0 ? left : 0);
    if (n == 0)
        errno = ETIMEDOUT;
#else
    (void)deadline;
#endif
    if (ep >= 0)
        close(ep);
    return n == 1 ? 0 : -1;
}

/* fd is ready for EVENTS before the deadline (poll, or epoll). */
static int wait_event(int fd, uint32_t events, int64_t deadline)
{
    if (epoll_mode())
        return epoll_one(epoll_holding(fd, events), deadline);
    return wait_ready(fd, (short)events, deadline);
}

/* PEER_CONNECT_NONBLOCK=1: a nonblocking connect, waited for (poll, or
 * epoll), its result read with SO_ERROR; then getpeername must name the
 * server. */
static int connect_nonblocking(int fd, const struct addrinfo *ai)
{
    int err = 0;
    socklen_t el = sizeof(err);
    struct sockaddr_storage peer;
    socklen_t pl = sizeof(peer);
    int ep = epoll_mode() ? epoll_holding(fd, EPOLLOUT) : -1;
    int64_t deadline = now_ms() + ACCEPT_TIMEOUT_MS;
    if (set_nonblock(fd) || (API(connect)(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) ||
        (epoll_mode() ? epoll_one(ep, deadline) : wait_ready(fd, POLLOUT, deadline)) ||
        API(getsockopt)(fd, SOL_SOCKET, SO_ERROR, &err, &el) || (errno = err) != 0) {
        fprintf(stderr, PEER_NAME ": nonblocking connect: %s\n", strerror(errno));
        return -1;
    }
    if (API(getpeername)(fd, (struct sockaddr *)&peer, &pl) || pl != ai->ai_addrlen ||
        memcmp(&peer, ai->ai_addr, pl)) {
        fprintf(stderr, PEER_NAME ": getpeername after the nonblocking connect does not name the server\n");
        return -1;
    }
    return 0;
}

static int open_connection(bool server, const struct addrinfo *ai, const char *sc)
{
    int fd = API(socket)(ai->ai_family, SOCK_STREAM, 0), one = 1, c;
    if (fd < 0 || scenario_options(fd, sc))
        return -1;
    const char *nb = getenv("PEER_CONNECT_NONBLOCK");
    if (!server && nb && !strcmp(nb, "1"))
        return connect_nonblocking(fd, ai) ? -1 : fd;
    if (!server) {
        if (API(connect)(fd, ai->ai_addr, ai->ai_addrlen)) {
            fprintf(stderr, PEER_NAME ": connect: %s\n", strerror(errno));
            return -1;
        }
        return set_nonblock(fd) ? -1 : fd;
    }
    API(setsockopt)(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (API(bind)(fd, ai->ai_addr, ai->ai_addrlen) || API(listen)(fd, 4)) {
        fprintf(stderr, PEER_NAME ": bind/listen: %s\n", strerror(errno));
        return -1;
    }
    printf("LISTENING\n");
    fflush(stdout);
    if (set_nonblock(fd) || wait_event(fd, POLLIN, now_ms() + ACCEPT_TIMEOUT_MS)) {
        fprintf(stderr, PEER_NAME ": no connection within %d ms: %s\n", ACCEPT_TIMEOUT_MS, strerror(errno));
        return -1;
    }
    c = API(accept)(fd, NULL, NULL);
    API(close)(fd);
    if (c < 0) {
        fprintf(stderr, PEER_NAME ": accept: %s\n", strerror(errno));
        return -1;
    }
    return set_nonblock(c) ? -1 : c;
}

int main(int argc, char **argv)
{
    struct engine_end st = { -1 };
    struct io_end e = {
        .ctx = &st, .name = PEER_NAME, .is_ref = false,
        .send_all = eng_send_all, .recv = eng_recv, .shut_wr = eng_shut_wr, .close = eng_close,
#ifndef IO_PLAIN_SOCKETS
        .iomap_write = eng_iomap_write, .map_publish = eng_map_publish, .map_verify = eng_map_verify,
#endif
    };
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
    struct addrinfo *ai;
    bool server;
    if (argc != 5 || (strcmp(argv[1], "server") && strcmp(argv[1], "client")) ||
        !io_scenario_known(argv[4])) {
        fprintf(stderr, "usage: " PEER_NAME " server|client ADDR PORT SCENARIO\n");
        return 2;
    }
    if (getaddrinfo(argv[2], argv[3], &hints, &ai)) {
        fprintf(stderr, PEER_NAME ": bad address '%s' port '%s'\n", argv[2], argv[3]);
        return 2;
    }
    server = !strcmp(argv[1], "server");
    st.fd = open_connection(server, ai, argv[4]);
    freeaddrinfo(ai);
    if (st.fd < 0) {
        fprintf(stderr, PEER_NAME ": %s: connection not established\n", argv[4]);
        return 1;
    }
    return io_run(&e, argv[4], server) ? 1 : 0;
}
