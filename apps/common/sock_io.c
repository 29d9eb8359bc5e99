/* sock_io.c - bounded socket helpers (see sock_io.h). */
#include "sock_io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static bool fail(struct io_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool fail(struct io_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    va_end(ap);
    return false;
}

bool sock_set_nonblock(int fd, bool on)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return false;
    flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    return fcntl(fd, F_SETFL, flags) == 0;
}

bool sock_wait(int fd, short events, int timeout_ms, const char *what,
               struct io_error *err)
{
    struct pollfd p = { .fd = fd, .events = events };
    for (;;) {
        int n = poll(&p, 1, timeout_ms);
        if (n > 0)
            return true;
        if (n == 0)
            return fail(err, "timeout after %d s waiting to %s",
                        timeout_ms / 1000, what);
        if (errno != EINTR)
            return fail(err, "poll (%s): %s", what, strerror(errno));
    }
}

bool io_send_all(int fd, const void *buf, size_t len, int timeout_ms,
                 struct io_error *err)
{
    const char *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(fd, p + done, len - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!sock_wait(fd, POLLOUT, timeout_ms, "send", err))
                return false;
        } else if (n < 0 && errno != EINTR) {
            return fail(err, "send after %zu of %zu bytes: %s", done, len,
                        strerror(errno));
        }
    }
    return true;
}

bool io_recv_all(int fd, void *buf, size_t len, int timeout_ms,
                 struct io_error *err)
{
    char *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = recv(fd, p + done, len - done, 0);
        if (n > 0) {
            done += (size_t)n;
        } else if (n == 0) {
            return fail(err, "peer closed after %zu of %zu bytes", done, len);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!sock_wait(fd, POLLIN, timeout_ms, "receive", err))
                return false;
        } else if (errno != EINTR) {
            return fail(err, "recv after %zu of %zu bytes: %s", done, len,
                        strerror(errno));
        }
    }
    return true;
}

static int tcp_socket(int family, struct io_error *err)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        fail(err, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    return fd;
}

static bool bind_to(int fd, const struct net_addr *local, struct io_error *err)
{
    if (bind(fd, (const struct sockaddr *)&local->ss, local->len) == 0)
        return true;
    char a[NET_ADDR_STRLEN];
    return fail(err, "bind %s: %s", net_addr_str(local, a, sizeof(a)),
                strerror(errno));
}

/* Finish a nonblocking connect: wait for writability, read SO_ERROR. */
static bool connect_finish(int fd, const char *peer, int timeout_ms,
                           struct io_error *err)
{
    if (!sock_wait(fd, POLLOUT, timeout_ms, "connect", err))
        return false;
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        soerr = errno;
    if (soerr != 0)
        return fail(err, "connect %s: %s", peer, strerror(soerr));
    return true;
}

int sock_connect_tcp(const struct net_addr *local, const struct net_addr *peer,
                     int timeout_ms, struct io_error *err)
{
    char p[NET_ADDR_STRLEN];
    net_addr_str(peer, p, sizeof(p));
    int fd = tcp_socket(net_addr_family(peer), err);
    if (fd < 0)
        return -1;
    bool ok = local == NULL || bind_to(fd, local, err);
    if (ok && connect(fd, (const struct sockaddr *)&peer->ss, peer->len) != 0) {
        if (errno == EINPROGRESS || errno == EINTR)
            ok = connect_finish(fd, p, timeout_ms, err);
        else
            ok = fail(err, "connect %s: %s", p, strerror(errno));
    }
    if (!ok) {
        close(fd);
        return -1;
    }
    return fd;
}

int sock_listen_tcp(const struct net_addr *local, bool nonblock,
                    struct io_error *err)
{
    int fd = tcp_socket(net_addr_family(local), err);
    if (fd < 0)
        return -1;
    bool ok = bind_to(fd, local, err);
    if (ok && listen(fd, 128) != 0) {
        char a[NET_ADDR_STRLEN];
        ok = fail(err, "listen %s: %s", net_addr_str(local, a, sizeof(a)),
                  strerror(errno));
    }
    if (ok && !nonblock && !sock_set_nonblock(fd, false))
        ok = fail(err, "fcntl O_NONBLOCK: %s", strerror(errno));
    if (!ok) {
        close(fd);
        return -1;
    }
    return fd;
}

int sock_accept_within(int lfd, int flags, int timeout_ms, const char *what,
                       struct sockaddr_storage *peer, struct io_error *err)
{
    for (int wakeups = 0; wakeups < 100; wakeups++) {
        if (!sock_wait(lfd, POLLIN, timeout_ms, what, err))
            return -1;
        socklen_t len = sizeof(*peer);
        int fd = accept4(lfd, (struct sockaddr *)peer, peer ? &len : NULL,
                         flags);
        if (fd >= 0)
            return fd;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
            errno != ECONNABORTED) {
            fail(err, "accept: %s", strerror(errno));
            return -1;
        }
    }
    fail(err, "accept: no connection after 100 wake-ups");
    return -1;
}

void sock_bound_blocking(int fd, int timeout_ms)
{
    if (timeout_ms < 0)
        return;
    struct timeval tv = { .tv_sec = timeout_ms / 1000,
                          .tv_usec = (timeout_ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}
