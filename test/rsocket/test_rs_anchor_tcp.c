/*
 * test_rs_anchor_tcp.c - the anchor handshake's TCP side (rs_anchor_tcp.c)
 * on a loopback TCP pair: urgent bytes stay out of a plain reader's
 * stream, the in-band messages are read only when complete and never
 * when foreign, the urgent mark is passed so a close is a FIN, an inline
 * hello (SO_OOBINLINE) is taken out, mapped addresses, the negative cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "rs_anchor.h"

/* What rs_anchor_tcp.c takes from the rest of the engine. */
struct rs_tunables rs_tun = { .anchor_negcache_ms = 30000 };
static int64_t fake_now;
int64_t rs_now_ms(void)
{
    return fake_now;
}
void rs_log(int level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}

/* A connected loopback pair: fds[0] connected, fds[1] accepted. */
static void tcp_pair(int fds[2], int v6)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t len = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (v6) {
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
    } else {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    int l = socket(ss.ss_family, SOCK_STREAM, 0);
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&ss, len), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&ss, &len), 0);
    fds[0] = socket(ss.ss_family, SOCK_STREAM, 0);
    assert_int_equal(connect(fds[0], (struct sockaddr *)&ss, len), 0);
    fds[1] = accept(l, NULL, NULL);
    assert_true(fds[1] >= 0);
    close(l);
}

static void wait_readable(int fd, short ev)
{
    struct pollfd p = { .fd = fd, .events = ev };
    assert_int_equal(poll(&p, 1, 5000), 1);
}

