/* test_sig_track.c - the restart decision after a signal (core/sig_track.c):
 * counts through the trampoline, the fallback scan for handlers installed
 * around it, nested handlers, glibc's own installers adopted, and what an
 * application reads back. Here sigaction() is libc's (nothing interposed),
 * so it stands for "a handler installed around the dispatcher". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "sig_track.h"

static volatile sig_atomic_t ran1, ran2;
static void on1(int sig) { (void)sig; ran1++; }
static void on2(int sig) { (void)sig; ran2++; }

/* Through the dispatcher's sigaction. */
static void install(int sig, void (*h)(int), int flags)
{
    struct sigaction sa = { .sa_handler = h, .sa_flags = flags };
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sig_action(sig, &sa, NULL), 0);
}

/* Around it: libc's own sigaction. */
static void install_foreign(int sig, void (*h)(int), int flags)
{
    struct sigaction sa = { .sa_handler = h, .sa_flags = flags };
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(sig, &sa, NULL), 0);
}

static void reset(void)
{
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
    ran1 = ran2 = 0;
}

/* One signal raised since a mark: restart as its handler says. */
static int decide_after(int sig, int timed)
{
    uint64_t m = sig_mark();
    assert_int_equal(raise(sig), 0);
    return sig_restarts(m, timed);
}

static void exact_per_signal(void **st)
{
    (void)st;
    install(SIGUSR1, on1, SA_RESTART);
    install(SIGUSR2, on2, 0);
    assert_int_equal(decide_after(SIGUSR1, 0), 1);
    assert_int_equal(decide_after(SIGUSR2, 0), 0);
    assert_int_equal(decide_after(SIGUSR1, 1), 0);     /* socket timeout */
    /* both in one wait: the one without SA_RESTART wins */
    uint64_t m = sig_mark();
    raise(SIGUSR1);
    raise(SIGUSR2);
    assert_int_equal(sig_restarts(m, 0), 0);
    /* an earlier EINTR does not leak into the next wait */
    assert_int_equal(decide_after(SIGUSR1, 0), 1);
    assert_int_equal(ran1, 4);
    assert_int_equal(ran2, 2);
    reset();
}

static void foreign_handlers_scan(void **st)
{
    (void)st;
    install_foreign(SIGUSR1, on1, SA_RESTART);
    install_foreign(SIGUSR2, on2, 0);
    /* no count: the scan sees SIGUSR2 without SA_RESTART */
    assert_int_equal(decide_after(SIGUSR1, 0), 0);
    signal(SIGUSR2, SIG_DFL);
    assert_int_equal(decide_after(SIGUSR1, 0), 1);
    assert_int_equal(ran1, 2);
    reset();
}

/* A handler that raises another signal: both are counted for the wait. */
static void on1_raises2(int sig)
{
    (void)sig;
    ran1++;
    raise(SIGUSR2);
}

static void nested(void **st)
{
    (void)st;
    install(SIGUSR1, on1_raises2, SA_RESTART);
    install(SIGUSR2, on2, 0);
    assert_int_equal(decide_after(SIGUSR1, 0), 0);
    assert_int_equal(ran1, 1);
    assert_int_equal(ran2, 1);
    reset();
}

static void read_back(void **st)
{
    (void)st;
    struct sigaction o, k;
    install(SIGUSR1, on1, SA_RESTART | SA_NODEFER);
    assert_int_equal(sig_action(SIGUSR1, NULL, &o), 0);
    assert_ptr_equal(o.sa_handler, on1);
    assert_int_equal(o.sa_flags & (SA_RESTART | SA_NODEFER | SA_SIGINFO), SA_RESTART | SA_NODEFER);
    /* the kernel holds the trampoline */
    assert_int_equal(sigaction(SIGUSR1, NULL, &k), 0);
    assert_ptr_not_equal(k.sa_handler, on1);
    /* replaced: the old action is the application's */
    struct sigaction sa = { .sa_handler = on2 };
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sig_action(SIGUSR1, &sa, &o), 0);
    assert_ptr_equal(o.sa_handler, on1);
    /* SIG_IGN goes to the kernel as it is; the old one read back */
    sa.sa_handler = SIG_IGN;
    assert_int_equal(sig_action(SIGUSR1, &sa, &o), 0);
    assert_ptr_equal(o.sa_handler, on2);
    assert_int_equal(sigaction(SIGUSR1, NULL, &k), 0);
    assert_ptr_equal(k.sa_handler, SIG_IGN);
    /* a one-shot handler after it ran: SIG_DFL, no trampoline SA_SIGINFO */
    install(SIGUSR1, on1, SA_RESETHAND);
    raise(SIGUSR1);
    assert_int_equal(sig_action(SIGUSR1, NULL, &o), 0);
    assert_ptr_equal(o.sa_handler, SIG_DFL);
    assert_int_equal(o.sa_flags & SA_SIGINFO, 0);
    /* refused: nothing changes */
    sa.sa_handler = on2;
    assert_int_equal(sig_action(SIGKILL, &sa, NULL), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(sig_action(32, &sa, NULL), -1);
    reset();
}

/* The kernel's action read around the dispatcher (the trampoline) and
 * given back through it: the handler it stands for still runs, once. */
static void trampoline_given_back(void **st)
{
    (void)st;
    struct sigaction k, o;
    install(SIGUSR1, on1, SA_RESTART);
    assert_int_equal(sigaction(SIGUSR1, NULL, &k), 0);
    assert_int_equal(sig_action(SIGUSR1, &k, &o), 0);
    assert_ptr_equal(o.sa_handler, on1);
    assert_int_equal(decide_after(SIGUSR1, 0), 1);
    assert_int_equal(ran1, 1);
    assert_int_equal(sig_action(SIGUSR1, NULL, &o), 0);
    assert_ptr_equal(o.sa_handler, on1);
    reset();
}

static void glibc_installers_adopted(void **st)
{
    (void)st;
    install(SIGUSR2, on2, SA_RESTART);
    uint64_t w = sig_slot_word(SIGUSR1);
    __sighandler_t old = signal(SIGUSR1, on1);          /* glibc's, SA_RESTART */
    assert_ptr_equal(sig_app_handler(old, w), SIG_DFL);
    sig_adopt(SIGUSR1);
    assert_int_equal(decide_after(SIGUSR1, 0), 1);
    assert_int_equal(ran1, 1);                           /* counted: the trampoline ran */
    struct sigaction k;
    assert_int_equal(sigaction(SIGUSR1, NULL, &k), 0);
    assert_ptr_not_equal(k.sa_handler, on1);
    /* glibc's siginterrupt rewrites the kernel's flags under the trampoline */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    assert_int_equal(siginterrupt(SIGUSR1, 1), 0);
    sig_adopt(SIGUSR1);
    assert_int_equal(decide_after(SIGUSR1, 0), 0);
    assert_int_equal(siginterrupt(SIGUSR1, 0), 0);
#pragma GCC diagnostic pop
    sig_adopt(SIGUSR1);
    assert_int_equal(decide_after(SIGUSR1, 0), 1);
    /* what glibc's signal() returned is the application's handler */
    w = sig_slot_word(SIGUSR1);
    old = signal(SIGUSR1, SIG_DFL);
    assert_ptr_equal(sig_app_handler(old, w), on1);
    reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exact_per_signal),
        cmocka_unit_test(foreign_handlers_scan),
        cmocka_unit_test(nested),
        cmocka_unit_test(read_back),
        cmocka_unit_test(trampoline_given_back),
        cmocka_unit_test(glibc_installers_adopted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
