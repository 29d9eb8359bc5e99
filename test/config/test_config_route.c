/*
 * test_config_route.c - the routing decision: longest prefix over
 * ip_route (IPv4, IPv6, IPv4-mapped), built-in rules, prot_route, and
 * default_stack_name; DMM's routing bugs each have a test here.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "diag_capture.h"
#include "nstack_config.h"

/* kernel, rsocket, alt: three stacks to tell rules apart */
#define MODS(def) \
    "{\"default_stack_name\":\"" def "\",\"module_list\":[" \
    "{\"stack_name\":\"kernel\"}," \
    "{\"stack_name\":\"rsocket\",\"libname\":\"libdmm_rsocket.so\"}," \
    "{\"stack_name\":\"alt\",\"libname\":\"alt.so\"}]}"

static struct nstack_config *load(const char *mod, const char *rd)
{
    struct diag_capture d;
    struct nstack_config *cfg = NULL;

    memset(&d, 0, sizeof(d));
    if (nstack_config_parse(mod, "module_config.json", rd, "rd_config.json",
                            diag_collect, &d, &cfg) != 0) {
        diag_print(&d);
        fail_msg("configuration rejected");
    }
    return cfg;
}

static struct sockaddr_storage addr(const char *text)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
    }
    return ss;
}

/* The stack_name chosen for a key (NULL: no address) and socket type. */
static const char *route(const struct nstack_config *cfg, const char *key,
                         int type, struct nstack_route_result *r)
{
    struct sockaddr_storage ss;

    if (key)
        ss = addr(key);
    nstack_route_lookup(cfg, key ? (struct sockaddr *)&ss : NULL, type, r);
    assert_true(r->module >= 0 && r->module < cfg->n_modules);
    return cfg->modules[r->module].stack_name;
}

static const char *route_tcp(const struct nstack_config *cfg, const char *key)
{
    struct nstack_route_result r;

    return route(cfg, key, SOCK_STREAM, &r);
}

static void test_longest_prefix_wins(void **state)
{
    struct nstack_config *cfg = load(MODS("kernel"),
        "{\"ip_route\":[{\"subnet\":\"192.168.0.0/16\",\"stack_name\":\"alt\"},"
        "{\"subnet\":\"192.168.21.0/24\",\"stack_name\":\"rsocket\"},"
        "{\"subnet\":\"192.168.21.128/25\",\"stack_name\":\"kernel\"}]}");
    struct nstack_route_result r;

    (void)state;
    assert_string_equal(route(cfg, "192.168.21.5", SOCK_STREAM, &r), "rsocket");
    assert_int_equal(r.rule, NSTACK_RULE_IP_ROUTE);
    assert_int_equal(r.index, 1);
    assert_string_equal(r.rule_text, "ip_route[1] 192.168.21.0/24 -> rsocket");
    assert_string_equal(route(cfg, "192.168.21.200", SOCK_STREAM, &r), "kernel");
    assert_int_equal(r.index, 2);
    assert_string_equal(route(cfg, "192.168.22.181", SOCK_DGRAM, &r), "alt");
    assert_int_equal(r.index, 0);
    assert_string_equal(route(cfg, "192.169.0.1", SOCK_STREAM, &r), "kernel");
    assert_int_equal(r.rule, NSTACK_RULE_DEFAULT);
    assert_int_equal(r.index, -1);
    nstack_config_free(cfg);
}

/* DMM: 10.0.0.0/16 inserted after 10.0.0.0/8 overwrote the /8. */
static void test_nested_prefix_after_shorter(void **state)
{
    static const char *const rds[] = {
        "{\"ip_route\":[{\"subnet\":\"10.0.0.0/8\",\"stack_name\":\"rsocket\"},"
        "{\"subnet\":\"10.0.0.0/16\",\"stack_name\":\"alt\"}]}",
        "{\"ip_route\":[{\"subnet\":\"10.0.0.0/16\",\"stack_name\":\"alt\"},"
        "{\"subnet\":\"10.0.0.0/8\",\"stack_name\":\"rsocket\"}]}",
    };
    size_t i;

    (void)state;
    for (i = 0; i < 2; i++) {
        struct nstack_config *cfg = load(MODS("kernel"), rds[i]);

        assert_string_equal(route_tcp(cfg, "10.0.3.4"), "alt");
        assert_string_equal(route_tcp(cfg, "10.1.3.4"), "rsocket");
        assert_string_equal(route_tcp(cfg, "10.255.255.255"), "rsocket");
        assert_string_equal(route_tcp(cfg, "11.0.0.1"), "kernel");
        nstack_config_free(cfg);
    }
}

