/*
 * test_config_listen.c - the newer rd_config keys and the listen plan:
 * "fallback" on ip_route entries, top-level "multi_stack_listen", and
 * nstack_listen_plan() over a fake set of interfaces (getifaddrs and
 * freeifaddrs are wrapped at link time, so the plan does not depend on
 * the machine's addresses). Bad values must give one error naming the
 * file and the key.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "diag_capture.h"
#include "nstack_config.h"

static struct diag_capture d;

#define MODULES \
    "{\"default_stack_name\":\"kernel\",\"module_list\":[" \
    "{\"stack_name\":\"kernel\",\"libname\":\"\",\"loadtype\":\"static\"}," \
    "{\"stack_name\":\"rsocket\",\"libname\":\"libdmm_rsocket.so\"}," \
    "{\"stack_name\":\"shadow\",\"libname\":\"libdmm_shadow.so\"}]}"

static struct nstack_config *parse_ok(const char *rd)
{
    return diag_parse_ok(&d, MODULES, rd);
}

static void parse_bad(const char *rd)
{
    struct nstack_config *cfg = (void *)1;

    memset(&d, 0, sizeof(d));
    errno = 0;
    assert_int_equal(nstack_config_parse(MODULES, "module_config.json", rd, "rd_config.json",
                                         diag_collect, &d, &cfg), -1);
    assert_int_equal(errno, EINVAL);
    assert_null(cfg);
    assert_true(d.errors > 0);
}

static struct sockaddr_in v4(const char *a)
{
    struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(80) };
    assert_int_equal(inet_pton(AF_INET, a, &s.sin_addr), 1);
    return s;
}

static struct nstack_route_result lookup4(const struct nstack_config *cfg, const char *a)
{
    struct sockaddr_in s = v4(a);
    struct nstack_route_result r;
    nstack_route_lookup(cfg, (const struct sockaddr *)&s, SOCK_STREAM, &r);
    return r;
}

/* ---- "fallback" on ip_route ------------------------------------------------ */

static void fallback_kernel_is_kept_per_entry(void **state)
{
    (void)state;
    struct nstack_config *cfg = parse_ok(
        "{\"ip_route\":["
        "{\"subnet\":\"192.168.21.0/24\",\"stack_name\":\"rsocket\",\"fallback\":\"kernel\"},"
        "{\"subnet\":\"192.168.22.0/24\",\"stack_name\":\"rsocket\"}]}");
    int kernel = nstack_config_find_module(cfg, "kernel");
    int rsocket = nstack_config_find_module(cfg, "rsocket");

    struct nstack_route_result r = lookup4(cfg, "192.168.21.7");
    assert_int_equal(r.module, rsocket);
    assert_int_equal(r.fallback, kernel);
    assert_non_null(strstr(r.rule_text, "(fallback kernel)"));

    r = lookup4(cfg, "192.168.22.7");
    assert_int_equal(r.module, rsocket);
    assert_int_equal(r.fallback, -1);
    assert_null(strstr(r.rule_text, "fallback"));

    r = lookup4(cfg, "10.1.2.3");          /* the default has no fallback */
    assert_int_equal(r.rule, NSTACK_RULE_DEFAULT);
    assert_int_equal(r.fallback, -1);
    nstack_config_free(cfg);
}

static void fallback_on_ipv6_entry(void **state)
{
    (void)state;
    struct nstack_config *cfg = parse_ok(
        "{\"ip_route\":[{\"subnet\":\"fd21::/64\",\"stack_name\":\"shadow\",\"fallback\":\"kernel\"}]}");
    struct sockaddr_in6 s = { .sin6_family = AF_INET6 };
    assert_int_equal(inet_pton(AF_INET6, "fd21::181", &s.sin6_addr), 1);
    struct nstack_route_result r;
    nstack_route_lookup(cfg, (const struct sockaddr *)&s, SOCK_STREAM, &r);
    assert_int_equal(r.module, nstack_config_find_module(cfg, "shadow"));
    assert_int_equal(r.fallback, nstack_config_find_module(cfg, "kernel"));
    nstack_config_free(cfg);
}

