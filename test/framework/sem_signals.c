/* sem_signals.c - signal handlers under the dispatcher, as without it.
 *
 * The dispatcher puts a trampoline in front of every handler installed
 * through libc (framework/src/core/sig_track.c), so that a wait it or a
 * module implements knows which signal interrupted it. These cases assert
 * the kernel's and glibc's behaviour (run without the preload: reference):
 *
 * - what the application installed is what it reads back (old actions of
 *   sigaction, signal, sysv_signal, sigset; siginterrupt's flag), and a
 *   failing call changes nothing;
 * - handlers run as installed: SA_SIGINFO arguments, sa_mask,
 *   SA_RESETHAND, SA_NODEFER, a handler reinstalling itself;
 * - mixed handlers (signal(7)): SIGUSR1 with SA_RESTART and SIGUSR2
 *   without; a blocked recv/accept (address and wildcard listener)
 *   interrupted by SIGUSR1 goes on and gets its data/connection, by
 *   SIGUSR2 fails with EINTR, and a SIGUSR1 after that EINTR restarts
 *   again; siginterrupt() turns the restart off and on.
 * On a module route these calls sleep in user space (the rsocket engine's
 * poll, the wildcard listener's), which is what the mixed cases check. */
#include "semcheck.h"
#include "sem_blocked.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- what the application reads back ----------------------------------- */

static void h_a(int sig) { (void)sig; }
static void h_b(int sig) { (void)sig; }
static void h_info(int sig, siginfo_t *si, void *uc) { (void)sig; (void)si; (void)uc; }

static struct sigaction query(int sig)
{
    struct sigaction o;
    memset(&o, 0, sizeof(o));
    CHECK_OK(sigaction(sig, NULL, &o));
    return o;
}

static void case_old_action(void)
{
    struct sigaction sa = { .sa_sigaction = h_info, .sa_flags = SA_SIGINFO | SA_RESTART }, o;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    o = query(SIGUSR1);
    CHECK(o.sa_sigaction == h_info, "sigaction reads back another handler");
    CHECK((o.sa_flags & (SA_SIGINFO | SA_RESTART)) == (SA_SIGINFO | SA_RESTART),
          "flags read back %#x", (unsigned)o.sa_flags);
    CHECK(sigismember(&o.sa_mask, SIGUSR2) == 1 && sigismember(&o.sa_mask, SIGINT) == 0,
          "sa_mask not read back");
    /* a plain handler replaces it: the old action is the SA_SIGINFO one */
    struct sigaction pl = { .sa_handler = h_a, .sa_flags = 0 };
    sigemptyset(&pl.sa_mask);
    CHECK_OK(sigaction(SIGUSR1, &pl, &o));
    CHECK(o.sa_sigaction == h_info && (o.sa_flags & SA_SIGINFO), "old action differs");
    o = query(SIGUSR1);
    CHECK(o.sa_handler == h_a && !(o.sa_flags & (SA_SIGINFO | SA_RESTART)),
          "plain handler read back as %p/%#x", (void *)o.sa_handler, (unsigned)o.sa_flags);
    struct sigaction next = { .sa_handler = h_b, .sa_flags = SA_RESTART };
    sigemptyset(&next.sa_mask);
    CHECK_OK(sigaction(SIGUSR1, &next, &o));
    CHECK(o.sa_handler == h_a, "sigaction returned another old action");
    CHECK(query(SIGUSR1).sa_handler == h_b, "sigaction installed another handler");
    /* glibc's installers: old handler returned, flags as glibc sets them */
    CHECK(signal(SIGUSR1, h_a) == h_b, "signal() returned another old handler");
    o = query(SIGUSR1);
    CHECK(o.sa_handler == h_a && (o.sa_flags & SA_RESTART) && !(o.sa_flags & SA_SIGINFO),
          "signal() installed %p/%#x", (void *)o.sa_handler, (unsigned)o.sa_flags);
    CHECK(sysv_signal(SIGUSR1, h_b) == h_a, "sysv_signal() returned another old handler");
    o = query(SIGUSR1);
    CHECK(o.sa_handler == h_b && (o.sa_flags & SA_RESETHAND) && (o.sa_flags & SA_NODEFER),
          "sysv_signal() installed %p/%#x", (void *)o.sa_handler, (unsigned)o.sa_flags);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    CHECK(sigset(SIGUSR1, h_a) == h_b, "sigset() returned another old handler");
    CHECK(query(SIGUSR1).sa_handler == h_a, "sigset() installed another handler");
    CHECK_OK(siginterrupt(SIGUSR1, 1));
    CHECK(!(query(SIGUSR1).sa_flags & SA_RESTART), "siginterrupt(1) kept SA_RESTART");
    CHECK_OK(siginterrupt(SIGUSR1, 0));
    CHECK(query(SIGUSR1).sa_flags & SA_RESTART, "siginterrupt(0) did not set SA_RESTART");
#pragma GCC diagnostic pop
    CHECK(signal(SIGUSR1, SIG_IGN) == h_a, "signal(SIG_IGN) returned another old handler");
    CHECK(signal(SIGUSR1, SIG_DFL) == SIG_IGN, "signal(SIG_DFL) returned another old handler");
    CHECK(query(SIGUSR1).sa_handler == SIG_DFL, "SIG_DFL not read back");
}

