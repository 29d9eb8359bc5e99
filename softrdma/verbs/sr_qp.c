/* softrdma: RC queue pairs: creation, state machine, posting work (UD QPs
 * share creation and receives; their own parts are in sr_ud*.c). */
#include "sr_ud.h"
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct sr_qp *sr_qps;       /* this process's QPs; guarded by sr_lock */

struct sr_qp *sr_qp_find(uint32_t qpn)
{
    for (struct sr_qp *q = sr_qps; q; q = q->next)
        if (q->pub.qp_num == qpn && q->epoch == sr_epoch)
            return q;
    return NULL;
}

struct sr_qp *sr_qp_all(void) { return sr_qps; }

/* Generations of QP blocks: unique in the process, never 0. */
static uint32_t sr_qp_gen;
static uint32_t sr_qp_next_gen(void)
{
    uint32_t g = __atomic_add_fetch(&sr_qp_gen, 1, __ATOMIC_RELAXED);
    return g ? g : __atomic_add_fetch(&sr_qp_gen, 1, __ATOMIC_RELAXED);
}

/* The receive side goes to the shared segment (a peer's sender takes
 * receives from it); the send queue stays private. */
static int sr_qp_alloc_shared(struct sr_qp *qp, struct sr_pd *pd, struct sr_cq *rcq)
{
    struct sr_seg_hdr *seg = sr_seg();
    uint32_t nr = qp->cap.max_recv_wr ? qp->cap.max_recv_wr : 1;
    size_t rg = qp->cap.max_recv_sge ? qp->cap.max_recv_sge : 1;
    size_t rsz = (sizeof(struct sr_rwqe) + rg * sizeof(struct sr_sge_sh) + 7) & ~(size_t)7;
    qp->s_size = sizeof *qp->s + nr * rsz;
    qp->s_off = seg ? sr_seg_alloc(qp->s_size) : 0;
    if (!qp->s_off)
        return -1;
    struct sr_shm_qp *b = qp->s = (struct sr_shm_qp *)((char *)seg + qp->s_off);
    /* b->lock was initialised by sr_seg_alloc, once for the segment's life */
    b->state = IBV_QPS_RESET;
    b->pd = pd->pub.handle;
    b->max_recv_wr = nr;
    b->rwqe_size = (uint32_t)rsz;
    b->recv_cq_off = rcq->off;
    b->slow_only = sr_knobs.delay_ms > 0 || sr_knobs.force_rnr > 0 || sr_knobs.ack_delay_ms > 0;
    __atomic_store_n(&b->gen, sr_qp_next_gen(), __ATOMIC_RELEASE);
    return 0;
}

/* Bytes of a WQE's own inline staging slot: what the QP asked for, at
 * least 64 and at most SR_INLINE_SLOT (a program asking for little, as the
 * rsocket engine's 64, keeps the small queue it had before RC QPs granted
 * 64 KiB; larger inline data that must wait gets a buffer of its own). */
static size_t sr_inline_slot(uint32_t asked)
{
    return asked < 64 ? 64 : asked > SR_INLINE_SLOT ? SR_INLINE_SLOT : asked;
}

/* Peers holding the block see its generation change and stop using it. */
static void sr_qp_free_shared(struct sr_qp *qp)
{
    if (!qp->s)
        return;
    sr_shm_lock(&qp->s->lock);
    __atomic_store_n(&qp->s->gen, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&qp->s->lock);
    sr_seg_free(qp->s_off, qp->s_size);
    qp->s = NULL;
}

void sr_swqe_release(struct sr_swqe *s)
{
    free(s->heap);
    s->heap = NULL;
}

/* Every WQE's heap (reset, destroy: the queue is dropped whole). */
static void sr_qp_release_all(struct sr_qp *qp, void (*f)(void *))
{
    for (uint32_t i = 0; qp->sq && i < qp->cap.max_send_wr; i++) {
        f(qp->sq[i].heap);
        qp->sq[i].heap = NULL;
    }
}

