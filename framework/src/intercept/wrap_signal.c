/* wrap_signal.c - every glibc entry that installs a signal handler or
 * changes its SA_RESTART, so the handler runs behind the trampoline that
 * tells a wait inside the dispatcher or a module which signal interrupted
 * it (core/sig_track.h). The application sees its own handler and flags
 * in every old action returned.
 *
 * sigaction and __sigaction go through sig_action directly. glibc's
 * signal (also bsd_signal, ssignal: one function), sysv_signal (and
 * __sysv_signal, what signal() becomes in a strict-standard build), sigset
 * and siginterrupt install through glibc's internal sigaction, which no
 * interposer sees: each is called as it is (so its own semantics - the
 * flags it picks, siginterrupt's memory for later signal() calls, sigset's
 * SIG_HOLD - stay glibc's), then sig_adopt puts the trampoline in front of
 * what it installed. A signal in between is not counted and falls back to
 * the scan (nstack_sigrestart.h). sigvec exists only as a compat symbol
 * for old binaries and is not interposed (the same fallback). No locks:
 * all of these are called from signal handlers. */
#include <signal.h>

#include "libc_api.h"
#include "sig_track.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
    return sig_action(sig, act, oact);
}

int __sigaction(int sig, const struct sigaction *act, struct sigaction *oact);
EXPORT int __sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
    return sig_action(sig, act, oact);
}

/* `name`: glibc's installer `fn`, then the trampoline in front of the
 * handler it installed; the old handler returned as the app knows it. */
#define WRAP_INSTALLER(name, fn) \
    EXPORT __sighandler_t name(int sig, __sighandler_t h) \
    { \
        uint64_t w = sig_slot_word(sig); \
        __sighandler_t r = LIBC(fn)(sig, h); \
        if (r != SIG_ERR) \
            sig_adopt(sig); \
        return sig_app_handler(r, w); \
    }

WRAP_INSTALLER(signal, signal)
WRAP_INSTALLER(bsd_signal, bsd_signal)
WRAP_INSTALLER(ssignal, ssignal)
WRAP_INSTALLER(sysv_signal, sysv_signal)
WRAP_INSTALLER(__sysv_signal, sysv_signal)
WRAP_INSTALLER(sigset, sigset)

EXPORT int siginterrupt(int sig, int flag)
{
    int r = LIBC(siginterrupt)(sig, flag);
    if (r == 0)
        sig_adopt(sig);
    return r;
}
