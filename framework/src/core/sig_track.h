/* sig_track.h - which signal interrupted a wait that user space implements.
 *
 * The kernel restarts a blocked socket call when the handler of the signal
 * that interrupted it has SA_RESTART (signal(7)). A poll() inside the
 * dispatcher or a module only sees EINTR. So every handler the application
 * installs through libc (sigaction, signal, sysv_signal, sigset, ...:
 * wrap_signal.c) is installed behind one trampoline, which counts on the
 * delivering thread the signals it delivered and those of them without
 * SA_RESTART (async-signal-safe, lock-free, no system call), then calls
 * the application's handler with the kernel's arguments. A waiter takes a
 * mark before it sleeps and, after EINTR, asks whether a signal delivered
 * since lacked SA_RESTART. A signal whose handler was installed around
 * libc (a raw rt_sigaction, or before this library was loaded) leaves no
 * count: then the old scan of every handler decides (nstack_sigrestart.h).
 *
 * Nothing here runs on the data path: the trampoline on a signal, the mark
 * (one thread-local load) before a sleep, the decision after EINTR.
 */
#ifndef SIG_TRACK_H
#define SIG_TRACK_H

#include <signal.h>
#include <stdint.h>

/* This thread's mark before a wait that a signal handler may interrupt. */
uint64_t sig_mark(void);
/* After that wait failed with EINTR: 1 to restart the call, 0 to fail it
 * with EINTR. timed: the call has a socket timeout for its direction
 * (SO_RCVTIMEO/SO_SNDTIMEO): never restarted. */
int sig_restarts(uint64_t mark, int timed);

/* ---- for the interposed libc entries (wrap_signal.c) ------------------ */

/* sigaction() with the trampoline in front of a handler; oact shows the
 * application's own handler and flags. Async-signal-safe, as sigaction. */
int sig_action(int sig, const struct sigaction *act, struct sigaction *oact);
/* The slot's word before a libc entry that installs by itself (glibc's
 * signal(), sigset(), ... call its internal sigaction, not ours). */
uint64_t sig_slot_word(int sig);
/* After such an entry succeeded: put the trampoline in front of the
 * handler it installed, or take the flags it changed (siginterrupt). */
void sig_adopt(int sig);
/* The handler a libc entry returned, as the application knows it: the
 * trampoline becomes the handler of `word` (sig_slot_word before). */
__sighandler_t sig_app_handler(__sighandler_t h, uint64_t word);

#endif