static void sr_qp_free(struct sr_qp *qp)
{
    sr_qp_free_shared(qp);
    sr_qpq_release(qp->sq_block);
    free(qp);
}

void sr_qp_set_state(struct sr_qp *qp, enum ibv_qp_state st)
{
    qp->pub.state = st;
    __atomic_store_n(&qp->s->state, (uint32_t)st, __ATOMIC_RELEASE);
}

void sr_qp_quiesce(void)
{
    for (struct sr_qp *q = sr_qps; q; q = q->next) {
        if (q->epoch != sr_epoch)
            continue;   /* a parent's, in a forked child: not mapped here */
        sr_shm_lock(&q->s->lock);
        pthread_mutex_unlock(&q->s->lock);
    }
}

static int sr_qp_check_attr(struct ibv_pd *pd, struct ibv_qp_init_attr *a)
{
    if (!pd || sr_stale(((struct sr_pd *)pd)->epoch, "ibv_create_qp"))
        return errno;
    if (a->qp_type != IBV_QPT_RC && a->qp_type != IBV_QPT_UD) {
        sr_log("ibv_create_qp: QP type %d not supported (softrdma models RC and UD)", a->qp_type);
        return EOPNOTSUPP;
    }
    if (a->srq) {
        sr_log("ibv_create_qp: shared receive queues are not supported");
        return EOPNOTSUPP;
    }
    if (!a->send_cq || !a->recv_cq) {
        sr_log("ibv_create_qp: send_cq and recv_cq are required");
        return EINVAL;
    }
    uint32_t max_inline = a->qp_type == IBV_QPT_RC ? SR_MAX_INLINE : SR_MAX_INLINE_UD;
    if (a->cap.max_send_wr > SR_MAX_QP_WR || a->cap.max_recv_wr > SR_MAX_QP_WR ||
        a->cap.max_send_sge > SR_MAX_SGE || a->cap.max_recv_sge > SR_MAX_SGE ||
        a->cap.max_inline_data > max_inline) {
        sr_log("ibv_create_qp: capabilities exceed device limits (wr %d, sge %d, inline %u)",
               SR_MAX_QP_WR, SR_MAX_SGE, max_inline);
        return EINVAL;
    }
    return 0;
}

/* A QP keeps its PD and CQs in use (they refuse to go with EBUSY). */
static void sr_qp_hold(struct sr_qp *qp, int n)
{
    ((struct sr_pd *)qp->pub.pd)->users += n;
    ((struct sr_cq *)qp->pub.send_cq)->users += n;
    if (qp->pub.recv_cq != qp->pub.send_cq)
        ((struct sr_cq *)qp->pub.recv_cq)->users += n;
}

