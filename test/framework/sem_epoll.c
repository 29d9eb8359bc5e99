/* sem_epoll.c - epoll semantics the dispatcher must reproduce exactly:
 * LT, ET, ONESHOT, RDHUP, HUP/ERR, EXCLUSIVE, two sets, nested sets,
 * pwait/pwait2 timeouts, DEL/MOD errors, close removes, mixed fd kinds,
 * socket and fd calls on a set. */
#include "semcheck.h"
#include "sem_blocked.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* Data values the app registers; the dispatcher must hand them back as-is. */
#define TAG(n) (0x5e3a000000000000ull | (uint64_t)(n))

/* A "quiet" wait: long enough that a spurious report would show up. */
#define QUIET_MS 150
#define LONG_MS 10000

static void ep_add(int ep, int fd, uint32_t events, uint64_t tag)
{
    struct epoll_event ev = { .events = events, .data.u64 = tag };
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
}

static void ep_mod(int ep, int fd, uint32_t events, uint64_t tag)
{
    struct epoll_event ev = { .events = events, .data.u64 = tag };
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev));
}

/* One epoll_wait; returns the number of events, first one in *ev. */
static int ep_wait1(int ep, int timeout_ms, struct epoll_event *ev)
{
    struct epoll_event evs[8];
    int n;
    do n = epoll_wait(ep, evs, 8, timeout_ms); while (n < 0 && errno == EINTR);
    CHECK(n >= 0, "epoll_wait: %s", strerror(errno));
    if (n > 0 && ev)
        *ev = evs[0];
    return n;
}

static void expect_event(int ep, uint64_t tag, uint32_t must, const char *what)
{
    struct epoll_event ev;
    int n = ep_wait1(ep, LONG_MS, &ev);
    CHECK(n == 1, "%s: expected 1 event, got %d", what, n);
    CHECK(ev.data.u64 == tag, "%s: data %#llx, expected %#llx", what,
          (unsigned long long)ev.data.u64, (unsigned long long)tag);
    CHECK((ev.events & must) == must, "%s: events %#x lack %#x", what, ev.events, must);
}

static void expect_quiet(int ep, const char *what)
{
    struct epoll_event ev = { 0 };
    int n = ep_wait1(ep, QUIET_MS, &ev);
    CHECK(n == 0, "%s: expected no event, got %d (events %#x data %#llx)", what, n,
          ev.events, (unsigned long long)ev.data.u64);
}

static void send_bytes(int fd, size_t len, uint32_t seed)
{
    uint8_t buf[256];
    CHECK(len <= sizeof(buf), "send_bytes too long");
    sem_fill(buf, len, seed, 0);
    sem_write_all(fd, buf, len);
}

static void recv_check(int fd, size_t len, uint32_t seed)
{
    uint8_t buf[256];
    CHECK(len <= sizeof(buf), "recv_check too long");
    sem_read_all(fd, buf, len);
    CHECK(sem_verify(buf, len, seed, 0) == (size_t)-1, "payload corrupted");
}

static void level_triggered(int family)
{
    int c, s, ep = CHECK_OK(epoll_create1(EPOLL_CLOEXEC));
    sem_tcp_pair(family, &c, &s);
    ep_add(ep, s, EPOLLIN, TAG(1));
    expect_quiet(ep, "LT before data");
    send_bytes(c, 100, 1);
    expect_event(ep, TAG(1), EPOLLIN, "LT first report");
    expect_event(ep, TAG(1), EPOLLIN, "LT repeats while data is unread");
    recv_check(s, 100, 1);
    expect_quiet(ep, "LT after draining");
    close(c); close(s); close(ep);
}

static void case_lt4(void) { level_triggered(AF_INET); }
static void case_lt6(void) { if (sem_have_ipv6()) level_triggered(AF_INET6); }

