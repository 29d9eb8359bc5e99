/* softrdma: wake-ups of this process's own channels that the device thread
 * owes, written once it has let go of sr_lock.
 *
 * The device thread handles a batch of events under sr_lock; a CM event
 * (ESTABLISHED, DISCONNECTED...) or a completion it queues for the
 * application used to add to the channel's eventfd right there, and the
 * application thread it woke then asked for sr_lock (rdma_get_cm_event,
 * ibv_poll_cq's progress, the next verb) while the device thread still
 * held it: a futex wait and wake, two context switches on a 2-CPU host,
 * several times per connection. Now the counts are collected and written
 * right after the batch's unlock, before the thread waits again.
 *
 * A count not written yet is still a count: sr_wake_take lets a caller
 * take one back as if it were in the eventfd (cm_events_reap), and a
 * channel being destroyed drops its pending counts before its descriptor
 * is closed (sr_wake_forget), so no count is ever written into a number
 * that was closed and reused. Other threads write at once. Guarded by
 * sr_wake_mu (taken after sr_lock, alone while writing). */
#include "sr_internal.h"
#include "sr_sys.h"
#include <string.h>

#define SR_WAKE_MAX 64

static pthread_mutex_t sr_wake_mu = PTHREAD_MUTEX_INITIALIZER;
static struct { int fd; uint64_t n; } sr_wakes[SR_WAKE_MAX];
static int sr_nwakes;
static __thread int sr_wake_deferring;   /* the device thread, sr_lock held */

static void sr_wake_write(int fd, uint64_t n)
{
    if (sr_sys_write(fd, &n, sizeof n) != (ssize_t)sizeof n)
        sr_log("channel %d: event lost: %s", fd, strerror(errno));
}

void sr_wake_defer_begin(void) { sr_wake_deferring = 1; }

void sr_wake_defer_end(void)
{
    sr_wake_deferring = 0;
    pthread_mutex_lock(&sr_wake_mu);
    for (int i = 0; i < sr_nwakes; i++)
        if (sr_wakes[i].n)              /* all taken back: nothing to write */
            sr_wake_write(sr_wakes[i].fd, sr_wakes[i].n);
    sr_nwakes = 0;
    pthread_mutex_unlock(&sr_wake_mu);
}

void sr_wake_fd(int fd, uint64_t n)
{
    if (!sr_wake_deferring) {
        sr_wake_write(fd, n);
        return;
    }
    pthread_mutex_lock(&sr_wake_mu);
    int i;
    for (i = 0; i < sr_nwakes && sr_wakes[i].fd != fd; i++)
        ;
    if (i < sr_nwakes) {
        sr_wakes[i].n += n;             /* semaphore mode: n counts as n writes */
    } else if (sr_nwakes < SR_WAKE_MAX) {
        sr_wakes[sr_nwakes].fd = fd;
        sr_wakes[sr_nwakes++].n = n;
    } else {
        sr_wake_write(fd, n);           /* full: this one now */
    }
    pthread_mutex_unlock(&sr_wake_mu);
}

int sr_wake_take(int fd)
{
    int took = 0;
    pthread_mutex_lock(&sr_wake_mu);
    for (int i = 0; i < sr_nwakes && !took; i++)
        if (sr_wakes[i].fd == fd && sr_wakes[i].n) {
            sr_wakes[i].n--;
            took = 1;
        }
    pthread_mutex_unlock(&sr_wake_mu);
    return took;
}

void sr_wake_forget(int fd)
{
    pthread_mutex_lock(&sr_wake_mu);
    for (int i = 0; i < sr_nwakes;)
        if (sr_wakes[i].fd == fd)
            sr_wakes[i] = sr_wakes[--sr_nwakes];
        else
            i++;
    pthread_mutex_unlock(&sr_wake_mu);
}

/* A forked child has no device thread and none of these channels' events
 * to deliver; the lock may have been held at fork. */
static void sr_wake_after_fork(void)
{
    pthread_mutex_init(&sr_wake_mu, NULL);
    sr_nwakes = 0;
}

__attribute__((constructor)) static void sr_wake_init(void)
{
    pthread_atfork(NULL, NULL, sr_wake_after_fork);
}
