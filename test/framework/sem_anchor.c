/* sem_anchor.c - TCP-anchored connections (doc/fork.md) hold kernel TCP
 * semantics: every case is the kernel's behaviour (mode "kernel" proves it)
 * and must stay so when the route anchors the connection to a module
 * (mode preload-shadow; over rsocket: test/rsocket-fw, rsfw_sem). The
 * runner checks the counters that say the connections were anchored and
 * that the plain-peer cases stayed on TCP.
 *
 * "Plain" peers are made with raw system calls, which the preloaded
 * dispatcher never sees: they behave exactly as a program without the
 * framework, so a byte the framework might leak into their stream (the
 * module's hello) would show up in what they read. */
#include "semcheck.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define LONG_MS 10000
#define BIG (256 * 1024)

/* ---- plain peers: raw system calls ----------------------------------------- */

static int raw_socket(int family) { return (int)syscall(SYS_socket, family, SOCK_STREAM, 0); }
static int raw_close(int fd) { return (int)syscall(SYS_close, fd); }
static ssize_t raw_send(int fd, const void *b, size_t n) { return syscall(SYS_sendto, fd, b, n, MSG_NOSIGNAL, NULL, 0); }
static ssize_t raw_recv(int fd, void *b, size_t n, int fl) { return syscall(SYS_recvfrom, fd, b, n, fl, NULL, NULL); }

/* A plain listener on the test address; *port: its port. */
static int raw_listener(uint16_t *port)
{
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, 0, &ss);
    int l = CHECK_OK(raw_socket(AF_INET));
    CHECK_OK(syscall(SYS_bind, l, &ss, len));
    CHECK_OK(syscall(SYS_listen, l, 16));
    len = sizeof(ss);
    CHECK_OK(syscall(SYS_getsockname, l, &ss, &len));
    *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return l;
}

static void raw_read_all(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = raw_recv(fd, (char *)buf + got, len - got, 0);
        CHECK(n > 0, "plain read: %zd (%s) after %zu of %zu bytes", n, n < 0 ? strerror(errno) : "EOF", got, len);
        got += (size_t)n;
    }
}

static void raw_write_all(int fd, const void *buf, size_t len)
{
    size_t put = 0;
    while (put < len) {
        ssize_t n = raw_send(fd, (const char *)buf + put, len - put);
        CHECK(n > 0, "plain write: %s", strerror(errno));
        put += (size_t)n;
    }
}

/* Nothing more in a plain peer's stream (within a short wait). */
static void raw_expect_nothing(int fd)
{
    struct pollfd p = { fd, POLLIN, 0 };
    (void)syscall(SYS_ppoll, &p, 1, &(struct timespec){ 0, 200000000 }, NULL, 8);
    char b;
    ssize_t n = raw_recv(fd, &b, 1, MSG_DONTWAIT);
    CHECK(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
          "the plain peer saw a byte it was not sent: %zd (%#x)", n, n == 1 ? (unsigned char)b : 0);
}

/* ---- data ----------------------------------------------------------------- */

struct writer {
    int fd;
    size_t len;
    uint32_t seed;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    uint8_t *buf = malloc(w->len);
    sem_fill(buf, w->len, w->seed, 0);
    sem_write_all(w->fd, buf, w->len);
    free(buf);
    return NULL;
}

/* len pattern bytes written on `from` (a thread) arrive intact on `to`. */
static void stream_check(int from, int to, size_t len, uint32_t seed)
{
    struct writer w = { from, len, seed };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, writer_main, &w) == 0, "pthread_create");
    uint8_t *buf = malloc(len);
    sem_read_all(to, buf, len);
    pthread_join(t, NULL);
    size_t bad = sem_verify(buf, len, seed, 0);
    CHECK(bad == (size_t)-1, "byte %zu of %zu differs", bad, len);
    free(buf);
}

static void case_data_both_ways(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    stream_check(c, s, BIG, 1);
    stream_check(s, c, BIG, 2);
    /* vectors and recvmsg */
    char a[3] = "abc", b[5] = "defgh", x[8];
    struct iovec iov[2] = { { a, 3 }, { b, 5 } };
    CHECK(writev(c, iov, 2) == 8, "writev");
    sem_read_all(s, x, 8);
    CHECK(memcmp(x, "abcdefgh", 8) == 0, "writev data");
    close(c);
    CHECK(recv(s, x, 1, 0) == 0, "EOF after the peer closed");
    close(s);
}

static void case_socket_identity(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    stream_check(c, s, 4096, 3);          /* used: anchored from here on */
    stream_check(s, c, 4096, 4);
    struct sockaddr_storage a, b;
    socklen_t al = sizeof(a), bl = sizeof(b);
    CHECK_OK(getsockname(c, (struct sockaddr *)&a, &al));
    CHECK_OK(getpeername(s, (struct sockaddr *)&b, &bl));
    CHECK(al == bl && memcmp(&a, &b, al) == 0, "client's name != server's peer name");
    al = sizeof(a), bl = sizeof(b);
    CHECK_OK(getpeername(c, (struct sockaddr *)&a, &al));
    CHECK_OK(getsockname(s, (struct sockaddr *)&b, &bl));
    CHECK(al == bl && memcmp(&a, &b, al) == 0, "client's peer name != server's name");
    struct stat st;
    CHECK_OK(fstat(c, &st));
    const char *direct = getenv("SEM_MODULE_SOCKETS");   /* an app fd that is a module's wait fd */
    CHECK(S_ISSOCK(st.st_mode) || (direct && strcmp(direct, "1") == 0), "fstat: not a socket (%#o)", st.st_mode);
    CHECK(!isatty(s) && (errno == ENOTTY || (direct && strcmp(direct, "1") == 0)), "isatty");
    int v = -1;
    socklen_t vl = sizeof(v);
    CHECK_OK(getsockopt(c, SOL_SOCKET, SO_ERROR, &v, &vl));
    CHECK(v == 0, "SO_ERROR %d", v);
    CHECK_OK(getsockopt(c, SOL_SOCKET, SO_TYPE, &v, &vl));
    CHECK(v == SOCK_STREAM, "SO_TYPE %d", v);
    int one = 1;
    CHECK_OK(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)));
    CHECK_OK(getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, &vl));
    CHECK(v == 1, "TCP_NODELAY reads back %d", v);
    CHECK_OK(setsockopt(s, IPPROTO_TCP, TCP_CORK, &one, sizeof(one)));   /* nginx tcp_nopush */
    CHECK(write(s, "corked", 6) == 6, "write while corked");
    int zero = 0;
    CHECK_OK(setsockopt(s, IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero)));
    char buf[6];
    sem_read_all(c, buf, 6);
    CHECK(memcmp(buf, "corked", 6) == 0, "corked data");
    int fl = CHECK_OK(fcntl(c, F_GETFL));
    CHECK((fl & O_ACCMODE) == O_RDWR && !(fl & O_NONBLOCK), "F_GETFL %#x", fl);
    close(c); close(s);
}

