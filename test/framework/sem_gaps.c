/* sem_gaps.c - behaviour at the edges of the routing decision and of event
 * aggregation, where a module socket differs most from a kernel one:
 *  - a socket type the routed stack cannot carry (UDP on the stream-only
 *    shadow) stays on the kernel, with exactly one notice per process;
 *  - an epoll set inside another, whose inner socket stays ready
 *    (level-triggered, read in parts), keeps the outer set reporting it;
 *  - fds dup'd before the stack is decided follow the socket to its stack;
 *  - recvmmsg's timeout (checked after each message, updated on return);
 *  - a wildcard listener and a client of it. */
#include "semcheck.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define TAG_INNER 0x11aa
#define TAG_SOCK 0x22bb
#define QUIET_MS 150
#define LONG_MS 10000

/* 1 when the runner routed the test subnets to a module (preload-shadow). */
/* The test address is routed to a module (SEM_MODULE_ROUTE; runners that
 * predate it set SEM_MODULE_SOCKETS for the same). */
static int module_mode(void)
{
    const char *r = getenv("SEM_MODULE_ROUTE"), *m = getenv("SEM_MODULE_SOCKETS");
    return (r != NULL && strcmp(r, "1") == 0) || (m != NULL && strcmp(m, "1") == 0);
}

/* ---- UDP on a stream-only stack --------------------------------------- */

static int count_lines_with(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "fopen %s: %s", path, strerror(errno));
    char line[512];
    int n = 0;
    for (int i = 0; i < 10000 && fgets(line, sizeof(line), f) != NULL; i++)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

static void udp_exchange(int a, int b, uint32_t seed)
{
    struct sockaddr_storage to;
    socklen_t tolen = sem_addr(AF_INET, sem_port_of(b), &to);
    uint8_t out[700], in[800];
    sem_fill(out, sizeof(out), seed, 0);
    CHECK(sendto(a, out, sizeof(out), 0, (struct sockaddr *)&to, tolen) == (ssize_t)sizeof(out),
          "sendto: %s", strerror(errno));
    CHECK(sem_wait_fd(b, POLLIN, LONG_MS) & POLLIN, "datagram not readable");
    struct sockaddr_storage from;
    socklen_t flen = sizeof(from);
    ssize_t n = recvfrom(b, in, sizeof(in), 0, (struct sockaddr *)&from, &flen);
    CHECK(n == (ssize_t)sizeof(out), "recvfrom returned %zd: %s", n, strerror(errno));
    CHECK(sem_verify(in, (size_t)n, seed, 0) == (size_t)-1, "datagram payload");
    CHECK(((struct sockaddr_in *)&from)->sin_port == htons(sem_port_of(a)), "source port");
}

/* Must run before any other UDP socket of the process (the notice is once
 * per process). The dispatcher's log goes to fd 2, captured here. */
static void case_udp_on_stream_stack(void)
{
    char path[] = "/tmp/sem-gaps-log.XXXXXX";
    int logfd = CHECK_OK(mkstemp(path));
    int saved = CHECK_OK(dup(2));
    CHECK_OK(dup2(logfd, 2));
    int s[3];
    for (int i = 0; i < 3; i++)
        s[i] = sem_udp_bound(AF_INET);
    udp_exchange(s[0], s[1], 31);
    udp_exchange(s[1], s[2], 32);
    udp_exchange(s[2], s[0], 33);
    CHECK_OK(dup2(saved, 2));
    close(saved);
    close(logfd);
    int notices = count_lines_with(path, "cannot carry AF_INET SOCK_DGRAM sockets");
    unlink(path);
    int want = module_mode() ? 1 : 0;
    CHECK(notices == want, "%d notices about UDP on a stream-only stack, expected %d", notices, want);
    for (int i = 0; i < 3; i++)
        close(s[i]);
}

/* ---- nested epoll --------------------------------------------------------- */

static int wait_one(int ep, int timeout_ms, struct epoll_event *ev)
{
    int n;
    do n = epoll_wait(ep, ev, 1, timeout_ms); while (n < 0 && errno == EINTR);
    CHECK(n >= 0, "epoll_wait: %s", strerror(errno));
    return n;
}

