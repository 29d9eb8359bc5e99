/*
 * rs_dgram_api - datagram rsockets through the standard rsocket API, run
 * with LD_PRELOAD=libdmm_rsocket.so over the software RDMA device:
 *
 *   rs_dgram_api server ADDR PORT N        rbind, then echo N datagrams with
 *                                          rrecvfrom/rsendto; prints "ready"
 *   rs_dgram_api sink ADDR PORT            rbind, print every datagram's payload
 *                                          on a line until one says "END"
 *   rs_dgram_api client ADDR PORT LOCAL N  rbind LOCAL, N round trips of
 *                                          1..2000 bytes with rsendto, waiting
 *                                          with rpoll and reading with
 *                                          rrecvfrom; data and source checked
 *
 * Exit 0 on success, else one line naming the failed step.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <rdma/rsocket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed(const char *what)
{
    fprintf(stderr, "rs_dgram_api: %s: %s\n", what, strerror(errno));
    return 1;
}

static socklen_t addr_of(const char *ip, int port, struct sockaddr_storage *a)
{
    memset(a, 0, sizeof(*a));
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)a;
    struct sockaddr_in *s4 = (struct sockaddr_in *)a;
    if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        return sizeof(*s6);
    }
    inet_pton(AF_INET, ip, &s4->sin_addr);
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    return sizeof(*s4);
}

static int wait_in(int s)
{
    struct pollfd p = { .fd = s, .events = POLLIN };
    return rpoll(&p, 1, 10000) == 1 && (p.revents & POLLIN) ? 0 : -1;
}

/* A datagram rsocket bound to ip:port, announced with "ready"; -1 on failure. */
static int bound_ready(const char *ip, int port)
{
    struct sockaddr_storage a;
    socklen_t l = addr_of(ip, port, &a);
    int s = rsocket(a.ss_family, SOCK_DGRAM, 0);
    if (s < 0 || rbind(s, (struct sockaddr *)&a, l)) {
        failed("rsocket/rbind");
        return -1;
    }
    printf("ready\n");
    fflush(stdout);
    return s;
}

static int server(const char *ip, int port, int n)
{
    int s = bound_ready(ip, port);
    if (s < 0)
        return 1;
    char buf[4096];
    for (int i = 0; i < n; i++) {
        struct sockaddr_storage src;
        socklen_t sl = sizeof(src);
        if (wait_in(s))
            return failed("rpoll (server)");
        ssize_t r = rrecvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&src, &sl);
        if (r <= 0 || rsendto(s, buf, (size_t)r, 0, (struct sockaddr *)&src, sl) != r)
            return failed("rrecvfrom/rsendto");
    }
    rclose(s);
    printf("echoed %d datagrams\n", n);
    return 0;
}

static int sink(const char *ip, int port)
{
    int s = bound_ready(ip, port);
    if (s < 0)
        return 1;
    char buf[4096];
    for (int i = 0; i < 100; i++) {
        if (wait_in(s))
            return failed("rpoll (sink)");
        ssize_t r = rrecv(s, buf, sizeof(buf) - 1, 0);
        if (r < 0)
            return failed("rrecv");
        buf[r] = 0;
        printf("got %zd: %s\n", r, buf);
        fflush(stdout);
        if (strcmp(buf, "END") == 0)
            break;
    }
    rclose(s);
    return 0;
}

static int client(const char *ip, int port, const char *local, int n)
{
    struct sockaddr_storage a, la;
    socklen_t l = addr_of(ip, port, &a), ll = addr_of(local, 0, &la);
    int s = rsocket(a.ss_family, SOCK_DGRAM, 0);
    if (s < 0 || rbind(s, (struct sockaddr *)&la, ll))
        return failed("rsocket/rbind");
    char out[2048], in[4096];
    /* librdmacm crashes on these (doc/rsocket-framework.md): here, errors */
    if (rsend(s, "x", 1, 0) != -1 || errno != EDESTADDRREQ)
        return failed("rsend without a destination did not fail with EDESTADDRREQ");
    socklen_t nolen = 0;
    if (rrecvfrom(s, in, sizeof(in), MSG_DONTWAIT, NULL, &nolen) != -1 || errno != EAGAIN)
        return failed("rrecvfrom with a length but no address on an empty socket");
    for (int i = 0; i < n; i++) {
        size_t len = 1 + (size_t)(i * 131) % 2000;
        for (size_t k = 0; k < len; k++)
            out[k] = (char)(i * 7 + k);
        if (rsendto(s, out, len, 0, (struct sockaddr *)&a, l) != (ssize_t)len)
            return failed("rsendto");
        if (wait_in(s))
            return failed("rpoll (client)");
        struct sockaddr_storage src;
        socklen_t sl = sizeof(src);
        ssize_t r = rrecvfrom(s, in, sizeof(in), 0, (struct sockaddr *)&src, &sl);
        if (r != (ssize_t)len || memcmp(in, out, len) != 0)
            return failed("echo differs");
        if (sl != l || memcmp(&src, &a, l) != 0)
            return failed("source address differs from the server's");
    }
    rclose(s);
    printf("PASS: %d round trips through rsendto/rrecvfrom\n", n);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "server") == 0)
        return server(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc == 4 && strcmp(argv[1], "sink") == 0)
        return sink(argv[2], atoi(argv[3]));
    if (argc == 6 && strcmp(argv[1], "client") == 0)
        return client(argv[2], atoi(argv[3]), argv[4], atoi(argv[5]));
    fprintf(stderr, "usage: rs_dgram_api server ADDR PORT N | client ADDR PORT LOCAL N\n");
    return 2;
}
