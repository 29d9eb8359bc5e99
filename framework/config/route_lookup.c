/*
 * route_lookup.c - which stack carries a socket:
 *   1. ip_route, longest prefix first (built-in loopback/wildcard rules
 *      lose to a config entry of the same subnet);
 *   2. prot_route by socket type;
 *   3. default_stack_name.
 * Reads only the immutable loaded configuration: thread-safe, and it neither
 * allocates nor calls the stdio formatter (the text is assembled by hand).
 */
#include <string.h>
#include <sys/socket.h>

#include "cfg_internal.h"

/* Append `s` to the NUL-terminated `out` of capacity `cap`, truncating. */
static void route_append(char *out, size_t cap, const char *s)
{
    size_t len = strlen(out), n = strlen(s);

    if (len + 1 >= cap)
        return;
    if (n > cap - len - 1)
        n = cap - len - 1;
    memcpy(out + len, s, n);
    out[len + n] = '\0';
}

static void route_append_int(char *out, size_t cap, int v)
{
    char digits[12];
    int i = (int)sizeof(digits) - 1;
    unsigned int u = v < 0 ? 0u : (unsigned int)v;

    digits[i] = '\0';
    do {
        digits[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u && i > 0);
    route_append(out, cap, digits + i);
}

/* The key as 16 bytes (IPv4 in the first 4, IPv4-mapped IPv6 unmapped). */
static int route_key(const struct sockaddr *key, uint8_t addr[16])
{
    memset(addr, 0, 16);
    if (key->sa_family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *)key)->sin_addr, 4);
        return AF_INET;
    }
    if (key->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)key)->sin6_addr;

        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(addr, a->s6_addr + 12, 4);
            return AF_INET;
        }
        memcpy(addr, a->s6_addr, 16);
        return AF_INET6;
    }
    return AF_UNSPEC;
}

static int route_by_address(const struct nstack_config *cfg,
                            const struct sockaddr *key,
                            struct nstack_route_result *out)
{
    const struct route_entry *e;
    uint8_t addr[16];
    int family;

    if (!key || !cfg->routes)
        return 0;
    family = route_key(key, addr);
    if (family == AF_UNSPEC)
        return 0;
    e = route_table_match(cfg->routes, family, addr);
    if (!e)
        return 0;
    out->module = e->module;
    out->rule = e->builtin ? NSTACK_RULE_BUILTIN : NSTACK_RULE_IP_ROUTE;
    out->index = e->index;
    out->fallback = e->fallback;
    out->anchor_off = e->anchor_off;
    out->upgrade_after = e->upgrade_after;
    route_append(out->rule_text, sizeof(out->rule_text), e->text);
    return 1;
}

static int route_by_type(const struct nstack_config *cfg, int sock_type,
                         struct nstack_route_result *out)
{
    int type = sock_type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC), i;

    for (i = 0; i < cfg->n_proto_routes; i++) {
        if (cfg->proto_routes[i].proto_type != type)
            continue;
        out->module = cfg->proto_routes[i].module;
        out->rule = NSTACK_RULE_PROT_ROUTE;
        out->index = i;
        out->anchor_off = cfg->proto_routes[i].anchor_off;
        out->upgrade_after = cfg->proto_routes[i].upgrade_after;
        route_append(out->rule_text, sizeof(out->rule_text), "prot_route[");
        route_append_int(out->rule_text, sizeof(out->rule_text), i);
        route_append(out->rule_text, sizeof(out->rule_text),
                     type == SOCK_STREAM ? "] tcp -> " : "] udp -> ");
        route_append(out->rule_text, sizeof(out->rule_text),
                     cfg->modules[out->module].stack_name);
        if (out->anchor_off)
            route_append(out->rule_text, sizeof(out->rule_text), " (anchor off)");
        return 1;
    }
    return 0;
}

void nstack_route_lookup(const struct nstack_config *cfg,
                         const struct sockaddr *key, int sock_type,
                         struct nstack_route_result *out)
{
    out->module = -1;
    out->rule = NSTACK_RULE_DEFAULT;
    out->index = -1;
    out->fallback = -1;
    out->anchor_off = 0;
    out->upgrade_after = 0;
    out->rule_text[0] = '\0';
    if (!cfg)
        return;
    if (route_by_address(cfg, key, out) || route_by_type(cfg, sock_type, out))
        return;
    out->module = cfg->default_module;
    route_append(out->rule_text, sizeof(out->rule_text), "default_stack_name -> ");
    if (out->module >= 0)
        route_append(out->rule_text, sizeof(out->rule_text),
                     cfg->modules[out->module].stack_name);
}
