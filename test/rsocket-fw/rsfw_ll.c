/* rsfw_ll.c - one connection under the long-lived policy (ll.sh).
 *
 *   rsfw_ll server ADDR PORT SCENARIO MODE
 *   rsfw_ll client ADDR PORT SCENARIO MODE
 *
 * SCENARIO short: 100 bytes each way, below the policy's threshold.
 *          long:  LL_TOTAL bytes (default 8 MiB) each way at once, in
 *                 writes of varied sizes (write, writev, send), every
 *                 byte checked against a pattern of its stream offset;
 *                 the client then holds (LL_HOLD) and both run the same
 *                 again, ended by shutdown/EOF.
 *          fork:  short, then the client forks and its child runs long
 *                 on the inherited connection (the parent closes it).
 *          edge:  long, at the switch's exact point: the client's first
 *                 write is exactly the threshold (NSTACK_UPGRADE_AFTER; it
 *                 crosses there and marks its stream right behind it), then
 *                 more at once; the server reads the first 2x threshold one
 *                 byte at a time before it writes anything (its count
 *                 reaches the threshold exactly at the client's mark).
 *          inflight: long, where the client crosses on its reads of the
 *                 server's first send (3x threshold in one call) while that
 *                 send is still inside the server's kernel (MODE bl: the
 *                 server's reader thread meets the client's mark then);
 *                 the client writes 1000 bytes, then waits for them.
 *          local (server only): both ends in this one process, one thread:
 *                 writes of 256 KiB on one end, each read on the other
 *                 before the next, 4 MiB each way.
 * MODE nb: nonblocking socket, one epoll loop (level-triggered); et: the
 *          same edge-triggered (every readiness used up to EAGAIN); bl:
 *          blocking socket, a writer thread beside the reading thread.
 * LL_HOLD=PATH (client): after the exchange, create PATH.up and wait for
 * PATH.go (the script looks at the live connection meanwhile).
 * Exit 0 when every byte arrived intact; 1 with one line otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_S 120

static void die(const char *what)
{
    fprintf(stderr, "rsfw_ll[%d]: FAIL: %s: %s\n", (int)getpid(), what, strerror(errno));
    exit(1);
}

static uint8_t pat(int seed, uint64_t off)
{
    return (uint8_t)(((off * 2654435761u) >> 7) + (uint64_t)seed * 31u + off / 251u);
}

static size_t chunk(uint64_t i)
{
    static const size_t sz[] = { 1, 7, 100, 1000, 4096, 65536, 13, 70001, 512, 3, 200000 };
    return sz[i % (sizeof(sz) / sizeof(sz[0]))];
}

static time_t now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec;
}

struct xfer {
    int fd, nb, et;
    uint64_t total, tx, rx, nwrites;
    uint64_t first_write;   /* edge, inflight: the first write's size (0: chunk()) */
    uint64_t rx_bytewise;   /* edge: read this many bytes one at a time */
    uint64_t tx_after;      /* after first_write bytes, write nothing more
                             * before this many were read */
    int tx_seed, rx_seed, shut, eof_ends;
    uint8_t wbuf[200000], rbuf[65536];
};

/* One write of the next chunk (send, write or a 2-piece writev). */
static ssize_t write_some(struct xfer *x)
{
    size_t n = chunk(x->nwrites);
    if (x->tx < x->first_write)
        n = (size_t)(x->first_write - x->tx);
    if (n > sizeof(x->wbuf))
        n = sizeof(x->wbuf);
    if (n > x->total - x->tx)
        n = (size_t)(x->total - x->tx);
    for (size_t i = 0; i < n; i++)
        x->wbuf[i] = pat(x->tx_seed, x->tx + i);
    ssize_t r;
    switch (x->nwrites % 3) {
    case 0: r = send(x->fd, x->wbuf, n, MSG_NOSIGNAL); break;
    case 1: r = write(x->fd, x->wbuf, n); break;
    default: {
        struct iovec v[2] = { { x->wbuf, n / 2 }, { x->wbuf + n / 2, n - n / 2 } };
        r = writev(x->fd, v, 2);
    }
    }
    if (r > 0) {
        x->tx += (uint64_t)r;
        x->nwrites++;
    }
    return r;
}

