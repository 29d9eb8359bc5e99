/* srv_pattern.h - the checked pattern streams of the fork tests
 * (srv_forkclient.c, srv_forkdown.c): every wait bounded by deadline_ms,
 * every byte checked against rsfw_fill's pattern. Each read waits for
 * POLLIN first, so the readiness of a leftover is checked too. Included by
 * one .c file each (static functions). */
#ifndef SRV_PATTERN_H
#define SRV_PATTERN_H

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../rsocket-fw/rsfw_io.h"

#define CHUNK 65536

static int64_t deadline_ms;

static void wait_for(int fd, short ev, const char *what)
{
    struct pollfd p = { .fd = fd, .events = ev };
    for (;;) {
        int64_t left = deadline_ms - rsfw_now_ms();
        if (left <= 0)
            RSFW_FAIL("timeout: %s", what);
        if (poll(&p, 1, left > 1000 ? 1000 : (int)left) > 0)
            return;
    }
}

static void send_pattern(int fd, uint64_t from, uint64_t to)
{
    uint8_t buf[CHUNK];
    while (from < to) {
        size_t n = to - from < CHUNK ? (size_t)(to - from) : CHUNK;
        rsfw_fill(0, from, buf, n);
        wait_for(fd, POLLOUT, "send");
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0)
            RSFW_FAIL("send at %llu: %s", (unsigned long long)from, strerror(errno));
        from += (uint64_t)w;
    }
}

/* Reads and checks [from, to); with to == 0 reads until EOF. Returns the end. */
static uint64_t recv_pattern(int fd, uint64_t from, uint64_t to, const char *who)
{
    uint8_t buf[CHUNK];
    while (to == 0 || from < to) {
        size_t want = to && to - from < CHUNK ? (size_t)(to - from) : CHUNK;
        wait_for(fd, POLLIN, "recv");
        ssize_t r = recv(fd, buf, want, 0);
        if (r == 0 && to == 0)
            break;
        if (r <= 0)
            RSFW_FAIL("%s: recv at %llu: %s", who, (unsigned long long)from,
                      r ? strerror(errno) : "early EOF");
        long bad = rsfw_check(0, from, buf, (size_t)r);
        if (bad >= 0)
            RSFW_FAIL("%s: wrong byte at offset %llu", who, (unsigned long long)(from + (uint64_t)bad));
        from += (uint64_t)r;
    }
    return from;
}

/* deadline_ms from SRV_TIMEOUT_S (default 60 s). */
__attribute__((unused)) static void srv_deadline(void)
{
    const char *t = getenv("SRV_TIMEOUT_S");
    deadline_ms = rsfw_now_ms() + (t && atol(t) > 0 ? atol(t) : 60) * 1000;
}

/* A blocking TCP connection to ip:port, or the test fails. */
__attribute__((unused)) static int srv_connect(const char *ip, const char *port)
{
    struct sockaddr_storage ss;
    socklen_t len = rsfw_addr(ip, port, &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len))
        RSFW_FAIL("connect %s:%s: %s", ip, port, strerror(errno));
    return fd;
}

/* Our FIN, then the rest of the echo up to `end` and the peer's EOF. */
__attribute__((unused)) static void finish(int fd, uint64_t end)
{
    if (shutdown(fd, SHUT_WR))
        RSFW_FAIL("shutdown: %s", strerror(errno));
    if (recv_pattern(fd, end, 0, "after shutdown") != end)
        RSFW_FAIL("bytes after the end");
    close(fd);
}

/* Until FIONREAD says `n` bytes wait unread (the echo arrived). */
__attribute__((unused)) static void wait_unread(int fd, int n)
{
    int q = 0;
    while (ioctl(fd, FIONREAD, &q) == 0 && q < n) {
        if (rsfw_now_ms() > deadline_ms)
            RSFW_FAIL("timeout: FIONREAD %d of %d", q, n);
        poll(NULL, 0, 2);
    }
    if (q < n)
        RSFW_FAIL("FIONREAD: %s", strerror(errno));
}

#endif
