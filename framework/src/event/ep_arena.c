/* ep_arena.c - fixed-size slots in one reserved mapping (see ep_arena.h). */
#include "ep_arena.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#define ARENA_SLOT 256
#define ARENA_BYTES (64ul << 20)     /* 262144 records; reserved, faulted in on use */

/* g_arena is set once (CAS) and never unmapped; read lock-free.
 * g_arena_lock guards g_used and the free list. */
static _Atomic(char *) g_arena;
static pthread_mutex_t g_arena_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t g_used;
static void *g_free_list;

static char *arena_base(void)
{
    char *a = __atomic_load_n(&g_arena, __ATOMIC_ACQUIRE);
    if (a != NULL)
        return a;
    void *m = mmap(NULL, ARENA_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    char *expect = NULL;
    if (!__atomic_compare_exchange_n(&g_arena, &expect, (char *)m, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        munmap(m, ARENA_BYTES);
        return expect;
    }
    return m;
}

void *ep_arena_alloc(size_t size)
{
    char *base = arena_base();
    if (base == NULL || size > ARENA_SLOT) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&g_arena_lock);
    void *p = g_free_list;
    if (p != NULL) {
        memcpy(&g_free_list, (char *)p + sizeof(uint64_t), sizeof(void *));
    } else if (g_used + ARENA_SLOT <= ARENA_BYTES) {
        p = base + g_used;
        g_used += ARENA_SLOT;
    }
    pthread_mutex_unlock(&g_arena_lock);
    if (p == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    memset(p, 0, ARENA_SLOT);
    return p;
}

void ep_arena_free(void *p)
{
    /* The magic (first word) becomes DEAD before the slot is reusable; the
     * free-list link lives in the second word. */
    uint64_t dead = EP_DEAD_MAGIC;
    __atomic_store_n((uint64_t *)p, dead, __ATOMIC_RELEASE);
    pthread_mutex_lock(&g_arena_lock);
    memcpy((char *)p + sizeof(uint64_t), &g_free_list, sizeof(void *));
    g_free_list = p;
    pthread_mutex_unlock(&g_arena_lock);
}

int ep_arena_contains(uint64_t p)
{
    char *base = __atomic_load_n(&g_arena, __ATOMIC_ACQUIRE);
    if (base == NULL)
        return 0;
    uint64_t b = (uint64_t)(uintptr_t)base;
    return p >= b && p < b + ARENA_BYTES && ((p - b) % ARENA_SLOT) == 0;
}

void ep_arena_fork_child(void)
{
    pthread_mutex_init(&g_arena_lock, NULL);
}
