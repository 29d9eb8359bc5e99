/* softrdma: completion channels and completion queues.
 * A CQ's ring lives in the process's shared segment: a peer's sending
 * thread pushes receive completions into it directly. A channel is an
 * eventfd (semaphore mode): whoever pushes into an armed CQ adds one and
 * counts it in the CQ's `events`, so the fd turns readable only after
 * ibv_req_notify_cq, as on hardware; arming is a flag, no system call. */
#include "sr_internal.h"
#include "sr_sys.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

SR_API struct ibv_comp_channel *ibv_create_comp_channel(struct ibv_context *ctx)
{
    struct sr_channel *ch = calloc(1, sizeof *ch);
    if (!ch) {
        errno = ENOMEM;
        return NULL;
    }
    /* the application's fd: stays low, where it expects it */
    int fd = eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE);
    if (fd < 0) {
        int e = errno;          /* EMFILE/ENFILE stay what they are */
        sr_log("ibv_create_comp_channel: eventfd: %s", strerror(e));
        free(ch);
        errno = e;
        return NULL;
    }
    static uint32_t next_id;
    ch->pub.context = ctx;
    ch->pub.fd = fd;
    ch->epoch = sr_epoch;
    do
        ch->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
    while (!ch->id);
    pthread_mutex_init(&ch->lock, NULL);
    return &ch->pub;
}

SR_API int ibv_destroy_comp_channel(struct ibv_comp_channel *pub)
{
    struct sr_channel *ch = (struct sr_channel *)pub;
    if (sr_stale(ch->epoch, "ibv_destroy_comp_channel"))
        return EPERM;
    if (pub->refcnt) {
        sr_log("ibv_destroy_comp_channel: %d CQ(s) still use the channel", pub->refcnt);
        return EBUSY;
    }
    sr_wake_forget(pub->fd);    /* no count written after the close */
    close(pub->fd);     /* the application's fd: through libc, as it expects */
    free(ch);
    return 0;
}

int sr_cq_evfd(struct sr_cq *cq)
{
    return cq->pub.channel ? cq->pub.channel->fd : -1;
}

SR_API struct ibv_cq *ibv_create_cq(struct ibv_context *ctx, int cqe, void *cq_context,
                                    struct ibv_comp_channel *channel, int comp_vector)
{
    (void)comp_vector;
    if (cqe < 1 || cqe > SR_MAX_CQE) {
        sr_log("ibv_create_cq: cqe %d out of range 1..%d", cqe, SR_MAX_CQE);
        errno = EINVAL;
        return NULL;
    }
    struct sr_cq *cq = calloc(1, sizeof *cq);
    struct sr_seg_hdr *seg = sr_seg();
    if (!cq || !seg) {
        free(cq);
        errno = ENOMEM;
        return NULL;
    }
    cq->size = sizeof *cq->s + (size_t)cqe * sizeof cq->s->ring[0];
    cq->off = sr_seg_alloc(cq->size);
    if (!cq->off) {
        free(cq);
        errno = ENOMEM;
        return NULL;
    }
    cq->s = (struct sr_shm_cq *)((char *)seg + cq->off);
    cq->seg_size = sr_seg_size();
    /* its lock was initialised by sr_seg_alloc */
    cq->s->cap = (uint32_t)cqe;
    cq->s->has_channel = channel != NULL;
    cq->pub.context = ctx;
    cq->pub.channel = channel;
    cq->pub.cq_context = cq_context;
    cq->pub.cqe = cqe;
    pthread_mutex_init(&cq->pub.mutex, NULL);
    pthread_cond_init(&cq->pub.cond, NULL);
    cq->epoch = sr_epoch;
    if (channel) {
        struct sr_channel *ch = (struct sr_channel *)channel;
        pthread_mutex_lock(&sr_lock);
        channel->refcnt++;
        pthread_mutex_unlock(&sr_lock);
        pthread_mutex_lock(&ch->lock);
        cq->ch_next = ch->cqs;
        ch->cqs = cq;
        pthread_mutex_unlock(&ch->lock);
    }
    return &cq->pub;
}

/* EBUSY while a QP uses the CQ (as the kernel answers) or while events
 * handed out by ibv_get_cq_event are not acknowledged (rdma-core blocks
 * until they are; an error line is kinder than a hang). */
static int sr_cq_busy(struct sr_cq *cq)
{
    if (cq->users) {
        sr_log("ibv_destroy_cq: %d QP(s) still use the CQ", cq->users);
        return EBUSY;
    }
    pthread_mutex_lock(&cq->pub.mutex);
    unsigned unacked = cq->events_reported - cq->pub.comp_events_completed;
    pthread_mutex_unlock(&cq->pub.mutex);
    if (unacked) {
        sr_log("ibv_destroy_cq: %u completion event(s) not acknowledged (ibv_ack_cq_events)", unacked);
        return EBUSY;
    }
    return 0;
}

