/* file.c - pool and reference counting of struct file (see file.h). */
#include "file.h"

#include "conn_stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fd_table.h"

#define FILE_CHUNK 256

/* Free list of files. Guarded by g_pool_lock; files are never unmapped. */
static pthread_mutex_t g_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct file *g_free;
_Atomic unsigned g_fork_gen;

static int pool_grow(void)
{
    struct file *chunk = mmap(NULL, FILE_CHUNK * sizeof(struct file), PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (chunk == MAP_FAILED)
        return -1;
    for (int i = 0; i < FILE_CHUNK; i++) {
        chunk[i].next_free = g_free;
        g_free = &chunk[i];
    }
    return 0;
}

struct file *file_alloc(int kind)
{
    pthread_mutex_lock(&g_pool_lock);
    if (g_free == NULL && pool_grow() < 0) {
        pthread_mutex_unlock(&g_pool_lock);
        errno = ENOMEM;
        return NULL;
    }
    struct file *f = g_free;
    g_free = f->next_free;
    pthread_mutex_unlock(&g_pool_lock);

    /* ref stays 0 until the fields are set, so a racing file_get() on a
     * stale pointer never succeeds on a half-initialised file. */
    int zero = 0;
    __atomic_store_n(&f->ref, zero, __ATOMIC_RELAXED);
    memset((char *)f + sizeof(f->ref), 0, sizeof(*f) - sizeof(f->ref));
    f->kind = kind;
    f->ops = file_ops_of_kind(kind);
    f->fork_gen = __atomic_load_n(&g_fork_gen, __ATOMIC_RELAXED);
    pthread_mutex_init(&f->lock, NULL);
    pthread_mutex_init(&f->reg_lock, NULL);
    __atomic_store_n(&f->ref, 1, __ATOMIC_RELEASE);
    return f;
}

struct file *file_get(int fd)
{
    for (int tries = 0; tries < 64; tries++) {
        struct file *f = fd_table_get(fd);
        if (f == NULL)
            return NULL;
        if (!file_tryhold(f))
            continue;                  /* being freed: reload the entry */
        if (fd_table_get(fd) == f)
            return f;
        file_put(f);                   /* fd was re-pointed meanwhile */
    }
    return NULL;
}

void file_hold(struct file *f)
{
    __atomic_add_fetch(&f->ref, 1, __ATOMIC_RELAXED);
}

int file_tryhold(struct file *f)
{
    int r = __atomic_load_n(&f->ref, __ATOMIC_RELAXED);
    while (r > 0 && !__atomic_compare_exchange_n(&f->ref, &r, r + 1, 1, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        ;
    return r > 0;
}

void file_put(struct file *f)
{
    if (__atomic_sub_fetch(&f->ref, 1, __ATOMIC_ACQ_REL) == 0)
        file_release(f);
}

void file_release(struct file *f)
{
    int saved = errno;
    f->ops->release(f);
    file_free(f);
    errno = saved;
}

void file_free(struct file *f)
{
    conn_stats_release(f);
    free(f->pregs);
    f->pregs = NULL;
    pthread_mutex_lock(&g_pool_lock);
    f->next_free = g_free;
    g_free = f;
    pthread_mutex_unlock(&g_pool_lock);
}

void file_pool_lock(void) { pthread_mutex_lock(&g_pool_lock); }
void file_pool_unlock(void)
{
    __atomic_add_fetch(&g_fork_gen, 1, __ATOMIC_RELAXED);   /* after fork(), in the parent */
    pthread_mutex_unlock(&g_pool_lock);
}

void file_pool_fork_child(void)
{
    __atomic_add_fetch(&g_fork_gen, 1, __ATOMIC_RELAXED);
    /* The forking thread took it in fw_fork_prepare and is the only thread
     * here: releasing it (rather than re-initialising a held mutex) also
     * tells ThreadSanitizer it is free, which keeps the child's lock order
     * (file->lock, then this) from looking inverted. */
    pthread_mutex_unlock(&g_pool_lock);
}