static void case_et(void)
{
    int c, s, ep = CHECK_OK(epoll_create1(0));
    sem_tcp_pair(AF_INET, &c, &s);
    ep_add(ep, s, EPOLLIN | EPOLLET, TAG(2));
    send_bytes(c, 10, 2);
    expect_event(ep, TAG(2), EPOLLIN, "ET first arrival");
    expect_quiet(ep, "ET must not repeat without a new arrival");
    send_bytes(c, 10, 3);
    expect_event(ep, TAG(2), EPOLLIN, "ET second arrival");
    expect_quiet(ep, "ET second arrival reported once");
    recv_check(s, 10, 2);
    recv_check(s, 10, 3);
    close(c); close(s); close(ep);
}

static void case_oneshot(void)
{
    int c, s, ep = CHECK_OK(epoll_create1(0));
    sem_tcp_pair(AF_INET, &c, &s);
    ep_add(ep, s, EPOLLIN | EPOLLONESHOT, TAG(3));
    send_bytes(c, 10, 4);
    expect_event(ep, TAG(3), EPOLLIN, "ONESHOT first");
    expect_quiet(ep, "ONESHOT disarmed after one report");
    send_bytes(c, 10, 5);
    expect_quiet(ep, "ONESHOT disarmed even on a new arrival");
    ep_mod(ep, s, EPOLLIN | EPOLLONESHOT, TAG(4));
    expect_event(ep, TAG(4), EPOLLIN, "ONESHOT re-armed by MOD");
    expect_quiet(ep, "ONESHOT disarmed again");
    recv_check(s, 10, 4);
    recv_check(s, 10, 5);
    close(c); close(s); close(ep);
}

static void case_rdhup(void)
{
    int c, s, ep = CHECK_OK(epoll_create1(0));
    sem_tcp_pair(AF_INET, &c, &s);
    ep_add(ep, s, EPOLLIN | EPOLLRDHUP, TAG(5));
    expect_quiet(ep, "RDHUP before shutdown");
    CHECK_OK(shutdown(c, SHUT_WR));
    expect_event(ep, TAG(5), EPOLLIN | EPOLLRDHUP, "RDHUP after peer SHUT_WR");
    char b;
    CHECK(read(s, &b, 1) == 0, "read after peer SHUT_WR must return EOF");
    /* our direction still works after the peer's half close */
    send_bytes(s, 20, 6);
    recv_check(c, 20, 6);
    close(c); close(s); close(ep);
}

static void case_hup_err(void)
{
    int c, s, ep = CHECK_OK(epoll_create1(0));
    sem_tcp_pair(AF_INET, &c, &s);
    /* EPOLLERR/EPOLLHUP are reported even when not asked for */
    ep_add(ep, c, EPOLLIN, TAG(6));
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    CHECK_OK(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
    CHECK_OK(close(s));     /* abortive close: RST to c */
    struct epoll_event ev;
    CHECK(ep_wait1(ep, LONG_MS, &ev) == 1, "no event after peer reset");
    CHECK(ev.data.u64 == TAG(6), "wrong data after reset");
    CHECK(ev.events & EPOLLHUP, "reset must report EPOLLHUP (events %#x)", ev.events);
    CHECK(ev.events & EPOLLERR, "reset must report EPOLLERR (events %#x)", ev.events);
    int err = 0;
    socklen_t len = sizeof(err);
    CHECK_OK(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len));
    CHECK(err == ECONNRESET, "SO_ERROR after reset: %d, expected ECONNRESET", err);
    close(c); close(ep);
}

static void case_exclusive(void)
{
    int c, s, ep = CHECK_OK(epoll_create1(0));
    sem_tcp_pair(AF_INET, &c, &s);
    ep_add(ep, s, EPOLLIN | EPOLLEXCLUSIVE, TAG(7));
    send_bytes(c, 10, 7);
    expect_event(ep, TAG(7), EPOLLIN, "EXCLUSIVE report");
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG(7) };
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev), EINVAL);
    recv_check(s, 10, 7);
    close(c); close(s); close(ep);
}

