/* sem_poll.c - poll/ppoll/select/pselect over sockets, pipes and eventfds:
 * readiness, timeouts not shorter than asked, POLLNVAL, fds above 1024. */
#include "semcheck.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define LONG_MS 10000

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct mix {
    int c, s, pr, pw, efd;
};

static void mix_open(struct mix *m)
{
    int p[2];
    sem_tcp_pair(AF_INET, &m->c, &m->s);
    CHECK_OK(pipe(p));
    m->pr = p[0];
    m->pw = p[1];
    m->efd = CHECK_OK(eventfd(0, EFD_NONBLOCK));
}

static void mix_close(struct mix *m)
{
    close(m->c); close(m->s); close(m->pr); close(m->pw); close(m->efd);
}

static void case_poll_mix(void)
{
    struct mix m;
    mix_open(&m);
    struct pollfd p[3] = { { m.s, POLLIN, 0 }, { m.pr, POLLIN, 0 }, { m.efd, POLLIN, 0 } };
    int64_t t0 = now_us();
    CHECK(poll(p, 3, 100) == 0, "idle mix must time out");
    CHECK(now_us() - t0 >= 100000, "poll returned after %lld us, asked 100 ms",
          (long long)(now_us() - t0));

    CHECK(write(m.c, "abc", 3) == 3, "socket write");
    CHECK(poll(p, 3, LONG_MS) == 1, "one ready member expected");
    CHECK(p[0].revents == POLLIN && !p[1].revents && !p[2].revents,
          "socket readiness wrong: %#x %#x %#x", p[0].revents, p[1].revents, p[2].revents);
    char b[8];
    CHECK(read(m.s, b, sizeof(b)) == 3 && memcmp(b, "abc", 3) == 0, "socket data");

    uint64_t one = 1;
    CHECK(write(m.pw, "p", 1) == 1 && write(m.efd, &one, 8) == 8, "pipe/eventfd write");
    CHECK(poll(p, 3, LONG_MS) == 2, "pipe and eventfd ready");
    CHECK(!p[0].revents && p[1].revents == POLLIN && p[2].revents == POLLIN, "pipe/eventfd revents");
    CHECK(read(m.pr, b, 1) == 1 && read(m.efd, &one, 8) == 8, "drain");

    /* a timerfd next to the socket: only the timer fires */
    int tfd = CHECK_OK(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK));
    struct itimerspec its = { .it_value = { .tv_nsec = 30 * 1000000 } };
    CHECK_OK(timerfd_settime(tfd, 0, &its, NULL));
    struct pollfd pt[2] = { { m.s, POLLIN, 0 }, { tfd, POLLIN, 0 } };
    CHECK(poll(pt, 2, LONG_MS) == 1 && !pt[0].revents && pt[1].revents == POLLIN, "timerfd in poll mix");
    fd_set tr;
    FD_ZERO(&tr);
    FD_SET(m.s, &tr);
    FD_SET(tfd, &tr);
    CHECK(select((tfd > m.s ? tfd : m.s) + 1, &tr, NULL, NULL, NULL) == 1 && FD_ISSET(tfd, &tr),
          "timerfd in select mix");
    CHECK(read(tfd, &one, 8) == 8, "timerfd read");
    close(tfd);

    /* POLLOUT on a writable socket, POLLIN|POLLRDHUP after the peer's SHUT_WR */
    struct pollfd q = { m.s, POLLIN | POLLOUT | POLLRDHUP, 0 };
    CHECK(poll(&q, 1, LONG_MS) == 1 && q.revents == POLLOUT, "writable only: %#x", q.revents);
    CHECK_OK(shutdown(m.c, SHUT_WR));
    q.revents = 0;
    int64_t deadline = sem_now_ms() + LONG_MS;
    while (!(q.revents & POLLRDHUP) && sem_now_ms() < deadline)
        CHECK_OK(poll(&q, 1, 1000));
    CHECK((q.revents & (POLLIN | POLLRDHUP)) == (POLLIN | POLLRDHUP), "RDHUP: %#x", q.revents);
    mix_close(&m);
}

static void case_poll_nval_negative(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    int dead = CHECK_OK(dup(s));
    CHECK_OK(close(dead));
    struct pollfd p[3] = { { dead, POLLIN, 0 }, { -1, POLLIN, 0 }, { s, POLLOUT, 0 } };
    CHECK(poll(p, 3, 0) == 2, "closed fd and writable socket count");
    CHECK(p[0].revents == POLLNVAL, "closed fd: revents %#x, expected POLLNVAL", p[0].revents);
    CHECK(p[1].revents == 0, "negative fd must be ignored");
    CHECK(p[2].revents == POLLOUT, "socket POLLOUT: %#x", p[2].revents);
    close(c); close(s);
}