/* The CQ leaves its channel; its events still counted in the eventfd are
 * dropped, as the kernel drops them: ibv_get_cq_event skips that many. No
 * QP uses the CQ, so no one pushes into it any more. */
static void sr_cq_leave_channel(struct sr_cq *cq)
{
    struct sr_channel *ch = (struct sr_channel *)cq->pub.channel;
    pthread_mutex_lock(&ch->lock);
    for (struct sr_cq **pp = &ch->cqs; *pp; pp = &(*pp)->ch_next)
        if (*pp == cq) {
            *pp = cq->ch_next;
            break;
        }
    sr_shm_lock(&cq->s->lock);
    ch->dead += cq->s->events;
    cq->s->events = 0;
    pthread_mutex_unlock(&cq->s->lock);
    pthread_mutex_unlock(&ch->lock);
}

SR_API int ibv_destroy_cq(struct ibv_cq *pub)
{
    struct sr_cq *cq = (struct sr_cq *)pub;
    if (sr_stale(cq->epoch, "ibv_destroy_cq"))
        return EPERM;
    pthread_mutex_lock(&sr_lock);
    int rc = sr_cq_busy(cq);
    if (!rc && pub->channel)
        pub->channel->refcnt--;
    pthread_mutex_unlock(&sr_lock);
    if (rc)
        return rc;
    if (pub->channel)
        sr_cq_leave_channel(cq);
    cq->epoch = 0;
    sr_seg_free(cq->off, cq->size);
    free(cq);
    return 0;
}

SR_API int ibv_resize_cq(struct ibv_cq *cq, int cqe)
{
    (void)cq; (void)cqe;
    sr_log("ibv_resize_cq: not supported by softrdma");
    return EOPNOTSUPP;
}

int sr_shm_cq_reserve(struct sr_shm_cq *s)
{
    sr_shm_lock(&s->lock);
    int ok = !s->overflow && s->count + s->reserved < s->cap;
    if (ok)
        s->reserved++;
    sr_shm_unlock(&s->lock);
    return ok ? 0 : -1;
}

void sr_shm_cq_unreserve(struct sr_shm_cq *s)
{
    sr_shm_lock(&s->lock);
    s->reserved--;
    sr_shm_unlock(&s->lock);
}

void sr_channel_signal(int evfd)
{
    uint64_t one = 1;
    if (sr_sys_write(evfd, &one, sizeof one) != sizeof one)
        sr_log("completion channel: event lost: %s", strerror(errno));
}

/* sr_shm_cq_add's body; s->lock held. *wake is set, never cleared. */
static int sr_shm_cq_add_locked(struct sr_shm_cq *s, const struct ibv_wc *wc,
                                const struct sr_wc_src *src, int evfd,
                                uint32_t *overrun_state, int resv, int *wake)
{
    int rc = 0;
    if (resv)
        s->reserved--;
    uint32_t cap = s->cap;
    if (s->count + s->reserved >= cap) {
        if (overrun_state)   /* before the overrun is visible */
            __atomic_store_n(overrun_state, IBV_QPS_ERR, __ATOMIC_RELEASE);
        if (!s->overflow)
            sr_log("CQ overflow: more than %u completions not polled", cap);
        __atomic_store_n(&s->overflow, 1, __ATOMIC_RELEASE);
        rc = -1;
    } else {
        struct sr_shm_cqe *e = &s->ring[(s->head + s->count) % cap];
        e->wc = *wc;
        e->src = *src;
        /* count is also read without the lock (empty polls): atomic,
         * and ordered before the look at `armed` (see sr_req_notify_cq) */
        __atomic_store_n(&s->count, s->count + 1, __ATOMIC_SEQ_CST);
    }
    if (s->has_channel && evfd >= 0 && __atomic_exchange_n(&s->armed, 0, __ATOMIC_SEQ_CST)) {
        s->events++;
        *wake = 1;
    }
    return rc;
}

int sr_shm_cq_add(struct sr_shm_cq *s, const struct ibv_wc *wc, const struct sr_wc_src *src,
                  int evfd, uint32_t *overrun_state, int resv, int *wake)
{
    *wake = 0;
    sr_shm_lock(&s->lock);
    int rc = sr_shm_cq_add_locked(s, wc, src, evfd, overrun_state, resv, wake);
    sr_shm_unlock(&s->lock);
    return rc;
}

