/* softrdma: a QP's send queue arrays (the work requests, their gather
 * lists and the inline copies), as one block, and the last few freed
 * blocks kept for the next QP of the same shape.
 *
 * Under one connection per request every connection made and freed them
 * (about 75 KiB for rsockets' queue sizes): calloc's zeroing of memory
 * that the heap trims (the engine's and the device thread's malloc_trim)
 * had given back, so page faults, was 3-3.5% of ab's and nginx's CPU per
 * connection. A kept block is handed out as it is, not zeroed: every
 * field of a send work request and its gather list is written by
 * ibv_post_send before anything reads it (the ring is read only in
 * [head, tail)), and inline bytes are copied in at post time.
 *
 * Blocks of a destroyed QP come back through the device thread's batch
 * end (sr_defer_call: its current batch may still look at them). Blocks of
 * another epoch (a forked child's copies of its parent's) are freed, never
 * handed out. Locking: sr_qpq_lock guards sr_qpq[] (taken by application
 * threads in ibv_create_qp and by the device thread; never while waiting
 * for another lock). */
#include "sr_internal.h"
#include <stdlib.h>

#define SR_QPQ_KEEP 16

struct sr_qpq {
    size_t ns, sg, inl;            /* shape: send WRs, SGEs per WR, inline bytes per WR */
    unsigned epoch;
    /* then: ns sr_swqe, ns * sg iovec, ns * inl + 1 bytes */
};

static pthread_mutex_t sr_qpq_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sr_qpq *sr_qpq[SR_QPQ_KEEP];
static uint64_t sr_qpq_reused;     /* blocks handed out again (relaxed) */

/* Kept blocks now and blocks reused so far (tests, through dlsym). */
SR_API void sr_qpq_stats(uint64_t *kept, uint64_t *reused)
{
    uint64_t n = 0;
    pthread_mutex_lock(&sr_qpq_lock);
    for (int i = 0; i < SR_QPQ_KEEP; i++)
        n += sr_qpq[i] != NULL;
    pthread_mutex_unlock(&sr_qpq_lock);
    *kept = n;
    *reused = __atomic_load_n(&sr_qpq_reused, __ATOMIC_RELAXED);
}

static size_t sr_qpq_size(size_t ns, size_t sg, size_t inl)
{
    return sizeof(struct sr_qpq) + ns * sizeof(struct sr_swqe) + ns * sg * sizeof(struct iovec) +
           ns * inl + 1;
}

static struct sr_qpq *sr_qpq_take(size_t ns, size_t sg, size_t inl)
{
    struct sr_qpq *b = NULL;
    pthread_mutex_lock(&sr_qpq_lock);
    for (int i = 0; i < SR_QPQ_KEEP && !b; i++)
        if (sr_qpq[i] && sr_qpq[i]->ns == ns && sr_qpq[i]->sg == sg && sr_qpq[i]->inl == inl &&
            sr_qpq[i]->epoch == sr_epoch) {
            b = sr_qpq[i];
            sr_qpq[i] = NULL;
        }
    pthread_mutex_unlock(&sr_qpq_lock);
    if (b)
        __atomic_add_fetch(&sr_qpq_reused, 1, __ATOMIC_RELAXED);
    return b;
}

int sr_qpq_alloc(struct sr_qp *qp)
{
    size_t ns = qp->cap.max_send_wr;
    size_t sg = qp->cap.max_send_sge ? qp->cap.max_send_sge : 1;
    size_t inl = qp->inl_slot;      /* a WQE's own slot (sr_inline_slot), not the QP's 64 KiB */
    struct sr_qpq *b = sr_qpq_take(ns, sg, inl);
    if (!b) {
        b = calloc(1, sr_qpq_size(ns, sg, inl));
        if (!b)
            return -1;
        *b = (struct sr_qpq){ .ns = ns, .sg = sg, .inl = inl };
    }
    b->epoch = sr_epoch;
    qp->sq_block = b;
    qp->sq = (struct sr_swqe *)(b + 1);
    qp->sq_iov = (struct iovec *)(qp->sq + ns);
    qp->sq_inline = (char *)(qp->sq_iov + ns * sg);
    for (size_t i = 0; i < ns; i++)
        qp->sq[i].iov = &qp->sq_iov[i * sg];
    return 0;
}

/* Keeps the block for the next QP of its shape, or frees it. */
void sr_qpq_release(void *p)
{
    struct sr_qpq *b = p, *out = b;
    if (!b)
        return;
    pthread_mutex_lock(&sr_qpq_lock);
    for (int i = 0; i < SR_QPQ_KEEP && out; i++) {
        if (sr_qpq[i] && sr_qpq[i]->epoch != sr_epoch) {
            free(sr_qpq[i]);                /* a parent's, copied at fork */
            sr_qpq[i] = NULL;
        }
        if (!sr_qpq[i] && b->epoch == sr_epoch) {
            sr_qpq[i] = b;
            out = NULL;
        }
    }
    pthread_mutex_unlock(&sr_qpq_lock);
    free(out);
}

/* Another thread may have held the lock at fork. */
static void sr_qpq_after_fork(void)
{
    pthread_mutex_init(&sr_qpq_lock, NULL);
}

__attribute__((constructor)) static void sr_qpq_init(void)
{
    pthread_atfork(NULL, NULL, sr_qpq_after_fork);
}
