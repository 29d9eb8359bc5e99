/*
 * rs_anchor_test - TCP-anchored connections (module ABI 1.2) driven
 * through the module contract as the dispatcher drives it: a kernel TCP
 * connection, anchor_hello() at accept/blocking connect, anchor() at
 * first use, then the module socket, or the TCP socket on fallback.
 *
 *   rs_anchor_test server PORT ADDR SCENARIO...   one connection per scenario
 *   rs_anchor_test client ADDR PORT SCENARIO...
 *
 * Scenarios (the same list on both sides, in order):
 *   up      both anchored, nonblocking (client connects nonblocking and
 *           anchors while the connect is in progress): upgraded; data both
 *           ways; every anchor()/poll_events()/send() call returns within
 *           call_limit_ms(); at most 64 bytes crossed the TCP socket (TCP_INFO
 *           on both ends); descriptors per connection reported; the
 *           server's close of the anchor is a FIN (no handshake byte left
 *           unread), not a reset
 *   upb     the same with blocking sockets: the first send/recv waits for
 *           the handshake and carries the data
 *   upr     blocking, the server speaks first (its send waits for the
 *           handshake while the client waits in recv)
 *   mt      blocking server socket used by two threads at once: one in recv
 *           (waits for the handshake), one polling it (poll_events on the
 *           wait fd, as a dispatcher's epoll thread); both see the upgrade
 *   plain   the server is plain TCP (no anchor): the client falls back
 *           (after the hello timeout), the server reads exactly the
 *           client's bytes (no urgent byte, nothing foreign), replies
 *   plain2  the same server again: fallback at once (negative cache; so
 *           the plain scenarios come last: the cache is per address and port)
 *   pcli    the client is plain: the server falls back when the data
 *           arrives and reads it intact; the client saw no urgent byte
 *   pclib   pcli with a blocking server: its recv waits, then says
 *           ENOPROTOOPT once the plain client's data arrives
 *   sfirst  a plain client waits for the server's greeting: the server's
 *           nonblocking send is taken (a second one says EAGAIN), the
 *           server falls back after the hello timeout and the module
 *           sends the greeting on TCP; no urgent byte reached the client
 *   eof     the client connects and closes without sending: the server
 *           falls back and reads a clean EOF (not a reset)
 *   fwclose a framework client connects (hello sent) and closes without
 *           using the connection: the server falls back and reads a clean EOF
 *   par     16 connections at once, each side driving every handshake from
 *           one epoll loop over the wait fds (an event loop): all upgrade,
 *           then 64 KiB echoed on each, checked
 *   oobsrv  the server application set SO_OOBINLINE: the client's hello,
 *           inline at the urgent mark, is taken out, both stay on TCP and
 *           the server reads exactly the client's bytes (run on a port of
 *           its own: the client then caches the server as plain)
 *   oobcli  the same with SO_OOBINLINE on the client
 *   tiny    nonblocking upgrade, 100 bytes each way, close (connection
 *           setup cost: a list of them measures connections per second)
 *   rst     upgraded, then the client resets the anchor (SO_LINGER 0):
 *           the server's module socket reports peer death
 *   fin     upgraded, the client sends 1 MiB and at once shuts the anchor
 *           down (FIN): the server still receives every byte over RDMA
 *   down    upgraded (blocking), each end has bytes of the other unread
 *           (client: 20000, server: 29900 after reading 100); the client
 *           returns the connection to TCP (anchor_release, as before a
 *           fork): both modules keep the unread bytes (leftover) and serve
 *           them first, exactly, then ENOPROTOOPT (the dispatcher reads the
 *           TCP socket); 7000 and 5000 more bytes cross TCP after them, in
 *           order; each byte checked, and where it came from (module/TCP)
 *   downlate the server makes no call for 1 s after 100 bytes (busy
 *           elsewhere): the client's anchor_release(300 ms) fails with
 *           ETIMEDOUT, a nonblocking send then says EAGAIN (no byte may go
 *           on RDMA any more), and the release completes when the server
 *           answers; 1000 bytes each way on TCP afterwards
 */
#include "rs_test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* Bounds of a nonblocking module call. Where the peer stays silent for
 * the hello timeout (200 ms: plain, sfirst), a call that waited for it
 * would take that long: 150 ms. Elsewhere the peer answers within
 * milliseconds, so the bound is only a sanity check, loose enough for a
 * loaded 2-core machine (and TSan). Blocking scenarios are exempt. */
static int call_limit_ms(const char *scen)
{
    static const char *blocking[] = { "upb", "upr", "mt", "pclib" };
    for (size_t i = 0; i < sizeof(blocking) / sizeof(blocking[0]); i++)
        if (!strcmp(scen, blocking[i]))
            return 1 << 30;
    return !strcmp(scen, "plain") || !strcmp(scen, "sfirst") ? 150 : 1000;
}

#define PAR 16                    /* connections of the par scenario */
#define HANDSHAKE_MS 15000
#define BULK (1u << 20)

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t max_call_us;       /* longest nonblocking module call */
static const char *max_call;      /* ... which one (main thread's view) */

static void timed(int64_t t0, const char *what)
{
    int64_t d = now_us() - t0, cur = __atomic_load_n(&max_call_us, __ATOMIC_RELAXED);
    while (d > cur && !__atomic_compare_exchange_n(&max_call_us, &cur, d, 0, __ATOMIC_RELAXED,
                                                   __ATOMIC_RELAXED))
        ;
    if (d >= cur)
        __atomic_store_n(&max_call, what, __ATOMIC_RELAXED);
}