SR_API struct ibv_qp *ibv_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *a)
{
    int err = sr_qp_check_attr(pd, a);
    if (err) {
        errno = err;
        return NULL;
    }
    if (sr_nic_start())
        return NULL;
    struct sr_qp *qp = calloc(1, sizeof *qp);
    if (!qp) {
        errno = ENOMEM;
        return NULL;
    }
    qp->cap = a->cap;
    qp->inl_slot = (uint32_t)sr_inline_slot(a->cap.max_inline_data);
    if (!qp->cap.max_send_wr)
        qp->cap.max_send_wr = 1;
    if (a->qp_type == IBV_QPT_RC)
        qp->cap.max_inline_data = SR_MAX_INLINE;    /* see SR_MAX_INLINE */
    else if (qp->cap.max_inline_data < 64)
        qp->cap.max_inline_data = 64;
    a->cap = qp->cap;
    qp->epoch = sr_epoch;
    qp->sq_sig_all = a->sq_sig_all;
    qp->out.fd = -1;
    qp->fast.evfd = -1;
    qp->pub.context = pd->context;
    qp->pub.qp_context = a->qp_context;
    qp->pub.pd = pd;
    qp->pub.send_cq = a->send_cq;
    qp->pub.recv_cq = a->recv_cq;
    qp->pub.qp_type = a->qp_type;
    qp->pub.state = IBV_QPS_RESET;
    pthread_mutex_init(&qp->pub.mutex, NULL);
    pthread_cond_init(&qp->pub.cond, NULL);
    if (sr_qpq_alloc(qp) ||
        sr_qp_alloc_shared(qp, (struct sr_pd *)pd, (struct sr_cq *)a->recv_cq)) {
        sr_qp_free(qp);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&sr_lock);
    if (sr_qpn_alloc(qp)) {
        pthread_mutex_unlock(&sr_lock);
        sr_log("ibv_create_qp: cannot register a QP number in %s: %s", sr_fabric_dir(), strerror(errno));
        sr_qp_free(qp);
        return NULL;
    }
    qp->pub.handle = qp->pub.qp_num;
    qp->s->qpn = qp->pub.qp_num;
    if (a->qp_type == IBV_QPT_UD && sr_ud_create(qp)) {
        sr_qpn_free(qp);
        pthread_mutex_unlock(&sr_lock);
        sr_qp_free(qp);
        errno = ENOMEM;
        return NULL;
    }
    sr_qp_hold(qp, 1);
    qp->next = sr_qps;
    sr_qps = qp;
    pthread_mutex_unlock(&sr_lock);
    return &qp->pub;
}

/* Completions of qp still in its CQs stop counting for it (they carry
 * the old generation): after a reset its queues start empty. Peers that
 * attached to the old generation fall back to their stream. */
static void sr_qp_new_gen(struct sr_qp *qp)
{
    sr_shm_lock(&qp->s->lock);
    __atomic_store_n(&qp->s->gen, sr_qp_next_gen(), __ATOMIC_RELEASE);
    qp->s->rq_head = qp->s->rq_tail = 0;
    __atomic_store_n(&qp->s->sq_retired, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&qp->s->rq_retired, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&qp->s->lock);
}

SR_API int ibv_destroy_qp(struct ibv_qp *pub)
{
    struct sr_qp *qp = (struct sr_qp *)pub;
    if (sr_stale(qp->epoch, "ibv_destroy_qp"))
        return EPERM;
    pthread_mutex_lock(&sr_lock);
    sr_req_close(qp);
    if (qp->in)
        sr_resp_detach(qp->in);
    sr_link_untrack(qp);
    sr_qp_hold(qp, -1);
    sr_ud_destroy(qp);
    sr_qpn_free(qp);
    for (struct sr_qp **pp = &sr_qps; *pp; pp = &(*pp)->next)
        if (*pp == qp) {
            *pp = qp->next;
            break;
        }
    qp->epoch = 0;
    sr_qp_free_shared(qp);
    sr_qp_release_all(qp, sr_defer_free);
    sr_defer_call(sr_qpq_release, qp->sq_block);
    sr_defer_free(qp);
    pthread_mutex_unlock(&sr_lock);
    return 0;
}

void sr_qp_complete(struct sr_qp *qp, int recv, const struct ibv_wc *wc)
{
    /* A CQ overrun puts the QP in error (its state changes inside the
     * push, before ibv_poll_cq can report -EOVERFLOW). */
    if (sr_cq_push((struct sr_cq *)(recv ? qp->pub.recv_cq : qp->pub.send_cq), wc, qp, recv))
        sr_qp_to_error(qp);
}

static enum ibv_wc_opcode sr_wc_opcode(enum ibv_wr_opcode op)
{
    switch (op) {
    case IBV_WR_RDMA_WRITE:
    case IBV_WR_RDMA_WRITE_WITH_IMM: return IBV_WC_RDMA_WRITE;
    case IBV_WR_RDMA_READ: return IBV_WC_RDMA_READ;
    default: return IBV_WC_SEND;
    }
}

