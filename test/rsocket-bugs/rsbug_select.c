/* rsbug_select.c - select/poll known bugs: an rsocket that is fd 0 (stdin
 * closed first) is seen by select and poll; select returns only the
 * caller's descriptors and counts every set bit. */
#include "rsbug_cases.h"
#include "rsbug_io.h"

#include <errno.h>
#include <unistd.h>

#define SMALL 100

/* Server of the select cases: 100 pattern bytes, then the verdict byte. */
void one_byte_server(const struct rb_args *a)
{
    int fd = rb_serve_one(a);
    rb_send_pattern(fd, SMALL, 0);
    char ok;
    rb_recv_all(fd, &ok, 1);
    CHECK(ok == 'K', "client verdict byte");
    rb_close(fd, "connection");
    rb_say("SERVER OK");
}

static void finish(int fd)
{
    rb_recv_pattern(fd, SMALL, 0);
    rb_send_all(fd, "K", 1);
    rb_expect_eof(fd);
    rb_close(fd, "connection");
    rb_say("CLIENT OK");
}

/* Wait (select, bounded) until `fd` is readable; returns select's value. */
static int select_read(int nfds, int fd, fd_set *rd, fd_set *wr)
{
    struct timeval tv = { 120, 0 };
    FD_ZERO(rd);
    FD_SET(fd, rd);
    if (wr) {
        FD_ZERO(wr);
        FD_SET(fd, wr);
    }
    return SK(select)(nfds, rd, wr, NULL, &tv);
}

/* fd 0 must not be skipped by select/poll. The socket is made right after
 * closing stdin (a throw-away socket first opens the engine's process-wide
 * descriptors). Through the framework the socket gets fd 0. On the
 * engine's API it cannot (the engine opens a per-socket eventfd before the
 * socket's own fd, which is never the lowest free one), so a pipe with
 * data takes fd 0 and select/poll must report it beside the socket. */
void fd0_client(const struct rb_args *a)
{
    rb_close(rb_socket(a), "warm-up socket");
    CHECK(close(0) == 0, "close stdin");
    int pfd[2] = { -1, -1 };
#ifdef RSBUG_API
    CHECK(pipe(pfd) == 0 && pfd[0] == 0, "pipe at fd 0 (got %d)", pfd[0]);
    CHECK(write(pfd[1], "x", 1) == 1, "pipe write");
#endif
    int fd = rb_connect(a), hi = fd + 1;
    CHECK(fd == 0 || pfd[0] == 0, "neither the socket (fd %d) nor a pipe is at fd 0", fd);
    fd_set rd;
    int n = select_read(hi, fd, &rd, NULL);   /* the socket's data is there */
    CHECK(n >= 1 && FD_ISSET(fd, &rd), "select for the socket's data returned %d", n);
    FD_ZERO(&rd);
    FD_SET(0, &rd);
    FD_SET(fd, &rd);
    struct timeval tv = { 120, 0 };
    n = SK(select)(hi, &rd, NULL, NULL, &tv);
    CHECK(FD_ISSET(0, &rd), "select skipped fd 0 (%s)", fd == 0 ? "the socket" : "a pipe");
    CHECK(n == (fd == 0 ? 1 : 2), "select returned %d", n);
    struct pollfd p = { .fd = 0, .events = POLLIN };
    n = SK(poll)(&p, 1, 120000);
    CHECK(n == 1 && (p.revents & POLLIN), "poll on fd 0 returned %d revents 0x%x", n, p.revents);
    if (fd != 0) {
        close(pfd[0]);
        close(pfd[1]);
    }
    rb_say(fd == 0 ? "fd 0 is the socket" : "fd 0 is a pipe beside the socket");
    finish(fd);
}

/* Only the bits the caller set may come back, over the whole fd range
 * (the engine's own descriptors are lower than the socket's). */
void select_client(const struct rb_args *a)
{
    int fd = rb_connect(a);
    int pfd[2];
    CHECK(pipe(pfd) == 0, "pipe");
    fd_set rd, wr;
    int n = select_read(FD_SETSIZE, fd, &rd, NULL);   /* the data is there */
    CHECK(n == 1 && FD_ISSET(fd, &rd), "select for the first data returned %d", n);
    n = select_read(FD_SETSIZE, fd, &rd, &wr);
    CHECK(n >= 1, "select returned %d", n);
    for (int i = 0; i < FD_SETSIZE; i++)
        CHECK(i == fd || (!FD_ISSET(i, &rd) && !FD_ISSET(i, &wr)),
              "select reported fd %d, which the caller never asked for (socket fd %d)", i, fd);
    CHECK(FD_ISSET(fd, &rd) && FD_ISSET(fd, &wr), "socket not readable and writable");
    /* a kernel pipe beside the rsocket: both reported, nothing else */
    CHECK(write(pfd[1], "x", 1) == 1, "pipe write");
    FD_ZERO(&rd);
    FD_SET(fd, &rd);
    FD_SET(pfd[0], &rd);
    struct timeval tv = { 120, 0 };
    int hi = (fd > pfd[0] ? fd : pfd[0]) + 1;
    n = SK(select)(hi, &rd, NULL, NULL, &tv);
    CHECK(n == 2 && FD_ISSET(fd, &rd) && FD_ISSET(pfd[0], &rd),
          "select over an rsocket and a pipe returned %d", n);
    close(pfd[0]);
    close(pfd[1]);
    finish(fd);
}

/* select returns the number of set bits (POSIX), not of descriptors: one
 * socket readable and writable counts 2, as with the kernel. */
void selcount_client(const struct rb_args *a)
{
    int fd = rb_connect(a);
    fd_set rd, wr;
    int n = select_read(fd + 1, fd, &rd, NULL);   /* the data is there */
    CHECK(n == 1, "select for the first data returned %d", n);
    n = select_read(fd + 1, fd, &rd, &wr);
    CHECK(FD_ISSET(fd, &rd) && FD_ISSET(fd, &wr), "socket not readable and writable");
    CHECK(n == 2, "select returned %d for one fd set in both readfds and writefds, POSIX says 2",
          n);
    finish(fd);
}