static void fallback_other_than_kernel_is_refused(void **state)
{
    (void)state;
    parse_bad("{\"ip_route\":[{\"subnet\":\"192.168.21.0/24\",\"stack_name\":\"rsocket\","
              "\"fallback\":\"shadow\"}]}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json", "ip_route[0].fallback", "\"shadow\"",
             "only \"kernel\"");
}

static void fallback_unknown_stack_is_refused(void **state)
{
    (void)state;
    parse_bad("{\"ip_route\":[{\"subnet\":\"1.2.3.0/24\",\"stack_name\":\"rsocket\"},"
              "{\"subnet\":\"10.0.0.0/8\",\"stack_name\":\"rsocket\",\"fallback\":\"tcp\"}]}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json", "ip_route[1].fallback", "\"tcp\"");
}

static void fallback_wrong_types_are_refused(void **state)
{
    (void)state;
    const char *bad[] = { "1", "true", "null", "[\"kernel\"]", "{}" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char rd[256];
        snprintf(rd, sizeof(rd), "{\"ip_route\":[{\"subnet\":\"10.0.0.0/8\",\"stack_name\":\"rsocket\","
                                 "\"fallback\":%s}]}", bad[i]);
        parse_bad(rd);
        DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json", "ip_route[0].fallback", "expected a string");
    }
}

static void fallback_empty_is_refused(void **state)
{
    (void)state;
    parse_bad("{\"ip_route\":[{\"subnet\":\"10.0.0.0/8\",\"stack_name\":\"rsocket\",\"fallback\":\"\"}]}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json", "ip_route[0].fallback", "must not be empty");
}

/* ---- "anchor" on ip_route / prot_route ------------------------------------ */

static void anchor_defaults_on_and_is_kept_per_entry(void **state)
{
    (void)state;
    struct nstack_config *cfg = parse_ok(
        "{\"ip_route\":["
        "{\"subnet\":\"192.168.21.0/24\",\"stack_name\":\"rsocket\",\"anchor\":false},"
        "{\"subnet\":\"192.168.22.0/24\",\"stack_name\":\"rsocket\",\"anchor\":true},"
        "{\"subnet\":\"192.168.23.0/24\",\"stack_name\":\"rsocket\"}],"
        "\"prot_route\":[{\"proto_type\":1,\"stack_name\":\"shadow\",\"anchor\":false}]}");
    struct nstack_route_result r = lookup4(cfg, "192.168.21.7");
    assert_int_equal(r.anchor_off, 1);
    assert_non_null(strstr(r.rule_text, "(anchor off)"));
    r = lookup4(cfg, "192.168.22.7");
    assert_int_equal(r.anchor_off, 0);
    r = lookup4(cfg, "192.168.23.7");
    assert_int_equal(r.anchor_off, 0);
    assert_null(strstr(r.rule_text, "anchor"));
    r = lookup4(cfg, "10.1.2.3");          /* prot_route tcp */
    assert_int_equal(r.rule, NSTACK_RULE_PROT_ROUTE);
    assert_int_equal(r.anchor_off, 1);
    nstack_config_free(cfg);
}

/* ---- "upgrade_after_bytes": the long-lived policy ------------------------- */

static void upgrade_after_is_kept_per_entry(void **state)
{
    (void)state;
    struct nstack_config *cfg = parse_ok(
        "{\"ip_route\":["
        "{\"subnet\":\"192.168.21.0/24\",\"stack_name\":\"rsocket\",\"upgrade_after_bytes\":65536},"
        "{\"subnet\":\"192.168.22.0/24\",\"stack_name\":\"rsocket\",\"upgrade_after_bytes\":\"1000\"},"
        "{\"subnet\":\"192.168.23.0/24\",\"stack_name\":\"rsocket\"}],"
        "\"prot_route\":[{\"proto_type\":1,\"stack_name\":\"shadow\",\"upgrade_after_bytes\":1}]}");
    struct nstack_route_result r = lookup4(cfg, "192.168.21.7");
    assert_int_equal(r.upgrade_after, 17);          /* 2^16 */
    assert_non_null(strstr(r.rule_text, "(upgrade after 65536 bytes)"));
    r = lookup4(cfg, "192.168.22.7");
    assert_int_equal(r.upgrade_after, 11);          /* rounded up to 1024 */
    DIAG_HAS(&d, NSTACK_DIAG_WARNING, "rd_config.json", "ip_route[1].upgrade_after_bytes", "using 1024");
    r = lookup4(cfg, "192.168.23.7");
    assert_int_equal(r.upgrade_after, 0);
    r = lookup4(cfg, "10.1.2.3");
    assert_int_equal(r.upgrade_after, 1);
    nstack_config_free(cfg);
}

