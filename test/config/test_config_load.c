/*
 * test_config_load.c - which files nstack_config_load() reads: arguments,
 * then NSTACK_MOD_CFG_FILE / NSTACK_MOD_CFG_RD, then ./module_config.json
 * and ./rd_config.json; file-level problems (missing, too large, not a
 * regular file, binary).
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "diag_capture.h"
#include "nstack_config.h"

static char dir[PATH_MAX];
static char old_cwd[PATH_MAX];
static struct diag_capture d;

static const char mod_rsocket[] =
    "{\"default_stack_name\":\"rsocket\",\"module_list\":[{\"stack_name\":\"kernel\"},"
    "{\"stack_name\":\"rsocket\",\"libname\":\"libdmm_rsocket.so\"}]}";
static const char mod_alt[] =
    "{\"default_stack_name\":\"alt\",\"module_list\":[{\"stack_name\":\"alt\","
    "\"libname\":\"alt.so\"}]}";

static void write_file(const char *name, const void *data, size_t len)
{
    FILE *f = fopen(name, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_text(const char *name, const char *text)
{
    write_file(name, text, strlen(text));
}

/* Each test runs in its own empty directory with no env variables. */
static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/nstack-cfgtest.XXXXXX");
    if (!mkdtemp(dir) || !getcwd(old_cwd, sizeof(old_cwd)) || chdir(dir) < 0)
        return -1;
    unsetenv("NSTACK_MOD_CFG_FILE");
    unsetenv("NSTACK_MOD_CFG_RD");
    memset(&d, 0, sizeof(d));
    return 0;
}

static int teardown(void **state)
{
    char cmd[PATH_MAX + 16];

    (void)state;
    if (chdir(old_cwd) < 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *default_name(const struct nstack_config *cfg)
{
    return cfg->modules[cfg->default_module].stack_name;
}

static void test_nothing_found_is_kernel_only(void **state)
{
    struct nstack_config *cfg = NULL;

    (void)state;
    assert_int_equal(nstack_config_load(NULL, NULL, diag_collect, &d, &cfg), 0);
    assert_int_equal(d.errors + d.warnings, 0);
    assert_int_equal(cfg->n_modules, 1);
    assert_string_equal(default_name(cfg), "kernel");
    assert_string_equal(cfg->module_file, "");
    assert_string_equal(cfg->rd_file, "");
    nstack_config_free(cfg);
}

static void test_files_in_current_directory(void **state)
{
    struct nstack_config *cfg = NULL;
    char expect[PATH_MAX + 32];

    (void)state;
    write_text("module_config.json", mod_rsocket);
    assert_int_equal(nstack_config_load(NULL, NULL, diag_collect, &d, &cfg), 0);
    assert_string_equal(default_name(cfg), "rsocket");
    snprintf(expect, sizeof(expect), "%s/module_config.json", dir);
    assert_string_equal(cfg->module_file, expect);
    assert_string_equal(cfg->rd_file, "");
    nstack_config_free(cfg);

    write_text("rd_config.json", "{\"ip_route\":[],\"prot_route\":[]}");
    assert_int_equal(nstack_config_load(NULL, NULL, diag_collect, &d, &cfg), 0);
    snprintf(expect, sizeof(expect), "%s/rd_config.json", dir);
    assert_string_equal(cfg->rd_file, expect);
    nstack_config_free(cfg);
}

static void test_environment_beats_current_directory(void **state)
{
    struct nstack_config *cfg = NULL;

    (void)state;
    write_text("module_config.json", mod_rsocket);
    mkdir("etc", 0755);
    write_text("etc/mod.json", mod_alt);
    write_text("etc/rd.json", "{\"prot_route\":[{\"proto_type\":1,\"stack_name\":\"kernel\"}]}");
    setenv("NSTACK_MOD_CFG_FILE", "etc/mod.json", 1);
    setenv("NSTACK_MOD_CFG_RD", "etc/rd.json", 1);
    assert_int_equal(nstack_config_load(NULL, NULL, diag_collect, &d, &cfg), 0);
    assert_string_equal(default_name(cfg), "alt");
    assert_int_equal(cfg->n_proto_routes, 1);
    nstack_config_free(cfg);
    /* explicit arguments beat the environment */
    assert_int_equal(nstack_config_load("module_config.json", NULL, diag_collect, &d, &cfg), 0);
    assert_string_equal(default_name(cfg), "rsocket");
    nstack_config_free(cfg);
}

static void test_named_file_missing_is_an_error(void **state)
{
    struct nstack_config *cfg = (void *)1;

    (void)state;
    setenv("NSTACK_MOD_CFG_FILE", "/nonexistent/module_config.json", 1);
    assert_int_equal(nstack_config_load(NULL, NULL, diag_collect, &d, &cfg), -1);
    assert_int_equal(errno, ENOENT);
    assert_null(cfg);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "/nonexistent/module_config.json: cannot open: "
             "No such file or directory");
    unsetenv("NSTACK_MOD_CFG_FILE");
    memset(&d, 0, sizeof(d));
    assert_int_equal(nstack_config_load(NULL, "missing-rd.json", diag_collect, &d, &cfg), -1);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "missing-rd.json: cannot open");
}

