/* busy_poll.h - a wait that found nothing ready keeps looking at its
 * module sockets for a while before it sleeps (module ABI 1.6
 * busy_poll_ns), as the kernel's net.core.busy_poll does for a NIC queue:
 * in a request/reply exchange the answer usually comes within a few
 * microseconds, and catching it spares the sleep and the wake-up, which
 * on a VM cost more than the transfer. */
#ifndef BUSY_POLL_H
#define BUSY_POLL_H

#include <stdint.h>

struct file;

/* One look at the wait's module sockets: how many are ready (0: none; a
 * negative value ends the spin and is returned as it is). */
typedef int (*busy_look_fn)(void *ctx);

/* The most module sockets one wait spins over: every look asks each of
 * them, and a wait on a large set rarely finds nothing ready anyway. */
#define BUSY_POLL_MAX_SOCKS 16

/* f's budget (ns) from its module's busy_poll_ns, 0 without the op. */
uint64_t busy_poll_budget(const struct file *f);

/* Looks (look(ctx)) until one finds something, for at most budget_ns and
 * never past deadline (ns, -1: none); returns what it found or 0. A
 * thread whose spins keep finding nothing (BUSY_POLL_MISSES_MAX in a row:
 * an idle connection, a slow peer, a loaded machine where the peer needs
 * this CPU) sleeps at once, trying again every BUSY_POLL_RETRY_EVERY-th
 * wait; a hit restores it. BUSY_POLL_INTR: a signal handler ran on this
 * thread meanwhile (sig_track.h: one installed through libc) - the wait
 * ends with EINTR, as the kernel's poll and epoll_wait do when a handler
 * interrupts them, whatever its SA_RESTART. */
#define BUSY_POLL_INTR (-2)
int busy_poll_run(uint64_t budget_ns, int64_t deadline, busy_look_fn look, void *ctx);

/* The budget adapts per thread, from the module's up to
 * NSTACK_SPIN_LEARN_MAX_NS, by the rule of nstack_spin.h. Call it after
 * the kernel wait that follows busy_poll_run: found > 0 when the wait
 * ended with news of module sockets (a kernel fd's readiness, a new
 * connection on a listener, says nothing of how long they take). */
void busy_poll_woke(int found);

/* The spin's skip (busy_poll_run above): after this many misses in a row,
 * and its retry period. */
#define BUSY_POLL_MISSES_MAX 8
#define BUSY_POLL_RETRY_EVERY 64

#endif
