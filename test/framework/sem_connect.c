/* sem_connect.c - connection setup semantics: nonblocking connect (success
 * and refusal), accept4 flags, FIONBIO/FIONREAD, fcntl O_NONBLOCK round
 * trip, and that flags/options set before connect survive the routing
 * decision (the dispatcher may move the fd onto a module socket there). */
#include "semcheck.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define LONG_MS 10000

static int so_error(int fd)
{
    int err = -1;
    socklen_t len = sizeof(err);
    CHECK_OK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len));
    return err;
}

/* A port on the test address where nobody listens. */
static uint16_t dead_port(void)
{
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, 0, &ss);
    int fd = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    CHECK_OK(bind(fd, (struct sockaddr *)&ss, len));
    uint16_t port = sem_port_of(fd);
    close(fd);
    return port;
}

static void case_nb_connect_ok(void)
{
    int l = sem_listener(AF_INET, 0);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, sem_port_of(l), &ss);
    int c = CHECK_OK(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    int r = connect(c, (struct sockaddr *)&ss, len);
    CHECK(r == 0 || errno == EINPROGRESS, "nonblocking connect: %s", strerror(errno));
    int ep = CHECK_OK(epoll_create1(0));
    struct epoll_event ev = { .events = EPOLLOUT, .data.u64 = 77 };
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev));
    CHECK(epoll_wait(ep, &ev, 1, LONG_MS) == 1, "no EPOLLOUT on connect completion");
    CHECK(ev.data.u64 == 77 && (ev.events & EPOLLOUT) && !(ev.events & EPOLLERR),
          "completion events %#x", ev.events);
    CHECK(so_error(c) == 0, "SO_ERROR after successful connect");
    CHECK(sem_wait_fd(c, POLLOUT, LONG_MS) & POLLOUT, "poll POLLOUT after connect");
    int s = CHECK_OK(accept(l, NULL, NULL));
    struct sockaddr_storage peer, mine;
    socklen_t pl = sizeof(peer), ml = sizeof(mine);
    CHECK_OK(getpeername(s, (struct sockaddr *)&peer, &pl));
    CHECK_OK(getsockname(c, (struct sockaddr *)&mine, &ml));
    CHECK(pl == ml && memcmp(&peer, &mine, pl) == 0, "accepted peer != client's local name");
    CHECK(write(c, "ok", 2) == 2, "write after nonblocking connect");
    char b[2];
    sem_read_all(s, b, 2);
    CHECK(memcmp(b, "ok", 2) == 0, "data");
    close(c); close(s); close(l); close(ep);
}

static void case_nb_connect_refused(void)
{
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, dead_port(), &ss);
    int c = CHECK_OK(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    int r = connect(c, (struct sockaddr *)&ss, len);
    CHECK(r == -1 && (errno == EINPROGRESS || errno == ECONNREFUSED),
          "nonblocking connect to a dead port: r=%d %s", r, strerror(errno));
    if (errno == EINPROGRESS) {
        short re = sem_wait_fd(c, POLLOUT, LONG_MS);
        CHECK(re & (POLLERR | POLLHUP), "refusal must show as POLLERR/POLLHUP: %#x", re);
        CHECK(so_error(c) == ECONNREFUSED, "SO_ERROR after refusal");
        CHECK(so_error(c) == 0, "SO_ERROR is cleared by reading it");
    }
    close(c);
    c = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    CHECK_ERR(connect(c, (struct sockaddr *)&ss, len), ECONNREFUSED);
    close(c);
}

static void check_flags(int fd, int want_nonblock, int want_cloexec, const char *what)
{
    int fl = CHECK_OK(fcntl(fd, F_GETFL));
    int fdf = CHECK_OK(fcntl(fd, F_GETFD));
    CHECK(!!(fl & O_NONBLOCK) == want_nonblock, "%s: O_NONBLOCK is %d", what, !!(fl & O_NONBLOCK));
    CHECK(!!(fdf & FD_CLOEXEC) == want_cloexec, "%s: FD_CLOEXEC is %d", what, !!(fdf & FD_CLOEXEC));
}

