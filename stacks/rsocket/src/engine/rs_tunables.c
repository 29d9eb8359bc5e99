/*
 * rs_tunables.c - defaults as in rsockets, then the files under
 * /etc/rdma/rsocket/ (one integer each; directory overridable with
 * RS_CONFIG_DIR), then environment overrides. Read once (pthread_once:
 * from the first socket or the module's init()). rs_tunables_publish()
 * tells the dispatcher the values that differ from the defaults and where
 * they came from (nstack-stat, the exit report).
 */
#include "rs_sock.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define RS_TUN_DEFAULTS {                   \
    .polling_time_us = 10,                  \
    .inline_default = 64,                   \
    .sqsize_default = 384,                  \
    .rqsize_default = 384,                  \
    .mem_default = 131072,                  \
    .wmem_default = 131072,                 \
    .iomap_size = 0,                        \
    .close_timeout_ms = 3000,               \
    .resolve_timeout_ms = 2000,             \
    .connect_timeout_ms = 30000,            \
    .anchor_hello_ms = 200,                 \
    .anchor_timeout_ms = 10000,             \
    .anchor_negcache_ms = 30000,            \
    .anchor_lost_ms = 200,                  \
    .ack_timeout = 25,                      \
    .anchor_buf = 1048576,                  \
    .anchor_buf_conns = 64,                 \
}

struct rs_tunables rs_tun = RS_TUN_DEFAULTS;
static const struct rs_tunables rs_tun_default = RS_TUN_DEFAULTS;

enum { FROM_DEFAULT, FROM_FILE, FROM_ENV };

struct rs_tunable_src {
    const char *file;            /* under the config dir, NULL if none */
    const char *env;
    size_t off;                  /* offsetof(struct rs_tunables, ...) */
    uint32_t min, max;
    int from;                    /* FROM_*: where the value came from */
};

#define TUN(file, env, field, min, max) { file, env, offsetof(struct rs_tunables, field), min, max, FROM_DEFAULT }

/* Written only by load_once (pthread_once), read-only afterwards. */
static struct rs_tunable_src table[] = {
    TUN("polling_time",   "RS_POLLING_TIME",   polling_time_us, 0, 1000000),
    TUN("inline_default", "RS_INLINE",         inline_default, 0, 65535),
    TUN("sqsize_default", "RS_SQ_SIZE",        sqsize_default, 16, 0xfffe),
    TUN("rqsize_default", "RS_RQ_SIZE",        rqsize_default, 16, 0xfffe),
    TUN("mem_default",    "RS_MEM_DEFAULT",    mem_default, 8192, 1u << 30),
    TUN("wmem_default",   "RS_WMEM_DEFAULT",   wmem_default, 4096, 1u << 30),
    TUN("iomap_size",     "RS_IOMAP_SIZE",     iomap_size, 0, 0x7f00),
    TUN(NULL, "RS_CLOSE_TIMEOUT_MS",   close_timeout_ms, 0, 3600000),
    TUN(NULL, "RS_RESOLVE_TIMEOUT_MS", resolve_timeout_ms, 10, 600000),
    TUN(NULL, "RS_CONNECT_TIMEOUT_MS", connect_timeout_ms, 10, 3600000),
    TUN(NULL, "RS_ANCHOR_HELLO_MS",    anchor_hello_ms, 1, 60000),
    TUN(NULL, "RS_ANCHOR_TIMEOUT_MS",  anchor_timeout_ms, 10, 3600000),
    TUN(NULL, "RS_ANCHOR_NEGCACHE_MS", anchor_negcache_ms, 0, 86400000),
    TUN(NULL, "RS_ANCHOR_LOST_MS",     anchor_lost_ms, 1, 60000),
    TUN(NULL, "RS_ACK_TIMEOUT",        ack_timeout, 0, 31),
    TUN(NULL, "RS_ANCHOR_BUF",         anchor_buf, 0, 1u << 30),
    TUN(NULL, "RS_ANCHOR_BUF_CONNS",   anchor_buf_conns, 0, 1000000),
};
#define N_TUN (sizeof(table) / sizeof(table[0]))

static char rs_tun_dir[PATH_MAX];

static uint32_t *field(struct rs_tunables *t, const struct rs_tunable_src *src)
{
    return (uint32_t *)((char *)t + src->off);
}

static uint32_t value_in(const struct rs_tunables *t, const struct rs_tunable_src *src)
{
    return *(const uint32_t *)((const char *)t + src->off);
}

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

static void load_file(const char *dir, struct rs_tunable_src *t)
{
    char path[PATH_MAX + 32], line[64];
    snprintf(path, sizeof(path), "%s/%s", dir, t->file);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    uint32_t *v = field(&rs_tun, t);
    if (!fgets(line, sizeof(line), f))
        ;                            /* empty: the default stays */
    else if (parse_u32(line, t->min, t->max, v))
        rs_log(2, "%s: not an integer in [%u, %u]; keeping %u", path,
               t->min, t->max, *v);
    else
        t->from = FROM_FILE;
    fclose(f);
}

static void load_env(struct rs_tunable_src *t)
{
    const char *e = getenv(t->env);
    uint32_t *v = field(&rs_tun, t);
    if (e && parse_u32(e, t->min, t->max, v))
        rs_log(2, "environment %s=\"%s\": not an integer in [%u, %u]; keeping %u",
               t->env, e, t->min, t->max, *v);
    else if (e)
        t->from = FROM_ENV;
}

static void load_once(void)
{
    const char *dir = getenv("RS_CONFIG_DIR");
    snprintf(rs_tun_dir, sizeof(rs_tun_dir), "%s", dir ? dir : "/etc/rdma/rsocket");
    for (size_t i = 0; i < N_TUN; i++) {
        if (table[i].file)
            load_file(rs_tun_dir, &table[i]);
        load_env(&table[i]);
    }
}

void rs_tunables_load(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, load_once);
}

void rs_tunables_publish(rs_publish_fn publish)
{
    rs_tunables_load();
    for (size_t i = 0; i < N_TUN; i++) {
        const struct rs_tunable_src *t = &table[i];
        char value[16], dflt[16], source[PATH_MAX + 48];
        snprintf(value, sizeof(value), "%u", value_in(&rs_tun, t));
        snprintf(dflt, sizeof(dflt), "%u", value_in(&rs_tun_default, t));
        if (t->from == FROM_ENV)
            snprintf(source, sizeof(source), "environment %s", t->env);
        else if (t->from == FROM_FILE)
            snprintf(source, sizeof(source), "file %s/%s", rs_tun_dir, t->file);
        else
            snprintf(source, sizeof(source), "default");
        publish("rsocket", t->env, value, dflt, source);
    }
}