static void case_two_sets(void)
{
    int c, s, ep1 = CHECK_OK(epoll_create1(0)), ep2 = CHECK_OK(epoll_create1(0));
    sem_tcp_pair(AF_INET, &c, &s);
    ep_add(ep1, s, EPOLLIN, TAG(8));
    ep_add(ep2, s, EPOLLIN | EPOLLET, TAG(9));
    send_bytes(c, 10, 8);
    expect_event(ep1, TAG(8), EPOLLIN, "set 1");
    expect_event(ep2, TAG(9), EPOLLIN, "set 2");
    expect_event(ep1, TAG(8), EPOLLIN, "set 1 stays LT");
    expect_quiet(ep2, "set 2 stays ET");
    CHECK_OK(epoll_ctl(ep1, EPOLL_CTL_DEL, s, NULL));
    expect_quiet(ep1, "set 1 after DEL");
    recv_check(s, 10, 8);
    close(c); close(s); close(ep1); close(ep2);
}

static void case_nested(void)
{
    int c, s, inner = CHECK_OK(epoll_create1(0)), outer = CHECK_OK(epoll_create1(0));
    sem_tcp_pair(AF_INET, &c, &s);
    ep_add(inner, s, EPOLLIN, TAG(10));
    ep_add(outer, inner, EPOLLIN, TAG(11));
    expect_quiet(outer, "outer before data");
    send_bytes(c, 10, 9);
    expect_event(outer, TAG(11), EPOLLIN, "outer sees inner ready");
    expect_event(inner, TAG(10), EPOLLIN, "inner reports the socket");
    recv_check(s, 10, 9);
    expect_quiet(outer, "outer after draining");
    close(c); close(s); close(inner); close(outer);
}

/* A set holding a socket (under the preload: a tracked set, with the
 * module's registrations on a module route) is no socket: every socket
 * call fails as the kernel's does, and its O_NONBLOCK is its own. */
static void case_socket_calls_on_set(void)
{
    int c, s, ep = CHECK_OK(epoll_create1(0));
    sem_tcp_pair(AF_INET, &c, &s);
    ep_add(ep, s, EPOLLIN, TAG(40));
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa), vl = sizeof(int);
    int v = 1, off = 0;
    char b;
    CHECK_ERR(bind(ep, (struct sockaddr *)&sa, sizeof(sa)), ENOTSOCK);
    CHECK_ERR(listen(ep, 1), ENOTSOCK);
    CHECK_ERR(connect(ep, (struct sockaddr *)&sa, sizeof(sa)), ENOTSOCK);
    CHECK_ERR(accept4(ep, NULL, NULL, SOCK_NONBLOCK), ENOTSOCK);
    CHECK_ERR(shutdown(ep, SHUT_RDWR), ENOTSOCK);
    CHECK_ERR(getsockname(ep, (struct sockaddr *)&sa, &len), ENOTSOCK);
    CHECK_ERR(getpeername(ep, (struct sockaddr *)&sa, &len), ENOTSOCK);
    CHECK_ERR(getsockopt(ep, SOL_SOCKET, SO_ERROR, &v, &vl), ENOTSOCK);
    CHECK_ERR(setsockopt(ep, SOL_SOCKET, SO_OOBINLINE, &v, sizeof(v)), ENOTSOCK);
    CHECK_ERR(send(ep, "x", 1, MSG_DONTWAIT), ENOTSOCK);
    CHECK_ERR(read(ep, &b, 1), EINVAL);
    CHECK_OK(fcntl(ep, F_SETFL, O_NONBLOCK));
    CHECK(fcntl(ep, F_GETFL) & O_NONBLOCK, "F_SETFL O_NONBLOCK on the set");
    CHECK_OK(ioctl(ep, FIONBIO, &off));
    CHECK(!(fcntl(ep, F_GETFL) & O_NONBLOCK), "FIONBIO 0 on the set");
    CHECK_ERR(ioctl(ep, FIONBIO, NULL), EFAULT);
    send_bytes(c, 10, 40);
    expect_event(ep, TAG(40), EPOLLIN, "the set after the calls");
    recv_check(s, 10, 40);
    close(c); close(s); close(ep);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void case_pwait_timeouts(void)
{
    int c, s, ep = CHECK_OK(epoll_create1(0));
    sem_tcp_pair(AF_INET, &c, &s);
    ep_add(ep, s, EPOLLIN, TAG(12));
    struct epoll_event ev;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);

    int64_t t0 = now_ns();
    CHECK(epoll_pwait(ep, &ev, 1, 120, &mask) == 0, "epoll_pwait on idle set");
    int64_t el = now_ns() - t0;
    CHECK(el >= 120 * 1000000ll, "epoll_pwait returned after %lld us, asked 120 ms",
          (long long)el / 1000);

    struct timespec ts = { .tv_sec = 0, .tv_nsec = 80 * 1000000 };
    t0 = now_ns();
    CHECK(epoll_pwait2(ep, &ev, 1, &ts, NULL) == 0, "epoll_pwait2 on idle set");
    el = now_ns() - t0;
    CHECK(el >= 80 * 1000000ll, "epoll_pwait2 returned after %lld us, asked 80 ms",
          (long long)el / 1000);

    struct timespec zero = { 0, 0 };
    CHECK(epoll_pwait2(ep, &ev, 1, &zero, NULL) == 0, "epoll_pwait2 zero timeout");
    t0 = now_ns();
    CHECK(epoll_wait(ep, &ev, 1, 0) == 0, "epoll_wait zero timeout");
    CHECK(now_ns() - t0 < 5000 * 1000000ll, "zero timeout blocked");

    send_bytes(c, 10, 10);
    CHECK(epoll_pwait2(ep, &ev, 1, NULL, &mask) == 1, "epoll_pwait2 NULL timeout with data");
    CHECK(ev.data.u64 == TAG(12) && (ev.events & EPOLLIN), "epoll_pwait2 event wrong");
    CHECK(epoll_pwait(ep, &ev, 1, -1, NULL) == 1, "epoll_pwait infinite with data");
    recv_check(s, 10, 10);
    close(c); close(s); close(ep);
}

