/*
 * app_listen.h - the listener of every server app: a TCP listener plus the
 * "listening on IP:PORT" line, printed only once the socket listens, since
 * test scripts start the client when they see it.
 */
#ifndef APP_LISTEN_H
#define APP_LISTEN_H

#include "net_addr.h"
#include "sock_io.h"

#include <stdbool.h>

/* sock_listen_tcp(), then the banner on stdout. The fd, or -1 with the
 * reason in *err (no banner). */
int app_listen_announce(const struct net_addr *local, bool nonblock,
                        struct io_error *err);

#endif /* APP_LISTEN_H */