static void upgrade_after_bad_values_are_refused(void **state)
{
    (void)state;
    parse_bad("{\"ip_route\":[{\"subnet\":\"10.0.0.0/8\",\"stack_name\":\"rsocket\",\"upgrade_after_bytes\":0}]}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json", "ip_route[0].upgrade_after_bytes", "out of range");
    parse_bad("{\"ip_route\":[{\"subnet\":\"10.0.0.0/8\",\"stack_name\":\"rsocket\",\"upgrade_after_bytes\":true}]}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json", "ip_route[0].upgrade_after_bytes", "expected an integer");
    parse_bad("{\"ip_route\":[{\"subnet\":\"10.0.0.0/8\",\"stack_name\":\"rsocket\",\"anchor\":false,"
              "\"upgrade_after_bytes\":10}]}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json", "ip_route[0].upgrade_after_bytes", "needs a TCP-anchored route");
    parse_bad("{\"prot_route\":[{\"proto_type\":1,\"stack_name\":\"rsocket\",\"upgrade_after_bytes\":2147483648}]}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json", "prot_route[0].upgrade_after_bytes", "out of range");
}

static void anchor_not_a_boolean_is_refused(void **state)
{
    (void)state;
    parse_bad("{\"ip_route\":[{\"subnet\":\"10.0.0.0/8\",\"stack_name\":\"rsocket\",\"anchor\":\"no\"}]}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json", "ip_route[0].anchor", "expected a boolean");
    parse_bad("{\"prot_route\":[{\"proto_type\":1,\"stack_name\":\"rsocket\",\"anchor\":0}]}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json", "prot_route[0].anchor", "expected a boolean");
}

/* ---- "multi_stack_listen" ------------------------------------------------ */

static void multi_listen_defaults_on(void **state)
{
    (void)state;
    struct nstack_config *cfg = parse_ok("{\"ip_route\":[]}");
    assert_int_equal(cfg->multi_listen_off, 0);
    nstack_config_free(cfg);
    cfg = parse_ok("{\"multi_stack_listen\":true}");
    assert_int_equal(cfg->multi_listen_off, 0);
    nstack_config_free(cfg);
}

static void multi_listen_false_turns_it_off(void **state)
{
    (void)state;
    struct nstack_config *cfg = parse_ok("{\"ip_route\":[],\"multi_stack_listen\":false}");
    assert_int_equal(cfg->multi_listen_off, 1);
    assert_int_equal(d.warnings, 0);          /* a known key: no "unknown key" warning */
    nstack_config_free(cfg);
}

static void multi_listen_non_boolean_is_refused(void **state)
{
    (void)state;
    const char *bad[] = { "\"false\"", "0", "1", "null", "[]" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char rd[128];
        snprintf(rd, sizeof(rd), "{\"multi_stack_listen\":%s}", bad[i]);
        parse_bad(rd);
        DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json", "multi_stack_listen", "expected a boolean");
    }
}

/* ---- nstack_listen_plan over fake interfaces ---------------------------- */

#define FAKE_MAX 8
static struct ifaddrs g_ifa[FAKE_MAX];
static struct sockaddr_storage g_addr[FAKE_MAX];
static int g_n_ifa;
static int g_getifaddrs_fails;
static int g_outstanding;            /* lists handed out and not freed */

static void fake_reset(void)
{
    memset(g_ifa, 0, sizeof(g_ifa));
    g_n_ifa = 0;
    g_getifaddrs_fails = 0;
    g_outstanding = 0;
}