static void case_ctl_errors_and_mod(void)
{
    int c, s, ep = CHECK_OK(epoll_create1(0));
    sem_tcp_pair(AF_INET, &c, &s);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG(13) };
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), ENOENT);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev), ENOENT);
    ep_add(ep, s, EPOLLIN, TAG(13));
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev), EEXIST);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev), EINVAL);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, 1000000, &ev), EBADF);
    CHECK_ERR(epoll_ctl(s, EPOLL_CTL_ADD, c, &ev), EINVAL);
    expect_quiet(ep, "idle socket, EPOLLIN only");
    ep_mod(ep, s, EPOLLOUT, TAG(14));
    expect_event(ep, TAG(14), EPOLLOUT, "MOD to EPOLLOUT");
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL));
    send_bytes(c, 10, 11);
    expect_quiet(ep, "after DEL");
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), ENOENT);
    recv_check(s, 10, 11);
    close(c); close(s); close(ep);
}

/* DEL and ADD again, as event loops do per request (hiredis' ae adapter):
 * a re-added socket reports only what is there, a deleted one nothing,
 * data that came while it was deleted is reported once re-added (once
 * with EPOLLET), and EPOLLEXCLUSIVE may change across the pair. */
static void case_del_readd(void)
{
    int c, s, ep = CHECK_OK(epoll_create1(0));
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG(30) };
    sem_tcp_pair(AF_INET, &c, &s);
    for (uint32_t i = 0; i < 3; i++) {
        ep_add(ep, s, EPOLLIN, TAG(30 + i));
        expect_quiet(ep, "re-added idle socket");
        send_bytes(c, 10, 20 + i);
        expect_event(ep, TAG(30 + i), EPOLLIN, "data after the re-ADD");
        recv_check(s, 10, 20 + i);
        CHECK_OK(epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL));
        CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev), ENOENT);
        CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), ENOENT);
    }
    send_bytes(c, 10, 40);
    expect_quiet(ep, "deleted socket with data");
    ep_add(ep, s, EPOLLIN | EPOLLET, TAG(41));
    expect_event(ep, TAG(41), EPOLLIN, "data that came while deleted, re-added EPOLLET");
    expect_quiet(ep, "EPOLLET reports it once");
    recv_check(s, 10, 40);
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL));
    ep_add(ep, s, EPOLLIN | EPOLLEXCLUSIVE, TAG(42));
    send_bytes(c, 10, 43);
    expect_event(ep, TAG(42), EPOLLIN, "re-added with EPOLLEXCLUSIVE");
    recv_check(s, 10, 43);
    close(c); close(s); close(ep);
}

