/* route.c - the routing decision's lookup: which stack a socket goes to
 * (fw_route_ex: the configured rule, then the stack's readiness and
 * capabilities, then anchoring and the long-lived policy), which stacks a
 * wildcard listener is on, and where a refused connect falls back to.
 * Declared in fw.h; the decision itself (what happens to the socket) is
 * sock.c's. */
#include <string.h>
#include <sys/socket.h>

#include "anchor.h"
#include "file.h"
#include "fw.h"
#include "fw_log.h"
#include "module_load.h"
#include "nstack_config.h"

static uint32_t caps_needed(const struct file *f)
{
    uint32_t c = f->domain == AF_INET6 ? NSTACK_CAP_INET6 : NSTACK_CAP_INET;
    return c | (f->type == SOCK_DGRAM ? NSTACK_CAP_DGRAM : NSTACK_CAP_STREAM);
}

/* The configured choice, before fallbacks; *anchor_off: the rule's
 * "anchor": false. */
static int route_configured(const struct file *f, const struct sockaddr *key, int *anchor_off, int *ll)
{
    *anchor_off = 0;
    *ll = 0;
    const struct nstack_config *cfg = fw_config();
    if (cfg != NULL) {
        struct nstack_route_result res;
        nstack_route_lookup(cfg, key, f->type, &res);
        if (res.module >= 0 && res.module < g_n_stacks) {
            LOG_DBG("route: %s", res.rule_text);
            *anchor_off = res.anchor_off;
            *ll = res.upgrade_after;
            return res.module;
        }
    }
    return g_kernel_stack;
}

static int default_stack(void)
{
    const struct nstack_config *cfg = fw_config();
    if (cfg != NULL && cfg->default_module >= 0 && cfg->default_module < g_n_stacks)
        return cfg->default_module;
    return g_kernel_stack;
}

struct route fw_route_ex(const struct file *f, const struct sockaddr *key)
{
    if (!fw_is_started())
        return (struct route){ .stack = g_kernel_stack };
    int anchor_off, ll;
    int idx = route_configured(f, key, &anchor_off, &ll);
    if (fw_stack_ready(idx) < 0) {
        idx = default_stack();
        if (fw_stack_ready(idx) < 0)
            idx = g_kernel_stack;
    }
    struct stack *s = &g_stacks[idx];
    if (!s->is_kernel && (s->mod->caps & caps_needed(f)) != caps_needed(f)) {
        if (!__atomic_exchange_n(&s->caps_notice_done, 1, __ATOMIC_RELAXED))
            fw_log(NSTACK_LOG_WAR, s->name, "cannot carry %s %s sockets; they use the kernel stack",
                   f->domain == AF_INET6 ? "AF_INET6" : "AF_INET",
                   f->type == SOCK_DGRAM ? "SOCK_DGRAM" : "SOCK_STREAM");
        idx = g_kernel_stack;
    }
    int anchored = anchor_applies(f, idx, anchor_off);
    return (struct route){ .stack = idx, .anchor = anchored,
                           .ll = anchored && MODULE_HAS_OP(s->mod, anchor_policy) ? ll : 0 };
}

/* A stack that can carry f, or -1 (extra listeners get no fallbacks). */
static int usable_for(const struct file *f, int idx)
{
    if (idx < 0 || idx >= g_n_stacks || fw_stack_ready(idx) < 0)
        return -1;
    const struct stack *s = &g_stacks[idx];
    if (!s->is_kernel && (s->mod->caps & caps_needed(f)) != caps_needed(f))
        return -1;
    return idx;
}

int fw_listen_stacks(const struct file *f, int fd, int *stacks, int max)
{
    /* A stack that anchors is served by the kernel listener: its
     * connections are told apart at accept() by their local address. */
    struct route r = fw_route_ex(f, NULL);
    stacks[0] = r.anchor ? g_kernel_stack : r.stack;
    int n = 1;
    const struct nstack_config *cfg = fw_config();
    if (cfg == NULL || cfg->multi_listen_off)
        return n;
    struct nstack_listen_plan plan;
    MOD_ENTER();                 /* getifaddrs' netlink socket is ours */
    nstack_listen_plan(cfg, f->domain, f->type, &plan);
    MOD_LEAVE();
    for (int i = 0; i < plan.n_extra && n < max; i++) {
        int st = usable_for(f, plan.extra[i].module);
        if (st < 0 || st == stacks[0] || anchor_applies(f, st, plan.extra[i].anchor_off))
            continue;
        stacks[n++] = st;
        fw_log(NSTACK_LOG_INF, NULL, "fd %d: wildcard listener also on %s (ip_route[%d] covers local %s)",
               fd, g_stacks[st].name, plan.extra[i].index, plan.extra[i].local);
    }
    return n;
}

int fw_wild_anchor_stack(const struct file *f)
{
    struct route r = fw_route_ex(f, NULL);
    if (r.anchor)
        return r.stack;
    const struct nstack_config *cfg = fw_config();
    if (cfg == NULL)
        return -1;
    struct nstack_listen_plan plan;
    MOD_ENTER();                 /* getifaddrs' netlink socket is ours */
    nstack_listen_plan(cfg, f->domain, f->type, &plan);
    MOD_LEAVE();
    for (int i = 0; i < plan.n_extra; i++) {
        int st = usable_for(f, plan.extra[i].module);
        if (st >= 0 && anchor_applies(f, st, plan.extra[i].anchor_off))
            return st;
    }
    return -1;
}

int fw_connect_fallback(const struct file *f, const struct sockaddr *key)
{
    const struct nstack_config *cfg = fw_config();
    if (cfg != NULL && key != NULL) {
        struct nstack_route_result res;
        nstack_route_lookup(cfg, key, f->type, &res);
        return usable_for(f, res.fallback);
    }
    return -1;
}