/* ---- readiness -------------------------------------------------------------- */

/* The events epoll reports for fd within ms (0: none), data checked. */
static uint32_t ep_wait_one(int ep, uint64_t tag, int ms)
{
    struct epoll_event e[4];
    int n = epoll_wait(ep, e, 4, ms);
    CHECK(n >= 0 && n <= 1, "epoll_wait: %d (%s)", n, strerror(errno));
    if (n == 0)
        return 0;
    CHECK(e[0].data.u64 == tag, "epoll data %#llx, expected %#llx", (unsigned long long)e[0].data.u64,
          (unsigned long long)tag);
    return e[0].events;
}

/* LT, ET and ONESHOT on fd (peer: the other end), registered in a fresh set. */
static void epoll_modes(int fd, int peer)
{
    static const uint32_t modes[3] = { 0, EPOLLET, EPOLLONESHOT };
    for (int m = 0; m < 3; m++) {
        int ep = CHECK_OK(epoll_create1(EPOLL_CLOEXEC));
        uint64_t tag = 0xab0000 + (uint64_t)m;
        struct epoll_event ev = { .events = EPOLLIN | modes[m], .data.u64 = tag };
        CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
        CHECK(ep_wait_one(ep, tag, 100) == 0, "mode %d: readable with nothing sent", m);
        CHECK(write(peer, "xy", 2) == 2, "peer write");
        CHECK(ep_wait_one(ep, tag, LONG_MS) & EPOLLIN, "mode %d: EPOLLIN not reported", m);
        uint32_t again = ep_wait_one(ep, tag, 100);
        if (modes[m] == 0)
            CHECK(again & EPOLLIN, "LT: not reported again while unread");
        else
            CHECK(again == 0, "mode %d: reported again without a new event (%#x)", m, again);
        if (modes[m] == EPOLLONESHOT) {
            ev.events = EPOLLIN | EPOLLONESHOT;
            CHECK_OK(epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev));
            CHECK(ep_wait_one(ep, tag, LONG_MS) & EPOLLIN, "ONESHOT: not re-armed by MOD");
        }
        char b[2];
        sem_read_all(fd, b, 2);
        CHECK(memcmp(b, "xy", 2) == 0, "data");
        if (modes[m] == 0)
            CHECK(ep_wait_one(ep, tag, 100) == 0, "LT: still reported after the read");
        CHECK_OK(epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL));
        close(ep);
    }
}

static void case_epoll_after_use(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    stream_check(c, s, 4096, 5);          /* anchored by data first */
    epoll_modes(s, c);
    epoll_modes(c, s);
    close(c); close(s);
}

static void case_epoll_first_use(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);        /* epoll_ctl is the first use */
    epoll_modes(s, c);
    close(c); close(s);
}

/* Registered before connect(): the registration follows the socket. */
static void case_epoll_before_connect(void)
{
    int l = sem_listener(AF_INET, 0);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, sem_port_of(l), &ss);
    int c = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    int ep = CHECK_OK(epoll_create1(0));
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = 77 };
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev));
    CHECK_OK(connect(c, (struct sockaddr *)&ss, len));
    int s = CHECK_OK(accept(l, NULL, NULL));
    CHECK(ep_wait_one(ep, 77, 100) == 0, "readable with nothing sent");
    CHECK(write(s, "pre", 3) == 3, "server write");
    CHECK(ep_wait_one(ep, 77, LONG_MS) & EPOLLIN, "EPOLLIN of a registration made before connect");
    CHECK(ep_wait_one(ep, 77, 100) == 0, "ET: reported twice");
    char b[3];
    sem_read_all(c, b, 3);
    CHECK(memcmp(b, "pre", 3) == 0, "data");
    close(ep); close(c); close(s); close(l);
}

static void case_poll_select(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    struct pollfd p = { s, POLLIN | POLLOUT, 0 };
    CHECK(poll(&p, 1, LONG_MS) == 1 && p.revents == POLLOUT, "poll first use: %#x", p.revents);
    CHECK(write(c, "q", 1) == 1, "write");
    p.events = POLLIN;
    CHECK(poll(&p, 1, LONG_MS) == 1 && p.revents == POLLIN, "poll: %#x", p.revents);
    char b;
    CHECK(read(s, &b, 1) == 1 && b == 'q', "read");
    CHECK(poll(&p, 1, 100) == 0, "poll after the read");
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(c, &r);
    FD_SET(c, &w);
    struct timeval tv = { 10, 0 };
    CHECK(select(c + 1, &r, &w, NULL, &tv) == 1 && FD_ISSET(c, &w) && !FD_ISSET(c, &r), "select: writable only");
    CHECK(write(s, "z", 1) == 1, "write");
    FD_ZERO(&r);
    FD_SET(c, &r);
    tv = (struct timeval){ 10, 0 };
    CHECK(select(c + 1, &r, NULL, NULL, &tv) == 1 && FD_ISSET(c, &r), "select: readable");
    CHECK(read(c, &b, 1) == 1 && b == 'z', "read");
    close(c); close(s);
}

/* ---- peers that do not run the framework ------------------------------------- */