/* One read, checked byte by byte. 0 at EOF. */
static ssize_t read_some(struct xfer *x)
{
    size_t want = sizeof(x->rbuf);
    if (!x->eof_ends && x->total - x->rx < want)
        want = (size_t)(x->total - x->rx);     /* the next phase's bytes are not ours */
    if (x->rx < x->rx_bytewise)
        want = 1;
    ssize_t r = recv(x->fd, x->rbuf, want, 0);
    for (ssize_t i = 0; i < r; i++)
        if (x->rbuf[i] != pat(x->rx_seed, x->rx + (uint64_t)i)) {
            fprintf(stderr, "rsfw_ll[%d]: FAIL: byte %llu of the peer's stream is 0x%02x, expected 0x%02x\n",
                    (int)getpid(), (unsigned long long)(x->rx + (uint64_t)i), x->rbuf[i],
                    pat(x->rx_seed, x->rx + (uint64_t)i));
            exit(1);
        }
    if (r > 0)
        __atomic_store_n(&x->rx, x->rx + (uint64_t)r, __ATOMIC_RELEASE);   /* edge: the writer waits for it */
    return r;
}

static void finish_rx(struct xfer *x, ssize_t r)
{
    if (r == 0 && x->rx != x->total) {
        fprintf(stderr, "rsfw_ll[%d]: FAIL: EOF after %llu of %llu bytes\n", (int)getpid(),
                (unsigned long long)x->rx, (unsigned long long)x->total);
        exit(1);
    }
}

static int may_write(struct xfer *x)
{
    return x->tx < x->first_write || __atomic_load_n(&x->rx, __ATOMIC_ACQUIRE) >= x->tx_after;
}

static void run_epoll(struct xfer *x)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    uint32_t et = x->et ? EPOLLET : 0;
    int turns = x->et ? 1 << 30 : 16;    /* edge-triggered: until EAGAIN */
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | et, .data.fd = x->fd };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, x->fd, &ev) < 0)
        die("epoll");
    int eof = 0;
    time_t end = now_s() + DEADLINE_S;
    while (x->eof_ends ? !(eof && x->shut) : (x->tx < x->total || x->rx < x->total)) {
        if (now_s() > end) {
            fprintf(stderr, "rsfw_ll: FAIL: no progress: tx %llu rx %llu of %llu\n",
                    (unsigned long long)x->tx, (unsigned long long)x->rx, (unsigned long long)x->total);
            exit(1);
        }
        struct epoll_event got[4];
        int n = epoll_wait(ep, got, 4, 1000);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            if ((got[i].events & EPOLLOUT) && !x->shut && may_write(x)) {
                for (int k = 0; k < turns && x->tx < x->total; k++)
                    if (write_some(x) < 0) {
                        if (errno != EAGAIN)
                            die("write");
                        break;
                    }
                if (x->tx == x->total) {
                    if (x->eof_ends && shutdown(x->fd, SHUT_WR) < 0)
                        die("shutdown");
                    x->shut = 1;
                    ev.events = EPOLLIN | et;
                    if (epoll_ctl(ep, EPOLL_CTL_MOD, x->fd, &ev) < 0)
                        die("epoll_ctl MOD");
                }
            }
            if (got[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                for (int k = 0; k < turns && !eof && (x->eof_ends || x->rx < x->total); k++) {
                    ssize_t r = read_some(x);
                    if (r < 0 && errno == EAGAIN)
                        break;
                    if (r < 0)
                        die("read");
                    finish_rx(x, r);
                    eof = r == 0;
                }
            }
        }
    }
    close(ep);
}

static void *writer(void *arg)
{
    struct xfer *x = arg;
    time_t end = now_s() + DEADLINE_S;
    while (!may_write(x) && now_s() < end) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);           /* edge: bounded wait for the reader's count */
    }
    while (x->tx < x->total) {
        if (write_some(x) < 0)
            die("write");
        while (!may_write(x) && now_s() < end) {
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);       /* inflight: bounded wait for the reader's count */
        }
    }
    if (x->eof_ends && shutdown(x->fd, SHUT_WR) < 0)
        die("shutdown");
    return NULL;
}

