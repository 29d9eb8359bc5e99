/*
 * test_config_parse.c - module_config.json / rd_config.json parsing:
 * DMM compatibility and one test per kind of bad input, each asserting the
 * diagnostic names the file, the key or position, and the reason.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "diag_capture.h"
#include "nstack_config.h"

static struct diag_capture d;

static struct nstack_config *parse_ok(const char *mod, const char *rd)
{
    return diag_parse_ok(&d, mod, rd);
}

static void parse_bad(const char *mod, const char *rd)
{
    struct nstack_config *cfg = (void *)1;

    memset(&d, 0, sizeof(d));
    errno = 0;
    assert_int_equal(nstack_config_parse(mod, "module_config.json", rd,
                                         "rd_config.json", diag_collect, &d, &cfg), -1);
    assert_int_equal(errno, EINVAL);
    assert_null(cfg);
    assert_true(d.errors > 0);
}

#define MOD_RSOCKET \
    "{\"default_stack_name\":\"kernel\",\"module_list\":[" \
    "{\"stack_name\":\"kernel\",\"libname\":\"./\",\"stackid\":0}," \
    "{\"stack_name\":\"rsocket\",\"libname\":\"libdmm_rsocket.so\",\"stackid\":1}]}"

/* A module_config.json the way DMM shipped it. */
static const char dmm_module[] =
    "/* module_config.json in DMM's style */\n"
    "{\n"
    "    \"default_stack_name\": \"kernel\",\n"
    "    \"module_list\": [\n"
    "        {\n"
    "            \"stack_name\": \"kernel\",   /* the kernel stack */\n"
    "            \"function_name\": \"kernel_stack_register\",\n"
    "            \"libname\": \"./\",\n"
    "            \"loadtype\": \"static\",\n"
    "            \"deploytype\": \"1\",\n"
    "            \"maxfd\": \"1024\",\n"
    "            \"minfd\": \"0\",\n"
    "            \"priorty\": \"1\",\n"
    "            \"stackid\": \"0\",\n"
    "        },\n"
    "        {\n"
    "            \"stack_name\": \"rsocket\",\n"
    "            \"libname\": \"libdmm_rsocket.so\",\n"
    "            \"loadtype\": \"dynamic\",\n"
    "            \"deploytype\": 1,\n"
    "            \"maxfd\": 1024,\n"
    "            \"minfd\": 0,\n"
    "            \"priorty\": 0,\n"
    "            \"stackid\": \"1\",\n"
    "        },\n"
    "    ],\n"
    "}\n";

static const char dmm_rd[] =
    "/* rd_config.json in DMM's style */\n"
    "{\n"
    "    \"ip_route\": [\n"
    "        {\n"
    "            \"subnet\": \"192.168.21.1/24\",\n"
    "            \"type\": \"nstack-rsocket\",\n"
    "            \"stack_name\": \"rsocket\",\n"
    "        },\n"
    "    ],\n"
    "    \"prot_route\": [\n"
    "        { \"proto_type\": \"1\", \"stack_name\": \"kernel\", },\n"
    "    ],\n"
    "}\n";

static void test_json_c_accepts_comments_and_trailing_commas(void **state)
{
    json_object *o;

    (void)state;
    o = json_tokener_parse("/* c */ {\"a\": [1, 2,], // line\n \"b\": {\"c\": 1,},}");
    assert_non_null(o);
    assert_int_equal(json_object_array_length(json_object_object_get(o, "a")), 2);
    json_object_put(o);
}

static void test_dmm_files_parse_unchanged(void **state)
{
    struct nstack_config *cfg = parse_ok(dmm_module, dmm_rd);
    int k = nstack_config_find_module(cfg, "kernel");
    int r = nstack_config_find_module(cfg, "rsocket");

    (void)state;
    assert_int_equal(cfg->n_modules, 2);
    assert_int_equal(k, 0);
    assert_int_equal(r, 1);
    assert_string_equal(cfg->modules[k].libname, "");
    assert_int_equal(cfg->modules[k].loadtype, NSTACK_LOAD_STATIC);
    assert_int_equal(cfg->modules[k].stackid, 0);
    assert_int_equal(cfg->modules[k].deploytype, 1);
    assert_string_equal(cfg->modules[r].libname, "libdmm_rsocket.so");
    assert_int_equal(cfg->modules[r].loadtype, NSTACK_LOAD_DYNAMIC);
    assert_int_equal(cfg->modules[r].stackid, 1);
    assert_int_equal(cfg->modules[r].deploytype, 1);
    assert_int_equal(cfg->default_module, k);
    assert_int_equal(cfg->n_proto_routes, 1);
    assert_int_equal(cfg->proto_routes[0].proto_type, 1);
    assert_int_equal(cfg->proto_routes[0].module, k);
    /* stale DMM keys and the host bits of 192.168.21.1/24 are warnings */
    DIAG_HAS(&d, NSTACK_DIAG_WARNING, "module_config.json: ",
             "module_list[0].function_name", "unknown key");
    DIAG_HAS(&d, NSTACK_DIAG_WARNING, "rd_config.json: ", "ip_route[0].type",
             "unknown key");
    DIAG_HAS(&d, NSTACK_DIAG_WARNING, "rd_config.json: ip_route[0].subnet: ",
             "host bits set", "192.168.21.0/24");
    assert_int_equal(d.warnings, 3);
    nstack_config_free(cfg);
}