static void case_plain_client(void)
{
    int l = sem_listener(AF_INET, 0);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, sem_port_of(l), &ss);
    int pc = CHECK_OK(raw_socket(AF_INET));
    CHECK_OK(syscall(SYS_connect, pc, &ss, len));
    int s = CHECK_OK(accept(l, NULL, NULL));
    uint8_t req[1000], got[1000];
    sem_fill(req, sizeof(req), 7, 0);
    raw_write_all(pc, req, sizeof(req));
    sem_read_all(s, got, sizeof(got));          /* the server learns the peer is plain */
    CHECK(sem_verify(got, sizeof(got), 7, 0) == (size_t)-1, "request corrupted");
    uint8_t resp[BIG];
    sem_fill(resp, sizeof(resp), 8, 0);
    sem_write_all(s, resp, sizeof(resp));
    static uint8_t in[BIG];
    raw_read_all(pc, in, sizeof(in));
    CHECK(sem_verify(in, sizeof(in), 8, 0) == (size_t)-1, "response corrupted (first byte %#x)", in[0]);
    raw_expect_nothing(pc);
    close(s);
    char b;
    CHECK(raw_recv(pc, &b, 1, 0) == 0, "plain client: EOF");
    raw_close(pc);
    close(l);
}

/* A plain client's request found by epoll (edge-triggered) or poll: the
 * framework learns there that the peer is plain, and the app still sees
 * the request once, as on TCP. */
static void plain_client_wait(int use_epoll)
{
    int l = sem_listener(AF_INET, 0);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, sem_port_of(l), &ss);
    int pc = CHECK_OK(raw_socket(AF_INET));
    CHECK_OK(syscall(SYS_connect, pc, &ss, len));
    int s = CHECK_OK(accept(l, NULL, NULL));
    int ep = -1;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = 42 };
    if (use_epoll) {
        ep = CHECK_OK(epoll_create1(0));
        CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev));
        CHECK(ep_wait_one(ep, 42, 100) == 0, "readable before the request");
    }
    raw_write_all(pc, "request", 7);
    if (use_epoll) {
        CHECK(ep_wait_one(ep, 42, LONG_MS) & EPOLLIN, "the request was not reported");
        CHECK(ep_wait_one(ep, 42, 100) == 0, "ET: the request was reported twice");
    } else {
        CHECK(sem_wait_fd(s, POLLIN, LONG_MS) & POLLIN, "poll: the request was not reported");
    }
    char b[7];
    sem_read_all(s, b, 7);
    CHECK(memcmp(b, "request", 7) == 0, "request");
    raw_write_all(pc, "more", 4);
    if (use_epoll)
        CHECK(ep_wait_one(ep, 42, LONG_MS) & EPOLLIN, "new data after the fallback was not reported");
    else
        CHECK(sem_wait_fd(s, POLLIN, LONG_MS) & POLLIN, "poll after the fallback");
    sem_read_all(s, b, 4);
    CHECK(memcmp(b, "more", 4) == 0, "more");
    CHECK(write(s, "reply", 5) == 5, "reply");
    char r[5];
    raw_read_all(pc, r, 5);
    CHECK(memcmp(r, "reply", 5) == 0, "reply data");
    raw_expect_nothing(pc);
    if (ep >= 0)
        close(ep);
    close(s);
    raw_close(pc);
    close(l);
}

static void case_plain_client_epoll(void) { plain_client_wait(1); }
static void case_plain_client_poll(void) { plain_client_wait(0); }

/* One thread's epoll_wait finds a plain client's connection due for its
 * fallback to TCP while another thread closes it (Apache's event MPM: a
 * listener thread waits, workers close). The close is the last reference:
 * the connection must be released once (a second release freed the
 * module socket twice, an abort in glibc). Each round a plain client
 * connects and sends, the server closes at once or after a short spin. */
struct close_race {
    int ep;
    int stop;
};

static void *close_race_waiter(void *arg)
{
    struct close_race *cr = arg;
    struct epoll_event ev[8];
    while (!__atomic_load_n(&cr->stop, __ATOMIC_ACQUIRE))
        CHECK(epoll_wait(cr->ep, ev, 8, 1) >= 0, "epoll_wait: %s", strerror(errno));
    return NULL;
}

static void case_close_during_fallback(void)
{
    int l = sem_listener(AF_INET, 0);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, sem_port_of(l), &ss);
    struct close_race cr = { .ep = CHECK_OK(epoll_create1(EPOLL_CLOEXEC)), .stop = 0 };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, close_race_waiter, &cr) == 0, "pthread_create");
    for (int i = 0; i < 400; i++) {
        int pc = CHECK_OK(raw_socket(AF_INET));
        CHECK_OK(syscall(SYS_connect, pc, &ss, len));
        int s = CHECK_OK(accept(l, NULL, NULL));
        struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.fd = s };
        CHECK_OK(epoll_ctl(cr.ep, EPOLL_CTL_ADD, s, &ev));
        raw_write_all(pc, "request", 7);
        for (volatile int spin = 0; spin < (i % 40) * 500; spin++)
            ;
        CHECK_OK(close(s));
        char b[8];
        ssize_t r = raw_recv(pc, b, sizeof(b), 0);   /* unread request: a reset, as TCP */
        CHECK(r == 0 || (r < 0 && errno == ECONNRESET), "round %d: plain client: %zd (%s)", i, r,
              r < 0 ? strerror(errno) : "data");
        raw_close(pc);
    }
    __atomic_store_n(&cr.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    close(cr.ep);
    close(l);
}

/* The plain server speaks first, or waits for the request (the framework
 * client then learns it is alone when nothing answers its hello). */
static void plain_server(int server_first)
{
    uint16_t port;
    int pl = raw_listener(&port);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, port, &ss);
    int c = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    CHECK_OK(connect(c, (struct sockaddr *)&ss, len));
    int ps = CHECK_OK(syscall(SYS_accept4, pl, NULL, NULL, 0));
    uint8_t banner[300], got[300];
    sem_fill(banner, sizeof(banner), 9, 0);
    if (server_first) {
        raw_write_all(ps, banner, sizeof(banner));
        sem_read_all(c, got, sizeof(got));
        CHECK(sem_verify(got, sizeof(got), 9, 0) == (size_t)-1, "banner corrupted");
    }
    sem_write_all(c, banner, sizeof(banner));
    raw_read_all(ps, got, sizeof(got));
    CHECK(sem_verify(got, sizeof(got), 9, 0) == (size_t)-1, "request corrupted (first byte %#x)", got[0]);
    raw_expect_nothing(ps);
    raw_write_all(ps, "bye", 3);
    char b[3];
    sem_read_all(c, b, 3);
    CHECK(memcmp(b, "bye", 3) == 0, "reply");
    close(c);
    CHECK(raw_recv(ps, b, 1, 0) == 0, "plain server: EOF");
    raw_close(ps);
    raw_close(pl);
}