static void test_urgent_invisible_in_stream(void **state)
{
    (void)state;
    int fds[2];
    uint8_t v = 0, buf[16];
    tcp_pair(fds, 0);
    assert_int_equal(rs_anc_urgent_peek(fds[1], &v), 0);
    assert_int_equal(rs_anc_urgent_recv(fds[1], &v), 0);      /* none: not an error */
    assert_int_equal(rs_anc_urgent_send(fds[0], RS_ANC_HELLO), 0);
    assert_int_equal(send(fds[0], "data", 4, 0), 4);
    wait_readable(fds[1], POLLPRI);
    assert_int_equal(rs_anc_urgent_peek(fds[1], &v), 1);
    assert_int_equal(v, RS_ANC_HELLO);
    assert_int_equal(rs_anc_inband(fds[1]), 1);
    /* a plain reader (no MSG_OOB, no SO_OOBINLINE) sees only "data" */
    size_t got = 0;
    while (got < 4) {
        wait_readable(fds[1], POLLIN);
        ssize_t n = recv(fds[1], buf + got, sizeof(buf) - got, MSG_DONTWAIT);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_int_equal(got, 4);
    assert_memory_equal(buf, "data", 4);
    close(fds[0]);
    close(fds[1]);
}

static void test_msg_whole_foreign_eof(void **state)
{
    (void)state;
    int fds[2];
    uint16_t port = 0;
    tcp_pair(fds, 0);
    assert_int_equal(rs_anc_msg_recv(fds[1], RS_ANC_OFFER, &port), 0);   /* nothing yet */
    /* a prefix of the message: incomplete, nothing consumed */
    assert_int_equal(send(fds[0], "NSA", 3, 0), 3);
    wait_readable(fds[1], POLLIN);
    assert_int_equal(rs_anc_msg_recv(fds[1], RS_ANC_OFFER, &port), 0);
    assert_int_equal(rs_anc_inband(fds[1]), 1);
    close(fds[0]);
    close(fds[1]);

    tcp_pair(fds, 0);
    assert_int_equal(rs_anc_msg_send(fds[0], RS_ANC_OFFER, 4791), 0);
    wait_readable(fds[1], POLLIN);
    for (int i = 0; i < 100 && rs_anc_msg_recv(fds[1], RS_ANC_OFFER, &port) == 0; i++)
        wait_readable(fds[1], POLLIN);
    assert_int_equal(port, 4791);
    assert_int_equal(rs_anc_inband(fds[1]), -1);            /* all consumed */
    /* the wrong type is foreign: ENOPROTOOPT, the bytes stay */
    assert_int_equal(rs_anc_msg_send(fds[0], RS_ANC_FAIL, 0), 0);
    wait_readable(fds[1], POLLIN);
    assert_int_equal(rs_anc_msg_recv(fds[1], RS_ANC_OFFER, &port), -1);
    assert_int_equal(errno, ENOPROTOOPT);
    assert_int_equal(rs_anc_msg_recv(fds[1], RS_ANC_FAIL, &port), 1);
    /* application bytes: foreign, untouched */
    assert_int_equal(send(fds[0], "GET / HTTP/1.1\r\n", 16, 0), 16);
    wait_readable(fds[1], POLLIN);
    assert_int_equal(rs_anc_msg_recv(fds[1], RS_ANC_OFFER, &port), -1);
    assert_int_equal(errno, ENOPROTOOPT);
    char buf[16];
    assert_int_equal(recv(fds[1], buf, 16, MSG_WAITALL), 16);
    assert_memory_equal(buf, "GET / HTTP/1.1\r\n", 16);
    /* EOF: -1 with errno 0 */
    shutdown(fds[0], SHUT_WR);
    wait_readable(fds[1], POLLIN);
    assert_int_equal(rs_anc_msg_recv(fds[1], RS_ANC_OFFER, &port), -1);
    assert_int_equal(errno, 0);
    assert_int_equal(rs_anc_inband(fds[1]), 0);
    close(fds[0]);
    close(fds[1]);
}

/* An urgent byte read out of band still holds its place in the queue; a
 * close with it there is a reset. rs_anc_skip_mark passes it. */
static void test_skip_mark_gives_fin(void **state)
{
    (void)state;
    for (int skip = 0; skip < 2; skip++) {
        int fds[2];
        uint8_t v, c;
        tcp_pair(fds, 0);
        assert_int_equal(rs_anc_urgent_send(fds[0], RS_ANC_KICK), 0);
        wait_readable(fds[1], POLLPRI);
        assert_int_equal(rs_anc_urgent_recv(fds[1], &v), 1);
        assert_int_equal(v, RS_ANC_KICK);
        if (skip)
            assert_int_equal(rs_anc_skip_mark(fds[1]), 0);
        close(fds[1]);
        wait_readable(fds[0], POLLIN);
        ssize_t n = recv(fds[0], &c, 1, 0);
        if (skip)
            assert_int_equal(n, 0);                     /* FIN */
        else
            assert_true(n < 0 && errno == ECONNRESET);  /* what the skip avoids */
        close(fds[0]);
    }
}

/* Data behind a KICK (a peer that did not commit after all): the skip
 * leaves it, whole, for the application and says so. */
static void test_skip_mark_leaves_data(void **state)
{
    (void)state;
    int fds[2];
    uint8_t v;
    char buf[8] = "";
    tcp_pair(fds, 0);
    assert_int_equal(rs_anc_urgent_send(fds[0], RS_ANC_KICK), 0);
    assert_int_equal(send(fds[0], "xyz", 3, 0), 3);
    wait_readable(fds[1], POLLPRI);
    assert_int_equal(rs_anc_urgent_recv(fds[1], &v), 1);
    assert_int_equal(v, RS_ANC_KICK);
    wait_readable(fds[1], POLLIN);
    assert_int_equal(rs_anc_skip_mark(fds[1]), 1);
    assert_int_equal(recv(fds[1], buf, sizeof(buf), MSG_DONTWAIT), 3);
    assert_memory_equal(buf, "xyz", 3);
    close(fds[0]);
    close(fds[1]);
}

static void test_inline_hello_taken(void **state)
{
    (void)state;
    int fds[2], one = 1;
    uint8_t v;
    char buf[8];
    tcp_pair(fds, 0);
    assert_int_equal(setsockopt(fds[1], SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one)), 0);
    assert_int_equal(rs_anc_inline_taken(fds[1], NULL, 0), 0);        /* nothing there */
    assert_int_equal(rs_anc_urgent_send(fds[0], RS_ANC_HELLO), 0);
    assert_int_equal(send(fds[0], "abc", 3, 0), 3);
    wait_readable(fds[1], POLLIN);
    assert_int_equal(rs_anc_urgent_peek(fds[1], &v), 0);     /* inline: not out of band */
    v = 0;
    for (int i = 0; i < 100 && !rs_anc_inline_taken(fds[1], &v, 0); i++)
        wait_readable(fds[1], POLLIN);
    assert_int_equal(v, RS_ANC_HELLO);
    assert_int_equal(recv(fds[1], buf, 3, MSG_WAITALL), 3);
    assert_memory_equal(buf, "abc", 3);                      /* the hello is gone */
    /* an application's own inline urgent byte is not ours: left alone */
    assert_int_equal(send(fds[0], "!", 1, MSG_OOB), 1);
    wait_readable(fds[1], POLLIN);
    assert_int_equal(rs_anc_inline_taken(fds[1], NULL, 0), 0);
    assert_int_equal(recv(fds[1], buf, 1, 0), 1);
    assert_int_equal(buf[0], '!');
    close(fds[0]);
    close(fds[1]);
}