/* A loop that never sleeps - another socket is always ready - still sees
 * data that arrives on a socket it has read before (a module may leave
 * that socket's wake-up disarmed until the set sleeps: module ABI 1.5,
 * poll_lazy; the set must still look at it on every wait). */
static void case_busy_loop_sees_data(void)
{
    int c1, s1, c2, s2, ep = CHECK_OK(epoll_create1(0));
    sem_tcp_pair(AF_INET, &c1, &s1);
    sem_tcp_pair(AF_INET, &c2, &s2);
    ep_add(ep, s1, EPOLLIN | EPOLLET, TAG(50));  /* no level-triggered re-check */
    ep_add(ep, s2, EPOLLOUT, TAG(51));            /* always ready */
    for (uint32_t round = 0; round < 3; round++) {
        send_bytes(c1, 10, 60 + round);
        int seen = 0;
        int64_t end = now_ns() + 2000000000ll;    /* 2 s of a loop that never sleeps */
        while (!seen && now_ns() < end) {
            struct epoll_event evs[4];
            int n = epoll_wait(ep, evs, 4, LONG_MS);
            CHECK(n > 0, "busy loop: epoll_wait gave %d", n);
            for (int k = 0; k < n; k++)
                seen |= evs[k].data.u64 == TAG(50) && (evs[k].events & EPOLLIN);
        }
        CHECK(seen, "round %u: data on a socket read before was never reported to a loop that never sleeps",
              round);
        recv_check(s1, 10, 60 + round);
    }
    close(c1); close(s1); close(c2); close(s2); close(ep);
}

static void case_close_removes(void)
{
    int c, s, ep = CHECK_OK(epoll_create1(0));
    sem_tcp_pair(AF_INET, &c, &s);
    ep_add(ep, s, EPOLLIN | EPOLLOUT, TAG(15));
    expect_event(ep, TAG(15), EPOLLOUT, "registered socket writable");
    int num = s;
    CHECK_OK(close(s));
    expect_quiet(ep, "closed fd must leave the set");
    /* a new socket that reuses the number is a new registration */
    int c2, s2;
    sem_tcp_pair(AF_INET, &c2, &s2);
    int reuse = (c2 == num) ? c2 : (s2 == num ? s2 : -1);
    if (reuse >= 0) {
        ep_add(ep, reuse, EPOLLOUT, TAG(16));
        expect_event(ep, TAG(16), EPOLLOUT, "reused fd number registers afresh");
    }
    close(c); close(c2); close(s2); close(ep);
}

static void case_mixed(void)
{
    int c, s, ep = CHECK_OK(epoll_create1(0)), pfd[2];
    sem_tcp_pair(AF_INET, &c, &s);
    CHECK_OK(pipe(pfd));
    int efd = CHECK_OK(eventfd(0, EFD_NONBLOCK));
    int tfd = CHECK_OK(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK));
    ep_add(ep, s, EPOLLIN, TAG(20));
    ep_add(ep, pfd[0], EPOLLIN, TAG(21));
    ep_add(ep, efd, EPOLLIN, TAG(22));
    ep_add(ep, tfd, EPOLLIN, TAG(23));
    expect_quiet(ep, "mixed set idle");

    send_bytes(c, 10, 12);
    expect_event(ep, TAG(20), EPOLLIN, "socket in mixed set");
    recv_check(s, 10, 12);
    CHECK(write(pfd[1], "x", 1) == 1, "pipe write");
    expect_event(ep, TAG(21), EPOLLIN, "pipe in mixed set");
    char b;
    CHECK(read(pfd[0], &b, 1) == 1, "pipe read");
    uint64_t one = 1;
    CHECK(write(efd, &one, 8) == 8, "eventfd write");
    expect_event(ep, TAG(22), EPOLLIN, "eventfd in mixed set");
    CHECK(read(efd, &one, 8) == 8, "eventfd read");
    struct itimerspec its = { .it_value = { .tv_nsec = 30 * 1000000 } };
    CHECK_OK(timerfd_settime(tfd, 0, &its, NULL));
    expect_event(ep, TAG(23), EPOLLIN, "timerfd in mixed set");
    CHECK(read(tfd, &one, 8) == 8 && one >= 1, "timerfd read");
    expect_quiet(ep, "mixed set drained");

    /* all at once: every member reported in one call */
    send_bytes(c, 10, 13);
    CHECK(write(pfd[1], "y", 1) == 1, "pipe write");
    CHECK(write(efd, &one, 8) == 8, "eventfd write");
    uint64_t seen = 0;
    int64_t deadline = sem_now_ms() + LONG_MS;
    while (seen != 7 && sem_now_ms() < deadline) {
        struct epoll_event evs[8];
        int n = epoll_wait(ep, evs, 8, 1000);
        CHECK(n >= 0 || errno == EINTR, "epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            uint64_t k = evs[i].data.u64 - TAG(20);
            CHECK(k < 3, "unexpected event data %#llx", (unsigned long long)evs[i].data.u64);
            seen |= 1ull << k;
        }
    }
    CHECK(seen == 7, "not all mixed members reported (mask %#llx)", (unsigned long long)seen);
    close(c); close(s); close(pfd[0]); close(pfd[1]); close(efd); close(tfd); close(ep);
}

