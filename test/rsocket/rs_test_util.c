/*
 * rs_test_util.c - see rs_test_util.h.
 */
#include "rs_test_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* Set once by tu_module_init() before any thread starts; read-only after. */
const struct nstack_module *M;

/* TU_LOG_ALL=1 in the environment: every level (a failure's reasons) */
static int log_all(void)
{
    static int v = -1;
    if (v < 0)
        v = getenv("TU_LOG_ALL") != NULL;
    return v;
}

static void fw_log(enum nstack_log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;
    if (level < NSTACK_LOG_WAR && !log_all())
        return;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] ", module);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int fw_log_enabled(enum nstack_log_level level)
{
    return level >= NSTACK_LOG_WAR || log_all();
}

static void fw_notify(void *cookie)
{
    (void)cookie;       /* no dispatcher threads to wake in the tests */
}

static const struct nstack_fw_api fw = {
    .abi_version = NSTACK_MODULE_ABI_VERSION,
    .struct_size = sizeof(struct nstack_fw_api),
    .log = fw_log,
    .log_enabled = fw_log_enabled,
    .notify = fw_notify,
    .config_dir = "",
};

int rsocket_stack_register(const struct nstack_fw_api *f, const struct nstack_module **out);

int tu_module_init(void)
{
    if (rsocket_stack_register(&fw, &M))
        return tu_fail("rsocket_stack_register");
    if (M->init && M->init(&fw))
        return tu_fail("module init");
    return 0;
}

int tu_fail(const char *what)
{
    fprintf(stderr, "rs_engine_test: %s: %s\n", what, strerror(errno));
    return -1;
}

int tu_failf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rs_engine_test: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

int tu_parse_addr(const char *ip, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof(*a4);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
        return 0;
    }
    return tu_failf("bad address \"%s\"", ip);
}

void tu_fill(uint8_t *buf, size_t len, uint64_t pos, uint32_t seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = tu_pattern(pos + i, seed);
}

long tu_check(const uint8_t *buf, size_t len, uint64_t pos, uint32_t seed)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != tu_pattern(pos + i, seed))
            return (long)i;
    return -1;
}

int64_t tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint32_t tu_wait_mask(struct tsock *t, uint32_t want, int timeout_ms)
{
    int64_t deadline = tu_now_ms() + timeout_ms;
    for (int rounds = 0; rounds < 1000000; rounds++) {
        uint64_t gen;
        uint32_t m = M->poll_events(t->s, &gen);
        if (m & want)
            return m;
        int64_t left = deadline - tu_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = { .fd = t->fd, .events = POLLIN };
        poll(&p, 1, (int)left);
    }
    return 0;
}

int tu_connect_start(struct tsock *t, const struct sockaddr *sa, socklen_t len)
{
    t->fd = M->socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK, 0, &t->s);
    if (t->fd < 0)
        return tu_fail("socket");
    if (M->connect(t->s, sa, len) == 0 || errno != EINPROGRESS)
        return tu_fail("nonblocking connect did not give EINPROGRESS");
    return 0;
}

int tu_connect_finish(struct tsock *t, int timeout_ms)
{
    int err = -1;
    socklen_t elen = sizeof(err);
    if (!(tu_wait_mask(t, EPOLLOUT, timeout_ms) & EPOLLOUT))
        return tu_failf("connect: not writable within %d ms", timeout_ms);
    if (M->getsockopt(t->s, SOL_SOCKET, SO_ERROR, &err, &elen))
        return tu_fail("getsockopt SO_ERROR");
    if (err) {
        errno = err;
        return tu_fail("connect: SO_ERROR");
    }
    if (M->set_nonblock(t->s, 0))
        return tu_fail("set_nonblock 0");
    return 0;
}

int tu_connect(struct tsock *t, const struct sockaddr *sa, socklen_t len)
{
    if (tu_connect_start(t, sa, len))
        return -1;
    return tu_connect_finish(t, 60000);
}