static void test_mapped_address(void **state)
{
    (void)state;
    int fds[2];
    struct sockaddr_storage ss;
    socklen_t len;
    tcp_pair(fds, 0);
    assert_int_equal(rs_anc_addr(fds[0], 1, &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    close(fds[0]);
    close(fds[1]);
    /* an IPv6 socket connected to an IPv4 address: plain IPv4 */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t l4 = sizeof(a4);
    assert_int_equal(bind(l, (struct sockaddr *)&a4, l4), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a4, &l4), 0);
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = a4.sin_port };
    assert_int_equal(inet_pton(AF_INET6, "::ffff:127.0.0.1", &a6.sin6_addr), 1);
    int c = socket(AF_INET6, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a6, sizeof(a6)), 0);
    assert_int_equal(rs_anc_addr(c, 1, &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    assert_int_equal(rs_anc_get_port(&ss), ntohs(a4.sin_port));
    rs_anc_set_port(&ss, 4242);
    assert_int_equal(rs_anc_get_port(&ss), 4242);
    assert_int_equal(rs_anc_tcp_connecting(c), 0);
    close(c);
    close(l);
}

static struct sockaddr_storage peer(uint32_t ip, uint16_t port)
{
    struct sockaddr_storage ss = { 0 };
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(ip);
    a->sin_port = htons(port);
    return ss;
}

static void test_negcache(void **state)
{
    (void)state;
    struct sockaddr_storage a = peer(0x0a000001, 80), b = peer(0x0a000001, 443);
    fake_now = 1000;
    assert_false(rs_anc_negcache_hit(&a));
    rs_anc_negcache_add(&a);
    assert_true(rs_anc_negcache_hit(&a));
    assert_false(rs_anc_negcache_hit(&b));                   /* per port */
    fake_now += rs_tun.anchor_negcache_ms;
    assert_false(rs_anc_negcache_hit(&a));                   /* expired */
    /* bounded: 64 entries; the oldest goes first */
    for (uint32_t i = 0; i < 65; i++) {
        struct sockaddr_storage p = peer(0x0b000000 + i, 5432);
        fake_now++;
        rs_anc_negcache_add(&p);
    }
    struct sockaddr_storage first = peer(0x0b000000, 5432), last = peer(0x0b000040, 5432);
    assert_false(rs_anc_negcache_hit(&first));
    assert_true(rs_anc_negcache_hit(&last));
    /* 0 turns the cache off */
    rs_tun.anchor_negcache_ms = 0;
    rs_anc_negcache_add(&b);
    assert_false(rs_anc_negcache_hit(&b));
    rs_tun.anchor_negcache_ms = 30000;
}

/* A negative entry backs off: 1/32 of RS_ANCHOR_NEGCACHE_MS first,
 * doubled by each miss within twice the last span, at most the whole;
 * a miss long after starts again; an answered hello clears it. */
static void test_negcache_backoff(void **state)
{
    (void)state;
    struct sockaddr_storage a = peer(0x0c000001, 8000);
    int64_t first = rs_tun.anchor_negcache_ms / 32, span = first;
    fake_now = 100000;
    rs_anc_negcache_add(&a);
    fake_now += first - 1;
    assert_true(rs_anc_negcache_hit(&a));
    fake_now += 1;
    assert_false(rs_anc_negcache_hit(&a));                   /* asked again soon */
    for (int i = 0; i < 8; i++) {                            /* still silent: longer each time */
        rs_anc_negcache_add(&a);
        span = 2 * span < rs_tun.anchor_negcache_ms ? 2 * span : rs_tun.anchor_negcache_ms;
        fake_now += span - 1;
        assert_true(rs_anc_negcache_hit(&a));
        fake_now += 1;
        assert_false(rs_anc_negcache_hit(&a));
    }
    assert_int_equal(span, rs_tun.anchor_negcache_ms);       /* capped */
    fake_now += 10 * span;                                   /* long after: from the start */
    rs_anc_negcache_add(&a);
    fake_now += first;
    assert_false(rs_anc_negcache_hit(&a));
    rs_anc_negcache_add(&a);                                 /* a hello answered clears it */
    rs_anc_poscache_add(&a);
    assert_false(rs_anc_negcache_hit(&a));
    assert_true(rs_anc_poscache_hit(&a));
}

/* rs_anc_fd_headroom: RS_ANC_FD_HEADROOM free descriptors below the soft
 * RLIMIT_NOFILE, exactly: the one-poll window answers when it holds
 * enough free numbers, the dup probe otherwise (holes spread above). */
/* Fills every free number below the highest open descriptor (fillers
 * kept in fill[], closed by unfill): then every number from the returned
 * one up is free. */
static int fill[256], nfill;

static long lowest_free(void)
{
    int top = 0;
    for (int fd = 0; fd < 256; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            top = fd;
    nfill = 0;
    for (;;) {
        int fd = fcntl(0, F_DUPFD_CLOEXEC, 0);
        assert_true(fd >= 0);
        if (fd > top) {
            close(fd);
            return fd;
        }
        fill[nfill++] = fd;
    }
}

static void unfill(void)
{
    while (nfill > 0)
        close(fill[--nfill]);
}

static void set_nofile(rlim_t soft, const struct rlimit *old)
{
    struct rlimit rl = { soft, old->rlim_max };
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static void test_fd_headroom_window(void **state)
{
    (void)state;
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    long low = lowest_free();
    set_nofile((rlim_t)low + RS_ANC_FD_HEADROOM, &old);
    assert_int_equal(rs_anc_fd_headroom(0), 0);
    set_nofile((rlim_t)low + RS_ANC_FD_HEADROOM - 1, &old);
    errno = 0;
    assert_int_equal(rs_anc_fd_headroom(0), -1);
    assert_int_equal(errno, EMFILE);
    set_nofile(old.rlim_cur, &old);
    assert_int_equal(rs_anc_fd_headroom(0), 0);
    unfill();
}

static void test_fd_headroom_holes(void **state)
{
    (void)state;
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    long low = lowest_free();
    enum { N = 80 };
    int fds[N], holes = 0;
    for (int i = 0; i < N; i++) {
        fds[i] = fcntl(0, F_DUPFD_CLOEXEC, (int)low);
        assert_int_equal(fds[i], low + i);
    }
    for (int i = 0; i < N; i += 8, holes++)
        close(fds[i]);                  /* 10 holes, 8 of them in the poll's window */
    /* holes + 1 free number at the top: one short */
    set_nofile((rlim_t)low + N + (RS_ANC_FD_HEADROOM - holes) - 1, &old);
    errno = 0;
    assert_int_equal(rs_anc_fd_headroom(0), -1);
    assert_int_equal(errno, EMFILE);
    set_nofile((rlim_t)low + N + (RS_ANC_FD_HEADROOM - holes), &old);
    assert_int_equal(rs_anc_fd_headroom(0), 0);
    set_nofile(old.rlim_cur, &old);
    for (int i = 0; i < N; i++)
        if (i % 8)
            close(fds[i]);
    unfill();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urgent_invisible_in_stream),
        cmocka_unit_test(test_msg_whole_foreign_eof),
        cmocka_unit_test(test_skip_mark_gives_fin),
        cmocka_unit_test(test_skip_mark_leaves_data),
        cmocka_unit_test(test_inline_hello_taken),
        cmocka_unit_test(test_mapped_address),
        cmocka_unit_test(test_negcache),
        cmocka_unit_test(test_negcache_backoff),
        cmocka_unit_test(test_fd_headroom_window),
        cmocka_unit_test(test_fd_headroom_holes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
