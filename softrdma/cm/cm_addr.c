/* softrdma librdmacm: addresses: local checks, source selection, listener
 * names in the fabric directory, rdma_getaddrinfo. No AF_INET sockets are
 * created here (the nStack preload intercepts those). */
#include "cm_internal.h"
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

socklen_t cm_addrlen(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static const uint8_t *cm_v4_of(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    return IN6_IS_ADDR_V4MAPPED(a) ? &a->s6_addr[12] : NULL;
}

int cm_is_any(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

int cm_is_loopback(const struct sockaddr *sa)
{
    const uint8_t *v4 = cm_v4_of(sa);
    if (v4)
        return v4[0] == 127;
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

uint16_t cm_port(const struct sockaddr *sa)
{
    return ntohs(sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                           : ((const struct sockaddr_in *)sa)->sin_port);
}

void cm_set_port(struct sockaddr *sa, uint16_t port)
{
    if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)sa)->sin_port = htons(port);
}

/* Loopback names carry the host (network namespace) so hosts don't meet.
 * make_dir: create the directory (a listener); a connecting side only
 * names it (a missing directory is a missing listener), one mkdir less
 * per connection. */
static int cm_name(const struct sockaddr *sa, uint16_t port, char *out, size_t len, int make_dir)
{
    char ip[INET6_ADDRSTRLEN] = "";
    const uint8_t *v4 = cm_v4_of(sa);
    if (v4)
        inet_ntop(AF_INET, v4, ip, sizeof ip);
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof ip);
    char host[32] = "";
    if (cm_is_loopback(sa)) {
        struct stat st;
        snprintf(host, sizeof host, "h%lu-",
                 stat("/proc/self/ns/net", &st) ? 0ul : (unsigned long)st.st_ino);
    }
    char dir[300];
    snprintf(dir, sizeof dir, "%s/cm", sr_fabric_dir());
    if (make_dir && sr_mkdir_p(dir))
        return -1;
    int n = snprintf(out, len, "%s/%s%s_%u", dir, host, ip, port);
    return n < (int)len ? 0 : -1;
}

int cm_listen_name(const struct sockaddr *sa, uint16_t port, char *out, size_t len)
{
    return cm_name(sa, port, out, len, 1);
}

int cm_peer_listen_name(const struct sockaddr *sa, uint16_t port, char *out, size_t len)
{
    return cm_name(sa, port, out, len, 0);
}

int cm_local_addrs(int family, struct sockaddr_storage *out, int max)
{
    struct sr_ifaddr a[SR_MAX_IFADDRS];
    int na = sr_ifaddrs(a, SR_MAX_IFADDRS), n = 0;
    if (na < 0)
        return -1;
    for (int k = 0; k < na && n < max; k++)
        if (a[k].addr.sin6_family == family) {
            memset(&out[n], 0, sizeof out[n]);
            memcpy(&out[n++], &a[k].addr, cm_addrlen((const struct sockaddr *)&a[k].addr));
        }
    return n;
}

