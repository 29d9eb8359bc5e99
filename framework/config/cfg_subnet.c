/*
 * cfg_subnet.c - "192.168.21.0/24" and "fd21::/64" as written in ip_route.
 * IPv4-mapped IPv6 subnets (::ffff:a.b.c.d/n, n >= 96) become IPv4 ones, so
 * they meet the same rules as the addresses they describe.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cfg_internal.h"

void cfg_mask_addr(uint8_t addr[16], int prefix)
{
    int full = prefix / 8, bits = prefix % 8, i;

    /* byte arithmetic only: no shift by the type's width, so /0 is fine */
    for (i = 0; i < 16; i++) {
        if (i < full)
            continue;
        if (i == full && bits)
            addr[i] &= (uint8_t)(0xffu << (8 - bits));
        else
            addr[i] = 0;
    }
}

void cfg_subnet_text(const struct cfg_subnet *s, char *out, size_t cap)
{
    char addr[INET6_ADDRSTRLEN];

    if (!inet_ntop(s->family, s->addr, addr, sizeof(addr)))
        snprintf(addr, sizeof(addr), "?");
    snprintf(out, cap, "%s/%d", addr, s->prefix);
}

static int cfg_parse_prefix(const char *p, int max)
{
    int n = 0, digits = 0;

    for (; *p; p++, digits++) {
        if (!isdigit((unsigned char)*p) || digits >= 3)
            return -1;
        n = n * 10 + (*p - '0');
    }
    return (digits == 0 || n > max) ? -1 : n;
}

static const uint8_t cfg_v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* ::ffff:a.b.c.d/n → a.b.c.d/(n-96) */
static void cfg_unmap_v4(struct cfg_subnet *s)
{
    if (s->family != AF_INET6 || s->prefix < 96 ||
        memcmp(s->addr, cfg_v4mapped, sizeof(cfg_v4mapped)) != 0)
        return;
    memmove(s->addr, s->addr + 12, 4);
    memset(s->addr + 4, 0, 12);
    s->family = AF_INET;
    s->prefix -= 96;
}

static int cfg_parse_address(const char *text, struct cfg_subnet *out)
{
    memset(out->addr, 0, sizeof(out->addr));
    if (inet_pton(AF_INET, text, out->addr) == 1) {
        out->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out->addr) == 1) {
        out->family = AF_INET6;
        return 0;
    }
    return -1;
}

int cfg_parse_subnet(struct cfg_ctx *ctx, const char *key, const char *text,
                     struct cfg_subnet *out)
{
    char addr[INET6_ADDRSTRLEN + 8];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    uint8_t given[16];
    char fixed[64];
    int max, host_bits;

    if (alen < sizeof(addr)) {
        memcpy(addr, text, alen);
        addr[alen] = '\0';
    }
    if (alen >= sizeof(addr) || cfg_parse_address(addr, out) < 0) {
        cfg_error(ctx, key, "\"%.60s\": not an IPv4 or IPv6 subnet "
                  "(expected e.g. 192.168.1.0/24 or fd00::/64)", text);
        return -1;
    }
    max = out->family == AF_INET ? 32 : 128;
    out->prefix = slash ? cfg_parse_prefix(slash + 1, max) : max;
    if (out->prefix < 0) {
        cfg_error(ctx, key, "\"%.60s\": prefix length out of range (0..%d)",
                  text, max);
        return -1;
    }
    memcpy(given, out->addr, sizeof(given));
    cfg_mask_addr(out->addr, out->prefix);
    host_bits = memcmp(given, out->addr, sizeof(given)) != 0;
    cfg_unmap_v4(out);
    if (host_bits) {
        cfg_subnet_text(out, fixed, sizeof(fixed));
        cfg_warn(ctx, key, "\"%.60s\": host bits set past the prefix, using %s",
                 text, fixed);
    }
    return 0;
}