/* ERR: streams close, every outstanding work request completes flushed.
 * Safe on a QP already in ERR (flushes what was posted since). */
void sr_qp_to_error(struct sr_qp *qp)
{
    sr_qp_set_state(qp, IBV_QPS_ERR);
    sr_req_close(qp);
    if (qp->in)
        sr_resp_detach(qp->in);
    uint32_t ns = qp->cap.max_send_wr;
    struct sr_cq_flush f;
    if (qp->sq_head != qp->sq_tail) {
        sr_cq_flush_begin(&f, (struct sr_cq *)qp->pub.send_cq, qp, 0);
        while (qp->sq_head != qp->sq_tail) {
            struct sr_swqe *s = &qp->sq[qp->sq_head++ % ns];  /* covers up to sq_head */
            sr_swqe_release(s);
            sr_cq_flush_add(&f, s->wr_id, sr_wc_opcode(s->opcode));
        }
        sr_cq_flush_end(&f);
    }
    qp->sq_tx = qp->sq_head;
    sr_req_note_due(qp);
    qp->tx_off = 0;
    qp->rd_left = 0;
    /* a peer's sender may be taking a receive: the block lock orders us */
    struct sr_shm_qp *b = qp->s;
    sr_shm_lock(&b->lock);
    if (b->rq_head != b->rq_tail) {
        sr_cq_flush_begin(&f, (struct sr_cq *)qp->pub.recv_cq, qp, 1);
        while (b->rq_head != b->rq_tail)
            sr_cq_flush_add(&f, sr_rwqe_at(b, b->rq_head++)->wr_id, IBV_WC_RECV);
        pthread_mutex_unlock(&b->lock);
        sr_cq_flush_end(&f);            /* signals with no lock held */
        return;
    }
    pthread_mutex_unlock(&b->lock);
}

void sr_qp_reset(struct sr_qp *qp)
{
    sr_link_untrack(qp);
    sr_req_close(qp);
    if (qp->in)
        sr_resp_detach(qp->in);
    sr_qp_new_gen(qp);
    sr_qp_release_all(qp, free);
    qp->sq_head = qp->sq_tx = qp->sq_tail = 0;
    sr_req_note_due(qp);
    qp->tx_off = qp->rd_left = qp->resp_got = 0;
    qp->out_dead = 0;
    qp->out_idle = 0;
    sr_qp_set_state(qp, IBV_QPS_RESET);
}

static int sr_transition_ok(enum ibv_qp_state from, enum ibv_qp_state to)
{
    if (to == IBV_QPS_RESET || to == IBV_QPS_ERR)
        return 1;
    switch (from) {
    case IBV_QPS_RESET: return to == IBV_QPS_INIT;
    case IBV_QPS_INIT: return to == IBV_QPS_INIT || to == IBV_QPS_RTR;
    case IBV_QPS_RTR: return to == IBV_QPS_RTS;
    case IBV_QPS_RTS: return to == IBV_QPS_RTS || to == IBV_QPS_SQD;
    case IBV_QPS_SQD: return to == IBV_QPS_RTS || to == IBV_QPS_SQD;
    default: return 0;
    }
}

