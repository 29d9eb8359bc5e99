/*
 * client_addr.h - the two addresses of a client connection, from the
 * command line of vc_common and fork_client: the server (-d IP, port) and
 * the optional own address (-s IP, source port). A bad or mismatched
 * address exits 2 with one line naming the flag.
 */
#ifndef CLIENT_ADDR_H
#define CLIENT_ADDR_H

#include "net_addr.h"

#include <stdbool.h>

/* Fills *peer and *local (the wildcard of the peer's family when bind_ip
 * is NULL). Returns true when the client must bind *local: an own IP or a
 * nonzero source port was given. */
bool client_addr_resolve(const char *dst_ip, int dst_port,
                         const char *bind_ip, int src_port,
                         struct net_addr *peer, struct net_addr *local);

#endif /* CLIENT_ADDR_H */
