/*
 * sock_io.h - bounded socket operations for the regression apps. Every
 * helper waits with poll() and the idle timeout, so no call can hang on a
 * dead peer, and on failure fills a one-line reason ("timeout after 120 s",
 * "peer closed after 17 of 200 bytes", "connect: Connection refused").
 * Sockets used with these helpers are nonblocking unless stated.
 */
#ifndef SOCK_IO_H
#define SOCK_IO_H

#include "net_addr.h"

#include <stdbool.h>
#include <stddef.h>

#define IO_REASON_LEN 160

struct io_error {
    char text[IO_REASON_LEN];
};

bool sock_set_nonblock(int fd, bool on);

/* Wait until `events` (POLLIN/POLLOUT) is ready on fd. Returns true when
 * ready (including error/hang-up, which the next call then reports). */
bool sock_wait(int fd, short events, int timeout_ms, const char *what,
               struct io_error *err);

/* Send or receive exactly len bytes on a nonblocking socket. */
bool io_send_all(int fd, const void *buf, size_t len, int timeout_ms,
                 struct io_error *err);
bool io_recv_all(int fd, void *buf, size_t len, int timeout_ms,
                 struct io_error *err);

/* A nonblocking TCP socket of the address's family, bound to `local` when
 * non-NULL (SO_REUSEADDR set), connected to `peer` within the timeout.
 * Returns the fd or -1 with the reason. */
int sock_connect_tcp(const struct net_addr *local, const struct net_addr *peer,
                     int timeout_ms, struct io_error *err);

/* A TCP listener on `local` (SO_REUSEADDR, backlog 128). `nonblock`
 * selects O_NONBLOCK. Returns the fd or -1 with the reason. */
int sock_listen_tcp(const struct net_addr *local, bool nonblock,
                    struct io_error *err);

/* Accept one connection from lfd within the timeout (accept4 with
 * `flags`); the peer's address goes to *peer when non-NULL. Wake-ups that
 * bring no connection (the client gave up, EINTR) are retried, at most
 * 100 times. `what` names the wait in the timeout reason ("accept the
 * sender"). Returns the fd or -1 with the reason. */
int sock_accept_within(int lfd, int flags, int timeout_ms, const char *what,
                       struct sockaddr_storage *peer, struct io_error *err);

/* Give a blocking socket SO_RCVTIMEO and SO_SNDTIMEO of timeout_ms (none
 * when negative), so a blocking accept(), recv() or send() on it fails
 * with EAGAIN after the idle timeout instead of hanging on a dead peer. */
void sock_bound_blocking(int fd, int timeout_ms);

#endif /* SOCK_IO_H */
