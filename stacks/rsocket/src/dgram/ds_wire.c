/* ds_wire.c - datagram rsocket headers (ds_wire.h). Every field is a byte
 * or in network order, so no byte-order flag is needed. */
#include "ds_wire.h"

#include <string.h>

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

size_t ds_udp_hdr_put(uint8_t *p, int family, uint8_t op, uint32_t qpn, const void *ip)
{
    int v6 = family == AF_INET6;
    put32(p, DS_UDP_TAG);
    p[4] = v6 ? 6 : 4;
    p[5] = op;
    p[6] = v6 ? DS_UDP_HDR6 : DS_UDP_HDR4;
    p[7] = 0;
    put32(p + 8, qpn & 0xFFFFFFu);
    memcpy(p + 12, ip, v6 ? 16 : 4);
    return p[6];
}

int ds_udp_hdr_get(const uint8_t *p, size_t n, int src_family, struct ds_udp_info *out)
{
    if (n < DS_UDP_HDR4 || get32(p) != DS_UDP_TAG)
        return -1;
    int ok4 = p[4] == 4 && src_family == AF_INET && p[6] == DS_UDP_HDR4;
    int ok6 = p[4] == 6 && src_family == AF_INET6 && p[6] == DS_UDP_HDR6;
    if ((!ok4 && !ok6) || n < p[6])
        return -1;
    out->version = p[4];
    out->op = p[5];
    out->len = p[6];
    out->qpn = get32(p + 8) & 0xFFFFFFu;
    return 0;
}

size_t ds_hdr_put(uint8_t *p, const struct sockaddr *self)
{
    if (self->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)self;
        p[0] = 6;
        p[1] = DS_HDR6;
        memcpy(p + 2, &s6->sin6_port, 2);
        memcpy(p + 4, &s6->sin6_flowinfo, 4);
        memcpy(p + 8, &s6->sin6_addr, 16);
        return DS_HDR6;
    }
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)self;
    p[0] = 4;
    p[1] = DS_HDR4;
    memcpy(p + 2, &s4->sin_port, 2);
    memcpy(p + 4, &s4->sin_addr, 4);
    return DS_HDR4;
}

int ds_hdr_get(const uint8_t *p, size_t n, int family, struct sockaddr_storage *src,
               size_t *hlen)
{
    memset(src, 0, sizeof(*src));
    if (n >= DS_HDR4 && p[0] == 4 && p[1] == DS_HDR4 && family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)src;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_port, p + 2, 2);
        memcpy(&s4->sin_addr, p + 4, 4);
        *hlen = DS_HDR4;
        return 0;
    }
    if (n >= DS_HDR6 && p[0] == 6 && p[1] == DS_HDR6 && family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)src;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_port, p + 2, 2);
        memcpy(&s6->sin6_flowinfo, p + 4, 4);
        memcpy(&s6->sin6_addr, p + 8, 16);
        *hlen = DS_HDR6;
        return 0;
    }
    return -1;
}

int ds_addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
           memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

uint32_t ds_addr_hash(const struct sockaddr *a)
{
    uint32_t h = 2166136261u;
    const uint8_t *p;
    size_t n;
    if (a->sa_family == AF_INET) {
        p = (const uint8_t *)&((const struct sockaddr_in *)a)->sin_addr;
        n = 4;
    } else {
        p = (const uint8_t *)&((const struct sockaddr_in6 *)a)->sin6_addr;
        n = 16;
    }
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    uint16_t port = ((const struct sockaddr_in *)a)->sin_port;   /* same offset in sin6 */
    h = (h ^ (port & 0xFF)) * 16777619u;
    return (h ^ (port >> 8)) * 16777619u;
}
