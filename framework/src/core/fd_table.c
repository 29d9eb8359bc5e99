/* fd_table.c - the two-level fd table (see fd_table.h). */
#include "fd_table.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

/* Written only by page_of's CAS (see fd_table.h). */
_Atomic(fd_slot *) fd_table_top_[FD_TOP_SIZE];

static fd_slot *page_of(int fd, int create)
{
    if (fd < 0 || (unsigned)fd >= FD_TABLE_MAX)
        return NULL;
    unsigned idx = (unsigned)fd >> FD_PAGE_BITS;
    fd_slot *page = atomic_load_explicit(&fd_table_top_[idx], memory_order_acquire);
    if (page != NULL || !create)
        return page;
    /* mmap, not malloc: the table may be touched inside malloc-unsafe
     * contexts (fork child, before libc is fully up). Zeroed by the kernel. */
    void *mem = mmap(NULL, FD_PAGE_SIZE * sizeof(fd_slot), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return NULL;
    fd_slot *expect = NULL;
    if (!atomic_compare_exchange_strong(&fd_table_top_[idx], &expect, (fd_slot *)mem)) {
        munmap(mem, FD_PAGE_SIZE * sizeof(fd_slot));
        return expect;
    }
    return (fd_slot *)mem;
}

int fd_table_set(int fd, struct file *f)
{
    if (fd < 0 || (unsigned)fd >= FD_TABLE_MAX) {
        errno = EBADF;
        return -1;
    }
    fd_slot *page = page_of(fd, f != NULL);
    if (page == NULL) {
        if (f == NULL)
            return 0;
        errno = ENOMEM;
        return -1;
    }
    atomic_store_explicit(&page[fd & (FD_PAGE_SIZE - 1)], f, memory_order_release);
    return 0;
}

struct file *fd_table_take(int fd)
{
    fd_slot *page = page_of(fd, 0);
    if (page == NULL)
        return NULL;
    return atomic_exchange_explicit(&page[fd & (FD_PAGE_SIZE - 1)], NULL, memory_order_acq_rel);
}

int fd_table_cas(int fd, struct file *expect, struct file *f)
{
    fd_slot *page = page_of(fd, f != NULL);
    if (page == NULL)
        return expect == NULL && f == NULL;
    return atomic_compare_exchange_strong(&page[fd & (FD_PAGE_SIZE - 1)], &expect, f);
}

void fd_table_each(int lo, int hi, void (*fn)(int fd, struct file *f, void *arg), void *arg)
{
    if (lo < 0)
        lo = 0;
    if (hi < 0 || (unsigned)hi >= FD_TABLE_MAX)
        hi = (int)FD_TABLE_MAX - 1;
    for (int fd = lo; fd <= hi;) {
        fd_slot *page = page_of(fd, 0);
        int page_end = (fd | (int)(FD_PAGE_SIZE - 1));
        if (page == NULL) {
            fd = page_end + 1;
            continue;
        }
        for (; fd <= page_end && fd <= hi; fd++) {
            struct file *f = atomic_load_explicit(&page[fd & (FD_PAGE_SIZE - 1)], memory_order_acquire);
            if (f != NULL)
                fn(fd, f, arg);
        }
    }
}
