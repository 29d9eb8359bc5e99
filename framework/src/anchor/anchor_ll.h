/* anchor_ll.h - the long-lived policy (doc/rsocket-framework.md, "Long-lived
 * policy"; module ABI 1.3). A connection on a route with
 * "upgrade_after_bytes" starts as a decided kernel socket (the kernel fast
 * path) after the two ends announced the policy out of band; each end
 * counts the bytes it sends and reads, and the call that crosses the
 * agreed limit anchors the connection late (anchor(NSTACK_ANCHOR_LATE)):
 * the module then switches each direction at a clean point. */
#ifndef ANCHOR_LL_H
#define ANCHOR_LL_H

#include <stdint.h>
#include <sys/types.h>

#include "file.h"

/* connect() of candidate f (f->ll_code > 0) succeeded: announces the
 * policy and makes f a kernel socket in its TCP phase. 1 when done, 0 when
 * the caller goes on as for an upgrade-first connection. */
int anchor_ll_connected(int fd, struct file *f, int st);

/* accept() made candidate nf on stack st: 1 when the active announced the
 * long-lived policy (answered; nf is in its TCP phase now), else 0. */
int anchor_ll_accepted(int fd, struct file *nf, int st);

/* First use of candidate kf (anchor.c, kf->lock held): 1 when the policy
 * handled it (TCP phase entered, or left a candidate while its connect is
 * in progress), 0 when the caller anchors it as usual. */
int anchor_ll_first_use(int fd, struct file *kf, int st, int role);

/* Slow paths of the data path (no lock held by the caller). */
void anchor_ll_cross(int fd, struct file *f);
/* The peer's announcement or answer (ll_gate): 1 when fd no longer holds
 * f (the connection went to its module), else 0. */
int anchor_ll_classify(int fd, struct file *f, int tx);

/* Data path, after a call moved r > 0 bytes on f (a kernel socket): one
 * load, and in the TCP phase one relaxed add and a compare. */
static inline void anchor_ll_count(int fd, struct file *f, ssize_t r)
{
    uint64_t lim = __atomic_load_n(&f->ll_limit, __ATOMIC_RELAXED);
    if (__builtin_expect(lim != 0, 0) &&
        __atomic_add_fetch(&f->ll_bytes, (uint64_t)r, __ATOMIC_RELAXED) >= lim)
        anchor_ll_cross(fd, f);
}

/* TCP phase, around a kernel data call: 1 when the call may go ahead
 * (ll_leave after it), 0 when a switch runs (take the slow path). */
static inline int anchor_ll_enter(struct file *f)
{
    __atomic_add_fetch(&f->ll_inflight, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&f->ll_switching, __ATOMIC_SEQ_CST))
        return 1;
    __atomic_sub_fetch(&f->ll_inflight, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static inline void anchor_ll_leave(struct file *f)
{
    __atomic_sub_fetch(&f->ll_inflight, 1, __ATOMIC_SEQ_CST);
}

/* The same around a kernel send of up to len bytes: they count as in
 * flight (ll_txq) until anchor_ll_leave_tx counted what moved. */
static inline int anchor_ll_enter_tx(struct file *f, size_t len)
{
    if (!anchor_ll_enter(f))
        return 0;
    __atomic_add_fetch(&f->ll_txq, (uint64_t)len, __ATOMIC_SEQ_CST);
    return 1;
}

/* Counted first, then no longer in flight: a reader that sees the smaller
 * ll_txq sees the count (anchor_ll_seen). The caller checks the limit
 * (anchor_ll_count with 0). */
static inline void anchor_ll_leave_tx(struct file *f, size_t len, ssize_t r)
{
    if (r > 0)
        __atomic_add_fetch(&f->ll_bytes, (uint64_t)r, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&f->ll_txq, (uint64_t)len, __ATOMIC_RELEASE);
    anchor_ll_leave(f);
}

/* Every byte the peer may have counted of this end's: what this end
 * counted, plus its sends still inside the kernel. */
static inline uint64_t anchor_ll_seen(struct file *f)
{
    uint64_t q = __atomic_load_n(&f->ll_txq, __ATOMIC_ACQUIRE);
    return q + __atomic_load_n(&f->ll_bytes, __ATOMIC_RELAXED);
}

/* A read in the TCP phase (any read call as recvmsg): never sleeps inside
 * the kernel (a blocking read waits in poll(), which wakes for the peer's
 * mark too), and goes to the module once the switch ran. */
ssize_t anchor_ll_recvmsg(int fd, struct file *f, struct msghdr *msg, int flags);

/* ll_gate values: an active that has not seen the passive's answer looks
 * for it before its reads (its writes may go first); a passive that has
 * not seen the active's announcement looks before reads and writes (its
 * answer must precede its own data). */
#define LL_GATE_ACTIVE  1
#define LL_GATE_PASSIVE 2

/* Data path, before a call on f: one load. 1 when fd went to its module
 * meanwhile (the caller takes its referenced path), else 0. */
static inline int anchor_ll_gate(int fd, struct file *f, int tx)
{
    if (__builtin_expect(__atomic_load_n(&f->ll_gate, __ATOMIC_RELAXED) > tx, 0))
        return anchor_ll_classify(fd, f, tx);
    return 0;
}

#endif