static void case_plain_server_speaks_first(void) { plain_server(1); }
static void case_plain_server_waits(void) { plain_server(0); }

/* ---- fork ------------------------------------------------------------------ */

/* The child serves the connection the parent accepted and never touched. */
static void case_accept_then_fork(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        close(c);
        uint8_t buf[BIG];
        sem_read_all(s, buf, 1000);
        if (sem_verify(buf, 1000, 11, 0) != (size_t)-1)
            _exit(3);
        sem_fill(buf, sizeof(buf), 12, 0);
        sem_write_all(s, buf, sizeof(buf));
        close(s);
        _exit(0);
    }
    close(s);                                 /* the parent's copy, never used */
    uint8_t req[1000];
    sem_fill(req, sizeof(req), 11, 0);
    sem_write_all(c, req, sizeof(req));
    static uint8_t in[BIG];
    sem_read_all(c, in, sizeof(in));
    CHECK(sem_verify(in, sizeof(in), 12, 0) == (size_t)-1, "child's response corrupted");
    char b;
    CHECK(recv(c, &b, 1, 0) == 0, "EOF after the child closed");
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (%#x)", st);
    close(c);
}

enum { PASS_PASSIVE, PASS_ACTIVE };

#define GREETING 100

/* The helper: serves the connection it gets in SCM_RIGHTS on sp (greet:
 * GREETING bytes out first; then 1000 bytes in, 1000 out, then close). */
static pid_t passed_helper_greeting(int sp[2], int greet)
{
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        close(sp[0]);
        char dummy;
        char ctl[CMSG_SPACE(sizeof(int))];
        struct iovec iov = { &dummy, 1 };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                            .msg_controllen = sizeof(ctl) };
        if (recvmsg(sp[1], &m, 0) != 1 || CMSG_FIRSTHDR(&m) == NULL)
            _exit(2);
        int s;
        memcpy(&s, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int));
        uint8_t buf[1000];
        if (greet) {
            sem_fill(buf, GREETING, 25, 0);
            sem_write_all(s, buf, GREETING);
        }
        sem_read_all(s, buf, sizeof(buf));
        if (sem_verify(buf, sizeof(buf), 21, 0) != (size_t)-1)
            _exit(3);
        sem_fill(buf, sizeof(buf), 22, 0);
        sem_write_all(s, buf, sizeof(buf));
        close(s);
        _exit(0);
    }
    close(sp[1]);
    return pid;
}

static pid_t passed_helper(int sp[2])
{
    return passed_helper_greeting(sp, 0);
}

static void pass_fd(int via, int fd)
{
    char one = 1, ctl[CMSG_SPACE(sizeof(int))];
    memset(ctl, 0, sizeof(ctl));
    struct iovec iov = { &one, 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                        .msg_controllen = sizeof(ctl) };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    CHECK(sendmsg(via, &m, 0) == 1, "sendmsg SCM_RIGHTS: %s", strerror(errno));
}

/* Hands s over on via (closed here, as the other process has it now),
 * then both the client and the helper must exit 0. */
static void pass_and_reap(int via, int s, pid_t cli, pid_t helper)
{
    pass_fd(via, s);
    close(s);
    int st;
    CHECK(waitpid(cli, &st, 0) == cli && WIFEXITED(st) && WEXITSTATUS(st) == 0, "client failed (%#x)", st);
    CHECK(waitpid(helper, &st, 0) == helper && WIFEXITED(st) && WEXITSTATUS(st) == 0, "helper failed (%#x)", st);
    close(via);
}

/* The client side of the helper's exchange on c: 1000 bytes out (the
 * first `sent` went already), 1000 in, then EOF; within 5 s of t0 (the
 * peer of the passed end goes on on TCP at once, not after
 * RS_ANCHOR_TIMEOUT_MS or with ETIMEDOUT). */
static void passed_client(int c, size_t sent, int64_t t0)
{
    uint8_t req[1000], in[1000];
    sem_fill(req, sizeof(req), 21, 0);
    sem_write_all(c, req + sent, sizeof(req) - sent);
    sem_read_all(c, in, sizeof(in));
    CHECK(sem_verify(in, sizeof(in), 22, 0) == (size_t)-1, "the other process's response corrupted");
    char b;
    CHECK(recv(c, &b, 1, 0) == 0, "EOF after the helper closed");
    CHECK(sem_now_ms() - t0 < 5000, "%lld ms: the peer waited for a handshake that never came",
          (long long)(sem_now_ms() - t0));
}

/* A connection handed to another process in SCM_RIGHTS (the helper was
 * forked before the connection existed) and closed here at once: the
 * other process serves it; closing this copy ends nothing. The accepted
 * end is passed (passive), or the connected one (active). */
static void passed_case(int how)
{
    int sp[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
    pid_t pid = passed_helper(sp);
    int64_t t0 = sem_now_ms();
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    if (how == PASS_ACTIVE) {                 /* hand over the connected end */
        int t = c;
        c = s;
        s = t;
    }
    pass_fd(sp[0], s);
    close(s);                                 /* the other process has it now */
    passed_client(c, 0, t0);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "helper failed (%#x)", st);
    close(c);
    close(sp[0]);
}

/* The passed end's peer (another process: both ends in one process would
 * upgrade together) committed to the upgrade before the pass: this end
 * accepts (and says hello), then the client's first send, nonblocking,
 * starts its handshake, which reads the hello and commits (rsocket: its
 * KICK, an urgent byte, is on its way before the send returns); only then
 * is this end passed. The steps are ordered through a pipe, so the
 * hello and the KICK have crossed the connection before the next step
 * almost always; if one is late the case is passed_then_closed. On a
 * route that does not anchor the first send just goes out. */