/* DMM: /0 was a 32-bit shift by 32 (undefined). */
static void test_prefix_zero(void **state)
{
    struct nstack_config *cfg = load(MODS("kernel"),
        "{\"ip_route\":[{\"subnet\":\"0.0.0.0/0\",\"stack_name\":\"rsocket\"},"
        "{\"subnet\":\"::/0\",\"stack_name\":\"alt\"}]}");
    struct nstack_route_result r;

    (void)state;
    assert_string_equal(route(cfg, "1.2.3.4", SOCK_STREAM, &r), "rsocket");
    assert_string_equal(r.rule_text, "ip_route[0] 0.0.0.0/0 -> rsocket");
    assert_string_equal(route_tcp(cfg, "255.255.255.255"), "rsocket");
    assert_string_equal(route_tcp(cfg, "fd21::181"), "alt");
    assert_string_equal(route_tcp(cfg, "::ffff:8.8.8.8"), "rsocket");
    /* the longer built-in rules still win */
    assert_string_equal(route(cfg, "127.0.0.1", SOCK_STREAM, &r), "kernel");
    assert_int_equal(r.rule, NSTACK_RULE_BUILTIN);
    assert_string_equal(route_tcp(cfg, "::1"), "kernel");
    assert_string_equal(route_tcp(cfg, "0.0.0.0"), "kernel");
    assert_string_equal(route_tcp(cfg, "::"), "kernel");
    nstack_config_free(cfg);
}

/* DMM: no match went to the first module listed, not default_stack_name. */
static void test_default_stack_name_honoured(void **state)
{
    struct nstack_config *cfg = load(MODS("alt"), "{\"ip_route\":[]}");
    struct nstack_route_result r;

    (void)state;
    assert_string_equal(route(cfg, "8.8.8.8", SOCK_STREAM, &r), "alt");
    assert_int_equal(r.rule, NSTACK_RULE_DEFAULT);
    assert_string_equal(r.rule_text, "default_stack_name -> alt");
    assert_string_equal(route(cfg, NULL, SOCK_DGRAM, &r), "alt");
    /* loopback and wildcard stay on the kernel even then */
    assert_string_equal(route_tcp(cfg, "127.1.2.3"), "kernel");
    nstack_config_free(cfg);
}

static void test_builtins_and_override(void **state)
{
    struct nstack_config *cfg = load(MODS("rsocket"),
        "{\"ip_route\":[{\"subnet\":\"127.0.0.0/8\",\"stack_name\":\"alt\"},"
        "{\"subnet\":\"::1/128\",\"stack_name\":\"alt\"}]}");
    struct nstack_route_result r;

    (void)state;
    assert_string_equal(route(cfg, "127.0.0.1", SOCK_STREAM, &r), "alt");
    assert_int_equal(r.rule, NSTACK_RULE_IP_ROUTE);
    assert_int_equal(r.index, 0);
    assert_string_equal(route_tcp(cfg, "::1"), "alt");
    assert_string_equal(route(cfg, "0.0.0.0", SOCK_STREAM, &r), "kernel");
    assert_int_equal(r.rule, NSTACK_RULE_BUILTIN);
    assert_int_equal(r.index, -1);
    assert_string_equal(r.rule_text, "built-in 0.0.0.0/32 -> kernel");
    assert_string_equal(route_tcp(cfg, "::"), "kernel");
    nstack_config_free(cfg);
}