/* Poll the socket until the handshake ends: 1 upgraded, 0 fallback. */
static int drive(struct tsock *t, const char *who)
{
    int64_t deadline = tu_now_ms() + HANDSHAKE_MS;
    for (int i = 0; i < 100000 && tu_now_ms() < deadline; i++) {
        uint64_t gen;
        int64_t t0 = now_us();
        uint32_t m = M->poll_events(t->s, &gen);
        timed(t0, "poll_events");
        if (m & NSTACK_EV_FALLBACK)
            return 0;
        /* a failed handshake says EPOLLERR; a hang-up alone is the peer's
         * close, seen by a slow poller after the data went by (mt) */
        if (m & EPOLLERR)
            return tu_failf("%s: handshake failed (mask %#x)", who, m);
        if (m) {
            printf("%s: upgraded %lld ms after the first poll\n", who,
                   (long long)(tu_now_ms() - deadline + HANDSHAKE_MS));
            return 1;
        }
        struct pollfd p = { .fd = t->fd, .events = POLLIN };
        poll(&p, 1, 1000);
    }
    return tu_failf("%s: handshake did not end within %d ms", who, HANDSHAKE_MS);
}

/* Every handshake of t[0..n) from one epoll over the wait fds. */
static int drive_all(struct tsock *t, int n, const char *who)
{
    int ep = epoll_create1(EPOLL_CLOEXEC), left = n, done[PAR] = { 0 };
    struct epoll_event ev[PAR];
    /* As after socket() or accept(), the state is read once before the
     * first sleep: the wait fd only tells changes after a poll_events()
     * (a fast peer can finish the whole handshake inside anchor()). */
    for (int i = 0; i < n; i++) {
        ev[i] = (struct epoll_event){ .events = EPOLLIN, .data.u32 = (uint32_t)i };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, t[i].fd, &ev[i]))
            return tu_fail("epoll_ctl");
    }
    int64_t deadline = tu_now_ms() + HANDSHAKE_MS;
    int k = n;
    while (left > 0 && tu_now_ms() < deadline) {
        for (int j = 0; j < k; j++) {
            int i = (int)ev[j].data.u32;
            uint64_t gen;
            int64_t t0 = now_us();
            uint32_t m = M->poll_events(t[i].s, &gen);
            timed(t0, "poll_events");
            if (m & (NSTACK_EV_FALLBACK | EPOLLERR | EPOLLHUP))
                return tu_failf("%s: connection %d not upgraded (mask %#x)", who, i, m);
            if (m && !done[i]) {
                done[i] = 1;
                left--;
                epoll_ctl(ep, EPOLL_CTL_DEL, t[i].fd, NULL);
            }
        }
        k = left ? epoll_wait(ep, ev, PAR, 1000) : 0;
    }
    close(ep);
    return left ? tu_failf("%s: %d of %d handshakes unfinished", who, left, n) : 0;
}

static int echo_all(struct tsock *t, int n, int server)
{
    for (int i = 0; i < n; i++) {
        if (M->set_nonblock(t[i].s, 0))
            return tu_fail("set_nonblock");
        int r = server ? tu_recv_pattern(&t[i], 65536, (uint32_t)i, 0) ||
                             tu_send_pattern(&t[i], 65536, (uint32_t)i + 100, 0)
                       : tu_send_pattern(&t[i], 65536, (uint32_t)i, 0) ||
                             tu_recv_pattern(&t[i], 65536, (uint32_t)i + 100, 0);
        if (r)
            return tu_failf("%s: connection %d: data", server ? "server" : "client", i);
    }
    for (int i = 0; i < n; i++)
        M->close(t[i].s);
    return 0;
}

static int anchor(int kfd, int role, int nonblock, int hello_sent, struct tsock *t)
{
    int flags = (nonblock ? NSTACK_ADOPT_NONBLOCK : 0) | (hello_sent ? NSTACK_ANCHOR_HELLO_SENT : 0);
    int64_t t0 = now_us();
    t->fd = M->anchor(kfd, role, flags, &t->s);
    timed(t0, "anchor");
    return t->fd < 0 ? tu_fail("anchor") : 0;
}

/* Bytes that crossed the TCP connection in each direction (payload). */
static int tcp_bytes(int kfd, unsigned long long *in, unsigned long long *out)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(kfd, IPPROTO_TCP, TCP_INFO, &ti, &len))
        return tu_fail("TCP_INFO");
    *in = ti.tcpi_bytes_received;
    *out = ti.tcpi_bytes_sent;      /* sent, retransmissions included */
    return 0;
}

static int check_anchor_bytes(int kfd, const char *who)
{
    unsigned long long in = 0, out = 0;
    if (tcp_bytes(kfd, &in, &out))
        return -1;
    printf("%s: TCP payload on the anchor: %llu in, %llu out\n", who, in, out);
    if (in > 64 || out > 64)
        return tu_failf("%s: %llu/%llu bytes crossed the anchor (max 64)", who, in, out);
    return 0;
}

