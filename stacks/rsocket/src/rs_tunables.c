/*
 * rs_tunables.c - defaults as in rsockets, then the files under
 * /etc/rdma/rsocket/ (one integer each; directory overridable with
 * RS_CONFIG_DIR), then environment overrides. Read once.
 */
#include "rs_sock.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

struct rs_tunables rs_tun = {
    .polling_time_us = 10,
    .inline_default = 64,
    .sqsize_default = 384,
    .rqsize_default = 384,
    .mem_default = 131072,
    .wmem_default = 131072,
    .iomap_size = 0,
    .close_timeout_ms = 3000,
    .resolve_timeout_ms = 2000,
    .connect_timeout_ms = 30000,
    .anchor_hello_ms = 200,
    .anchor_timeout_ms = 10000,
    .anchor_negcache_ms = 30000,
};

struct rs_tunable_src {
    const char *file;            /* under the config dir, NULL if none */
    const char *env;
    uint32_t *value;
    uint32_t min, max;
};

static int parse_u32(const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 0);
    while (*end == '\n' || *end == ' ' || *end == '\t')
        end++;
    if (errno || end == text || *end || v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static void load_file(const char *dir, const struct rs_tunable_src *t)
{
    char path[PATH_MAX], line[64];
    snprintf(path, sizeof(path), "%s/%s", dir, t->file);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    if (fgets(line, sizeof(line), f) && parse_u32(line, t->min, t->max, t->value))
        rs_log(2, "%s: not an integer in [%u, %u]; keeping %u", path,
               t->min, t->max, *t->value);
    fclose(f);
}

static void load_env(const struct rs_tunable_src *t)
{
    const char *v = getenv(t->env);
    if (v && parse_u32(v, t->min, t->max, t->value))
        rs_log(2, "environment %s=\"%s\": not an integer in [%u, %u]; keeping %u",
               t->env, v, t->min, t->max, *t->value);
}

void rs_tunables_load(void)
{
    const struct rs_tunable_src table[] = {
        { "polling_time",   "RS_POLLING_TIME",   &rs_tun.polling_time_us, 0, 1000000 },
        { "inline_default", "RS_INLINE",         &rs_tun.inline_default, 0, 65535 },
        { "sqsize_default", "RS_SQ_SIZE",        &rs_tun.sqsize_default, 16, 0xfffe },
        { "rqsize_default", "RS_RQ_SIZE",        &rs_tun.rqsize_default, 16, 0xfffe },
        { "mem_default",    "RS_MEM_DEFAULT",    &rs_tun.mem_default, 8192, 1u << 30 },
        { "wmem_default",   "RS_WMEM_DEFAULT",   &rs_tun.wmem_default, 4096, 1u << 30 },
        { "iomap_size",     "RS_IOMAP_SIZE",     &rs_tun.iomap_size, 0, 0x7f00 },
        { NULL, "RS_CLOSE_TIMEOUT_MS",   &rs_tun.close_timeout_ms, 0, 3600000 },
        { NULL, "RS_RESOLVE_TIMEOUT_MS", &rs_tun.resolve_timeout_ms, 10, 600000 },
        { NULL, "RS_CONNECT_TIMEOUT_MS", &rs_tun.connect_timeout_ms, 10, 3600000 },
        { NULL, "RS_ANCHOR_HELLO_MS",    &rs_tun.anchor_hello_ms, 1, 60000 },
        { NULL, "RS_ANCHOR_TIMEOUT_MS",  &rs_tun.anchor_timeout_ms, 10, 3600000 },
        { NULL, "RS_ANCHOR_NEGCACHE_MS", &rs_tun.anchor_negcache_ms, 0, 86400000 },
    };
    const char *dir = getenv("RS_CONFIG_DIR");
    if (!dir)
        dir = "/etc/rdma/rsocket";
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (table[i].file)
            load_file(dir, &table[i]);
        load_env(&table[i]);
    }
}
