/* softrdma: completion channels and completion queues.
 * A channel is a pipe: the device writes the CQ pointer when an armed CQ
 * gets a completion, so its fd turns readable only after ibv_req_notify_cq. */
#include "sr_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

SR_API struct ibv_comp_channel *ibv_create_comp_channel(struct ibv_context *ctx)
{
    struct sr_channel *ch = calloc(1, sizeof *ch);
    int p[2];
    if (!ch || pipe2(p, O_CLOEXEC)) {
        int e = ch ? errno : ENOMEM;   /* EMFILE/ENFILE stay that, as a real device's */
        free(ch);
        errno = e;
        return NULL;
    }
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    ch->pub.context = ctx;
    ch->pub.fd = p[0];                  /* the application's: stays low */
    ch->wfd = sr_fd_internal(p[1]);
    ch->epoch = sr_epoch;
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
    close(pub->fd);
    close(ch->wfd);
    free(ch);
    return 0;
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
    if (!cq || !(cq->ring = calloc((size_t)cqe, sizeof *cq->ring)) ||
        !(cq->src = calloc((size_t)cqe, sizeof *cq->src))) {
        if (cq)
            free(cq->ring);
        free(cq);
        errno = ENOMEM;
        return NULL;
    }
    cq->pub.context = ctx;
    cq->pub.channel = channel;
    cq->pub.cq_context = cq_context;
    cq->pub.cqe = cqe;
    pthread_mutex_init(&cq->pub.mutex, NULL);
    pthread_cond_init(&cq->pub.cond, NULL);
    pthread_mutex_init(&cq->lock, NULL);
    cq->cap = cqe;
    cq->epoch = sr_epoch;
    if (channel) {
        pthread_mutex_lock(&sr_lock);
        channel->refcnt++;
        pthread_mutex_unlock(&sr_lock);
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
    pthread_mutex_lock(&cq->lock);
    int pending = cq->events_in_pipe > 0;
    cq->zombie = 1;
    cq->epoch = 0;
    pthread_mutex_unlock(&cq->lock);
    free(cq->ring);
    free(cq->src);
    cq->ring = NULL;
    cq->src = NULL;
    if (!pending)
        free(cq);       /* else ibv_get_cq_event frees it after its last event */
    return 0;
}

SR_API int ibv_resize_cq(struct ibv_cq *cq, int cqe)
{
    (void)cq; (void)cqe;
    sr_log("ibv_resize_cq: not supported by softrdma");
    return EOPNOTSUPP;
}

int sr_cq_push(struct sr_cq *cq, const struct ibv_wc *wc, const struct sr_wc_src *src)
{
    int wake = 0, rc = 0;
    pthread_mutex_lock(&cq->lock);
    if (cq->count == cq->cap) {
        if (src->qp)   /* before the overrun is visible */
            src->qp->pub.state = IBV_QPS_ERR;
        if (!cq->overflow)
            sr_log("CQ %p overflow: more than %d completions not polled", (void *)cq, cq->cap);
        cq->overflow = 1;
        rc = -1;
    } else {
        int at = (cq->head + cq->count) % cq->cap;
        cq->ring[at] = *wc;
        cq->src[at] = *src;
        cq->count++;
    }
    if (cq->armed && cq->pub.channel) {
        cq->armed = 0;
        cq->events_in_pipe++;
        wake = 1;
    }
    pthread_mutex_unlock(&cq->lock);
    if (wake) {
        struct ibv_cq *p = &cq->pub;
        if (write(((struct sr_channel *)cq->pub.channel)->wfd, &p, sizeof p) != sizeof p) {
            sr_log("completion channel full: event for CQ %p lost", (void *)cq);
            pthread_mutex_lock(&cq->lock);
            cq->events_in_pipe--;
            pthread_mutex_unlock(&cq->lock);
        }
    }
    return rc;
}

void sr_cq_forget_qp(struct sr_cq *cq, struct sr_qp *qp)
{
    pthread_mutex_lock(&cq->lock);
    for (int i = 0; i < cq->count; i++)
        if (cq->src[(cq->head + i) % cq->cap].qp == qp)
            cq->src[(cq->head + i) % cq->cap].qp = NULL;
    pthread_mutex_unlock(&cq->lock);
}

/* The application has polled a completion: the slots it covers are free
 * for new posts (see struct sr_wc_src). Called under cq->lock. */
static void sr_cq_release(const struct sr_wc_src *src)
{
    if (!src->qp)
        return;
    if (src->recv)
        __atomic_fetch_add(&src->qp->rq_retired, 1, __ATOMIC_RELEASE);
    else
        __atomic_store_n(&src->qp->sq_retired, src->sq_upto, __ATOMIC_RELEASE);
}

/* Takes up to n completions; -EOVERFLOW once the CQ has overrun. */
static int sr_cq_take(struct sr_cq *cq, int n, struct ibv_wc *wc)
{
    int got = 0;
    pthread_mutex_lock(&cq->lock);
    if (cq->overflow) {
        pthread_mutex_unlock(&cq->lock);
        return -EOVERFLOW;
    }
    while (got < n && cq->count) {
        wc[got++] = cq->ring[cq->head];
        sr_cq_release(&cq->src[cq->head]);
        cq->head = (cq->head + 1) % cq->cap;
        cq->count--;
    }
    pthread_mutex_unlock(&cq->lock);
    return got;
}

int sr_poll_cq(struct ibv_cq *pub, int n, struct ibv_wc *wc)
{
    struct sr_cq *cq = (struct sr_cq *)pub;
    if (cq->epoch != sr_epoch) {
        sr_stale(cq->epoch, "ibv_poll_cq");
        return -EPERM;
    }
    int got = sr_cq_take(cq, n, wc);
    if (got == 0) {
        /* empty: let the device handle what already arrived, look again */
        sr_nic_progress();
        got = sr_cq_take(cq, n, wc);
    }
    return got;
}

int sr_req_notify_cq(struct ibv_cq *pub, int solicited_only)
{
    struct sr_cq *cq = (struct sr_cq *)pub;
    (void)solicited_only;
    if (sr_stale(cq->epoch, "ibv_req_notify_cq"))
        return EPERM;
    pthread_mutex_lock(&cq->lock);
    cq->armed = 1;
    pthread_mutex_unlock(&cq->lock);
    return 0;
}

SR_API int ibv_get_cq_event(struct ibv_comp_channel *pub, struct ibv_cq **cq, void **cq_context)
{
    struct sr_channel *ch = (struct sr_channel *)pub;
    if (sr_stale(ch->epoch, "ibv_get_cq_event"))
        return -1;
    /* Events of destroyed CQs are skipped (the kernel drops them at
     * destroy); each iteration consumes one event, so this ends when the
     * pipe has no more (EAGAIN) or a live CQ's event comes. */
    for (;;) {
        struct ibv_cq *p;
        ssize_t n = read(pub->fd, &p, sizeof p);
        if (n != sizeof p) {
            if (n >= 0)
                errno = EIO;
            return -1;
        }
        struct sr_cq *c = (struct sr_cq *)p;
        pthread_mutex_lock(&c->lock);
        c->events_in_pipe--;
        int zombie = c->zombie, last = !c->events_in_pipe;
        pthread_mutex_unlock(&c->lock);
        if (zombie) {
            if (last)
                free(c);
            continue;
        }
        pthread_mutex_lock(&p->mutex);
        c->events_reported++;
        pthread_mutex_unlock(&p->mutex);
        *cq = p;
        *cq_context = p->cq_context;
        return 0;
    }
}

SR_API void ibv_ack_cq_events(struct ibv_cq *cq, unsigned int nevents)
{
    pthread_mutex_lock(&cq->mutex);
    cq->comp_events_completed += nevents;
    pthread_cond_signal(&cq->cond);
    pthread_mutex_unlock(&cq->mutex);
}