static int send_kfd(int kfd, const char *msg)
{
    size_t n = strlen(msg);
    return send(kfd, msg, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : tu_fail("send on TCP");
}

/* Exactly `want` from the TCP stream, then nothing more is pending. */
static int expect_kfd(int kfd, const char *want)
{
    char buf[256];
    size_t n = strlen(want), got = 0;
    int64_t deadline = tu_now_ms() + HANDSHAKE_MS;
    while (got < n && tu_now_ms() < deadline) {
        struct pollfd p = { .fd = kfd, .events = POLLIN };
        poll(&p, 1, 1000);
        ssize_t r = recv(kfd, buf + got, n - got, MSG_DONTWAIT);
        if (r == 0)
            return tu_failf("TCP: EOF after %zu of %zu bytes", got, n);
        if (r > 0)
            got += (size_t)r;
    }
    if (got != n || memcmp(buf, want, n))
        return tu_failf("TCP: expected \"%s\", got %zu bytes \"%.*s\" (first 0x%02x)", want, got,
                        (int)got, buf, got ? (unsigned char)buf[0] : 0);
    return 0;
}

/* Peek at the TCP socket once it is readable (bounded): 0 is a clean EOF.
 * A peek, so that it does not pass (and so consume) an urgent byte's
 * place in the stream. */
static ssize_t recv_kfd_1(int kfd)
{
    char c;
    struct pollfd p = { .fd = kfd, .events = POLLIN };
    if (poll(&p, 1, HANDSHAKE_MS) != 1) {
        errno = ETIMEDOUT;
        return -1;
    }
    return recv(kfd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
}

/* The peer's stream held no urgent byte for us (a plain end). */
static int no_urgent(int kfd)
{
    char c;
    if (recv(kfd, &c, 1, MSG_OOB | MSG_DONTWAIT) >= 0)
        return tu_failf("a plain end received an urgent byte 0x%02x", (unsigned char)c);
    return 0;
}

/* An anchored connection's rings are RS_ANCHOR_BUF (1 MiB) each way, not
 * rsockets' 128 KiB (doc/rsocket.md "Buffers of anchored connections"),
 * unless RS_ANCHOR_BUF_CONNS=0 leaves no process any large ones (then
 * smaller). Only as root: without CAP_IPC_LOCK the locked-memory fit may
 * cap them. */
static int check_anchor_bufs(struct tsock *t, const char *who)
{
    static const int names[2] = { SO_RCVBUF, SO_SNDBUF };
    const char *cap = getenv("RS_ANCHOR_BUF_CONNS");
    int big = cap == NULL || atoi(cap) > 0;
    for (int i = 0; i < 2 && geteuid() == 0 && !getenv("RS_ANCHOR_BUF"); i++) {
        int v = 0;
        socklen_t len = sizeof(v);
        if (M->getsockopt(t->s, SOL_SOCKET, names[i], &v, &len))
            return tu_failf("%s: getsockopt(%s)", who, i ? "SO_SNDBUF" : "SO_RCVBUF");
        if (big ? v != 1048576 : v >= 1048576)
            return tu_failf("%s: anchored %s is %d, want %s1048576", who, i ? "SO_SNDBUF" : "SO_RCVBUF", v,
                            big ? "" : "less than ");
    }
    return 0;
}

static int upgraded_data(struct tsock *t, int server, int server_first)
{
    if (check_anchor_bufs(t, server ? "server" : "client"))
        return -1;
    if (M->set_nonblock(t->s, 0))
        return tu_fail("set_nonblock");
    if (server_first && server)
        return tu_send_pattern(t, BULK, 12, 1) || tu_recv_pattern(t, BULK, 11, 1)
                   ? tu_fail("upgraded data (server first)") : 0;
    if (server_first)
        return tu_recv_pattern(t, BULK, 12, 1) || tu_send_pattern(t, BULK, 11, 1)
                   ? tu_fail("upgraded data (client, server first)") : 0;
    if (server)
        return tu_recv_pattern(t, BULK, 11, 1) || tu_send_pattern(t, BULK, 12, 1)
                   ? tu_fail("upgraded data (server)") : 0;
    return tu_send_pattern(t, BULK, 11, 1) || tu_recv_pattern(t, BULK, 12, 1)
               ? tu_fail("upgraded data (client)") : 0;
}

/* ---- down: back to TCP ---------------------------------------------------
 * The dispatcher's part done by hand: a module call that says ENOPROTOOPT
 * is made again on the TCP socket. */

static uint8_t down_byte(uint64_t off, uint32_t seed)
{
    return (uint8_t)(off * 131 + seed * 7 + (off >> 9));
}

static int down_send(struct tsock *t, int kfd, uint64_t from, uint64_t to, uint32_t seed)
{
    uint8_t buf[8192];
    while (from < to) {
        size_t n = to - from < sizeof(buf) ? (size_t)(to - from) : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = down_byte(from + i, seed);
        ssize_t w = M->send(t->s, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno == ENOPROTOOPT)
            w = send(kfd, buf, n, MSG_NOSIGNAL);
        if (w <= 0)
            return tu_failf("down: send at %llu: %s", (unsigned long long)from, strerror(errno));
        from += (uint64_t)w;
    }
    return 0;
}

/* Reads [from, to); counts the bytes the module gave (*mod) and TCP (*tcp). */
static int down_recv(struct tsock *t, int kfd, uint64_t from, uint64_t to, uint32_t seed,
                     uint64_t *mod, uint64_t *tcp)
{
    uint8_t buf[8192];
    while (from < to) {
        size_t n = to - from < sizeof(buf) ? (size_t)(to - from) : sizeof(buf);
        ssize_t r = M->recv(t->s, buf, n, 0);
        int on_tcp = r < 0 && errno == ENOPROTOOPT;
        if (on_tcp)
            r = recv(kfd, buf, n, 0);
        if (r <= 0)
            return tu_failf("down: recv at %llu: %s", (unsigned long long)from, r ? strerror(errno) : "EOF");
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != down_byte(from + (uint64_t)i, seed))
                return tu_failf("down: wrong byte at %llu", (unsigned long long)(from + (uint64_t)i));
        *(on_tcp ? tcp : mod) += (uint64_t)r;
        from += (uint64_t)r;
    }
    return 0;
}

/* Until FIONREAD of the module socket says n (poll_events runs its work). */
static int down_wait_unread(struct tsock *t, int n, const char *who)
{
    int64_t deadline = tu_now_ms() + HANDSHAKE_MS;
    int q = 0;
    while (tu_now_ms() < deadline) {
        uint64_t gen;
        M->poll_events(t->s, &gen);
        if (M->ioctl(t->s, FIONREAD, &q) == 0 && q >= n)
            return 0;
        struct pollfd p = { .fd = t->fd, .events = POLLIN };
        poll(&p, 1, 10);
    }
    return tu_failf("%s: %d of %d bytes arrived", who, q, n);
}

/* The server's end: where its bytes came from, the client's FIN, close. */
static int down_end(struct tsock *t, int kfd, uint64_t mod, uint64_t tcp, uint64_t want_mod,
                    uint64_t want_tcp)
{
    if (mod != want_mod || tcp != want_tcp)
        return tu_failf("server: %llu bytes from the module, %llu from TCP; want %llu, %llu",
                        (unsigned long long)mod, (unsigned long long)tcp,
                        (unsigned long long)want_mod, (unsigned long long)want_tcp);
    char c;
    if (recv(kfd, &c, 1, 0) != 0)
        return tu_failf("server: no EOF after the client's shutdown");
    M->close(t->s);
    return 0;
}

static int srv_down(int kfd, int hello_sent)
{
    struct tsock t;
    uint64_t mod = 0, tcp = 0;
    if (anchor(kfd, NSTACK_ADOPT_PASSIVE, 0, hello_sent, &t) ||
        down_recv(&t, kfd, 0, 100, 11, &mod, &tcp) || down_send(&t, kfd, 0, 20000, 21) ||
        down_wait_unread(&t, 29900, "server"))
        return -1;
    /* the client's DOWN is read by any call; poll_events here */
    int64_t deadline = tu_now_ms() + HANDSHAKE_MS;
    int r = -1;
    while (r != 1 && tu_now_ms() < deadline) {
        uint64_t gen;
        uint32_t m = M->poll_events(t.s, &gen);
        r = M->anchor_release(t.s, 0);        /* a question: released, with a leftover? */
        if (r != 1 && !(m & EPOLLIN))
            return tu_failf("server: unread bytes not readable (mask %#x)", m);
        struct pollfd p = { .fd = t.fd, .events = POLLIN };
        if (r != 1)
            poll(&p, 1, 10);
    }
    if (r != 1)
        return tu_failf("server: the client's release did not arrive");
    if (down_recv(&t, kfd, 100, 30000, 11, &mod, &tcp) || down_send(&t, kfd, 20000, 25000, 21) ||
        down_recv(&t, kfd, 30000, 37000, 11, &mod, &tcp))
        return -1;
    if (down_end(&t, kfd, mod, tcp, 30000, 7000))
        return -1;
    printf("server: released by the peer: 29900 bytes left over read first, then 7000 on TCP\n");
    return 0;
}

static int cli_down(int kfd, int hello)
{
    struct tsock t;
    uint64_t mod = 0, tcp = 0;
    if (anchor(kfd, NSTACK_ADOPT_ACTIVE, 0, hello, &t) || down_send(&t, kfd, 0, 30000, 11) ||
        down_wait_unread(&t, 20000, "client"))
        return -1;
    int64_t t0 = now_us();
    int r = M->anchor_release(t.s, 2000);
    printf("client: anchor_release %d in %lld us\n", r, (long long)(now_us() - t0));
    if (r != 1)
        return tu_failf("client: anchor_release: %d (%s), want 1 (a leftover)", r, strerror(errno));
    if (down_recv(&t, kfd, 0, 20000, 21, &mod, &tcp) || down_send(&t, kfd, 30000, 37000, 11) ||
        down_recv(&t, kfd, 20000, 25000, 21, &mod, &tcp))
        return -1;
    if (mod != 20000 || tcp != 5000)
        return tu_failf("client: %llu bytes from the module, %llu from TCP; want 20000, 5000",
                        (unsigned long long)mod, (unsigned long long)tcp);
    M->close(t.s);
    shutdown(kfd, SHUT_WR);
    return 0;
}

/* Until the module says the connection was released (0: a question). */
static int down_wait_released(struct tsock *t, const char *who)
{
    int64_t deadline = tu_now_ms() + HANDSHAKE_MS;
    while (tu_now_ms() < deadline) {
        uint64_t gen;
        M->poll_events(t->s, &gen);
        if (M->anchor_release(t->s, 0) >= 0)
            return 0;
        struct pollfd p = { .fd = t->fd, .events = POLLIN };
        poll(&p, 1, 10);
    }
    return tu_failf("%s: the connection was not released", who);
}

static int srv_downlate(int kfd, int hello_sent)
{
    struct tsock t;
    uint64_t mod = 0, tcp = 0;
    if (anchor(kfd, NSTACK_ADOPT_PASSIVE, 0, hello_sent, &t) || down_recv(&t, kfd, 0, 100, 31, &mod, &tcp) ||
        down_send(&t, kfd, 0, 1, 32))  /* "I am going quiet": the client releases after it */
        return -1;
    poll(NULL, 0, 1000);          /* the scenario: a peer busy elsewhere, no call on the socket */
    if (down_wait_released(&t, "server") || down_recv(&t, kfd, 100, 1100, 31, &mod, &tcp) ||
        down_send(&t, kfd, 1, 1000, 32))
        return -1;
    return down_end(&t, kfd, mod, tcp, 100, 1000);
}

static int cli_downlate(int kfd, int hello)
{
    struct tsock t;
    uint64_t mod = 0, tcp = 0;
    if (anchor(kfd, NSTACK_ADOPT_ACTIVE, 0, hello, &t) || down_send(&t, kfd, 0, 100, 31) ||
        down_recv(&t, kfd, 0, 1, 32, &mod, &tcp))
        return -1;
    int64_t t0 = tu_now_ms();
    int r = M->anchor_release(t.s, 300);
    int err = errno;
    int64_t took = tu_now_ms() - t0;
    if (r != -1 || err != ETIMEDOUT || took < 290)
        return tu_failf("client: anchor_release to a silent peer: %d (%s) after %lld ms, want ETIMEDOUT "
                        "after 300 ms", r, strerror(err), (long long)took);
    char x = 'x';
    if (M->send(t.s, &x, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN)
        return tu_failf("client: a send while the release waits: not EAGAIN (%s)", strerror(errno));
    if (down_wait_released(&t, "client") || down_send(&t, kfd, 100, 1100, 31) ||
        down_recv(&t, kfd, 1, 1000, 32, &mod, &tcp))
        return -1;
    if (mod != 1 || tcp != 999)
        return tu_failf("client: %llu bytes from the module, %llu from TCP; want 1, 999",
                        (unsigned long long)mod, (unsigned long long)tcp);
    printf("client: release timed out after %lld ms, completed when the peer answered\n", (long long)took);
    M->close(t.s);
    shutdown(kfd, SHUT_WR);
    return 0;
}

/* ---- server ----------------------------------------------------------- */

static int srv_up(int kfd, int hello_sent, int nonblock, int server_first)
{
    struct tsock t;
    int fds0 = tu_count_fds();
    if (anchor(kfd, NSTACK_ADOPT_PASSIVE, nonblock, hello_sent, &t))
        return -1;
    if (nonblock && drive(&t, "server") != 1)
        return tu_failf("server: not upgraded");
    if (upgraded_data(&t, 1, server_first))
        return -1;
    printf("server: fds held by the upgraded connection besides the TCP socket: %d\n",
           tu_count_fds() - fds0);
    int r = check_anchor_bytes(kfd, "server");
    M->close(t.s);
    /* the client shuts its anchor down; our close(kfd) must then send a
     * FIN, not a RST (no handshake byte left unread here) */
    if (!r && recv_kfd_1(kfd) != 0)
        r = tu_failf("server: the anchor did not end with the client's FIN");
    return r;
}

static void *mt_poller(void *arg)
{
    return (void *)(intptr_t)(drive(arg, "server poller") == 1 ? 0 : -1);
}

static int srv_two_threads(int kfd, int hello_sent)
{
    struct tsock t;
    pthread_t th;
    void *res = NULL;
    if (anchor(kfd, NSTACK_ADOPT_PASSIVE, 0, hello_sent, &t))
        return -1;
    if (pthread_create(&th, NULL, mt_poller, &t))
        return tu_fail("pthread_create");
    int r = tu_recv_pattern(&t, BULK, 11, 1) || tu_send_pattern(&t, BULK, 12, 1);
    pthread_join(th, &res);
    M->close(t.s);
    if (r || res)
        return tu_failf("server: two threads: %s", r ? "data" : "the poller saw no upgrade");
    return 0;
}

static int srv_plain_cli(int kfd, int hello_sent, int nonblock)
{
    struct tsock t;
    if (anchor(kfd, NSTACK_ADOPT_PASSIVE, nonblock, hello_sent, &t))
        return -1;
    if (nonblock && drive(&t, "server") != 0)
        return tu_failf("server: a plain client was not a fallback");
    /* blocking: waits until the client's data arrives, then falls back */
    if (M->recv(t.s, (char[4]){ 0 }, 4, nonblock ? MSG_DONTWAIT : 0) != -1 || errno != ENOPROTOOPT)
        return tu_failf("server: recv after fallback: not ENOPROTOOPT");
    M->close(t.s);
    if (expect_kfd(kfd, "plain request") || send_kfd(kfd, "plain reply"))
        return -1;
    return 0;
}

static int srv_server_first(int kfd, int hello_sent)
{
    struct tsock t;
    if (anchor(kfd, NSTACK_ADOPT_PASSIVE, 1, hello_sent, &t))
        return -1;
    int64_t t0 = tu_now_ms();
    /* taken, as by a fresh TCP socket; kept until the handshake ends */
    if (M->send(t.s, "greeting", 8, 0) != 8)
        return tu_failf("server: send while upgrading: %s, not taken", strerror(errno));
    if (M->send(t.s, "more", 4, 0) != -1 || errno != EAGAIN)
        return tu_failf("server: a second send while upgrading: not EAGAIN");
    if (drive(&t, "server") != 0)
        return tu_failf("server: a silent plain client was not a fallback");
    printf("server: fallback for a silent plain client after %lld ms\n",
           (long long)(tu_now_ms() - t0));
    M->close(t.s);
    /* the greeting went on TCP with the fallback, before anything else */
    return expect_kfd(kfd, "thanks") ? -1 : 0;
}

static int tiny(int kfd, int role, int hello_sent)
{
    struct tsock t;
    if (anchor(kfd, role, 1, hello_sent, &t) || drive(&t, "tiny") != 1)
        return tu_failf("tiny: not upgraded");
    M->set_nonblock(t.s, 0);
    int server = role == NSTACK_ADOPT_PASSIVE;
    int r = server ? tu_recv_pattern(&t, 100, 5, 0) || tu_send_pattern(&t, 100, 6, 0)
                   : tu_send_pattern(&t, 100, 5, 0) || tu_recv_pattern(&t, 100, 6, 0);
    M->close(t.s);
    return r ? tu_fail("tiny: data") : 0;
}

static int srv_oobinline(int kfd)
{
    struct tsock t;
    int hello = M->anchor_hello(kfd, NSTACK_ADOPT_PASSIVE) == 0;
    if (hello)
        return tu_failf("server: a hello went out with SO_OOBINLINE");
    if (anchor(kfd, NSTACK_ADOPT_PASSIVE, 1, 0, &t))
        return -1;
    if (drive(&t, "server") != 0)
        return tu_failf("server: SO_OOBINLINE was not a fallback");
    M->close(t.s);
    return expect_kfd(kfd, "plain request") || send_kfd(kfd, "plain reply") ? -1 : 0;
}

static int srv_eof(int kfd, int hello_sent)
{
    struct tsock t;
    char c;
    if (anchor(kfd, NSTACK_ADOPT_PASSIVE, 1, hello_sent, &t))
        return -1;
    if (drive(&t, "server") != 0)
        return tu_failf("server: connect-and-close was not a fallback");
    M->close(t.s);
    ssize_t r = recv(kfd, &c, 1, 0);
    if (r != 0)
        return tu_failf("server: expected a clean EOF, got %zd (%s)", r, strerror(errno));
    return 0;
}

static int srv_rst(int kfd, int hello_sent)
{
    struct tsock t;
    char buf[16];
    if (anchor(kfd, NSTACK_ADOPT_PASSIVE, 1, hello_sent, &t) || drive(&t, "server") != 1)
        return tu_failf("server: not upgraded");
    M->set_nonblock(t.s, 0);
    if (tu_recv_all(&t, buf, 5) || memcmp(buf, "ping!", 5) || tu_send_all(&t, "pong!", 5))
        return tu_fail("server: ping");
    /* the client now resets the anchor and keeps its RDMA side open */
    int64_t t0 = tu_now_ms();
    uint32_t m = tu_wait_mask(&t, EPOLLERR | EPOLLHUP, HANDSHAKE_MS);
    if (!(m & (EPOLLERR | EPOLLHUP)))
        return tu_failf("server: anchor reset not reported (mask %#x)", m);
    ssize_t r = M->recv(t.s, buf, sizeof(buf), MSG_DONTWAIT);
    printf("server: anchor reset seen after %lld ms, mask %#x, recv %zd (%s)\n",
           (long long)(tu_now_ms() - t0), m, r, r < 0 ? strerror(errno) : "-");
    if (r != -1 || errno != ECONNRESET)
        return tu_failf("server: recv after the anchor reset: %zd, not ECONNRESET", r);
    M->close(t.s);
    return 0;
}

static int srv_fin(int kfd, int hello_sent)
{
    struct tsock t;
    if (anchor(kfd, NSTACK_ADOPT_PASSIVE, 1, hello_sent, &t) || drive(&t, "server") != 1)
        return tu_failf("server: not upgraded");
    M->set_nonblock(t.s, 0);
    if (tu_recv_pattern(&t, BULK, 21, 0))
        return tu_fail("server: data after the anchor's FIN");
    char c;
    if (M->recv(t.s, &c, 1, 0) != 0)
        return tu_failf("server: no EOF after the data");
    M->close(t.s);
    return 0;
}

static int serve_one(int kfd, const char *scen)
{
    int one = 1;
    if (!strcmp(scen, "oobsrv")) {
        setsockopt(kfd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one));
        return srv_oobinline(kfd);
    }
    if (!strcmp(scen, "oobcli"))
        scen = "pcli";            /* a framework server; the client is special */
    /* what the dispatcher does at accept() */
    int hello_sent = strcmp(scen, "plain") && strcmp(scen, "plain2") &&
                     M->anchor_hello(kfd, NSTACK_ADOPT_PASSIVE) == 0;
    if (!strcmp(scen, "up"))
        return srv_up(kfd, hello_sent, 1, 0);
    if (!strcmp(scen, "upb"))
        return srv_up(kfd, hello_sent, 0, 0);
    if (!strcmp(scen, "upr"))
        return srv_up(kfd, hello_sent, 0, 1);
    if (!strcmp(scen, "sfirst"))
        return srv_server_first(kfd, hello_sent);
    if (!strcmp(scen, "tiny"))
        return tiny(kfd, NSTACK_ADOPT_PASSIVE, hello_sent);
    if (!strcmp(scen, "mt"))
        return srv_two_threads(kfd, hello_sent);
    if (!strcmp(scen, "pclib"))
        return srv_plain_cli(kfd, hello_sent, 0);
    if (!strcmp(scen, "plain") || !strcmp(scen, "plain2")) {
        /* a plain TCP server: reads the request, replies */
        if (expect_kfd(kfd, "plain request") || send_kfd(kfd, "plain reply"))
            return -1;
        char c;
        return recv(kfd, &c, 1, 0) == 0 ? 0 : tu_failf("plain server: extra bytes");
    }
    if (!strcmp(scen, "pcli"))
        return srv_plain_cli(kfd, hello_sent, 1);
    if (!strcmp(scen, "eof") || !strcmp(scen, "fwclose"))
        return srv_eof(kfd, hello_sent);
    if (!strcmp(scen, "rst"))
        return srv_rst(kfd, hello_sent);
    if (!strcmp(scen, "fin"))
        return srv_fin(kfd, hello_sent);
    if (!strcmp(scen, "down"))
        return srv_down(kfd, hello_sent);
    if (!strcmp(scen, "downlate"))
        return srv_downlate(kfd, hello_sent);
    return tu_failf("unknown scenario %s", scen);
}

static int serve_par(int l)
{
    struct tsock t[PAR];
    int kfd[PAR];
    for (int i = 0; i < PAR; i++) {
        if ((kfd[i] = accept(l, NULL, NULL)) < 0)
            return tu_fail("accept");
        int hello = M->anchor_hello(kfd[i], NSTACK_ADOPT_PASSIVE) == 0;
        if (anchor(kfd[i], NSTACK_ADOPT_PASSIVE, 1, hello, &t[i]))
            return -1;
    }
    int r = drive_all(t, PAR, "server") || echo_all(t, PAR, 1) ? -1 : 0;
    for (int i = 0; i < PAR; i++)
        close(kfd[i]);
    return r;
}

static int run_server(int port, const char *addr, char **scen, int n)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (tu_parse_addr(addr, port, &ss, &len))
        return tu_failf("bad address %s", addr);
    int l = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (l < 0 || bind(l, (struct sockaddr *)&ss, len) || listen(l, 4 * PAR))
        return tu_fail("TCP listen");
    printf("LISTENING\n");
    for (int i = 0; i < n; i++) {
        max_call_us = 0;
        max_call = NULL;
        if (!strcmp(scen[i], "par")) {
            if (serve_par(l) || max_call_us > call_limit_ms("par") * 1000)
                return tu_failf("server scenario par failed (longest call %lld us: %s)",
                                (long long)max_call_us, max_call ? max_call : "-");
            printf("server par OK (longest module call %lld us: %s)\n", (long long)max_call_us,
                   max_call ? max_call : "-");
            continue;
        }
        int kfd = accept(l, NULL, NULL);
        if (kfd < 0)
            return tu_fail("accept");
        if (serve_one(kfd, scen[i]))
            return tu_failf("server scenario %s failed", scen[i]);
        printf("server %s OK (longest module call %lld us: %s)\n", scen[i], (long long)max_call_us,
               max_call ? max_call : "-");
        if (max_call_us > call_limit_ms(scen[i]) * 1000LL)
            return tu_failf("server %s: a nonblocking call took %lld us (%s)", scen[i],
                            (long long)max_call_us, max_call);
        close(kfd);
    }
    printf("SERVER OK\n");
    return 0;
}

