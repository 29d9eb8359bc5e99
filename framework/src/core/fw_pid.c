/* fw_pid.c - see fw_pid.h. glibc no longer caches the pid, and some
 * checks run on every poll/select of a listener (anchor_side.c: is the
 * side listener this process's?), so the dispatcher keeps it itself. */
#include "fw_pid.h"

#include <pthread.h>
#include <unistd.h>

/* 0: not known (never asked, or forgotten in a fork child). Written by
 * whichever thread asks first (each writes the same value) and by the
 * atfork child handler, which runs before any other thread exists. */
static pid_t g_pid;
static pthread_once_t g_pid_once = PTHREAD_ONCE_INIT;

static void forget(void)
{
    __atomic_store_n(&g_pid, 0, __ATOMIC_RELAXED);
}

static void watch_forks(void)
{
    pthread_atfork(NULL, NULL, forget);
}

pid_t fw_pid(void)
{
    pid_t p = __atomic_load_n(&g_pid, __ATOMIC_RELAXED);
    if (p != 0)
        return p;
    pthread_once(&g_pid_once, watch_forks);
    p = getpid();
    __atomic_store_n(&g_pid, p, __ATOMIC_RELAXED);
    return p;
}
