/* ms_peer.c - both ends of the multi-stack listener and connect-fallback
 * tests (test/multistack: multilisten.sh, fallback.sh). Runs under LD_PRELOAD=libnStackAPI.so.
 *
 *   ms_peer server N1 N2 BYTES   wildcard listener (0.0.0.0, port chosen by
 *       the kernel, printed as "port P"): nonblocking accept gives EAGAIN
 *       when nothing is pending; then N1 connections found through epoll,
 *       poll and select (all three must report the listener readable) and
 *       accepted nonblocking; "phase2"; N2 connections accepted blocking.
 *       Every connection: BYTES of pattern checked, echoed back. Prints
 *       "accepted ADDR" per connection and "ok" at the end.
 *   ms_peer client ADDR PORT BYTES      connect, send the pattern, check the echo
 *   ms_peer refused ADDR PORT           connect must fail with ECONNREFUSED
 *
 * Every wait is bounded (alarm watchdog, deadlines on each loop). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ms_pattern.h"

#define WATCHDOG_S 120

/* Serves one accepted connection (made blocking) and checks its local
 * name carries the listener's port whatever stack it came from. */
static void serve(int c, int port, size_t bytes)
{
    struct sockaddr_in peer, local;
    socklen_t pl = sizeof(peer), ll = sizeof(local);
    if (getpeername(c, (struct sockaddr *)&peer, &pl) < 0 || getsockname(c, (struct sockaddr *)&local, &ll) < 0)
        die("names of the accepted socket");
    if (ntohs(local.sin_port) != port)
        fail("accepted socket's local port is not the listener's");
    int fl = fcntl(c, F_GETFL);
    if (fl < 0 || fcntl(c, F_SETFL, fl & ~O_NONBLOCK) < 0)
        die("fcntl on the accepted socket");
    server_exchange(c, bytes);
    char a[INET_ADDRSTRLEN];
    printf("accepted %s\n", inet_ntop(AF_INET, &peer.sin_addr, a, sizeof(a)));
    fflush(stdout);
    close(c);
}

/* poll and select must agree with epoll that the listener is readable. */
static void check_poll_select(int lis)
{
    struct pollfd p = { .fd = lis, .events = POLLIN };
    if (poll(&p, 1, 0) != 1 || !(p.revents & POLLIN))
        fail("poll does not report the pending connection");
    fd_set r;
    FD_ZERO(&r);
    FD_SET(lis, &r);
    struct timeval tv = { 0, 0 };
    if (select(lis + 1, &r, NULL, NULL, &tv) != 1 || !FD_ISSET(lis, &r))
        fail("select does not report the pending connection");
}

/* Phase 1: N connections found through epoll (plus poll and select). */
static void accept_by_events(int lis, int port, int want, size_t bytes)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    /* MS_EXCLUSIVE=1: as nginx with several workers registers it */
    struct epoll_event ev = { .events = EPOLLIN | (getenv("MS_EXCLUSIVE") ? EPOLLEXCLUSIVE : 0) };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lis, &ev) < 0)
        die("epoll on the listener");
    int done = 0;
    for (int round = 0; done < want && round < 600; round++) {   /* ~60 s of 100 ms waits */
        int n = epoll_wait(ep, &ev, 1, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        if (n != 1)
            continue;
        check_poll_select(lis);
        int c = accept4(lis, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            continue;   /* a wake-up that was not a connection */
        if (c < 0)
            die("accept4");
        serve(c, port, bytes);
        done++;
    }
    if (done < want)
        fail("phase 1: not every connection arrived in time");
    close(ep);
}

static int make_listener(int *port)
{
    int lis = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
    socklen_t al = sizeof(a);
    if (lis < 0 || setsockopt(lis, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(lis, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lis, 16) < 0 ||
        getsockname(lis, (struct sockaddr *)&a, &al) < 0)
        die("wildcard listener");
    *port = ntohs(a.sin_port);
    return lis;
}

static int run_server(int n1, int n2, size_t bytes)
{
    int port;
    int lis = make_listener(&port);
    if (accept4(lis, NULL, NULL, 0) >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
        fail("nonblocking accept with nothing pending must fail with EAGAIN");
    printf("port %d\n", port);
    fflush(stdout);
    accept_by_events(lis, port, n1, bytes);
    if (accept4(lis, NULL, NULL, 0) >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
        fail("nonblocking accept after the last connection must fail with EAGAIN");
    int fl = fcntl(lis, F_GETFL);
    if (fl < 0 || !(fl & O_NONBLOCK) || fcntl(lis, F_SETFL, fl & ~O_NONBLOCK) < 0 ||
        (fcntl(lis, F_GETFL) & O_NONBLOCK))
        fail("F_GETFL/F_SETFL O_NONBLOCK on the listener");
    printf("phase2\n");
    fflush(stdout);
    for (int i = 0; i < n2; i++) {
        int c = accept(lis, NULL, NULL);    /* blocking: sleeps until some stack has one */
        if (c < 0)
            die("blocking accept");
        serve(c, port, bytes);
    }
    if (close(lis) < 0)
        die("close of the listener");
    printf("ok\n");
    return 0;
}

static int connect_to(const char *addr, const char *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((in_port_t)atoi(port)) };
    if (inet_pton(AF_INET, addr, &a.sin_addr) != 1)
        fail("bad address");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    alarm(WATCHDOG_S);
    if (argc == 5 && strcmp(argv[1], "server") == 0)
        return run_server(atoi(argv[2]), atoi(argv[3]), (size_t)atol(argv[4]));
    if (argc == 5 && strcmp(argv[1], "client") == 0) {
        int fd = connect_to(argv[2], argv[3]);
        if (fd < 0)
            die("connect");
        client_exchange(fd, (size_t)atol(argv[4]));
        close(fd);
        printf("ok client %s\n", argv[2]);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "refused") == 0) {
        if (connect_to(argv[2], argv[3]) >= 0 || errno != ECONNREFUSED)
            fail("connect should have been refused");
        printf("ok refused %s\n", argv[2]);
        return 0;
    }
    fprintf(stderr, "usage: ms_peer server N1 N2 BYTES | client ADDR PORT BYTES | refused ADDR PORT\n");
    return 2;
}
