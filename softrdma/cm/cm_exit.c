/* softrdma librdmacm: fabric names left behind at exit.
 * A process that exits without destroying its ids (most programs simply
 * return from main) would leave its port claims, listener names and
 * listener sockets in the fabric. Their owner gone, they are stale; but
 * under the fabric's sticky bit (sr_fabric.c) only their owner or root can
 * remove them, so a stale claim of one user would keep another user off
 * that port. Every id that owns such names is tracked here and its names
 * are removed at exit (not after SIGKILL: those stay for the owner's next
 * process or root to reclaim).
 * Locking: the list is guarded by sr_lock. */
#include "cm_internal.h"
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static struct cm_id *cm_tracked;    /* guarded by sr_lock */

static void cm_exit_names(struct cm_id *id)
{
    if (id->port_claim[0])
        unlink(id->port_claim);
    for (int i = 0; i < id->nnames; i++)
        unlink(id->names[i]);
    if (id->lsn.fd >= 0)
        unlink(id->lsn_path);
}

/* At exit another thread may hold sr_lock for a moment (never across a
 * wait); a thread stuck with it is not waited for. */
static void cm_exit_cleanup(void)
{
    struct timespec ms = { 0, 1000000 };
    int locked = 0;
    for (int i = 0; i < 200 && !(locked = !pthread_mutex_trylock(&sr_lock)); i++)
        nanosleep(&ms, NULL);
    if (!locked)
        return;
    for (struct cm_id *id = cm_tracked; id; id = id->exit_next)
        if (id->epoch == sr_epoch)      /* not a parent's ids in a forked child */
            cm_exit_names(id);
    cm_pool_exit();                     /* port claims kept for reuse */
    pthread_mutex_unlock(&sr_lock);
}

void cm_exit_track(struct cm_id *id)
{
    static int registered;      /* guarded by sr_lock */
    if (id->exit_tracked)
        return;
    if (!registered++)
        atexit(cm_exit_cleanup);
    id->exit_next = cm_tracked;
    id->exit_prev = NULL;
    if (cm_tracked)
        cm_tracked->exit_prev = id;
    cm_tracked = id;
    id->exit_tracked = 1;
}

void cm_exit_untrack(struct cm_id *id)
{
    if (!id->exit_tracked)
        return;
    if (id->exit_prev)
        id->exit_prev->exit_next = id->exit_next;
    else
        cm_tracked = id->exit_next;
    if (id->exit_next)
        id->exit_next->exit_prev = id->exit_prev;
    id->exit_tracked = 0;
}
