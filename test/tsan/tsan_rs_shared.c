/*
 * tsan_rs_shared.c - one rsocket connection used by several threads at once.
 *
 * The engine's thread-safety contract: any thread may call any function on
 * a socket at any time. On one connected pair (loopback, the software RDMA
 * device) four threads stream a pattern both ways at once (a sender and a
 * receiver on each end) while a fifth polls both ends and reads options.
 * Every byte is checked; each direction must deliver exactly TOTAL bytes
 * and then EOF. Before that, CONNECT_ROUNDS nonblocking connects to the
 * same listener are each waited for by two threads polling the connecting
 * socket at once (the one that progresses it changes its state while the
 * other reads it); each must end writable with SO_ERROR 0 and be accepted.
 * With the engine API, two threads close each of those sockets, and one
 * end of the pair at the end, at once. Under ThreadSanitizer a race in the engine fails the run
 * (exit status 66). Bounded: alarm() ends a hung run with a message.
 *
 * Built twice: tsan_rs_shared on the engine's rsocket API (loopback), and
 * tsan_fw_shared (-DVIA_LIBC) on plain libc calls, run under the
 * libnStackAPI.so preload on a namespace host whose address is routed to
 * the rsocket module (tsan_fw_shared.sh): the dispatcher's wrappers then
 * carry the same concurrency. Usage: PROGRAM [IPv4 address, default
 * 127.0.0.1].
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#ifdef VIA_LIBC
#define rsocket socket
#define rbind bind
#define rlisten listen
#define raccept accept
#define rconnect connect
#define rsend send
#define rrecv recv
#define rpoll poll
#define rgetsockopt getsockopt
#define rgetsockname getsockname
#define rshutdown shutdown
#define rclose close
#define rfcntl fcntl
#else
#include <rdma/rsocket.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TOTAL      (4u << 20)   /* bytes per direction */
#define MAX_CHUNK  9000         /* odd sizes cross the engine's ring edges */
#define POLL_ROUNDS 100000
#define RUN_LIMIT_S 240

static int g_failed;            /* set once by any thread (atomic) */
static int g_done;              /* receivers finished: the poller stops */

#define FAIL(...) do { fprintf(stderr, "FAIL tsan_rs_shared: " __VA_ARGS__); \
                       fprintf(stderr, "\n"); __atomic_store_n(&g_failed, 1, __ATOMIC_RELAXED); } while (0)

static unsigned char pattern(unsigned dir, size_t off)
{
    return (unsigned char)(off * 7 + off / 251 + dir * 101);
}

struct stream { int fd; unsigned dir; };

static void *send_stream(void *arg)
{
    const struct stream *st = arg;
    unsigned char buf[MAX_CHUNK];
    size_t off = 0, chunk = 1;
    while (off < TOTAL) {
        size_t n = chunk < TOTAL - off ? chunk : TOTAL - off;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(st->dir, off + i);
        ssize_t w = rsend(st->fd, buf, n, 0);
        if (w <= 0) {
            FAIL("rsend on fd %d at offset %zu: %s", st->fd, off, strerror(errno));
            return NULL;
        }
        off += (size_t)w;
        chunk = chunk * 3 % MAX_CHUNK + 1;
    }
    if (rshutdown(st->fd, SHUT_WR) != 0)
        FAIL("rshutdown(SHUT_WR) on fd %d: %s", st->fd, strerror(errno));
    return NULL;
}

static void *recv_stream(void *arg)
{
    const struct stream *st = arg;
    unsigned char buf[MAX_CHUNK];
    size_t off = 0;
    for (;;) {
        ssize_t r = rrecv(st->fd, buf, sizeof(buf), 0);
        if (r == 0)
            break;
        if (r < 0) {
            FAIL("rrecv on fd %d at offset %zu: %s", st->fd, off, strerror(errno));
            break;
        }
        for (ssize_t i = 0; i < r; i++)
            if (off + (size_t)i >= TOTAL || buf[i] != pattern(st->dir, off + (size_t)i)) {
                FAIL("direction %u: wrong byte at offset %zu", st->dir, off + (size_t)i);
                return NULL;
            }
        off += (size_t)r;
    }
    if (off != TOTAL)
        FAIL("direction %u: %zu bytes before EOF, expected %u", st->dir, off, TOTAL);
    return NULL;
}

/* Readiness and options of both ends while the data moves. */
static void *poll_both(void *arg)
{
    const int *fds = arg;
    for (int i = 0; i < POLL_ROUNDS && !__atomic_load_n(&g_done, __ATOMIC_RELAXED); i++) {
        struct pollfd p[2] = { { fds[0], POLLIN | POLLOUT, 0 }, { fds[1], POLLIN | POLLOUT, 0 } };
        if (rpoll(p, 2, 10) < 0) {
            FAIL("rpoll: %s", strerror(errno));
            return NULL;
        }
        int err = -1;
        socklen_t len = sizeof(err);
        if (rgetsockopt(fds[i & 1], SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            FAIL("SO_ERROR of fd %d: %d (%s)", fds[i & 1], err, strerror(errno));
            return NULL;
        }
    }
    return NULL;
}

static void *connect_to(void *arg)
{
    struct sockaddr_in *sin = arg;
    int fd = rsocket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || rconnect(fd, (struct sockaddr *)sin, sizeof(*sin)) != 0) {
        FAIL("rconnect to port %d: %s", ntohs(sin->sin_port), strerror(errno));
        return (void *)(long)-1;
    }
    return (void *)(long)fd;
}

