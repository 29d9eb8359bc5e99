/*
 * fork_probe - the fork-support scenarios of test/fork-rdma, run under
 * libnStackAPI.so between two namespace hosts.
 *
 *   fork_probe server IP PORT CONNS [nofork]
 *       nonblocking epoll server that waits for client data first (the
 *       case librspreload's fork mode deadlocks on): accepts CONNS
 *       connections, forks a child per connection that echoes with
 *       EPOLLET until EOF; exits 0 when every child exited 0. With
 *       "nofork" the server echoes each connection itself, in turn.
 *   fork_probe client IP PORT MODE BYTES
 *       echo          one connection, BYTES of a pattern echoed and checked
 *       parent-keeps  echo half, fork (the child closes its copy and
 *                     exits), echo the rest in the parent
 *       child-new     fork; the child opens its own connection and echoes
 *       inherit-err   echo half, fork; the child's send/recv on the
 *                     inherited socket fail with EOWNERDEAD at once and
 *                     poll reports POLLERR|POLLHUP; the parent echoes on
 * Every wait is bounded (alarm); output: one "OK ..." or "FAIL ..." line.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define GUARD_SECONDS 90
#define CHUNK 4096

static void die(const char *what)
{
    printf("FAIL %s: %s\n", what, strerror(errno));
    fflush(stdout);
    _exit(1);
}

static struct sockaddr_in addr_of(const char *ip, const char *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)) };
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
        printf("FAIL bad IPv4 address \"%s\"\n", ip);
        exit(2);
    }
    return a;
}

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 7 + (i >> 8) * 13 + 5);
}

/* ---- server ---- */

/* Waits until fd is writable (bounded by the process alarm). */
static void wait_out(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    if (poll(&p, 1, 30000) != 1)
        die("server: wait for send space");
}

static void send_all(int fd, const uint8_t *b, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            wait_out(fd);
            continue;
        }
        if (w <= 0)
            die("send");
        b += w;
        n -= (size_t)w;
    }
}

/* Echoes until EOF with one edge-triggered registration. */
static int child_echo(int fd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.fd = fd };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("child: epoll");
    uint8_t buf[CHUNK];
    size_t total = 0;
    for (;;) {
        struct epoll_event got;
        int n = epoll_wait(ep, &got, 1, 30000);
        if (n == 0) {
            printf("FAIL child %d: no event for 30 s after %zu bytes\n", (int)getpid(), total);
            return 1;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("child: epoll_wait");
        for (;;) {                          /* EPOLLET: drain */
            ssize_t r = recv(fd, buf, sizeof(buf), 0);
            if (r == 0) {
                printf("child %d: echoed %zu bytes\n", (int)getpid(), total);
                return 0;
            }
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            if (r < 0)
                die("child: recv");
            send_all(fd, buf, (size_t)r);
            total += (size_t)r;
        }
    }
}

static int run_server(const char *ip, const char *port, int conns, int nofork)
{
    struct sockaddr_in a = addr_of(ip, port);
    int one = 1;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 16) < 0)
        die("server: listen");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = l };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) < 0)
        die("server: epoll");
    printf("listening on %s:%s\n", ip, port);
    fflush(stdout);
    int failed = 0;
    for (int served = 0; served < conns;) {
        struct epoll_event got;
        int n = epoll_wait(ep, &got, 1, 60000);
        if (n == 0) {
            printf("FAIL server: no connection for 60 s\n");
            return 1;
        }
        if (n < 0)
            continue;
        int c = accept4(l, NULL, NULL, SOCK_NONBLOCK);
        if (c < 0)
            continue;
        if (nofork) {
            failed += child_echo(c) != 0;
            close(c);
            served++;
            continue;
        }
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            close(l);
            close(ep);
            int rc = child_echo(c);
            fflush(stdout);
            _exit(rc);
        }
        if (pid < 0)
            die("fork");
        close(c);
        served++;
    }
    for (int i = 0; i < (nofork ? 0 : conns); i++) {
        int st;
        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            failed++;
    }
    printf("%s server: %d connections, %d children failed\n", failed ? "FAIL" : "OK", conns, failed);
    return failed != 0;
}

