/* sig_track.c - the signal trampoline and the restart decision (sig_track.h). */
#include "sig_track.h"

#include <errno.h>
#include <stdint.h>

#include <nstack/nstack_sigrestart.h>

#include "libc_api.h"

/* A handler and two flags share one 64-bit word (below). */
_Static_assert(sizeof(void (*)(int)) == sizeof(uint64_t), "function pointers must be 64-bit");

#define SLOT_INFO    (1ull << 63)          /* the application asked for SA_SIGINFO */
#define SLOT_RESTART (1ull << 62)          /* ... and for SA_RESTART */
#define SLOT_FN      (SLOT_RESTART - 1)    /* user-space addresses stay below 2^57 */

/*
 * Per signal: the application's handler that the trampoline calls, with
 * its SA_SIGINFO and SA_RESTART, in one word so that the trampoline always
 * reads a matching triple. Locking: none - sigaction() is
 * async-signal-safe (a handler may reinstall itself), so writers exchange
 * the word atomically and the trampoline loads it. Only ever a real
 * function: SIG_DFL/SIG_IGN go to the kernel alone and leave the word as
 * it was (a signal racing the change then sees the previous handler, as
 * it would have a moment earlier).
 */
static uint64_t g_slot[NSIG];

/*
 * This thread's deliveries through the trampoline: low 32 bits every one,
 * high 32 bits those whose handler lacked SA_RESTART. Written only by the
 * trampoline on this thread (nested handlers: atomic add, so none is
 * lost), read by this thread's waiters. Counters, not a mask cleared by
 * the waiter, so a wait inside a handler cannot hide what interrupted the
 * wait it interrupted.
 */
static __thread uint64_t t_sig_count;

#define COUNT_ONE     1ull
#define COUNT_EINTR   (1ull << 32)

static void sig_trampoline(int sig, siginfo_t *si, void *uc)
{
    uint64_t w = __atomic_load_n(&g_slot[sig], __ATOMIC_ACQUIRE);
    /* counted first: the handler may siglongjmp out */
    __atomic_fetch_add(&t_sig_count, COUNT_ONE + (w & SLOT_RESTART ? 0 : COUNT_EINTR),
                       __ATOMIC_RELAXED);
    uintptr_t fn = (uintptr_t)(w & SLOT_FN);
    if (fn == 0)
        return;
    if (w & SLOT_INFO)
        ((void (*)(int, siginfo_t *, void *))fn)(sig, si, uc);
    else
        ((void (*)(int))fn)(sig);
}

/* Signals an application can catch and glibc lets it install (32 and 33
 * are glibc's own: its sigaction refuses them). */
static int trackable(int sig)
{
    return sig >= 1 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP &&
           (sig < 32 || sig >= SIGRTMIN);
}

/* A handler the trampoline can stand in for (not SIG_DFL, SIG_IGN,
 * SIG_HOLD, SIG_ERR, nor an address that does not fit the word). */
static int is_function(uintptr_t fn)
{
    return fn > 2 && fn != (uintptr_t)SIG_ERR && (fn & ~SLOT_FN) == 0;
}

/* An action to put behind the trampoline: a handler, and not the
 * trampoline itself (an action read around us, with a raw rt_sigaction,
 * and given back: it goes to the kernel as it is, the slot keeps the
 * handler it stands for, or the trampoline would call itself). */
static int wraps(const struct sigaction *act)
{
    return act != NULL && is_function((uintptr_t)act->sa_sigaction) &&
           act->sa_sigaction != sig_trampoline;
}

static uint64_t word_of(const struct sigaction *act)
{
    return (uint64_t)(uintptr_t)act->sa_sigaction | (act->sa_flags & SA_SIGINFO ? SLOT_INFO : 0) |
           (act->sa_flags & SA_RESTART ? SLOT_RESTART : 0);
}

/* The kernel's action as the application installed it: the trampoline
 * becomes the handler of `word`, SA_SIGINFO the application's own. */