int sr_shm_cq_push(struct sr_shm_cq *s, const struct ibv_wc *wc, const struct sr_wc_src *src,
                   int evfd, uint32_t *overrun_state)
{
    int wake, rc = sr_shm_cq_add(s, wc, src, evfd, overrun_state, 0, &wake);
    if (wake)
        sr_channel_signal(evfd);
    return rc;
}

int sr_cq_push(struct sr_cq *cq, const struct ibv_wc *wc, struct sr_qp *qp, int recv)
{
    struct sr_wc_src src = { .qp_off = qp->s_off, .gen = qp->s->gen,
                             .sq_upto = qp->sq_head, .recv = (uint32_t)recv };
    int wake, evfd = sr_cq_evfd(cq);
    int rc = sr_shm_cq_add(cq->s, wc, &src, evfd, &qp->s->state, 0, &wake);
    if (wake)
        sr_wake_fd(evfd, 1);    /* our own channel: after sr_lock on the device thread */
    if (rc)
        qp->pub.state = IBV_QPS_ERR;
    return rc;
}

void sr_cq_flush_begin(struct sr_cq_flush *f, struct sr_cq *cq, struct sr_qp *qp, int recv)
{
    *f = (struct sr_cq_flush){ .cq = cq, .qp = qp, .recv = recv };
    sr_shm_lock(&cq->s->lock);
}

void sr_cq_flush_add(struct sr_cq_flush *f, uint64_t wr_id, enum ibv_wc_opcode op)
{
    struct ibv_wc wc = { .wr_id = wr_id, .status = IBV_WC_WR_FLUSH_ERR,
                         .opcode = op, .qp_num = f->qp->pub.qp_num };
    struct sr_wc_src src = { .qp_off = f->qp->s_off, .gen = f->qp->s->gen,
                             .sq_upto = f->qp->sq_head, .recv = (uint32_t)f->recv };
    /* the QP is already in ERR: an overrun here changes nothing more */
    sr_shm_cq_add_locked(f->cq->s, &wc, &src, sr_cq_evfd(f->cq), &f->qp->s->state, 0, &f->wake);
}

void sr_cq_flush_end(struct sr_cq_flush *f)
{
    sr_shm_unlock(&f->cq->s->lock);
    if (f->wake)
        sr_wake_fd(sr_cq_evfd(f->cq), 1);
}

/* The application has polled a completion: the slots it covers are free
 * for new posts (see struct sr_wc_src). Called under the CQ's lock. The
 * entry may have been written by a peer: only an offset inside our own
 * segment whose block carries the generation is followed. */
static struct sr_shm_qp *sr_cq_release(struct sr_seg_hdr *seg, uint64_t seg_size,
                                       const struct sr_wc_src *src)
{
    if (!src->gen || src->qp_off < sizeof *seg || src->qp_off >= seg_size - sizeof(struct sr_shm_qp) ||
        (src->qp_off & 4095))
        return NULL;
    struct sr_shm_qp *q = (struct sr_shm_qp *)((char *)seg + src->qp_off);
    if (__atomic_load_n(&q->gen, __ATOMIC_ACQUIRE) != src->gen)
        return NULL;
    if (src->recv)
        __atomic_fetch_add(&q->rq_retired, 1, __ATOMIC_RELEASE);
    else
        __atomic_store_n(&q->sq_retired, src->sq_upto, __ATOMIC_RELEASE);
    return q;
}

/* QPs of receives just taken whose requests wait for answers on their
 * streams (sr_req_catch_up); a few per poll, the rest are the device
 * thread's as before. */
#define SR_CATCH_UP_MAX 4
struct sr_cq_due { struct sr_shm_qp *qp[SR_CATCH_UP_MAX]; int n; };

static void sr_cq_note_due(struct sr_cq_due *d, struct sr_shm_qp *q, const struct sr_wc_src *src)
{
    if (!q || !src->recv || !__atomic_load_n(&q->req_due, __ATOMIC_ACQUIRE))
        return;
    for (int i = 0; i < d->n; i++)
        if (d->qp[i] == q)
            return;
    if (d->n < SR_CATCH_UP_MAX)
        d->qp[d->n++] = q;
}

