/* test_spawn_fa.c - which numbers a child of posix_spawn gets our fd at
 * (spawn_fa.c): the file actions recorded through the public calls, then
 * close-on-exec; lists not seen made are "not known". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <spawn.h>
#include <string.h>

#include "spawn_fa.h"

static int child_fds(posix_spawn_file_actions_t *fa, int fd, int cloexec, int *out)
{
    struct spawn_fa_snap s;
    assert_int_equal(spawn_fa_snapshot(fa, &s), 0);
    return spawn_fa_child_fds(&s, fd, cloexec, out, 8);
}

static void no_actions(void **st)
{
    (void)st;
    int out[8];
    assert_int_equal(child_fds(NULL, 5, 0, out), 1);
    assert_int_equal(out[0], 5);
    assert_int_equal(child_fds(NULL, 5, 1, out), 0);
}

static void dup2_to_stdin_stdout(void **st)
{
    (void)st;
    posix_spawn_file_actions_t fa;
    int out[8];
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, 5, 0), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, 5, 1), 0);
    assert_int_equal(posix_spawn_file_actions_addclose(&fa, 5), 0);
    /* close-on-exec or not: dup2 makes new numbers without FD_CLOEXEC */
    for (int cx = 0; cx < 2; cx++) {
        assert_int_equal(child_fds(&fa, 5, cx, out), 2);
        assert_true((out[0] == 0 && out[1] == 1) || (out[0] == 1 && out[1] == 0));
    }
    /* another fd of the parent at 0 is replaced there */
    assert_int_equal(child_fds(&fa, 0, 0, out), 0);
    posix_spawn_file_actions_destroy(&fa);
}

static void dup2_onto_itself_clears_cloexec(void **st)
{
    (void)st;
    posix_spawn_file_actions_t fa;
    int out[8];
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, 5, 5), 0);
    assert_int_equal(child_fds(&fa, 5, 1, out), 1);
    assert_int_equal(out[0], 5);
    posix_spawn_file_actions_destroy(&fa);
}

static void replaced_or_closed(void **st)
{
    (void)st;
    posix_spawn_file_actions_t fa;
    int out[8];
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, 5, 0), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, 7, 6), 0);
    assert_int_equal(posix_spawn_file_actions_addclosefrom_np(&fa, 3), 0);
    assert_int_equal(child_fds(&fa, 5, 0, out), 0);   /* 0 reopened, 5 closed */
    assert_int_equal(child_fds(&fa, 6, 0, out), 0);   /* 6 became 7's file */
    assert_int_equal(child_fds(&fa, 2, 0, out), 1);   /* below closefrom */
    assert_int_equal(out[0], 2);
    posix_spawn_file_actions_destroy(&fa);
}

static void unknown_lists(void **st)
{
    (void)st;
    posix_spawn_file_actions_t fa, copy;
    struct spawn_fa_snap s;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(spawn_fa_snapshot(&fa, &s), 0);
    assert_int_equal(s.n, 0);
    memcpy(&copy, &fa, sizeof(fa));                   /* not seen made */
    assert_int_equal(spawn_fa_snapshot(&copy, &s), -1);
    for (int i = 0; i <= SPAWN_FA_MAX; i++)
        assert_int_equal(posix_spawn_file_actions_addclose(&fa, 100 + i), 0);
    assert_int_equal(spawn_fa_snapshot(&fa, &s), -1); /* too many remembered */
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(spawn_fa_snapshot(&fa, &s), -1); /* destroyed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_actions),
        cmocka_unit_test(dup2_to_stdin_stdout),
        cmocka_unit_test(dup2_onto_itself_clears_cloexec),
        cmocka_unit_test(replaced_or_closed),
        cmocka_unit_test(unknown_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
