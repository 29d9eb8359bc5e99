/*
 * rs_engine_test - drives the engine through the rsocket API between two
 * hosts. Every transfer is checked against a position-dependent pattern.
 *   rs_engine_test server ADDR PORT BYTES   accept one connection, verify
 *                                           BYTES in, send BYTES back
 *   rs_engine_test client ADDR PORT BYTES   the other side (nonblocking
 *                                           connect, rpoll, SO_ERROR)
 *   rs_engine_test refused ADDR PORT        connect must fail ECONNREFUSED
 * Exit 0 on success; one line on stderr naming the failed step otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <rdma/rsocket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *step)
{
    fprintf(stderr, "rs_engine_test: %s: %s\n", step, strerror(errno));
    return 1;
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
    return -1;
}

static uint8_t pattern(size_t i, int dir)
{
    return (uint8_t)(i * 131 + (i >> 13) + dir * 7);
}

/* Send `total` bytes as three iovecs per call, to exercise every iovec. */
static int send_pattern(int fd, size_t total, int dir)
{
    static uint8_t buf[3][7001];
    size_t pos = 0;
    while (pos < total) {
        struct iovec iov[3];
        size_t n = 0;
        for (int k = 0; k < 3; k++) {
            size_t len = sizeof(buf[k]) - (size_t)k * 1000;
            if (len > total - pos - n)
                len = total - pos - n;
            for (size_t j = 0; j < len; j++)
                buf[k][j] = pattern(pos + n + j, dir);
            iov[k] = (struct iovec){ buf[k], len };
            n += len;
        }
        ssize_t r = rwritev(fd, iov, 3);
        if (r != (ssize_t)n)
            return -1;
        pos += n;
    }
    return 0;
}

static int recv_pattern(int fd, size_t total, int dir)
{
    static uint8_t a[4096], b[5000];
    size_t pos = 0;
    while (pos < total) {
        struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
        ssize_t r = rrecvmsg(fd, &msg, 0);
        if (r <= 0)
            return -1;
        for (ssize_t j = 0; j < r; j++) {
            uint8_t got = j < (ssize_t)sizeof(a) ? a[j] : b[j - sizeof(a)];
            if (got != pattern(pos + (size_t)j, dir)) {
                errno = EILSEQ;
                return -1;
            }
        }
        pos += (size_t)r;
    }
    return 0;
}

static int run_server(struct sockaddr *sa, socklen_t len, size_t bytes)
{
    int one = 1, ls = rsocket(sa->sa_family, SOCK_STREAM, 0);
    if (ls < 0) return fail("rsocket");
    rsetsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (rbind(ls, sa, len)) return fail("rbind");
    if (rlisten(ls, 8)) return fail("rlisten");
    printf("LISTENING\n");
    fflush(stdout);
    int fd = raccept(ls, NULL, NULL);
    if (fd < 0) return fail("raccept");
    if (recv_pattern(fd, bytes, 0)) return fail("receive client data");
    if (send_pattern(fd, bytes, 1)) return fail("send server data");
    char c;
    if (rrecv(fd, &c, 1, 0) != 0) return fail("expected EOF after client shutdown");
    if (rclose(fd) || rclose(ls)) return fail("rclose");
    printf("SERVER OK\n");
    return 0;
}

static int run_client(struct sockaddr *sa, socklen_t len, size_t bytes)
{
    int err = 0;
    socklen_t elen = sizeof(err);
    int fd = rsocket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return fail("rsocket");
    if (rconnect(fd, sa, len) == 0 || errno != EINPROGRESS) return fail("nonblocking rconnect");
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    if (rpoll(&p, 1, 60000) != 1) return fail("rpoll for connect");
    if (rgetsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) || err) {
        errno = err;
        return fail("SO_ERROR after connect");
    }
    if (rfcntl(fd, F_SETFL, 0)) return fail("rfcntl blocking");
    if (send_pattern(fd, bytes, 0)) return fail("send client data");
    if (recv_pattern(fd, bytes, 1)) return fail("receive server data");
    if (rshutdown(fd, SHUT_WR)) return fail("rshutdown");
    if (rclose(fd)) return fail("rclose");
    printf("CLIENT OK\n");
    return 0;
}

static int run_refused(struct sockaddr *sa, socklen_t len)
{
    int fd = rsocket(sa->sa_family, SOCK_STREAM, 0);
    if (fd < 0) return fail("rsocket");
    if (rconnect(fd, sa, len) == 0 || errno != ECONNREFUSED) return fail("expected ECONNREFUSED");
    rclose(fd);
    printf("REFUSED OK\n");
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (argc < 4 || parse_addr(argv[2], argv[3], &ss, &len)) {
        fprintf(stderr, "usage: rs_engine_test server|client|refused ADDR PORT [BYTES]\n");
        return 2;
    }
    size_t bytes = argc > 4 ? strtoull(argv[4], NULL, 0) : 4u << 20;
    if (!strcmp(argv[1], "server")) return run_server((struct sockaddr *)&ss, len, bytes);
    if (!strcmp(argv[1], "client")) return run_client((struct sockaddr *)&ss, len, bytes);
    if (!strcmp(argv[1], "refused")) return run_refused((struct sockaddr *)&ss, len);
    fprintf(stderr, "rs_engine_test: unknown mode \"%s\"\n", argv[1]);
    return 2;
}
