/*
 * cfg_load.c - finding, reading and validating the two files, and the
 * lifetime of a `struct nstack_config`.
 *
 * Any error makes the whole configuration invalid (-1): a half-applied
 * routing table would silently send traffic to the wrong stack, while the
 * documented fallback (kernel stack for everything) is safe and the
 * diagnostics say exactly what to fix. Warnings never invalidate.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg_internal.h"

#define CFG_DEFAULT_MODULE_FILE "./module_config.json"
#define CFG_DEFAULT_RD_FILE "./rd_config.json"

int nstack_config_find_module(const struct nstack_config *cfg, const char *name)
{
    int i;

    if (!cfg || !name)
        return -1;
    for (i = 0; i < cfg->n_modules; i++)
        if (strcmp(cfg->modules[i].stack_name, name) == 0)
            return i;
    return -1;
}

void nstack_config_free(struct nstack_config *cfg)
{
    if (!cfg)
        return;
    route_table_free(cfg->routes);
    free(cfg->proto_routes);
    free(cfg);
}

/* module_config.json: modules and default. With no file: kernel only.
 * Returns 0, -1 (invalid content) or -2 (not even JSON). */
static int cfg_parse_module_file(struct cfg_ctx *ctx, const char *json,
                                 struct nstack_config *cfg)
{
    json_object *root;
    int rc;

    if (!json) {
        cfg_ensure_kernel(cfg);
        cfg->default_module = nstack_config_find_module(cfg, "kernel");
        return 0;
    }
    root = cfg_json_parse(ctx, json, strlen(json));
    if (!root)
        return -2;
    rc = cfg_parse_modules(ctx, root, cfg);
    json_object_put(root);
    return rc;
}

/* rd_config.json. `modules_ok` false: only check its syntax, since every
 * stack_name would otherwise be reported as unknown a second time. */
static int cfg_parse_rd_file(struct cfg_ctx *ctx, const char *json,
                             int modules_ok, struct nstack_config *cfg)
{
    json_object *root = NULL;
    int rc;

    if (json) {
        root = cfg_json_parse(ctx, json, strlen(json));
        if (!root)
            return -1;
    }
    if (!modules_ok) {
        json_object_put(root);
        return 0;
    }
    rc = cfg_parse_routes(ctx, root, cfg);
    json_object_put(root);
    return rc;
}

int nstack_config_parse(const char *module_json, const char *module_name,
                        const char *rd_json, const char *rd_name,
                        nstack_diag_fn diag, void *diag_arg,
                        struct nstack_config **out)
{
    struct cfg_ctx mctx = { .file = module_name ? module_name : "module_config.json",
                            .diag = diag, .diag_arg = diag_arg };
    struct cfg_ctx rctx = { .file = rd_name ? rd_name : "rd_config.json",
                            .diag = diag, .diag_arg = diag_arg };
    struct nstack_config *cfg;
    int mrc;

    *out = NULL;
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        cfg_error(&mctx, NULL, "out of memory");
        errno = ENOMEM;
        return -1;
    }
    cfg->default_module = -1;
    mrc = cfg_parse_module_file(&mctx, module_json, cfg);
    cfg_parse_rd_file(&rctx, rd_json, mrc != -2, cfg);
    cfg_diag_flush(&mctx);
    cfg_diag_flush(&rctx);
    if (mctx.errors || rctx.errors) {
        nstack_config_free(cfg);
        errno = EINVAL;
        return -1;
    }
    *out = cfg;
    return 0;
}

/* The file to use: the argument, else the environment, else the default
 * (which may be absent). */
static const char *cfg_pick_path(const char *arg, const char *env,
                                 const char *fallback, int *optional)
{
    const char *p;

    *optional = 0;
    if (arg)
        return arg;
    p = secure_getenv(env);
    if (p && *p)
        return p;
    *optional = 1;
    return fallback;
}

/* Read a whole regular file of at most NSTACK_CFG_FILE_MAX bytes into a
 * NUL-terminated buffer. Returns the buffer, or NULL with *missing set when
 * an optional file does not exist, or NULL after reporting. */
static char *cfg_read_file(struct cfg_ctx *ctx, const char *path, int optional,
                           int *missing)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd;

    *missing = 0;
    /* O_NONBLOCK: a FIFO named as config must not block the open */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (optional && errno == ENOENT) {
            *missing = 1;
            return NULL;
        }
        ctx->sys_errno = errno;
        cfg_error(ctx, NULL, "cannot open: %s", strerror(ctx->sys_errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        ctx->sys_errno = EINVAL;
        cfg_error(ctx, NULL, "not a regular file");
        goto out;
    }
    if (st.st_size > NSTACK_CFG_FILE_MAX) {
        ctx->sys_errno = EFBIG;
        cfg_error(ctx, NULL, "file too large (%lld bytes, at most %d)",
                  (long long)st.st_size, NSTACK_CFG_FILE_MAX);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        cfg_error(ctx, NULL, "out of memory");
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;              /* file shrank: parse what is there */
        got += (size_t)n;
    }
    buf[got] = '\0';
    /* a NUL inside the data must reach the parser's binary-data check */
    if (memchr(buf, '\0', got)) {
        cfg_error(ctx, NULL, "malformed JSON: NUL byte at offset %zu (binary data?)",
                  (size_t)((char *)memchr(buf, '\0', got) - buf));
        free(buf);
        buf = NULL;
    }
out:
    close(fd);
    return buf;
}

static void cfg_set_realpath(char *dst, const char *path)
{
    char resolved[PATH_MAX];

    if (path && realpath(path, resolved) && strlen(resolved) < NSTACK_PATH_MAX)
        strcpy(dst, resolved);
}

int nstack_config_load(const char *module_path, const char *rd_path,
                       nstack_diag_fn diag, void *diag_arg,
                       struct nstack_config **out)
{
    int mopt, ropt, mmiss = 0, rmiss = 0, rc, have_m, have_r;
    const char *mp = cfg_pick_path(module_path, "NSTACK_MOD_CFG_FILE",
                                   CFG_DEFAULT_MODULE_FILE, &mopt);
    const char *rp = cfg_pick_path(rd_path, "NSTACK_MOD_CFG_RD",
                                   CFG_DEFAULT_RD_FILE, &ropt);
    struct cfg_ctx mctx = { .file = mp, .diag = diag, .diag_arg = diag_arg };
    struct cfg_ctx rctx = { .file = rp, .diag = diag, .diag_arg = diag_arg };
    char *mjson = cfg_read_file(&mctx, mp, mopt, &mmiss);
    char *rjson = cfg_read_file(&rctx, rp, ropt, &rmiss);

    *out = NULL;
    if ((!mjson && !mmiss) || (!rjson && !rmiss)) {
        free(mjson);
        free(rjson);
        errno = mctx.sys_errno ? mctx.sys_errno
              : rctx.sys_errno ? rctx.sys_errno : EINVAL;
        return -1;
    }
    have_m = mjson != NULL;
    have_r = rjson != NULL;
    rc = nstack_config_parse(mjson, mp, rjson, rp, diag, diag_arg, out);
    free(mjson);
    free(rjson);
    if (rc == 0) {
        cfg_set_realpath((*out)->module_file, have_m ? mp : NULL);
        cfg_set_realpath((*out)->rd_file, have_r ? rp : NULL);
    }
    return rc;
}
