/*
 * nstack-route - which stack would libnStackAPI.so pick for a socket, and
 * is the configuration valid. It links the library's own nstack_config
 * code, so its answer is the library's answer.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "nstack_config.h"
#include "route_args.h"

enum { EXIT_VALID = 0, EXIT_INVALID = 1, EXIT_USAGE = 2 };

static void print_diag(void *arg, enum nstack_diag_severity sev, const char *line)
{
    (void)arg;
    fprintf(stderr, "%s: %s\n", sev == NSTACK_DIAG_ERROR ? "error" : "warning",
            line);
}

static void print_line(void *arg, const char *line)
{
    (void)arg;
    printf("%s\n", line);
}

/* "ip_route[0] 192.168.21.0/24 -> rsocket" -> "ip_route[0] 192.168.21.0/24" */
static void rule_without_target(const struct nstack_route_result *r, char *why, size_t cap)
{
    char *arrow;

    snprintf(why, cap, "%s", r->rule_text);
    arrow = strstr(why, " -> ");
    if (arrow)
        *arrow = '\0';
}

static const char *stack_of(const struct nstack_config *cfg, const struct nstack_route_result *r)
{
    return r->module >= 0 ? cfg->modules[r->module].stack_name : "?";
}

static int is_wildcard(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* The listen-time answer: no address key, so prot_route, then the default. */
static void lookup_listen(const struct nstack_config *cfg, struct nstack_route_result *r)
{
    nstack_route_lookup(cfg, NULL, SOCK_STREAM, r);
}

/* "listen 0.0.0.0:80 tcp -> kernel + rsocket (default_stack_name;
 * ip_route[0] covers local 192.168.21.180)": the listener's own stack plus
 * every module that serves one of this host's addresses. */
static void print_listen(const struct nstack_config *cfg, const struct route_args *a)
{
    struct nstack_listen_plan p;
    char why[sizeof(p.primary.rule_text)];

    nstack_listen_plan(cfg, a->addr.ss_family, SOCK_STREAM, &p);
    rule_without_target(&p.primary, why, sizeof(why));
    printf("listen %s tcp -> %s", a->addr_text, stack_of(cfg, &p.primary));
    for (int i = 0; i < p.n_extra; i++)
        printf(" + %s", cfg->modules[p.extra[i].module].stack_name);
    printf(" (%s", why);
    for (int i = 0; i < p.n_extra; i++)
        printf("; ip_route[%d] covers local %s", p.extra[i].index, p.extra[i].local);
    printf(")\n");
}

/* A wildcard bind leaves the decision to listen or connect/sendto. */
static void print_wildcard(const struct nstack_config *cfg, const struct route_args *a)
{
    struct nstack_route_result r;
    char why[sizeof(r.rule_text)];

    if (a->sock_type == SOCK_DGRAM) {
        printf("%s %s udp -> undecided (wildcard: the kernel socket serves it until "
               "connect/sendto, which decide by the destination)\n", a->verb, a->addr_text);
        return;
    }
    if (!strcmp(a->verb, "listen")) {
        print_listen(cfg, a);
        return;
    }
    lookup_listen(cfg, &r);
    rule_without_target(&r, why, sizeof(why));
    printf("bind %s tcp -> undecided (wildcard: at listen -> %s (%s); at connect: by the destination)\n",
               a->addr_text, stack_of(cfg, &r), why);
}

static void print_route(const struct nstack_config *cfg, const struct route_args *a)
{
    struct nstack_route_result r;
    char why[sizeof(r.rule_text)];

    if (strcmp(a->verb, "connect") && is_wildcard(&a->addr)) {
        print_wildcard(cfg, a);
        return;
    }
    /* A specific bind decides at bind, so listen on it answers the same. */
    nstack_route_lookup(cfg, (const struct sockaddr *)&a->addr, a->sock_type, &r);
    rule_without_target(&r, why, sizeof(why));
    printf("%s %s %s -> %s (%s)\n", a->verb, a->addr_text,
           a->sock_type == SOCK_STREAM ? "tcp" : "udp", stack_of(cfg, &r), why);
}

int main(int argc, char **argv)
{
    struct nstack_config *cfg;
    struct route_args a;

    if (route_args_parse(argc, argv, &a) < 0)
        return EXIT_USAGE;
    if (nstack_config_load(a.module_file, a.rd_file, print_diag, NULL, &cfg) < 0) {
        fprintf(stderr, "nstack-route: configuration invalid: libnStackAPI.so "
                "would serve every socket from the kernel stack\n");
        return EXIT_INVALID;
    }
    if (a.check)
        printf("configuration valid: module_config %s, rd_config %s\n",
               cfg->module_file[0] ? cfg->module_file : "(none: kernel only)",
               cfg->rd_file[0] ? cfg->rd_file : "(none)");
    if (a.dump)
        nstack_config_describe(cfg, print_line, NULL);
    if (a.addr_text)
        print_route(cfg, &a);
    nstack_config_free(cfg);
    return EXIT_VALID;
}
