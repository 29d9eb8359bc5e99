/* server_conn.c - per-connection echo and accounting (see server_conn.h). */
#include "server_conn.h"

#include "app_fail.h"
#include "app_timeout.h"
#include "mono_clock.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

bool server_conn_init(struct server_conn *c, const struct perf_opts *o,
                      int index, int fd, const struct sockaddr *peer)
{
    memset(c, 0, sizeof(*c));
    c->o = o;
    c->index = index;
    c->fd = fd;
    c->buf = malloc(o->msg_len);
    c->target = (uint64_t)o->count * o->msg_len;
    c->next_report = (uint64_t)o->print_every;
    c->t_report = mono_now();
    net_sockaddr_str(peer, c->peer, sizeof(c->peer));
    return c->buf != NULL;
}

void server_conn_release(struct server_conn *c)
{
    free(c->buf);
    c->buf = NULL;
}

size_t server_conn_recv_room(const struct server_conn *c)
{
    size_t room = c->o->msg_len;
    if (c->target > 0 && c->target - c->bytes_in < room)
        room = (size_t)(c->target - c->bytes_in);
    return room;
}

void server_conn_received(struct server_conn *c, size_t n)
{
    const struct perf_opts *o = c->o;
    c->bytes_in += n;
    if (!o->print || o->print_every <= 0)
        return;
    uint64_t msgs = c->bytes_in / o->msg_len;
    while (msgs >= c->next_report) {
        double now = mono_now();
        printf("conn %d receive %" PRIu64 " , pps=%.0f\n", c->index,
               c->next_report,
               mono_rate((double)o->print_every, now - c->t_report));
        c->t_report = now;
        c->next_report += (uint64_t)o->print_every;
    }
}

void server_conn_fail(struct server_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
    va_end(ap);
    c->finished = true;
    c->complete = false;
}

void server_conn_timed_out(struct server_conn *c, enum echo_next next)
{
    server_conn_fail(c, "timeout after %d s waiting to %s",
                     app_timeout_ms / 1000,
                     next == ECHO_WANT_OUT ? "send" : "receive");
}

void server_conn_peer_closed(struct server_conn *c)
{
    size_t len = c->o->msg_len;
    if (c->target > 0) {
        server_conn_fail(c, "peer closed after %" PRIu64 " of %ld messages",
                         c->bytes_in / len, c->o->count);
    } else if (c->bytes_in % len != 0) {
        server_conn_fail(c, "peer closed inside message %" PRIu64
                         " (%" PRIu64 " bytes)", c->bytes_in / len, c->bytes_in);
    } else {
        c->finished = c->complete = true;
    }
}

bool server_conn_target_done(struct server_conn *c)
{
    if (c->target == 0 || c->bytes_out < c->target)
        return false;
    c->finished = c->complete = true;
    return true;
}

/* Echo what is pending; false when the socket would block or failed. */
static bool flush_pending(struct server_conn *c, enum echo_next *next)
{
    while (c->pend_len > 0) {
        ssize_t n = send(c->fd, c->buf + c->pend_off, c->pend_len, MSG_NOSIGNAL);
        if (n > 0) {
            c->pend_off += (size_t)n;
            c->pend_len -= (size_t)n;
            c->bytes_out += (uint64_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            *next = ECHO_WANT_OUT;
            return false;
        } else if (n < 0 && errno != EINTR) {
            server_conn_fail(c, "send: %s", strerror(errno));
            *next = ECHO_FINISHED;
            return false;
        }
    }
    return true;
}

/* Read the next chunk; false when the socket would block or the
 * connection ended. */
static bool read_chunk(struct server_conn *c, enum echo_next *next)
{
    ssize_t n = recv(c->fd, c->buf, server_conn_recv_room(c), 0);
    if (n > 0) {
        server_conn_received(c, (size_t)n);
        c->pend_off = 0;
        c->pend_len = (size_t)n;
        return true;
    }
    if (n == 0) {
        server_conn_peer_closed(c);
        *next = ECHO_FINISHED;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        *next = ECHO_WANT_IN;
    } else if (errno == EINTR) {
        return true;
    } else {
        server_conn_fail(c, "recv: %s", strerror(errno));
        *next = ECHO_FINISHED;
    }
    return false;
}

enum echo_next server_conn_echo_step(struct server_conn *c)
{
    enum echo_next next = ECHO_FINISHED;
    for (;;) {
        if (!flush_pending(c, &next))
            return next;
        if (server_conn_target_done(c))
            return ECHO_FINISHED;
        if (!read_chunk(c, &next))
            return next;
    }
}

void server_conn_print_result(const struct server_conn *c)
{
    printf("conn %d done: receive %" PRIu64 " messages , %" PRIu64
           " bytes echoed , peer %s , result=%s%s%s\n", c->index,
           c->bytes_in / c->o->msg_len, c->bytes_out, c->peer,
           c->complete ? "ok" : "FAIL", c->complete ? "" : " : ",
           c->complete ? "" : c->reason);
}
