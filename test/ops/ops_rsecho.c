/* ops_rsecho - a plain rsockets echo server (the rsocket API, no TCP
 * listener): run with LD_PRELOAD=libdmm_rsocket.so over the software
 * device, so a framework client's TCP connect is refused and it connects
 * on the module directly (framework/src/anchor/anchor_direct.c).
 *
 *   ops_rsecho IP PORT COUNT
 *
 * Prints "listening PORT", then echoes each of COUNT connections, one
 * after the other, until its peer closes. Every wait is bounded (20 s).
 * Exit 0; 1 with one line on stderr on a failure. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <rdma/rsocket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define WAIT_MS 20000

static int wait_in(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int r = rpoll(&p, 1, WAIT_MS);
    if (r == 0)
        errno = ETIMEDOUT;
    return r > 0 ? 0 : -1;
}

/* Echoes until EOF; 0 or -1. */
static int echo(int c)
{
    char buf[4096];
    for (;;) {
        if (wait_in(c) < 0)
            return -1;
        ssize_t n = rrecv(c, buf, sizeof(buf), 0);
        if (n == 0)
            return 0;
        if (n < 0 || rsend(c, buf, (size_t)n, 0) != n)
            return -1;
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: ops_rsecho IP PORT COUNT\n");
        return 1;
    }
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2])) };
    int count = atoi(argv[3]);
    int l = rsocket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || inet_pton(AF_INET, argv[1], &a.sin_addr) != 1 || rbind(l, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        rlisten(l, 16) < 0) {
        fprintf(stderr, "ops_rsecho: listen %s:%s: %s\n", argv[1], argv[2], strerror(errno));
        return 1;
    }
    printf("listening %s\n", argv[2]);
    fflush(stdout);
    for (int i = 0; i < count; i++) {
        int c = wait_in(l) < 0 ? -1 : raccept(l, NULL, NULL);
        if (c < 0 || echo(c) < 0) {
            fprintf(stderr, "ops_rsecho: connection %d: %s\n", i + 1, strerror(errno));
            return 1;
        }
        rclose(c);
    }
    rclose(l);
    return 0;
}
