/*
 * rsfw_conns.c - many concurrent connections in one process, data checked.
 *
 *   rsfw_conns server IP PORT N TOTAL   accept N connections, echo each until
 *                                        EOF; pass when all N ended and
 *                                        exactly TOTAL bytes were echoed
 *   rsfw_conns client IP PORT N BYTES   open N connections, all established
 *                                        at the same time, then send BYTES of
 *                                        a per-connection pattern on each and
 *                                        verify every echoed byte
 *
 * Single-threaded, nonblocking, level-triggered epoll. Every wait is bounded
 * by RSFW_TIMEOUT_S (default 300 s) for the whole run. Exit 0 pass, 1 fail
 * (one line naming the connection and offset), 2 bad arguments.
 */
#include "rsfw_io.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_CONNS 65536
#define CHUNK 16384
#define MAX_CONNECTING 64      /* connects in flight: keeps the burst gentle */
#define LISTENER_TAG UINT32_MAX

struct conn {
    int fd;
    int connecting;
    uint64_t sent, rcvd;       /* client: pattern offsets */
    uint8_t *buf;              /* server: bytes read, not yet echoed */
    size_t len, off;
};

static struct conn *conns;
static int epfd;
static int64_t deadline_ms;

static int64_t run_timeout_ms(void)
{
    const char *v = getenv("RSFW_TIMEOUT_S");
    long s = v ? atol(v) : 300;
    return (s > 0 ? s : 300) * 1000;
}

static void ep_set(int op, int fd, uint32_t events, uint32_t tag)
{
    rsfw_ep_set(epfd, op, fd, events, tag);
}

static int wait_events(struct epoll_event *evs, int max, const char *what)
{
    return rsfw_wait_events(epfd, deadline_ms, evs, max, what);
}

/* ---- server ------------------------------------------------------------ */

static void server_accept(int lfd, long *accepted, long n)
{
    while (*accepted < n) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                return;
            RSFW_FAIL("accept4 after %ld connections: %s", *accepted, strerror(errno));
        }
        struct conn *c = &conns[*accepted];
        c->fd = fd;
        c->buf = malloc(CHUNK);
        if (!c->buf)
            RSFW_FAIL("out of memory at connection %ld", *accepted);
        ep_set(EPOLL_CTL_ADD, fd, EPOLLIN, (uint32_t)*accepted);
        (*accepted)++;
    }
}

/* Echo what is buffered; returns 1 when it all went out. */
static int server_flush(struct conn *c, uint32_t i)
{
    while (c->off < c->len) {
        ssize_t w = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN)
                return 0;
            RSFW_FAIL("server conn %u: send: %s", i, strerror(errno));
        }
        c->off += (size_t)w;
    }
    c->off = c->len = 0;
    return 1;
}

/* One readiness event on an accepted connection; returns bytes echoed,
 * or -1 when the peer closed (the connection is then finished). */
static long server_event(struct conn *c, uint32_t i, uint32_t events)
{
    if (c->len) {                        /* waiting for send space */
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) || !server_flush(c, i))
            return 0;
        ep_set(EPOLL_CTL_MOD, c->fd, EPOLLIN, i);
        return 0;
    }
    ssize_t r = recv(c->fd, c->buf, CHUNK, 0);
    if (r == 0) {
        close(c->fd);
        c->fd = -1;
        free(c->buf);             /* the server's RSS is measured (rss.sh) */
        c->buf = NULL;
        return -1;
    }
    if (r < 0) {
        if (errno == EAGAIN)
            return 0;
        RSFW_FAIL("server conn %u: recv: %s", i, strerror(errno));
    }
    c->len = (size_t)r;
    if (!server_flush(c, i))
        ep_set(EPOLL_CTL_MOD, c->fd, EPOLLOUT, i);
    return r;
}

/* The resident set once the frees that follow a close have run: the
 * device thread releases QP memory, and idle peer segments and freed
 * buffer mappings are kept a short while for reuse (at most 2 s), as the
 * kernel frees a closed TCP socket's memory lazily too. The lowest of 30
 * samples 100 ms apart. */
static long settled_rss_kb(void)
{
    long low = rsfw_rss_kb();
    for (int i = 0; i < 30; i++) {
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        long now = rsfw_rss_kb();
        if (now < low)
            low = now;
    }
    return low;
}

static int run_server(const struct sockaddr_storage *ss, socklen_t sl, long n, long total)
{
    int lfd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(lfd, (const struct sockaddr *)ss, sl) || listen(lfd, 1024))
        RSFW_FAIL("listener: %s", strerror(errno));
    ep_set(EPOLL_CTL_ADD, lfd, EPOLLIN, LISTENER_TAG);
    printf("listening\n");
    printf("server: rss_kb %ld at start\n", rsfw_rss_kb());
    fflush(stdout);

    long accepted = 0, ended = 0, echoed = 0;
    struct epoll_event evs[256];
    while (ended < n) {
        int k = wait_events(evs, 256, "server waiting for connections/data");
        for (int e = 0; e < k; e++) {
            uint32_t i = evs[e].data.u32;
            if (i == LISTENER_TAG) {
                server_accept(lfd, &accepted, n);
                continue;
            }
            if (conns[i].fd < 0)
                continue;
            long r = server_event(&conns[i], i, evs[e].events);
            if (r < 0 && ++ended == accepted) {
                /* every connection so far has ended: memory after a burst */
                printf("server: idle after %ld connections, rss_kb %ld\n", ended,
                       ended == n ? settled_rss_kb() : rsfw_rss_kb());
                fflush(stdout);
            } else if (r >= 0) {
                echoed += r;
            }
        }
        if (accepted == n && lfd >= 0) {
            close(lfd);                  /* all in: the listener is done */
            lfd = -1;
        }
    }
    printf("server: %ld connections, %ld bytes echoed\n", accepted, echoed);
    if (echoed != total)
        RSFW_FAIL("echoed %ld bytes, expected %ld", echoed, total);
    printf("rsfw_conns server: PASS\n");
    return 0;
}

