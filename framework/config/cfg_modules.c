/*
 * cfg_modules.c - module_config.json: default_stack_name and module_list[].
 *
 * DMM compatibility: numbers may be strings ("1"); maxfd, minfd and the
 * misspelt priorty are accepted and ignored; stackid and deploytype are
 * parsed and checked but only reported (routing uses stack_name).
 */
#include <ctype.h>
#include <string.h>

#include "cfg_internal.h"

#define CFG_KERNEL "kernel"

static const char *const cfg_root_keys[] = {
    "default_stack_name", "module_list", NULL
};
static const char *const cfg_module_keys[] = {
    "stack_name", "libname", "loadtype", "deploytype", "stackid",
    "maxfd", "minfd", "priorty", NULL
};

/* stack_name becomes part of a symbol (<stack_name>_stack_register). */
static int cfg_valid_name(const char *s)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return 0;
    return 1;
}

static int cfg_module_name(struct cfg_ctx *ctx, const char *key, json_object *m,
                           const struct nstack_config *cfg, char *name)
{
    char path[CFG_KEY_MAX];
    json_object *v;

    cfg_key_member(path, key, "stack_name");
    if (!json_object_object_get_ex(m, "stack_name", &v)) {
        cfg_error(ctx, path, "missing (required)");
        return -1;
    }
    if (cfg_json_string(ctx, path, v, name, NSTACK_NAME_MAX) < 0)
        return -1;
    if (!cfg_valid_name(name)) {
        cfg_error(ctx, path, "\"%s\": only letters, digits and '_' allowed", name);
        return -1;
    }
    if (nstack_config_find_module(cfg, name) >= 0) {
        cfg_error(ctx, path, "\"%s\": duplicate stack_name, entry ignored", name);
        return -1;
    }
    return 0;
}

static int cfg_module_loadtype(struct cfg_ctx *ctx, const char *key,
                               json_object *v, struct nstack_module_desc *d)
{
    char text[16];

    if (cfg_json_string(ctx, key, v, text, sizeof(text)) < 0)
        return -1;
    if (strcmp(text, "static") == 0) {
        d->loadtype = NSTACK_LOAD_STATIC;
    } else if (strcmp(text, "dynamic") == 0) {
        d->loadtype = NSTACK_LOAD_DYNAMIC;
    } else {
        cfg_error(ctx, key, "\"%s\": expected \"static\" or \"dynamic\"", text);
        return -1;
    }
    return 0;
}

static int cfg_module_stackid(struct cfg_ctx *ctx, const char *key,
                              json_object *v, const struct nstack_config *cfg,
                              struct nstack_module_desc *d)
{
    int i;

    if (cfg_json_uint(ctx, key, v, NSTACK_MAX_MODULES - 1, &d->stackid) < 0)
        return -1;
    for (i = 0; i < cfg->n_modules; i++) {
        if (cfg->modules[i].stackid == d->stackid) {
            cfg_error(ctx, key, "%d: duplicate stackid (also used by \"%s\")",
                      d->stackid, cfg->modules[i].stack_name);
            return -1;
        }
    }
    return 0;
}

/* The optional and the kernel-dependent members of one entry. */
static int cfg_module_fields(struct cfg_ctx *ctx, const char *key, json_object *m,
                             const struct nstack_config *cfg,
                             struct nstack_module_desc *d)
{
    char path[CFG_KEY_MAX];
    int is_kernel = strcmp(d->stack_name, CFG_KERNEL) == 0, rc = 0;
    json_object *v;

    cfg_key_member(path, key, "libname");
    if (is_kernel) {
        /* Built in: the value (DMM writes "./", others "") is ignored. */
        d->libname[0] = '\0';
    } else if (json_object_object_get_ex(m, "libname", &v)) {
        if (cfg_json_string(ctx, path, v, d->libname, sizeof(d->libname)) < 0)
            rc = -1;
    } else {
        cfg_error(ctx, path, "missing (required for stack \"%s\")", d->stack_name);
        rc = -1;
    }
    cfg_key_member(path, key, "loadtype");
    if (json_object_object_get_ex(m, "loadtype", &v) &&
        cfg_module_loadtype(ctx, path, v, d) < 0)
        rc = -1;
    cfg_key_member(path, key, "deploytype");
    if (json_object_object_get_ex(m, "deploytype", &v) &&
        cfg_json_uint(ctx, path, v, 4, &d->deploytype) < 0)
        rc = -1;
    cfg_key_member(path, key, "stackid");
    if (json_object_object_get_ex(m, "stackid", &v) &&
        cfg_module_stackid(ctx, path, v, cfg, d) < 0)
        rc = -1;
    if (is_kernel)
        d->loadtype = NSTACK_LOAD_STATIC;
    return rc;
}

