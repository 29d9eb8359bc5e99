/*
 * vs_common - DMM perf-test echo server, blocking flavour: blocking
 * accept() and one thread per connection doing blocking recv()/send()
 * until -t messages. Blocking calls are still bounded by the idle timeout:
 * poll() guards each accept()/recv(), SO_RCVTIMEO/SO_SNDTIMEO catch the
 * rest.
 * Flags and output: see server_core.h.
 */
#include "app_timeout.h"
#include "server_core.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Blocking send of the whole buffer; false (verdict set) on failure. */
static bool send_blocking(struct server_conn *c, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(c->fd, c->buf + done, len - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
            c->bytes_out += (uint64_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            server_conn_fail(c, "timeout after %d s waiting to send",
                             app_timeout_ms / 1000);
            return false;
        } else if (n < 0 && errno != EINTR) {
            server_conn_fail(c, "send: %s", strerror(errno));
            return false;
        }
    }
    return true;
}

/* Blocking receive of the next chunk; 0 at EOF, -1 (verdict set) on failure. */
static ssize_t recv_blocking(struct server_conn *c)
{
    struct io_error err;
    if (!sock_wait(c->fd, POLLIN, app_timeout_ms, "receive", &err)) {
        server_conn_fail(c, "%s", err.text);
        return -1;
    }
    ssize_t n;
    do {
        n = recv(c->fd, c->buf, server_conn_recv_room(c), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        server_conn_fail(c, "recv: %s", strerror(errno));
    return n;
}

static void *serve_blocking(void *arg)
{
    struct server_conn *c = arg;
    sock_bound_blocking(c->fd, app_timeout_ms);
    while (!server_conn_target_done(c)) {
        ssize_t n = recv_blocking(c);
        if (n == 0)
            server_conn_peer_closed(c);
        if (n <= 0)
            break;
        server_conn_received(c, (size_t)n);
        if (!send_blocking(c, (size_t)n))
            break;
    }
    close(c->fd);
    return NULL;
}

static void accept_all(struct server *s)
{
    sock_bound_blocking(s->lfd, app_timeout_ms);
    while (!server_all_accepted(s)) {
        struct io_error err;
        if (!sock_wait(s->lfd, POLLIN, app_timeout_ms, "accept a connection",
                       &err))
            server_accept_failed(s, err.text);
        /* Blocking accept of the connection the wait saw; should the peer
         * have given up in between, SO_RCVTIMEO ends it with EAGAIN and
         * the loop waits again. */
        server_accept_one(s, 0);
    }
}

int main(int argc, char **argv)
{
    struct server s;
    server_start(&s, argc, argv, false, serve_blocking);
    accept_all(&s);
    return server_finish(&s);
}