/* ---- client ----------------------------------------------------------- */

static int tcp_connect(const struct sockaddr_storage *ss, socklen_t len, int nonblock)
{
    int kfd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (kfd < 0)
        return tu_fail("socket");
    if (connect(kfd, (const struct sockaddr *)ss, len) && errno != EINPROGRESS)
        return tu_fail("TCP connect");
    return kfd;
}

static int cli_up(int kfd, int nonblock, int hello, int server_first)
{
    struct tsock t;
    int fds0 = tu_count_fds();
    if (anchor(kfd, NSTACK_ADOPT_ACTIVE, nonblock, hello, &t))
        return -1;
    if (nonblock) {
        /* while upgrading, a nonblocking send says EAGAIN at once; the
         * handshake may also have finished in it (a fast peer), then the
         * send goes through: zero bytes, so the stream stays as checked */
        int64_t t0 = now_us();
        ssize_t r = M->send(t.s, "x", 0, 0);
        timed(t0, "send");
        if (r != 0 && (r != -1 || (errno != EAGAIN && errno != ENOPROTOOPT)))
            return tu_failf("client: send while upgrading: %zd (%s), not EAGAIN", r, strerror(errno));
        if (drive(&t, "client") != 1)
            return tu_failf("client: not upgraded");
    }
    if (upgraded_data(&t, 0, server_first))
        return -1;
    /* connected from the start: refused cleanly, as on a TCP socket */
    struct sockaddr_storage any = { .ss_family = AF_INET };
    if (M->listen(t.s, 1) != -1 || errno != EINVAL ||
        M->connect(t.s, (struct sockaddr *)&any, sizeof(struct sockaddr_in)) != -1 ||
        errno != EISCONN)
        return tu_failf("client: listen/connect on an anchored socket not refused");
    printf("client: fds held by the upgraded connection besides the TCP socket: %d\n",
           tu_count_fds() - fds0);
    int r = check_anchor_bytes(kfd, "client");
    M->close(t.s);
    shutdown(kfd, SHUT_WR);
    ssize_t n = r ? 0 : recv_kfd_1(kfd);
    if (n != 0)
        r = tu_failf("client: the server's close of the anchor: %zd (%s), not a clean EOF", n,
                     n < 0 ? strerror(errno) : "data");
    return r;
}

