/* Unit tests of framework/src/stats/stats_settings.c: what fw->publish_setting
 * (module ABI 1.3) keeps and how it reaches the stats segment's
 * settings[] (include/nstack/nstack_stats.h). One process, so the cases
 * run in order over one private list. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stats_settings.h"

/* The header's definitions the settings code does not use. */
__thread struct nstat_slot *t_stat_slot;
struct nstat_shm *g_stat_shm;

static struct nstat_shm *g_seg, *g_seg2;

static const struct nstat_setting *find(const struct nstat_shm *s, const char *key)
{
    unsigned n = __atomic_load_n(&s->n_settings, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++)
        if (strcmp(s->settings[i].key, key) == 0)
            return &s->settings[i];
    return NULL;
}

/* A value equal to its default is not kept. */
static void test_default_not_kept(void **state)
{
    (void)state;
    assert_int_equal(stats_publish_setting("rsocket", "RS_INLINE", "64", "64", "environment RS_INLINE"), 0);
    stats_settings_attach(g_seg, 0);
    assert_int_equal(g_seg->n_settings, 0);
}

/* Published before the segment exists: copied in when it is attached. */
static void test_before_attach(void **state)
{
    (void)state;
    stats_settings_attach(NULL, 0);
    assert_int_equal(stats_publish_setting("rsocket", "RS_SQ_SIZE", "1024", "384", "environment RS_SQ_SIZE"), 0);
    assert_int_equal(g_seg->n_settings, 0);
    stats_settings_attach(g_seg, 0);
    const struct nstat_setting *e = find(g_seg, "RS_SQ_SIZE");
    assert_non_null(e);
    assert_string_equal(e->module, "rsocket");
    assert_string_equal(e->value, "1024");
    assert_string_equal(e->dflt, "384");
    assert_string_equal(e->source, "environment RS_SQ_SIZE");
}

/* Published after: in the segment at once; a key again: the first stays. */
static void test_after_attach_and_duplicate(void **state)
{
    (void)state;
    assert_int_equal(stats_publish_setting("rsocket", "RS_MEM_DEFAULT", "262144", "131072",
                                           "file /etc/rdma/rsocket/mem_default"), 0);
    assert_int_equal(g_seg->n_settings, 2);
    assert_int_equal(stats_publish_setting("rsocket", "RS_SQ_SIZE", "2048", "384", "environment RS_SQ_SIZE"), 0);
    assert_int_equal(g_seg->n_settings, 2);
    assert_string_equal(find(g_seg, "RS_SQ_SIZE")->value, "1024");
    /* the same key of another module is another setting */
    assert_int_equal(stats_publish_setting("other", "RS_SQ_SIZE", "1", "2", "default"), 0);
    assert_int_equal(g_seg->n_settings, 3);
}

/* Bad arguments: -1/EINVAL, nothing kept. */
static void test_bad_arguments(void **state)
{
    (void)state;
    errno = 0;
    assert_int_equal(stats_publish_setting("rsocket", NULL, "1", "2", "x"), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(stats_publish_setting("", "K", "1", "2", "x"), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(stats_publish_setting("rsocket", "K", "1", NULL, "x"), -1);
    assert_int_equal(g_seg->n_settings, 3);
}

/* Long texts are cut to their fields (terminated), never overflow them. */
static void test_truncation(void **state)
{
    (void)state;
    char key[64], source[300];
    memset(key, 'K', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    memset(source, 's', sizeof(source) - 1);
    source[sizeof(source) - 1] = '\0';
    assert_int_equal(stats_publish_setting("rsocket", key, "7", "8", source), 0);
    assert_int_equal(g_seg->n_settings, 4);
    const struct nstat_setting *e = &g_seg->settings[3];
    assert_int_equal(strlen(e->key), NSTAT_KEY - 1);
    assert_int_equal(strlen(e->source), NSTAT_SOURCE - 1);
    assert_string_equal(e->value, "7");
}

/* A new segment (a fork child's) gets every setting; a full table says
 * ENOSPC and counts what it lost. */
static void test_new_segment_and_full(void **state)
{
    (void)state;
    stats_settings_attach(g_seg2, 1);
    assert_int_equal(g_seg2->n_settings, 4);
    assert_string_equal(find(g_seg2, "RS_MEM_DEFAULT")->value, "262144");
    char key[16];
    for (int i = 4; i < NSTAT_SETTINGS; i++) {
        snprintf(key, sizeof(key), "K%d", i);
        assert_int_equal(stats_publish_setting("m", key, "1", "0", "default"), 0);
    }
    assert_int_equal(g_seg2->n_settings, NSTAT_SETTINGS);
    errno = 0;
    assert_int_equal(stats_publish_setting("m", "ONE_MORE", "1", "0", "default"), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(g_seg2->n_settings, NSTAT_SETTINGS);
    assert_int_equal(g_seg2->settings_lost, 1);
}

int main(void)
{
    g_seg = calloc(1, sizeof(*g_seg));
    g_seg2 = calloc(1, sizeof(*g_seg2));
    if (g_seg == NULL || g_seg2 == NULL)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_not_kept),
        cmocka_unit_test(test_before_attach),
        cmocka_unit_test(test_after_attach_and_duplicate),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_new_segment_and_full),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    free(g_seg);
    free(g_seg2);
    return r;
}
