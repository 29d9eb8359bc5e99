/* Unit tests of the two-level fd table, the epoll record arena and the log
 * level parser (pure parts of libnStackAPI.so). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ep_arena.h"
#include "fd_table.h"
#include "fw_log.h"

/* The table stores opaque pointers; these stand in for struct file. */
static char obj_a, obj_b, obj_c;
#define A ((struct file *)&obj_a)
#define B ((struct file *)&obj_b)
#define C ((struct file *)&obj_c)

static void untracked_fd_is_null(void **state)
{
    (void)state;
    assert_null(fd_table_get(5));
    assert_null(fd_table_get(-1));
    assert_null(fd_table_get((int)FD_TABLE_MAX));
    assert_null(fd_table_take(77777));
}

static void set_get_take(void **state)
{
    (void)state;
    assert_int_equal(fd_table_set(3, A), 0);
    assert_ptr_equal(fd_table_get(3), A);
    assert_null(fd_table_get(4));
    assert_ptr_equal(fd_table_take(3), A);
    assert_null(fd_table_get(3));
    assert_null(fd_table_take(3));
}

static void no_1024_cap(void **state)
{
    (void)state;
    int fds[] = { 1023, 1024, 1025, 65535, 1 << 20, (int)FD_TABLE_MAX - 1 };
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        assert_int_equal(fd_table_set(fds[i], B), 0);
        assert_ptr_equal(fd_table_get(fds[i]), B);
    }
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        assert_ptr_equal(fd_table_take(fds[i]), B);
}

static void out_of_range_is_ebadf(void **state)
{
    (void)state;
    errno = 0;
    assert_int_equal(fd_table_set(-3, A), -1);
    assert_int_equal(errno, EBADF);
    errno = 0;
    assert_int_equal(fd_table_set((int)FD_TABLE_MAX, A), -1);
    assert_int_equal(errno, EBADF);
}

static void cas_only_when_expected(void **state)
{
    (void)state;
    assert_true(fd_table_cas(10, NULL, A));
    assert_false(fd_table_cas(10, NULL, B));
    assert_ptr_equal(fd_table_get(10), A);
    assert_true(fd_table_cas(10, A, C));
    assert_ptr_equal(fd_table_take(10), C);
}

struct seen { int n; int fds[8]; };

static void record(int fd, struct file *f, void *arg)
{
    struct seen *s = arg;
    assert_non_null(f);
    if (s->n < 8)
        s->fds[s->n] = fd;
    s->n++;
}

static void each_visits_range_in_order(void **state)
{
    (void)state;
    fd_table_set(20, A);
    fd_table_set(2000, B);
    fd_table_set(300000, C);
    struct seen s = { 0 };
    fd_table_each(0, -1, record, &s);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.fds[0], 20);
    assert_int_equal(s.fds[1], 2000);
    assert_int_equal(s.fds[2], 300000);
    struct seen part = { 0 };
    fd_table_each(21, 300000, record, &part);
    assert_int_equal(part.n, 2);
    assert_int_equal(part.fds[0], 2000);
    fd_table_take(20);
    fd_table_take(2000);
    fd_table_take(300000);
}

static void arena_records_are_recognised(void **state)
{
    (void)state;
    uint64_t *r = ep_arena_alloc(128);
    assert_non_null(r);
    assert_true(ep_arena_contains((uint64_t)(uintptr_t)r));
    assert_false(ep_arena_contains((uint64_t)(uintptr_t)r + 8));    /* not a record start */
    assert_false(ep_arena_contains((uint64_t)(uintptr_t)&obj_a));   /* app data */
    assert_false(ep_arena_contains(0x5e3a000000000001ull));
    *r = EP_REG_MAGIC;
    ep_arena_free(r);
    assert_int_equal(*r, EP_DEAD_MAGIC);    /* a stale pointer reads as dead */
    uint64_t *again = ep_arena_alloc(128);
    assert_ptr_equal(again, r);              /* slots are reused, never unmapped */
    assert_int_equal(*again, 0);
    errno = 0;
    assert_null(ep_arena_alloc(100000));
    assert_int_equal(errno, ENOMEM);
    ep_arena_free(again);
}

static void log_levels_parse(void **state)
{
    (void)state;
    assert_int_equal(fw_log_parse_level("DBG"), NSTACK_LOG_DBG);
    assert_int_equal(fw_log_parse_level("inf"), NSTACK_LOG_INF);
    assert_int_equal(fw_log_parse_level("WAR"), NSTACK_LOG_WAR);
    assert_int_equal(fw_log_parse_level("ERR"), NSTACK_LOG_ERR);
    assert_int_equal(fw_log_parse_level("EMG"), NSTACK_LOG_EMG);
    assert_int_equal(fw_log_parse_level("PERF"), -1);
    assert_int_equal(fw_log_parse_level(""), -1);
    assert_int_equal(fw_log_parse_level(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(untracked_fd_is_null),
        cmocka_unit_test(set_get_take),
        cmocka_unit_test(no_1024_cap),
        cmocka_unit_test(out_of_range_is_ebadf),
        cmocka_unit_test(cas_only_when_expected),
        cmocka_unit_test(each_visits_range_in_order),
        cmocka_unit_test(arena_records_are_recognised),
        cmocka_unit_test(log_levels_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
