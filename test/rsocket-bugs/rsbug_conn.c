/* rsbug_conn.c - connection-setup known bugs: a listener's readiness wakes
 * poll/epoll(-1) for a new connection; one thread, nonblocking, connects to
 * its own listener; accepted sockets do not inherit O_NONBLOCK (accept4
 * flags honoured); ECONNREFUSED is reported as such. */
#include "rsbug_cases.h"
#include "rsbug_io.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* Accept once the listener is reported readable, say hello, close. */
static void greet_and_close(int lfd)
{
    int fd = rb_accept(lfd);
    rb_close(lfd, "listener");
    rb_send_all(fd, "A", 1);
    rb_expect_eof(fd);
    rb_close(fd, "connection");
    rb_say("SERVER OK");
}

/* The only event is the client's connection: poll(-1) must return for it. */
void listen_poll_server(const struct rb_args *a)
{
    int lfd = rb_listen(a, 1);
    rb_say("LISTENING");
    struct pollfd p = { .fd = lfd, .events = POLLIN };
    int n = SK(poll)(&p, 1, -1);
    CHECK(n == 1 && (p.revents & POLLIN), "poll(-1) on the listener returned %d revents 0x%x",
          n, p.revents);
    greet_and_close(lfd);
}

#ifndef RSBUG_API
void listen_epoll_server(const struct rb_args *a)
{
    int lfd = rb_listen(a, 1);
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd }, out;
    CHECK(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) == 0, "epoll on the listener");
    rb_say("LISTENING");
    int n = epoll_wait(ep, &out, 1, -1);
    CHECK(n == 1 && out.data.fd == lfd && (out.events & EPOLLIN),
          "epoll_wait(-1) on the listener returned %d events 0x%x", n, n == 1 ? out.events : 0);
    close(ep);
    greet_and_close(lfd);
}
#endif

void listen_client(const struct rb_args *a)
{
    int fd = rb_connect(a);
    char c;
    rb_recv_all(fd, &c, 1);
    CHECK(c == 'A', "greeting byte");
    rb_close(fd, "connection");
    rb_say("CLIENT OK");
}

/* Drive a nonblocking connect to our own nonblocking listener from one
 * thread; returns the accepted fd. `flags` go to accept4 (fw build). */
