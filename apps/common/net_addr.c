/* net_addr.c - numeric address parsing and printing (see net_addr.h). */
#include "net_addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Fill *out from a literal of one family; false when ip is not one. */
static bool parse_family(int family, const char *ip, int port,
                         struct net_addr *out)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->ss;
    void *dst = family == AF_INET ? (void *)&v4->sin_addr : (void *)&v6->sin6_addr;
    /* Cleared per family: a failed IPv4 parse must leave nothing behind
     * in the IPv6 fields (flowinfo shares bytes with sin_addr). */
    memset(out, 0, sizeof(*out));
    if (inet_pton(family, ip, dst) != 1)
        return false;
    out->ss.ss_family = (sa_family_t)family;
    out->len = family == AF_INET ? sizeof(*v4) : sizeof(*v6);
    net_addr_set_port(out, port);
    return true;
}

bool net_addr_parse(const char *ip, int port, struct net_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (ip != NULL && port >= 0 && port <= 65535 &&
        (parse_family(AF_INET, ip, port, out) ||
         parse_family(AF_INET6, ip, port, out)))
        return true;
    errno = EINVAL;
    return false;
}

void net_addr_any(int family, int port, struct net_addr *out)
{
    net_addr_parse(family == AF_INET6 ? "::" : "0.0.0.0", port, out);
}

int net_addr_family(const struct net_addr *a)
{
    return a->ss.ss_family;
}

void net_addr_set_port(struct net_addr *a, int port)
{
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
}

const char *net_sockaddr_str(const struct sockaddr *sa, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip));
        snprintf(buf, size, "%s:%u", ip, ntohs(v4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, size, "[%s]:%u", ip, ntohs(v6->sin6_port));
    } else {
        snprintf(buf, size, "(family %d)", sa->sa_family);
    }
    return buf;
}

const char *net_addr_str(const struct net_addr *a, char *buf, size_t size)
{
    return net_sockaddr_str((const struct sockaddr *)&a->ss, buf, size);
}
