/*
 * cfg_routes.c - rd_config.json: ip_route[] (subnet → stack) and
 * prot_route[] (socket type → stack), plus the built-in rules that keep
 * loopback and the wildcard address on the kernel stack.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cfg_internal.h"

static const char *const cfg_rd_keys[] = { "ip_route", "prot_route",
                                            "multi_stack_listen", NULL };
static const char *const cfg_ip_keys[] = { "subnet", "stack_name", "fallback", "anchor", "upgrade_after_bytes", NULL };
static const char *const cfg_prot_keys[] = { "proto_type", "stack_name", "anchor", "upgrade_after_bytes", NULL };

/* Lowest priority: a config entry for the same subnet replaces them. */
static const char *const cfg_builtin_subnets[] = {
    "127.0.0.0/8", "::1/128", "0.0.0.0/32", "::/128",
};

static int cfg_add_builtins(struct cfg_ctx *ctx, struct nstack_config *cfg)
{
    int kernel = nstack_config_find_module(cfg, "kernel");
    char text[CFG_RULE_TEXT_MAX];
    struct cfg_subnet s;
    size_t i;

    for (i = 0; i < sizeof(cfg_builtin_subnets) / sizeof(cfg_builtin_subnets[0]); i++) {
        if (cfg_parse_subnet(ctx, "built-in", cfg_builtin_subnets[i], &s) < 0)
            return -1;
        snprintf(text, sizeof(text), "built-in %s -> kernel", cfg_builtin_subnets[i]);
        if (route_table_add(cfg->routes, &s, kernel, -1, 1, -1, 0, 0, text) < 0)
            return -1;
    }
    return 0;
}

/* A stack_name member that names a loaded module; its index or -1. */
static int cfg_route_module(struct cfg_ctx *ctx, const char *key, json_object *e,
                            const struct nstack_config *cfg)
{
    char path[CFG_KEY_MAX], name[NSTACK_NAME_MAX];
    json_object *v;
    int m;

    cfg_key_member(path, key, "stack_name");
    if (!json_object_object_get_ex(e, "stack_name", &v)) {
        cfg_error(ctx, path, "missing (required)");
        return -1;
    }
    if (cfg_json_string(ctx, path, v, name, sizeof(name)) < 0)
        return -1;
    m = nstack_config_find_module(cfg, name);
    if (m < 0)
        cfg_error(ctx, path, "\"%s\": no module of that name in module_list",
                  name);
    return m;
}

/* The optional "fallback" of an ip_route entry: the stack a connect that
 * the routed module could not make is retried on. Only "kernel" can take
 * over (the framework re-issues the connect on a kernel socket). Returns
 * the module index, -1 when absent, -2 after reporting an error. */
static int cfg_route_fallback(struct cfg_ctx *ctx, const char *key, json_object *e,
                              const struct nstack_config *cfg)
{
    char path[CFG_KEY_MAX], name[NSTACK_NAME_MAX];
    json_object *v;

    if (!json_object_object_get_ex(e, "fallback", &v))
        return -1;
    cfg_key_member(path, key, "fallback");
    if (cfg_json_string(ctx, path, v, name, sizeof(name)) < 0)
        return -2;
    if (strcmp(name, "kernel") != 0) {
        cfg_error(ctx, path, "\"%s\": only \"kernel\" can be a fallback stack", name);
        return -2;
    }
    return nstack_config_find_module(cfg, "kernel");
}

/* The optional "anchor" of a route entry (doc/fork.md): false keeps its
 * stream sockets off TCP-anchored connections (direct module sockets, as
 * before ABI 1.2). Returns 1 for "anchor": false, 0 when absent or true,
 * -1 after reporting an error. */
static int cfg_route_anchor_off(struct cfg_ctx *ctx, const char *key, json_object *e)
{
    char path[CFG_KEY_MAX];
    json_object *v;

    if (!json_object_object_get_ex(e, "anchor", &v))
        return 0;
    cfg_key_member(path, key, "anchor");
    if (!json_object_is_type(v, json_type_boolean)) {
        cfg_error(ctx, path, "expected a boolean, got %s",
                  json_type_to_name(json_object_get_type(v)));
        return -1;
    }
    return !json_object_get_boolean(v);
}