/* Takes up to n completions; -EOVERFLOW once the CQ has overrun. */
static int sr_cq_take(struct sr_cq *cq, int n, struct ibv_wc *wc, struct sr_cq_due *due)
{
    struct sr_shm_cq *s = cq->s;
    struct sr_seg_hdr *seg = (struct sr_seg_hdr *)((char *)s - cq->off);
    int got = 0;
    if (!__atomic_load_n(&s->count, __ATOMIC_SEQ_CST) && !__atomic_load_n(&s->overflow, __ATOMIC_ACQUIRE))
        return 0;       /* nothing there: no lock for an empty poll */
    sr_shm_lock(&s->lock);
    if (s->overflow) {
        pthread_mutex_unlock(&s->lock);
        return -EOVERFLOW;
    }
    while (got < n && s->count) {
        struct sr_shm_cqe *e = &s->ring[s->head];
        wc[got++] = e->wc;
        sr_cq_note_due(due, sr_cq_release(seg, cq->seg_size, &e->src), &e->src);
        s->head = (s->head + 1) % s->cap;
        __atomic_store_n(&s->count, s->count - 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&s->lock);
    return got;
}

int sr_poll_cq(struct ibv_cq *pub, int n, struct ibv_wc *wc)
{
    struct sr_cq *cq = (struct sr_cq *)pub;
    if (cq->epoch != sr_epoch) {
        sr_stale(cq->epoch, "ibv_poll_cq");
        return -EPERM;
    }
    struct sr_cq_due due = { .n = 0 };
    int got = sr_cq_take(cq, n, wc, &due);
    if (got == 0) {
        /* empty: let the device handle what already arrived, look again */
        sr_nic_progress();
        got = sr_cq_take(cq, n, wc, &due);
    }
    if (got < 0 || !due.n)
        return got;
    /* a reply was taken: the answers to what it replies to are read now,
     * and their completions come with it when this CQ holds them */
    for (int i = 0; i < due.n; i++)
        sr_req_catch_up(due.qp[i]);
    struct sr_cq_due more = { .n = 0 };
    int m = got < n ? sr_cq_take(cq, n - got, wc + got, &more) : 0;
    for (int i = 0; i < more.n; i++)
        sr_req_catch_up(more.qp[i]);
    return m > 0 ? got + m : got;
}

int sr_req_notify_cq(struct ibv_cq *pub, int solicited_only)
{
    struct sr_cq *cq = (struct sr_cq *)pub;
    (void)solicited_only;
    if (sr_stale(cq->epoch, "ibv_req_notify_cq"))
        return EPERM;
    /* No lock, no system call: a pusher publishes its entry (count,
     * seq_cst) before it takes the flag (exchange, seq_cst), and the
     * application polls after arming (count read seq_cst), so either the
     * poll sees the entry or the pusher sees the flag and signals. */
    __atomic_store_n(&cq->s->armed, 1, __ATOMIC_SEQ_CST);
    return 0;
}

/* A CQ of the channel with an event due, taking that event; NULL if the
 * count read belonged to a destroyed CQ (or to a push still on its way). */
static struct sr_cq *sr_channel_take(struct sr_channel *ch)
{
    struct sr_cq *found = NULL;
    pthread_mutex_lock(&ch->lock);
    for (struct sr_cq *c = ch->cqs; c && !found; c = c->ch_next) {
        sr_shm_lock(&c->s->lock);
        if (c->s->events) {
            c->s->events--;
            found = c;
        }
        pthread_mutex_unlock(&c->s->lock);
    }
    if (!found && ch->dead)
        ch->dead--;
    pthread_mutex_unlock(&ch->lock);
    return found;
}

SR_API int ibv_get_cq_event(struct ibv_comp_channel *pub, struct ibv_cq **cq, void **cq_context)
{
    struct sr_channel *ch = (struct sr_channel *)pub;
    if (sr_stale(ch->epoch, "ibv_get_cq_event"))
        return -1;
    /* Each read takes one event (semaphore eventfd); events of destroyed
     * CQs are skipped (the kernel drops them at destroy), so this ends
     * when a live CQ's event comes or the fd has no more (EAGAIN). The
     * push counts the event before it adds to the fd, so a count read is
     * always matched; the bound only guards against a corrupted count. */
    for (int i = 0; i < 1 << 20; i++) {
        uint64_t v;
        ssize_t n = sr_sys_read(pub->fd, &v, sizeof v);
        if (n != sizeof v) {
            if (n >= 0)
                errno = EIO;
            return -1;
        }
        struct sr_cq *c = sr_channel_take(ch);
        if (!c)
            continue;
        pthread_mutex_lock(&c->pub.mutex);
        c->events_reported++;
        pthread_mutex_unlock(&c->pub.mutex);
        *cq = &c->pub;
        *cq_context = c->pub.cq_context;
        return 0;
    }
    errno = EIO;
    return -1;
}

SR_API void ibv_ack_cq_events(struct ibv_cq *cq, unsigned int nevents)
{
    pthread_mutex_lock(&cq->mutex);
    cq->comp_events_completed += nevents;
    pthread_cond_signal(&cq->cond);
    pthread_mutex_unlock(&cq->mutex);
}
