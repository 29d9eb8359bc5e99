/* net_addr.c - numeric address parsing and printing (see net_addr.h). */
#include "net_addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

bool net_addr_parse(const char *ip, int port, struct net_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (ip == NULL || port < 0 || port > 65535) {
        errno = EINVAL;
        return false;
    }
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        out->len = sizeof(*v4);
        return true;
    }
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        out->len = sizeof(*v6);
        return true;
    }
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