static void case_passed_after_kick(void)
{
    int sp[2], go[2], started[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
    CHECK_OK(pipe(go));
    CHECK_OK(pipe(started));
    pid_t helper = passed_helper(sp);
    int l = sem_listener(AF_INET, 0);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, sem_port_of(l), &ss);
    int64_t t0 = sem_now_ms();
    pid_t cli = fork();
    CHECK(cli >= 0, "fork");
    if (cli == 0) {
        close(sp[0]);
        int c = socket(AF_INET, SOCK_STREAM, 0);
        char b;
        if (c < 0 || connect(c, (struct sockaddr *)&ss, len) < 0 || read(go[0], &b, 1) != 1)
            _exit(2);
        uint8_t req[1000];
        sem_fill(req, sizeof(req), 21, 0);
        sem_set_nonblock(c, 1);
        ssize_t n = send(c, req, sizeof(req), MSG_DONTWAIT | MSG_NOSIGNAL);
        if ((n < 0 && errno != EAGAIN) || write(started[1], "s", 1) != 1)
            _exit(3);
        sem_set_nonblock(c, 0);
        passed_client(c, n > 0 ? (size_t)n : 0, t0);
        _exit(0);
    }
    int s = CHECK_OK(accept(l, NULL, NULL));
    char b;
    CHECK(write(go[1], "g", 1) == 1 && read(started[0], &b, 1) == 1, "client lost");
    pass_and_reap(sp[0], s, cli, helper);
    close(l);
    for (int i = 0; i < 2; i++) {
        close(go[i]);
        close(started[i]);
    }
}

/* The passed end carried data first (on rsocket: upgraded, the bytes went
 * over RDMA), then is handed to another process in SCM_RIGHTS and closed
 * here (dovecot's login process hands the client to its mail process,
 * which greets it): the receiver gets the TCP socket, so the connection
 * goes back to TCP before the pass (anchor_release_passed; the client
 * answers the release from its read of the greeting), and everything
 * through the other process arrives whole. The client is another process:
 * both ends in one process would move together. */
static void case_passed_after_upgrade(void)
{
    const char *direct = getenv("SEM_MODULE_SOCKETS");
    if (direct && strcmp(direct, "1") == 0) {
        printf("skip passed_after_upgrade (direct module sockets)\n");
        return;
    }
    int sp[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
    pid_t helper = passed_helper_greeting(sp, 1);
    int l = sem_listener(AF_INET, 0);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, sem_port_of(l), &ss);
    pid_t cli = fork();
    CHECK(cli >= 0, "fork");
    if (cli == 0) {
        close(sp[0]);
        uint8_t buf[500];
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&ss, len) < 0)
            _exit(2);
        sem_fill(buf, sizeof(buf), 23, 0);
        sem_write_all(c, buf, sizeof(buf));
        sem_read_all(c, buf, sizeof(buf));
        if (sem_verify(buf, sizeof(buf), 24, 0) != (size_t)-1)
            _exit(3);
        sem_read_all(c, buf, GREETING);         /* from the other process */
        if (sem_verify(buf, GREETING, 25, 0) != (size_t)-1)
            _exit(4);
        passed_client(c, 0, sem_now_ms());
        _exit(0);
    }
    int s = CHECK_OK(accept(l, NULL, NULL));
    uint8_t buf[500];
    sem_read_all(s, buf, sizeof(buf));
    CHECK(sem_verify(buf, sizeof(buf), 23, 0) == (size_t)-1, "the first request corrupted");
    sem_fill(buf, sizeof(buf), 24, 0);
    sem_write_all(s, buf, sizeof(buf));
    pass_and_reap(sp[0], s, cli, helper);
    close(l);
}

static void case_passed_then_closed(void) { passed_case(PASS_PASSIVE); }
static void case_passed_active_then_closed(void) { passed_case(PASS_ACTIVE); }

/* ---- glibc's stdio and dprintf on a connection ------------------------------ */

/* stdio reads and writes with libc's internal calls, which no preload
 * sees; dprintf too. A connection given to fdopen() goes (back) to TCP
 * (anchor_stdio.c) and dprintf is formatted by the dispatcher
 * (wrap_stdio.c): every byte arrives once and in order. The client is
 * another process (a release needs its answer). before_use: fdopen right
 * after accept(); otherwise the connection carried data first. */
