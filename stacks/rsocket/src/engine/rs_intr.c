/* rs_intr.c - the restart decision after a signal (rs_intr.h). */
#include "rs_intr.h"

#include <nstack/nstack_sigrestart.h>

/* Written once by rs_intr_use() before the first socket, read lock-free
 * (atomics: a thread of the rsocket API may read while the module starts). */
static uint64_t (*g_mark)(void);
static int (*g_restarts)(uint64_t mark, int timed);

void rs_intr_use(uint64_t (*mark)(void), int (*restarts)(uint64_t mark, int timed))
{
    if (mark == NULL || restarts == NULL)
        return;
    __atomic_store_n(&g_mark, mark, __ATOMIC_RELAXED);
    __atomic_store_n(&g_restarts, restarts, __ATOMIC_RELEASE);
}

/* A mark taken before the dispatcher's pair was set (a wait of the rsocket
 * API that began while the module started): judged by the scan. The
 * dispatcher's marks never reach it (2^32 - 1 signals on one thread). */
#define NO_MARK UINT64_MAX

uint64_t rs_intr_mark(void)
{
    uint64_t (*mark)(void) = __atomic_load_n(&g_mark, __ATOMIC_ACQUIRE);
    return mark != NULL ? mark() : NO_MARK;
}

int rs_intr_restarts(uint64_t mark, int timed)
{
    int (*restarts)(uint64_t, int) = __atomic_load_n(&g_restarts, __ATOMIC_ACQUIRE);
    return restarts != NULL && mark != NO_MARK ? restarts(mark, timed) : nstack_intr_scan(timed);
}
