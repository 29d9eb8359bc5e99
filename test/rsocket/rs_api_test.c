/*
 * rs_api_test - protocol cases through the standard rsocket API, run with
 * LD_PRELOAD=libdmm_rsocket.so over the software RDMA device (as rstream
 * and riostream are). Every case exits 0 on success and prints one line
 * naming the failed step otherwise.
 *
 *   rs_api_test iomap-server ADDR PORT    riomap/riowrite session (server)
 *   rs_api_test iomap-client ADDR PORT    riomap/riowrite session (client)
 *   rs_api_test close-server ADDR PORT N linger|plain
 *                                         accept N connections, close each
 *                                         at once (SO_LINGER {1,0} or not)
 *   rs_api_test eof-client ADDR PORT      a blocking rrecv must return 0; then
 *                                         rsend/rwrite fail ECONNRESET, no SIGPIPE
 *   rs_api_test refuse-server ADDR PORT   listen; any accepted connection
 *                                         is a failure (runs until killed)
 *   rs_api_test connect-expect ADDR PORT ERRNO
 *                                         connect fails with that errno
 *                                         ("0": it succeeds)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <rdma/rsocket.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define MAP_LEN (256 * 1024)
#define STEP_DEADLINE_MS 60000

static int failed(const char *what)
{
    fprintf(stderr, "rs_api_test: %s: %s\n", what, strerror(errno));
    return 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint8_t pattern(size_t i, uint32_t seed)
{
    return (uint8_t)(i * 151 + (i >> 9) + seed * 13);
}

static int parse_addr(const char *ip, const char *port, struct sockaddr_storage *ss,
                      socklen_t *len)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)atoi(port));
        *len = sizeof(*a4);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)atoi(port));
        *len = sizeof(*a6);
        return 0;
    }
    fprintf(stderr, "rs_api_test: bad address \"%s\"\n", ip);
    return -1;
}

/* Every connection gets a bounded receive/send time: no case can hang. */
static int bound_io(int fd)
{
    struct timeval tv = { STEP_DEADLINE_MS / 1000, 0 };
    if (rsetsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
        rsetsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
        return failed("set SO_RCVTIMEO/SO_SNDTIMEO");
    return 0;
}

static int listen_on(const char *ip, const char *port, int iomap_size)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;
    if (parse_addr(ip, port, &ss, &len))
        return -1;
    int fd = rsocket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return failed("rsocket"), -1;
    rsetsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (iomap_size && rsetsockopt(fd, SOL_RDMA, RDMA_IOMAPSIZE, &iomap_size, sizeof(iomap_size)))
        return failed("RDMA_IOMAPSIZE on the listener"), -1;
    if (rbind(fd, (struct sockaddr *)&ss, len) || rlisten(fd, 8))
        return failed("bind/listen"), -1;
    printf("LISTENING\n");
    fflush(stdout);
    return fd;
}

/* raccept, waiting at most STEP_DEADLINE_MS. */
static int accept_one(int lfd)
{
    struct pollfd p = { .fd = lfd, .events = POLLIN };
    if (rpoll(&p, 1, STEP_DEADLINE_MS) != 1)
        return errno = ETIMEDOUT, failed("no connection to accept"), -1;
    int fd = raccept(lfd, NULL, NULL);
    if (fd < 0)
        return failed("raccept"), -1;
    return bound_io(fd) ? -1 : fd;
}

static int connect_to(const char *ip, const char *port, int iomap_size)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (parse_addr(ip, port, &ss, &len))
        return -1;
    int fd = rsocket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return failed("rsocket"), -1;
    if (iomap_size && rsetsockopt(fd, SOL_RDMA, RDMA_IOMAPSIZE, &iomap_size, sizeof(iomap_size)))
        return failed("RDMA_IOMAPSIZE"), -1;
    if (rconnect(fd, (struct sockaddr *)&ss, len))
        return failed("rconnect"), -1;
    return bound_io(fd) ? -1 : fd;
}

/* ---- riomap / riowrite ------------------------------------------------ */

/* riowrite the whole buffer to the peer's offset 0. The peer publishes its
 * mapping only through its own riowrite (neither side sends anything
 * first), so "unmapped offset" (EINVAL) is retried until the deadline. */
static int iowrite_when_mapped(int fd, const uint8_t *buf, size_t len)
{
    int64_t deadline = now_ms() + STEP_DEADLINE_MS;
    size_t done = 0;
    while (done < len) {
        size_t r = riowrite(fd, buf + done, len - done, (off_t)done, 0);
        if (r != (size_t)-1) {
            done += r;
            continue;
        }
        if (errno != EINVAL || now_ms() > deadline)
            return failed(done ? "riowrite" : "riowrite: the peer's mapping never arrived");
        struct pollfd p = { .fd = fd, .events = POLLIN };
        rpoll(&p, 1, 20);       /* lets the engine progress; the deadline bounds it */
    }
    return 0;
}