static volatile sig_atomic_t ran_a, ran_b;
static void count_a(int sig) { (void)sig; ran_a++; }
static void count_b(int sig) { (void)sig; ran_b++; }

/* Failing calls change nothing: the handler in place still runs. */
static void case_invalid(void)
{
    CHECK(signal(SIGUSR1, count_a) != SIG_ERR, "signal(SIGUSR1)");
    struct sigaction sa = { .sa_handler = count_b };
    sigemptyset(&sa.sa_mask);
    CHECK_ERR(sigaction(SIGKILL, &sa, NULL), EINVAL);
    CHECK_ERR(sigaction(SIGSTOP, &sa, NULL), EINVAL);
    CHECK_ERR(sigaction(0, &sa, NULL), EINVAL);
    CHECK_ERR(sigaction(NSIG, &sa, NULL), EINVAL);
    CHECK_ERR(sigaction(32, &sa, NULL), EINVAL);     /* glibc's own */
    errno = 0;
    CHECK(signal(SIGKILL, count_b) == SIG_ERR && errno == EINVAL, "signal(SIGKILL) did not fail EINVAL");
    ran_a = ran_b = 0;
    CHECK_OK(raise(SIGUSR1));
    CHECK(ran_a == 1 && ran_b == 0, "after failed calls: a ran %d, b ran %d", (int)ran_a, (int)ran_b);
    signal(SIGUSR1, SIG_DFL);
}

/* Save, replace, restore: the restored handler runs. */
static void case_save_restore(void)
{
    struct sigaction sa = { .sa_handler = count_a, .sa_flags = SA_RESTART }, old, other;
    sigemptyset(&sa.sa_mask);
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    other = sa;
    other.sa_handler = count_b;
    CHECK_OK(sigaction(SIGUSR1, &other, &old));
    CHECK_OK(sigaction(SIGUSR1, &old, NULL));
    ran_a = ran_b = 0;
    CHECK_OK(raise(SIGUSR1));
    CHECK(ran_a == 1 && ran_b == 0, "restored action: a ran %d, b ran %d", (int)ran_a, (int)ran_b);
    __sighandler_t prev = signal(SIGUSR1, count_b);
    CHECK(prev == count_a, "signal() returned another old handler");
    CHECK(signal(SIGUSR1, prev) == count_b, "signal() restore returned another old handler");
    CHECK_OK(raise(SIGUSR1));
    CHECK(ran_a == 2 && ran_b == 0, "restored with signal(): a ran %d, b ran %d", (int)ran_a, (int)ran_b);
    signal(SIGUSR1, SIG_DFL);
}

/* ---- handlers run as installed ----------------------------------------- */

static volatile sig_atomic_t info_sig, info_code, info_val, info_uc, info_usr2_blocked;

static void on_info(int sig, siginfo_t *si, void *uc)
{
    sigset_t cur;
    info_sig = si->si_signo == sig ? sig : -1;
    info_code = si->si_code;
    info_val = si->si_value.sival_int;
    info_uc = uc != NULL;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    info_usr2_blocked = sigismember(&cur, SIGUSR2) == 1 && sigismember(&cur, SIGUSR1) == 1;
}