/* ---- client ---- */

static int connect_to(const struct sockaddr_in *a)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)a, sizeof(*a)) < 0)
        die("connect");
    return fd;
}

/* Sends bytes [from, to) of the pattern and checks their echo. */
static void echo_range(int fd, size_t from, size_t to)
{
    uint8_t out[CHUNK], in[CHUNK];
    for (size_t off = from; off < to;) {
        size_t n = to - off < CHUNK ? to - off : CHUNK;
        for (size_t i = 0; i < n; i++)
            out[i] = pattern(off + i);
        send_all(fd, out, n);
        for (size_t got = 0; got < n;) {
            ssize_t r = recv(fd, in + got, n - got, 0);
            if (r <= 0) {
                if (r < 0 && errno == EINTR)
                    continue;
                printf("FAIL echo at byte %zu: %s\n", off + got, r == 0 ? "EOF" : strerror(errno));
                exit(1);
            }
            got += (size_t)r;
        }
        if (memcmp(in, out, n) != 0) {
            printf("FAIL echo data differs in bytes %zu..%zu\n", off, off + n);
            exit(1);
        }
        off += n;
    }
}

static int child_status(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* In a fork child: the inherited module socket fails fast and clearly. */
static int inherited_fails(int fd)
{
    char b[8] = "x";
    errno = 0;
    ssize_t s = send(fd, b, 1, MSG_NOSIGNAL);
    int se = errno;
    errno = 0;
    ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
    int re = errno;
    struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
    int pr = poll(&p, 1, 5000);
    if (s != -1 || se != EOWNERDEAD || r != -1 || re != EOWNERDEAD || pr != 1 ||
        !(p.revents & (POLLERR | POLLHUP))) {
        printf("FAIL child: send %zd (%s), recv %zd (%s), poll %d revents 0x%x\n", s, strerror(se), r,
               strerror(re), pr, p.revents);
        return 1;
    }
    printf("child: inherited socket: send and recv EOWNERDEAD, poll 0x%x\n", p.revents);
    return 0;
}

static int run_client(const char *ip, const char *port, const char *mode, size_t bytes)
{
    struct sockaddr_in a = addr_of(ip, port);
    int rc = 0;
    if (strcmp(mode, "echo") == 0) {
        int fd = connect_to(&a);
        echo_range(fd, 0, bytes);
        close(fd);
    } else if (strcmp(mode, "parent-keeps") == 0 || strcmp(mode, "inherit-err") == 0) {
        int fd = connect_to(&a);
        echo_range(fd, 0, bytes / 2);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            int crc = mode[0] == 'i' ? inherited_fails(fd) : 0;
            close(fd);
            fflush(stdout);
            _exit(crc);
        }
        if (pid < 0)
            die("fork");
        rc = child_status(pid) != 0;
        echo_range(fd, bytes / 2, bytes);
        close(fd);
    } else if (strcmp(mode, "child-new") == 0) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            int fd = connect_to(&a);
            echo_range(fd, 0, bytes);
            close(fd);
            fflush(stdout);
            _exit(0);
        }
        if (pid < 0)
            die("fork");
        rc = child_status(pid) != 0;
    } else {
        printf("FAIL unknown mode \"%s\"\n", mode);
        return 2;
    }
    printf("%s client %s: %zu bytes\n", rc ? "FAIL" : "OK", mode, bytes);
    return rc;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(GUARD_SECONDS);                   /* nothing here may hang */
    if ((argc == 5 || (argc == 6 && strcmp(argv[5], "nofork") == 0)) && strcmp(argv[1], "server") == 0)
        return run_server(argv[2], argv[3], atoi(argv[4]), argc == 6);
    if (argc == 6 && strcmp(argv[1], "client") == 0)
        return run_client(argv[2], argv[3], argv[4], (size_t)strtoul(argv[5], NULL, 10));
    fprintf(stderr, "usage: fork_probe server IP PORT CONNS [nofork] | client IP PORT MODE BYTES\n");
    return 2;
}
