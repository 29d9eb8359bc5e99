/*
 * net_addr.h - IPv4/IPv6 literal addresses for the regression apps.
 * The apps take numeric addresses only (no name resolution), so a typo is
 * reported at once instead of silently resolving somewhere else.
 */
#ifndef NET_ADDR_H
#define NET_ADDR_H

#include <stdbool.h>
#include <sys/socket.h>

struct net_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Parse a numeric IPv4 or IPv6 address and a port. Returns false (errno
 * EINVAL) when `ip` is neither form or the port is out of 0..65535. */
bool net_addr_parse(const char *ip, int port, struct net_addr *out);

/* The wildcard address of a family (0.0.0.0 or ::) with a port. */
void net_addr_any(int family, int port, struct net_addr *out);

int net_addr_family(const struct net_addr *a);

void net_addr_set_port(struct net_addr *a, int port);

/* "192.168.21.180:20000" or "[fd21::180]:20000"; returns buf. */
const char *net_addr_str(const struct net_addr *a, char *buf, size_t size);

/* Same, from a raw sockaddr (e.g. accept()'s peer). */
const char *net_sockaddr_str(const struct sockaddr *sa, char *buf, size_t size);

#define NET_ADDR_STRLEN 64

#endif /* NET_ADDR_H */