/* riowrite edge cases after the data exchange; errno is part of the contract. */
static int iowrite_edge_cases(int fd, const uint8_t *out)
{
    errno = 0;
    if (riowrite(fd, out, 64, (off_t)1 << 40, 0) != (size_t)-1 || errno != EINVAL)
        return failed("riowrite to an unmapped offset: want -1/EINVAL");
    /* A write running past the end of the peer's mapping stops there. The
     * bytes are the ones the peer already holds, so its check is unaffected. */
    size_t r = riowrite(fd, out + MAP_LEN - 100, 300, MAP_LEN - 100, 0);
    if (r != 100)
        return fprintf(stderr, "rs_api_test: riowrite past the mapping's end returned %zd, "
                       "want 100\n", (ssize_t)r), 1;
    return 0;
}

/* riounmap / riomap argument cases, once the peer writes no more. */
static int unmap_edge_cases(int fd, uint8_t *in)
{
    errno = 0;
    if (riounmap(fd, in + 1, MAP_LEN) != -1 || errno != EINVAL)
        return failed("riounmap of a range never mapped: want -1/EINVAL");
    if (riounmap(fd, in, MAP_LEN))
        return failed("riounmap");
    errno = 0;
    if (riounmap(fd, in, MAP_LEN) != -1 || errno != EINVAL)
        return failed("second riounmap: want -1/EINVAL");
    errno = 0;
    if (riomap(fd, in, MAP_LEN, PROT_READ, 0, 0) != -1 || errno != EINVAL)
        return failed("riomap with PROT_READ: want -1/EINVAL");
    return 0;
}

/* Both sides: map, riowrite only, then a one-byte token each way (RC
 * order: the peer's riowrite landed before its token), verify. */
static int iomap_session(int fd, uint32_t seed_out, uint32_t seed_in)
{
    static uint8_t in[MAP_LEN] __attribute__((aligned(4096)));
    static uint8_t out[MAP_LEN];
    char token = 'W';
    for (size_t i = 0; i < MAP_LEN; i++)
        out[i] = pattern(i, seed_out);
    if (riomap(fd, in, MAP_LEN, PROT_WRITE, 0, 0) != 0)
        return failed("riomap at offset 0");
    if (iowrite_when_mapped(fd, out, MAP_LEN))
        return 1;
    if (rsend(fd, &token, 1, 0) != 1 || rrecv(fd, &token, 1, MSG_WAITALL) != 1)
        return failed("token exchange after riowrite");
    for (size_t i = 0; i < MAP_LEN; i++)
        if (in[i] != pattern(i, seed_in))
            return fprintf(stderr, "rs_api_test: mapped byte %zu is wrong\n", i), 1;
    if (iowrite_edge_cases(fd, out))
        return 1;
    /* the peer writes no more into `in` after its token */
    if (rsend(fd, &token, 1, 0) != 1 || rrecv(fd, &token, 1, MSG_WAITALL) != 1)
        return failed("token exchange after the edge cases");
    if (unmap_edge_cases(fd, in))
        return 1;
    printf("IOMAP OK\n");
    return rclose(fd) ? failed("rclose") : 0;
}

static int iomap_unconnected(void)
{
    static uint8_t buf[4096];
    int fd = rsocket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return failed("rsocket");
    errno = 0;
    if (riomap(fd, buf, sizeof(buf), PROT_WRITE, 0, 0) != -1 || errno != EINVAL)
        return failed("riomap before connect: want -1/EINVAL");
    return rclose(fd) ? failed("rclose") : 0;
}

static int run_iomap(int server, const char *ip, const char *port)
{
    if (!server && iomap_unconnected())
        return 1;
    int lfd = server ? listen_on(ip, port, 4) : -1;
    if (server && lfd < 0)
        return 1;
    int fd = server ? accept_one(lfd) : connect_to(ip, port, 4);
    if (fd < 0)
        return 1;
    if (server)
        rclose(lfd);
    return iomap_session(fd, server ? 1 : 2, server ? 2 : 1);
}

/* ---- close / EOF ------------------------------------------------------- */

static int run_close_server(const char *ip, const char *port, int n, int linger0)
{
    int lfd = listen_on(ip, port, 0);
    if (lfd < 0)
        return 1;
    for (int i = 0; i < n; i++) {
        int fd = accept_one(lfd);
        struct linger l = { 1, 0 };
        if (fd < 0)
            return 1;
        if (linger0 && rsetsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)))
            return failed("SO_LINGER {1,0}");
        if (rclose(fd))
            return failed("rclose");
    }
    printf("CLOSED %d\n", n);
    return 0;
}