static void test_ipv6_and_mapped(void **state)
{
    struct nstack_config *cfg = load(MODS("kernel"),
        "{\"ip_route\":[{\"subnet\":\"192.168.21.0/24\",\"stack_name\":\"rsocket\"},"
        "{\"subnet\":\"fd21::/64\",\"stack_name\":\"alt\"},"
        "{\"subnet\":\"fd21::180/128\",\"stack_name\":\"rsocket\"},"
        "{\"subnet\":\"::ffff:10.0.0.0/104\",\"stack_name\":\"alt\"}]}");
    struct nstack_route_result r;

    (void)state;
    assert_string_equal(route(cfg, "::ffff:192.168.21.181", SOCK_STREAM, &r), "rsocket");
    assert_int_equal(r.index, 0);
    assert_string_equal(route_tcp(cfg, "fd21::181"), "alt");
    assert_string_equal(route_tcp(cfg, "fd21::180"), "rsocket");
    assert_string_equal(route_tcp(cfg, "fd21:0:0:1::1"), "kernel");
    /* a mapped subnet in the file is an IPv4 rule */
    assert_string_equal(route(cfg, "10.2.3.4", SOCK_STREAM, &r), "alt");
    assert_string_equal(r.rule_text, "ip_route[3] 10.0.0.0/8 -> alt");
    /* an IPv6 key never matches an IPv4 rule with the same bytes */
    assert_string_equal(route_tcp(cfg, "c0a8:1500::"), "kernel");
    nstack_config_free(cfg);
}

static void test_prot_route_by_type(void **state)
{
    struct nstack_config *cfg = load(MODS("kernel"),
        "{\"ip_route\":[{\"subnet\":\"192.168.21.0/24\",\"stack_name\":\"alt\"}],"
        "\"prot_route\":[{\"proto_type\":\"1\",\"stack_name\":\"rsocket\"}]}");
    struct nstack_route_result r;

    (void)state;
    assert_string_equal(route(cfg, "8.8.8.8", SOCK_STREAM, &r), "rsocket");
    assert_int_equal(r.rule, NSTACK_RULE_PROT_ROUTE);
    assert_int_equal(r.index, 0);
    assert_string_equal(r.rule_text, "prot_route[0] tcp -> rsocket");
    assert_string_equal(route(cfg, "8.8.8.8", SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, &r),
                        "rsocket");
    assert_string_equal(route(cfg, "8.8.8.8", SOCK_DGRAM, &r), "kernel");
    assert_int_equal(r.rule, NSTACK_RULE_DEFAULT);
    assert_string_equal(route(cfg, NULL, SOCK_STREAM, &r), "rsocket");
    /* ip_route comes first */
    assert_string_equal(route(cfg, "192.168.21.9", SOCK_STREAM, &r), "alt");
    nstack_config_free(cfg);
}

static void test_non_inet_key_and_no_config(void **state)
{
    struct nstack_config *cfg = load(MODS("rsocket"), NULL);
    struct sockaddr_un_like { sa_family_t f; char path[20]; } un = { AF_UNIX, "x" };
    struct nstack_route_result r;

    (void)state;
    nstack_route_lookup(cfg, (struct sockaddr *)&un, SOCK_STREAM, &r);
    assert_int_equal(r.rule, NSTACK_RULE_DEFAULT);
    assert_int_equal(r.module, nstack_config_find_module(cfg, "rsocket"));
    nstack_route_lookup(NULL, NULL, SOCK_STREAM, &r);
    assert_int_equal(r.module, -1);
    nstack_config_free(cfg);
}

/* Many routes: each /24 of 10.x.y.0 alternates stacks; every lookup agrees. */
static void test_many_routes(void **state)
{
    const int n = 2000;
    size_t cap = (size_t)n * 80 + 64, len = 0;
    char *rd = malloc(cap), key[32];
    struct nstack_config *cfg;
    int i;

    (void)state;
    assert_non_null(rd);
    len += (size_t)snprintf(rd + len, cap - len, "{\"ip_route\":[");
    for (i = 0; i < n; i++)
        len += (size_t)snprintf(rd + len, cap - len,
                                "%s{\"subnet\":\"10.%d.%d.0/24\",\"stack_name\":\"%s\"}",
                                i ? "," : "", i / 256, i % 256, i % 3 ? "rsocket" : "alt");
    snprintf(rd + len, cap - len, "]}");
    cfg = load(MODS("kernel"), rd);
    free(rd);
    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "10.%d.%d.77", i / 256, i % 256);
        assert_string_equal(route_tcp(cfg, key), i % 3 ? "rsocket" : "alt");
    }
    assert_string_equal(route_tcp(cfg, "10.200.0.1"), "kernel");
    nstack_config_free(cfg);
}