#ifndef VIA_LIBC
/* Two threads close one fd at once: exactly one succeeds, the other gets
 * EBADF, and the socket is freed once. (Engine API only: through libc,
 * ThreadSanitizer itself flags two close() calls on one fd.) */
static pthread_barrier_t g_close_start;
struct close_try { int fd, ret, err; };

static void *close_at_once(void *arg)
{
    struct close_try *c = arg;
    pthread_barrier_wait(&g_close_start);
    c->ret = rclose(c->fd);
    c->err = errno;
    return NULL;
}

static void close_twice(int fd)
{
    struct close_try c[2] = { { fd, 0, 0 }, { fd, 0, 0 } };
    pthread_t t[2];
    pthread_barrier_init(&g_close_start, NULL, 2);
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, close_at_once, &c[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    int ok = (c[0].ret == 0) + (c[1].ret == 0);
    int ebadf = (c[0].ret < 0 && c[0].err == EBADF) + (c[1].ret < 0 && c[1].err == EBADF);
    if (ok != 1 || ebadf != 1)
        FAIL("two rclose(%d) at once: results %d/%d (errno %d/%d), expected one 0 and one EBADF",
             fd, c[0].ret, c[1].ret, c[0].err, c[1].err);
}
#endif

/* ---- two threads waiting for one nonblocking connect ---------------- */

#define CONNECT_ROUNDS 10
#define CONNECT_POLLS  3000     /* x 10 ms: 30 s per round at most */

static void *wait_writable(void *arg)
{
    int fd = *(const int *)arg;
    for (int i = 0; i < CONNECT_POLLS; i++) {
        struct pollfd p = { fd, POLLOUT, 0 };
        int n = rpoll(&p, 1, 10);
        if (n < 0) {
            FAIL("rpoll of a connecting socket: %s", strerror(errno));
            return NULL;
        }
        if (n == 1 && (p.revents & POLLOUT))
            return NULL;
    }
    FAIL("a nonblocking connect did not become writable in %d polls", CONNECT_POLLS);
    return NULL;
}

static int connect_polled_twice(int lfd, const struct sockaddr_in *sin)
{
    int fd = rsocket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || rfcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
        FAIL("nonblocking socket: %s", strerror(errno));
        return -1;
    }
    if (rconnect(fd, (const struct sockaddr *)sin, sizeof(*sin)) == 0 || errno != EINPROGRESS) {
        FAIL("nonblocking rconnect did not say EINPROGRESS: %s", strerror(errno));
        return -1;
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, wait_writable, &fd);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    int err = -1;
    socklen_t len = sizeof(err);
    if (rgetsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
        FAIL("SO_ERROR after a nonblocking connect: %d", err);
    int afd = raccept(lfd, NULL, NULL);
    if (afd < 0)
        FAIL("raccept after a nonblocking connect: %s", strerror(errno));
    else
        rclose(afd);
#ifdef VIA_LIBC
    rclose(fd);
#else
    close_twice(fd);
#endif
    return __atomic_load_n(&g_failed, __ATOMIC_RELAXED) ? -1 : 0;
}

/* A connected pair: fds[0] the connecting end, fds[1] the accepted end. */
static int make_pair(const char *addr, int fds[2])
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
        FAIL("'%s' is not an IPv4 address", addr);
        return -1;
    }
    socklen_t len = sizeof(sin);
    int lfd = rsocket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || rbind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        rlisten(lfd, 4) != 0 || rgetsockname(lfd, (struct sockaddr *)&sin, &len) != 0) {
        FAIL("listener on %s: %s", addr, strerror(errno));
        return -1;
    }
    pthread_t t;
    void *cfd;
    if (pthread_create(&t, NULL, connect_to, &sin) != 0)
        return -1;
    fds[1] = raccept(lfd, NULL, NULL);
    pthread_join(t, &cfd);
    fds[0] = (int)(long)cfd;
    for (int r = 0; r < CONNECT_ROUNDS && fds[1] >= 0; r++)
        if (connect_polled_twice(lfd, &sin) != 0)
            return -1;
    rclose(lfd);
    if (fds[1] < 0)
        FAIL("raccept: %s", strerror(errno));
    return fds[0] >= 0 && fds[1] >= 0 ? 0 : -1;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL tsan_rs_shared: still running after the time limit (hang)\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(1);
}

int main(int argc, char **argv)
{
    signal(SIGALRM, on_alarm);
    alarm(RUN_LIMIT_S);
    int fds[2];
    if (make_pair(argc > 1 ? argv[1] : "127.0.0.1", fds) != 0)
        return 1;
    struct stream st[4] = { { fds[0], 0 }, { fds[1], 0 }, { fds[1], 1 }, { fds[0], 1 } };
    pthread_t senders[2], receivers[2], poller;
    pthread_create(&poller, NULL, poll_both, fds);
    for (int i = 0; i < 2; i++) {
        pthread_create(&receivers[i], NULL, recv_stream, &st[2 * i + 1]);
        pthread_create(&senders[i], NULL, send_stream, &st[2 * i]);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(senders[i], NULL);
        pthread_join(receivers[i], NULL);
    }
    __atomic_store_n(&g_done, 1, __ATOMIC_RELAXED);
    pthread_join(poller, NULL);
#ifdef VIA_LIBC
    if (rclose(fds[0]) != 0)
        FAIL("rclose: %s", strerror(errno));
#else
    close_twice(fds[0]);
#endif
    if (rclose(fds[1]) != 0)
        FAIL("rclose: %s", strerror(errno));
    if (__atomic_load_n(&g_failed, __ATOMIC_RELAXED))
        return 1;
    printf("PASS tsan_rs_shared (%u bytes each way)\n", TOTAL);
    return 0;
}
