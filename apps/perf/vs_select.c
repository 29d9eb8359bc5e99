/*
 * vs_select - DMM perf-test echo server, select flavour: select() waits on
 * the nonblocking listener; each connection gets a thread that select()s
 * on its nonblocking socket for the direction the echo needs, until -t
 * messages. Flags and output: see server_core.h.
 */
#include "app_timeout.h"
#include "server_core.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

/* select() on one fd; 1 ready, 0 timeout, -1 error (errno). */
static int select_one(int fd, bool want_write)
{
    if (fd >= FD_SETSIZE) {
        errno = EBADF;   /* select() cannot represent this fd */
        return -1;
    }
    for (;;) {
        fd_set set;
        FD_ZERO(&set);
        FD_SET(fd, &set);
        struct timeval tv = { .tv_sec = app_timeout_ms / 1000,
                              .tv_usec = (app_timeout_ms % 1000) * 1000 };
        int n = select(fd + 1, want_write ? NULL : &set,
                       want_write ? &set : NULL, NULL,
                       app_timeout_ms < 0 ? NULL : &tv);
        if (n >= 0 || errno != EINTR)
            return n;
    }
}

static void *serve_select(void *arg)
{
    struct server_conn *c = arg;
    enum echo_next next;
    while ((next = server_conn_echo_step(c)) != ECHO_FINISHED) {
        int n = select_one(c->fd, next == ECHO_WANT_OUT);
        if (n == 0) {
            server_conn_fail(c, "timeout after %d s waiting to %s",
                             app_timeout_ms / 1000,
                             next == ECHO_WANT_IN ? "receive" : "send");
            break;
        }
        if (n < 0) {
            server_conn_fail(c, "select (fd %d): %s", c->fd, strerror(errno));
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
        int n = select_one(s->lfd, false);
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
    server_start(&s, argc, argv, true, serve_select);
    accept_all(&s);
    return server_finish(&s);
}