static void test_no_files_is_kernel_only(void **state)
{
    struct nstack_config *cfg = parse_ok(NULL, NULL);

    (void)state;
    assert_int_equal(cfg->n_modules, 1);
    assert_string_equal(cfg->modules[0].stack_name, "kernel");
    assert_int_equal(cfg->default_module, 0);
    assert_int_equal(cfg->n_proto_routes, 0);
    assert_int_equal(d.warnings, 0);
    nstack_config_free(cfg);
}

static void test_kernel_added_when_not_listed(void **state)
{
    struct nstack_config *cfg = parse_ok(
        "{\"default_stack_name\":\"rsocket\",\"module_list\":[{\"stack_name\":"
        "\"rsocket\",\"libname\":\"x.so\"}]}", NULL);

    (void)state;
    assert_int_equal(cfg->n_modules, 2);
    assert_int_equal(nstack_config_find_module(cfg, "kernel"), 1);
    assert_int_equal(cfg->default_module, 0);
    assert_int_equal(cfg->modules[0].stackid, -1);
    assert_int_equal(cfg->modules[0].deploytype, 0);
    nstack_config_free(cfg);
}

static void test_default_stack_name_defaults_to_kernel(void **state)
{
    struct nstack_config *cfg = parse_ok(
        "{\"module_list\":[{\"stack_name\":\"rsocket\",\"libname\":\"x.so\"}]}", "{}");

    (void)state;
    assert_int_equal(cfg->default_module, nstack_config_find_module(cfg, "kernel"));
    nstack_config_free(cfg);
}

static void test_unknown_keys_warn_only(void **state)
{
    struct nstack_config *cfg = parse_ok(
        "{\"colour\":1,\"module_list\":[{\"stack_name\":\"kernel\",\"x\":1}]}",
        "{\"ip_route\":[],\"prot_route\":[],\"extra\":[]}");

    (void)state;
    DIAG_HAS(&d, NSTACK_DIAG_WARNING, "module_config.json: colour: unknown key");
    DIAG_HAS(&d, NSTACK_DIAG_WARNING, "module_config.json: module_list[0].x: unknown key");
    DIAG_HAS(&d, NSTACK_DIAG_WARNING, "rd_config.json: extra: unknown key");
    assert_int_equal(d.warnings, 3);
    nstack_config_free(cfg);
}

/* ---- malformed JSON ------------------------------------------------------ */

static void test_malformed_json_has_line_and_column(void **state)
{
    (void)state;
    parse_bad("{\n  \"default_stack_name\": \"kernel\",\n  \"module_list\": [ ,, ]\n}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: line 3, column ",
             "malformed JSON");
    parse_bad(NULL, "{ \"ip_route\": [ {\"subnet\": } ] }");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json: line 1, column ", "malformed JSON");
}