static int sr_modify_locked(struct sr_qp *qp, struct ibv_qp_attr *a, int mask)
{
    enum ibv_qp_state to = (mask & IBV_QP_STATE) ? a->qp_state : qp->pub.state;
    if (!sr_transition_ok(qp->pub.state, to)) {
        sr_log("ibv_modify_qp: QP %u cannot go from state %d to %d", qp->pub.qp_num,
               qp->pub.state, to);
        return EINVAL;
    }
    if (to == IBV_QPS_RTR && qp->pub.state == IBV_QPS_INIT && !(mask & IBV_QP_DEST_QPN)) {
        sr_log("ibv_modify_qp: INIT->RTR of QP %u needs IBV_QP_DEST_QPN", qp->pub.qp_num);
        return EINVAL;
    }
    if (mask & IBV_QP_ACCESS_FLAGS) {
        qp->access = (int)a->qp_access_flags;
        __atomic_store_n(&qp->s->access, a->qp_access_flags, __ATOMIC_RELEASE);
    }
    if (mask & IBV_QP_PORT)
        qp->port = a->port_num;
    if (mask & IBV_QP_DEST_QPN)
        qp->dest_qpn = a->dest_qp_num;
    if (mask & IBV_QP_AV) {
        /* A zero GID or a non-global route stays unchecked (LID-style
         * programs); any other GID must belong to the destination host. */
        static const uint8_t zero[16];
        qp->dgid = a->ah_attr.grh.dgid;
        qp->has_dgid = a->ah_attr.is_global && memcmp(qp->dgid.raw, zero, 16);
    }
    if (mask & IBV_QP_RNR_RETRY)
        qp->rnr_retry = a->rnr_retry;
    if (mask & IBV_QP_RETRY_CNT)
        qp->retry_cnt = a->retry_cnt;
    if (mask & IBV_QP_TIMEOUT)
        qp->timeout = a->timeout;
    if (to == IBV_QPS_ERR) {
        if (qp->pub.state != IBV_QPS_ERR)
            sr_qp_to_error(qp);
        return 0;
    }
    if (to == IBV_QPS_RESET) {
        sr_qp_reset(qp);
        return 0;
    }
    enum ibv_qp_state from = qp->pub.state;
    /* no descriptor for the stream (EMFILE): the QP stays in INIT */
    if (to == IBV_QPS_RTR && from == IBV_QPS_INIT) {
        if (qp->pre.pid > 0 && sr_fast_preattach(qp, &qp->pre) == 0) {
            /* reached directly from the start: the stream opens when a
             * request needs the peer's device, as after an idle close */
            qp->out_idle = 1;
        } else {
            if (sr_req_connect(qp))
                return errno;
            sr_req_attach_wait(qp);
        }
        qp->pre.pid = 0;
    }
    sr_qp_set_state(qp, to);
    if (to == IBV_QPS_RTR && from == IBV_QPS_INIT)   /* the path's interface */
        sr_link_track(qp, (mask & IBV_QP_AV) && a->ah_attr.port_num ? a->ah_attr.port_num : qp->port);
    if (to == IBV_QPS_RTR && from == IBV_QPS_INIT) {
        if (qp->in && qp->in->stalled)
            sr_resp_resume(qp->in);
    }
    if (to == IBV_QPS_RTS)
        sr_req_kick(qp);
    return 0;
}

SR_API int ibv_modify_qp(struct ibv_qp *pub, struct ibv_qp_attr *a, int mask)
{
    struct sr_qp *qp = (struct sr_qp *)pub;
    if (sr_stale(qp->epoch, "ibv_modify_qp"))
        return EPERM;
    pthread_mutex_lock(&sr_lock);
    int rc = qp->ud ? sr_ud_modify(qp, a, mask) : sr_modify_locked(qp, a, mask);
    pthread_mutex_unlock(&sr_lock);
    return rc;
}

SR_API int ibv_query_qp(struct ibv_qp *pub, struct ibv_qp_attr *a, int mask,
                        struct ibv_qp_init_attr *init)
{
    struct sr_qp *qp = (struct sr_qp *)pub;
    (void)mask;
    if (sr_stale(qp->epoch, "ibv_query_qp"))
        return EPERM;
    pthread_mutex_lock(&sr_lock);   /* the state as the device last left it */
    enum ibv_qp_state state = qp->pub.state;
    pthread_mutex_unlock(&sr_lock);
    memset(a, 0, sizeof *a);
    memset(init, 0, sizeof *init);
    a->qp_state = a->cur_qp_state = state;
    a->path_mtu = IBV_MTU_1024;
    a->qp_access_flags = (unsigned)qp->access;
    a->cap = qp->cap;
    a->dest_qp_num = qp->dest_qpn;
    a->port_num = (uint8_t)qp->port;
    a->rnr_retry = qp->rnr_retry;
    a->retry_cnt = qp->retry_cnt;
    a->timeout = qp->timeout;
    a->max_rd_atomic = a->max_dest_rd_atomic = 16;
    init->qp_context = qp->pub.qp_context;
    init->send_cq = qp->pub.send_cq;
    init->recv_cq = qp->pub.recv_cq;
    init->cap = qp->cap;
    init->qp_type = qp->pub.qp_type;
    if (qp->ud)
        sr_ud_query(qp, a);
    init->sq_sig_all = qp->sq_sig_all;
    return 0;
}

