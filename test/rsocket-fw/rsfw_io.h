/*
 * rsfw_io.h - small helpers shared by the rsocket-fw test programs: the
 * data pattern every transfer is checked against, address parsing, a
 * monotonic clock, and one-line failure reporting.
 *
 * The programs never link libnStackAPI.so: the tests run them under
 * LD_PRELOAD with a config that routes their addresses to rsocket.
 */
#ifndef RSFW_IO_H
#define RSFW_IO_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

/* Byte `off` of the stream of connection `conn`: differs between
 * connections and along the stream, so a lost, duplicated, reordered or
 * cross-connection byte is caught at its exact offset. */
static inline uint8_t rsfw_pattern(uint32_t conn, uint64_t off)
{
    uint64_t x = off * 0x9E3779B97F4A7C15ull + conn * 0xBF58476D1CE4E5B9ull;
    return (uint8_t)(x >> 56 ^ x >> 29 ^ off);
}

static inline void rsfw_fill(uint32_t conn, uint64_t off, uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = rsfw_pattern(conn, off + i);
}

/* Index of the first wrong byte, or -1 when all n bytes match. */
static inline long rsfw_check(uint32_t conn, uint64_t off, const uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != rsfw_pattern(conn, off + i))
            return (long)i;
    return -1;
}

static inline int64_t rsfw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define RSFW_FAIL(...) \
    do { fprintf(stderr, "%s: FAIL: ", program_invocation_short_name); \
         fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

/* Numeric IPv4/IPv6 address and port into *ss; exits 2 naming the bad
 * argument. */
static inline socklen_t rsfw_addr(const char *ip, const char *port,
                                  struct sockaddr_storage *ss)
{
    char *end;
    long p = strtol(port, &end, 10);
    memset(ss, 0, sizeof(*ss));
    if (*port == '\0' || *end != '\0' || p < 0 || p > 65535) {
        fprintf(stderr, "%s: bad port \"%s\"\n", program_invocation_short_name, port);
        exit(2);
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)p);
        return sizeof(*s4);
    }
    if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)p);
        return sizeof(*s6);
    }
    fprintf(stderr, "%s: bad address \"%s\" (numeric IPv4 or IPv6)\n",
            program_invocation_short_name, ip);
    exit(2);
}

/* A positive count argument; exits 2 naming it when it is not one. */
static inline long rsfw_count(const char *what, const char *s, long max)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > max) {
        fprintf(stderr, "%s: bad %s \"%s\" (1..%ld)\n", program_invocation_short_name,
                what, s, max);
        exit(2);
    }
    return v;
}

/* epoll_ctl that exits naming the operation when it fails. */
static inline void rsfw_ep_set(int epfd, int op, int fd, uint32_t events, uint32_t tag)
{
    struct epoll_event ev = { .events = events, .data.u32 = tag };
    if (epoll_ctl(epfd, op, fd, &ev))
        RSFW_FAIL("epoll_ctl(op %d, fd %d): %s", op, fd, strerror(errno));
}

/* Waits for events until deadline_ms (in slices of at most 1 s); exits
 * naming `what` after it. Returns the number of events (> 0). */
static inline int rsfw_wait_events(int epfd, int64_t deadline_ms, struct epoll_event *evs,
                                   int max, const char *what)
{
    for (;;) {
        int64_t left = deadline_ms - rsfw_now_ms();
        if (left <= 0)
            RSFW_FAIL("timeout: %s", what);
        int n = epoll_wait(epfd, evs, max, left > 1000 ? 1000 : (int)left);
        if (n > 0)
            return n;
        if (n < 0 && errno != EINTR)
            RSFW_FAIL("epoll_wait: %s", strerror(errno));
    }
}

/* The process's resident set in kB (VmRSS), -1 if unknown. */
static inline long rsfw_rss_kb(void)
{
    char line[128];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "re");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

#endif /* RSFW_IO_H */
