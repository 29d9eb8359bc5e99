/* sem_dup.c - duplicated socket fds: dup/dup2/dup3/F_DUPFD(_CLOEXEC) give
 * fds that all work; closing one keeps the others (the peer sees EOF only
 * when the last goes); close_range closes or marks CLOEXEC. */
#include "semcheck.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#define LONG_MS 10000

static void roundtrip(int from, int to, uint32_t seed)
{
    uint8_t out[64], in[64];
    sem_fill(out, sizeof(out), seed, 0);
    sem_write_all(from, out, sizeof(out));
    sem_read_all(to, in, sizeof(in));
    CHECK(sem_verify(in, sizeof(in), seed, 0) == (size_t)-1, "payload via dup'd fd");
}

static void expect_no_eof_yet(int fd)
{
    char b;
    CHECK_ERR(recv(fd, &b, 1, MSG_DONTWAIT), EAGAIN);
}

static void case_dup(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    int d = CHECK_OK(dup(c));
    CHECK(d != c, "dup returned the same number");
    roundtrip(c, s, 1);
    roundtrip(d, s, 2);
    roundtrip(s, d, 3);
    CHECK_OK(close(c));
    expect_no_eof_yet(s);
    roundtrip(d, s, 4);
    CHECK_OK(close(d));
    CHECK(sem_wait_fd(s, POLLIN, LONG_MS) & POLLIN, "EOF must be readable");
    char b;
    CHECK(recv(s, &b, 1, 0) == 0, "peer sees EOF after the last dup closes");
    close(s);
}

static void case_dup2_dup3(void)
{
    int c, s, pfd[2];
    sem_tcp_pair(AF_INET, &c, &s);
    CHECK_OK(pipe(pfd));
    /* dup2 onto an open fd replaces it atomically */
    CHECK(dup2(c, pfd[0]) == pfd[0], "dup2 onto an open fd");
    roundtrip(pfd[0], s, 5);
    CHECK(dup2(c, c) == c, "dup2(fd, fd) returns fd");
    CHECK_ERR(dup3(c, c, 0), EINVAL);
    int hi = 900;
    CHECK(dup3(c, hi, O_CLOEXEC) == hi, "dup3 to a chosen number");
    CHECK(fcntl(hi, F_GETFD) == FD_CLOEXEC, "dup3 O_CLOEXEC");
    CHECK(fcntl(c, F_GETFD) == 0, "original keeps its own FD_CLOEXEC");
    roundtrip(hi, s, 6);
    int fx = CHECK_OK(fcntl(c, F_DUPFD_CLOEXEC, 700));
    CHECK(fx >= 700 && fcntl(fx, F_GETFD) == FD_CLOEXEC, "F_DUPFD_CLOEXEC");
    int fd2 = CHECK_OK(fcntl(c, F_DUPFD, 600));
    CHECK(fd2 >= 600 && fcntl(fd2, F_GETFD) == 0, "F_DUPFD");
    roundtrip(s, fx, 7);
    /* a pipe dup2'd onto a socket number turns it into a pipe */
    CHECK(dup2(pfd[1], fd2) == fd2, "dup2 pipe over socket");
    CHECK_ERR(send(fd2, "x", 1, MSG_DONTWAIT), ENOTSOCK);
    CHECK_ERR(dup(1000000), EBADF);
    CHECK_ERR(dup2(c, -1), EBADF);
    close(c);
    close(hi);
    close(fx);
    expect_no_eof_yet(s);   /* pfd[0] still holds the socket */
    close(pfd[0]);
    close(pfd[1]);
    close(fd2);
    CHECK(sem_wait_fd(s, POLLIN, LONG_MS) & POLLIN, "EOF must be readable");
    char b;
    CHECK(recv(s, &b, 1, 0) == 0, "EOF after all copies closed");
    close(s);
}

static void case_dup_epoll(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    int ep = CHECK_OK(epoll_create1(0));
    int d = CHECK_OK(dup(s));
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 1 };
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev));
    ev.data.u64 = 2;
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, d, &ev));  /* same file, other fd: allowed */
    CHECK(write(c, "a", 1) == 1, "write");
    struct epoll_event evs[4];
    CHECK(epoll_wait(ep, evs, 4, LONG_MS) == 2, "both registrations of one socket report");
    /* closing one number must not silence the other's registration (the
     * kernel even keeps reporting the closed number's item while the file
     * lives on; apps cannot rely on that, so only d's report is required) */
    CHECK_OK(close(s));
    int n = epoll_wait(ep, evs, 4, LONG_MS);
    int seen_d = 0;
    for (int i = 0; i < n; i++)
        seen_d |= evs[i].data.u64 == 2;
    CHECK(seen_d, "registration of the surviving dup stopped reporting (%d events)", n);
    char b;
    CHECK(read(d, &b, 1) == 1 && b == 'a', "read via dup");
    close(d); close(c); close(ep);
}