/* ---- posting ---- */

/* Where the occupied part of a work queue starts: at the first WR whose
 * completion the application has not polled (as on hardware), or with
 * SOFTRDMA_STRICT_SQ=0 at the first WR the device has not completed. */
uint32_t sr_sq_free_from(struct sr_qp *qp)
{
    return sr_knobs.strict_wq ? __atomic_load_n(&qp->s->sq_retired, __ATOMIC_ACQUIRE) : qp->sq_head;
}

/* under the block lock */
static uint32_t sr_rq_free_from(struct sr_qp *qp)
{
    return sr_knobs.strict_wq ? __atomic_load_n(&qp->s->rq_retired, __ATOMIC_ACQUIRE)
                              : __atomic_load_n(&qp->s->rq_head, __ATOMIC_ACQUIRE);
}

/* Inline data of a send that did not go at post time becomes the
 * device's (the caller may reuse its buffers once ibv_post_send returns):
 * into the WQE's slot, or a buffer of its own when larger (a slow path:
 * the send waits for the stream or the peer). */
static int sr_inline_stage(struct sr_qp *qp, struct sr_swqe *s, uint32_t idx)
{
    size_t slot = qp->inl_slot;
    char *dst = qp->sq_inline + (size_t)idx * slot;
    if (s->len > slot && !(dst = s->heap = malloc(s->len))) {
        sr_log("ibv_post_send: no memory to keep %u bytes of inline data on QP %u",
               s->len, qp->pub.qp_num);
        return ENOMEM;
    }
    size_t off = 0;
    for (int i = 0; i < s->nsge; i++) {
        memcpy(dst + off, s->iov[i].iov_base, s->iov[i].iov_len);
        off += s->iov[i].iov_len;
    }
    s->iov[0].iov_base = dst;
    s->iov[0].iov_len = off;
    s->nsge = 1;
    sr_stats_stage((uint32_t)off);
    return 0;
}

/* Inline: the caller's buffers, no lkey looked at (as on hardware). */
static void sr_inline_point(struct sr_swqe *s, const struct ibv_send_wr *wr)
{
    s->nsge = 0;
    for (int i = 0; i < wr->num_sge; i++)
        if (wr->sg_list[i].length) {
            s->iov[s->nsge].iov_base = (void *)(uintptr_t)wr->sg_list[i].addr;
            s->iov[s->nsge++].iov_len = wr->sg_list[i].length;
        }
}

