/* semcheck.c - harness for the semantic test programs (see semcheck.h). */
#include "semcheck.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Name of the running case, for failure lines. Written only by the main
 * thread between cases; read by the failure paths of any thread. */
static const char *current_case = "(setup)";

/* Seconds a single case may run before the watchdog fails it. Generous:
 * the machine is shared and loaded. */
#define SEM_CASE_TIMEOUT_S 60

void sem_fail(const char *file, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "FAIL %s: %s:%d: %s\n", current_case, file, line, msg);
    fflush(stderr);
    _exit(1);
}

static void on_watchdog(int sig)
{
    (void)sig;
    /* async-signal-safe: write(2) only */
    static const char pre[] = "FAIL timeout (watchdog) in case ";
    (void)!write(2, pre, sizeof(pre) - 1);
    (void)!write(2, current_case, strlen(current_case));
    (void)!write(2, "\n", 1);
    _exit(1);
}

/* SEM_SKIP: comma-separated cases a mode cannot pass (each named with
 * its reason where the test is registered). */
static int case_skipped(const char *name)
{
    const char *v = getenv("SEM_SKIP");
    size_t n = strlen(name);
    for (const char *p = v; p != NULL && *p != '\0'; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

static int case_selected(int argc, char **argv, const char *name)
{
    if (case_skipped(name)) {
        printf("skip %s (SEM_SKIP)\n", name);
        return 0;
    }
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return 0;
}

int sem_main(int argc, char **argv, const struct sem_case *cases, size_t n)
{
    signal(SIGALRM, on_watchdog);
    /* A peer that closed must show up as EPIPE, not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    size_t ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (!case_selected(argc, argv, cases[i].name))
            continue;
        current_case = cases[i].name;
        alarm(SEM_CASE_TIMEOUT_S);
        cases[i].run();
        alarm(0);
        printf("ok %s\n", cases[i].name);
        fflush(stdout);
        ran++;
    }
    current_case = "(end)";
    if (ran == 0) {
        fprintf(stderr, "FAIL no case matched the command line\n");
        return 2;
    }
    return 0;
}

/* ---- addresses ---------------------------------------------------------- */

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

int sem_have_ipv6(void)
{
    return strcmp(env_or("SEM_ADDR6", "::1"), "none") != 0;
}

socklen_t sem_addr(int family, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        const char *a = env_or("SEM_ADDR6", "::1");
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        CHECK(inet_pton(AF_INET6, a, &s6->sin6_addr) == 1, "SEM_ADDR6=%s is not an IPv6 address", a);
        return sizeof(*s6);
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    const char *a = env_or("SEM_ADDR", "127.0.0.1");
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    CHECK(inet_pton(AF_INET, a, &s4->sin_addr) == 1, "SEM_ADDR=%s is not an IPv4 address", a);
    return sizeof(*s4);
}

uint16_t sem_port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    CHECK_OK(getsockname(fd, (struct sockaddr *)&ss, &len));
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* ---- sockets ------------------------------------------------------------ */

int sem_listener(int family, int type_flags)
{
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(family, 0, &ss);
    int fd = CHECK_OK(socket(family, SOCK_STREAM | type_flags, 0));
    int one = 1;
    CHECK_OK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
    CHECK_OK(bind(fd, (struct sockaddr *)&ss, len));
    CHECK_OK(listen(fd, 64));
    return fd;
}

void sem_tcp_pair(int family, int *cli, int *srv)
{
    int l = sem_listener(family, 0);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(family, sem_port_of(l), &ss);
    *cli = CHECK_OK(socket(family, SOCK_STREAM, 0));
    CHECK_OK(connect(*cli, (struct sockaddr *)&ss, len));
    *srv = CHECK_OK(accept(l, NULL, NULL));
    CHECK_OK(close(l));
}

int sem_udp_bound(int family)
{
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(family, 0, &ss);
    int fd = CHECK_OK(socket(family, SOCK_DGRAM, 0));
    CHECK_OK(bind(fd, (struct sockaddr *)&ss, len));
    return fd;
}

void sem_set_nonblock(int fd, int on)
{
    int fl = CHECK_OK(fcntl(fd, F_GETFL));
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    CHECK_OK(fcntl(fd, F_SETFL, fl));
}

/* ---- time --------------------------------------------------------------- */

int64_t sem_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- data --------------------------------------------------------------- */

static uint8_t pattern_byte(uint32_t seed, size_t off)
{
    uint32_t x = seed * 2654435761u + (uint32_t)off * 40503u + (uint32_t)(off >> 16);
    return (uint8_t)(x ^ (x >> 13));
}

void sem_fill(uint8_t *buf, size_t len, uint32_t seed, size_t off)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern_byte(seed, off + i);
}

size_t sem_verify(const uint8_t *buf, size_t len, uint32_t seed, size_t off)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != pattern_byte(seed, off + i))
            return i;
    return (size_t)-1;
}

void sem_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        CHECK(n > 0, "write(fd %d) failed: %s", fd, n < 0 ? strerror(errno) : "returned 0");
        p += n;
        len -= (size_t)n;
    }
}

void sem_read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        CHECK(n > 0, "read(fd %d) failed: %s", fd, n < 0 ? strerror(errno) : "early EOF");
        p += n;
        len -= (size_t)n;
    }
}

short sem_wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = events };
    int64_t deadline = sem_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - sem_now_ms());
        int r = poll(&p, 1, left > 0 ? left : 0);
        if (r < 0 && errno == EINTR && left > 0)
            continue;
        CHECK(r >= 0, "poll(fd %d) failed: %s", fd, strerror(errno));
        return r ? p.revents : 0;
    }
}

uint64_t sem_digest(uint64_t h, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}
