/*
 * nstack_sigrestart.h - should a blocking call that user space implements
 * (a sleep in poll() inside the dispatcher or a module) be restarted after
 * a signal handler interrupted it, as the kernel would (signal(7))?
 *
 * The kernel restarts a blocked socket call when the handler of the signal
 * that interrupted it has SA_RESTART, unless the call has a socket timeout
 * (SO_RCVTIMEO for input calls, SO_SNDTIMEO for output calls and connect):
 * then it fails with EINTR. poll/epoll_wait/select always fail with EINTR.
 *
 * Under the dispatcher the answer is exact: it stands a trampoline in front
 * of every handler installed through libc and counts, per thread, the
 * signals delivered and those without SA_RESTART (framework/src/core/
 * sig_track.c; modules ask through fw->intr_mark/intr_restarts, ABI 1.4,
 * doc/module-interface.md). This scan is the fallback, for a module used
 * without the dispatcher (the rsocket API with rstream) and for a signal
 * whose handler was installed around libc (a raw rt_sigaction, or before
 * the dispatcher was loaded): user space cannot learn which signal
 * interrupted its poll(), so restart only when every caught signal that
 * can reach this thread (a handler installed, not blocked in the thread's
 * mask) has SA_RESTART. Exact when the process's handlers agree; one that
 * mixes both gets EINTR for either signal. Only runs after an EINTR: about
 * 64 rt_sigaction calls, nothing on the data path.
 */
#ifndef NSTACK_SIGRESTART_H
#define NSTACK_SIGRESTART_H

#include <pthread.h>
#include <signal.h>

/* 1: restart the interrupted call; 0: fail it with EINTR. timed: the call
 * has a socket timeout for its direction (then never restarted). */
static inline int nstack_intr_scan(int timed)
{
    sigset_t blocked;
    if (timed || pthread_sigmask(SIG_BLOCK, NULL, &blocked))
        return 0;
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sig == SIGKILL || sig == SIGSTOP || sigismember(&blocked, sig) == 1)
            continue;
        /* glibc's internal signals (32, 33) fail with EINVAL: not the app's */
        if (sigaction(sig, NULL, &sa) != 0)
            continue;
        if (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN)
            continue;
        if (!(sa.sa_flags & SA_RESTART))
            return 0;
    }
    return 1;
}

#endif
