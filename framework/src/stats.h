/* stats.h - per-stack counters (see stats_shm.h for the layout). */
#ifndef STATS_H
#define STATS_H

#include <stddef.h>
#include <stdint.h>

#include "stats_shm.h"

struct nstat_slot;
extern __thread struct nstat_slot *t_stat_slot;

/* Creates the segment at framework start (names from g_stacks). */
void stats_start(void);
/* Slow path: claim this thread's slot; NULL before stats_start(). */
struct nstat_slot *stats_slot_claim(void);
/* In a fork child: a fresh segment under the child's pid. */
void stats_fork_child(void);

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
