/* ms_nbconnect.c - a nonblocking connect as event loops make it, for the
 * late connect-fallback test (test/multistack/fallback_late.sh). Runs under
 * LD_PRELOAD=libnStackAPI.so.
 *
 *   ms_nbconnect ok ADDR PORT BYTES HOW       connect must say EINPROGRESS,
 *       then HOW must report the socket writable with no error, SO_ERROR
 *       must be 0, and a BYTES pattern echo must come back intact.
 *   ms_nbconnect refused ADDR PORT HOW        connect must say EINPROGRESS,
 *       then HOW must report the error and SO_ERROR be ECONNREFUSED.
 *
 * HOW: epoll-lt, epoll-et, epoll-dup (a dup made before the connect is
 * the one registered), poll, select, sockopt (only getsockopt(SO_ERROR)
 * and getpeername, no event call). Every wait is bounded. */
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
#include <time.h>
#include <unistd.h>

#include "ms_pattern.h"

#define WATCHDOG_S 120
#define WAIT_ROUNDS 600          /* of 100 ms: 60 s for the connect to settle */

/* What an event call said about the socket. */
enum seen { SEEN_NOTHING, SEEN_WRITABLE, SEEN_ERROR };

static enum seen classify(int writable, int error)
{
    return error ? SEEN_ERROR : writable ? SEEN_WRITABLE : SEEN_NOTHING;
}

static enum seen wait_epoll(int fd, uint32_t flags)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLOUT | flags };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl ADD");
    enum seen s = SEEN_NOTHING;
    for (int i = 0; i < WAIT_ROUNDS && s == SEEN_NOTHING; i++) {
        int n = epoll_wait(ep, &ev, 1, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        if (n == 1)
            s = classify(ev.events & EPOLLOUT, ev.events & (EPOLLERR | EPOLLHUP));
    }
    close(ep);
    return s;
}

static enum seen wait_poll(int fd)
{
    for (int i = 0; i < WAIT_ROUNDS; i++) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int n = poll(&p, 1, 100);
        if (n < 0 && errno != EINTR)
            die("poll");
        if (n == 1)
            return classify(p.revents & POLLOUT, p.revents & (POLLERR | POLLHUP));
    }
    return SEEN_NOTHING;
}

/* select has no error set for sockets: a failed connect shows as writable,
 * so the caller's SO_ERROR check tells the two apart. */
static enum seen wait_select(int fd)
{
    for (int i = 0; i < WAIT_ROUNDS; i++) {
        fd_set w;
        FD_ZERO(&w);
        FD_SET(fd, &w);
        struct timeval tv = { 0, 100000 };
        int n = select(fd + 1, NULL, &w, NULL, &tv);
        if (n < 0 && errno != EINTR)
            die("select");
        if (n == 1 && FD_ISSET(fd, &w))
            return SEEN_WRITABLE;
    }
    return SEEN_NOTHING;
}

static int so_error(int fd)
{
    int v = -1;
    socklen_t l = sizeof(v);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &l) < 0)
        die("getsockopt(SO_ERROR)");
    return v;
}

/* No event call at all: SO_ERROR until it says something, or getpeername
 * until the socket is connected. A pending error is consumed here, so it
 * is handed back through *err. */
static enum seen wait_sockopt(int fd, int *err)
{
    struct timespec tick = { 0, 10 * 1000 * 1000 };
    for (int i = 0; i < WAIT_ROUNDS * 10; i++) {
        struct sockaddr_storage ss;
        socklen_t l = sizeof(ss);
        if ((*err = so_error(fd)) != 0)
            return SEEN_ERROR;
        if (getpeername(fd, (struct sockaddr *)&ss, &l) == 0)
            return SEEN_WRITABLE;
        nanosleep(&tick, NULL);
    }
    return SEEN_NOTHING;
}

/* Waits the connect out with HOW on fd or on wait_fd; *err: SO_ERROR then. */
static enum seen wait_connect(const char *how, int fd, int wait_fd, int *err)
{
    enum seen s;
    *err = -1;
    if (strcmp(how, "epoll-lt") == 0 || strcmp(how, "epoll-dup") == 0)
        s = wait_epoll(wait_fd, 0);
    else if (strcmp(how, "epoll-et") == 0)
        s = wait_epoll(wait_fd, EPOLLET);
    else if (strcmp(how, "poll") == 0)
        s = wait_poll(wait_fd);
    else if (strcmp(how, "select") == 0)
        s = wait_select(wait_fd);
    else if (strcmp(how, "sockopt") == 0)
        return wait_sockopt(fd, err);
    else
        fail("unknown HOW");
    if (s != SEEN_NOTHING)
        *err = so_error(fd);
    return s;
}

/* A nonblocking stream socket whose connect is in progress; *dupfd: a dup
 * made before the connect (for epoll-dup), else fd. */
static int start_connect(const char *addr, const char *port, const char *how, int *dupfd)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((in_port_t)atoi(port)) };
    if (inet_pton(AF_INET, addr, &a.sin_addr) != 1)
        fail("bad address");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    *dupfd = strcmp(how, "epoll-dup") == 0 ? dup(fd) : fd;
    if (*dupfd < 0)
        die("dup");
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno != EINPROGRESS)
        die("a nonblocking connect must answer EINPROGRESS");
    return fd;
}

static int run_ok(int fd, int wfd, const char *how, size_t bytes)
{
    int err;
    enum seen s = wait_connect(how, fd, wfd, &err);
    if (s != SEEN_WRITABLE) {
        fprintf(stderr, "FAIL ms_nbconnect %s: %s (SO_ERROR %s)\n", how,
                s == SEEN_ERROR ? "an error was reported" : "never writable", strerror(err));
        return 1;
    }
    if (err != 0 || so_error(wfd) != 0)
        fail("SO_ERROR must be 0 after the connect completed");
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
        die("fcntl");
    client_exchange(fd, bytes);
    if (wfd != fd && close(wfd) < 0)
        die("close of the dup");
    close(fd);
    printf("ok %s\n", how);
    return 0;
}

static int run_refused(int fd, const char *how)
{
    int err;
    enum seen s = wait_connect(how, fd, fd, &err);
    if (s == SEEN_NOTHING)
        fail("the failed connect was never reported");
    if (err != ECONNREFUSED) {
        fprintf(stderr, "FAIL ms_nbconnect %s: SO_ERROR is %s, not ECONNREFUSED\n", how, strerror(err));
        return 1;
    }
    close(fd);
    printf("ok refused %s\n", how);
    return 0;
}

int main(int argc, char **argv)
{
    alarm(WATCHDOG_S);
    int dupfd;
    if (argc == 6 && strcmp(argv[1], "ok") == 0) {
        int fd = start_connect(argv[2], argv[3], argv[5], &dupfd);
        return run_ok(fd, dupfd, argv[5], (size_t)atol(argv[4]));
    }
    if (argc == 5 && strcmp(argv[1], "refused") == 0) {
        int fd = start_connect(argv[2], argv[3], argv[4], &dupfd);
        return run_refused(fd, argv[4]);
    }
    fprintf(stderr, "usage: ms_nbconnect ok ADDR PORT BYTES HOW | refused ADDR PORT HOW\n");
    return 2;
}
