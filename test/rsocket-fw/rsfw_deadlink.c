/* rsfw_deadlink.c - a dead or briefly broken link between the two test
 * hosts (issue 10), seen by a client whose calls block on an established
 * connection, as kernel TCP reports it (deadlink.sh runs it on the kernel
 * route as reference and on the rsocket routes):
 *
 *   rsfw_deadlink server PORT            echo server (host A), wildcard listener
 *   rsfw_deadlink client HOST PORT CASE  host B; $LINK_DOWN / $LINK_UP are
 *                                        shell commands that break / mend the link
 *
 * keepalive     SO_KEEPALIVE with TCP_KEEPIDLE/INTVL/CNT 1/1/2, link down,
 *               a blocked recv: -1/ETIMEDOUT after idle + cnt x intvl = 3 s,
 *               give or take one interval (kernel: ~3 s)
 * keepalive6    the same with TCP_KEEPCNT 6: ETIMEDOUT after 7 s (the RDMA
 *               transport's own retries, 4.3 s with rdma_cm's default,
 *               must not decide first)
 * user_timeout  TCP_USER_TIMEOUT 2000 ms, link down, 300 bytes sent into
 *               it, a blocked recv: -1/ETIMEDOUT after ~2 s (+ 1 s)
 * send_user_timeout  TCP_USER_TIMEOUT 2000 ms, blocking sends of 256 MiB to
 *               a server that reads and discards; the link goes down while
 *               they run: the send it goes down in returns what it took,
 *               the next one -1/ETIMEDOUT, ~2 s after the link went down
 *               (+ 1 s)
 * outage        keepalive 1/1/5, link down, 64 KiB sent into it, 2 s of
 *               silence, link up: the echo comes back intact, a second
 *               round trip too, SO_ERROR 0
 *
 * Prints "detected: CALL R/ERRNO after N ms" for the behaviour table
 * (doc/rsocket-framework.md). Exit 0 = the kernel's behaviour. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define OUTAGE_BYTES 65536

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

#define DIE(...) do { printf("FAIL: " __VA_ARGS__); putchar('\n'); fflush(stdout); exit(1); } while (0)

static void write_all(int fd, const uint8_t *b, size_t n)
{
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            DIE("send: %zd/%s", w, strerrorname_np(errno));
        b += w;
        n -= (size_t)w;
    }
}

static void read_all(int fd, uint8_t *b, size_t n)
{
    while (n) {
        ssize_t r = recv(fd, b, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            DIE("recv: %zd/%s", r, r < 0 ? strerrorname_np(errno) : "EOF");
        b += r;
        n -= (size_t)r;
    }
}

static void pattern(uint8_t *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 9));
}

/* Echoes every connection, one at a time, until killed. */
static int server(int port)
{
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 8))
        DIE("server: listen on port %d: %s", port, strerror(errno));
    printf("listening on %d\n", port);
    fflush(stdout);
    for (int n = 0; n < 64; n++) {
        int c = accept(l, NULL, NULL);
        if (c < 0)
            continue;
        static uint8_t buf[65536];
        ssize_t r;
        int sink = 0;
        /* warm-up byte 's': echoed, then everything is read and dropped */
        while ((r = recv(c, buf, sizeof(buf), 0)) > 0) {
            if (sink)
                continue;
            sink = buf[0] == 's';
            if (send(c, buf, (size_t)r, MSG_NOSIGNAL) != r)
                break;
        }
        printf("server: connection %d ended: %zd/%s\n", n, r, r < 0 ? strerrorname_np(errno) : "EOF");
        fflush(stdout);
        close(c);
    }
    return 0;
}

static int connect_to(const char *host, int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        DIE("bad address %s", host);
    for (int tries = 0; tries < 100; tries++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c >= 0 && connect(c, (struct sockaddr *)&a, sizeof(a)) == 0)
            return c;
        int e = errno;
        close(c);
        if (e != ECONNREFUSED)
            DIE("connect %s:%d: %s", host, port, strerror(e));
        usleep(100000);     /* the listener is not up yet: retried, bounded */
    }
    DIE("connect %s:%d: refused 100 times", host, port);
}