static void case_siginfo(void)
{
    struct sigaction sa = { .sa_sigaction = on_info, .sa_flags = SA_SIGINFO };
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    CHECK_OK(sigqueue(getpid(), SIGUSR1, (union sigval){ .sival_int = 4242 }));
    int64_t end = sem_now_ms() + 10000;
    while (info_sig == 0)
        CHECK(sem_now_ms() < end, "SA_SIGINFO handler never ran");
    CHECK(info_sig == SIGUSR1 && info_code == SI_QUEUE && info_val == 4242 && info_uc,
          "siginfo: signo %d code %d value %d uc %d", (int)info_sig, (int)info_code,
          (int)info_val, (int)info_uc);
    CHECK(info_usr2_blocked, "sa_mask (SIGUSR2) and the signal itself not blocked in the handler");
    signal(SIGUSR1, SIG_DFL);
}

static volatile sig_atomic_t depth, max_depth, runs;

static void on_nest(int sig)
{
    depth++;
    if (depth > max_depth)
        max_depth = depth;
    if (++runs == 1)
        raise(sig);          /* nests with SA_NODEFER, else waits for the return */
    depth--;
}

static void nest_case(int flags, int want_depth)
{
    struct sigaction sa = { .sa_handler = on_nest, .sa_flags = flags };
    sigemptyset(&sa.sa_mask);
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    depth = max_depth = runs = 0;
    CHECK_OK(raise(SIGUSR1));
    CHECK(runs == 2 && max_depth == want_depth, "flags %#x: %d runs, depth %d (want 2, %d)",
          (unsigned)flags, (int)runs, (int)max_depth, want_depth);
    signal(SIGUSR1, SIG_DFL);
}

static void case_nodefer(void)
{
    nest_case(SA_NODEFER, 2);
    nest_case(0, 1);
}

/* SA_RESETHAND: runs once, then the action reads back as SIG_DFL (with
 * the flags the application gave). */
static void case_resethand(void)
{
    struct sigaction sa = { .sa_handler = count_a, .sa_flags = SA_RESETHAND | SA_RESTART };
    sigemptyset(&sa.sa_mask);
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    ran_a = 0;
    CHECK_OK(raise(SIGUSR1));
    CHECK(ran_a == 1, "one-shot handler ran %d times", (int)ran_a);
    struct sigaction o = query(SIGUSR1);
    CHECK(o.sa_handler == SIG_DFL, "one-shot handler still installed after it ran");
    CHECK(!(o.sa_flags & SA_SIGINFO), "flags after the reset %#x: SA_SIGINFO not the app's",
          (unsigned)o.sa_flags);
}

/* The System V way: the handler reinstalls itself (sysv_signal resets it
 * on delivery), from inside the handler. */
static void on_reinstall(int sig)
{
    ran_b++;
    sysv_signal(sig, on_reinstall);
}

static void case_reinstall(void)
{
    ran_b = 0;
    CHECK(sysv_signal(SIGUSR1, on_reinstall) != SIG_ERR, "sysv_signal");
    for (int i = 0; i < 5; i++)
        CHECK_OK(raise(SIGUSR1));
    CHECK(ran_b == 5, "self-reinstalling handler ran %d of 5 times", (int)ran_b);
    CHECK(query(SIGUSR1).sa_handler == on_reinstall, "self-reinstalled handler not read back");
    signal(SIGUSR1, SIG_DFL);
}

/* ---- mixed handlers: SIGUSR1 with SA_RESTART, SIGUSR2 without ----------- */

enum { MSG = 300 };

static void install_mixed(void)
{
    sem_catch(SIGUSR1, SA_RESTART);
    sem_catch(SIGUSR2, 0);
}

static void uninstall_mixed(void)
{
    sem_uncatch(SIGUSR1);
    sem_uncatch(SIGUSR2);
}

/* A recv blocked on s, signalled with `first` (restarts), then with
 * `last` unless 0 (fails EINTR: checked, the data then read apart); the
 * peer's MSG bytes of stream `seed` arrive either way. */
static void recv_round(int c, int s, int first, int last, uint32_t seed)
{
    uint8_t in[MSG], out[MSG];
    struct sem_blocked b;
    sem_start_blocked(&b, sem_op_recv, s, in, sizeof(in));
    sem_interrupt(&b, first, 1);
    if (last)
        sem_interrupt(&b, last, 0);
    sem_fill(out, MSG, seed, 0);
    sem_write_all(c, out, MSG);
    sem_blocked_join(&b);
    if (last) {
        CHECK(b.r == -1 && b.err == EINTR, "recv interrupted by SIG%s: %ld/%s, not -1/EINTR",
              sigabbrev_np(last), b.r, strerrorname_np(b.err));
        sem_read_all(s, in, MSG);
    } else {
        CHECK(b.r == MSG, "recv restarted after SIG%s returned %ld/%s", sigabbrev_np(first), b.r,
              b.r < 0 ? strerrorname_np(b.err) : "-");
    }
    CHECK(sem_verify(in, MSG, seed, 0) == (size_t)-1, "data after the signals differs");
}

