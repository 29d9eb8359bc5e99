/* stats.h - per-stack counters (layout: include/nstack/nstack_stats.h). */
#ifndef STATS_H
#define STATS_H

#include <stddef.h>
#include <stdint.h>

#include "nstack/nstack_stats.h"

struct nstat_slot;
extern __thread struct nstat_slot *t_stat_slot;
/* The segment (NULL before stats_start); replaced only in a fork child,
 * which is single-threaded then. */
extern struct nstat_shm *g_stat_shm;

/* Creates the segment at framework start (names from g_stacks). */
void stats_start(void);
/* Slow path: claim this thread's slot; NULL before stats_start(). */
struct nstat_slot *stats_slot_claim(void);
/* In a fork child: a fresh segment under the child's pid. */
void stats_fork_child(void);
/* The process is about to confine itself (seccomp, no_new_privs: the
 * prctl wrapper): its counters segment's name is removed now, while
 * unlink() is still allowed, so exit() does not need it (OpenSSH's
 * sandboxed preauth child is killed by SIGSYS for an unlink). The
 * counters go on in the mapping; nstack-stat no longer finds them. */
void stats_confine(void);

static inline void stats_add(int stack, enum nstat_counter c, uint64_t n)
{
    struct nstat_slot *s = t_stat_slot;
    if (__builtin_expect(s == NULL, 0) && (s = stats_slot_claim()) == NULL)
        return;
    if ((unsigned)stack >= NSTAT_STACKS)
        return;
    __atomic_fetch_add(&s->c[stack][c], n, __ATOMIC_RELAXED);
}

#endif
