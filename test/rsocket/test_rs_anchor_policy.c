/*
 * test_rs_anchor_policy.c - the long-lived policy's announcements
 * (rs_anchor_policy.c) on a loopback TCP pair: the passive answers only
 * an announcement, decides "plain peer" from data first and "nothing yet"
 * from silence, leaves an upgrade-first hello alone; the active finds the
 * answer even when the passive's data already arrived behind it; no
 * urgent byte ever shows in either stream; the agreed policy is the
 * larger one; a peer that did not answer goes to the negative cache; the
 * switch's mark (KICK/MARK) is found at the head only when it is there,
 * also when it arrives while the hole of the announcement read before is
 * at the head (ioctl is interposed to make that arrival deterministic).
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
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rs_anchor.h"

/* What rs_anchor_policy.c and rs_anchor_tcp.c take from the engine. */
struct rs_tunables rs_tun = { .anchor_negcache_ms = 30000 };
int64_t rs_now_ms(void)
{
    return 1000;
}
void rs_log(int level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}
void rs_global_init_once(void)
{
}

static void wait_for(int fd, short ev);

/* ioctl of this program (rs_anchor_policy.c is linked in): one armed
 * SIOCATMARK look on g_race_fd lets the peer's next urgent byte arrive
 * right after it - the moment the kernel moves the head past an old
 * urgent byte's hole. */
static int g_race_fd = -1, g_race_peer = -1;
static uint8_t g_race_byte;

int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int r = (int)syscall(SYS_ioctl, fd, req, arg);
    if (req == SIOCATMARK && fd == g_race_fd) {
        g_race_fd = -1;
        assert_int_equal(send(g_race_peer, &g_race_byte, 1, MSG_OOB), 1);
        wait_for(fd, POLLPRI);
    }
    return r;
}

/* A connected loopback pair on a fresh port (the negative cache is keyed
 * by the peer's address and port, so tests do not see each other's). */
static void tcp_pair(int fds[2])
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sa);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, len), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fds[0], (struct sockaddr *)&sa, len), 0);
    fds[1] = accept(l, NULL, NULL);
    assert_true(fds[1] >= 0);
    close(l);
}

static void wait_for(int fd, short ev)
{
    struct pollfd p = { .fd = fd, .events = ev };
    assert_int_equal(poll(&p, 1, 5000), 1);
}

/* Reads exactly n bytes and compares them. */
static void expect_stream(int fd, const char *want, size_t n)
{
    char buf[64];
    size_t got = 0;
    while (got < n) {
        wait_for(fd, POLLIN);
        ssize_t r = recv(fd, buf + got, n - got, MSG_DONTWAIT);
        if (r < 0 && errno == EAGAIN)
            continue;
        assert_true(r > 0);
        got += (size_t)r;
    }
    assert_memory_equal(buf, want, n);
}

static void test_answer_and_peer(void **state)
{
    (void)state;
    int fds[2], code = 17;
    tcp_pair(fds);
    assert_int_equal(rs_anchor_policy(fds[0], NSTACK_LL_PEER, &code), 0);     /* nothing yet */
    assert_int_equal(rs_anchor_policy(fds[1], NSTACK_LL_ANSWER, &code), 0);   /* nothing yet */
    assert_int_equal(rs_anchor_policy(fds[0], NSTACK_LL_SEND, &code), 0);
    assert_int_equal(send(fds[0], "request", 7, 0), 7);
    wait_for(fds[1], POLLPRI);
    int mine = 20;                       /* the passive's own policy is larger */
    assert_int_equal(rs_anchor_policy(fds[1], NSTACK_LL_ANSWER, &mine), 1);
    assert_int_equal(mine, 20);
    assert_int_equal(send(fds[1], "response", 8, 0), 8);
    expect_stream(fds[1], "request", 7);
    /* the answer and the data behind it have both arrived: still decided */
    wait_for(fds[0], POLLPRI);
    int got = 0;
    assert_int_equal(rs_anchor_policy(fds[0], NSTACK_LL_PEER, &got), 1);
    assert_int_equal(got, 20);
    expect_stream(fds[0], "response", 8);
    close(fds[0]);
    close(fds[1]);
}

static void test_plain_client(void **state)
{
    (void)state;
    int fds[2], code = 17;
    tcp_pair(fds);
    assert_int_equal(send(fds[0], "GET /", 5, 0), 5);
    wait_for(fds[1], POLLIN);
    assert_int_equal(rs_anchor_policy(fds[1], NSTACK_LL_ANSWER, &code), -1);
    expect_stream(fds[1], "GET /", 5);
    /* nothing urgent went to the client */
    uint8_t v;
    assert_int_equal(recv(fds[0], &v, 1, MSG_OOB | MSG_DONTWAIT), -1);
    close(fds[0]);
    close(fds[1]);
}

static void test_plain_server_negcache(void **state)
{
    (void)state;
    int fds[2], code = 12;
    tcp_pair(fds);
    assert_int_equal(rs_anchor_policy(fds[0], NSTACK_LL_SEND, &code), 0);
    assert_int_equal(send(fds[1], "220 hello", 9, 0), 9);        /* a greeting, no answer */
    wait_for(fds[0], POLLIN);
    int got = 0;
    assert_int_equal(rs_anchor_policy(fds[0], NSTACK_LL_PEER, &got), -1);
    expect_stream(fds[0], "220 hello", 9);
    /* the plain server reads no foreign byte: the announcement was urgent */
    assert_int_equal(send(fds[0], "x", 1, 0), 1);
    expect_stream(fds[1], "x", 1);
    /* next time the same peer gets no announcement */
    errno = 0;
    assert_int_equal(rs_anchor_policy(fds[0], NSTACK_LL_SEND, &code), -1);
    assert_int_equal(errno, ENOPROTOOPT);
    close(fds[0]);
    close(fds[1]);
}

