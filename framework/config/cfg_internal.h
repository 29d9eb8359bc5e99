/*
 * cfg_internal.h - shared pieces of the config parser (not installed).
 *
 * Every parse step receives a `struct cfg_ctx` naming the file being read,
 * so each diagnostic line can start with the file name; the step adds the
 * key path ("module_list[2].stackid") and the reason.
 */
#ifndef NSTACK_CFG_INTERNAL_H
#define NSTACK_CFG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "nstack_config.h"

#define CFG_KEY_MAX 96          /* longest key path in a diagnostic */
#define CFG_RULE_TEXT_MAX 160   /* = sizeof(nstack_route_result.rule_text) */

/* Where diagnostics of one file go, and how many errors it had. */
struct cfg_ctx {
    const char *file;           /* name shown in diagnostics */
    nstack_diag_fn diag;        /* may be NULL: count only */
    void *diag_arg;
    int errors;
    int warnings;
    int sys_errno;              /* why a file could not be read, 0 if it could */
    int shown;                  /* lines passed to diag (at most CFG_DIAG_SHOWN) */
    int hidden_errors;          /* problems counted but not shown */
    int hidden_warnings;
};

/* Lines shown per file: a file with 1,000 bad entries gives the first few
 * and one "and N more" line (cfg_diag_flush), not 1,000 lines. */
#define CFG_DIAG_SHOWN 5

/* "<file>: <key>: <reason>"; key may be NULL (then "<file>: <reason>"). */
void cfg_error(struct cfg_ctx *ctx, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cfg_warn(struct cfg_ctx *ctx, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* After a file is parsed: "<file>: and N more problems not shown (...)"
 * when the limit hid some. */
void cfg_diag_flush(struct cfg_ctx *ctx);

/* Copy `in` to `out` (cap bytes, NUL included) with control bytes and
 * invalid UTF-8 written as "\xNN"; stops before a character that does not
 * fit. Returns the length written. */
size_t cfg_escape(char *out, size_t cap, const char *in);

/* ---- JSON helpers (cfg_json.c) ----------------------------------------- */

/* Parse a whole document (comments and trailing commas allowed). Returns the
 * root object, or NULL after reporting the position and reason. */
json_object *cfg_json_parse(struct cfg_ctx *ctx, const char *text, size_t len);

/* Key path helpers: "<parent>[i]" and "<parent>.<name>". */
void cfg_key_index(char *out, const char *parent, int i);
void cfg_key_member(char *out, const char *parent, const char *name);

/* A non-negative integer written as a JSON number or a decimal string
 * ("1"). Returns 0, or -1 after reporting under `key`. */
/* upgrade_after_bytes: at most 1 GiB */
#define CFG_UPGRADE_AFTER_MAX (1 << 30)
int cfg_json_uint(struct cfg_ctx *ctx, const char *key, json_object *v,
                  int max, int *out);

/* A string value that fits in `cap` bytes (NUL included) and is not empty.
 * Returns 0, or -1 after reporting. */
int cfg_json_string(struct cfg_ctx *ctx, const char *key, json_object *v,
                    char *out, size_t cap);

/* Warn about every member of `obj` not named in the NULL-terminated list. */
void cfg_warn_unknown_keys(struct cfg_ctx *ctx, const char *key,
                           json_object *obj, const char *const *known);

/* ---- subnets (cfg_subnet.c) --------------------------------------------- */

/* A network: IPv4 uses the first 4 bytes of addr, the rest are zero. */
struct cfg_subnet {
    int family;                 /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    int prefix;                 /* 0..32 or 0..128 */
};

/* Parse "a.b.c.d/n" or "x:y::z/n" (no "/n": a host route). Host bits past
 * the prefix are cleared with a warning. Returns 0, or -1 after reporting. */
int cfg_parse_subnet(struct cfg_ctx *ctx, const char *key, const char *text,
                     struct cfg_subnet *out);

/* Clear the bits of addr past `prefix` (defined for every 0..128). */
void cfg_mask_addr(uint8_t addr[16], int prefix);

/* "a.b.c.d/n" or "x::/n" into out (at least 64 bytes). */
void cfg_subnet_text(const struct cfg_subnet *s, char *out, size_t cap);

/* ---- route table (route_table.c) ----------------------------------------- */

struct nstack_route_table *route_table_new(void);
void route_table_free(struct nstack_route_table *t);

/* Add one rule; `index` is the ip_route index (-1 for built-ins);
 * `fallback` the module a failed connect may retry on (-1: none). Built-in
 * rules lose to a config entry with the same subnet. Returns 0 or -1 (ENOMEM). */
int route_table_add(struct nstack_route_table *t, const struct cfg_subnet *s,
                    int module, int index, int builtin, int fallback,
                    int anchor_off, int upgrade_after, const char *rule_text);

/* Sort and index the table for lookups. A second config entry for a subnet
 * already listed is reported as a warning and ignored. Returns 0 or -1. */
int route_table_finish(struct nstack_route_table *t, struct cfg_ctx *ctx);

/* The longest-prefix match for an address of `family` (16 bytes, IPv4 in
 * the first 4); NULL if none. Allocation-free. */
struct route_entry {
    uint8_t net[16];
    int prefix;
    int family;
    int module;
    int index;                  /* ip_route index, -1 for a built-in */
    int builtin;
    int fallback;               /* "fallback" module index, -1 if none */
    int anchor_off;             /* "anchor": false (TCP-anchored connections off) */
    int upgrade_after;          /* "upgrade_after_bytes": log2(N) + 1; 0: upgrade first */
    char text[CFG_RULE_TEXT_MAX];
};
const struct route_entry *route_table_match(const struct nstack_route_table *t,
                                            int family, const uint8_t addr[16]);

/* Visit entries in lookup order (longest prefix first). */
int route_table_count(const struct nstack_route_table *t);
const struct route_entry *route_table_at(const struct nstack_route_table *t,
                                         int i);

/* ---- the two files ---------------------------------------------------------- */

/* Fill cfg->modules and default_module from module_config.json's root. */
int cfg_parse_modules(struct cfg_ctx *ctx, json_object *root,
                      struct nstack_config *cfg);

/* Add the kernel-only defaults: the "kernel" module (if missing). */
int cfg_ensure_kernel(struct nstack_config *cfg);

/* Fill routes and proto_routes from rd_config.json's root (may be NULL:
 * no rd file) - the built-in rules are always added. */
int cfg_parse_routes(struct cfg_ctx *ctx, json_object *root,
                     struct nstack_config *cfg);

#endif /* NSTACK_CFG_INTERNAL_H */