static int cli_plain_server(int kfd, int64_t *fallback_ms)
{
    struct tsock t;
    int64_t t0 = tu_now_ms();
    int hello = M->anchor_hello(kfd, NSTACK_ADOPT_ACTIVE) == 0;
    if (anchor(kfd, NSTACK_ADOPT_ACTIVE, 1, hello, &t))
        return -1;
    if (drive(&t, "client") != 0)
        return tu_failf("client: a plain server was not a fallback");
    *fallback_ms = tu_now_ms() - t0;
    if (M->send(t.s, "x", 1, MSG_DONTWAIT) != -1 || errno != ENOPROTOOPT)
        return tu_failf("client: send after fallback: not ENOPROTOOPT");
    M->close(t.s);
    if (send_kfd(kfd, "plain request") || expect_kfd(kfd, "plain reply"))
        return -1;
    shutdown(kfd, SHUT_WR);
    return 0;
}

static int cli_rst(int kfd, int hello)
{
    struct tsock t;
    char buf[8];
    if (anchor(kfd, NSTACK_ADOPT_ACTIVE, 1, hello, &t) || drive(&t, "client") != 1)
        return tu_failf("client: not upgraded");
    M->set_nonblock(t.s, 0);
    if (tu_send_all(&t, "ping!", 5) || tu_recv_all(&t, buf, 5) || memcmp(buf, "pong!", 5))
        return tu_fail("client: ping");
    struct linger lg = { 1, 0 };
    setsockopt(kfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(kfd);                   /* RST; the RDMA connection stays open */
    /* the server reports peer death, then closes its side */
    int r = tu_wait_mask(&t, EPOLLIN | EPOLLHUP | EPOLLERR, HANDSHAKE_MS) ? 0 : -1;
    M->close(t.s);
    return r ? tu_failf("client: the server did not close after the reset") : 0;
}

static int cli_fin(int kfd, int hello)
{
    struct tsock t;
    if (anchor(kfd, NSTACK_ADOPT_ACTIVE, 1, hello, &t) || drive(&t, "client") != 1)
        return tu_failf("client: not upgraded");
    M->set_nonblock(t.s, 0);
    if (tu_send_pattern(&t, BULK, 21, 0))
        return tu_fail("client: send");
    shutdown(kfd, SHUT_WR);       /* FIN on the anchor, data still in flight */
    M->close(t.s);
    return 0;
}

static int connect_one(const struct sockaddr_storage *ss, socklen_t len, const char *scen)
{
    int nonblock = !strcmp(scen, "up");
    int kfd = tcp_connect(ss, len, nonblock);
    if (kfd < 0)
        return -1;
    int one = 1;
    if (!strcmp(scen, "oobcli"))
        setsockopt(kfd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one));
    int plain = !strcmp(scen, "pcli") || !strcmp(scen, "pclib") || !strcmp(scen, "sfirst");
    int hello = !nonblock && !plain && strcmp(scen, "eof") &&
                strcmp(scen, "plain") && strcmp(scen, "plain2") && strcmp(scen, "oobsrv") &&
                strcmp(scen, "oobcli") &&
                M->anchor_hello(kfd, NSTACK_ADOPT_ACTIVE) == 0;
    int r;
    if (!strcmp(scen, "up") || !strcmp(scen, "upb") || !strcmp(scen, "upr") ||
        !strcmp(scen, "mt")) {
        r = cli_up(kfd, nonblock, hello, !strcmp(scen, "upr"));
    } else if (!strcmp(scen, "plain") || !strcmp(scen, "plain2") || !strcmp(scen, "oobsrv") ||
               !strcmp(scen, "oobcli")) {
        int64_t ms = 0;
        r = cli_plain_server(kfd, &ms);
        printf("client: fallback from a plain server after %lld ms\n", (long long)ms);
        if (!r && !strcmp(scen, "plain2") && ms > 50)
            r = tu_failf("client: second fallback took %lld ms (negative cache)", (long long)ms);
        char c;
        if (!r && recv(kfd, &c, 1, 0) != 0)
            r = tu_failf("client: extra bytes from the plain server");
    } else if (!strcmp(scen, "sfirst")) {
        r = expect_kfd(kfd, "greeting") || no_urgent(kfd) || send_kfd(kfd, "thanks");
    } else if (plain) {
        /* a plain client: no urgent byte reaches it, the reply is intact */
        r = send_kfd(kfd, "plain request") || expect_kfd(kfd, "plain reply") || no_urgent(kfd);
    } else if (!strcmp(scen, "eof") || !strcmp(scen, "fwclose")) {
        r = 0;                    /* connect and close without sending */
    } else if (!strcmp(scen, "tiny")) {
        r = tiny(kfd, NSTACK_ADOPT_ACTIVE, hello);
    } else if (!strcmp(scen, "rst")) {
        return cli_rst(kfd, hello);      /* closed the TCP socket itself */
    } else if (!strcmp(scen, "fin")) {
        r = cli_fin(kfd, hello);
    } else if (!strcmp(scen, "down")) {
        r = cli_down(kfd, hello);
    } else if (!strcmp(scen, "downlate")) {
        r = cli_downlate(kfd, hello);
    } else {
        r = tu_failf("unknown scenario %s", scen);
    }
    close(kfd);
    return r;
}

