/* Unit tests of framework/src/event/busy_poll.c: a wait's looks before it
 * sleeps - bounded by the module's budget and the caller's deadline,
 * skipped after BUSY_POLL_MISSES_MAX (8) misses in a row except every
 * BUSY_POLL_RETRY_EVERY-th (64) wait, restored by a hit - and the budget
 * asked of the module (ABI 1.6 busy_poll_ns, none without it); a signal
 * handler that runs during the spin ends the wait (EINTR, as the kernel's
 * poll and epoll_wait). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <nstack/nstack_spin.h>

#include "busy_poll.h"
#include "file.h"
#include "sig_track.h"
#include "timeutil.h"

__thread int t_in_module;       /* fw_start.c's, which this test does not link */

struct looker {
    int calls;
    int hit_at;                 /* the call that finds something (0: none) */
};

static int look(void *ctx)
{
    struct looker *l = ctx;
    l->calls++;
    return l->hit_at != 0 && l->calls >= l->hit_at ? 2 : 0;
}

/* A miss costs this thread at most the budget (1 us here). */
static void miss(void)
{
    struct looker l = { 0, 0 };
    assert_int_equal(busy_poll_run(1000, -1, look, &l), 0);
    assert_true(l.calls >= 1);
}

static void hit(void)
{
    struct looker l = { 0, 1 };
    assert_int_equal(busy_poll_run(1000000, -1, look, &l), 2);
}

static void test_no_budget_no_look(void **state)
{
    (void)state;
    struct looker l = { 0, 1 };
    assert_int_equal(busy_poll_run(0, -1, look, &l), 0);
    assert_int_equal(l.calls, 0);
}

static void test_hit_returns_what_the_look_found(void **state)
{
    (void)state;
    struct looker l = { 0, 5 };
    assert_int_equal(busy_poll_run(1000000000, -1, look, &l), 2);
    assert_int_equal(l.calls, 5);
}

/* Bounded by the deadline when it comes before the budget's end. */
static void test_deadline_bounds_the_spin(void **state)
{
    (void)state;
    struct looker l = { 0, 0 };
    int64_t t0 = now_ns();
    assert_int_equal(busy_poll_run(1000000000, t0 + 2000000, look, &l), 0);
    int64_t took = now_ns() - t0;
    assert_true(took >= 2000000);
    assert_true(took < 500000000);    /* far below the 1 s budget */
    hit();                            /* that miss does not linger */
}

/* After 8 misses in a row the thread sleeps at once, looking again only
 * at every 64th wait; a hit there restores spinning. */
static void test_misses_stop_the_spin_until_a_retry_hits(void **state)
{
    (void)state;
    hit();
    for (int i = 0; i < 8; i++)
        miss();
    struct looker l = { 0, 1 };
    for (int i = 0; i < 63; i++)
        assert_int_equal(busy_poll_run(1000000, -1, look, &l), 0);
    assert_int_equal(l.calls, 0);                         /* skipped */
    assert_int_equal(busy_poll_run(1000000, -1, look, &l), 2);  /* the retry */
    assert_int_equal(l.calls, 1);
    struct looker again = { 0, 1 };
    assert_int_equal(busy_poll_run(1000000, -1, look, &again), 2);
    assert_int_equal(again.calls, 1);                     /* spinning again */
}

/* Fewer than 8 misses in a row never stop it. */
static void test_a_hit_resets_the_misses(void **state)
{
    (void)state;
    hit();
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 7; i++)
            miss();
        hit();
    }
}

/* How long a spin of budget_ns that finds nothing lasts now. */
static int64_t spin_ns(uint64_t budget_ns)
{
    struct looker l = { 0, 0 };
    int64_t t0 = now_ns();
    assert_int_equal(busy_poll_run(budget_ns, -1, look, &l), 0);
    return now_ns() - t0;
}

/* The module's short budget is back: the shortest of three spins (one
 * may be stretched by preemption on a loaded machine). */
static int short_spin(void)
{
    int64_t best = INT64_MAX;
    for (int i = 0; i < 3; i++) {
        int64_t t = spin_ns(2000);
        best = t < best ? t : best;
        busy_poll_woke(0);
    }
    return best < 15000;
}

/* Misses back to 0: a skipped spin returns 0 at once, the retry (every
 * BUSY_POLL_RETRY_EVERY-th) hits. */