/* One epoll_wait of LONG_MS on b->fd; the first event into b->buf. */
static long op_epoll_wait(struct sem_blocked *b)
{
    return epoll_wait(b->fd, (struct epoll_event *)(void *)b->buf, 1, LONG_MS);
}

/* A thread already blocked in epoll_wait on a set that holds no socket yet
 * (an event loop's first connection, handed over by another thread) sees
 * a connection added afterwards that is ready at once: Apache's listener
 * thread waits while a worker adds a connection for EPOLLOUT. */
static void case_add_while_waiting(void)
{
    int c, s, ep = CHECK_OK(epoll_create1(EPOLL_CLOEXEC));
    struct epoll_event got = { 0 };
    struct sem_blocked b;
    sem_warm_pair(&c, &s);
    sem_start_blocked(&b, op_epoll_wait, ep, (uint8_t *)&got, sizeof(got));
    CHECK(!sem_blocked_done(&b), "epoll_wait on an empty set returned %ld", b.r);
    ep_add(ep, s, EPOLLOUT, TAG(30));
    sem_blocked_join(&b);
    CHECK(b.r == 1, "blocked epoll_wait: %ld events (%s) after a writable socket was added",
          b.r, b.r < 0 ? strerror(b.err) : "none within 10 s");
    CHECK(got.data.u64 == TAG(30) && (got.events & EPOLLOUT), "event %#x data %#llx", got.events,
          (unsigned long long)got.data.u64);
    close(c); close(s); close(ep);
}

static void case_maxevents(void)
{
    int ep = CHECK_OK(epoll_create1(0));
    struct epoll_event ev;
    CHECK_ERR(epoll_wait(ep, &ev, 0, 0), EINVAL);
    CHECK_ERR(epoll_wait(-1, &ev, 1, 0), EBADF);
    CHECK_ERR(epoll_create(0), EINVAL);
    int old = CHECK_OK(epoll_create(1));
    close(old);
    close(ep);
}

int main(int argc, char **argv)
{
    static const struct sem_case cases[] = {
        { "lt4", case_lt4 }, { "lt6", case_lt6 }, { "et", case_et },
        { "oneshot", case_oneshot }, { "rdhup", case_rdhup },
        { "hup_err", case_hup_err }, { "exclusive", case_exclusive },
        { "two_sets", case_two_sets }, { "nested", case_nested },
        { "pwait_timeouts", case_pwait_timeouts },
        { "ctl_errors_mod", case_ctl_errors_and_mod },
        { "close_removes", case_close_removes }, { "mixed", case_mixed },
        { "maxevents", case_maxevents }, { "add_while_waiting", case_add_while_waiting },
        { "del_readd", case_del_readd }, { "busy_loop_sees_data", case_busy_loop_sees_data },
        { "socket_calls_on_set", case_socket_calls_on_set },
    };
    return sem_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
