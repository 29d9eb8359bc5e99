/*
 * vs_poll - echo server, poll flavour (not in DMM, whose dispatcher did not
 * hook poll; this one exercises ours): poll() waits on the nonblocking
 * listener; each connection gets a thread that poll()s its nonblocking
 * socket for the direction the echo needs, until -t messages.
 * Flags and output: see server_core.h.
 */
#include "app_timeout.h"
#include "server_wait.h"

#include <errno.h>
#include <poll.h>

/* poll() on one fd; 1 ready, 0 timeout, -1 error (errno). */
static int poll_one(int fd, bool want_write)
{
    struct pollfd p = { .fd = fd, .events = want_write ? POLLOUT : POLLIN };
    for (;;) {
        int n = poll(&p, 1, app_timeout_ms);
        if (n > 0 && (p.revents & POLLNVAL)) {
            errno = EBADF;
            return -1;
        }
        if (n >= 0 || errno != EINTR)
            return n;
    }
}

static const struct fd_waiter poll_waiter = { "poll", poll_one };

int main(int argc, char **argv)
{
    return server_wait_main(argc, argv, &poll_waiter);
}