static void test_upgrade_first_hello_left(void **state)
{
    (void)state;
    int fds[2], code = 17;
    uint8_t v = 0;
    tcp_pair(fds);
    assert_int_equal(rs_anc_urgent_send(fds[0], RS_ANC_HELLO), 0);
    wait_for(fds[1], POLLPRI);
    assert_int_equal(rs_anchor_policy(fds[1], NSTACK_LL_ANSWER, &code), 2);
    assert_int_equal(rs_anc_urgent_peek(fds[1], &v), 1);        /* still there for anchor() */
    assert_int_equal(v, RS_ANC_HELLO);
    close(fds[0]);
    close(fds[1]);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    int code = 0;
    assert_int_equal(rs_anchor_policy(-1, NSTACK_LL_SEND, &code), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(rs_anchor_policy(0, 99, &code), -1);
    assert_int_equal(errno, EINVAL);
    int fds[2];
    tcp_pair(fds);
    code = RS_ANC_LL_MAX + 1;
    assert_int_equal(rs_anchor_policy(fds[0], NSTACK_LL_SEND, &code), -1);
    assert_int_equal(errno, EINVAL);
    close(fds[0]);
    close(fds[1]);
}

/* The peer's urgent byte `mark` arrives while fd (data, then the hole of
 * an urgent byte read before, at its head) is looked at - during the
 * look, when the look asks SIOCATMARK first, else right after it: the
 * head is the data either way. */
static void mark_arrives_during_look(int fd, int peer, uint8_t mark)
{
    uint8_t v = 0;
    g_race_fd = fd;
    g_race_peer = peer;
    g_race_byte = mark;
    assert_int_equal(rs_anc_mark_at_head(fd, &v), 0);
    if (g_race_fd >= 0) {                /* no look at the hole: it arrives now */
        g_race_fd = -1;
        assert_int_equal(send(peer, &mark, 1, MSG_OOB), 1);
        wait_for(fd, POLLPRI);
        assert_int_equal(rs_anc_mark_at_head(fd, &v), 0);
    }
}

/* The switch's race: the passive read the announcement out of band (its
 * hole is at the head until an in-band read passes it); the active's data
 * and then its KICK arrive, KICK while the passive looks at the head. The
 * head is the data, not KICK: taking KICK there made the passive skip
 * application bytes and fail the handshake (EPROTO). */
static void test_mark_behind_data_at_hole(void **state)
{
    (void)state;
    int fds[2], code = 17;
    uint8_t v = 0;
    tcp_pair(fds);
    assert_int_equal(rs_anchor_policy(fds[0], NSTACK_LL_SEND, &code), 0);
    wait_for(fds[1], POLLPRI);
    assert_int_equal(rs_anchor_policy(fds[1], NSTACK_LL_ANSWER, &code), 1);   /* reads it */
    assert_int_equal(send(fds[0], "abc", 3, 0), 3);
    wait_for(fds[1], POLLIN);
    mark_arrives_during_look(fds[1], fds[0], RS_ANC_KICK);
    /* the data first (a read that copies a byte stops at the mark) */
    char buf[8];
    assert_int_equal(recv(fds[1], buf, sizeof(buf), MSG_DONTWAIT), 3);
    assert_memory_equal(buf, "abc", 3);
    assert_int_equal(rs_anc_mark_at_head(fds[1], &v), 1);
    assert_int_equal(v, RS_ANC_KICK);
    assert_int_equal(rs_anc_mark_at_head(fds[1], &v), 0);              /* read once */
    assert_int_equal(recv(fds[1], buf, sizeof(buf), MSG_DONTWAIT), -1);  /* nothing behind it */
    assert_int_equal(errno, EAGAIN);
    close(fds[0]);
    close(fds[1]);
}

/* The same on the active's side: the answer's hole at the head, the
 * passive's data, then its MARK and OFFER. */
static void test_mark_at_head_after_data(void **state)
{
    (void)state;
    int fds[2], code = 17, got = 0;
    uint8_t v = 0;
    tcp_pair(fds);
    assert_int_equal(rs_anchor_policy(fds[0], NSTACK_LL_SEND, &code), 0);
    wait_for(fds[1], POLLPRI);
    assert_int_equal(rs_anchor_policy(fds[1], NSTACK_LL_ANSWER, &code), 1);
    wait_for(fds[0], POLLPRI);
    assert_int_equal(rs_anchor_policy(fds[0], NSTACK_LL_PEER, &got), 1);    /* the answer's hole */
    assert_int_equal(send(fds[1], "xy", 2, 0), 2);
    wait_for(fds[0], POLLIN);
    mark_arrives_during_look(fds[0], fds[1], RS_ANC_MARK);
    assert_int_equal(send(fds[1], "NSAN", 4, 0), 4);                   /* OFFER's start */
    expect_stream(fds[0], "xy", 2);
    assert_int_equal(rs_anc_mark_at_head(fds[0], &v), 1);
    assert_int_equal(v, RS_ANC_MARK);
    expect_stream(fds[0], "NSAN", 4);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_and_peer),
        cmocka_unit_test(test_plain_client),
        cmocka_unit_test(test_plain_server_negcache),
        cmocka_unit_test(test_upgrade_first_hello_left),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_mark_behind_data_at_hole),
        cmocka_unit_test(test_mark_at_head_after_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