/* ---- client ------------------------------------------------------------ */

static void client_start(const struct sockaddr_storage *ss, socklen_t sl, long i)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        RSFW_FAIL("socket for connection %ld: %s", i, strerror(errno));
    conns[i].fd = fd;
    conns[i].connecting = 1;
    if (connect(fd, (const struct sockaddr *)ss, sl) && errno != EINPROGRESS)
        RSFW_FAIL("connect %ld: %s", i, strerror(errno));
    ep_set(EPOLL_CTL_ADD, fd, EPOLLOUT, (uint32_t)i);
}

static void client_connected(struct conn *c, uint32_t i)
{
    int err = 0;
    socklen_t l = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) || err)
        RSFW_FAIL("connect %u: %s", i, strerror(err ? err : errno));
    c->connecting = 0;
    ep_set(EPOLL_CTL_MOD, c->fd, 0, i);      /* idle until every one is up */
}

/* Phase 1: every connection established, at most MAX_CONNECTING in flight. */
static void client_connect_all(const struct sockaddr_storage *ss, socklen_t sl, long n)
{
    long started = 0, up = 0;
    struct epoll_event evs[256];
    while (up < n) {
        while (started < n && started - up < MAX_CONNECTING)
            client_start(ss, sl, started++);
        int k = wait_events(evs, 256, "client connecting");
        for (int e = 0; e < k; e++) {
            uint32_t i = evs[e].data.u32;
            if (conns[i].connecting) {
                client_connected(&conns[i], i);
                up++;
            }
        }
    }
    printf("client: %ld connections established at once\n", n);
    fflush(stdout);
}

/* Returns 1 when connection i has received all its echo (then closed). */
static int client_event(struct conn *c, uint32_t i, uint32_t events, uint64_t bytes)
{
    static uint8_t buf[CHUNK];
    if ((events & EPOLLOUT) && c->sent < bytes) {
        size_t n = bytes - c->sent < CHUNK ? bytes - c->sent : CHUNK;
        rsfw_fill(i, c->sent, buf, n);
        ssize_t w = send(c->fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN)
            RSFW_FAIL("client conn %u: send at %lu: %s", i, (unsigned long)c->sent, strerror(errno));
        if (w > 0)
            c->sent += (uint64_t)w;
        if (c->sent == bytes)
            ep_set(EPOLL_CTL_MOD, c->fd, EPOLLIN, i);
    }
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        return 0;
    ssize_t r = recv(c->fd, buf, CHUNK, 0);
    if (r < 0 && errno == EAGAIN)
        return 0;
    if (r <= 0)
        RSFW_FAIL("client conn %u: %s after %lu of %lu echoed bytes", i,
                  r ? strerror(errno) : "peer closed", (unsigned long)c->rcvd, (unsigned long)bytes);
    long bad = rsfw_check(i, c->rcvd, buf, (size_t)r);
    if (bad >= 0)
        RSFW_FAIL("client conn %u: echo mismatch at byte %lu", i, (unsigned long)(c->rcvd + (uint64_t)bad));
    c->rcvd += (uint64_t)r;
    if (c->rcvd > bytes)
        RSFW_FAIL("client conn %u: %lu bytes echoed, sent %lu", i, (unsigned long)c->rcvd, (unsigned long)bytes);
    if (c->rcvd < bytes)
        return 0;
    close(c->fd);
    c->fd = -1;
    return 1;
}

static int run_client(const struct sockaddr_storage *ss, socklen_t sl, long n, long bytes)
{
    client_connect_all(ss, sl, n);
    for (long i = 0; i < n; i++)
        ep_set(EPOLL_CTL_MOD, conns[i].fd, EPOLLIN | EPOLLOUT, (uint32_t)i);
    long done = 0;
    struct epoll_event evs[256];
    while (done < n) {
        int k = wait_events(evs, 256, "client transferring");
        for (int e = 0; e < k; e++) {
            uint32_t i = evs[e].data.u32;
            if (conns[i].fd >= 0)
                done += client_event(&conns[i], i, evs[e].events, (uint64_t)bytes);
        }
    }
    printf("rsfw_conns client: PASS: %ld connections x %ld bytes echoed and verified\n", n, bytes);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 6 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
        fprintf(stderr, "usage: rsfw_conns server IP PORT N TOTAL | client IP PORT N BYTES\n");
        return 2;
    }
    struct sockaddr_storage ss;
    socklen_t sl = rsfw_addr(argv[2], argv[3], &ss);
    long n = rsfw_count("connection count", argv[4], MAX_CONNS);
    long bytes = rsfw_count("byte count", argv[5], 1L << 40);
    conns = calloc((size_t)n, sizeof(*conns));
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || epfd < 0)
        RSFW_FAIL("setup: %s", strerror(errno));
    for (long i = 0; i < n; i++)
        conns[i].fd = -1;
    deadline_ms = rsfw_now_ms() + run_timeout_ms();
    if (argv[1][0] == 's')
        return run_server(&ss, sl, n, bytes);
    return run_client(&ss, sl, n, bytes);
}
