/* softrdma librdmacm: handshake timeouts (and a starved listener's
 * back-off, which uses the same list). An active side whose REQ gets
 * neither REP nor REJ, or a passive side whose REP gets no RTU, while the
 * peer process stays alive would wait forever; the IB CM gives up after
 * its REQ (or REP) retries and rdma_cm reports RDMA_CM_EVENT_UNREACHABLE
 * with status -ETIMEDOUT (IB_CM_REQ_ERROR / IB_CM_REP_ERROR in the
 * kernel's cma.c). Each waiting id is in one list of armed ids that the
 * device thread runs every round (sr_nic_set_timers; it sleeps at most
 * 100 ms, so a deadline fires at most that late). A timerfd per id cost
 * seven system calls per connection and end (create, move, set, epoll
 * add and delete, close).
 * Locking: the list and the ids' tm_* fields are guarded by sr_lock. */
#include "cm_internal.h"
#include <errno.h>
#include <sys/epoll.h>
#include <string.h>
#include <unistd.h>

/* The kernel's default: a CM response timeout of 2^20 x 4.096 us (about
 * 4.3 s) per try, 16 tries. */
#define CM_CONNECT_TIMEOUT_MS 68719

/* SOFTRDMA_CM_TIMEOUT_MS, read once under sr_lock (first connect). */
static int cm_timeout_value_ms(void)
{
    static int ms;     /* guarded by sr_lock; 0 until read */
    if (!ms) {
        ms = sr_env_int("SOFTRDMA_CM_TIMEOUT_MS", CM_CONNECT_TIMEOUT_MS);
        if (ms <= 0) {
            sr_log("SOFTRDMA_CM_TIMEOUT_MS=%d: must be > 0; using %d", ms, CM_CONNECT_TIMEOUT_MS);
            ms = CM_CONNECT_TIMEOUT_MS;
        }
    }
    return ms;
}

static struct cm_id *cm_armed;    /* guarded by sr_lock */

static void cm_timeout_fire(struct cm_id *id)
{
    cm_timeout_disarm(id);
    if (id->state == CM_LISTEN) {
        sr_watch_mod(&id->lsn, EPOLLIN);       /* cm_listen_backoff is over */
    } else if (id->state == CM_CONNECTING) {
        sr_log("rdma_connect: no answer to the connection request within %d ms; unreachable",
               cm_timeout_value_ms());
        cm_conn_close(id);     /* the passive side sees its pending request go */
        id->state = CM_IDLE;
        cm_event_push(id, NULL, RDMA_CM_EVENT_UNREACHABLE, -ETIMEDOUT, NULL);
    } else if (id->state == CM_ACCEPTING) {
        sr_log("rdma_accept: the active side did not complete the connection within %d ms; unreachable",
               cm_timeout_value_ms());
        cm_conn_close(id);     /* the active side gets CONNECT_ERROR */
        cm_qp_error(id);
        id->state = CM_DISCONNECTED;
        cm_event_push(id, NULL, RDMA_CM_EVENT_UNREACHABLE, -ETIMEDOUT, NULL);
    }
}

/* The device thread's round: fires the due ids (each firing unlinks one:
 * bounded), shortens the sleep to the nearest deadline. A forked child
 * forgets its parent's ids (they are not its to time out). */
static void cm_timers_run(uint64_t now, int *timeout)
{
    for (;;) {
        struct cm_id *due = NULL;
        for (struct cm_id *id = cm_armed; id && !due; id = id->tm_next) {
            if (id->epoch != sr_epoch) {
                cm_armed = NULL;        /* the whole list is the parent's */
                return;
            }
            if (now >= id->tm_at)
                due = id;
            else if (id->tm_at - now < (uint64_t)*timeout)
                *timeout = (int)(id->tm_at - now);
        }
        if (!due)
            return;
        cm_timeout_fire(due);
    }
}

static void cm_timeout_arm_in(struct cm_id *id, uint64_t ms)
{
    cm_timeout_disarm(id);
    if (cm_armed && cm_armed->epoch != sr_epoch)
        cm_armed = NULL;                /* a parent's list, in a forked child */
    id->tm_at = sr_now_ms() + ms;
    id->tm_prev = NULL;
    id->tm_next = cm_armed;
    if (cm_armed)
        cm_armed->tm_prev = id;
    cm_armed = id;
    sr_nic_set_timers(cm_timers_run);
}

void cm_timeout_arm(struct cm_id *id)
{
    cm_timeout_arm_in(id, (uint64_t)cm_timeout_value_ms());
}

/* A listener out of descriptors (cm_conn.c) leaves its socket unwatched,
 * the requests waiting in its backlog, and looks again this much later. */
#define CM_LISTEN_BACKOFF_MS 100

void cm_listen_backoff(struct cm_id *l)
{
    sr_watch_mod(&l->lsn, 0);
    cm_timeout_arm_in(l, CM_LISTEN_BACKOFF_MS);
}

void cm_timeout_disarm(struct cm_id *id)
{
    if (!id->tm_at)
        return;
    if (id->tm_prev)
        id->tm_prev->tm_next = id->tm_next;
    else if (cm_armed == id)
        cm_armed = id->tm_next;
    if (id->tm_next)
        id->tm_next->tm_prev = id->tm_prev;
    id->tm_next = id->tm_prev = NULL;
    id->tm_at = 0;
}
