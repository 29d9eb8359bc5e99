/*
 * rsfw_cycles.c - connection churn: descriptors and memory stay at baseline.
 *
 *   rsfw_cycles server IP PORT CYCLES BYTES   serve CYCLES connections one
 *                                             after another: echo BYTES,
 *                                             then the client's EOF
 *   rsfw_cycles client IP PORT CYCLES BYTES   CYCLES times: socket, connect,
 *                                             send BYTES of a per-cycle
 *                                             pattern, read the echo back
 *                                             and check it, close
 *
 * Each side notes its open descriptors and resident set after WARMUP
 * cycles (the framework, module and device have made their per-process
 * state by then) and at the end, prints both, and fails when descriptors
 * grew or the resident set grew by more than RSFW_RSS_SLACK_KB (default
 * 20 MB). Under LeakSanitizer (the sanitizer build) the exit also checks
 * that nothing allocated is unreachable. Blocking sockets; every wait is
 * bounded by SO_RCVTIMEO/SO_SNDTIMEO. Exit 0 pass, 1 fail, 2 arguments.
 */
#include "rsfw_io.h"

#include <dirent.h>
#include <malloc.h>
#include <sys/time.h>
#include <unistd.h>

#define WARMUP 200
#define IO_TIMEOUT_S 30

static long fd_count(void)
{
    long n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;                /* the directory's own descriptor */
}

static void set_timeouts(int fd)
{
    struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
        RSFW_FAIL("setsockopt timeouts: %s", strerror(errno));
}

static void send_all(int fd, const uint8_t *p, size_t n, long cycle)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            RSFW_FAIL("cycle %ld: send: %s", cycle, w < 0 ? strerror(errno) : "0");
        p += w;
        n -= (size_t)w;
    }
}

/* Reads exactly n bytes; 0 when EOF came first (after `got` bytes). */
static int recv_all(int fd, uint8_t *p, size_t n, long cycle)
{
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            RSFW_FAIL("cycle %ld: recv: %s", cycle, strerror(errno));
        if (r == 0)
            return 0;
        p += r;
        n -= (size_t)r;
    }
    return 1;
}

struct baseline {
    long fds, rss, heap;
};

static void note(struct baseline *b)
{
    b->fds = fd_count();
    b->rss = rsfw_rss_kb();
    b->heap = (long)(mallinfo2().uordblks / 1024);   /* malloc'd and not freed */
}

/* Compares the end with the baseline; prints and fails on growth. */
static void judge(const char *side, const struct baseline *warm, long cycles)
{
    struct baseline end;
    note(&end);
    const char *env = getenv("RSFW_RSS_SLACK_KB");
    long slack = env ? atol(env) : 20 * 1024;
    printf("%s: %ld cycles: descriptors %ld -> %ld, rss_kb %ld -> %ld, heap_kb %ld -> %ld\n", side,
           cycles, warm->fds, end.fds, warm->rss, end.rss, warm->heap, end.heap);
    fflush(stdout);
    if (end.fds > warm->fds)
        RSFW_FAIL("%s: %ld descriptors after %ld cycles, %ld after %d", side, end.fds, cycles,
                  warm->fds, WARMUP);
    if (end.rss > warm->rss + slack)
        RSFW_FAIL("%s: resident set grew by %ld kB (limit %ld)", side, end.rss - warm->rss, slack);
}

static int run_server(const struct sockaddr_storage *ss, socklen_t sl, long cycles, long bytes)
{
    int l = socket(ss->ss_family, SOCK_STREAM, 0), one = 1;
    if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(l, (const struct sockaddr *)ss, sl) || listen(l, 64))
        RSFW_FAIL("listen: %s", strerror(errno));
    printf("listening\n");
    fflush(stdout);
    uint8_t *buf = malloc((size_t)bytes);
    struct baseline warm = { 0 };
    if (!buf)
        RSFW_FAIL("malloc");
    for (long i = 0; i < cycles; i++) {
        if (i == WARMUP || (i == 0 && cycles <= WARMUP))
            note(&warm);
        int c = accept(l, NULL, NULL);
        if (c < 0)
            RSFW_FAIL("cycle %ld: accept: %s", i, strerror(errno));
        set_timeouts(c);
        if (!recv_all(c, buf, (size_t)bytes, i))
            RSFW_FAIL("cycle %ld: EOF before %ld bytes", i, bytes);
        send_all(c, buf, (size_t)bytes, i);
        uint8_t extra;
        ssize_t r = recv(c, &extra, 1, 0);
        if (r != 0)
            RSFW_FAIL("cycle %ld: after the echo: %zd (%s), expected the client's EOF", i, r,
                      r < 0 ? strerror(errno) : "data");
        close(c);
    }
    close(l);
    free(buf);
    judge("server", &warm, cycles);
    printf("rsfw_cycles server: PASS\n");
    return 0;
}

static int run_client(const struct sockaddr_storage *ss, socklen_t sl, long cycles, long bytes)
{
    uint8_t *out = malloc((size_t)bytes), *in = malloc((size_t)bytes);
    struct baseline warm = { 0 };
    if (!out || !in)
        RSFW_FAIL("malloc");
    int64_t start = rsfw_now_ms();
    for (long i = 0; i < cycles; i++) {
        if (i == WARMUP || (i == 0 && cycles <= WARMUP))
            note(&warm);
        int c = socket(ss->ss_family, SOCK_STREAM, 0);
        if (c < 0)
            RSFW_FAIL("cycle %ld: socket: %s", i, strerror(errno));
        set_timeouts(c);
        if (connect(c, (const struct sockaddr *)ss, sl))
            RSFW_FAIL("cycle %ld: connect: %s", i, strerror(errno));
        rsfw_fill((uint32_t)i, 0, out, (size_t)bytes);
        send_all(c, out, (size_t)bytes, i);
        if (!recv_all(c, in, (size_t)bytes, i))
            RSFW_FAIL("cycle %ld: EOF before the echo", i);
        long bad = rsfw_check((uint32_t)i, 0, in, (size_t)bytes);
        if (bad >= 0)
            RSFW_FAIL("cycle %ld: echo differs at offset %ld", i, bad);
        close(c);
    }
    int64_t ms = rsfw_now_ms() - start;
    free(out);
    free(in);
    printf("client: %ld cycles in %lld ms (%.0f/s)\n", cycles, (long long)ms,
           ms > 0 ? cycles * 1000.0 / (double)ms : 0.0);
    judge("client", &warm, cycles);
    printf("rsfw_cycles client: PASS\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 6 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
        fprintf(stderr, "usage: %s server|client IP PORT CYCLES BYTES\n", argv[0]);
        return 2;
    }
    struct sockaddr_storage ss;
    socklen_t sl = rsfw_addr(argv[2], argv[3], &ss);
    long cycles = rsfw_count("cycle count", argv[4], 10000000);
    long bytes = rsfw_count("byte count", argv[5], 1 << 26);
    return strcmp(argv[1], "server") == 0 ? run_server(&ss, sl, cycles, bytes)
                                          : run_client(&ss, sl, cycles, bytes);
}
