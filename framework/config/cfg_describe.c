/*
 * cfg_describe.c - a loaded configuration as text, for `nstack-route --dump`
 * and debug logs. Not on any hot path.
 */
#include <stdio.h>

#include "cfg_internal.h"

static void describe_modules(const struct nstack_config *cfg,
                             nstack_line_fn line, void *arg)
{
    char buf[NSTACK_PATH_MAX + 256];
    int i;

    for (i = 0; i < cfg->n_modules; i++) {
        const struct nstack_module_desc *d = &cfg->modules[i];

        snprintf(buf, sizeof(buf), "module[%d] %s: %s%s, loadtype %s, "
                 "stackid %d, deploytype %d%s", i, d->stack_name,
                 d->libname[0] ? "libname " : "built in",
                 d->libname, d->loadtype == NSTACK_LOAD_STATIC ? "static" : "dynamic",
                 d->stackid, d->deploytype,
                 i == cfg->default_module ? " (default)" : "");
        line(arg, buf);
    }
}

static void describe_routes(const struct nstack_config *cfg,
                            nstack_line_fn line, void *arg)
{
    static const char *const type_name[] = { "?", "tcp", "udp" };
    char buf[CFG_RULE_TEXT_MAX + NSTACK_NAME_MAX + 64];
    int i, n = route_table_count(cfg->routes);

    for (i = 0; i < n; i++) {
        snprintf(buf, sizeof(buf), "route %s", route_table_at(cfg->routes, i)->text);
        line(arg, buf);
    }
    for (i = 0; i < cfg->n_proto_routes; i++) {
        int t = cfg->proto_routes[i].proto_type;

        snprintf(buf, sizeof(buf), "route prot_route[%d] %s (proto_type %d) -> %s",
                 i, type_name[t == 1 || t == 2 ? t : 0], t,
                 cfg->modules[cfg->proto_routes[i].module].stack_name);
        line(arg, buf);
    }
    if (cfg->default_module >= 0) {
        snprintf(buf, sizeof(buf), "route default_stack_name -> %s",
                 cfg->modules[cfg->default_module].stack_name);
        line(arg, buf);
    }
}

void nstack_config_describe(const struct nstack_config *cfg,
                            nstack_line_fn line, void *arg)
{
    char buf[NSTACK_PATH_MAX + 32];

    if (!cfg || !line)
        return;
    snprintf(buf, sizeof(buf), "module_config: %s",
             cfg->module_file[0] ? cfg->module_file : "(none: kernel only)");
    line(arg, buf);
    snprintf(buf, sizeof(buf), "rd_config: %s",
             cfg->rd_file[0] ? cfg->rd_file : "(none)");
    line(arg, buf);
    describe_modules(cfg, line, arg);
    describe_routes(cfg, line, arg);
}