static int run_eof_client(const char *ip, const char *port)
{
    char c;
    int fd = connect_to(ip, port, 0);
    if (fd < 0)
        return 1;
    ssize_t r = rrecv(fd, &c, 1, 0);
    if (r != 0)
        return r < 0 ? failed("rrecv: want 0 (EOF)")
                     : (fprintf(stderr, "rs_api_test: rrecv returned data, want EOF\n"), 1);
    printf("EOF OK\n");
    /* librdmacm: a send on the closed connection fails with ECONNRESET
     * and raises no SIGPIPE (its default action would end this process);
     * the same after a local shutdown */
    for (int i = 0; i < 2; i++) {
        errno = 0;
        r = i ? rwrite(fd, "x", 1) : rsend(fd, "x", 1, 0);
        if (r != -1 || errno != ECONNRESET)
            return fprintf(stderr, "rs_api_test: %s on a closed connection: %zd/%s, want -1/ECONNRESET\n",
                           i ? "rwrite" : "rsend", r, strerror(errno)), 1;
    }
    if (rshutdown(fd, SHUT_WR))
        return failed("rshutdown");
    errno = 0;
    r = rsend(fd, "x", 1, 0);
    if (r != -1 || errno != ECONNRESET)
        return fprintf(stderr, "rs_api_test: rsend after rshutdown: %zd/%s, want -1/ECONNRESET\n",
                       r, strerror(errno)), 1;
    printf("send after close: ECONNRESET, no SIGPIPE\n");
    return rclose(fd) ? failed("rclose") : 0;
}

/* ---- refused connections ---------------------------------------------- */

static int run_refuse_server(const char *ip, const char *port)
{
    int lfd = listen_on(ip, port, 0);
    if (lfd < 0)
        return 1;
    for (int64_t end = now_ms() + 300000; now_ms() < end;) {
        struct pollfd p = { .fd = lfd, .events = POLLIN };
        if (rpoll(&p, 1, 1000) == 1) {
            int fd = raccept(lfd, NULL, NULL);
            if (fd >= 0)
                return fprintf(stderr, "rs_api_test: a connection was accepted\n"), 1;
        }
    }
    return 0;
}

static int run_connect_expect(const char *ip, const char *port, int want)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (parse_addr(ip, port, &ss, &len))
        return 1;
    int fd = rsocket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return failed("rsocket");
    int64_t t0 = now_ms();
    errno = 0;
    int r = rconnect(fd, (struct sockaddr *)&ss, len);
    int err = r ? errno : 0;
    printf("connect: %s after %lld ms\n", err ? strerror(err) : "ok", (long long)(now_ms() - t0));
    rclose(fd);
    if (err != want)
        return fprintf(stderr, "rs_api_test: connect gave \"%s\", want \"%s\"\n",
                       err ? strerror(err) : "success", want ? strerror(want) : "success"), 1;
    return 0;
}

static int errno_by_name(const char *name)
{
    static const struct { const char *name; int value; } known[] = {
        { "0", 0 }, { "ENOTSUP", ENOTSUP }, { "ECONNREFUSED", ECONNREFUSED },
        { "ETIMEDOUT", ETIMEDOUT },
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (!strcmp(name, known[i].name))
            return known[i].value;
    fprintf(stderr, "rs_api_test: unknown errno name \"%s\"\n", name);
    return -1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 4) {
        fprintf(stderr, "usage: rs_api_test MODE ADDR PORT [ARGS] (see the source)\n");
        return 2;
    }
    const char *mode = argv[1], *ip = argv[2], *port = argv[3];
    if (!strcmp(mode, "iomap-server") || !strcmp(mode, "iomap-client"))
        return run_iomap(!strcmp(mode, "iomap-server"), ip, port);
    if (!strcmp(mode, "close-server") && argc == 6)
        return run_close_server(ip, port, atoi(argv[4]), !strcmp(argv[5], "linger"));
    if (!strcmp(mode, "eof-client"))
        return run_eof_client(ip, port);
    if (!strcmp(mode, "refuse-server"))
        return run_refuse_server(ip, port);
    if (!strcmp(mode, "connect-expect") && argc == 5) {
        int want = errno_by_name(argv[4]);
        return want < 0 ? 2 : run_connect_expect(ip, port, want);
    }
    fprintf(stderr, "rs_api_test: unknown mode or arguments \"%s\"\n", mode);
    return 2;
}