static int self_pair(int lfd, int cfd, const struct rb_args *a, int flags)
{
    struct sockaddr_storage ss;
    socklen_t len = rb_addr(a, &ss);
    int r = SK(connect)(cfd, (struct sockaddr *)&ss, len), afd = -1, up = r == 0;
    CHECK(r == 0 || errno == EINPROGRESS, "nonblocking connect to the own listener");
    for (int i = 0; i < 2000 && (afd < 0 || !up); i++) {
        /* once connected, cfd would stay writable and turn this into a
         * busy loop that gives up before a loaded device delivers the
         * listener's side: wait on the listener alone then */
        struct pollfd p[2] = { { .fd = afd < 0 ? lfd : -1, .events = POLLIN },
                               { .fd = up ? -1 : cfd, .events = POLLOUT } };
        CHECK(SK(poll)(p, 2, 1000) >= 0, "poll");
        if (afd < 0 && (p[0].revents & POLLIN)) {
#ifdef RSBUG_API
            (void)flags;
            afd = SK(accept)(lfd, NULL, NULL);
#else
            afd = accept4(lfd, NULL, NULL, flags);
#endif
            CHECK(afd >= 0 || errno == EAGAIN, "accept on the own listener");
        }
        if (!up && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            int err = -1;
            socklen_t el = sizeof(err);
            CHECK(SK(getsockopt)(cfd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0,
                  "connect to the own listener: SO_ERROR %d", err);
            up = 1;
        }
    }
    CHECK(afd >= 0 && up, "own connection not made after 2000 polls (accepted %d, up %d)", afd,
          up);
    return afd;
}

/* Data both ways on a self-made pair (small: one thread does both ends),
 * both ends blocking. */
static void self_exchange(int cfd, int afd)
{
    rb_set_nonblock(cfd, 0);
    rb_set_nonblock(afd, 0);
    rb_send_pattern(cfd, 16384, 0);
    rb_recv_pattern(afd, 16384, 0);
    rb_send_pattern(afd, 16384, 7);
    rb_recv_pattern(cfd, 16384, 7);
}

void selfconn_server(const struct rb_args *a)
{
    int lfd = rb_listen(a, 1);
    int cfd = rb_socket(a);
    rb_set_nonblock(cfd, 1);
    int afd = self_pair(lfd, cfd, a, 0);
    CHECK(!rb_is_nonblock(afd), "accepted socket inherited O_NONBLOCK from the listener");
    self_exchange(cfd, afd);
    rb_close(cfd, "client");
    rb_close(afd, "accepted");
#ifndef RSBUG_API
    cfd = rb_socket(a);
    rb_set_nonblock(cfd, 1);
    afd = self_pair(lfd, cfd, a, SOCK_NONBLOCK | SOCK_CLOEXEC);
    CHECK(rb_is_nonblock(afd), "accept4(SOCK_NONBLOCK) gave a blocking socket");
    CHECK(fcntl(afd, F_GETFD) & FD_CLOEXEC, "accept4(SOCK_CLOEXEC) gave no FD_CLOEXEC");
    char c;
    CHECK(SK(recv)(afd, &c, 1, 0) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
          "recv with no data on an accept4(SOCK_NONBLOCK) socket did not say EAGAIN");
    self_exchange(cfd, afd);
    rb_close(cfd, "client");
    rb_close(afd, "accepted");
#endif
    rb_close(lfd, "listener");
    rb_say("SERVER OK");
}

/* Nothing listens at a->port: blocking connect says ECONNREFUSED; a
 * nonblocking one becomes writable with SO_ERROR ECONNREFUSED. Repeated,
 * since the upstream bug was a race. */
void refused_client(const struct rb_args *a)
{
    struct sockaddr_storage ss;
    socklen_t len = rb_addr(a, &ss);
    for (int i = 0; i < 10; i++) {
        int fd = rb_socket(a);
        errno = 0;
        CHECK(SK(connect)(fd, (struct sockaddr *)&ss, len) < 0 && errno == ECONNREFUSED,
              "blocking connect %d to a closed port: expected ECONNREFUSED", i);
        rb_close(fd, "refused socket");
        fd = rb_socket(a);
        rb_set_nonblock(fd, 1);
        int r = SK(connect)(fd, (struct sockaddr *)&ss, len);
        CHECK(r < 0 && (errno == EINPROGRESS || errno == ECONNREFUSED),
              "nonblocking connect %d to a closed port", i);
        if (errno == EINPROGRESS) {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            CHECK(SK(poll)(&p, 1, 120000) == 1, "poll for the refused connect %d", i);
            int err = 0;
            socklen_t el = sizeof(err);
            CHECK(SK(getsockopt)(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0, "SO_ERROR");
            errno = err;
            CHECK(err == ECONNREFUSED, "nonblocking connect %d: SO_ERROR %d (%s), expected "
                  "ECONNREFUSED", i, err, strerror(err));
        }
        rb_close(fd, "refused socket");
    }
#ifdef RSBUG_API
    /* an fd the engine does not know: EBADF, never a crash (upstream #187) */
    char c;
    errno = 0;
    CHECK(rrecv(4000, &c, 1, 0) < 0 && errno == EBADF, "rrecv on an unknown fd");
    errno = 0;
    CHECK(rclose(4000) < 0 && errno == EBADF, "rclose on an unknown fd");
    errno = 0;
    CHECK(rclose(-1) < 0 && errno == EBADF, "rclose(-1)");
#endif
    rb_say("CLIENT OK");
}