static int sr_post_one_send(struct sr_qp *qp, struct ibv_send_wr *wr)
{
    static const uint8_t ops[] = {
        [IBV_WR_SEND] = SR_OP_SEND, [IBV_WR_SEND_WITH_IMM] = SR_OP_SEND_IMM,
        [IBV_WR_RDMA_WRITE] = SR_OP_WRITE, [IBV_WR_RDMA_WRITE_WITH_IMM] = SR_OP_WRITE_IMM,
        [IBV_WR_RDMA_READ] = SR_OP_READ,
    };
    if ((unsigned)wr->opcode >= sizeof ops || !ops[wr->opcode]) {
        sr_log("ibv_post_send: opcode %d not supported (no atomics, no memory windows)", wr->opcode);
        return EINVAL;
    }
    if (wr->num_sge < 0 || (uint32_t)wr->num_sge > qp->cap.max_send_sge) {
        sr_log("ibv_post_send: %d SGEs, QP %u allows %u", wr->num_sge, qp->pub.qp_num, qp->cap.max_send_sge);
        return EINVAL;
    }
    if (qp->sq_tail - sr_sq_free_from(qp) >= qp->cap.max_send_wr)
        return ENOMEM;
    int inl = (wr->send_flags & IBV_SEND_INLINE) && wr->opcode != IBV_WR_RDMA_READ;
    uint64_t len = 0;
    for (int i = 0; i < wr->num_sge; i++)
        len += wr->sg_list[i].length;
    if (len > SR_MAX_MSG || (inl && len > qp->cap.max_inline_data)) {
        sr_log("ibv_post_send: %llu bytes exceed the %s limit", (unsigned long long)len,
               inl ? "inline" : "message");
        return EINVAL;
    }
    uint32_t idx = qp->sq_tail % qp->cap.max_send_wr;
    struct sr_swqe *s = &qp->sq[idx];
    s->wr_id = wr->wr_id;
    s->opcode = wr->opcode;
    s->flags = wr->send_flags | (qp->sq_sig_all ? IBV_SEND_SIGNALED : 0);
    s->len = (uint32_t)len;
    s->local_err = 0;
    memset(&s->hdr, 0, sizeof s->hdr);
    s->hdr.op = ops[wr->opcode];
    s->hdr.rnr_retry = qp->rnr_retry;
    s->hdr.retry_cnt = qp->retry_cnt;
    s->hdr.timeout = qp->timeout;
    s->hdr.imm = wr->imm_data;
    s->hdr.len = (uint32_t)len;
    s->hdr.rkey = wr->wr.rdma.rkey;
    s->hdr.raddr = wr->wr.rdma.remote_addr;
    s->heap = NULL;
    if (inl) {
        sr_inline_point(s, wr);
    } else {
        int need = wr->opcode == IBV_WR_RDMA_READ ? IBV_ACCESS_LOCAL_WRITE : 0;
        s->nsge = 0;
        for (int i = 0; i < wr->num_sge; i++) {
            struct ibv_sge *g = &wr->sg_list[i];
            if (!sr_mr_check(qp->pub.pd, g->lkey, g->addr, g->length, need))
                s->local_err = 1;
            if (!g->length)
                continue;
            s->iov[s->nsge].iov_base = (void *)(uintptr_t)g->addr;
            s->iov[s->nsge++].iov_len = g->length;
        }
    }
    qp->sq_tail++;
    /* Inline data goes into the peer straight from the caller's buffers
     * when it can go now (one copy, as TCP's), or onto its stream; else
     * the device keeps it. */
    if (inl && !sr_req_post_direct(qp) && !sr_req_post_stream(qp) && sr_inline_stage(qp, s, idx)) {
        if (qp->tx_off && qp->sq_tx == qp->sq_tail - 1) {
            /* part of it is on the stream already and the rest cannot be
             * kept: the stream cannot go on, the WR fails with the others */
            sr_req_lost(qp);
            return 0;
        }
        qp->sq_tail--;
        return ENOMEM;
    }
    return 0;
}

int sr_post_send(struct ibv_qp *pub, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
    struct sr_qp *qp = (struct sr_qp *)pub;
    int rc = 0;
    if (qp->epoch != sr_epoch) {
        sr_stale(qp->epoch, "ibv_post_send");
        *bad = wr;
        return EPERM;
    }
    if (qp->ud)
        return sr_ud_post_send(qp, wr, bad);
    pthread_mutex_lock(&sr_lock);
    /* RESET, INIT and RTR refuse sends as on hardware; SQD queues them
     * until the QP is back in RTS; ERR flushes them. */
    if (qp->pub.state != IBV_QPS_RTS && qp->pub.state != IBV_QPS_SQD &&
        qp->pub.state != IBV_QPS_ERR) {
        sr_log("ibv_post_send: QP %u is not in RTS (state %d)", qp->pub.qp_num, qp->pub.state);
        rc = EINVAL;
        *bad = wr;
        goto out;
    }
    for (; wr; wr = wr->next) {
        if ((rc = sr_post_one_send(qp, wr))) {
            *bad = wr;
            break;
        }
        if (qp->pub.state == IBV_QPS_ERR)
            sr_qp_to_error(qp);     /* posting to ERR completes flushed */
    }
    sr_req_kick(qp);
out:
    pthread_mutex_unlock(&sr_lock);
    return rc;
}