/* ---- no allocation, thread safety ---------------------------------------- */

static volatile int count_allocs;
static volatile int allocs;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n) { if (count_allocs) allocs++; return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { if (count_allocs) allocs++; return __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { if (count_allocs) allocs++; return __real_realloc(p, n); }

static void test_lookup_allocates_nothing(void **state)
{
    struct nstack_config *cfg = load(MODS("alt"),
        "{\"ip_route\":[{\"subnet\":\"10.0.0.0/8\",\"stack_name\":\"rsocket\"}],"
        "\"prot_route\":[{\"proto_type\":2,\"stack_name\":\"kernel\"}]}");
    struct sockaddr_storage a = addr("10.1.1.1"), b = addr("fd21::1");
    struct nstack_route_result r;

    (void)state;
    count_allocs = 1;
    nstack_route_lookup(cfg, (struct sockaddr *)&a, SOCK_STREAM, &r);
    nstack_route_lookup(cfg, (struct sockaddr *)&b, SOCK_STREAM, &r);
    nstack_route_lookup(cfg, (struct sockaddr *)&b, SOCK_DGRAM, &r);
    nstack_route_lookup(cfg, NULL, SOCK_STREAM, &r);
    count_allocs = 0;
    assert_int_equal(allocs, 0);
    /* and the wrapper does count: parsing allocates */
    count_allocs = 1;
    nstack_config_free(load(MODS("alt"), NULL));
    count_allocs = 0;
    assert_true(allocs > 0);
    nstack_config_free(cfg);
}

struct lookup_job {
    const struct nstack_config *cfg;
    int seed;
    int mismatches;
};

static void *lookup_worker(void *arg)
{
    struct lookup_job *job = arg;
    struct sockaddr_in sin = { .sin_family = AF_INET };
    struct nstack_route_result r;
    int i;

    for (i = 0; i < 200000; i++) {
        uint32_t host = (uint32_t)(i * 2654435761u + (unsigned)job->seed);
        int in_10 = (host >> 24) == 10;

        sin.sin_addr.s_addr = htonl(host);
        nstack_route_lookup(job->cfg, (struct sockaddr *)&sin, SOCK_STREAM, &r);
        if ((host >> 24) == 127 || host == 0)
            continue;
        if (strcmp(job->cfg->modules[r.module].stack_name, in_10 ? "rsocket" : "alt"))
            job->mismatches++;
    }
    return NULL;
}

static void test_concurrent_lookups(void **state)
{
    struct nstack_config *cfg = load(MODS("alt"),
        "{\"ip_route\":[{\"subnet\":\"10.0.0.0/8\",\"stack_name\":\"rsocket\"}]}");
    struct lookup_job jobs[4];
    pthread_t th[4];
    int i;

    (void)state;
    for (i = 0; i < 4; i++) {
        jobs[i] = (struct lookup_job){ cfg, i * 7919, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, lookup_worker, &jobs[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(jobs[i].mismatches, 0);
    }
    nstack_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_longest_prefix_wins),
        cmocka_unit_test(test_nested_prefix_after_shorter),
        cmocka_unit_test(test_prefix_zero),
        cmocka_unit_test(test_default_stack_name_honoured),
        cmocka_unit_test(test_builtins_and_override),
        cmocka_unit_test(test_ipv6_and_mapped),
        cmocka_unit_test(test_prot_route_by_type),
        cmocka_unit_test(test_non_inet_key_and_no_config),
        cmocka_unit_test(test_many_routes),
        cmocka_unit_test(test_lookup_allocates_nothing),
        cmocka_unit_test(test_concurrent_lookups),
    };

    return cmocka_run_group_tests_name("config_route", tests, NULL, NULL);
}