/* One module_list[] entry. A bad entry with a usable stack_name is still
 * added, so routes naming it do not produce a second, misleading error. */
static void cfg_parse_module(struct cfg_ctx *ctx, const char *key, json_object *m,
                             struct nstack_config *cfg)
{
    struct nstack_module_desc d;

    if (!json_object_is_type(m, json_type_object)) {
        cfg_error(ctx, key, "expected an object, got %s",
                  json_type_to_name(json_object_get_type(m)));
        return;
    }
    cfg_warn_unknown_keys(ctx, key, m, cfg_module_keys);
    memset(&d, 0, sizeof(d));
    d.stackid = -1;
    if (cfg_module_name(ctx, key, m, cfg, d.stack_name) < 0)
        return;
    cfg_module_fields(ctx, key, m, cfg, &d);
    if (cfg->n_modules >= NSTACK_MAX_MODULES) {
        cfg_error(ctx, key, "too many modules (at most %d, kernel included)",
                  NSTACK_MAX_MODULES);
        return;
    }
    cfg->modules[cfg->n_modules++] = d;
}

static void cfg_parse_module_list(struct cfg_ctx *ctx, json_object *list,
                                  struct nstack_config *cfg)
{
    char key[CFG_KEY_MAX];
    size_t i, n;

    if (!json_object_is_type(list, json_type_array)) {
        cfg_error(ctx, "module_list", "expected an array, got %s",
                  json_type_to_name(json_object_get_type(list)));
        return;
    }
    n = json_object_array_length(list);
    for (i = 0; i < n; i++) {
        cfg_key_index(key, "module_list", (int)i);
        cfg_parse_module(ctx, key, json_object_array_get_idx(list, i), cfg);
    }
}

int cfg_ensure_kernel(struct nstack_config *cfg)
{
    struct nstack_module_desc *d;

    if (nstack_config_find_module(cfg, CFG_KERNEL) >= 0)
        return 0;
    if (cfg->n_modules >= NSTACK_MAX_MODULES)
        return -1;
    d = &cfg->modules[cfg->n_modules++];
    memset(d, 0, sizeof(*d));
    strcpy(d->stack_name, CFG_KERNEL);
    d->loadtype = NSTACK_LOAD_STATIC;
    d->stackid = -1;
    return 0;
}

static void cfg_parse_default(struct cfg_ctx *ctx, json_object *root,
                              struct nstack_config *cfg)
{
    char name[NSTACK_NAME_MAX] = CFG_KERNEL;
    json_object *v;

    if (json_object_object_get_ex(root, "default_stack_name", &v) &&
        cfg_json_string(ctx, "default_stack_name", v, name, sizeof(name)) < 0)
        return;
    cfg->default_module = nstack_config_find_module(cfg, name);
    if (cfg->default_module < 0) {
        cfg_error(ctx, "default_stack_name", "\"%s\": no module of that name "
                  "in module_list", name);
        cfg->default_module = nstack_config_find_module(cfg, CFG_KERNEL);
    }
}

int cfg_parse_modules(struct cfg_ctx *ctx, json_object *root,
                      struct nstack_config *cfg)
{
    int errors = ctx->errors;
    json_object *list;

    cfg_warn_unknown_keys(ctx, NULL, root, cfg_root_keys);
    if (json_object_object_get_ex(root, "module_list", &list))
        cfg_parse_module_list(ctx, list, cfg);
    if (cfg_ensure_kernel(cfg) < 0)
        cfg_error(ctx, "module_list", "too many modules: no room for the "
                  "built-in \"kernel\" (at most %d)", NSTACK_MAX_MODULES);
    cfg_parse_default(ctx, root, cfg);
    return ctx->errors == errors ? 0 : -1;
}