static void run_threads(struct xfer *x)
{
    pthread_t t;
    if (pthread_create(&t, NULL, writer, x))
        die("pthread_create");
    for (ssize_t r = 1; r != 0 && (x->eof_ends || x->rx < x->total);) {
        r = read_some(x);
        if (r < 0)
            die("read");
        finish_rx(x, r);
    }
    pthread_join(t, NULL);
}

static int g_et;    /* MODE et */
static uint64_t g_first_write, g_rx_bytewise, g_tx_after;   /* SCENARIO edge/inflight, first exchange */

static void exchange(int fd, int nb, uint64_t total, int tx_seed, int rx_seed, int eof_ends)
{
    static struct xfer x;
    memset(&x, 0, sizeof(x));
    x.first_write = g_first_write;
    x.rx_bytewise = g_rx_bytewise;
    x.tx_after = g_tx_after;
    g_first_write = g_rx_bytewise = g_tx_after = 0;
    x.et = g_et;
    x.eof_ends = eof_ends;
    x.fd = fd;
    x.nb = nb;
    x.total = total;
    x.tx_seed = tx_seed;
    x.rx_seed = rx_seed;
    if (nb)
        run_epoll(&x);
    else
        run_threads(&x);
}

/* 100 bytes one way, then 100 back, checked; blocking or polled. */
static void ping(int fd, int nb, int client)
{
    uint8_t b[100];
    for (int turn = 0; turn < 2; turn++) {
        int sending = (turn == 0) == client;
        int seed = turn == 0 ? 11 : 12;
        size_t done = 0;
        time_t end = now_s() + DEADLINE_S;
        for (size_t i = 0; i < sizeof(b) && sending; i++)
            b[i] = pat(seed, i);
        while (done < sizeof(b)) {
            ssize_t r = sending ? send(fd, b + done, sizeof(b) - done, MSG_NOSIGNAL)
                                : recv(fd, b + done, sizeof(b) - done, 0);
            if (r == 0)
                die("EOF in the short exchange");
            if (r < 0 && (!nb || errno != EAGAIN))
                die(sending ? "send" : "recv");
            if (r < 0 && now_s() > end)
                die("short exchange timed out");
            if (r < 0) {
                struct timespec ts = { 0, 1000000 };
                nanosleep(&ts, NULL);           /* a bounded poll of a nonblocking socket */
                continue;
            }
            done += (size_t)r;
        }
        for (size_t i = 0; i < sizeof(b) && !sending; i++)
            if (b[i] != pat(seed, i)) {
                errno = EPROTO;
                die("short exchange: wrong byte");
            }
    }
}

/* The server reads before it writes: a framework server answers the
 * client's announcement before its own first byte, and one that sends
 * before the announcement arrived keeps the connection on TCP
 * (doc/rsocket-framework.md). Waits for the first byte, reads nothing. */
static void await_first_byte(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    uint8_t b;
    time_t end = now_s() + DEADLINE_S;
    while (now_s() < end) {
        if (poll(&p, 1, 1000) < 0 && errno != EINTR)
            die("poll");
        ssize_t r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r == 1)
            return;
        if (r == 0 || (r < 0 && errno != EAGAIN))
            die("waiting for the first byte");
    }
    die("no first byte");
}

static void hold(void)
{
    const char *p = getenv("LL_HOLD");
    if (!p)
        return;
    char up[512], go[512];
    snprintf(up, sizeof(up), "%s.up", p);
    snprintf(go, sizeof(go), "%s.go", p);
    FILE *f = fopen(up, "w");
    if (f)
        fclose(f);
    struct stat st;
    time_t end = now_s() + 60;
    while (stat(go, &st) < 0 && now_s() < end) {
        struct timespec ts = { 0, 10000000 };
        nanosleep(&ts, NULL);
    }
}

static int open_conn(int server, const char *addr, int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        die("address");
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        die("socket");
    if (!server) {
        if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            die("connect");
        return s;
    }
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 4) < 0)
        die("bind/listen");
    printf("listening on %s:%d\n", addr, port);
    fflush(stdout);
    int c = accept(s, NULL, NULL);
    if (c < 0)
        die("accept");
    close(s);
    return c;
}

/* Both ends here, one thread: a write on one end, then the read of it on
 * the other, in turns (no end ever waits for a read that only this thread
 * could make after it). */
