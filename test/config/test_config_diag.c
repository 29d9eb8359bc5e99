/*
 * test_config_diag.c - what a broken configuration puts in a log: at most
 * CFG_DIAG_SHOWN lines per file plus one "and N more" line, and no raw
 * control bytes or invalid UTF-8 from a file (or its name) in any line.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cfg_internal.h"
#include "diag_capture.h"
#include "nstack_config.h"

static struct diag_capture d;

#define MOD_OK "{\"module_list\":[{\"stack_name\":\"rs\",\"libname\":\"rs.so\"}]}"

/* {"ip_route":[{"subnet":"10.0.0.N/40","stack_name":"rs"}, ... n times]} */
static char *bad_routes(int n)
{
    size_t cap = 64 + (size_t)n * 64, o;
    char *s = malloc(cap);

    assert_non_null(s);
    o = (size_t)snprintf(s, cap, "{\"ip_route\":[");
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o,
                              "{\"subnet\":\"10.0.%d.%d/40\",\"stack_name\":\"rs\"},",
                              i / 250, i % 250);
    snprintf(s + o, cap - o, "]}");
    return s;
}

static int count_lines(const char *file_prefix)
{
    int n = 0;

    for (int i = 0; i < d.n; i++)
        n += strncmp(d.lines[i], file_prefix, strlen(file_prefix)) == 0;
    return n;
}

static void parse(const char *mod, const char *rd, int expect_rc)
{
    struct nstack_config *cfg = NULL;

    memset(&d, 0, sizeof(d));
    assert_int_equal(nstack_config_parse(mod, "module_config.json", rd,
                                         "rd_config.json", diag_collect, &d, &cfg),
                     expect_rc);
    nstack_config_free(cfg);
}

/* 1,000 bad entries: 5 lines, then one summary naming the other 995. */
static void test_thousand_errors_summarised(void **state)
{
    char *rd = bad_routes(1000);

    (void)state;
    parse(MOD_OK, rd, -1);
    assert_int_equal(d.n, CFG_DIAG_SHOWN + 1);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json: ip_route[0].subnet");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "ip_route[4].subnet");
    assert_null(strstr(d.lines[CFG_DIAG_SHOWN - 1], "ip_route[5]"));
    assert_string_equal(d.lines[CFG_DIAG_SHOWN],
                        "rd_config.json: and 995 more problems not shown "
                        "(995 errors, 0 warnings)");
    assert_int_equal(d.sev[CFG_DIAG_SHOWN], NSTACK_DIAG_ERROR);
    free(rd);
}

/* Exactly the limit: no summary line. One more: "and 1 more problem". */
static void test_limit_edges(void **state)
{
    char *rd = bad_routes(CFG_DIAG_SHOWN);

    (void)state;
    parse(MOD_OK, rd, -1);
    assert_int_equal(d.n, CFG_DIAG_SHOWN);
    free(rd);
    rd = bad_routes(CFG_DIAG_SHOWN + 1);
    parse(MOD_OK, rd, -1);
    assert_int_equal(d.n, CFG_DIAG_SHOWN + 1);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "and 1 more problem not shown (1 error, 0 warnings)");
    free(rd);
}

/* Each file has its own budget; hidden warnings alone give a warning line
 * and leave the configuration valid. */
static void test_per_file_budget_and_warnings(void **state)
{
    char mod[4096], *rd = bad_routes(50);
    size_t o;

    (void)state;
    o = (size_t)snprintf(mod, sizeof(mod), "{");
    for (int i = 0; i < 20; i++)
        o += (size_t)snprintf(mod + o, sizeof(mod) - o, "\"unknown%d\":1,", i);
    snprintf(mod + o, sizeof(mod) - o,
             "\"module_list\":[{\"stack_name\":\"rs\",\"libname\":\"rs.so\"}]}");
    parse(mod, "{}", 0);
    assert_int_equal(count_lines("module_config.json: "), CFG_DIAG_SHOWN + 1);
    DIAG_HAS(&d, NSTACK_DIAG_WARNING,
             "module_config.json: and 15 more problems not shown (0 errors, 15 warnings)");
    assert_int_equal(d.errors, 0);

    parse(mod, rd, -1);
    assert_int_equal(count_lines("module_config.json: "), CFG_DIAG_SHOWN + 1);
    assert_int_equal(count_lines("rd_config.json: "), CFG_DIAG_SHOWN + 1);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "rd_config.json: and 45 more problems not shown (45 errors");
    free(rd);
}

