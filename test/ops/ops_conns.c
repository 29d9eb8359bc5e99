/* ops_conns - opens the connections named on the command line, moves a
 * little data on each (checked), prints "ready", and holds them open until
 * its stdin ends, so that nstack-stat can read their records.
 *
 *   ops_conns tcp:IP:PORT | udp:IP:PORT | fill:N | accept:IP:PORT:N[:close] ...
 *
 * tcp: connect, send 64 bytes, read the 64-byte echo and compare.
 * udp: connect, send 16 bytes (nothing comes back).
 * fill:N: opens /dev/null until the descriptor limit, then closes N of
 * them, so that the next connection runs short of descriptors.
 * accept: listens on IP:PORT (printing "listening PORT"), accepts N
 * connections and never uses them (no data call, no poll); with ":close"
 * each is closed right after accept(). Bounded: SO_RCVTIMEO 20 s.
 * With OPS_FORK=1 it forks once the connections are open: the child
 * (which inherits them) prints "ready" and holds them, the parent waits for
 * it and exits with its status.
 * With OPS_PUMP=1 the TCP connections keep exchanging 64-byte echoes
 * (checked) until stdin ends, so that counters move between samples.
 * With OPS_TOLERATE=1 a TCP connection whose data fails (its line is on
 * stderr) is held all the same (its record is what the test reads).
 * Exit 0; 1 with one line on stderr if a connection or its data fails. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int g_tolerate;   /* OPS_TOLERATE=1 */

static int fill(int keep_free)
{
    int fds[65536], n = 0;
    while (n < 65536 && (fds[n] = open("/dev/null", O_RDONLY)) >= 0)
        n++;
    if (n < keep_free || errno != EMFILE) {
        fprintf(stderr, "ops_conns: fill: %d descriptors, then %s\n", n, strerror(errno));
        return -1;
    }
    for (int i = 0; i < keep_free; i++)
        close(fds[--n]);
    return 0;
}

/* 64 bytes out, the same 64 back; 0 or -1 with one line on stderr. */
static int ping(int fd, unsigned salt, const char *what)
{
    unsigned char out[64], in[64];
    for (size_t i = 0; i < sizeof(out); i++)
        out[i] = (unsigned char)(i * 37 + salt);
    if (send(fd, out, sizeof(out), 0) != (ssize_t)sizeof(out)) {
        fprintf(stderr, "ops_conns: %s: send: %s\n", what, strerror(errno));
        return -1;
    }
    for (size_t got = 0; got < sizeof(in);) {
        ssize_t r = recv(fd, in + got, sizeof(in) - got, 0);
        if (r <= 0) {
            fprintf(stderr, "ops_conns: %s: recv: %s\n", what, r == 0 ? "end of stream" : strerror(errno));
            return -1;
        }
        got += (size_t)r;
    }
    if (memcmp(in, out, sizeof(in)) != 0) {
        fprintf(stderr, "ops_conns: %s: the echo differs\n", what);
        return -1;
    }
    return 0;
}

/* Accepts n connections on ip:port and leaves them unused (or closes
 * them); 0 or -1 with one line on stderr. */
static int accept_n(const char *spec, const char *ip, int port, int n, int close_each)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    struct timeval tv = { .tv_sec = 20 };
    int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || inet_pton(AF_INET, ip, &a.sin_addr) != 1 ||
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 64) < 0) {
        fprintf(stderr, "ops_conns: %s: listen: %s\n", spec, strerror(errno));
        return -1;
    }
    printf("listening %d\n", port);
    fflush(stdout);
    for (int i = 0; i < n; i++) {
        int c = accept(l, NULL, NULL);
        if (c < 0) {
            fprintf(stderr, "ops_conns: %s: accept %d of %d: %s\n", spec, i + 1, n, strerror(errno));
            return -1;
        }
        if (close_each)
            close(c);
    }
    return 0;
}

static int open_one(const char *spec)
{
    int keep;
    if (sscanf(spec, "fill:%d", &keep) == 1)
        return fill(keep) < 0 ? -1 : 0;
    char aip[64], tail[8] = "";
    int aport, an;
    if (sscanf(spec, "accept:%63[^:]:%d:%d:%7s", aip, &aport, &an, tail) >= 3)
        return accept_n(spec, aip, aport, an, strcmp(tail, "close") == 0) < 0 ? -1 : 0;
    char proto[4], ip[64];
    int port;
    if (sscanf(spec, "%3[a-z]:%63[^:]:%d", proto, ip, &port) != 3) {
        fprintf(stderr, "ops_conns: %s: expected tcp:IP:PORT or udp:IP:PORT\n", spec);
        return -1;
    }
    int udp = strcmp(proto, "udp") == 0;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
        fprintf(stderr, "ops_conns: %s: bad address\n", spec);
        return -1;
    }
    int fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        fprintf(stderr, "ops_conns: %s: connect: %s\n", spec, strerror(errno));
        return -1;
    }
    if (udp) {
        unsigned char out[16] = { 0 };
        if (send(fd, out, sizeof(out), 0) != (ssize_t)sizeof(out)) {
            fprintf(stderr, "ops_conns: %s: send: %s\n", spec, strerror(errno));
            return -1;
        }
    } else if (ping(fd, (unsigned)port, spec) < 0 && !g_tolerate) {
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    int tcp[64], n_tcp = 0;
    const char *tol = getenv("OPS_TOLERATE");
    g_tolerate = tol != NULL && strcmp(tol, "1") == 0;
    for (int i = 1; i < argc; i++) {
        int fd = open_one(argv[i]);
        if (fd < 0)
            return 1;
        printf("fd %d %s\n", fd, argv[i]);
        if (strncmp(argv[i], "tcp:", 4) == 0 && n_tcp < 64)
            tcp[n_tcp++] = fd;
    }
    const char *fk = getenv("OPS_FORK");
    if (fk != NULL && strcmp(fk, "1") == 0) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "ops_conns: fork: %s\n", strerror(errno));
            return 1;
        }
        int st;
        if (pid > 0)
            return waitpid(pid, &st, 0) == pid && WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    }
    printf("ready pid %d\n", (int)getpid());
    fflush(stdout);
    const char *pump = getenv("OPS_PUMP");
    int pumping = pump != NULL && strcmp(pump, "1") == 0;
    struct pollfd in = { .fd = 0, .events = POLLIN };
    for (unsigned round = 0; pumping && poll(&in, 1, 10) == 0; round++)
        for (int i = 0; i < n_tcp; i++)
            if (ping(tcp[i], round, "pump") < 0)
                return 1;
    char buf[64];
    while (read(0, buf, sizeof(buf)) > 0)
        ;
    return 0;
}