/* Adds an interface address; NULL: an entry without an address. */
static void fake_if(const char *name, const char *addr)
{
    assert_true(g_n_ifa < FAKE_MAX);
    struct ifaddrs *i = &g_ifa[g_n_ifa];
    i->ifa_name = (char *)name;
    if (addr != NULL) {
        struct sockaddr_storage *ss = &g_addr[g_n_ifa];
        memset(ss, 0, sizeof(*ss));
        if (strchr(addr, ':') != NULL) {
            ss->ss_family = AF_INET6;
            assert_int_equal(inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)ss)->sin6_addr), 1);
        } else {
            ss->ss_family = AF_INET;
            assert_int_equal(inet_pton(AF_INET, addr, &((struct sockaddr_in *)ss)->sin_addr), 1);
        }
        i->ifa_addr = (struct sockaddr *)ss;
    }
    if (g_n_ifa > 0)
        g_ifa[g_n_ifa - 1].ifa_next = i;
    g_n_ifa++;
}

int __wrap_getifaddrs(struct ifaddrs **out);
void __wrap_freeifaddrs(struct ifaddrs *list);

int __wrap_getifaddrs(struct ifaddrs **out)
{
    if (g_getifaddrs_fails) {
        errno = ENOMEM;
        return -1;
    }
    *out = g_n_ifa ? &g_ifa[0] : NULL;
    g_outstanding++;
    return 0;
}

void __wrap_freeifaddrs(struct ifaddrs *list)
{
    (void)list;
    g_outstanding--;
}

/* The two test hosts' addresses plus loopback. */
static void fake_test_host(void)
{
    fake_reset();
    fake_if("lo", "127.0.0.1");
    fake_if("lo", "::1");
    fake_if("veth21", "192.168.21.180");
    fake_if("veth21", "fd21::180");
    fake_if("veth22", "192.168.22.180");
    fake_if("nothing", NULL);
}

#define RD_HOST \
    "{\"ip_route\":[" \
    "{\"subnet\":\"192.168.21.0/24\",\"stack_name\":\"rsocket\"}," \
    "{\"subnet\":\"fd21::/64\",\"stack_name\":\"shadow\"}]"

static int plan_has(const struct nstack_listen_plan *p, int module, const char *local, int index)
{
    for (int i = 0; i < p->n_extra; i++)
        if (p->extra[i].module == module && strcmp(p->extra[i].local, local) == 0 &&
            p->extra[i].index == index)
            return 1;
    return 0;
}

static void plan_ipv4_listener_adds_routed_local_modules(void **state)
{
    (void)state;
    struct nstack_config *cfg = parse_ok(RD_HOST "}");
    struct nstack_listen_plan p;
    fake_test_host();
    nstack_listen_plan(cfg, AF_INET, SOCK_STREAM, &p);
    assert_int_equal(p.primary.module, nstack_config_find_module(cfg, "kernel"));
    assert_int_equal(p.primary.rule, NSTACK_RULE_DEFAULT);
    /* IPv6 addresses do not count for an AF_INET listener. */
    assert_int_equal(p.n_extra, 1);
    assert_true(plan_has(&p, nstack_config_find_module(cfg, "rsocket"), "192.168.21.180", 0));
    assert_int_equal(g_outstanding, 0);
    nstack_config_free(cfg);
}

static void plan_ipv6_listener_counts_both_families(void **state)
{
    (void)state;
    struct nstack_config *cfg = parse_ok(RD_HOST "}");
    struct nstack_listen_plan p;
    fake_test_host();
    nstack_listen_plan(cfg, AF_INET6, SOCK_STREAM, &p);
    assert_int_equal(p.n_extra, 2);
    assert_true(plan_has(&p, nstack_config_find_module(cfg, "rsocket"), "192.168.21.180", 0));
    assert_true(plan_has(&p, nstack_config_find_module(cfg, "shadow"), "fd21::180", 1));
    assert_int_equal(g_outstanding, 0);
    nstack_config_free(cfg);
}