static void assert_clean(const char *line)
{
    for (const unsigned char *p = (const unsigned char *)line; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            fail_msg("raw control byte 0x%02x in: %s", *p, line);
}

/* A stack_name with an escape sequence (JSON \u001b and a raw byte) and a
 * key with invalid UTF-8: escaped in the line, never raw. */
static void test_control_bytes_escaped(void **state)
{
    (void)state;
    parse(MOD_OK, "{\"ip_route\":[{\"subnet\":\"1.2.3.0/24\",\"stack_name\":"
                  "\"x\\u001b[31mred\\u0007\"}]}", -1);
    assert_int_equal(d.n, 1);
    assert_clean(d.lines[0]);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "\\x1b[31mred\\x07");

    parse(MOD_OK, "{\"ip_route\":[{\"subnet\":\"1.2.3.0/24\",\"stack_name\":"
                  "\"bell\x07tab\x09\"}]}", -1);
    assert_true(d.n >= 1);
    for (int i = 0; i < d.n; i++)
        assert_clean(d.lines[i]);

    parse(MOD_OK, "{\"k\xff\xfe\xc3\x28\":1}", 0);
    assert_int_equal(d.n, 1);
    DIAG_HAS(&d, NSTACK_DIAG_WARNING, "k\\xff\\xfe\\xc3(");
}

/* The file name is part of the line and is escaped too. */
static void test_file_name_escaped(void **state)
{
    struct nstack_config *cfg = NULL;

    (void)state;
    memset(&d, 0, sizeof(d));
    assert_int_equal(nstack_config_load("/nonexistent/\x1b]0;title\x07.json", NULL,
                                        diag_collect, &d, &cfg), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(d.n, 1);
    assert_clean(d.lines[0]);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "/nonexistent/\\x1b]0;title\\x07.json: cannot open");
}

static void expect_escape(const char *in, const char *out)
{
    char buf[256];

    cfg_escape(buf, sizeof(buf), in);
    assert_string_equal(buf, out);
}

/* Valid UTF-8 passes; overlong forms, surrogates, code points past
 * U+10FFFF, C1 controls, stray continuation bytes and truncated sequences
 * are escaped byte by byte. */
static void test_escape_utf8(void **state)
{
    (void)state;
    expect_escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    expect_escape("\xc0\xaf", "\\xc0\\xaf");
    expect_escape("\xe0\x80\xaf", "\\xe0\\x80\\xaf");
    expect_escape("\xed\xa0\x80", "\\xed\\xa0\\x80");
    expect_escape("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");
    expect_escape("\xc2\x85", "\\xc2\\x85");
    expect_escape("\x80x", "\\x80x");
    expect_escape("\xe2\x82", "\\xe2\\x82");
    expect_escape("a\x7f" "b\n", "a\\x7fb\\x0a");
}

/* Output that does not fit stops before a character or escape, always
 * NUL-terminated. */
static void test_escape_truncates_whole(void **state)
{
    char buf[6];

    (void)state;
    assert_int_equal(cfg_escape(buf, sizeof(buf), "ab\xe2\x82\xac"), 5);
    assert_string_equal(buf, "ab\xe2\x82\xac");
    assert_int_equal(cfg_escape(buf, sizeof(buf), "abc\xe2\x82\xac"), 3);
    assert_string_equal(buf, "abc");
    assert_int_equal(cfg_escape(buf, sizeof(buf), "ab\x01"), 2);
    assert_string_equal(buf, "ab");
    assert_int_equal(cfg_escape(buf, sizeof(buf), "a\x01"), 5);
    assert_string_equal(buf, "a\\x01");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thousand_errors_summarised),
        cmocka_unit_test(test_limit_edges),
        cmocka_unit_test(test_per_file_budget_and_warnings),
        cmocka_unit_test(test_control_bytes_escaped),
        cmocka_unit_test(test_file_name_escaped),
        cmocka_unit_test(test_escape_utf8),
        cmocka_unit_test(test_escape_truncates_whole),
    };

    return cmocka_run_group_tests_name("config_diag", tests, NULL, NULL);
}