static void case_accept4_flags(void)
{
    int l = sem_listener(AF_INET, SOCK_NONBLOCK);
    CHECK_ERR(accept(l, NULL, NULL), EAGAIN);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, sem_port_of(l), &ss);
    int c[3], s[3];
    int flags[3] = { 0, SOCK_NONBLOCK, SOCK_NONBLOCK | SOCK_CLOEXEC };
    for (int i = 0; i < 3; i++) {
        c[i] = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
        CHECK_OK(connect(c[i], (struct sockaddr *)&ss, len));
        CHECK(sem_wait_fd(l, POLLIN, LONG_MS) & POLLIN, "listener readable with a pending connection");
        struct sockaddr_storage peer;
        socklen_t pl = sizeof(peer);
        s[i] = CHECK_OK(accept4(l, (struct sockaddr *)&peer, &pl, flags[i]));
        CHECK(peer.ss_family == AF_INET && pl == sizeof(struct sockaddr_in), "accept4 address");
    }
    check_flags(s[0], 0, 0, "accept4(0)");
    check_flags(s[1], 1, 0, "accept4(SOCK_NONBLOCK)");
    check_flags(s[2], 1, 1, "accept4(SOCK_NONBLOCK|SOCK_CLOEXEC)");
    CHECK_ERR(recv(s[1], &len, 1, 0), EAGAIN);
    CHECK_ERR(accept4(l, NULL, NULL, 0x7fff0000), EINVAL);
    for (int i = 0; i < 3; i++) {
        close(c[i]);
        close(s[i]);
    }
    close(l);
}

static void case_fionbio_fionread(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    int on = 1;
    CHECK_OK(ioctl(s, FIONBIO, &on));
    check_flags(s, 1, 0, "after FIONBIO on");
    char buf[200];
    CHECK_ERR(read(s, buf, sizeof(buf)), EAGAIN);
    int avail = -1;
    CHECK_OK(ioctl(s, FIONREAD, &avail));
    CHECK(avail == 0, "FIONREAD on empty socket: %d", avail);
    uint8_t data[123];
    sem_fill(data, sizeof(data), 31, 0);
    sem_write_all(c, data, sizeof(data));
    CHECK(sem_wait_fd(s, POLLIN, LONG_MS) & POLLIN, "data did not arrive");
    CHECK_OK(ioctl(s, FIONREAD, &avail));
    CHECK(avail == 123, "FIONREAD: %d, expected 123", avail);
    on = 0;
    CHECK_OK(ioctl(s, FIONBIO, &on));
    check_flags(s, 0, 0, "after FIONBIO off");
    sem_read_all(s, buf, 123);
    CHECK(sem_verify((uint8_t *)buf, 123, 31, 0) == (size_t)-1, "payload");
    close(c); close(s);
}

static void case_fcntl_roundtrip(void)
{
    int c, s;
    sem_tcp_pair(AF_INET, &c, &s);
    int fl = CHECK_OK(fcntl(s, F_GETFL));
    CHECK((fl & O_ACCMODE) == O_RDWR, "socket access mode O_RDWR");
    sem_set_nonblock(s, 1);
    check_flags(s, 1, 0, "F_SETFL O_NONBLOCK");
    char b;
    CHECK_ERR(recv(s, &b, 1, 0), EAGAIN);
    sem_set_nonblock(s, 0);
    check_flags(s, 0, 0, "F_SETFL clear");
    CHECK_OK(fcntl(s, F_SETFD, FD_CLOEXEC));
    check_flags(s, 0, 1, "F_SETFD FD_CLOEXEC");
    CHECK_OK(fcntl(s, F_SETFD, 0));
    check_flags(s, 0, 0, "F_SETFD 0");
    CHECK(write(c, "q", 1) == 1, "write");
    CHECK(recv(s, &b, 1, 0) == 1 && b == 'q', "blocking recv after round trip");
    close(c); close(s);
}

