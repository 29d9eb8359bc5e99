/* fd_table.h - app fd -> struct file, for every fd the framework tracks.
 *
 * Two-level array indexed by the fd number: a fixed top array of page
 * pointers, pages allocated on demand (CAS) and never freed, so a lookup is
 * two dependent loads with no lock, and there is no cap such as 1024: any fd
 * the kernel hands out (up to FD_TABLE_MAX) can be tracked. */
#ifndef FD_TABLE_H
#define FD_TABLE_H

#include <stdatomic.h>
#include <stddef.h>

struct file;

#define FD_PAGE_BITS 10
#define FD_PAGE_SIZE (1u << FD_PAGE_BITS)
#define FD_TOP_SIZE  (1u << 12)
#define FD_TABLE_MAX (FD_PAGE_SIZE * FD_TOP_SIZE)   /* 4 Mi fds > kernel nr_open max */

typedef _Atomic(struct file *) fd_slot;

/* Top level: page pointers, set once with CAS, never freed, so readers need
 * no lock. Defined in fd_table.c; hidden (not exported by the library). */
extern _Atomic(fd_slot *) fd_table_top_[FD_TOP_SIZE];

/* The entry of fd, or NULL (untracked fd, or fd out of range). Lock-free.
 * Inline: every interposed call starts with it, including the calls that
 * libraries under a module (a device's own fds) make. */
static inline struct file *fd_table_get(int fd)
{
    if ((unsigned)fd >= FD_TABLE_MAX)   /* negative fds too */
        return NULL;
    fd_slot *page = atomic_load_explicit(&fd_table_top_[(unsigned)fd >> FD_PAGE_BITS],
                                         memory_order_acquire);
    if (page == NULL)
        return NULL;
    return atomic_load_explicit(&page[(unsigned)fd & (FD_PAGE_SIZE - 1)], memory_order_acquire);
}
/* Sets the entry; returns -1/ENOMEM if the page cannot be allocated or
 * EBADF if fd is out of range. Callers serialise changes of one fd (the
 * kernel does too: an fd number is only reused after close()). */
int fd_table_set(int fd, struct file *f);
/* Atomically replaces the entry with NULL and returns the old one. */
struct file *fd_table_take(int fd);
/* Replace only if the entry is still `expect`; returns 1 on success. */
int fd_table_cas(int fd, struct file *expect, struct file *f);
/* Calls fn for each non-NULL entry in [lo, hi]; used by close_range/fork. */
void fd_table_each(int lo, int hi, void (*fn)(int fd, struct file *f, void *arg), void *arg);

#endif
