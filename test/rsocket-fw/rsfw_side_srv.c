/*
 * rsfw_side_srv.c - a listen-then-fork echo server (the nginx/Apache
 * shape): the master binds and listens, forks WORKERS workers and never
 * accepts; each worker waits on the listener with EPOLLEXCLUSIVE, accepts
 * nonblocking and echoes the connection until EOF. Clients are plain
 * rsockets clients (rstream over rdma_cm, reaching the listener's rdma_cm
 * side listener) and framework clients (TCP, anchored).
 *
 *   rsfw_side_srv IP PORT WORKERS N
 *       IP may be a wildcard (0.0.0.0, ::). Prints "LISTENING" once the
 *       workers run; after N connections ended prints "served N" and one
 *       "worker I: C connections" line per worker, stops the workers and
 *       exits 0 when every worker exited 0.
 *       WORKERS 0: the master accepts (blocking), forks a helper child
 *       per connection (which only exits: a plain rsockets connection is
 *       RDMA state that no fork child can use, doc/fork.md) and echoes
 *       the connection itself; "served N" at the end.
 *
 * Bounded: SRV_TIMEOUT_S (default 120 s) for the whole run. Exit 0 pass,
 * 1 fail (one line), 2 bad arguments.
 */
#include "rsfw_io.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WORKERS 8

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Echoes blocking connection s until EOF; 0, or -1 on an error. */
static int echo(int s)
{
    static char buf[65536];
    for (int rounds = 0; rounds < 1000000; rounds++) {
        ssize_t n = read(s, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? 0 : -1;
        if (write_all(s, buf, (size_t)n) < 0)
            return -1;
    }
    return -1;
}

/* A worker: serves until quit is readable (EOF); reports one byte with
 * its index on rep per connection served. */
static void worker(int idx, int l, int quit, int rep)
{
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = l };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) < 0)
        RSFW_FAIL("worker %d: epoll_ctl(listener, EPOLLEXCLUSIVE): %s", idx, strerror(errno));
    ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = quit };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, quit, &ev) < 0)
        RSFW_FAIL("worker %d: epoll_ctl(quit): %s", idx, strerror(errno));
    for (int rounds = 0; rounds < 100000; rounds++) {
        struct epoll_event e;
        int n = epoll_wait(ep, &e, 1, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            RSFW_FAIL("worker %d: epoll_wait: %s", idx, strerror(errno));
        if (e.data.fd == quit)
            exit(0);
        int s = accept4(l, NULL, NULL, 0);
        if (s < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            continue;                   /* another worker took it */
        if (s < 0)
            RSFW_FAIL("worker %d: accept4: %s", idx, strerror(errno));
        if (echo(s) < 0)
            RSFW_FAIL("worker %d: echo: %s", idx, strerror(errno));
        close(s);
        char b = (char)idx;
        if (write_all(rep, &b, 1) < 0)
            RSFW_FAIL("worker %d: report: %s", idx, strerror(errno));
    }
    RSFW_FAIL("worker %d: too many wake-ups", idx);
}

/* Accept, fork, serve: the master waits on the listener before its first
 * fork, so it keeps the side listener across every fork. */
static int accept_fork(int l, int total)
{
    int fl = fcntl(l, F_GETFL);
    if (fl < 0 || fcntl(l, F_SETFL, fl & ~O_NONBLOCK) < 0)
        RSFW_FAIL("fcntl: %s", strerror(errno));
    printf("LISTENING\n");
    fflush(stdout);
    for (int i = 0; i < total; i++) {
        int s = accept(l, NULL, NULL);
        if (s < 0)
            RSFW_FAIL("accept %d: %s", i, strerror(errno));
        pid_t c = fork();
        if (c < 0)
            RSFW_FAIL("fork: %s", strerror(errno));
        if (c == 0)
            _exit(0);
        int st;
        if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            RSFW_FAIL("connection %d: the helper failed", i);
        if (echo(s) < 0)
            RSFW_FAIL("connection %d: echo: %s", i, strerror(errno));
        close(s);
    }
    printf("served %d\n", total);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: rsfw_side_srv IP PORT WORKERS N\n");
        return 2;
    }
    struct sockaddr_storage ss;
    socklen_t len = rsfw_addr(argv[1], argv[2], &ss);
    int workers = atoi(argv[3]), total = atoi(argv[4]);
    if (workers < 0 || workers > MAX_WORKERS || total < 1) {
        fprintf(stderr, "rsfw_side_srv: WORKERS 0..%d and N >= 1\n", MAX_WORKERS);
        return 2;
    }
    const char *t = getenv("SRV_TIMEOUT_S");
    alarm(t ? (unsigned)atoi(t) : 120);
    int l = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(l, (struct sockaddr *)&ss, len) < 0 || listen(l, 64) < 0)
        RSFW_FAIL("listener on %s:%s: %s", argv[1], argv[2], strerror(errno));
    if (workers == 0)
        return accept_fork(l, total);
    int quit[2], rep[2];
    if (pipe(quit) < 0 || pipe(rep) < 0)
        RSFW_FAIL("pipe: %s", strerror(errno));
    pid_t w[MAX_WORKERS];
    for (int i = 0; i < workers; i++) {
        w[i] = fork();
        if (w[i] < 0)
            RSFW_FAIL("fork: %s", strerror(errno));
        if (w[i] == 0) {
            close(quit[1]);
            close(rep[0]);
            worker(i, l, quit[0], rep[1]);
        }
    }
    close(quit[0]);
    close(rep[1]);
    printf("LISTENING\n");
    fflush(stdout);
    int per[MAX_WORKERS] = { 0 };
    for (int served = 0; served < total;) {
        char b;
        ssize_t n = read(rep[0], &b, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != 1 || b < 0 || b >= workers)
            RSFW_FAIL("after %d connections: a worker ended early", served);
        per[(int)b]++;
        served++;
    }
    printf("served %d\n", total);
    for (int i = 0; i < workers; i++)
        printf("worker %d: %d connections\n", i, per[i]);
    fflush(stdout);
    close(quit[1]);
    int bad = 0;
    for (int i = 0; i < workers; i++) {
        int st;
        if (waitpid(w[i], &st, 0) != w[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
    }
    if (bad)
        RSFW_FAIL("%d worker(s) failed", bad);
    return 0;
}
