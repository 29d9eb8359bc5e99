/* server_wait.c - one-fd wait loops of vs_poll and vs_select (see server_wait.h). */
#include "server_wait.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The waiter of this process: set in server_wait_main() before any
 * thread starts, read-only afterwards, so no lock. */
static const struct fd_waiter *waiter;

/* Thread body of a connection: echo until its verdict, waiting whenever
 * the socket would block. */
static void *serve_conn(void *conn)
{
    struct server_conn *c = conn;
    const struct fd_waiter *w = waiter;
    enum echo_next next;
    while ((next = server_conn_echo_step(c)) != ECHO_FINISHED) {
        int n = w->wait(c->fd, next == ECHO_WANT_OUT);
        if (n == 0) {
            server_conn_timed_out(c, next);
            break;
        }
        if (n < 0) {
            server_conn_fail(c, "%s (fd %d): %s", w->call, c->fd,
                             strerror(errno));
            break;
        }
    }
    close(c->fd);
    return NULL;
}

/* Accept -n connections (SOCK_NONBLOCK), waiting between bursts; a timeout
 * or error exits 1 through server_accept_failed(). */
static void accept_all(struct server *s, const struct fd_waiter *w)
{
    for (;;) {
        server_accept_ready(s, SOCK_NONBLOCK);
        if (server_all_accepted(s))
            return;
        int n = w->wait(s->lfd, false);
        if (n == 0)
            server_accept_timed_out(s);
        if (n < 0)
            server_accept_failed(s, strerror(errno));
    }
}

int server_wait_main(int argc, char **argv, const struct fd_waiter *w)
{
    struct server s;
    waiter = w;
    server_start(&s, argc, argv, true, serve_conn);
    accept_all(&s, w);
    return server_finish(&s);
}
