/* file_udp.c - packet codec and socket helpers of the UDP file pair
 * (file_udp.h). */
#include "file_udp.h"
#include "app_fail.h"
#include "num_parse.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void fu_be64(uint8_t *p, uint64_t v)
{
    be32(p, (uint32_t)(v >> 32));
    be32(p + 4, (uint32_t)v);
}

uint64_t fu_get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

void fu_put(uint8_t *p, const struct fu_hdr *h)
{
    memcpy(p, FU_MAGIC, 4);
    p[4] = h->type;
    p[5] = p[6] = p[7] = 0;
    be32(p + 8, h->seq);
    be32(p + 12, h->aux);
}

bool fu_get(const uint8_t *p, size_t len, struct fu_hdr *h)
{
    if (len < FU_HDR || memcmp(p, FU_MAGIC, 4) != 0)
        return false;
    h->type = p[4];
    h->seq = get32(p + 8);
    h->aux = get32(p + 12);
    return true;
}

int64_t fu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint32_t fu_chunk_arg(const char *text)
{
    long v;
    if (!num_parse_long(text, 1, FU_CHUNK_MAX, &v))
        app_die(APP_EXIT_USAGE, "chunk \"%s\": expected a number in 1..%d", text,
                FU_CHUNK_MAX);
    return (uint32_t)v;
}

/* FU_TEST_DROP=PERCENT (tests only): discard that share of the received
 * datagrams, a lossy link where the test hosts have no netem. */
static bool test_drop(void)
{
    static int percent = -1;
    static unsigned seed;
    if (percent < 0) {
        const char *e = getenv("FU_TEST_DROP");
        percent = e ? atoi(e) : 0;
        seed = (unsigned)getpid();
    }
    return percent > 0 && (int)(rand_r(&seed) % 100) < percent;
}

size_t fu_recv(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    for (int i = 0; i < 100; i++) {          /* EINTR / spurious wake-ups */
        ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
        if (n >= 0 && test_drop())
            continue;
        if (n >= 0)
            return (size_t)n;
        if (errno == ECONNREFUSED)
            continue;                        /* an ICMP of a lost run: retransmission decides */
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            app_fail_result("recv: %s", strerror(errno));
        int r = poll(&p, 1, timeout_ms);
        if (r == 0)
            return 0;
        if (r < 0 && errno != EINTR)
            app_fail_result("poll: %s", strerror(errno));
    }
    return 0;
}

void fu_send(int fd, const void *buf, size_t len)
{
    for (int i = 0; i < 3; i++) {
        ssize_t n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == (ssize_t)len)
            return;
        if (n >= 0)
            app_fail_result("send: %zd of %zu bytes of a datagram", n, len);
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS ||
            errno == ECONNREFUSED)
            return;                          /* a loss: retransmission repairs it */
        if (errno != EINTR)
            app_fail_result("send of a %zu-byte datagram: %s", len, strerror(errno));
    }
}

int file_open_regular(const char *path, uint64_t *length)
{
    int file = open(path, O_RDONLY);
    struct stat st;
    if (file < 0 || fstat(file, &st) != 0)
        app_die(APP_EXIT_USAGE, "file \"%s\": %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        app_die(APP_EXIT_USAGE, "file \"%s\": not a regular file", path);
    *length = (uint64_t)st.st_size;
    return file;
}