/* Flags and options set on the socket before connect() must hold after it:
 * connect() is where a routed socket changes stacks. */
static void case_state_survives_connect(int family)
{
    int l = sem_listener(family, 0);
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(family, sem_port_of(l), &ss);
    int c = CHECK_OK(socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    int one = 1, rcv = 200000;
    CHECK_OK(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)));
    CHECK_OK(setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)));
    CHECK_OK(setsockopt(c, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)));
    int ep = CHECK_OK(epoll_create1(0));
    struct epoll_event ev = { .events = EPOLLOUT, .data.u64 = 0xabc };
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev));  /* registered before connect */
    int r = connect(c, (struct sockaddr *)&ss, len);
    CHECK(r == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
    CHECK(epoll_wait(ep, &ev, 1, LONG_MS) == 1 && ev.data.u64 == 0xabc && (ev.events & EPOLLOUT),
          "registration made before connect must follow the socket");
    check_flags(c, 1, 1, "after connect");
    int v = 0;
    socklen_t vl = sizeof(v);
    CHECK_OK(getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, &vl));
    CHECK(v == 1, "TCP_NODELAY lost across connect");
    CHECK_OK(getsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &v, &vl));
    CHECK(v == 1, "SO_KEEPALIVE lost across connect");
    CHECK_OK(getsockopt(c, SOL_SOCKET, SO_RCVBUF, &v, &vl));
    CHECK(v >= rcv, "SO_RCVBUF lost across connect (%d)", v);
    int s = CHECK_OK(accept(l, NULL, NULL));
    CHECK(write(s, "hey", 3) == 3, "write");
    CHECK(sem_wait_fd(c, POLLIN, LONG_MS) & POLLIN, "data");
    char b[3];
    CHECK(read(c, b, 3) == 3 && memcmp(b, "hey", 3) == 0, "data after connect");
    close(c); close(s); close(l); close(ep);
}

static void case_state4(void) { case_state_survives_connect(AF_INET); }
static void case_state6(void) { if (sem_have_ipv6()) case_state_survives_connect(AF_INET6); }

static void case_bad_input(void)
{
    struct sockaddr_storage ss;
    socklen_t len = sem_addr(AF_INET, dead_port(), &ss);
    CHECK_ERR(connect(-1, (struct sockaddr *)&ss, len), EBADF);
    CHECK_ERR(connect(1000000, (struct sockaddr *)&ss, len), EBADF);
    int c = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    CHECK_ERR(connect(c, (struct sockaddr *)&ss, 3), EINVAL);
    CHECK_ERR(listen(-1, 1), EBADF);
    CHECK_ERR(accept(c, NULL, NULL), EINVAL);          /* not listening */
    char b;
    CHECK_ERR(recv(c, &b, 1, 0), ENOTCONN);
    int pfd[2];
    CHECK_OK(pipe(pfd));
    CHECK_ERR(connect(pfd[0], (struct sockaddr *)&ss, len), ENOTSOCK);
    CHECK_ERR(socket(AF_INET, 12345, 0), EINVAL);
    close(pfd[0]); close(pfd[1]); close(c);
}

int main(int argc, char **argv)
{
    static const struct sem_case cases[] = {
        { "nb_connect_ok", case_nb_connect_ok }, { "nb_connect_refused", case_nb_connect_refused },
        { "accept4_flags", case_accept4_flags }, { "fionbio_fionread", case_fionbio_fionread },
        { "fcntl_roundtrip", case_fcntl_roundtrip }, { "state_survives_connect4", case_state4 },
        { "state_survives_connect6", case_state6 }, { "bad_input", case_bad_input },
    };
    return sem_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