static void test_file_too_large(void **state)
{
    size_t len = NSTACK_CFG_FILE_MAX + 1;
    char *big = malloc(len);
    struct nstack_config *cfg = NULL;

    (void)state;
    assert_non_null(big);
    memset(big, ' ', len);
    big[0] = '{';
    big[len - 1] = '}';
    write_file("module_config.json", big, len);
    assert_int_equal(nstack_config_load(NULL, NULL, diag_collect, &d, &cfg), -1);
    assert_int_equal(errno, EFBIG);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "./module_config.json: file too large");
    /* exactly the limit is read and parsed (here it ends in an open '{') */
    big[0] = ' ';
    big[len - 2] = '{';
    write_file("module_config.json", big, len - 1);
    free(big);
    write_text("rd_config.json", "{}");
    memset(&d, 0, sizeof(d));
    assert_int_equal(nstack_config_load(NULL, NULL, diag_collect, &d, &cfg), -1);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "./module_config.json: line 1", "unexpected end");
}

static void test_not_a_regular_file(void **state)
{
    struct nstack_config *cfg = NULL;

    (void)state;
    mkdir("rd_config.json", 0755);
    assert_int_equal(nstack_config_load(NULL, NULL, diag_collect, &d, &cfg), -1);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "./rd_config.json: not a regular file");
    memset(&d, 0, sizeof(d));
    assert_int_equal(mkfifo("fifo.json", 0600), 0);
    assert_int_equal(nstack_config_load("fifo.json", "/dev/null", diag_collect, &d, &cfg), -1);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "fifo.json: not a regular file");
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "/dev/null: not a regular file");
}

static void test_binary_file(void **state)
{
    static const unsigned char bin[] = { '{', 0, 1, 2, 0xff, '}' };
    struct nstack_config *cfg = NULL;

    (void)state;
    write_file("module_config.json", bin, sizeof(bin));
    assert_int_equal(nstack_config_load(NULL, NULL, diag_collect, &d, &cfg), -1);
    assert_int_equal(errno, EINVAL);
    DIAG_HAS(&d, NSTACK_DIAG_ERROR, "./module_config.json: ", "NUL byte at offset 1");
}

static void test_random_binary_files(void **state)
{
    unsigned char buf[512];
    unsigned int seed = 99;
    int round;
    size_t i;

    (void)state;
    for (round = 0; round < 300; round++) {
        struct nstack_config *cfg = NULL;
        int rc;

        for (i = 0; i < sizeof(buf); i++)
            buf[i] = (unsigned char)rand_r(&seed);
        buf[0] = round % 2 ? '{' : buf[0];
        write_file("rd_config.json", buf, 1 + (size_t)round % sizeof(buf));
        memset(&d, 0, sizeof(d));
        rc = nstack_config_load(NULL, NULL, diag_collect, &d, &cfg);
        assert_int_equal(rc, -1);
        assert_null(cfg);
        assert_true(d.errors >= 1);
        assert_non_null(strstr(d.lines[0], "./rd_config.json: "));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nothing_found_is_kernel_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_in_current_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment_beats_current_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_named_file_missing_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_regular_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_binary_files, setup, teardown),
    };

    return cmocka_run_group_tests_name("config_load", tests, NULL, NULL);
}