static void stdio_case(int before_use)
{
    enum { REQ = 500, LINE = 3000 };
    const char *direct = getenv("SEM_MODULE_SOCKETS");
    if (direct && strcmp(direct, "1") == 0) {
        /* the fd is the module's wait fd: stdio could only fail later */
        int c, s;
        sem_tcp_pair(AF_INET, &c, &s);
        CHECK(fdopen(s, "r+") == NULL && errno == EOPNOTSUPP, "fdopen of a direct module socket: want EOPNOTSUPP");
        close(c);
        close(s);
        return;
    }
    int l = sem_listener(AF_INET, 0);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, sem_port_of(l), &ss);
    pid_t cli = fork();
    CHECK(cli >= 0, "fork");
    if (cli == 0) {
        static uint8_t big[BIG];
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&ss, len) < 0)
            _exit(2);
        sem_fill(big, REQ, 31, 0);
        sem_write_all(c, big, REQ);
        if (!before_use) {
            sem_read_all(c, big, REQ);
            if (sem_verify(big, REQ, 32, 0) != (size_t)-1)
                _exit(3);
        }
        char line[LINE + 1];
        sem_read_all(c, line, LINE);              /* the server's dprintf */
        for (int i = 0; i < LINE; i++)
            if (line[i] != 'a' + i % 26)
                _exit(4);
        sem_read_all(c, big, BIG);                /* its stdio stream */
        if (sem_verify(big, BIG, 33, 0) != (size_t)-1)
            _exit(5);
        if (dprintf(c, "got %d\n", BIG) < 0)
            _exit(6);
        _exit(0);
    }
    int s = CHECK_OK(accept(l, NULL, NULL));
    static uint8_t buf[BIG];
    FILE *in = NULL;
    if (before_use) {
        in = fdopen(CHECK_OK(dup(s)), "r");
        CHECK(in != NULL, "fdopen for reading before the first use: %s", strerror(errno));
        CHECK(fread(buf, 1, REQ, in) == REQ, "fread of the request");
    } else {
        sem_read_all(s, buf, REQ);
        sem_fill(buf + REQ, REQ, 32, 0);
        sem_write_all(s, buf + REQ, REQ);
    }
    CHECK(sem_verify(buf, REQ, 31, 0) == (size_t)-1, "the request corrupted");
    char line[LINE + 1];
    for (int i = 0; i < LINE; i++)
        line[i] = (char)('a' + i % 26);
    line[LINE] = 0;
    CHECK(dprintf(s, "%s", line) == LINE, "dprintf: %s", strerror(errno));
    FILE *out = fdopen(CHECK_OK(dup(s)), "w");
    CHECK(out != NULL, "fdopen for writing: %s", strerror(errno));
    sem_fill(buf, BIG, 33, 0);
    for (size_t off = 0; off < BIG; off += 1000)
        CHECK(fwrite(buf + off, 1, BIG - off < 1000 ? BIG - off : 1000, out) > 0, "fwrite");
    CHECK(fflush(out) == 0, "fflush: %s", strerror(errno));
    if (in == NULL)
        in = fdopen(CHECK_OK(dup(s)), "r");
    CHECK(in != NULL, "fdopen for reading: %s", strerror(errno));
    char ans[64];
    CHECK(fgets(ans, sizeof ans, in) != NULL, "fgets of the answer: %s", strerror(errno));
    char want[64];
    snprintf(want, sizeof want, "got %d\n", BIG);
    CHECK(strcmp(ans, want) == 0, "the answer read by stdio: '%s'", ans);
    int st = 0;
    CHECK(waitpid(cli, &st, 0) == cli, "waitpid");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client exit %d (2 connect, 3 reply, 4 dprintf, 5 stdio "
          "stream, 6 its dprintf)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    fclose(in);
    fclose(out);
    close(s);
    close(l);
}

static void case_stdio_before_use(void) { stdio_case(1); }
static void case_stdio_after_upgrade(void) { stdio_case(0); }

/* The pid's line in $SHADOW_STATS_FILE says it sent bytes. */
static int shadow_carried_for(pid_t pid)
{
    const char *path = getenv("SHADOW_STATS_FILE");
    FILE *fp = path ? fopen(path, "r") : NULL;
    long p;
    unsigned long long socks, sent, rcvd;
    int found = 0;
    while (fp != NULL && fscanf(fp, "%ld %llu %llu %llu", &p, &socks, &sent, &rcvd) == 4)
        found |= p == (long)pid && sent > 0 && rcvd > 0;
    if (fp != NULL)
        fclose(fp);
    return found;
}

/* An accept-then-fork server whose child execs a program that serves the
 * connection on stdin/stdout (inetd style): the exec'd image inherits the
 * connection not yet anchored and anchors it itself (NSTACK_ANCHOR_INHERIT). */
static void case_accept_fork_exec(void)
{
    const char *direct = getenv("SEM_MODULE_SOCKETS");
    if (direct && strcmp(direct, "1") == 0) {
        printf("skip accept_fork_exec (direct module sockets)\n");
        return;
    }
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        if (dup2(s, 0) < 0 || dup2(s, 1) < 0)
            _exit(2);
        close(s);
        execl("/bin/cat", "cat", (char *)NULL);
        _exit(3);
    }
    close(s);
    static uint8_t out[BIG], in[BIG];
    sem_fill(out, sizeof(out), 13, 0);
    struct writer w = { c, sizeof(out), 13 };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, writer_main, &w) == 0, "pthread_create");
    sem_read_all(c, in, sizeof(in));
    pthread_join(t, NULL);
    CHECK(sem_verify(in, sizeof(in), 13, 0) == (size_t)-1, "the exec'd program's echo differs");
    CHECK_OK(shutdown(c, SHUT_WR));
    char b;
    ssize_t eof = recv(c, &b, 1, 0);
    CHECK(eof == 0, "EOF after the exec'd program ended: recv %zd (%s)", eof,
          eof < 0 ? strerror(errno) : "a byte");
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "cat failed (%#x)", st);
    const char *want = getenv("SEM_EXPECT_ANCHORED");
    if (want && strcmp(want, "1") == 0)
        CHECK(shadow_carried_for(pid), "the exec'd program did not carry the connection on the module");
    close(c);
}

/* Workers forked after listen() share one wildcard listener with
 * EPOLLEXCLUSIVE (nginx); each accepted connection is served. */
static void worker(int l, int quit)
{
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = l };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) < 0)
        _exit(10);
    ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = quit };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, quit, &ev) < 0)
        _exit(11);
    for (int rounds = 0; rounds < 1000; rounds++) {
        struct epoll_event e;
        int n = epoll_wait(ep, &e, 1, LONG_MS);
        if (n <= 0 || e.data.fd == quit)
            _exit(n < 0 ? 12 : 0);
        int s = accept4(l, NULL, NULL, SOCK_NONBLOCK);
        if (s < 0)
            continue;               /* another worker took it */
        sem_set_nonblock(s, 0);
        char b[4];
        sem_read_all(s, b, 4);
        sem_write_all(s, b, 4);
        close(s);
    }
    _exit(13);
}