static void case_close_range(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    int base = 800;
    for (int i = 0; i < 4; i++)
        CHECK(dup2(c, base + i) == base + i, "dup2 %d", base + i);
    CHECK_OK(close_range(base, base + 1, CLOSE_RANGE_CLOEXEC));
    CHECK(fcntl(base, F_GETFD) == FD_CLOEXEC && fcntl(base + 1, F_GETFD) == FD_CLOEXEC,
          "close_range CLOEXEC marks");
    CHECK(fcntl(base + 2, F_GETFD) == 0, "outside the range unchanged");
    roundtrip(base + 1, s, 8);
    CHECK_OK(close_range(base, base + 3, 0));
    for (int i = 0; i < 4; i++)
        CHECK_ERR(fcntl(base + i, F_GETFD), EBADF);
    roundtrip(c, s, 9);     /* the original is outside the range and still works */
    close(c);
    CHECK(sem_wait_fd(s, POLLIN, LONG_MS) & POLLIN, "EOF");
    char b;
    CHECK(recv(s, &b, 1, 0) == 0, "EOF once close_range and close dropped every copy");
    /* a fresh socket may reuse the numbers */
    int c2, s2;
    sem_tcp_pair(AF_INET, &c2, &s2);
    CHECK(dup2(c2, base) == base, "reuse closed number");
    roundtrip(base, s2, 10);
    close(base); close(c2); close(s2); close(s);
}

/* The peer reads EOF within LONG_MS. */
static void expect_eof(int fd, const char *what)
{
    CHECK(sem_wait_fd(fd, POLLIN, LONG_MS) & POLLIN, "%s: EOF must be readable", what);
    char b;
    ssize_t r = recv(fd, &b, 1, 0);
    CHECK(r == 0, "%s: EOF (recv %zd, %s)", what, r, r < 0 ? strerror(errno) : "data");
}

/* Numbers given to a connection after it carried data (an anchored one is
 * upgraded by then, its module watching the TCP socket at the app's own
 * number): the first number closed, reused by a new socket, dup2'd and
 * close_range'd over; the connection lives while any number does. */
static void case_dup_after_use(void)
{
    int c, s, pfd[2];
    sem_tcp_pair(AF_INET, &c, &s);
    roundtrip(c, s, 11);
    roundtrip(s, c, 12);
    int d = CHECK_OK(dup(c));
    CHECK_OK(close(c));
    expect_no_eof_yet(s);
    roundtrip(d, s, 13);
    roundtrip(s, d, 14);
    int c2, s2;                          /* may take c's number */
    sem_tcp_pair(AF_INET, &c2, &s2);
    roundtrip(c2, s2, 15);
    roundtrip(s, d, 16);
    CHECK_OK(pipe(pfd));
    int e = CHECK_OK(fcntl(d, F_DUPFD_CLOEXEC, 500));
    CHECK(dup2(pfd[0], d) == d, "dup2 a pipe over the connection's number");
    expect_no_eof_yet(s);
    roundtrip(e, s, 17);
    roundtrip(s, e, 18);
    CHECK_OK(close_range((unsigned)e, (unsigned)e, 0));
    expect_eof(s, "after close_range of the last number");
    /* the only number replaced by dup2: the connection closes */
    roundtrip(c2, s2, 19);
    CHECK(dup2(pfd[1], c2) == c2, "dup2 a pipe over the only number");
    expect_eof(s2, "after dup2 over the only number");
    close(s); close(s2); close(d); close(c2); close(pfd[0]); close(pfd[1]);
}

int main(int argc, char **argv)
{
    static const struct sem_case cases[] = {
        { "dup", case_dup }, { "dup2_dup3", case_dup2_dup3 },
        { "dup_epoll", case_dup_epoll }, { "close_range", case_close_range },
        { "dup_after_use", case_dup_after_use },
    };
    return sem_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
