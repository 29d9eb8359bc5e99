/*
 * vs_poll - echo server, poll flavour (not in DMM, whose dispatcher did not
 * hook poll; this one exercises ours): poll() waits on the nonblocking
 * listener; each connection gets a thread that poll()s its nonblocking
 * socket for the direction the echo needs, until -t messages.
 * Flags and output: see server_core.h.
 */
#include "app_timeout.h"
#include "server_core.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* poll() on one fd; 1 ready, 0 timeout, -1 error (errno). */
static int poll_one(int fd, short events)
{
    struct pollfd p = { .fd = fd, .events = events };
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

static void *serve_poll(void *arg)
{
    struct server_conn *c = arg;
    enum echo_next next;
    while ((next = server_conn_echo_step(c)) != ECHO_FINISHED) {
        int n = poll_one(c->fd, next == ECHO_WANT_OUT ? POLLOUT : POLLIN);
        if (n == 0) {
            server_conn_fail(c, "timeout after %d s waiting to %s",
                             app_timeout_ms / 1000,
                             next == ECHO_WANT_IN ? "receive" : "send");
            break;
        }
        if (n < 0) {
            server_conn_fail(c, "poll (fd %d): %s", c->fd, strerror(errno));
            break;
        }
    }
    close(c->fd);
    return NULL;
}

static void accept_all(struct server *s)
{
    char why[96];
    for (;;) {
        server_accept_ready(s, SOCK_NONBLOCK);
        if (server_all_accepted(s))
            return;
        int n = poll_one(s->lfd, POLLIN);
        if (n == 0) {
            snprintf(why, sizeof(why), "timeout after %d s waiting for a "
                     "connection", app_timeout_ms / 1000);
            server_accept_failed(s, why);
        }
        if (n < 0)
            server_accept_failed(s, strerror(errno));
    }
}

int main(int argc, char **argv)
{
    struct server s;
    server_start(&s, argc, argv, true, serve_poll);
    accept_all(&s);
    return server_finish(&s);
}
