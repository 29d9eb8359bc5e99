/*
 * rs_cmshare.c - one rdma_cm event channel per process for upgraded
 * TCP-anchored connections (issue 8: descriptors per connection).
 *
 * Once an anchored socket is upgraded its rdma_cm id has nothing left to
 * say that the socket does not learn otherwise: the peer's orderly close
 * arrives in-band as the rsockets DISCONNECT message (a completion), peer
 * death is told by the TCP anchor (rs_anchor_check), and an RDMA
 * disconnect of the peer moves our QP to the error state, whose flushed
 * receives wake the socket through its completion channel
 * (rs_cms_flushed). So its id moves (rdma_migrate_id)
 * to this shared channel and its own channel (a pipe pair on the software
 * device, one fd on an HCA) is destroyed. Nobody waits on the shared
 * channel: it is drained without blocking whenever a socket moves onto it
 * (so it holds at most the events of the connections closed since the
 * last upgrade) and its events are handed to their sockets as bits in
 * rsock.cm_shared_ev, applied by the socket's next progress pass.
 *
 * Locking: cms_lock guards cms_chan and cms_gen, every read of the
 * channel, and every rdma_destroy_id of an id on it. So a socket found
 * through an event's id->context is alive while cms_lock is held (its id,
 * hence it, is destroyed only under cms_lock, and a destroyed id's queued
 * events are dropped by rdma_cm). Order: a socket's own lock may be held
 * when taking cms_lock; under cms_lock no socket lock is taken (events are
 * handed over with atomic ORs).
 *
 * fork: the child must not read the parent's channel (it would steal its
 * events): the channel belongs to the fork generation that made it, a
 * child makes its own on first use, and the lock is re-initialised in the
 * child (a thread holding it does not exist there).
 */
#include "rs_sock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>

#define RS_CMS_BATCH 1024     /* events per drain: bounded work */

static pthread_mutex_t cms_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rdma_event_channel *cms_chan;   /* cms_lock */
static unsigned cms_gen;                      /* rs_fork_gen of cms_chan */

/* The channel of this process, made at the first use; cms_lock held. */
static struct rdma_event_channel *cms_get_locked(void)
{
    unsigned gen = __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED);
    if (cms_chan && cms_gen == gen)
        return cms_chan;
    cms_chan = NULL;                          /* a parent's: never read here */
    struct rdma_event_channel *ch = rdma_create_event_channel();
    if (!ch)
        return NULL;
    int fl = fcntl(ch->fd, F_GETFL);
    if (fl < 0 || fcntl(ch->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        rdma_destroy_event_channel(ch);
        return NULL;
    }
    cms_chan = ch;
    cms_gen = gen;
    return ch;
}

static unsigned event_bit(enum rdma_cm_event_type t)
{
    switch (t) {
    case RDMA_CM_EVENT_DISCONNECTED:
    case RDMA_CM_EVENT_DEVICE_REMOVAL:
        return RS_CMS_GONE;
    default:
        return 0;                 /* TIMEWAIT_EXIT and the like: nothing to do */
    }
}

/* Hands every queued event to its socket; cms_lock held. */
static void cms_drain_locked(void)
{
    struct rdma_cm_event *ev;
    if (!cms_chan || cms_gen != __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED))
        return;
    for (int n = 0; n < RS_CMS_BATCH && rdma_get_cm_event(cms_chan, &ev) == 0; n++) {
        struct rsock *t = ev->id ? ev->id->context : NULL;
        unsigned bit = event_bit(ev->event);
        if (t && bit)
            __atomic_fetch_or(&t->cm_shared_ev, bit, __ATOMIC_RELEASE);
        rdma_ack_cm_event(ev);
    }
}

/*
 * An upgraded anchored socket (lock held): its id goes to the shared
 * channel and its own channel is destroyed. On any failure the socket
 * keeps its own channel, as before (one WAR-free fallback: it only costs
 * descriptors).
 */
void rs_cms_adopt(struct rsock *s)
{
    if (!s->id || !s->cm_chan || s->cm_shared)
        return;
    rs_conn_process_cm(s);                    /* its own channel is empty now */
    pthread_mutex_lock(&cms_lock);
    struct rdma_event_channel *ch = cms_get_locked();
    if (!ch || rdma_migrate_id(s->id, ch)) {
        pthread_mutex_unlock(&cms_lock);
        return;
    }
    s->cm_shared = 1;
    cms_drain_locked();
    pthread_mutex_unlock(&cms_lock);
    epoll_ctl(s->wait_fd, EPOLL_CTL_DEL, s->cm_chan->fd, NULL);
    rdma_destroy_event_channel(s->cm_chan);
    s->cm_chan = NULL;
    rs_cms_detach(s);
}

void rs_cms_peer_gone(struct rsock *s)
{
    s->peer_gone = 1;
    s->peer_wr_closed = 1;
    if (s->state == RS_CONNECTED)
        rs_set_state(s, RS_DISCONNECTED);
    rs_event(s);
}

/* The events the shared channel handed to s (lock held). */
void rs_cms_apply(struct rsock *s)
{
    unsigned bits = __atomic_exchange_n(&s->cm_shared_ev, 0, __ATOMIC_ACQUIRE);
    if (bits & RS_CMS_GONE)
        rs_cms_peer_gone(s);
}

/*
 * A receive of s completed flushed (lock held): its QP is in the error
 * state. rdma_cm does that on a disconnect, the peer's (its DREQ: the
 * device and the kernel's rdma_cm both move the QP to ERR on it) or ours,
 * and DISCONNECTED follows on the channel - which nobody waits on for s.
 * The flush is what wakes s (its completion channel), so it stands for
 * that event: the peer's RDMA side is gone, as DISCONNECTED would say.
 * (A failure of our own has already moved s out of RS_CONNECTED.)
 */
void rs_cms_flushed(struct rsock *s)
{
    /* Not when our own send failed first (retry exceeded...) in this pass
     * or before: that failure moved the QP to ERR, and its verdict is the
     * anchor's (rs_anchor_lost.c), not a disconnect of the peer. */
    if ((s->send_fail.pending && !s->send_fail.flushed) || s->lost_until)
        return;
    if (s->state == RS_CONNECTED)
        rs_cms_peer_gone(s);
}

/*
 * Before a failed send of s is judged (lock held): a socket on its own
 * channel read that channel first in every progress pass, so a peer that
 * had gone was known before its in-flight sends failed (and their
 * failure was no error). Here: the events the shared channel holds, and
 * the TCP anchor - a peer that closed its TCP end too is closing or dead,
 * as DISCONNECTED told before.
 */
void rs_cms_sync(struct rsock *s)
{
    pthread_mutex_lock(&cms_lock);
    cms_drain_locked();
    pthread_mutex_unlock(&cms_lock);
    rs_cms_apply(s);
    if (s->peer_gone || s->anchor_fd < 0)
        return;
    struct pollfd p = { .fd = s->anchor_fd, .events = POLLRDHUP };
    if (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
        rs_cms_peer_gone(s);
}

/* Destroys s's id, on the shared channel when it moved there. */
void rs_cms_destroy_id(struct rsock *s)
{
    if (!s->id)
        return;
    if (!s->cm_shared) {
        rdma_destroy_id(s->id);
    } else {
        pthread_mutex_lock(&cms_lock);
        rdma_destroy_id(s->id);
        pthread_mutex_unlock(&cms_lock);
    }
    s->id = NULL;
}

void rs_cms_fork_child(void)
{
    pthread_mutex_init(&cms_lock, NULL);
}
