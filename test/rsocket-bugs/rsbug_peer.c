/* rsbug_peer.c - a peer that dies or stops reading: the server learns of a
 * client killed with -9 (poll/epoll wakes, recv ends); close with unsent
 * data toward a dead or stalled peer returns. The driver script does the
 * killing; every wait here is bounded by the process deadline. */
#include "rsbug_cases.h"
#include "rsbug_io.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* Block until the peer's death shows on `fd` (poll, or epoll in fw). */
static void wait_peer_gone(int fd)
{
#ifdef RSBUG_API
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int n = SK(poll)(&p, 1, -1);
    CHECK(n == 1 && p.revents, "poll(-1) after the client died returned %d", n);
#else
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = fd }, out;
    CHECK(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl");
    int n = epoll_wait(ep, &out, 1, -1);
    CHECK(n == 1 && (out.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)),
          "epoll_wait(-1) after the client died returned %d", n);
    close(ep);
#endif
}

void crash_server(const struct rb_args *a)
{
    int fd = rb_serve_one(a);
    char hello[4];
    rb_recv_all(fd, hello, 4);
    rb_say("ACCEPTED");
    wait_peer_gone(fd);
    char c;
    ssize_t r;
    do
        r = SK(recv)(fd, &c, 1, 0);
    while (r < 0 && errno == EINTR);
    CHECK(r == 0 || (r < 0 && errno != EAGAIN), "recv after the client's death returned %zd", r);
    rb_say(r == 0 ? "PEER GONE (EOF)" : "PEER GONE (error)");
    rb_close(fd, "connection to the dead client");
    rb_say("SERVER OK");
}

/* Connect, say hello, then wait to be killed. */
void hold_client(const struct rb_args *a)
{
    int fd = rb_connect(a);
    rb_send_all(fd, "HELO", 4);
    rb_say("SENT");
    for (;;)
        pause();
}

/* Accept, read the hello, then never read again until killed. */
void hold_server(const struct rb_args *a)
{
    int fd = rb_serve_one(a);
    char hello[4];
    rb_recv_all(fd, hello, 4);
    rb_say("ACCEPTED");
    for (;;)
        pause();
}

/* Fill the send side toward a peer that does not read; then (after the
 * driver kills the peer, or at once with go "-") close must return. */
void deadclose_client(const struct rb_args *a)
{
    static char chunk[65536];
    int fd = rb_connect(a);
    rb_send_all(fd, "HELO", 4);
    rb_set_nonblock(fd, 1);
    size_t queued = 0;
    for (int i = 0; i < 100000; i++) {
        ssize_t r = SK(send)(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        CHECK(r > 0, "send toward a non-reading peer");
        queued += (size_t)r;
    }
    CHECK(queued > 0, "nothing could be queued");
    rb_say("FULL");
    if (strcmp(a->go, "-") != 0)
        rb_wait_file(a->go, 240);
    rb_set_nonblock(fd, 0);
    int r = SK(close)(fd);
    CHECK(r == 0, "close with unsent data returned %d", r);
    rb_say("CLIENT OK");
}