static void set_int(int fd, int level, int name, int v, const char *what)
{
    if (setsockopt(fd, level, name, &v, sizeof(v)))
        DIE("setsockopt %s: %s", what, strerror(errno));
}

static void keepalive(int c, int idle, int intvl, int cnt)
{
    set_int(c, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
    set_int(c, IPPROTO_TCP, TCP_KEEPIDLE, idle, "TCP_KEEPIDLE");
    set_int(c, IPPROTO_TCP, TCP_KEEPINTVL, intvl, "TCP_KEEPINTVL");
    set_int(c, IPPROTO_TCP, TCP_KEEPCNT, cnt, "TCP_KEEPCNT");
}

/* The link commands run in a helper process forked before any socket
 * exists: a fork with an upgraded connection would return it to TCP
 * (doc/fork.md) and the case would no longer test the RDMA path. */
static int helper_req = -1, helper_ack = -1;

static void helper_start(void)
{
    int req[2], ack[2];
    if (pipe(req) || pipe(ack))
        DIE("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        DIE("fork: %s", strerror(errno));
    if (pid == 0) {
        close(req[1]);
        close(ack[0]);
        char cmd;
        while (read(req[0], &cmd, 1) == 1) {
            const char *c = getenv(cmd == 'd' ? "LINK_DOWN" : "LINK_UP");
            long done = c && system(c) == 0 ? now_ms() : -1;   /* when the link changed */
            if (write(ack[1], &done, sizeof(done)) != sizeof(done))
                break;
        }
        _exit(0);
    }
    close(req[0]);
    close(ack[1]);
    helper_req = req[1];
    helper_ack = ack[0];
}

static void ask(const char *var)
{
    char cmd = !strcmp(var, "LINK_DOWN") ? 'd' : 'u';
    if (write(helper_req, &cmd, 1) != 1)
        DIE("helper for $%s gone", var);
}

/* When the helper's command finished (ms). */
static long answer(const char *var)
{
    long done = -1;
    if (read(helper_ack, &done, sizeof(done)) != sizeof(done) || done < 0)
        DIE("$%s (%s) failed", var, getenv(var) ? getenv(var) : "unset");
    return done;
}

static void run(const char *var)
{
    ask(var);
    answer(var);
}

/* A blocked recv on a dead link: -1/ETIMEDOUT within [lo, hi] ms. */
static int expect_timeout(int c, long t0, long lo, long hi)
{
    uint8_t b;
    errno = 0;
    ssize_t r = recv(c, &b, 1, 0);
    int err = errno;
    long took = now_ms() - t0;
    printf("detected: recv %zd/%s after %ld ms (kernel TCP: -1/ETIMEDOUT, %ld..%ld ms)\n", r,
           r < 0 ? strerrorname_np(err) : "-", took, lo, hi);
    if (r != -1 || err != ETIMEDOUT)
        DIE("recv on a dead link returned %zd/%s, not -1/ETIMEDOUT", r,
            r < 0 ? strerrorname_np(err) : "-");
    if (took < lo || took > hi)
        DIE("dead link reported after %ld ms, not within %ld..%ld", took, lo, hi);
    return 0;
}

static int case_keepalive(int c)
{
    keepalive(c, 1, 1, 2);
    run("LINK_DOWN");
    return expect_timeout(c, now_ms(), 2000, 4000);
}

static int case_keepalive6(int c)
{
    keepalive(c, 1, 1, 6);
    run("LINK_DOWN");
    return expect_timeout(c, now_ms(), 6000, 8000);
}

static int case_user_timeout(int c)
{
    set_int(c, IPPROTO_TCP, TCP_USER_TIMEOUT, 2000, "TCP_USER_TIMEOUT");
    run("LINK_DOWN");
    long t0 = now_ms();
    uint8_t out[300];
    pattern(out, sizeof(out), 5);
    write_all(c, out, sizeof(out));
    return expect_timeout(c, t0, 1750, 3000);
}

static int case_send_user_timeout(int c)
{
    enum { BIG = 256 << 20 };
    uint8_t *big = calloc(1, BIG);
    if (!big)
        DIE("no memory");
    set_int(c, IPPROTO_TCP, TCP_USER_TIMEOUT, 2000, "TCP_USER_TIMEOUT");
    ask("LINK_DOWN");           /* goes down while the sends below run */
    /* blocking sends until one fails: the link may go down during the
     * first or (on a slow machine, `ip` taking long) a later one; the one
     * it goes down in returns its partial count, the next fails */
    ssize_t r = 0;
    size_t total = 0;
    int err = 0;
    for (int i = 0; i < 64; i++) {
        r = send(c, big, BIG, MSG_NOSIGNAL);
        err = errno;
        if (r < 0)
            break;
        total += (size_t)r;
    }
    long t_err = now_ms(), t_down = answer("LINK_DOWN"), took = t_err - t_down;
    printf("detected: send %zu bytes then %zd/%s after %ld ms (kernel TCP: -1/ETIMEDOUT, 1750..3000 ms)\n",
           total, r, r < 0 ? strerrorname_np(err) : "-", took);
    free(big);
    if (r != -1 || err != ETIMEDOUT)
        DIE("send on a dead link returned %zd/%s, not -1/ETIMEDOUT", r,
            r < 0 ? strerrorname_np(err) : "-");
    if (took < 1750 || took > 3000)
        DIE("dead link reported after %ld ms, not within 1750..3000", took);
    return 0;
}

static int case_outage(int c)
{
    static uint8_t out[OUTAGE_BYTES], in[OUTAGE_BYTES];
    keepalive(c, 1, 1, 5);
    run("LINK_DOWN");
    pattern(out, sizeof(out), 9);
    write_all(c, out, sizeof(out));
    struct pollfd p = { .fd = c, .events = POLLIN };
    int ev = poll(&p, 1, 2000);
    run("LINK_UP");
    printf("outage: poll during the 2 s outage: %d (revents 0x%x)\n", ev, ev > 0 ? p.revents : 0);
    if (ev > 0 && (p.revents & (POLLERR | POLLHUP)))
        DIE("error event during a 2 s outage: revents 0x%x", p.revents);
    long t0 = now_ms();
    read_all(c, in, sizeof(in));
    if (memcmp(in, out, sizeof(in)))
        DIE("data sent into the outage came back different");
    pattern(out, 1000, 10);
    write_all(c, out, 1000);
    read_all(c, in, 1000);
    if (memcmp(in, out, 1000))
        DIE("data after the outage differs");
    int err = -1;
    socklen_t l = sizeof(err);
    if (getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &l) || err)
        DIE("SO_ERROR after a short outage: %s", strerrorname_np(err));
    printf("detected: nothing; %d bytes echoed intact %ld ms after the link came back\n",
           OUTAGE_BYTES + 1000, now_ms() - t0);
    return 0;
}

static int client(const char *host, int port, const char *what)
{
    helper_start();
    int c = connect_to(host, port);
    uint8_t b = !strcmp(what, "send_user_timeout") ? 's' : 0x5a;   /* 's': the server drops data */
    uint8_t sent = b;
    /* a byte each way first: an anchored connection has upgraded (or
     * stayed on TCP) and the calls below block on the established one */
    write_all(c, &b, 1);
    read_all(c, &b, 1);
    if (b != sent)
        DIE("warm-up byte differs");
    int rc;
    if (!strcmp(what, "keepalive"))
        rc = case_keepalive(c);
    else if (!strcmp(what, "keepalive6"))
        rc = case_keepalive6(c);
    else if (!strcmp(what, "user_timeout"))
        rc = case_user_timeout(c);
    else if (!strcmp(what, "send_user_timeout"))
        rc = case_send_user_timeout(c);
    else if (!strcmp(what, "outage"))
        rc = case_outage(c);
    else
        DIE("unknown case %s", what);
    close(c);
    printf("PASS: %s\n", what);
    return rc;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && !strcmp(argv[1], "server"))
        return server(atoi(argv[2]));
    if (argc == 5 && !strcmp(argv[1], "client"))
        return client(argv[2], atoi(argv[3]), argv[4]);
    fprintf(stderr, "usage: %s server PORT | client HOST PORT keepalive|keepalive6|user_timeout|send_user_timeout|outage\n", argv[0]);
    return 2;
}