/* Two forked workers serve listener l (bound to addr) with EPOLLEXCLUSIVE. */
static void listen_fork_workers(const struct sockaddr *addr, socklen_t alen)
{
    int l = CHECK_OK(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    int one = 1;
    CHECK_OK(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
    CHECK_OK(bind(l, addr, alen));
    CHECK_OK(listen(l, 64));
    int quit[2];
    CHECK_OK(pipe(quit));
    pid_t w[2];
    for (int i = 0; i < 2; i++) {
        w[i] = fork();
        CHECK(w[i] >= 0, "fork");
        if (w[i] == 0) {
            close(quit[1]);
            worker(l, quit[0]);
        }
    }
    close(quit[0]);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, sem_port_of(l), &ss);
    for (int i = 0; i < 6; i++) {
        int c = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
        CHECK_OK(connect(c, (struct sockaddr *)&ss, len));
        char m[4] = { 'w', 'k', 'r', (char)('0' + i) }, b[4];
        sem_write_all(c, m, 4);
        sem_read_all(c, b, 4);
        CHECK(memcmp(m, b, 4) == 0, "echo %d", i);
        close(c);
    }
    close(quit[1]);
    for (int i = 0; i < 2; i++) {
        int st;
        CHECK(waitpid(w[i], &st, 0) == w[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "worker %d failed (%#x: 10 = epoll_ctl EPOLLEXCLUSIVE refused)", i, st);
    }
    close(l);
}

static void case_listen_fork_exclusive(void)
{
    struct sockaddr_in any = { .sin_family = AF_INET };
    listen_fork_workers((struct sockaddr *)&any, sizeof(any));
}

/* The same on the test address itself: over a module with its own
 * listener beside the TCP one (rsocket: rdma_cm, for plain rsockets
 * clients), the parent, which never waits on the listener, gives that
 * side listener up at the fork and the first worker that waits makes its
 * own (rsfw.side_fork tests the plain clients); the workers serve the TCP
 * connections. Direct module sockets are module listeners. */
static void case_listen_fork_specific(void)
{
    const char *direct = getenv("SEM_MODULE_SOCKETS");
    if (direct && strcmp(direct, "1") == 0) {
        printf("skip listen_fork_specific (direct module sockets)\n");
        return;
    }
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, 0, &ss);
    listen_fork_workers((struct sockaddr *)&ss, len);
}

/* Two wildcard listeners in one SO_REUSEPORT group (a worker each): every
 * connection is accepted by one of them and served. Direct module sockets
 * (preload-shadow-direct) are multi-stack listeners, not part of this. */
static void case_reuseport_group(void)
{
    const char *direct = getenv("SEM_MODULE_SOCKETS");
    if (direct && strcmp(direct, "1") == 0) {
        printf("skip reuseport_group (direct module sockets)\n");
        return;
    }
    int l[2], one = 1;
    struct sockaddr_in any = { .sin_family = AF_INET };
    for (int i = 0; i < 2; i++) {
        l[i] = CHECK_OK(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
        CHECK_OK(setsockopt(l[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)));
        CHECK_OK(bind(l[i], (struct sockaddr *)&any, sizeof(any)));
        CHECK_OK(listen(l[i], 16));
        if (i == 0)
            any.sin_port = htons(sem_port_of(l[0]));
    }
    CHECK(sem_port_of(l[1]) == sem_port_of(l[0]), "one port for the group");
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, sem_port_of(l[0]), &ss);
    for (int i = 0; i < 8; i++) {
        int c = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
        CHECK_OK(connect(c, (struct sockaddr *)&ss, len));
        struct pollfd p[2] = { { l[0], POLLIN, 0 }, { l[1], POLLIN, 0 } };
        CHECK(poll(p, 2, LONG_MS) >= 1, "no listener of the group reported the connection");
        int s = CHECK_OK(accept4(p[0].revents & POLLIN ? l[0] : l[1], NULL, NULL, 0));
        char m[3] = { 'r', 'p', (char)('0' + i) }, b[3];
        sem_write_all(c, m, 3);
        sem_read_all(s, b, 3);
        CHECK(memcmp(m, b, 3) == 0, "data %d", i);
        close(c);
        close(s);
    }
    close(l[0]);
    close(l[1]);
}

/* ---- nonblocking and closing ----------------------------------------------- */

/* No call on a nonblocking client waits for the handshake. The bound is
 * generous for a loaded machine and below the shadow's agreement deadline
 * in the runner (SHADOW_ANCHOR_WAIT_MS=1000), which a wait would reach. */
#define QUICK(call)                                                                       \
    ({ int64_t t0_ = sem_now_ms(); long r_ = (long)(call); int e_ = errno;                  \
       CHECK(sem_now_ms() - t0_ < 800, "%s took %lld ms", #call, (long long)(sem_now_ms() - t0_)); \
       errno = e_; r_; })

static void case_nonblocking_client(void)
{
    int l = sem_listener(AF_INET, 0);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, sem_port_of(l), &ss);
    int c = CHECK_OK(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    long r = QUICK(connect(c, (struct sockaddr *)&ss, len));
    CHECK(r == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
    int ep = CHECK_OK(epoll_create1(0));
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u64 = 5 };
    QUICK(epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev));
    char b[8];
    r = QUICK(recv(c, b, sizeof(b), 0));
    CHECK(r == -1 && errno == EAGAIN, "recv before any data: %ld %s", r, strerror(errno));
    int64_t deadline = sem_now_ms() + LONG_MS;
    uint32_t got = 0;
    while (!(got & EPOLLOUT) && sem_now_ms() < deadline)
        got = QUICK(ep_wait_one(ep, 5, 100));
    CHECK(got & EPOLLOUT, "never writable");
    int e = -1;
    socklen_t el = sizeof(e);
    CHECK_OK(getsockopt(c, SOL_SOCKET, SO_ERROR, &e, &el));
    CHECK(e == 0, "SO_ERROR %d", e);
    int s = CHECK_OK(accept(l, NULL, NULL));
    r = QUICK(send(c, "nbdata", 6, 0));
    CHECK(r == 6, "send: %ld %s", r, strerror(errno));
    sem_read_all(s, b, 6);
    CHECK(memcmp(b, "nbdata", 6) == 0, "data");
    CHECK(write(s, "back", 4) == 4, "write");
    got = 0;
    while (!(got & EPOLLIN) && sem_now_ms() < deadline)
        got = QUICK(ep_wait_one(ep, 5, 100));
    CHECK(got & EPOLLIN, "reply never readable");
    CHECK(QUICK(recv(c, b, sizeof(b), 0)) == 4 && memcmp(b, "back", 4) == 0, "reply");
    close(ep); close(c); close(s); close(l);
}

/* A nonblocking client of a server without the framework that waits for
 * the request: the agreement can only end by the module's deadline, and
 * no call may wait for it; the request then arrives intact. */
static void case_nonblocking_plain_server(void)
{
    uint16_t port;
    int pl = raw_listener(&port);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, port, &ss);
    int c = CHECK_OK(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    long r = QUICK(connect(c, (struct sockaddr *)&ss, len));
    CHECK(r == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
    int ep = CHECK_OK(epoll_create1(0));
    struct epoll_event ev = { .events = EPOLLOUT, .data.u64 = 6 };
    QUICK(epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev));
    int ps = CHECK_OK(syscall(SYS_accept4, pl, NULL, NULL, 0));
    const char req[] = "nonblocking request";
    size_t sent = 0;
    int64_t deadline = sem_now_ms() + LONG_MS;
    while (sent < sizeof(req) && sem_now_ms() < deadline) {
        QUICK(ep_wait_one(ep, 6, 100));
        r = QUICK(send(c, req + sent, sizeof(req) - sent, 0));
        CHECK(r > 0 || errno == EAGAIN, "send: %s", strerror(errno));
        if (r > 0)
            sent += (size_t)r;
    }
    CHECK(sent == sizeof(req), "the request was never sent");
    char got[sizeof(req)];
    raw_read_all(ps, got, sizeof(got));
    CHECK(memcmp(got, req, sizeof(req)) == 0, "request corrupted (first byte %#x)", (unsigned char)got[0]);
    raw_expect_nothing(ps);
    close(ep); close(c);
    raw_close(ps);
    raw_close(pl);
}

/* A client that connects and closes without a byte gives a clean EOF. */
static void case_connect_close_eof(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    close(c);
    char b;
    CHECK(sem_wait_fd(s, POLLIN, LONG_MS) & POLLIN, "EOF not readable");
    ssize_t n = recv(s, &b, 1, 0);
    CHECK(n == 0, "recv: %zd (%s), expected a clean EOF", n, n < 0 ? strerror(errno) : "data");
    close(s);
    /* and the server closing first */
    sem_tcp_pair(AF_INET, &c, &s);
    close(s);
    CHECK(sem_wait_fd(c, POLLIN, LONG_MS) & POLLIN, "EOF not readable");
    n = recv(c, &b, 1, 0);
    CHECK(n == 0, "client recv: %zd (%s), expected a clean EOF", n, n < 0 ? strerror(errno) : "data");
    close(c);
    /* and a client process that exits without closing */
    int l = sem_listener(AF_INET, 0);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, sem_port_of(l), &ss);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        int k = socket(AF_INET, SOCK_STREAM, 0);
        _exit(k < 0 || connect(k, (struct sockaddr *)&ss, len) < 0 ? 2 : (exit(0), 0));
    }
    s = CHECK_OK(accept(l, NULL, NULL));
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "client failed (%#x)", st);
    CHECK(sem_wait_fd(s, POLLIN, LONG_MS) & POLLIN, "EOF not readable");
    n = recv(s, &b, 1, 0);
    CHECK(n == 0, "recv after the client exited: %zd (%s), expected a clean EOF", n, n < 0 ? strerror(errno) : "data");
    close(s);
    close(l);
}

