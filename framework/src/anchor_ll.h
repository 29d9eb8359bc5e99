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
void anchor_ll_peer(int fd, struct file *f);

/* Data path, after a call moved r > 0 bytes on f (a kernel socket): one
 * load, and in the TCP phase one relaxed add and a compare. */
static inline void anchor_ll_count(int fd, struct file *f, ssize_t r)
{
    uint64_t lim = __atomic_load_n(&f->ll_limit, __ATOMIC_RELAXED);
    if (__builtin_expect(lim != 0, 0) &&
        __atomic_add_fetch(&f->ll_bytes, (uint64_t)r, __ATOMIC_RELAXED) >= lim)
        anchor_ll_cross(fd, f);
}

/* Data path, before a read on f: the active looks for the passive's
 * answer until it has seen it (its first read, normally). */
static inline void anchor_ll_read(int fd, struct file *f)
{
    if (__builtin_expect(__atomic_load_n(&f->ll_gate, __ATOMIC_RELAXED), 0))
        anchor_ll_peer(fd, f);
}

#endif