/* The optional "upgrade_after_bytes" of a route entry (the long-lived
 * policy, doc/rsocket-framework.md): a connection carries its first bytes
 * on TCP and moves to the module once both directions together carried N.
 * N is rounded up to a power of two (the hello names it in one byte).
 * Returns the exponent + 1, 0 when absent (upgrade before the first byte),
 * -1 after reporting an error. */
static int cfg_route_upgrade_after(struct cfg_ctx *ctx, const char *key, json_object *e,
                                   int anchor_off)
{
    char path[CFG_KEY_MAX];
    json_object *v;
    int n, k = 0;

    if (!json_object_object_get_ex(e, "upgrade_after_bytes", &v))
        return 0;
    cfg_key_member(path, key, "upgrade_after_bytes");
    if (cfg_json_uint(ctx, path, v, CFG_UPGRADE_AFTER_MAX, &n) < 0)
        return -1;
    if (n < 1) {
        cfg_error(ctx, path, "%d: out of range (1..%d)", n, CFG_UPGRADE_AFTER_MAX);
        return -1;
    }
    if (anchor_off > 0) {
        cfg_error(ctx, path, "needs a TCP-anchored route (this entry says \"anchor\": false)");
        return -1;
    }
    while ((1L << k) < n)
        k++;
    if ((1L << k) != n)
        cfg_warn(ctx, path, "%d: not a power of two, using %ld", n, 1L << k);
    return k + 1;
}

static int cfg_check_entry(struct cfg_ctx *ctx, const char *key, json_object *e,
                           const char *const *known)
{
    if (!json_object_is_type(e, json_type_object)) {
        cfg_error(ctx, key, "expected an object, got %s",
                  json_type_to_name(json_object_get_type(e)));
        return -1;
    }
    cfg_warn_unknown_keys(ctx, key, e, known);
    return 0;
}

static void cfg_parse_ip_route(struct cfg_ctx *ctx, const char *key, int index,
                               json_object *e, struct nstack_config *cfg)
{
    char path[CFG_KEY_MAX], subnet[64], text[CFG_RULE_TEXT_MAX], net[64];
    struct cfg_subnet s;
    json_object *v;
    int m, fb, aoff, ll;

    if (cfg_check_entry(ctx, key, e, cfg_ip_keys) < 0)
        return;
    cfg_key_member(path, key, "subnet");
    if (!json_object_object_get_ex(e, "subnet", &v)) {
        cfg_error(ctx, path, "missing (required)");
        return;
    }
    if (cfg_json_string(ctx, path, v, subnet, sizeof(subnet)) < 0 ||
        cfg_parse_subnet(ctx, path, subnet, &s) < 0)
        return;
    m = cfg_route_module(ctx, key, e, cfg);
    fb = cfg_route_fallback(ctx, key, e, cfg);
    aoff = cfg_route_anchor_off(ctx, key, e);
    ll = cfg_route_upgrade_after(ctx, key, e, aoff);
    if (m < 0 || fb == -2 || aoff < 0 || ll < 0)
        return;
    cfg_subnet_text(&s, net, sizeof(net));
    snprintf(text, sizeof(text), "ip_route[%d] %s -> %s%s%s", index, net,
             cfg->modules[m].stack_name, fb >= 0 ? " (fallback kernel)" : "",
             aoff ? " (anchor off)" : "");
    if (ll)
        snprintf(text + strlen(text), sizeof(text) - strlen(text),
                 " (upgrade after %ld bytes)", 1L << (ll - 1));
    if (route_table_add(cfg->routes, &s, m, index, 0, fb, aoff, ll, text) < 0)
        cfg_error(ctx, key, "out of memory");
}