static void expect_tag(int ep, uint64_t tag, const char *what)
{
    struct epoll_event ev;
    CHECK(wait_one(ep, LONG_MS, &ev) == 1, "%s: no event", what);
    CHECK(ev.data.u64 == tag && (ev.events & EPOLLIN), "%s: got tag %#llx events %#x", what,
          (unsigned long long)ev.data.u64, ev.events);
}

static void read_part(int fd, size_t len, size_t off, uint32_t seed)
{
    uint8_t buf[64];
    CHECK(len <= sizeof(buf), "read_part too long");
    CHECK(recv(fd, buf, len, MSG_DONTWAIT) == (ssize_t)len, "partial recv: %s", strerror(errno));
    CHECK(sem_verify(buf, len, seed, off) == (size_t)-1, "payload at %zu", off);
}

static void case_nested_level_triggered(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    int inner = CHECK_OK(epoll_create1(0)), outer = CHECK_OK(epoll_create1(0));
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_SOCK };
    CHECK_OK(epoll_ctl(inner, EPOLL_CTL_ADD, s, &ev));
    ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = TAG_INNER };
    CHECK_OK(epoll_ctl(outer, EPOLL_CTL_ADD, inner, &ev));
    CHECK(wait_one(outer, QUIET_MS, &ev) == 0, "outer reported before any data");

    uint8_t out[40];
    sem_fill(out, sizeof(out), 41, 0);
    sem_write_all(c, out, sizeof(out));
    /* 40 bytes read 8 at a time: the inner socket stays ready after each
     * of the first four reads, so the outer set must keep reporting. */
    for (size_t off = 0; off < sizeof(out); off += 8) {
        expect_tag(outer, TAG_INNER, "outer set while the inner socket has data");
        expect_tag(inner, TAG_SOCK, "inner set");
        read_part(s, 8, off, 41);
    }
    CHECK(wait_one(inner, QUIET_MS, &ev) == 0, "inner set reported a drained socket");
    CHECK(wait_one(outer, QUIET_MS, &ev) == 0, "outer set reported a drained inner set");
    close(outer);
    close(inner);
    close(c);
    close(s);
}

/* ---- dup before the decision -------------------------------------------- */

static void case_dup_before_connect(void)
{
    int lis = sem_listener(AF_INET, 0);
    struct sockaddr_storage to;
    socklen_t tolen = sem_addr(AF_INET, sem_port_of(lis), &to);
    int fd = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    int d1 = CHECK_OK(dup(fd));
    int d2 = CHECK_OK(fcntl(fd, F_DUPFD_CLOEXEC, 200));
    CHECK_OK(connect(fd, (struct sockaddr *)&to, tolen));
    int srv = CHECK_OK(accept(lis, NULL, NULL));

    /* every number carries the connection, flags per number kept */
    CHECK((fcntl(d2, F_GETFD) & FD_CLOEXEC) && !(fcntl(d1, F_GETFD) & FD_CLOEXEC), "FD_CLOEXEC per fd");
    struct sockaddr_storage p1, p2;
    socklen_t l1 = sizeof(p1), l2 = sizeof(p2);
    CHECK_OK(getpeername(d1, (struct sockaddr *)&p1, &l1));
    CHECK_OK(getpeername(fd, (struct sockaddr *)&p2, &l2));
    CHECK(l1 == l2 && memcmp(&p1, &p2, l1) == 0, "dup'd fd has another peer");
    uint8_t out[3000], in[3000];
    sem_fill(out, sizeof(out), 51, 0);
    sem_write_all(d1, out, 1000);
    sem_write_all(d2, out + 1000, 1000);
    sem_write_all(fd, out + 2000, 1000);
    sem_read_all(srv, in, sizeof(in));
    CHECK(sem_verify(in, sizeof(in), 51, 0) == (size_t)-1, "bytes sent through three fds");
    sem_write_all(srv, out, 500);
    sem_read_all(d2, in, 500);
    CHECK(sem_verify(in, 500, 51, 0) == (size_t)-1, "bytes read through a dup");

    /* the connection ends only with the last fd */
    close(fd);
    close(d2);
    sem_write_all(d1, out, 10);
    sem_read_all(srv, in, 10);
    CHECK(sem_verify(in, 10, 51, 0) == (size_t)-1, "bytes after closing two fds");
    close(d1);
    CHECK(sem_wait_fd(srv, POLLIN, LONG_MS) & POLLIN, "no EOF after the last close");
    CHECK(recv(srv, in, 1, 0) == 0, "EOF expected after the last fd closed");
    close(srv);
    close(lis);
}

