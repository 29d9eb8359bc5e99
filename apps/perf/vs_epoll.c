/*
 * vs_epoll - DMM perf-test echo server, epoll flavour: the listener sits in
 * an edge-triggered epoll and is drained with accept4(SOCK_NONBLOCK); each
 * connection gets a thread with its own edge-triggered epoll and echoes
 * until -t messages. Flags and output: see server_core.h.
 */
#include "app_timeout.h"
#include "server_core.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static int epoll_for(int fd, uint32_t events)
{
    int ep = epoll_create(1);
    if (ep < 0)
        return -1;
    struct epoll_event ev = { .events = events, .data.fd = fd };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int saved = errno;
        close(ep);
        errno = saved;
        return -1;
    }
    return ep;
}

/* One edge-triggered wait; false (verdict set) on timeout or error. */
static bool wait_edge(struct server_conn *c, int ep, enum echo_next next)
{
    struct epoll_event ev;
    for (;;) {
        int n = epoll_wait(ep, &ev, 1, app_timeout_ms);
        if (n > 0)
            return true;
        if (n == 0) {
            server_conn_timed_out(c, next);
            return false;
        }
        if (errno != EINTR) {
            server_conn_fail(c, "epoll_wait: %s", strerror(errno));
            return false;
        }
    }
}

static void *serve_epoll(void *arg)
{
    struct server_conn *c = arg;
    int ep = epoll_for(c->fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
    if (ep < 0) {
        server_conn_fail(c, "epoll for the connection: %s", strerror(errno));
    } else {
        enum echo_next next;
        while ((next = server_conn_echo_step(c)) != ECHO_FINISHED &&
               wait_edge(c, ep, next))
            ;
        close(ep);
    }
    close(c->fd);
    return NULL;
}

static void accept_all(struct server *s)
{
    int ep = epoll_for(s->lfd, EPOLLIN | EPOLLET);
    if (ep < 0)
        server_accept_failed(s, "epoll for the listener failed");
    for (;;) {
        server_accept_ready(s, SOCK_NONBLOCK);
        if (server_all_accepted(s))
            break;
        struct epoll_event ev;
        int n = epoll_wait(ep, &ev, 1, app_timeout_ms);
        if (n == 0)
            server_accept_timed_out(s);
        if (n < 0 && errno != EINTR)
            server_accept_failed(s, strerror(errno));
    }
    close(ep);
}

int main(int argc, char **argv)
{
    struct server s;
    server_start(&s, argc, argv, true, serve_epoll);
    accept_all(&s);
    return server_finish(&s);
}