/* Under the QP block's lock. */
static int sr_post_one_recv(struct sr_qp *qp, struct ibv_recv_wr *wr)
{
    if (wr->num_sge < 0 || (uint32_t)wr->num_sge > qp->cap.max_recv_sge) {
        sr_log("ibv_post_recv: %d SGEs, QP %u allows %u", wr->num_sge, qp->pub.qp_num, qp->cap.max_recv_sge);
        return EINVAL;
    }
    struct sr_shm_qp *b = qp->s;
    if (b->rq_tail - sr_rq_free_from(qp) >= qp->cap.max_recv_wr)
        return ENOMEM;
    struct sr_rwqe *r = sr_rwqe_at(b, b->rq_tail);
    r->wr_id = wr->wr_id;
    r->nsge = 0;
    r->len = 0;
    r->bad_lkey = 0;
    for (int i = 0; i < wr->num_sge; i++) {
        struct ibv_sge *g = &wr->sg_list[i];
        /* Hardware does not look at receive lkeys until a message is
         * scattered into them: a bad one is a LOC_PROT_ERR completion then. */
        if (!sr_mr_check(qp->pub.pd, g->lkey, g->addr, g->length, IBV_ACCESS_LOCAL_WRITE))
            r->bad_lkey = 1;
        r->sge[r->nsge++] = (struct sr_sge_sh){ g->addr, g->length, g->lkey };
        r->len += g->length;
    }
    __atomic_store_n(&b->rq_tail, b->rq_tail + 1, __ATOMIC_RELEASE);     /* publishes r */
    return 0;
}

int sr_post_recv(struct ibv_qp *pub, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
    struct sr_qp *qp = (struct sr_qp *)pub;
    int rc = 0;
    if (qp->epoch != sr_epoch) {
        sr_stale(qp->epoch, "ibv_post_recv");
        *bad = wr;
        return EPERM;
    }
    pthread_mutex_lock(&sr_lock);
    if (qp->pub.state == IBV_QPS_RESET) {
        sr_log("ibv_post_recv: QP %u is in RESET", qp->pub.qp_num);
        *bad = wr;
        rc = EINVAL;
        goto out;
    }
    /* Not under the block lock: the receive ring has one producer (this
     * process, under sr_lock) and its consumers (a peer's sender, our
     * responder, a flush) read rq_tail with acquire. A peer's sender holds
     * the block lock while it copies a message in (up to 64 KiB inline,
     * more for a WRITE): the lock here made the receiver sleep on the
     * futex behind every bulk copy (iperf3: 10% of the machine in the
     * wake-ups, 30% idle). */
    for (; wr; wr = wr->next) {
        if ((rc = sr_post_one_recv(qp, wr))) {
            *bad = wr;
            break;
        }
    }
    if (qp->pub.state == IBV_QPS_ERR)
        sr_qp_to_error(qp);
    else if (qp->in && qp->in->stalled)
        sr_resp_resume(qp->in);
out:
    pthread_mutex_unlock(&sr_lock);
    return rc;
}

int sr_post_srq_recv(struct ibv_srq *srq, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
    (void)srq;
    *bad = wr;
    sr_log("ibv_post_srq_recv: shared receive queues are not supported");
    return EOPNOTSUPP;
}