static void plan_lists_each_module_once_and_not_the_primary(void **state)
{
    (void)state;
    /* prot_route makes rsocket the listener's own stack: it is not an extra,
     * and two local addresses routed to shadow give one extra. */
    struct nstack_config *cfg = parse_ok(
        "{\"ip_route\":["
        "{\"subnet\":\"192.168.21.0/24\",\"stack_name\":\"rsocket\"},"
        "{\"subnet\":\"192.168.22.0/24\",\"stack_name\":\"shadow\"},"
        "{\"subnet\":\"192.168.23.0/24\",\"stack_name\":\"shadow\"}],"
        "\"prot_route\":[{\"proto_type\":1,\"stack_name\":\"rsocket\"}]}");
    struct nstack_listen_plan p;
    fake_reset();
    fake_if("a", "192.168.21.180");
    fake_if("b", "192.168.22.180");
    fake_if("c", "192.168.23.180");
    nstack_listen_plan(cfg, AF_INET, SOCK_STREAM, &p);
    assert_int_equal(p.primary.module, nstack_config_find_module(cfg, "rsocket"));
    assert_int_equal(p.primary.rule, NSTACK_RULE_PROT_ROUTE);
    assert_int_equal(p.n_extra, 1);
    assert_true(plan_has(&p, nstack_config_find_module(cfg, "shadow"), "192.168.22.180", 1));
    nstack_config_free(cfg);
}

static void plan_ignores_addresses_without_ip_route(void **state)
{
    (void)state;
    /* Loopback goes to the kernel by the built-in rule, 10.x by the default:
     * neither adds a stack. */
    struct nstack_config *cfg = parse_ok("{\"ip_route\":[],\"default_stack_name\":\"kernel\"}");
    struct nstack_listen_plan p;
    fake_reset();
    fake_if("lo", "127.0.0.1");
    fake_if("eth0", "10.0.0.5");
    nstack_listen_plan(cfg, AF_INET6, SOCK_STREAM, &p);
    assert_int_equal(p.n_extra, 0);
    nstack_config_free(cfg);
}

static void plan_off_with_multi_stack_listen_false(void **state)
{
    (void)state;
    struct nstack_config *cfg = parse_ok(RD_HOST ",\"multi_stack_listen\":false}");
    struct nstack_listen_plan p;
    fake_test_host();
    nstack_listen_plan(cfg, AF_INET6, SOCK_STREAM, &p);
    assert_int_equal(p.n_extra, 0);
    assert_int_equal(p.primary.module, nstack_config_find_module(cfg, "kernel"));
    nstack_config_free(cfg);
}

static void plan_without_interfaces_or_config(void **state)
{
    (void)state;
    struct nstack_config *cfg = parse_ok(RD_HOST "}");
    struct nstack_listen_plan p;
    fake_test_host();
    g_getifaddrs_fails = 1;
    nstack_listen_plan(cfg, AF_INET, SOCK_STREAM, &p);
    assert_int_equal(p.n_extra, 0);
    assert_int_equal(p.primary.module, nstack_config_find_module(cfg, "kernel"));
    nstack_config_free(cfg);

    g_getifaddrs_fails = 0;
    nstack_listen_plan(NULL, AF_INET, SOCK_STREAM, &p);   /* no configuration at all */
    assert_int_equal(p.n_extra, 0);
    assert_int_equal(p.primary.module, -1);
    assert_int_equal(g_outstanding, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fallback_kernel_is_kept_per_entry),
        cmocka_unit_test(anchor_defaults_on_and_is_kept_per_entry),
        cmocka_unit_test(anchor_not_a_boolean_is_refused),
        cmocka_unit_test(upgrade_after_is_kept_per_entry),
        cmocka_unit_test(upgrade_after_bad_values_are_refused),
        cmocka_unit_test(fallback_on_ipv6_entry),
        cmocka_unit_test(fallback_other_than_kernel_is_refused),
        cmocka_unit_test(fallback_unknown_stack_is_refused),
        cmocka_unit_test(fallback_wrong_types_are_refused),
        cmocka_unit_test(fallback_empty_is_refused),
        cmocka_unit_test(multi_listen_defaults_on),
        cmocka_unit_test(multi_listen_false_turns_it_off),
        cmocka_unit_test(multi_listen_non_boolean_is_refused),
        cmocka_unit_test(plan_ipv4_listener_adds_routed_local_modules),
        cmocka_unit_test(plan_ipv6_listener_counts_both_families),
        cmocka_unit_test(plan_lists_each_module_once_and_not_the_primary),
        cmocka_unit_test(plan_ignores_addresses_without_ip_route),
        cmocka_unit_test(plan_off_with_multi_stack_listen_false),
        cmocka_unit_test(plan_without_interfaces_or_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