static void case_mixed_recv(void)
{
    int c, s;
    sem_warm_pair(&c, &s);
    install_mixed();
    recv_round(c, s, SIGUSR1, 0, 51);          /* restarts, gets its data */
    recv_round(c, s, SIGUSR1, SIGUSR2, 52);    /* SIGUSR2 ends it */
    recv_round(c, s, SIGUSR1, 0, 53);          /* and SIGUSR1 still restarts */
    uninstall_mixed();
    close(c);
    close(s);
}

/* siginterrupt() on a signal() handler: off, then on again. */
static void case_siginterrupt_recv(void)
{
    int c, s;
    sem_warm_pair(&c, &s);
    sem_catch(SIGUSR1, SA_RESTART);
    sem_catch(SIGUSR2, SA_RESTART);
    /* SIGUSR1's counting handler again, installed by glibc's signal() */
    __sighandler_t counting = signal(SIGUSR1, SIG_IGN);
    CHECK(signal(SIGUSR1, counting) == SIG_IGN, "signal() round trip");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    CHECK_OK(siginterrupt(SIGUSR1, 1));
    recv_round(c, s, SIGUSR2, SIGUSR1, 61);
    CHECK_OK(siginterrupt(SIGUSR1, 0));
#pragma GCC diagnostic pop
    recv_round(c, s, SIGUSR1, 0, 62);
    uninstall_mixed();
    close(c);
    close(s);
}

/* An accept blocked on l, signalled as recv_round; then a client comes,
 * and the connection it makes carries MSG bytes. */
static void accept_round(int l, uint16_t port, int first, int last)
{
    struct sem_blocked b;
    sem_start_blocked(&b, sem_op_accept, l, NULL, 0);
    sem_interrupt(&b, first, 1);
    if (last)
        sem_interrupt(&b, last, 0);
    int c = sem_connect_port(port);
    sem_blocked_join(&b);
    int s = (int)b.r;
    if (last) {
        CHECK(b.r == -1 && b.err == EINTR, "accept interrupted by SIG%s: %ld/%s, not -1/EINTR",
              sigabbrev_np(last), b.r, strerrorname_np(b.err));
        s = CHECK_OK(accept(l, NULL, NULL));
    }
    CHECK(s >= 0, "accept restarted after SIG%s returned %ld/%s", sigabbrev_np(first), b.r,
          strerrorname_np(b.err));
    /* the accepted connection works (the server end echoes in a thread: both
     * ends of an anchored handshake in one process run at once) */
    uint8_t out[MSG], in[MSG];
    pthread_t t;
    CHECK(pthread_create(&t, NULL, sem_echo_byte, &s) == 0, "pthread_create");
    sem_fill(out, 1, 71, 0);
    sem_write_all(c, out, 1);
    sem_read_all(c, in, 1);
    pthread_join(t, NULL);
    sem_fill(out, MSG, 72, 0);
    sem_write_all(c, out, MSG);
    sem_read_all(s, in, MSG);
    CHECK(sem_verify(in, MSG, 72, 0) == (size_t)-1, "data on the accepted connection differs");
    close(s);
    close(c);
}

static void mixed_accept_case(int wildcard)
{
    uint16_t port;
    int l = sem_any_listener(wildcard, &port);
    install_mixed();
    accept_round(l, port, SIGUSR1, 0);
    accept_round(l, port, SIGUSR1, SIGUSR2);
    accept_round(l, port, SIGUSR1, 0);
    uninstall_mixed();
    close(l);
}

static void case_mixed_accept(void) { mixed_accept_case(0); }
static void case_mixed_accept_wild(void) { mixed_accept_case(1); }

int main(int argc, char **argv)
{
    static const struct sem_case cases[] = {
        { "old_action", case_old_action },
        { "invalid", case_invalid },
        { "save_restore", case_save_restore },
        { "siginfo", case_siginfo },
        { "nodefer", case_nodefer },
        { "resethand", case_resethand },
        { "reinstall", case_reinstall },
        { "mixed_recv", case_mixed_recv },
        { "siginterrupt_recv", case_siginterrupt_recv },
        { "mixed_accept", case_mixed_accept },
        { "mixed_accept_wild", case_mixed_accept_wild },
    };
    return sem_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