static void reset_misses(void)
{
    for (int i = 0; i <= BUSY_POLL_RETRY_EVERY; i++) {
        struct looker l = { 0, 1 };
        if (busy_poll_run(1000000, -1, look, &l) == 2)
            return;
    }
    fail_msg("the spin never came back");
}

static void busy_wait_ns(int64_t ns)
{
    int64_t end = now_ns() + ns;
    while (now_ns() < end)
        ;
}

/* A spin of 2 us that missed, its wait ending with module news 20 us
 * after the spin began: the next spin lasts about 1.5 x 20 us (it would
 * have caught that answer), not the module's 2 us; a wait that ended
 * with nothing of the module's, or after more than
 * NSTACK_SPIN_LEARN_MAX_NS, brings the module's budget back. */
static void test_a_late_answer_lengthens_the_spin(void **state)
{
    (void)state;
    int checked = 0;
    for (int round = 0; round < 50 && checked < 2; round++) {
        reset_misses();                              /* learnt: tiny (a hit at once) */
        int64_t t0 = now_ns();
        spin_ns(2000);                               /* a miss */
        busy_wait_ns(20000);
        int64_t took = now_ns() - t0;
        busy_poll_woke(1);
        int64_t learnt = spin_ns(2000);
        busy_poll_woke(0);                           /* a wait with no module news */
        if (took > 40000)
            continue;               /* preempted (a loaded machine): nothing to learn */
        assert_true(learnt >= 25000);                /* >= 1.5 x 20 us, minus slack */
        assert_true(short_spin());
        checked++;
    }
    assert_int_equal(checked, 2);
    reset_misses();
    spin_ns(2000);
    busy_wait_ns(NSTACK_SPIN_LEARN_MAX_NS + 10000);
    busy_poll_woke(1);                               /* too late to learn from */
    assert_true(short_spin());
    reset_misses();
}

static volatile sig_atomic_t handled;
static void on_usr1(int sig) { (void)sig; handled++; }

static int look_raising(void *ctx)
{
    int *calls = ctx;
    if ((*calls)++ == 2)
        raise(SIGUSR1);
    return 0;
}

/* A handler installed through libc's sigaction (the dispatcher's
 * trampoline counts it), SA_RESTART or not, ends the spin at once. */
static void test_signal_handler_ends_the_spin(void **state)
{
    (void)state;
    for (int restart = 0; restart < 2; restart++) {
        hit();
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_usr1;
        sa.sa_flags = restart ? SA_RESTART : 0;
        assert_int_equal(sig_action(SIGUSR1, &sa, NULL), 0);
        int calls = 0, before = handled;
        int64_t t0 = now_ns();
        assert_int_equal(busy_poll_run(1000000000, -1, look_raising, &calls), BUSY_POLL_INTR);
        assert_int_equal(handled, before + 1);
        assert_int_equal(calls, 3);
        assert_true(now_ns() - t0 < 500000000);   /* not the 1 s budget */
    }
    signal(SIGUSR1, SIG_DFL);
}

static uint64_t budget_of(nstack_sock *s) { return (uint64_t)(uintptr_t)s; }

static void test_budget_from_the_module(void **state)
{
    (void)state;
    struct nstack_module with = { .busy_poll_ns = budget_of }, without;
    memset(&without, 0, sizeof(without));
    struct file f;
    memset(&f, 0, sizeof(f));
    f.sock = (nstack_sock *)(uintptr_t)10000;
    f.mod = &with;
    assert_int_equal(busy_poll_budget(&f), 10000);
    f.mod = &without;
    assert_int_equal(busy_poll_budget(&f), 0);
    f.mod = NULL;
    assert_int_equal(busy_poll_budget(&f), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_budget_no_look),
        cmocka_unit_test(test_hit_returns_what_the_look_found),
        cmocka_unit_test(test_deadline_bounds_the_spin),
        cmocka_unit_test(test_misses_stop_the_spin_until_a_retry_hits),
        cmocka_unit_test(test_a_hit_resets_the_misses),
        cmocka_unit_test(test_budget_from_the_module),
        cmocka_unit_test(test_a_late_answer_lengthens_the_spin),
        cmocka_unit_test(test_signal_handler_ends_the_spin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
