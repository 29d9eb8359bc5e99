/*
 * route_table.c - the longest-prefix-match table behind ip_route.
 *
 * Built once at load, immutable afterwards, so lookups from any thread need
 * no lock. Entries are sorted by family, then prefix length (longest first),
 * then network; a "group" is the run of one family and prefix length. A
 * lookup masks the address once per group and binary-searches the group:
 * at most 33 (IPv4) or 129 (IPv6) searches, no allocation.
 *
 * Unlike DMM's list insert, nothing is overwritten: a nested prefix added
 * after a shorter one is simply another entry of a longer group.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cfg_internal.h"

struct route_group {
    int family;
    int prefix;
    int start;                  /* first entry of the group */
    int count;
};

struct nstack_route_table {
    struct route_entry *entries;
    int n, cap;
    struct route_group groups[33 + 129];
    int n_groups;
};

struct nstack_route_table *route_table_new(void)
{
    return calloc(1, sizeof(struct nstack_route_table));
}

void route_table_free(struct nstack_route_table *t)
{
    if (!t)
        return;
    free(t->entries);
    free(t);
}

int route_table_add(struct nstack_route_table *t, const struct cfg_subnet *s,
                    int module, int index, int builtin, int fallback,
                    int anchor_off, int upgrade_after, const char *rule_text)
{
    struct route_entry *e;

    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        void *p = realloc(t->entries, (size_t)cap * sizeof(*t->entries));

        if (!p) {
            errno = ENOMEM;
            return -1;
        }
        t->entries = p;
        t->cap = cap;
    }
    e = &t->entries[t->n++];
    memset(e, 0, sizeof(*e));
    memcpy(e->net, s->addr, sizeof(e->net));
    e->family = s->family;
    e->prefix = s->prefix;
    e->module = module;
    e->index = index;
    e->builtin = builtin;
    e->fallback = fallback;
    e->anchor_off = anchor_off;
    e->upgrade_after = upgrade_after;
    strncpy(e->text, rule_text, sizeof(e->text) - 1);
    return 0;
}

/* Group order; within a group by network, so groups can be binary-searched. */
static int route_cmp_key(const struct route_entry *a, const struct route_entry *b)
{
    if (a->family != b->family)
        return a->family == AF_INET ? -1 : 1;
    if (a->prefix != b->prefix)
        return b->prefix - a->prefix;
    return memcmp(a->net, b->net, sizeof(a->net));
}

/* Equal subnets: config entries before built-ins, then file order; the
 * first one of a run is the one that stays. */
static int route_cmp_sort(const void *pa, const void *pb)
{
    const struct route_entry *a = pa, *b = pb;
    int c = route_cmp_key(a, b);

    if (c)
        return c;
    if (a->builtin != b->builtin)
        return a->builtin - b->builtin;
    return a->index - b->index;
}

static void route_drop_duplicates(struct nstack_route_table *t,
                                  struct cfg_ctx *ctx)
{
    char key[CFG_KEY_MAX];
    int i, kept = 0;

    for (i = 0; i < t->n; i++) {
        struct route_entry *e = &t->entries[i];

        if (kept && route_cmp_key(&t->entries[kept - 1], e) == 0) {
            if (!e->builtin) {
                cfg_key_index(key, "ip_route", e->index);
                cfg_warn(ctx, key, "same subnet as ip_route[%d], ignored",
                         t->entries[kept - 1].index);
            }
            continue;
        }
        if (kept != i)
            t->entries[kept] = *e;
        kept++;
    }
    t->n = kept;
}

static void route_build_groups(struct nstack_route_table *t)
{
    int i;

    t->n_groups = 0;
    for (i = 0; i < t->n; i++) {
        struct route_group *g = t->n_groups ? &t->groups[t->n_groups - 1] : NULL;
        const struct route_entry *e = &t->entries[i];

        if (!g || g->family != e->family || g->prefix != e->prefix) {
            g = &t->groups[t->n_groups++];
            g->family = e->family;
            g->prefix = e->prefix;
            g->start = i;
            g->count = 0;
        }
        g->count++;
    }
}

int route_table_finish(struct nstack_route_table *t, struct cfg_ctx *ctx)
{
    if (t->n)
        qsort(t->entries, (size_t)t->n, sizeof(*t->entries), route_cmp_sort);
    route_drop_duplicates(t, ctx);
    route_build_groups(t);
    return 0;
}

static const struct route_entry *route_search_group(
    const struct nstack_route_table *t, const struct route_group *g,
    const uint8_t net[16])
{
    int lo = g->start, hi = g->start + g->count - 1;

    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = memcmp(t->entries[mid].net, net, 16);

        if (c == 0)
            return &t->entries[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

const struct route_entry *route_table_match(const struct nstack_route_table *t,
                                            int family, const uint8_t addr[16])
{
    uint8_t net[16];
    int i;

    for (i = 0; i < t->n_groups; i++) {
        const struct route_group *g = &t->groups[i];
        const struct route_entry *e;

        if (g->family != family)
            continue;
        memcpy(net, addr, sizeof(net));
        cfg_mask_addr(net, g->prefix);
        e = route_search_group(t, g, net);
        if (e)
            return e;
    }
    return NULL;
}

int route_table_count(const struct nstack_route_table *t)
{
    return t ? t->n : 0;
}

const struct route_entry *route_table_at(const struct nstack_route_table *t,
                                         int i)
{
    return (t && i >= 0 && i < t->n) ? &t->entries[i] : NULL;
}