static void case_poll_high_fds(void)
{
    struct rlimit rl;
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &rl));
    if (rl.rlim_cur < 4096) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        CHECK_OK(setrlimit(RLIMIT_NOFILE, &rl));
    }
    CHECK(rl.rlim_cur >= 2048, "RLIMIT_NOFILE too small (%lu)", (unsigned long)rl.rlim_cur);
    /* occupy the low numbers so the sockets land above 1024 */
    enum { FILL = 1100 };
    static int filler[FILL];
    int nfill = 0;
    for (; nfill < FILL; nfill++) {
        filler[nfill] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        CHECK(filler[nfill] >= 0, "open /dev/null #%d: %s", nfill, strerror(errno));
    }
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    CHECK(c > 1024 && s > 1024, "sockets not above 1024 (%d, %d)", c, s);
    struct pollfd p = { s, POLLIN, 0 };
    CHECK(poll(&p, 1, 0) == 0, "high fd idle");
    CHECK(write(c, "hi", 2) == 2, "write on high fd");
    CHECK(poll(&p, 1, LONG_MS) == 1 && p.revents == POLLIN, "high fd POLLIN: %#x", p.revents);
    char b[2];
    CHECK(read(s, b, 2) == 2 && memcmp(b, "hi", 2) == 0, "read on high fd");
    close(c); close(s);
    for (int i = 0; i < nfill; i++)
        close(filler[i]);
}

static void case_ppoll(void)
{
    struct mix m;
    mix_open(&m);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    struct pollfd p = { m.s, POLLIN, 0 };
    struct timespec ts = { 0, 90 * 1000000 };
    int64_t t0 = now_us();
    CHECK(ppoll(&p, 1, &ts, &mask) == 0, "ppoll idle");
    CHECK(now_us() - t0 >= 90000, "ppoll returned after %lld us, asked 90 ms",
          (long long)(now_us() - t0));
    CHECK(write(m.c, "x", 1) == 1, "write");
    CHECK(ppoll(&p, 1, NULL, NULL) == 1 && p.revents == POLLIN, "ppoll NULL timeout");
    mix_close(&m);
}

static void case_select_mix(void)
{
    struct mix m;
    mix_open(&m);
    int maxfd = m.s > m.pr ? m.s : m.pr;
    maxfd = maxfd > m.efd ? maxfd : m.efd;
    fd_set r;
    FD_ZERO(&r);
    FD_SET(m.s, &r); FD_SET(m.pr, &r); FD_SET(m.efd, &r);
    struct timeval tv = { 0, 100000 };
    int64_t t0 = now_us();
    CHECK(select(maxfd + 1, &r, NULL, NULL, &tv) == 0, "idle select");
    CHECK(now_us() - t0 >= 100000, "select returned after %lld us, asked 100 ms",
          (long long)(now_us() - t0));
    CHECK(tv.tv_sec == 0 && tv.tv_usec == 0, "Linux select updates the timeout to 0");
    CHECK(!FD_ISSET(m.s, &r) && !FD_ISSET(m.pr, &r), "idle select left bits set");

    CHECK(write(m.c, "abc", 3) == 3, "write");
    uint64_t one = 1;
    CHECK(write(m.efd, &one, 8) == 8, "eventfd");
    FD_ZERO(&r);
    FD_SET(m.s, &r); FD_SET(m.pr, &r); FD_SET(m.efd, &r);
    fd_set w;
    FD_ZERO(&w);
    FD_SET(m.s, &w);
    int n = select(maxfd + 1, &r, &w, NULL, NULL);
    CHECK(n == 3, "select counts every set bit: %d", n);
    CHECK(FD_ISSET(m.s, &r) && !FD_ISSET(m.pr, &r) && FD_ISSET(m.efd, &r), "read set wrong");
    CHECK(FD_ISSET(m.s, &w), "socket writable");
    char b[3];
    CHECK(read(m.s, b, 3) == 3 && memcmp(b, "abc", 3) == 0, "data");

    int dead = CHECK_OK(dup(m.s));
    close(dead);
    FD_ZERO(&r);
    FD_SET(dead, &r);
    tv = (struct timeval){ 0, 0 };
    CHECK_ERR(select(dead + 1, &r, NULL, NULL, &tv), EBADF);
    mix_close(&m);
}

static void case_pselect(void)
{
    struct mix m;
    mix_open(&m);
    sigset_t mask;
    sigemptyset(&mask);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(m.s, &r);
    struct timespec ts = { 0, 80 * 1000000 };
    int64_t t0 = now_us();
    CHECK(pselect(m.s + 1, &r, NULL, NULL, &ts, &mask) == 0, "idle pselect");
    CHECK(now_us() - t0 >= 80000, "pselect returned after %lld us, asked 80 ms",
          (long long)(now_us() - t0));
    CHECK(write(m.c, "z", 1) == 1, "write");
    FD_SET(m.s, &r);
    CHECK(pselect(m.s + 1, &r, NULL, NULL, NULL, NULL) == 1 && FD_ISSET(m.s, &r), "pselect ready");
    /* the peer closes: readable with EOF */
    char b;
    CHECK(read(m.s, &b, 1) == 1 && b == 'z', "data");
    close(m.c);
    m.c = CHECK_OK(dup(m.pw));
    FD_SET(m.s, &r);
    CHECK(pselect(m.s + 1, &r, NULL, NULL, NULL, NULL) == 1, "EOF is readable");
    CHECK(read(m.s, &b, 1) == 0, "EOF");
    mix_close(&m);
}

int main(int argc, char **argv)
{
    static const struct sem_case cases[] = {
        { "poll_mix", case_poll_mix }, { "poll_nval", case_poll_nval_negative },
        { "poll_high_fds", case_poll_high_fds }, { "ppoll", case_ppoll },
        { "select_mix", case_select_mix }, { "pselect", case_pselect },
    };
    return sem_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