static void cfg_parse_prot_route(struct cfg_ctx *ctx, const char *key,
                                 json_object *e, struct nstack_config *cfg)
{
    char path[CFG_KEY_MAX];
    json_object *v;
    int type, m, i, aoff, ll;

    if (cfg_check_entry(ctx, key, e, cfg_prot_keys) < 0)
        return;
    cfg_key_member(path, key, "proto_type");
    if (!json_object_object_get_ex(e, "proto_type", &v)) {
        cfg_error(ctx, path, "missing (required)");
        return;
    }
    if (cfg_json_uint(ctx, path, v, 1000000, &type) < 0)
        return;
    if (type != SOCK_STREAM && type != SOCK_DGRAM) {
        cfg_error(ctx, path, "%d: unknown proto_type (1 = SOCK_STREAM/tcp, "
                  "2 = SOCK_DGRAM/udp)", type);
        return;
    }
    m = cfg_route_module(ctx, key, e, cfg);
    aoff = cfg_route_anchor_off(ctx, key, e);
    ll = cfg_route_upgrade_after(ctx, key, e, aoff);
    if (m < 0 || aoff < 0 || ll < 0)
        return;
    for (i = 0; i < cfg->n_proto_routes; i++)
        if (cfg->proto_routes[i].proto_type == type)
            cfg_warn(ctx, path, "%d: already routed by an earlier entry, "
                     "ignored", type);
    cfg->proto_routes[cfg->n_proto_routes].proto_type = type;
    cfg->proto_routes[cfg->n_proto_routes].module = m;
    cfg->proto_routes[cfg->n_proto_routes].anchor_off = aoff;
    cfg->proto_routes[cfg->n_proto_routes].upgrade_after = ll;
    cfg->n_proto_routes++;
}

static json_object *cfg_route_array(struct cfg_ctx *ctx, json_object *root,
                                    const char *name)
{
    json_object *list;

    if (!root || !json_object_object_get_ex(root, name, &list))
        return NULL;
    if (!json_object_is_type(list, json_type_array)) {
        cfg_error(ctx, name, "expected an array, got %s",
                  json_type_to_name(json_object_get_type(list)));
        return NULL;
    }
    return list;
}

static void cfg_parse_ip_routes(struct cfg_ctx *ctx, json_object *root,
                                struct nstack_config *cfg)
{
    json_object *list = cfg_route_array(ctx, root, "ip_route");
    char key[CFG_KEY_MAX];
    size_t i, n = list ? json_object_array_length(list) : 0;

    for (i = 0; i < n; i++) {
        cfg_key_index(key, "ip_route", (int)i);
        cfg_parse_ip_route(ctx, key, (int)i, json_object_array_get_idx(list, i), cfg);
    }
}

static void cfg_parse_prot_routes(struct cfg_ctx *ctx, json_object *root,
                                  struct nstack_config *cfg)
{
    json_object *list = cfg_route_array(ctx, root, "prot_route");
    char key[CFG_KEY_MAX];
    size_t i, n = list ? json_object_array_length(list) : 0;

    if (n == 0)
        return;
    cfg->proto_routes = calloc(n, sizeof(*cfg->proto_routes));
    if (!cfg->proto_routes) {
        cfg_error(ctx, "prot_route", "out of memory");
        return;
    }
    for (i = 0; i < n; i++) {
        cfg_key_index(key, "prot_route", (int)i);
        cfg_parse_prot_route(ctx, key, json_object_array_get_idx(list, i), cfg);
    }
}

/* Top-level "multi_stack_listen": true (default) or false. */
static void cfg_parse_multi_listen(struct cfg_ctx *ctx, json_object *root,
                                   struct nstack_config *cfg)
{
    json_object *v;

    if (!root || !json_object_object_get_ex(root, "multi_stack_listen", &v))
        return;
    if (!json_object_is_type(v, json_type_boolean)) {
        cfg_error(ctx, "multi_stack_listen", "expected a boolean, got %s",
                  json_type_to_name(json_object_get_type(v)));
        return;
    }
    cfg->multi_listen_off = !json_object_get_boolean(v);
}

int cfg_parse_routes(struct cfg_ctx *ctx, json_object *root,
                     struct nstack_config *cfg)
{
    int errors = ctx->errors;

    cfg->routes = route_table_new();
    if (!cfg->routes) {
        cfg_error(ctx, NULL, "out of memory");
        return -1;
    }
    if (root)
        cfg_warn_unknown_keys(ctx, NULL, root, cfg_rd_keys);
    cfg_parse_ip_routes(ctx, root, cfg);
    cfg_parse_prot_routes(ctx, root, cfg);
    cfg_parse_multi_listen(ctx, root, cfg);
    if (cfg_add_builtins(ctx, cfg) < 0)
        cfg_error(ctx, NULL, "out of memory");
    route_table_finish(cfg->routes, ctx);
    return ctx->errors == errors ? 0 : -1;
}