/* ---- recvmmsg timeout ------------------------------------------------------ */

static void case_recvmmsg_timeout(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    uint8_t out[100], in[4][100];
    sem_fill(out, sizeof(out), 61, 0);
    sem_write_all(c, out, sizeof(out));
    CHECK(sem_wait_fd(s, POLLIN, LONG_MS) & POLLIN, "data not readable");

    struct iovec iov[4];
    struct mmsghdr mm[4];
    memset(mm, 0, sizeof(mm));
    for (int i = 0; i < 4; i++) {
        iov[i] = (struct iovec){ .iov_base = in[i], .iov_len = sizeof(in[i]) };
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    /* Expired after the first message: the call returns 1 instead of
     * blocking for the second, and the time left is 0. */
    struct timespec tmo = { 0, 1 };
    int n = recvmmsg(s, mm, 4, 0, &tmo);
    CHECK(n == 1, "recvmmsg returned %d (%s), expected 1", n, n < 0 ? strerror(errno) : "");
    CHECK(mm[0].msg_len == sizeof(out) && sem_verify(in[0], sizeof(out), 61, 0) == (size_t)-1,
          "recvmmsg payload (%u bytes)", mm[0].msg_len);
    CHECK(tmo.tv_sec == 0 && tmo.tv_nsec == 0, "timeout left %ld.%09ld, expected 0", (long)tmo.tv_sec,
          tmo.tv_nsec);

    /* A longer timeout is updated with the time left. */
    sem_write_all(c, out, 50);
    CHECK(sem_wait_fd(s, POLLIN, LONG_MS) & POLLIN, "data not readable");
    tmo = (struct timespec){ 3600, 0 };
    n = recvmmsg(s, mm, 4, MSG_WAITFORONE, &tmo);
    CHECK(n == 1 && mm[0].msg_len == 50, "recvmmsg WAITFORONE returned %d", n);
    CHECK(sem_verify(in[0], 50, 61, 0) == (size_t)-1, "second payload");
    CHECK(tmo.tv_sec < 3600 && tmo.tv_sec > 3000, "timeout not updated: %ld.%09ld", (long)tmo.tv_sec, tmo.tv_nsec);

    tmo = (struct timespec){ 0, -1 };
    CHECK_ERR(recvmmsg(s, mm, 4, MSG_DONTWAIT, &tmo), EINVAL);
    close(c);
    close(s);
}

/* ---- wildcard listener ----------------------------------------------------- */

static void case_wildcard_listener(void)
{
    int lis = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    int one = 1;
    CHECK_OK(setsockopt(lis, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
    struct sockaddr_in any = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
    CHECK_OK(bind(lis, (struct sockaddr *)&any, sizeof(any)));
    uint16_t port = sem_port_of(lis);
    CHECK(port != 0, "wildcard bind got no port");
    CHECK_OK(listen(lis, 8));
    CHECK(sem_port_of(lis) == port, "port changed at listen");
    struct sockaddr_storage to;
    socklen_t tolen = sem_addr(AF_INET, port, &to);
    int c = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    CHECK_OK(connect(c, (struct sockaddr *)&to, tolen));
    int s = CHECK_OK(accept(lis, NULL, NULL));
    uint8_t out[5000], in[5000];
    sem_fill(out, sizeof(out), 71, 0);
    sem_write_all(c, out, sizeof(out));
    sem_read_all(s, in, sizeof(in));
    CHECK(sem_verify(in, sizeof(in), 71, 0) == (size_t)-1, "payload through a wildcard listener");
    close(c);
    close(s);
    close(lis);
}

int main(int argc, char **argv)
{
    static const struct sem_case cases[] = {
        { "udp_on_stream_stack", case_udp_on_stream_stack },
        { "nested_level_triggered", case_nested_level_triggered },
        { "dup_before_connect", case_dup_before_connect },
        { "recvmmsg_timeout", case_recvmmsg_timeout },
        { "wildcard_listener", case_wildcard_listener },
    };
    return sem_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