static int connect_par(const struct sockaddr_storage *ss, socklen_t len)
{
    struct tsock t[PAR];
    int kfd[PAR];
    for (int i = 0; i < PAR; i++) {
        if ((kfd[i] = tcp_connect(ss, len, 1)) < 0)
            return -1;
        if (anchor(kfd[i], NSTACK_ADOPT_ACTIVE, 1, 0, &t[i]))   /* connect in progress */
            return -1;
    }
    int r = drive_all(t, PAR, "client") || echo_all(t, PAR, 0) ? -1 : 0;
    for (int i = 0; i < PAR; i++)
        close(kfd[i]);
    return r;
}

static int run_client(const char *addr, int port, char **scen, int n)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (tu_parse_addr(addr, port, &ss, &len))
        return tu_failf("bad address %s", addr);
    for (int i = 0; i < n; i++) {
        max_call_us = 0;
        max_call = NULL;
        if (!strcmp(scen[i], "par") ? connect_par(&ss, len) : connect_one(&ss, len, scen[i]))
            return tu_failf("client scenario %s failed", scen[i]);
        printf("client %s OK (longest module call %lld us: %s)\n", scen[i], (long long)max_call_us,
               max_call ? max_call : "-");
        if (max_call_us > call_limit_ms(scen[i]) * 1000LL)
            return tu_failf("client %s: a nonblocking call took %lld us (%s)", scen[i],
                            (long long)max_call_us, max_call);
    }
    printf("CLIENT OK\n");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 5) {
        fprintf(stderr, "usage: rs_anchor_test server PORT ADDR SCEN... | client ADDR PORT SCEN...\n");
        return 2;
    }
    if (tu_module_init())
        return 1;
    if (!M->anchor || !M->anchor_hello)
        return tu_failf("the module has no anchor op") ? 1 : 1;
    if (!strcmp(argv[1], "server"))
        return run_server(atoi(argv[2]), argv[3], argv + 4, argc - 4) ? 1 : 0;
    if (!strcmp(argv[1], "client"))
        return run_client(argv[2], atoi(argv[3]), argv + 4, argc - 4) ? 1 : 0;
    return 2;
}
