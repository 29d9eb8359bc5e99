/*
 * rs_engine_client.c - the client half of rs_engine_test: each scenario
 * opens its own connection(s) with a nonblocking connect and checks every
 * byte it receives.
 */
#include "rs_engine_client.h"

#include "rs_engine_proto.h"
#include "rs_test_util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

struct target {
    struct sockaddr_storage ss;
    socklen_t len;
};

static int open_request(const struct target *tg, struct tsock *t, uint8_t op,
                        uint32_t seed, uint64_t n)
{
    uint8_t raw[TP_HDR_LEN];
    struct tp_hdr h = { .op = op, .seed = seed, .n = n };
    if (tu_connect(t, (const struct sockaddr *)&tg->ss, tg->len))
        return -1;
    tp_encode(&h, raw);
    if (tu_send_all(t, raw, sizeof(raw)))
        return tu_fail("send request header");
    return 0;
}

static int expect_eof(struct tsock *t, const char *where)
{
    char c;
    ssize_t r = M->recv(t->s, &c, 1, 0);
    if (r != 0)
        return tu_failf("%s: expected EOF, got %zd", where, r);
    return 0;
}

static int close_sock(struct tsock *t, const char *where)
{
    if (M->close(t->s))
        return tu_failf("%s: close failed", where);
    return 0;
}

static int sc_data(const struct target *tg, uint64_t n)
{
    struct tsock t;
    if (open_request(tg, &t, TP_DATA, 11, n))
        return -1;
    if (tu_send_pattern(&t, n, 11, 1))
        return tu_fail("data: send");
    if (tu_recv_pattern(&t, n, 12, 1))
        return tu_fail("data: receive reply");
    return close_sock(&t, "data");
}

/* Sends of sizes around the software device's inline limit (64 KiB, the
 * engine's largest write, sent straight from the caller's buffer) and its
 * WQE slot (512 B), each buffer overwritten as soon as its send returned:
 * a byte the device or the engine took from the caller's buffer later
 * than that shows in the server's check (TP_DATA) of every byte. */
static int send_sizes(struct tsock *t, uint64_t total, uint32_t seed)
{
    static const size_t sz[] = { 1, 511, 512, 513, 65535, 65536, 65537, 131072,
                                 63, 4095, 200000, 64, 65 };
    /* not a __thread array: static TLS is in every thread of this binary,
     * and the server's have 256 KiB stacks */
    uint8_t *buf = malloc(200000);
    uint64_t pos = 0;
    int rc = buf ? 0 : -1;
    for (unsigned i = 0; !rc && pos < total; i++) {
        size_t n = sz[i % (sizeof sz / sizeof sz[0])];
        if (n > total - pos)
            n = (size_t)(total - pos);
        tu_fill(buf, n, pos, seed);
        rc = tu_send_all(t, buf, n);
        memset(buf, 0xA5, n);
        pos += n;
    }
    free(buf);
    return rc;
}

static int sc_sizes(const struct target *tg, uint64_t n)
{
    struct tsock t;
    if (open_request(tg, &t, TP_DATA, 13, n))
        return -1;
    if (send_sizes(&t, n, 13))
        return tu_fail("sizes: send");
    if (tu_recv_pattern(&t, n, 14, 1))
        return tu_fail("sizes: receive reply");
    return close_sock(&t, "sizes");
}

static int fionread(struct tsock *t)
{
    int q = -1;
    if (M->ioctl(t->s, FIONREAD, &q))
        return tu_fail("ioctl FIONREAD");
    return q;
}

/* Wait (bounded) until FIONREAD reports `want` bytes. */
static int wait_queued(struct tsock *t, int want)
{
    int64_t deadline = tu_now_ms() + 30000;
    int q;
    while ((q = fionread(t)) != want) {
        if (q < 0 || q > want || tu_now_ms() > deadline)
            return tu_failf("FIONREAD %d, expected %d", q, want);
        tu_wait_mask(t, EPOLLIN, 1000);
    }
    return 0;
}

