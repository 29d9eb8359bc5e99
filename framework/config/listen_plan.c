/*
 * listen_plan.c - which stacks a wildcard listener listens on. A server
 * that listens on 0.0.0.0 / :: expects every client that can reach this
 * host to reach it; clients of a module stack arrive on that module, so
 * every module that an ip_route sends one of our own addresses to listens
 * too. Shared by libnStackAPI.so and nstack-route, so the tool gives the
 * library's answer. Runs at listen time only (getifaddrs allocates).
 */
#include <ifaddrs.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cfg_internal.h"

static int plan_has(const struct nstack_listen_plan *p, int module)
{
    if (module == p->primary.module)
        return 1;
    for (int i = 0; i < p->n_extra; i++)
        if (p->extra[i].module == module)
            return 1;
    return 0;
}

/* An AF_INET6 listener is dual-stack, so IPv4 addresses count for it. */
static int family_counts(int listener_family, int addr_family)
{
    return addr_family == AF_INET ||
           (addr_family == AF_INET6 && listener_family == AF_INET6);
}

static void plan_consider(const struct nstack_config *cfg, int family, int sock_type,
                          const struct sockaddr *a, struct nstack_listen_plan *p)
{
    struct nstack_route_result r;
    const void *bits;

    if (!family_counts(family, a->sa_family))
        return;
    nstack_route_lookup(cfg, a, sock_type, &r);
    if (r.rule != NSTACK_RULE_IP_ROUTE || r.module < 0 || plan_has(p, r.module) ||
        p->n_extra >= NSTACK_MAX_MODULES)
        return;
    struct nstack_listen_extra *x = &p->extra[p->n_extra++];
    x->module = r.module;
    x->index = r.index;
    x->anchor_off = r.anchor_off;
    bits = a->sa_family == AF_INET ? (const void *)&((const struct sockaddr_in *)a)->sin_addr
                                   : (const void *)&((const struct sockaddr_in6 *)a)->sin6_addr;
    if (!inet_ntop(a->sa_family, bits, x->local, sizeof(x->local)))
        snprintf(x->local, sizeof(x->local), "?");
}

void nstack_listen_plan(const struct nstack_config *cfg, int family,
                        int sock_type, struct nstack_listen_plan *out)
{
    struct ifaddrs *list = NULL;

    memset(out, 0, sizeof(*out));
    nstack_route_lookup(cfg, NULL, sock_type, &out->primary);
    if (!cfg || cfg->multi_listen_off || getifaddrs(&list) < 0)
        return;
    for (struct ifaddrs *i = list; i != NULL; i = i->ifa_next)
        if (i->ifa_addr != NULL)
            plan_consider(cfg, family, sock_type, i->ifa_addr, out);
    freeifaddrs(list);
}
