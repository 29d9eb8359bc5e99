/* client_addr.c - client address resolution (see client_addr.h). */
#include "client_addr.h"

#include "app_fail.h"

#include <stddef.h>

bool client_addr_resolve(const char *dst_ip, int dst_port,
                         const char *bind_ip, int src_port,
                         struct net_addr *peer, struct net_addr *local)
{
    if (!net_addr_parse(dst_ip, dst_port, peer))
        app_die(APP_EXIT_USAGE, "-d: \"%s\": not an IPv4 or IPv6 address",
                dst_ip);
    if (bind_ip == NULL)
        net_addr_any(net_addr_family(peer), src_port, local);
    else if (!net_addr_parse(bind_ip, src_port, local))
        app_die(APP_EXIT_USAGE, "-s: \"%s\": not an IPv4 or IPv6 address",
                bind_ip);
    /* bind() would fail later with a vaguer "Address family not supported". */
    if (net_addr_family(local) != net_addr_family(peer))
        app_die(APP_EXIT_USAGE, "-s %s and -d %s: address families differ",
                bind_ip, dst_ip);
    return bind_ip != NULL || src_port > 0;
}