/* A server that writes one reply on the socket accept() gave it,
 * nonblocking, and closes at once (redis refusing a client in protected
 * mode or at maxclients), to a client that does not run the framework:
 * the write is taken whole, as by a fresh TCP socket (the handshake still
 * waits for a hello then), and the client reads the reply, then EOF - not
 * a reset for the bytes the server never read. */
static void case_reply_and_close(void)
{
    static const char reply[] = "-DENIED not from here\r\n";
    int l = sem_listener(AF_INET, 0);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, sem_port_of(l), &ss);
    for (int round = 0; round < 3; round++) {
        int pc = CHECK_OK(raw_socket(AF_INET));
        CHECK_OK(syscall(SYS_connect, pc, &ss, len));
        int s = CHECK_OK(accept4(l, NULL, NULL, SOCK_NONBLOCK));
        ssize_t w = write(s, reply, sizeof(reply) - 1);
        CHECK(w == (ssize_t)sizeof(reply) - 1,
              "round %d: nonblocking write of a reply right after accept: %zd (%s)", round, w,
              w < 0 ? strerror(errno) : "short");
        close(s);
        char got[sizeof(reply) - 1], b;
        raw_read_all(pc, got, sizeof(got));
        CHECK(!memcmp(got, reply, sizeof(got)), "round %d: not the reply", round);
        ssize_t e = raw_recv(pc, &b, 1, 0);
        CHECK(e == 0, "round %d: after the reply: %zd (%s), want EOF", round, e, e < 0 ? strerror(errno) : "data");
        raw_close(pc);
    }
    close(l);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    static const struct sem_case cases[] = {
        { "data_both_ways", case_data_both_ways },
        { "socket_identity", case_socket_identity },
        { "epoll_after_use", case_epoll_after_use },
        { "epoll_first_use", case_epoll_first_use },
        { "epoll_before_connect", case_epoll_before_connect },
        { "poll_select", case_poll_select },
        { "plain_client", case_plain_client },
        { "plain_client_epoll", case_plain_client_epoll },
        { "plain_client_poll", case_plain_client_poll },
        { "close_during_fallback", case_close_during_fallback },
        { "plain_server_speaks_first", case_plain_server_speaks_first },
        { "plain_server_waits", case_plain_server_waits },
        { "accept_then_fork", case_accept_then_fork },
        { "accept_fork_exec", case_accept_fork_exec },
        { "listen_fork_exclusive", case_listen_fork_exclusive },
        { "listen_fork_specific", case_listen_fork_specific },
        { "reuseport_group", case_reuseport_group },
        { "nonblocking_client", case_nonblocking_client },
        { "nonblocking_plain_server", case_nonblocking_plain_server },
        { "connect_close_eof", case_connect_close_eof },
        { "reply_and_close", case_reply_and_close },
        { "passed_then_closed", case_passed_then_closed },
        { "passed_active_then_closed", case_passed_active_then_closed },
        { "passed_after_kick", case_passed_after_kick },
        { "passed_after_upgrade", case_passed_after_upgrade },
        { "stdio_before_use", case_stdio_before_use },
        { "stdio_after_upgrade", case_stdio_after_upgrade },
    };
    return sem_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