static int cm_same_subnet(const struct sockaddr *a, const struct sockaddr *b,
                          const struct sockaddr *mask)
{
    const uint8_t *x, *y, *m;
    size_t n;
    if (a->sa_family == AF_INET) {
        x = (const uint8_t *)&((const struct sockaddr_in *)a)->sin_addr;
        y = (const uint8_t *)&((const struct sockaddr_in *)b)->sin_addr;
        m = (const uint8_t *)&((const struct sockaddr_in *)mask)->sin_addr;
        n = 4;
    } else {
        x = ((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr;
        y = ((const struct sockaddr_in6 *)b)->sin6_addr.s6_addr;
        m = ((const struct sockaddr_in6 *)mask)->sin6_addr.s6_addr;
        n = 16;
    }
    for (size_t i = 0; i < n; i++)
        if ((x[i] & m[i]) != (y[i] & m[i]))
            return 0;
    return 1;
}

/* Is dst one of the listed addresses (as GIDs: IPv4-mapped IPv6 too)? */
static int cm_addr_in(const struct sockaddr *dst, const struct sr_ifaddr *a, int na)
{
    union ibv_gid g, h;
    sr_gid_from_sa(dst, &g);
    for (int k = 0; k < na; k++) {
        sr_gid_from_sa((const struct sockaddr *)&a[k].addr, &h);
        if (!memcmp(&g, &h, sizeof g))
            return 1;
    }
    return 0;
}

/* The kernel's choice for directly connected networks: loopback for
 * loopback, the interface address on the destination's subnet, else the
 * first non-loopback address of the family. */
int cm_pick_source(const struct sockaddr *dst, struct sockaddr_storage *src)
{
    struct sr_ifaddr a[SR_MAX_IFADDRS];
    const struct sockaddr *best = NULL, *any = NULL;
    memset(src, 0, sizeof *src);
    int lo = cm_is_loopback(dst);      /* needs no list (at EMFILE neither) */
    int na = lo ? 0 : sr_ifaddrs(a, SR_MAX_IFADDRS);   /* one list for every question */
    if (na < 0)
        return -1;
    if (lo || cm_addr_in(dst, a, na)) {
        memcpy(src, dst, cm_addrlen(dst));
        cm_set_port((struct sockaddr *)src, 0);
        return 0;
    }
    for (int k = 0; k < na; k++) {
        const struct sockaddr *sa = (const struct sockaddr *)&a[k].addr;
        if (sa->sa_family != dst->sa_family || (a[k].flags & IFF_LOOPBACK) ||
            !(a[k].flags & IFF_UP))
            continue;
        if (dst->sa_family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(&a[k].addr.sin6_addr))
            continue;
        if (!any)
            any = sa;
        if (!best && a[k].mask.sin6_family &&
            cm_same_subnet(sa, dst, (const struct sockaddr *)&a[k].mask))
            best = sa;
    }
    if (!best)
        best = any;
    if (!best) {
        errno = ENETUNREACH;
        return -1;
    }
    memcpy(src, best, cm_addrlen(best));
    return 0;
}

int cm_link_check(const struct sockaddr *src, const char *who)
{
    char ifname[32] = "";
    if (sr_addr_link_up(src, ifname, sizeof ifname) != 0)
        return 0;
    sr_log("%s: interface %s of the source address is down (no link)", who, ifname);
    errno = ENETUNREACH;
    return -1;
}

struct ibv_pd *cm_default_pd(void)
{
    static struct ibv_pd *pd;
    static unsigned pd_epoch;
    pthread_mutex_lock(&sr_lock);
    if (!pd || pd_epoch != sr_epoch) {
        pd = ibv_alloc_pd(sr_default_context());
        pd_epoch = sr_epoch;
    }
    pthread_mutex_unlock(&sr_lock);
    return pd;
}

static struct sockaddr *cm_dup_addr(const struct sockaddr *sa, socklen_t len)
{
    struct sockaddr *d = calloc(1, sizeof(struct sockaddr_storage));
    if (d)
        memcpy(d, sa, len);
    return d;
}

CM_API int rdma_getaddrinfo(const char *node, const char *service,
                            const struct rdma_addrinfo *hints, struct rdma_addrinfo **res)
{
    struct addrinfo h = { .ai_socktype = SOCK_STREAM }, *ai;
    if (hints) {
        if (hints->ai_family == AF_IB) {
            sr_log("rdma_getaddrinfo: AF_IB is not supported by softrdma");
            errno = EAFNOSUPPORT;
            return -1;
        }
        h.ai_family = hints->ai_family;
        if (hints->ai_flags & RAI_PASSIVE)
            h.ai_flags |= AI_PASSIVE;
        if (hints->ai_flags & RAI_NUMERICHOST)
            h.ai_flags |= AI_NUMERICHOST;
    }
    int rc = getaddrinfo(node, service, &h, &ai);
    if (rc) {
        errno = rc == EAI_SYSTEM ? errno : ENOENT;
        return rc;
    }
    struct rdma_addrinfo *r = calloc(1, sizeof *r);
    if (!r) {
        freeaddrinfo(ai);
        errno = ENOMEM;
        return EAI_MEMORY;
    }
    int passive = hints && (hints->ai_flags & RAI_PASSIVE);
    r->ai_flags = hints ? hints->ai_flags : 0;
    r->ai_family = ai->ai_family;
    r->ai_qp_type = hints && hints->ai_qp_type ? hints->ai_qp_type : IBV_QPT_RC;
    r->ai_port_space = hints && hints->ai_port_space ? hints->ai_port_space : RDMA_PS_TCP;
    if (passive) {
        r->ai_src_len = ai->ai_addrlen;
        r->ai_src_addr = cm_dup_addr(ai->ai_addr, ai->ai_addrlen);
    } else {
        r->ai_dst_len = ai->ai_addrlen;
        r->ai_dst_addr = cm_dup_addr(ai->ai_addr, ai->ai_addrlen);
        if (hints && hints->ai_src_addr) {
            r->ai_src_len = hints->ai_src_len;
            r->ai_src_addr = cm_dup_addr(hints->ai_src_addr, hints->ai_src_len);
        }
    }
    freeaddrinfo(ai);
    *res = r;
    return 0;
}

CM_API void rdma_freeaddrinfo(struct rdma_addrinfo *res)
{
    while (res) {
        struct rdma_addrinfo *next = res->ai_next;
        free(res->ai_src_addr);
        free(res->ai_dst_addr);
        free(res->ai_src_canonname);
        free(res->ai_dst_canonname);
        free(res->ai_route);
        free(res->ai_connect);
        free(res);
        res = next;
    }
}
