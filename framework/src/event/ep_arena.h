/* ep_arena.h - the reserved address range holding epoll registration
 * records and epoll set records (see epoll_agg.h). Memory is never
 * returned, so a stale pointer read back from the kernel is always safe to
 * inspect (its magic tells whether it is still live). */
#ifndef EP_ARENA_H
#define EP_ARENA_H

#include <stddef.h>
#include <stdint.h>

#define EP_REG_MAGIC 0x6e73726567303031ull   /* live ep_reg */
#define EP_SET_MAGIC 0x6e73736574303031ull   /* live epset */
#define EP_DEAD_MAGIC 0x6e73646561643031ull

/* A zeroed record of the arena's fixed slot size, or NULL/ENOMEM. */
void *ep_arena_alloc(size_t size);
void ep_arena_free(void *p);
/* 1 when p points into the arena (a value the framework put into epoll). */
int ep_arena_contains(uint64_t p);
void ep_arena_fork_child(void);

#endif