static void app_view(struct sigaction *a, uint64_t word)
{
    if ((word & SLOT_FN) == 0)
        return;
    /* a one-shot handler fired: the kernel reset it to SIG_DFL and kept
     * the flags, with the trampoline's SA_SIGINFO */
    if (a->sa_handler == SIG_DFL && (a->sa_flags & SA_RESETHAND) && !(word & SLOT_INFO))
        a->sa_flags &= ~SA_SIGINFO;
    if (a->sa_sigaction != sig_trampoline)
        return;
    a->sa_sigaction = (void (*)(int, siginfo_t *, void *))(uintptr_t)(word & SLOT_FN);
    a->sa_flags = (a->sa_flags & ~SA_SIGINFO) | (word & SLOT_INFO ? SA_SIGINFO : 0);
}

int sig_action(int sig, const struct sigaction *act, struct sigaction *oact)
{
    if (!trackable(sig) || !wraps(act)) {
        uint64_t prev = trackable(sig) ? __atomic_load_n(&g_slot[sig], __ATOMIC_ACQUIRE) : 0;
        int r = LIBC(sigaction)(sig, act, oact);
        if (r == 0 && oact != NULL)
            app_view(oact, prev);
        return r;
    }
    struct sigaction k = *act, kold;
    uint64_t w = word_of(act);
    k.sa_sigaction = sig_trampoline;
    k.sa_flags |= SA_SIGINFO;
    uint64_t prev = __atomic_exchange_n(&g_slot[sig], w, __ATOMIC_ACQ_REL);
    if (LIBC(sigaction)(sig, &k, &kold) != 0) {
        /* nothing changed in the kernel: nor here, unless another call did */
        __atomic_compare_exchange_n(&g_slot[sig], &w, prev, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
        return -1;
    }
    if (oact != NULL) {
        *oact = kold;
        app_view(oact, prev);
    }
    return 0;
}

uint64_t sig_slot_word(int sig)
{
    return trackable(sig) ? __atomic_load_n(&g_slot[sig], __ATOMIC_ACQUIRE) : 0;
}

/* The trampoline stays, its SA_RESTART changed (glibc's siginterrupt
 * rewrote the kernel's flags): the slot follows. Bounded: a racing writer
 * can only make a few rounds fail. */
static void follow_restart(int sig, int restart)
{
    uint64_t w = __atomic_load_n(&g_slot[sig], __ATOMIC_ACQUIRE);
    for (int i = 0; i < 64; i++) {
        uint64_t n = (w & ~SLOT_RESTART) | (restart ? SLOT_RESTART : 0);
        if (n == w || __atomic_compare_exchange_n(&g_slot[sig], &w, n, 0, __ATOMIC_ACQ_REL,
                                                  __ATOMIC_ACQUIRE))
            return;
    }
}

void sig_adopt(int sig)
{
    struct sigaction k;
    int saved = errno;
    if (trackable(sig) && LIBC(sigaction)(sig, NULL, &k) == 0) {
        if (k.sa_sigaction == sig_trampoline)
            follow_restart(sig, (k.sa_flags & SA_RESTART) != 0);
        else if (is_function((uintptr_t)k.sa_sigaction))
            (void)sig_action(sig, &k, NULL);   /* same mask and flags, behind the trampoline */
    }
    errno = saved;
}

__sighandler_t sig_app_handler(__sighandler_t h, uint64_t word)
{
    if ((uintptr_t)h == (uintptr_t)sig_trampoline && (word & SLOT_FN) != 0)
        return (__sighandler_t)(uintptr_t)(word & SLOT_FN);
    return h;
}

uint64_t sig_mark(void)
{
    return __atomic_load_n(&t_sig_count, __ATOMIC_RELAXED);
}

int sig_restarts(uint64_t mark, int timed)
{
    if (timed)
        return 0;
    uint64_t now = __atomic_load_n(&t_sig_count, __ATOMIC_RELAXED);
    /* no delivery through the trampoline: a handler installed around libc */
    if ((uint32_t)now == (uint32_t)mark)
        return nstack_intr_scan(0);
    return (now >> 32) == (mark >> 32);
}
