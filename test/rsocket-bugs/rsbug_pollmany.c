/* rsbug_pollmany.c - poll beyond a small fixed array (upstream rpoll
 * under-allocated) and poll/select timeouts (upstream rpoll timeout
 * handling): 80 pipes beside the socket, each reported exactly; a finite
 * timeout with nothing pending returns 0, and 0 means "do not wait". */
#include "rsbug_cases.h"
#include "rsbug_io.h"

#include <unistd.h>

#define PIPES 80

static void poll_many(int fd)
{
    int p[PIPES][2];
    struct pollfd fds[PIPES + 1];
    for (int i = 0; i < PIPES; i++) {
        CHECK(pipe(p[i]) == 0, "pipe %d", i);
        if (i % 2 == 0)
            CHECK(write(p[i][1], "x", 1) == 1, "pipe write");
        fds[i] = (struct pollfd){ .fd = p[i][0], .events = POLLIN };
    }
    fds[PIPES] = (struct pollfd){ .fd = fd, .events = POLLIN };
    int n = SK(poll)(fds, PIPES + 1, 120000);
    CHECK(n == PIPES / 2 + 1, "poll over %d pipes and the socket returned %d, expected %d",
          PIPES, n, PIPES / 2 + 1);
    for (int i = 0; i < PIPES; i++)
        CHECK(!!(fds[i].revents & POLLIN) == (i % 2 == 0), "pipe %d revents 0x%x", i,
              fds[i].revents);
    CHECK(fds[PIPES].revents & POLLIN, "the socket after %d pipes not readable", PIPES);
    for (int i = 0; i < PIPES; i++) {
        close(p[i][0]);
        close(p[i][1]);
    }
}

/* Nothing is pending on the socket: finite timeouts end with 0. */
static void quiet_timeouts(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int n = SK(poll)(&p, 1, 0);
    CHECK(n == 0 && p.revents == 0, "poll(timeout 0) with nothing pending returned %d", n);
    n = SK(poll)(&p, 1, 200);
    CHECK(n == 0 && p.revents == 0, "poll(timeout 200 ms) with nothing pending returned %d", n);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(fd, &rd);
    struct timeval tv = { 0, 300000 };
    n = SK(select)(fd + 1, &rd, NULL, NULL, &tv);
    CHECK(n == 0 && !FD_ISSET(fd, &rd), "select(300 ms) with nothing pending returned %d", n);
    FD_SET(fd, &rd);
    tv = (struct timeval){ 0, 500 };   /* under a millisecond: still a timeout, not -1 */
    n = SK(select)(fd + 1, &rd, NULL, NULL, &tv);
    CHECK(n == 0, "select(500 us) with nothing pending returned %d", n);
}

void pollmany_client(const struct rb_args *a)
{
    int fd = rb_connect(a);
    struct pollfd p = { .fd = fd, .events = POLLIN };
    CHECK(SK(poll)(&p, 1, 120000) == 1, "the server's data did not arrive");
    poll_many(fd);
    rb_recv_pattern(fd, 100, 0);
    quiet_timeouts(fd);
    rb_send_all(fd, "K", 1);
    rb_expect_eof(fd);
    rb_close(fd, "connection");
    rb_say("CLIENT OK");
}