static int sc_peek(const struct target *tg)
{
    struct tsock t;
    uint8_t buf[5000];
    if (open_request(tg, &t, TP_PEEK, 21, 0))
        return -1;
    if (!(tu_wait_mask(&t, EPOLLIN, 30000) & EPOLLIN))
        return tu_failf("peek: never readable");
    if (wait_queued(&t, 1000))
        return -1;
    if (M->recv(t.s, buf, 10, MSG_PEEK) != 10 || tu_check(buf, 10, 0, 21) >= 0)
        return tu_failf("peek: MSG_PEEK of 10 bytes wrong");
    if (wait_queued(&t, 1000))
        return tu_failf("peek: MSG_PEEK consumed data");
    if (M->recv(t.s, buf, 1000, MSG_PEEK) != 1000 || tu_check(buf, 1000, 0, 21) >= 0)
        return tu_failf("peek: second MSG_PEEK wrong");
    memset(buf, 0, sizeof(buf));
    if (M->recv(t.s, buf, 1000, 0) != 1000 || tu_check(buf, 1000, 0, 21) >= 0)
        return tu_failf("peek: recv after peek wrong");
    if (fionread(&t) != 0)
        return tu_failf("peek: FIONREAD not 0 after reading everything");
    if (M->recv(t.s, buf, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN)
        return tu_failf("peek: MSG_DONTWAIT on an empty socket must fail EAGAIN");
    if (tu_send_all(&t, "a", 1))
        return tu_fail("peek: ack");
    if (M->recv(t.s, buf, 5000, MSG_WAITALL) != 5000 || tu_check(buf, 5000, 1000, 21) >= 0)
        return tu_failf("peek: MSG_WAITALL of 5 x 1000 bytes wrong");
    if (tu_send_all(&t, "b", 1))
        return tu_fail("peek: second ack");
    return close_sock(&t, "peek");
}

static int sc_shut_client(const struct target *tg, uint64_t n)
{
    struct tsock t;
    if (open_request(tg, &t, TP_SHUT_CLIENT, 31, n))
        return -1;
    if (tu_send_pattern(&t, n, 31, 0))
        return tu_fail("shut-client: send");
    if (M->shutdown(t.s, SHUT_WR))
        return tu_fail("shut-client: shutdown SHUT_WR");
    if (M->send(t.s, "x", 1, MSG_NOSIGNAL) != -1 || errno != EPIPE)
        return tu_failf("shut-client: send after SHUT_WR must fail EPIPE");
    if (tu_recv_pattern(&t, n, 32, 0))
        return tu_fail("shut-client: receive after own SHUT_WR");
    if (expect_eof(&t, "shut-client"))
        return -1;
    return close_sock(&t, "shut-client");
}

static int sc_shut_server(const struct target *tg, uint64_t n)
{
    struct tsock t;
    char c;
    if (open_request(tg, &t, TP_SHUT_SERVER, 41, n))
        return -1;
    if (tu_recv_pattern(&t, n, 41, 0))
        return tu_fail("shut-server: receive");
    if (expect_eof(&t, "shut-server: after peer SHUT_WR"))
        return -1;
    if (!(tu_wait_mask(&t, EPOLLRDHUP, 1000) & EPOLLRDHUP))
        return tu_failf("shut-server: no EPOLLRDHUP after peer SHUT_WR");
    if (tu_send_pattern(&t, n, 42, 0))
        return tu_fail("shut-server: send after peer SHUT_WR");
    if (M->shutdown(t.s, SHUT_RD))
        return tu_fail("shut-server: shutdown SHUT_RD");
    if (M->recv(t.s, &c, 1, 0) != 0)
        return tu_failf("shut-server: recv after SHUT_RD must return 0");
    return close_sock(&t, "shut-server");
}

static int sc_close_pending(const struct target *tg, uint64_t n)
{
    struct tsock t;
    if (open_request(tg, &t, TP_CLOSE, 51, n))
        return -1;
    if (tu_send_pattern(&t, n, 51, 1))
        return tu_fail("close-pending: send");
    return close_sock(&t, "close-pending");   /* the server checks arrival */
}

static int echo_request(const struct target *tg, uint32_t seed, uint64_t n)
{
    struct tsock t;
    if (open_request(tg, &t, TP_ECHO, seed, n))
        return -1;
    if (tu_send_pattern(&t, n, seed, 0) || tu_recv_pattern(&t, n, seed, 0))
        return tu_failf("echo %u failed: %s", seed, strerror(errno));
    return close_sock(&t, "echo");
}

/* Keepalive on a live but idle connection (review F4): SO_KEEPALIVE with
 * TCP_KEEPIDLE 1 s, a probe goes out at the first pass after a period,
 * then nobody touches the socket for over 3 periods (the idle time is the
 * behaviour under test, not a synchronisation). The next call must find
 * the probe answered and the echo intact, not ETIMEDOUT. */
static int sc_keepalive_idle(const struct target *tg)
{
    const uint32_t seed = 77;
    uint8_t buf[3], back[3];
    int one = 1, q = 0;
    struct tsock t;
    struct timespec probe_due = { 1, 500000000 }, idle = { 4, 500000000 };

    if (open_request(tg, &t, TP_ECHO, seed, sizeof(buf)))
        return -1;
    /* a probe every second (KEEPIDLE and KEEPINTVL 1): all answered */
    if (M->setsockopt(t.s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) ||
        M->setsockopt(t.s, IPPROTO_TCP, TCP_KEEPIDLE, &one, sizeof(one)) ||
        M->setsockopt(t.s, IPPROTO_TCP, TCP_KEEPINTVL, &one, sizeof(one)))
        return tu_fail("keepalive: setsockopt");
    tu_fill(buf, sizeof(buf), 0, seed);
    if (tu_send_all(&t, buf, 1))
        return tu_fail("keepalive: first byte");
    nanosleep(&probe_due, NULL);
    /* FIONREAD runs a progress pass (a send with room does not): it reads
     * the expired period and posts a probe */
    if (M->ioctl(t.s, FIONREAD, &q) || tu_send_all(&t, buf + 1, 1))
        return tu_fail("keepalive: second byte");
    nanosleep(&idle, NULL);
    /* the next pass reads 4 expirations with the probe's answer in the CQ */
    if (M->ioctl(t.s, FIONREAD, &q) || tu_send_all(&t, buf + 2, 1))
        return tu_failf("keepalive: send after idle: %s", strerror(errno));
    if (tu_recv_all(&t, back, sizeof(back)) || tu_check(back, sizeof(back), 0, seed) >= 0)
        return tu_failf("keepalive: echo after idle: %s", strerror(errno));
    return close_sock(&t, "keepalive");
}

static int sc_many(const struct target *tg, int k)
{
    struct tsock *t = calloc((size_t)k, sizeof(*t));
    uint8_t raw[TP_HDR_LEN];
    const uint64_t n = 16384;
    int64_t start = tu_now_ms();
    if (!t)
        return tu_fail("calloc");
    for (int i = 0; i < k; i++)
        if (tu_connect_start(&t[i], (const struct sockaddr *)&tg->ss, tg->len))
            return tu_failf("many: connect %d of %d failed", i, k);
    for (int i = 0; i < k; i++)
        if (tu_connect_finish(&t[i], 120000))
            return tu_failf("many: connection %d of %d did not complete", i, k);
    for (int i = 0; i < k; i++) {
        struct tp_hdr h = { .op = TP_ECHO, .seed = 1000u + (uint32_t)i, .n = n };
        tp_encode(&h, raw);
        if (tu_send_all(&t[i], raw, sizeof(raw)) || tu_send_pattern(&t[i], n, h.seed, 0))
            return tu_failf("many: send on connection %d: %s", i, strerror(errno));
    }
    for (int i = 0; i < k; i++)
        if (tu_recv_pattern(&t[i], n, 1000u + (uint32_t)i, 0))
            return tu_failf("many: echo on connection %d: %s", i, strerror(errno));
    for (int i = 0; i < k; i++)
        if (close_sock(&t[i], "many"))
            return -1;
    free(t);
    printf("many: %d concurrent connections, %llu bytes each way each, %lld ms\n", k,
           (unsigned long long)n, (long long)(tu_now_ms() - start));
    return 0;
}

/* The server's open fd count, once only this query's connection is open
 * there (earlier ones close when the server reads their EOF). */
static long server_fds(const struct target *tg)
{
    int64_t deadline = tu_now_ms() + 30000;
    for (int i = 0; i < 100000 && tu_now_ms() < deadline; i++) {
        struct tsock t;
        uint64_t n[2];
        if (open_request(tg, &t, TP_FDS, 0, 0))
            return -1;
        if (tu_recv_all(&t, n, sizeof(n)))
            return tu_fail("fds: receive");
        close_sock(&t, "fds");
        if (n[1] == 1)
            return (long)n[0];
        poll(NULL, 0, 50);        /* retry the condition until the deadline */
    }
    tu_failf("fds: server connections did not close within 30 s");
    return -1;
}

/* Sequential open/close; fds of both processes and our RSS return to the
 * level measured after a warm-up. */
static int sc_hygiene(const struct target *tg, int loops)
{
    const int warm = 20;
    int fds0 = -1;
    long rss0 = -1, srv0 = -1, srv1 = -1;
    for (int i = 0; i < loops + warm; i++) {
        if (i == warm) {
            fds0 = tu_count_fds();
            rss0 = tu_rss_kib();
            srv0 = server_fds(tg);
        }
        if (echo_request(tg, 5000u + (uint32_t)i, 1024))
            return tu_failf("hygiene: iteration %d", i);
    }
    int fds1 = tu_count_fds();
    long rss1 = tu_rss_kib();
    srv1 = server_fds(tg);
    /* the device closes an idle QP stream (and the peer's end of it) on
     * its own thread, a moment after the traffic: a count taken then may
     * still see one (the server's counts are taken while the asking
     * connection is up); a leak stays, so the counts must come back to
     * at most the warm ones within 5 s */
    int64_t settle = tu_now_ms() + 5000;
    while ((fds1 > fds0 || srv1 > srv0) && srv1 >= 0 && tu_now_ms() < settle) {
        poll(NULL, 0, 20);
        fds1 = tu_count_fds();
        srv1 = server_fds(tg);
    }
    printf("hygiene: %d connections; client fds %d -> %d, rss %ld -> %ld KiB; "
           "server fds %ld -> %ld\n", loops, fds0, fds1, rss0, rss1, srv0, srv1);
    if (fds1 > fds0 || srv1 > srv0 || srv0 < 0 || srv1 < 0)
        return tu_failf("hygiene: descriptors leaked");
    if (rss1 - rss0 > 16 * 1024)
        return tu_failf("hygiene: RSS grew by %ld KiB", rss1 - rss0);
    return 0;
}

static int sc_exit(const struct target *tg)
{
    struct tsock t;
    char c;
    if (open_request(tg, &t, TP_EXIT, 0, 0))
        return -1;
    M->recv(t.s, &c, 1, 0);        /* the server exits: EOF or an error */
    M->close(t.s);
    return 0;
}

static int run_one(const struct target *tg, const char *spec)
{
    uint64_t n = 0;
    const char *colon = strchr(spec, ':');
    if (colon)
        n = strtoull(colon + 1, NULL, 0);
    switch (spec[0]) {
    case 'D': return sc_data(tg, n ? n : 1 << 20);
    case 'L': return sc_sizes(tg, n ? n : 6 << 20);
    case 'P': return sc_peek(tg);
    case 'S': return sc_shut_client(tg, n ? n : 1 << 20);
    case 'R': return sc_shut_server(tg, n ? n : 1 << 20);
    case 'C': return sc_close_pending(tg, n ? n : 8 << 20);
    case 'M': return sc_many(tg, n ? (int)n : 200);
    case 'H': return sc_hygiene(tg, n ? (int)n : 1000);
    case 'K': return sc_keepalive_idle(tg);
    case 'X': return sc_exit(tg);
    default: return tu_failf("unknown scenario \"%s\"", spec);
    }
}

int run_client(const char *ip, int port, char **specs, int n_specs)
{
    struct target tg;
    if (tu_parse_addr(ip, port, &tg.ss, &tg.len))
        return -1;
    for (int i = 0; i < n_specs; i++) {
        int64_t t0 = tu_now_ms();
        if (run_one(&tg, specs[i]))
            return tu_failf("scenario %s FAILED", specs[i]);
        printf("scenario %s ok (%lld ms)\n", specs[i], (long long)(tu_now_ms() - t0));
        fflush(stdout);
    }
    printf("CLIENT OK\n");
    return 0;
}

int run_refused(const char *ip, int port)
{
    struct target tg;
    struct tsock t;
    int err = 0;
    socklen_t elen = sizeof(err);
    if (tu_parse_addr(ip, port, &tg.ss, &tg.len))
        return -1;
    /* blocking connect */
    t.fd = M->socket(tg.ss.ss_family, SOCK_STREAM, 0, &t.s);
    if (t.fd < 0)
        return tu_fail("socket");
    if (M->connect(t.s, (struct sockaddr *)&tg.ss, tg.len) == 0 || errno != ECONNREFUSED)
        return tu_fail("blocking connect: expected ECONNREFUSED");
    M->close(t.s);
    /* nonblocking connect: the refusal arrives through SO_ERROR */
    if (tu_connect_start(&t, (struct sockaddr *)&tg.ss, tg.len))
        return -1;
    if (!(tu_wait_mask(&t, EPOLLOUT | EPOLLERR, 30000) & (EPOLLOUT | EPOLLERR)))
        return tu_failf("nonblocking refused connect never completed");
    if (M->getsockopt(t.s, SOL_SOCKET, SO_ERROR, &err, &elen) || err != ECONNREFUSED)
        return tu_failf("nonblocking refused connect: SO_ERROR %d, expected ECONNREFUSED", err);
    M->close(t.s);
    printf("REFUSED OK\n");
    return 0;
}

/* Connect to an idle peer that the test script then kills (or stops, with
 * keepalive on): our blocked recv must end with EOF or an error, and close
 * must return within seconds. */
int run_survive(const char *ip, int port, int keepalive)
{
    struct target tg;
    struct tsock t;
    uint8_t buf[100];
    if (tu_parse_addr(ip, port, &tg.ss, &tg.len) || tu_connect(&t, (struct sockaddr *)&tg.ss, tg.len))
        return -1;
    if (keepalive) {
        /* as TCP: first probe after KEEPIDLE, dead after KEEPCNT
         * unanswered KEEPINTVLs (here about 4 s) */
        int one = 1, idle = 1, cnt = 3;
        if (M->setsockopt(t.s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) ||
            M->setsockopt(t.s, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) ||
            M->setsockopt(t.s, IPPROTO_TCP, TCP_KEEPINTVL, &one, sizeof(one)) ||
            M->setsockopt(t.s, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)))
            return tu_fail("set keepalive");
    }
    if (tu_recv_all(&t, buf, sizeof(buf)) || tu_check(buf, sizeof(buf), 0, 77) >= 0)
        return tu_failf("survive: first 100 bytes wrong");
    printf("READY\n");
    fflush(stdout);
    ssize_t r = M->recv(t.s, buf, 1, 0);
    int e = errno;
    printf("recv after peer loss: %zd (%s)\n", r, r < 0 ? strerror(e) : "EOF");
    if (r > 0)
        return tu_failf("survive: data after peer loss");
    if (keepalive && (r != -1 || e != ETIMEDOUT))
        return tu_failf("survive: keepalive should report ETIMEDOUT");
    int64_t t0 = tu_now_ms();
    M->close(t.s);
    int64_t took = tu_now_ms() - t0;
    printf("close took %lld ms\n", (long long)took);
    if (took > 15000)
        return tu_failf("survive: close not bounded");
    printf("SURVIVOR OK\n");
    return 0;
}