static int local_pair(const char *addr, int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    socklen_t len = sizeof(sa);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        die("address");
    int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || c < 0 || bind(l, (struct sockaddr *)&sa, len) < 0 || listen(l, 1) < 0 ||
        connect(c, (struct sockaddr *)&sa, len) < 0)
        die("local connect");
    int a = accept(l, NULL, NULL);
    if (a < 0)
        die("accept");
    static uint8_t b[262144];
    for (uint64_t off = 0; off < (4u << 20); off += sizeof(b))
        for (int dir = 0; dir < 2; dir++) {
            int w = dir ? a : c, r = dir ? c : a;
            for (size_t i = 0; i < sizeof(b); i++)
                b[i] = pat(dir + 5, off + i);
            for (size_t done = 0; done < sizeof(b);) {
                ssize_t n = send(w, b + done, sizeof(b) - done, MSG_NOSIGNAL);
                if (n <= 0)
                    die("local send");
                done += (size_t)n;
            }
            for (size_t done = 0; done < sizeof(b);) {
                ssize_t n = recv(r, b + done, sizeof(b) - done, 0);
                if (n <= 0)
                    die("local recv");
                done += (size_t)n;
            }
            for (size_t i = 0; i < sizeof(b); i++)
                if (b[i] != pat(dir + 5, off + i)) {
                    errno = EPROTO;
                    die("local pair: wrong byte");
                }
        }
    close(a);
    close(c);
    close(l);
    printf("PASS local\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: rsfw_ll server|client ADDR PORT short|long|edge|inflight|fork|local nb|et|bl\n");
        return 2;
    }
    g_et = strcmp(argv[5], "et") == 0;
    int server = strcmp(argv[1], "server") == 0, nb = strcmp(argv[5], "nb") == 0 || g_et;
    const char *sc = argv[4];
    uint64_t total = getenv("LL_TOTAL") ? strtoull(getenv("LL_TOTAL"), NULL, 10) : 8u << 20;
    if (strcmp(sc, "local") == 0)
        return local_pair(argv[2], atoi(argv[3]));
    int fd = open_conn(server, argv[2], atoi(argv[3]));
    if (nb && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        die("O_NONBLOCK");
    if (strcmp(sc, "short") == 0 || strcmp(sc, "fork") == 0)
        ping(fd, nb, !server);
    if (strcmp(sc, "fork") == 0 && !server) {
        pid_t c = fork();
        if (c < 0)
            die("fork");
        if (c == 0) {
            exchange(fd, nb, total, 1, 2, 1);
            exit(0);             /* exit(): the dispatcher prints the child's counters */
        }
        close(fd);
        int st = 0;
        if (waitpid(c, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "rsfw_ll: FAIL: the fork child failed (status 0x%x)\n", st);
            return 1;
        }
        printf("PASS fork\n");
        return 0;
    }
    if (strcmp(sc, "fork") == 0)
        exchange(fd, nb, total, 2, 1, 1);
    const char *lim_s = getenv("NSTACK_UPGRADE_AFTER");
    uint64_t lim = lim_s ? strtoull(lim_s, NULL, 10) : 65536;
    if (strcmp(sc, "edge") == 0) {
        if (server)
            g_rx_bytewise = g_tx_after = 2 * lim;
        else
            g_first_write = lim;
        sc = "long";
    }
    if (strcmp(sc, "inflight") == 0) {
        /* the client crosses by reading the server's one big send while
         * that send is still inside the server's kernel */
        g_first_write = server ? 3 * lim : 1000;
        g_tx_after = server ? 0 : 3 * lim;
        sc = "long";
        /* small buffers: the big send stays in the kernel until the
         * client read most of it */
        int sz = 16384;
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)) < 0)
            die("SO_SNDBUF/SO_RCVBUF");
    }
    if (strcmp(sc, "long") == 0) {
        if (server)
            await_first_byte(fd);
        exchange(fd, nb, total, server ? 2 : 1, server ? 1 : 2, 0);
        if (!server)
            hold();
        exchange(fd, nb, total, server ? 4 : 3, server ? 3 : 4, 1);
    } else if (!server) {
        hold();
    }
    close(fd);
    printf("PASS %s\n", sc);
    return 0;
}
