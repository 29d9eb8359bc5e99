/*
 * rsfw_udp_sem.c IP - socket semantics of datagram sockets on the rsocket
 * route (run under the preload on a host that owns IP, an address of the
 * rsocket subnet): three sockets bound to IP, then each case below; prints
 * "ok CASE" per case and "PASS" at the end, or "FAIL: CASE: why" (exit 1).
 * Every wait is bounded (poll with 10 s), every datagram is checked.
 * Also: IPv4 multicast goes out as plain UDP (a kernel group member gets
 * the bare payload), and an inherited socket fails with EOWNERDEAD in a
 * fork child while the parent's keeps working.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *cur = "setup";
static int fam;

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL: %s: ", cur);
    vprintf(fmt, ap);
    printf(" (errno %s)\n", strerror(errno));
    va_end(ap);
    exit(1);
}

#define CHECK(c, ...) do { if (!(c)) fail(__VA_ARGS__); } while (0)

static socklen_t alen(void)
{
    return fam == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static int bound(const char *ip, struct sockaddr_storage *a)
{
    int s = socket(fam, SOCK_DGRAM, 0);
    CHECK(s >= 0, "socket");
    memset(a, 0, sizeof(*a));
    a->ss_family = (sa_family_t)fam;
    if (fam == AF_INET6)
        inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)a)->sin6_addr);
    else
        inet_pton(AF_INET, ip, &((struct sockaddr_in *)a)->sin_addr);
    CHECK(bind(s, (struct sockaddr *)a, alen()) == 0, "bind %s", ip);
    socklen_t l = sizeof(*a);
    CHECK(getsockname(s, (struct sockaddr *)a, &l) == 0, "getsockname");
    CHECK(((struct sockaddr_in *)a)->sin_port != 0, "bound port 0");
    return s;
}

static void wait_in(int s)
{
    struct pollfd p = { .fd = s, .events = POLLIN };
    CHECK(poll(&p, 1, 10000) == 1 && (p.revents & POLLIN), "no datagram within 10 s");
}

static int same(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    return ((const struct sockaddr_in *)a)->sin_port == ((const struct sockaddr_in *)b)->sin_port;
}

/* One datagram a -> b (b's address), received and checked, source too. */
static void xfer(int a, const struct sockaddr_storage *aa, int b,
                 const struct sockaddr_storage *ba, size_t n, char fill)
{
    char out[2100], in[2100];
    memset(out, fill, n);
    CHECK(sendto(a, out, n, 0, (const struct sockaddr *)ba, alen()) == (ssize_t)n, "sendto %zu", n);
    wait_in(b);
    struct sockaddr_storage src;
    socklen_t sl = sizeof(src);
    ssize_t r = recvfrom(b, in, sizeof(in), 0, (struct sockaddr *)&src, &sl);
    CHECK(r == (ssize_t)n && memcmp(in, out, n) == 0, "recvfrom got %zd of %zu", r, n);
    CHECK(sl == alen() && src.ss_family == fam && same(&src, aa), "source address");
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    fam = strchr(argv[1], ':') ? AF_INET6 : AF_INET;
    struct sockaddr_storage xa, ya, za;
    int x = bound(argv[1], &xa), y = bound(argv[1], &ya), z = bound(argv[1], &za);
    size_t max = fam == AF_INET6 ? 2020 : 2032;
    char buf[4096];

    cur = "sendto_recvfrom";      /* both ways, a few sizes, warm-up included */
    for (int i = 0; i < 20; i++) {
        xfer(x, &xa, y, &ya, 1 + (size_t)i * 97, (char)('a' + i));
        xfer(y, &ya, x, &xa, 1 + (size_t)i * 89, (char)('A' + i));
    }
    xfer(x, &xa, y, &ya, max, 'm');
    printf("ok %s\n", cur);

    cur = "emsgsize";
    errno = 0;
    CHECK(sendto(x, buf, max + 1, 0, (struct sockaddr *)&ya, alen()) == -1 && errno == EMSGSIZE,
          "%zu bytes not refused with EMSGSIZE", max + 1);
    printf("ok %s\n", cur);

    cur = "dontwait_empty";
    errno = 0;
    CHECK(recv(y, buf, sizeof(buf), MSG_DONTWAIT) == -1 && (errno == EAGAIN || errno == EWOULDBLOCK),
          "MSG_DONTWAIT on an empty socket");
    printf("ok %s\n", cur);

    cur = "nonblock_empty";
    CHECK(fcntl(y, F_SETFL, fcntl(y, F_GETFL) | O_NONBLOCK) == 0, "O_NONBLOCK");
    errno = 0;
    CHECK(recv(y, buf, sizeof(buf), 0) == -1 && errno == EAGAIN, "nonblocking recv");
    CHECK(fcntl(y, F_SETFL, fcntl(y, F_GETFL) & ~O_NONBLOCK) == 0, "blocking again");
    printf("ok %s\n", cur);

    cur = "fionread_peek_trunc";
    CHECK(sendto(x, "0123456789", 10, 0, (struct sockaddr *)&ya, alen()) == 10, "send 10");
    CHECK(sendto(x, "abc", 3, 0, (struct sockaddr *)&ya, alen()) == 3, "send 3");
    wait_in(y);
    int avail = -1;
    CHECK(ioctl(y, FIONREAD, &avail) == 0 && avail == 10, "FIONREAD %d, expected 10", avail);
    CHECK(recv(y, buf, sizeof(buf), MSG_PEEK) == 10 && memcmp(buf, "0123456789", 10) == 0, "peek");
    struct iovec iov = { buf, 4 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t r = recvmsg(y, &m, 0);
    CHECK(r == 4 && (m.msg_flags & MSG_TRUNC) && memcmp(buf, "0123", 4) == 0,
          "truncated recvmsg %zd flags %#x", r, m.msg_flags);
    wait_in(y);
    r = recv(y, buf, 1, MSG_TRUNC);
    CHECK(r == 3 && buf[0] == 'a', "MSG_TRUNC returns the real length: %zd", r);
    printf("ok %s\n", cur);

    cur = "iovec";
    struct iovec out[3] = { { "he", 2 }, { "ll", 2 }, { "o!", 2 } };
    struct msghdr sm = { .msg_name = &ya, .msg_namelen = alen(), .msg_iov = out, .msg_iovlen = 3 };
    CHECK(sendmsg(x, &sm, 0) == 6, "sendmsg of 3 iovecs");
    wait_in(y);
    char p1[3] = { 0 }, p2[8] = { 0 };
    struct iovec in[2] = { { p1, 3 }, { p2, 8 } };
    struct sockaddr_storage src;
    struct msghdr rm = { .msg_name = &src, .msg_namelen = sizeof(src), .msg_iov = in, .msg_iovlen = 2 };
    CHECK(recvmsg(y, &rm, 0) == 6 && memcmp(p1, "hel", 3) == 0 && memcmp(p2, "lo!", 3) == 0 &&
          same(&src, &xa), "recvmsg into 2 iovecs with source");
    printf("ok %s\n", cur);

    cur = "epoll";
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = y };
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, y, &ev) == 0, "epoll_ctl");
    CHECK(epoll_wait(ep, &ev, 1, 0) == 0, "EPOLLIN on an empty socket");
    CHECK(sendto(x, "e", 1, 0, (struct sockaddr *)&ya, alen()) == 1, "send");
    CHECK(epoll_wait(ep, &ev, 1, 10000) == 1 && (ev.events & EPOLLIN), "no EPOLLIN");
    CHECK(recv(y, buf, sizeof(buf), 0) == 1 && buf[0] == 'e', "recv after epoll");
    CHECK(epoll_wait(ep, &ev, 1, 0) == 0, "EPOLLIN after draining");
    close(ep);
    printf("ok %s\n", cur);

    cur = "connected";            /* z's datagram to x is dropped once x is connected to y */
    CHECK(connect(x, (struct sockaddr *)&ya, alen()) == 0, "connect");
    struct sockaddr_storage pa;
    socklen_t pl = sizeof(pa);
    CHECK(getpeername(x, (struct sockaddr *)&pa, &pl) == 0 && same(&pa, &ya), "getpeername");
    CHECK(sendto(z, "stranger", 8, 0, (struct sockaddr *)&xa, alen()) == 8, "stranger send");
    CHECK(sendto(y, "friend", 6, 0, (struct sockaddr *)&xa, alen()) == 6, "friend send");
    wait_in(x);
    r = recv(x, buf, sizeof(buf), 0);
    CHECK(r == 6 && memcmp(buf, "friend", 6) == 0, "connected socket got %zd bytes: %.*s", r,
          (int)(r > 0 ? r : 0), buf);
    CHECK(send(x, "back", 4, 0) == 4, "send without address on a connected socket");
    wait_in(y);
    CHECK(recv(y, buf, sizeof(buf), 0) == 4 && memcmp(buf, "back", 4) == 0, "reply");
    /* Linux: an explicit address on a connected UDP socket is used */
    CHECK(sendto(x, "other", 5, 0, (struct sockaddr *)&za, alen()) == 5, "sendto another address");
    wait_in(z);
    CHECK(recv(z, buf, sizeof(buf), 0) == 5 && memcmp(buf, "other", 5) == 0, "z got it");
    printf("ok %s\n", cur);

    cur = "unbound_sender";      /* routed by its first destination; its port is real */
    int u = socket(fam, SOCK_DGRAM, 0);
    CHECK(sendto(u, "unbound", 7, 0, (struct sockaddr *)&ya, alen()) == 7, "sendto from unbound");
    wait_in(y);
    struct sockaddr_storage us;
    socklen_t usl = sizeof(us);
    CHECK(recvfrom(y, buf, sizeof(buf), 0, (struct sockaddr *)&us, &usl) == 7 &&
          ((struct sockaddr_in *)&us)->sin_port != 0, "source port of an unbound sender");
    for (int i = 0; i < 5; i++) {  /* answered both ways, through the first contact */
        CHECK(sendto(y, "answer", 6, 0, (struct sockaddr *)&us, usl) == 6, "answer");
        wait_in(u);
        CHECK(recv(u, buf, sizeof(buf), 0) == 6 && memcmp(buf, "answer", 6) == 0, "answer back");
        CHECK(sendto(u, "again", 5, 0, (struct sockaddr *)&ya, alen()) == 5, "again");
        wait_in(y);
        CHECK(recv(y, buf, sizeof(buf), 0) == 5, "again arrived");
    }
    close(u);
    printf("ok %s\n", cur);

    cur = "rcvbuf";
    int v = 65536, got = 0;
    socklen_t gl = sizeof(got);
    int w = socket(fam, SOCK_DGRAM, 0);
    CHECK(setsockopt(w, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) == 0, "SO_RCVBUF");
    CHECK(getsockopt(w, SOL_SOCKET, SO_RCVBUF, &got, &gl) == 0 && got >= v, "SO_RCVBUF reads %d", got);
    v = 4 << 20;                 /* larger than the default ring: it grows */
    CHECK(setsockopt(w, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) == 0, "SO_RCVBUF 4 MiB");
    gl = sizeof(got);
    CHECK(getsockopt(w, SOL_SOCKET, SO_RCVBUF, &got, &gl) == 0 && got >= v, "SO_RCVBUF reads %d", got);
    struct sockaddr_storage wa;
    close(w);
    w = bound(argv[1], &wa);     /* bound: a module socket, the option replayed */
    CHECK(setsockopt(w, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) == 0, "SO_RCVBUF on a bound socket");
    for (int i = 0; i < 1000; i++)   /* 1000 queued datagrams: more than the default 256 slots */
        CHECK(sendto(x, "q", 1, 0, (struct sockaddr *)&wa, alen()) == 1, "burst");
    int queued = 0;
    for (int i = 0; i < 1000; i++) {
        struct pollfd p = { .fd = w, .events = POLLIN };
        if (poll(&p, 1, 2000) != 1 || recv(w, buf, sizeof(buf), 0) != 1)
            break;
        queued++;
    }
    CHECK(queued == 1000, "%d of 1000 queued datagrams arrived with a 4 MiB SO_RCVBUF", queued);
    close(w);
    printf("ok %s\n", cur);

    cur = "multicast_plain";     /* IPv4: a group datagram goes out as plain UDP */
    if (fam == AF_INET) {
        int k = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in ka = { .sin_family = AF_INET, .sin_port = htons(17777) };
        CHECK(bind(k, (struct sockaddr *)&ka, sizeof(ka)) == 0, "kernel receiver bind");
        struct ip_mreq mr;
        inet_pton(AF_INET, "239.1.2.3", &mr.imr_multiaddr);
        mr.imr_interface = ((struct sockaddr_in *)&za)->sin_addr;
        CHECK(setsockopt(k, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) == 0, "join");
        CHECK(setsockopt(z, IPPROTO_IP, IP_MULTICAST_IF, &mr.imr_interface,
                         sizeof(mr.imr_interface)) == 0, "IP_MULTICAST_IF");
        struct sockaddr_in g = { .sin_family = AF_INET, .sin_port = htons(17777),
                                 .sin_addr = mr.imr_multiaddr };
        CHECK(sendto(z, "group", 5, 0, (struct sockaddr *)&g, sizeof(g)) == 5, "send to group");
        wait_in(k);
        CHECK(recv(k, buf, sizeof(buf), 0) == 5 && memcmp(buf, "group", 5) == 0,
              "the group datagram arrived with a header or not at all");
        close(k);
        printf("ok %s\n", cur);
    }

    cur = "fork_child";          /* an inherited datagram rsocket fails at once in a child */
    pid_t pid = fork();
    if (pid == 0) {
        errno = 0;
        ssize_t c = recv(y, buf, sizeof(buf), MSG_DONTWAIT);
        _exit(c == -1 && errno == EOWNERDEAD ? 0 : 3);
    }
    int st;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "child's recv on the inherited socket did not fail with EOWNERDEAD");
    xfer(y, &ya, z, &za, 100, 'f');      /* the parent's sockets still work */
    printf("ok %s\n", cur);

    close(x);
    close(y);
    close(z);
    printf("PASS\n");
    return 0;
}
