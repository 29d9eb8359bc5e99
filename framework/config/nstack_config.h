/*
 * nstack_config.h - parsing of module_config.json / rd_config.json and the
 * routing decision (which stack carries a socket). Internal to the
 * framework; also linked into the nstack-route tool and the unit tests, so
 * the tool answers with exactly the code the library runs.
 *
 * The parser never prints: every problem is reported through the
 * diagnostic callback as one line naming the file, the key or position, and
 * the reason. The caller decides where lines go (library log, tool stderr,
 * unit-test capture).
 */
#ifndef NSTACK_CONFIG_H
#define NSTACK_CONFIG_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#define NSTACK_NAME_MAX 64
#define NSTACK_PATH_MAX 4096
#define NSTACK_MAX_MODULES 16

enum nstack_diag_severity { NSTACK_DIAG_WARNING, NSTACK_DIAG_ERROR };

/* One diagnostic line, e.g.
 *   "rd_config.json: ip_route[2].subnet: \"10.0.0.1/33\": prefix length out of range" */
typedef void (*nstack_diag_fn)(void *arg, enum nstack_diag_severity sev,
                               const char *line);

enum nstack_loadtype { NSTACK_LOAD_DYNAMIC = 0, NSTACK_LOAD_STATIC = 1 };

struct nstack_module_desc {
    char stack_name[NSTACK_NAME_MAX];
    char libname[NSTACK_PATH_MAX];    /* "" for the built-in kernel stack */
    enum nstack_loadtype loadtype;
    int deploytype;                   /* parsed for compatibility, 0 if absent */
    int stackid;                      /* -1 if absent */
};

/* Why a route was chosen. */
enum nstack_route_rule {
    NSTACK_RULE_IP_ROUTE,      /* ip_route[index] matched (longest prefix) */
    NSTACK_RULE_BUILTIN,       /* built-in rule (127.0.0.0/8, ::1, 0.0.0.0 → kernel) */
    NSTACK_RULE_PROT_ROUTE,    /* prot_route[index] matched the socket type */
    NSTACK_RULE_DEFAULT,       /* default_stack_name */
};

struct nstack_route_result {
    int module;                         /* index into config->modules */
    enum nstack_route_rule rule;
    int index;                          /* entry index for IP/PROT routes, else -1 */
    char rule_text[160];                /* e.g. "ip_route[0] 192.168.21.0/24 -> rsocket" */
    int fallback;                       /* ip_route "fallback" module, else -1 */
    int anchor_off;                     /* the entry says "anchor": false */
    int upgrade_after;                  /* "upgrade_after_bytes" N as log2(N) + 1; 0: upgrade first */
};

struct nstack_route_table;             /* opaque LPM table (IPv4 + IPv6) */

struct nstack_config {
    /* modules[0..n_modules-1]; the built-in "kernel" is always present
     * (added if the file does not list it). */
    struct nstack_module_desc modules[NSTACK_MAX_MODULES];
    int n_modules;
    int default_module;                 /* index of default_stack_name */
    struct nstack_route_table *routes;  /* ip_route */
    struct nstack_proto_route { int proto_type; int module; int anchor_off; int upgrade_after; } *proto_routes;
    int n_proto_routes;
    char module_file[NSTACK_PATH_MAX];  /* realpath of the files used, "" if none */
    char rd_file[NSTACK_PATH_MAX];
    int multi_listen_off;               /* rd_config "multi_stack_listen": false */
};

/*
 * Load both files. Either path may be NULL (then the environment variables
 * NSTACK_MOD_CFG_FILE / NSTACK_MOD_CFG_RD, then ./module_config.json and
 * ./rd_config.json are tried; a missing default file is not an error).
 * Returns 0 with *out set (a valid configuration: with no files, kernel
 * only), or -1 when a file is present but invalid; then *out is NULL and
 * the caller falls back to the kernel stack for everything. errno after -1:
 * the open() error of a named file (ENOENT, EACCES...), EFBIG for a file
 * over NSTACK_CFG_FILE_MAX, EINVAL for anything else (invalid content).
 */
int nstack_config_load(const char *module_path, const char *rd_path,
                       nstack_diag_fn diag, void *diag_arg,
                       struct nstack_config **out);

/* Parse from memory (unit tests). `name` is used in diagnostics. */
int nstack_config_parse(const char *module_json, const char *module_name,
                        const char *rd_json, const char *rd_name,
                        nstack_diag_fn diag, void *diag_arg,
                        struct nstack_config **out);

void nstack_config_free(struct nstack_config *cfg);

/* Index of a module by stack_name, or -1. */
int nstack_config_find_module(const struct nstack_config *cfg, const char *name);

/*
 * The routing decision. `key` is the bound local address when the socket is
 * bound to a specific address, else the destination; NULL when there is no
 * address yet (e.g. a wildcard listener). `sock_type` is the socket type
 * without SOCK_NONBLOCK/SOCK_CLOEXEC. Thread-safe, allocation-free.
 */
void nstack_route_lookup(const struct nstack_config *cfg,
                         const struct sockaddr *key, int sock_type,
                         struct nstack_route_result *out);

/* Largest config file accepted (DMM's limit). */
#define NSTACK_CFG_FILE_MAX (1024 * 1024)

/*
 * Human-readable listing of a loaded configuration (modules, ip_route in the
 * order lookups try them, prot_route, default), one line per call of
 * `line`. Used by `nstack-route --dump` and the framework's debug log.
 */
typedef void (*nstack_line_fn)(void *arg, const char *line);
void nstack_config_describe(const struct nstack_config *cfg,
                            nstack_line_fn line, void *arg);

/*
 * The stacks a wildcard listener (0.0.0.0 / ::) listens on: its own route
 * (prot_route, then the default) plus every module that an ip_route sends
 * one of this host's interface addresses to (getifaddrs, in the caller's
 * network namespace; an AF_INET6 listener counts IPv4 addresses too, as it
 * is dual-stack). No extras when rd_config says "multi_stack_listen": false.
 * The caller applies its own fallbacks (module not loadable, caps).
 */
struct nstack_listen_extra {
    int module;                         /* index into config->modules */
    int index;                          /* the ip_route entry */
    int anchor_off;                     /* that entry says "anchor": false */
    char local[64];                     /* the local address it covers */
};
struct nstack_listen_plan {
    struct nstack_route_result primary;
    int n_extra;
    struct nstack_listen_extra extra[NSTACK_MAX_MODULES];
};
void nstack_listen_plan(const struct nstack_config *cfg, int family,
                        int sock_type, struct nstack_listen_plan *out);

#endif /* NSTACK_CONFIG_H */