static void test_truncated_and_trailing_text(void **state)
{
    (void)state;
    parse_bad("{\"module_list\": [", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: line 1", "unexpected end of file");
    parse_bad("{} {}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: line 1, column 4",
             "unexpected text after");
    /* a trailing comment is fine */
    nstack_config_free(parse_ok("{} /* end */ // done\n", NULL));
}

static void test_empty_and_non_object(void **state)
{
    (void)state;
    parse_bad("", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: file is empty");
    parse_bad(NULL, "  /* only a comment */ \n");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json: file is empty");
    parse_bad("[1, 2]", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: line 1, column 1",
             "top level must be an object");
    parse_bad(NULL, "\n 42");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json: line 2, column 2", "top level");
}

static void test_binary_garbage(void **state)
{
    (void)state;
    parse_bad("\x7f" "ELF\x02\x01\x01", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: line 1, column 1");
    parse_bad("{\xff\xfe\x01}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: line 1", "malformed JSON");
}

static void test_deep_nesting(void **state)
{
    char text[2 * 400 + 32];
    int i, n = 0;

    (void)state;
    n += sprintf(text + n, "{\"x\":");
    for (i = 0; i < 400; i++)
        text[n++] = '[';
    for (i = 0; i < 400; i++)
        text[n++] = ']';
    sprintf(text + n, "}");
    parse_bad(text, NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: line 1, column", "nesting");
}

/* ---- module_list --------------------------------------------------------- */

static void test_missing_stack_name_or_libname(void **state)
{
    (void)state;
    parse_bad("{\"module_list\":[{\"libname\":\"x.so\"}]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: module_list[0].stack_name: missing");
    parse_bad("{\"module_list\":[{\"stack_name\":\"kernel\"},{\"stack_name\":\"rs\"}]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: module_list[1].libname: missing");
}

static void test_duplicate_stack_name(void **state)
{
    (void)state;
    parse_bad("{\"module_list\":[{\"stack_name\":\"rs\",\"libname\":\"a.so\"},"
              "{\"stack_name\":\"rs\",\"libname\":\"b.so\"}]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: module_list[1].stack_name: ",
             "\"rs\"", "duplicate stack_name");
    assert_int_equal(d.errors, 1);
}

static void test_duplicate_stackid(void **state)
{
    (void)state;
    parse_bad("{\"module_list\":[{\"stack_name\":\"kernel\",\"stackid\":\"0\"},"
              "{\"stack_name\":\"rs\",\"libname\":\"b.so\",\"stackid\":0}]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: module_list[1].stackid: ",
             "duplicate stackid", "kernel");
    assert_int_equal(d.errors, 1);
}

static void test_wrong_types(void **state)
{
    (void)state;
    parse_bad("{\"module_list\":{}}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: module_list: expected an array, got object");
    parse_bad("{\"module_list\":[7]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: module_list[0]: expected an object, got int");
    parse_bad("{\"module_list\":[{\"stack_name\":5}]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: module_list[0].stack_name: expected a string, got int");
    parse_bad("{\"module_list\":[{\"stack_name\":\"kernel\",\"deploytype\":true}]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_list[0].deploytype: expected an integer", "boolean");
    parse_bad("{\"module_list\":[{\"stack_name\":\"kernel\",\"stackid\":1.5}]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_list[0].stackid: expected an integer", "double");
    parse_bad("{\"module_list\":[{\"stack_name\":\"kernel\",\"stackid\":\"one\"}]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_list[0].stackid: \"one\": not a non-negative");
    parse_bad("{\"default_stack_name\":[]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: default_stack_name: expected a string, got array");
    parse_bad(NULL, "{\"ip_route\":\"10.0.0.0/8\"}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json: ip_route: expected an array, got string");
    parse_bad(NULL, "{\"prot_route\":[null]}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json: prot_route[0]: expected an object, got null");
    parse_bad(NULL, "{\"ip_route\":[{\"subnet\":10,\"stack_name\":\"kernel\"}]}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json: ip_route[0].subnet: expected a string, got int");
}

static void test_huge_and_negative_numbers(void **state)
{
    (void)state;
    parse_bad("{\"module_list\":[{\"stack_name\":\"kernel\",\"stackid\":99999999999999999999999}]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_list[0].stackid: ", "out of range");
    parse_bad("{\"module_list\":[{\"stack_name\":\"kernel\",\"stackid\":\"99999999999999999999999\"}]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_list[0].stackid: ", "not a non-negative");
    parse_bad("{\"module_list\":[{\"stack_name\":\"kernel\",\"stackid\":-1}]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_list[0].stackid: -1: out of range");
    parse_bad("{\"module_list\":[{\"stack_name\":\"kernel\",\"deploytype\":\"5\"}]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_list[0].deploytype: 5: out of range 0..4");
    parse_bad("{\"module_list\":[{\"stack_name\":\"kernel\",\"stackid\":1e999}]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_list[0].stackid");
    parse_bad(NULL, "{\"prot_route\":[{\"proto_type\":\"3\",\"stack_name\":\"kernel\"}]}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json: prot_route[0].proto_type: 3: unknown proto_type");
}

static void test_bad_names_and_loadtype(void **state)
{
    char mod[256];

    (void)state;
    parse_bad("{\"module_list\":[{\"stack_name\":\"../evil\",\"libname\":\"x.so\"}]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_list[0].stack_name: \"../evil\": only letters");
    parse_bad("{\"module_list\":[{\"stack_name\":\"\",\"libname\":\"x.so\"}]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_list[0].stack_name: must not be empty");
    parse_bad("{\"module_list\":[{\"stack_name\":\"rs\",\"libname\":\"x.so\",\"loadtype\":\"lazy\"}]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_list[0].loadtype: \"lazy\": expected \"static\" or \"dynamic\"");
    snprintf(mod, sizeof(mod), "{\"module_list\":[{\"stack_name\":\"%0100d\",\"libname\":\"x\"}]}", 7);
    parse_bad(mod, NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_list[0].stack_name: too long");
}

static void test_too_many_modules(void **state)
{
    char mod[4096];
    int i, n;

    (void)state;
    n = sprintf(mod, "{\"module_list\":[");
    for (i = 0; i < NSTACK_MAX_MODULES + 1; i++)
        n += sprintf(mod + n, "%s{\"stack_name\":\"m%d\",\"libname\":\"m.so\"}",
                     i ? "," : "", i);
    sprintf(mod + n, "]}");
    parse_bad(mod, NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: module_list[", "too many modules");
}

static void test_default_names_no_module(void **state)
{
    (void)state;
    parse_bad("{\"default_stack_name\":\"lwip\",\"module_list\":[{\"stack_name\":\"kernel\"}]}", NULL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_config.json: default_stack_name: \"lwip\": no module");
    assert_int_equal(d.errors, 1);
}

/* ---- rd_config ----------------------------------------------------------- */

static void test_route_to_unknown_stack(void **state)
{
    (void)state;
    parse_bad(MOD_RSOCKET, "{\"ip_route\":[{\"subnet\":\"10.0.0.0/8\",\"stack_name\":\"rsockets\"}]}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json: ip_route[0].stack_name: \"rsockets\": "
             "no module of that name");
    parse_bad(MOD_RSOCKET, "{\"prot_route\":[{\"proto_type\":2,\"stack_name\":\"lwip\"}]}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json: prot_route[0].stack_name: \"lwip\"");
}

static void test_route_missing_members(void **state)
{
    (void)state;
    parse_bad(MOD_RSOCKET, "{\"ip_route\":[{\"stack_name\":\"rsocket\"}]}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json: ip_route[0].subnet: missing");
    parse_bad(MOD_RSOCKET, "{\"ip_route\":[{\"subnet\":\"10.0.0.0/8\"}]}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json: ip_route[0].stack_name: missing");
    parse_bad(MOD_RSOCKET, "{\"prot_route\":[{\"stack_name\":\"kernel\"}]}");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json: prot_route[0].proto_type: missing");
}

static void bad_subnet(const char *subnet, const char *reason)
{
    char rd[256];

    snprintf(rd, sizeof(rd), "{\"ip_route\":[{\"subnet\":\"10.9.0.0/16\",\"stack_name\":"
             "\"kernel\"},{\"subnet\":\"%s\",\"stack_name\":\"rsocket\"}]}", subnet);
    parse_bad(MOD_RSOCKET, rd);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json: ip_route[1].subnet: ", subnet, reason);
    assert_int_equal(d.errors, 1);
}

static void test_bad_subnets(void **state)
{
    (void)state;
    bad_subnet("10.0.0.1/33", "prefix length out of range (0..32)");
    bad_subnet("fd00::/129", "prefix length out of range (0..128)");
    bad_subnet("10.0.0.0/", "prefix length out of range");
    bad_subnet("10.0.0.0/-1", "prefix length out of range");
    bad_subnet("10.0.0.0/8x", "prefix length out of range");
    bad_subnet("10.0.0.0/0008", "prefix length out of range");
    bad_subnet("10.0.0.300/8", "not an IPv4 or IPv6 subnet");
    bad_subnet("rdma-net", "not an IPv4 or IPv6 subnet");
    bad_subnet("/8", "not an IPv4 or IPv6 subnet");
}

static void test_host_bits_warn(void **state)
{
    struct nstack_config *cfg = parse_ok(MOD_RSOCKET,
        "{\"ip_route\":[{\"subnet\":\"fd21::181/64\",\"stack_name\":\"rsocket\"}]}");

    (void)state;
    DIAG_HAS(&d, NSTACK_DIAG_WARNING, "rd_config.json: ip_route[0].subnet: \"fd21::181/64\": "
             "host bits set past the prefix, using fd21::/64");
    nstack_config_free(cfg);
}

static void test_duplicate_subnet_and_proto_warn(void **state)
{
    struct nstack_config *cfg = parse_ok(MOD_RSOCKET,
        "{\"ip_route\":[{\"subnet\":\"10.0.0.0/8\",\"stack_name\":\"rsocket\"},"
        "{\"subnet\":\"10.0.0.0/8\",\"stack_name\":\"kernel\"}],"
        "\"prot_route\":[{\"proto_type\":1,\"stack_name\":\"rsocket\"},"
        "{\"proto_type\":\"1\",\"stack_name\":\"kernel\"}]}");

    (void)state;
    DIAG_HAS(&d, NSTACK_DIAG_WARNING, "rd_config.json: ip_route[1]: same subnet as ip_route[0]");
    DIAG_HAS(&d, NSTACK_DIAG_WARNING, "rd_config.json: prot_route[1].proto_type: 1: already routed");
    nstack_config_free(cfg);
}

/* Errors in both files are all reported in one pass. */
static void test_every_problem_reported(void **state)
{
    (void)state;
    parse_bad("{\"module_list\":[{\"stack_name\":\"rs\"},{\"stack_name\":\"kernel\",\"stackid\":\"x\"}]}",
              "{\"ip_route\":[{\"subnet\":\"1.2.3.4/40\",\"stack_name\":\"rs\"},"
              "{\"subnet\":\"1.2.3.0/24\",\"stack_name\":\"nope\"}]}");
    assert_int_equal(d.errors, 4);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_list[0].libname: missing");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "module_list[1].stackid");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "ip_route[0].subnet");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "ip_route[1].stack_name: \"nope\"");
}

/* Random corruption of a valid file: never a crash, a result that agrees
 * with the diagnostics (-1 exactly when an error was reported). */
static void test_mutated_files_never_crash(void **state)
{
    char mod[sizeof(dmm_module)], rd[sizeof(dmm_rd)];
    unsigned int seed = 12345;
    int round;

    (void)state;
    for (round = 0; round < 3000; round++) {
        struct nstack_config *cfg = NULL;
        int flips = 1 + round % 4, i, rc;

        memcpy(mod, dmm_module, sizeof(mod));
        memcpy(rd, dmm_rd, sizeof(rd));
        for (i = 0; i < flips; i++) {
            char *buf = (rand_r(&seed) & 1) ? mod : rd;
            size_t len = buf == mod ? sizeof(mod) - 1 : sizeof(rd) - 1;

            buf[rand_r(&seed) % len] = (char)(1 + rand_r(&seed) % 255);
        }
        memset(&d, 0, sizeof(d));
        rc = nstack_config_parse(mod, "m", rd, "r", diag_collect, &d, &cfg);
        assert_true(rc == 0 || rc == -1);
        assert_int_equal(rc == -1, d.errors > 0);
        assert_int_equal(rc == 0, cfg != NULL);
        nstack_config_free(cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_c_accepts_comments_and_trailing_commas),
        cmocka_unit_test(test_dmm_files_parse_unchanged),
        cmocka_unit_test(test_no_files_is_kernel_only),
        cmocka_unit_test(test_kernel_added_when_not_listed),
        cmocka_unit_test(test_default_stack_name_defaults_to_kernel),
        cmocka_unit_test(test_unknown_keys_warn_only),
        cmocka_unit_test(test_malformed_json_has_line_and_column),
        cmocka_unit_test(test_truncated_and_trailing_text),
        cmocka_unit_test(test_empty_and_non_object),
        cmocka_unit_test(test_binary_garbage),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_missing_stack_name_or_libname),
        cmocka_unit_test(test_duplicate_stack_name),
        cmocka_unit_test(test_duplicate_stackid),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_huge_and_negative_numbers),
        cmocka_unit_test(test_bad_names_and_loadtype),
        cmocka_unit_test(test_too_many_modules),
        cmocka_unit_test(test_default_names_no_module),
        cmocka_unit_test(test_route_to_unknown_stack),
        cmocka_unit_test(test_route_missing_members),
        cmocka_unit_test(test_bad_subnets),
        cmocka_unit_test(test_host_bits_warn),
        cmocka_unit_test(test_duplicate_subnet_and_proto_warn),
        cmocka_unit_test(test_every_problem_reported),
        cmocka_unit_test(test_mutated_files_never_crash),
    };

    return cmocka_run_group_tests_name("config_parse", tests, NULL, NULL);
}