int tu_send_all(struct tsock *t, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t r = M->send(t->s, p, len, MSG_NOSIGNAL);
        if (r <= 0)
            return r == 0 ? (errno = EIO, -1) : -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

int tu_recv_all(struct tsock *t, void *buf, size_t len)
{
    ssize_t r = M->recv(t->s, buf, len, MSG_WAITALL);
    if (r == (ssize_t)len)
        return 0;
    if (r >= 0)
        errno = r == 0 ? ECONNRESET : EIO;
    return -1;
}

/* Odd iovec sizes, one of them empty, so every iovec is exercised. */
static const size_t iov_sizes[4] = { 1000, 0, 4093, 7 };

static ssize_t send_chunk(struct tsock *t, uint8_t *buf, size_t n, int use_msg)
{
    if (!use_msg)
        return M->send(t->s, buf, n, MSG_NOSIGNAL);
    struct iovec iov[5];
    size_t off = 0;
    int k = 0;
    for (; k < 4 && off < n; k++) {
        size_t l = iov_sizes[k] < n - off ? iov_sizes[k] : n - off;
        iov[k] = (struct iovec){ buf + off, l };
        off += l;
    }
    iov[k++] = (struct iovec){ buf + off, n - off };
    struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)k };
    return M->sendmsg(t->s, &msg, MSG_NOSIGNAL);
}

int tu_send_pattern(struct tsock *t, uint64_t total, uint32_t seed, int vary_forms)
{
    static __thread uint8_t buf[65536 + 333];
    uint64_t pos = 0;
    for (int round = 0; pos < total; round++) {
        size_t n = sizeof(buf) - (size_t)(round % 7) * 9000;
        if (n > total - pos)
            n = (size_t)(total - pos);
        tu_fill(buf, n, pos, seed);
        size_t done = 0;
        while (done < n) {
            ssize_t r = send_chunk(t, buf + done, n - done, vary_forms && (round & 1));
            if (r <= 0)
                return r == 0 ? (errno = EIO, -1) : -1;
            done += (size_t)r;
        }
        pos += n;
    }
    return 0;
}

static ssize_t recv_chunk(struct tsock *t, uint8_t *buf, size_t n, int use_msg)
{
    if (!use_msg)
        return M->recv(t->s, buf, n, 0);
    struct iovec iov[5];
    size_t off = 0;
    int k = 0;
    for (; k < 4 && off < n; k++) {
        size_t l = iov_sizes[3 - k] < n - off ? iov_sizes[3 - k] : n - off;
        iov[k] = (struct iovec){ buf + off, l };
        off += l;
    }
    iov[k++] = (struct iovec){ buf + off, n - off };
    struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)k };
    return M->recvmsg(t->s, &msg, 0);
}

int tu_recv_pattern(struct tsock *t, uint64_t total, uint32_t seed, int vary_forms)
{
    static __thread uint8_t buf[50000];
    uint64_t pos = 0;
    for (int round = 0; pos < total; round++) {
        size_t n = sizeof(buf) - (size_t)(round % 5) * 7000;
        if (n > total - pos)
            n = (size_t)(total - pos);
        ssize_t r = recv_chunk(t, buf, n, vary_forms && (round & 1));
        if (r <= 0) {
            if (r == 0)
                errno = ECONNRESET;
            return -1;
        }
        long bad = tu_check(buf, (size_t)r, pos, seed);
        if (bad >= 0) {
            tu_failf("byte %llu of the stream is wrong",
                     (unsigned long long)(pos + (uint64_t)bad));
            errno = EILSEQ;
            return -1;
        }
        pos += (uint64_t)r;
    }
    return 0;
}

int tu_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3;       /* ".", "..", and the directory's own fd */
}

long tu_rss_kib(void)
{
    long pages = -1, rss = -1;
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = -1;
    fclose(f);
    return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}
