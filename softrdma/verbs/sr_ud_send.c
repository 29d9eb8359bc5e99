/* softrdma: UD SEND and SEND_WITH_IMM. The sender's own thread delivers
 * each datagram inside ibv_post_send, as the RC direct path does (sr_fast.c):
 * under the destination QP block's lock it takes the posted receive, writes
 * a 40-byte GRH and the payload into it with process_vm_writev and pushes
 * the receive completion into the destination's CQ ring; the sender's
 * completion follows at once. UD is unreliable and so is this: a datagram
 * whose destination QP does not exist (or is not in RTR/RTS), whose Q_Key
 * or destination GID does not match, that finds no receive posted (after a
 * few yields), or whose destination's receive CQ is full, is dropped
 * silently; the sender's completion is a success all the same, as on
 * hardware. Locking: sr_lock, then the destination QP block, then its CQ. */
#include "sr_ud.h"
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/uio.h>

/* no receive posted: the receiver is often just re-posting one */
#define SR_UD_RNR_YIELDS 4

/* Datagrams delivered, and dropped by cause (sr_ud_stats; relaxed). */
static uint64_t sr_ud_n[SR_UD_NSTATS];

SR_API void sr_ud_stats(uint64_t out[SR_UD_NSTATS])
{
    for (int i = 0; i < SR_UD_NSTATS; i++)
        out[i] = __atomic_load_n(&sr_ud_n[i], __ATOMIC_RELAXED);
}

int sr_ud_count(int what)
{
    __atomic_add_fetch(&sr_ud_n[what], 1, __ATOMIC_RELAXED);
    return 0;
}

/* The peer's receive at rq_head, inside its segment; NULL if none. */
static struct sr_rwqe *sr_ud_rwqe(const struct sr_ud_peer *p)
{
    struct sr_shm_qp *q = p->qp;
    if (q->rq_head == __atomic_load_n(&q->rq_tail, __ATOMIC_ACQUIRE) || !q->max_recv_wr)
        return NULL;
    uint64_t size = q->rwqe_size;
    uint64_t at = p->qp_off + sizeof *q + (uint64_t)(q->rq_head % q->max_recv_wr) * size;
    if (size < sizeof(struct sr_rwqe) || at >= p->size || size > p->size - at)
        return NULL;
    struct sr_rwqe *rw = (struct sr_rwqe *)(p->base + at);
    if (rw->nsge > SR_MAX_SGE || sizeof *rw + rw->nsge * sizeof rw->sge[0] > size)
        return NULL;
    return rw;
}

/* The receive's SGEs trimmed to len bytes, each checked against the peer's
 * MR table; entries, or -1 (a bad lkey: LOC_PROT_ERR at the receiver). */
static int sr_ud_recv_iov(const struct sr_ud_peer *p, const struct sr_rwqe *rw, uint32_t len,
                          struct iovec *riov)
{
    const struct sr_seg_hdr *h = (const struct sr_seg_hdr *)p->base;
    int n = 0;
    for (uint32_t i = 0; i < rw->nsge && len; i++) {
        uint32_t k = rw->sge[i].len < len ? rw->sge[i].len : len;
        if (!k)
            continue;
        if (!sr_shm_mr_ok(h, p->qp->pd, rw->sge[i].lkey, rw->sge[i].addr, k, IBV_ACCESS_LOCAL_WRITE))
            return -1;
        riov[n].iov_base = (void *)(uintptr_t)rw->sge[i].addr;
        riov[n++].iov_len = k;
        len -= k;
    }
    return n;
}

/* The peer's receive CQ with a slot held; NULL if full (dropped). */
static struct sr_shm_cq *sr_ud_recv_cq(const struct sr_ud_peer *p)
{
    uint64_t off = p->qp->recv_cq_off;
    if (off < sizeof(struct sr_seg_hdr) || off >= p->size || p->size - off < sizeof(struct sr_shm_cq))
        return NULL;
    struct sr_shm_cq *cq = (struct sr_shm_cq *)(p->base + off);
    if (cq->cap > SR_MAX_CQE || (uint64_t)cq->cap * sizeof cq->ring[0] > p->size - off - sizeof *cq ||
        sr_shm_cq_reserve(cq))
        return NULL;
    return cq;
}

/* Completes the receive at rq_head with status; 1 if the channel is due a
 * signal. The CQ slot is held. */
static int sr_ud_recv_done(const struct sr_ud_peer *p, const struct sr_ud_msg *m,
                           struct sr_rwqe *rw, struct sr_shm_cq *cq, enum ibv_wc_status st)
{
    struct ibv_wc wc = { .wr_id = rw->wr_id, .status = st, .opcode = IBV_WC_RECV,
                         .byte_len = SR_GRH_LEN + m->len, .qp_num = p->qpn,
                         .src_qp = m->src_qpn, .wc_flags = IBV_WC_GRH, .sl = m->sl };
    if (m->has_imm) {
        wc.wc_flags |= IBV_WC_WITH_IMM;
        wc.imm_data = m->imm;
    }
    struct sr_wc_src src = { .qp_off = p->qp_off, .gen = p->gen, .recv = 1 };
    __atomic_store_n(&p->qp->rq_head, p->qp->rq_head + 1, __ATOMIC_RELEASE);
    int wake;
    sr_shm_cq_add(cq, &wc, &src, p->evfd, NULL, 1, &wake);
    return wake;
}

/* Copies the gathered source into the scatter list. */
static void sr_ud_copy(const struct iovec *dst, int nd, const struct iovec *src, int ns)
{
    int di = 0;
    size_t doff = 0;
    for (int s = 0; s < ns; s++) {
        const char *from = src[s].iov_base;
        for (size_t left = src[s].iov_len; left && di < nd;) {
            size_t room = dst[di].iov_len - doff, k = left < room ? left : room;
            memcpy((char *)dst[di].iov_base + doff, from, k);
            from += k;
            left -= k;
            doff += k;
            if (doff == dst[di].iov_len) {
                di++;
                doff = 0;
            }
        }
    }
}

/* GRH and payload into the receive; 0 when all of it landed. A policy
 * that refuses process_vm_writev (EPERM, ENOSYS) sends other processes'
 * datagrams through their devices from then on; within this process the
 * copy is a memcpy then. */
static int sr_ud_move(const struct sr_ud_peer *p, const struct sr_ud_msg *m,
                      const struct iovec *riov, int rn, uint32_t total)
{
    if (process_vm_writev(p->pid, m->iov, (unsigned long)m->niov, riov, (unsigned long)rn, 0) ==
        (ssize_t)total)
        return 0;
    if (errno != EPERM && errno != ENOSYS)
        return -1;
    if (p->seg) {
        sr_ud_direct_refused();
        return -1;
    }
    sr_ud_copy(riov, rn, m->iov, m->niov);
    return 0;
}

/* Under the peer block's lock: 1 delivered (or completed in error at the
 * receiver), 0 dropped, -1 no receive posted yet. *wake as above. */
static int sr_ud_place(const struct sr_ud_peer *p, struct sr_ud_msg *m, int *wake)
{
    uint32_t st = __atomic_load_n(&p->qp->state, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&p->qp->gen, __ATOMIC_ACQUIRE) != p->gen ||
        (st != IBV_QPS_RTR && st != IBV_QPS_RTS && st != IBV_QPS_SQD && st != IBV_QPS_SQE))
        return sr_ud_count(SR_UD_NO_QP);
    struct sr_rwqe *rw = sr_ud_rwqe(p);
    if (!rw)
        return -1;
    struct sr_shm_cq *cq = sr_ud_recv_cq(p);
    if (!cq)
        return sr_ud_count(SR_UD_CQ_FULL);
    struct iovec riov[SR_MAX_SGE];
    uint32_t total = SR_GRH_LEN + m->len;
    int rn = rw->bad_lkey ? -1 : sr_ud_recv_iov(p, rw, total, riov);
    enum ibv_wc_status status = IBV_WC_SUCCESS;
    if (rn < 0)
        status = IBV_WC_LOC_PROT_ERR;
    else if (rw->len < total)
        status = IBV_WC_LOC_LEN_ERR;     /* receive too short: nothing placed */
    else if (sr_ud_move(p, m, riov, rn, total)) {
        sr_shm_cq_unreserve(cq);
        return sr_ud_count(SR_UD_NO_QP);  /* the process is gone */
    }
    *wake = sr_ud_recv_done(p, m, rw, cq, status);
    sr_ud_count(SR_UD_SENT);
    return 1;
}

static int sr_ud_gid_ok(const struct sr_ud_peer *p, const struct sr_ud_msg *m)
{
    static const uint8_t zero[16];
    const uint8_t *dgid = m->grh.dgid.raw;
    if (!m->global || !memcmp(dgid, zero, 16))
        return 1;       /* LID-style, as RC: routed by QPN */
    uint32_t n = p->ud->ngids < SR_UD_MAX_GIDS ? p->ud->ngids : SR_UD_MAX_GIDS;
    for (uint32_t i = 0; i < n; i++)
        if (!memcmp(p->ud->gids[i], dgid, 16))
            return 1;
    return 0;
}

/* The GRH a receiver finds in its first 40 bytes: IPv6 form, the sender's
 * GID as source, the AH's destination GID (filled in at the destination
 * when the AH has none). */
static void sr_ud_grh(struct sr_ud_msg *m, const struct sr_ah *ah)
{
    const struct ibv_global_route *g = &ah->attr.grh;
    memset(&m->grh, 0, sizeof m->grh);
    m->grh.version_tclass_flow = htobe32(6u << 28 | (uint32_t)g->traffic_class << 20 |
                                         (g->flow_label & 0xfffff));
    m->grh.paylen = htobe16((uint16_t)m->len);
    m->grh.next_hdr = 0x1b;            /* IB BTH */
    m->grh.hop_limit = ah->attr.is_global ? g->hop_limit : 64;
    m->grh.sgid = ah->sgid;
    m->global = ah->attr.is_global;
    if (m->global)
        m->grh.dgid = g->dgid;
    m->sl = ah->attr.sl;
}

void sr_ud_deliver_to(struct sr_ud_peer *p, struct sr_ud_msg *m, uint32_t qkey, int yields)
{
    if (qkey != __atomic_load_n(&p->ud->qkey, __ATOMIC_ACQUIRE)) {
        sr_ud_count(SR_UD_QKEY);
        return;
    }
    if (!sr_ud_gid_ok(p, m)) {
        sr_ud_count(SR_UD_GID);
        return;
    }
    if (!m->global && p->ud->ngids)
        memcpy(m->grh.dgid.raw, p->ud->gids[0], 16);
    m->iov[0].iov_base = &m->grh;
    m->iov[0].iov_len = SR_GRH_LEN;
    int wake = 0, done;
    for (int tries = 0;; tries++) {
        sr_shm_lock(&p->qp->lock);
        done = sr_ud_place(p, m, &wake);
        sr_shm_unlock(&p->qp->lock);
        if (done >= 0 || tries >= yields)
            break;
        sched_yield();
    }
    if (done < 0)
        sr_ud_count(SR_UD_NO_RECV);
    if (wake)
        sr_channel_signal(p->evfd);    /* after the lock: see sr_shm_cq_add */
}

/* Sends the datagram to QP qpn with Q_Key qkey, or drops it: directly, or
 * through the destination's device when the kernel keeps us out of that
 * process (another user). */
static void sr_ud_deliver(struct sr_ud_msg *m, uint32_t qpn, uint32_t qkey)
{
    struct sr_ud_peer *p = sr_ud_peer_get(qpn);
    if (!p)
        sr_ud_count(SR_UD_NO_QP);
    else if (p->sock[0])
        sr_ud_sock_send(p, m, qkey);
    else
        sr_ud_deliver_to(p, m, qkey, SR_UD_RNR_YIELDS);
}

/* The send queue's own completion (signaled, or any error). */
static void sr_ud_send_done(struct sr_qp *qp, const struct ibv_send_wr *wr, enum ibv_wc_status st)
{
    qp->sq_tail++;
    qp->sq_head = qp->sq_tx = qp->sq_tail;
    if (st == IBV_WC_SUCCESS && !(qp->sq_sig_all || (wr->send_flags & IBV_SEND_SIGNALED)))
        return;
    struct ibv_wc wc = { .wr_id = wr->wr_id, .status = st, .opcode = IBV_WC_SEND,
                         .qp_num = qp->pub.qp_num };
    sr_qp_complete(qp, 0, &wc);
    if (st != IBV_WC_SUCCESS && st != IBV_WC_WR_FLUSH_ERR && qp->pub.state != IBV_QPS_ERR)
        sr_qp_set_state(qp, IBV_QPS_SQE);  /* a UD send queue error, as the spec says */
}

/* Checks that refuse the post itself (EINVAL, ENOMEM). */
static int sr_ud_check_wr(struct sr_qp *qp, const struct ibv_send_wr *wr)
{
    if (wr->opcode != IBV_WR_SEND && wr->opcode != IBV_WR_SEND_WITH_IMM) {
        sr_log("ibv_post_send: UD QP %u: opcode %d (UD has SEND and SEND_WITH_IMM)",
               qp->pub.qp_num, wr->opcode);
        return EINVAL;
    }
    if (wr->num_sge < 0 || (uint32_t)wr->num_sge > qp->cap.max_send_sge) {
        sr_log("ibv_post_send: %d SGEs, QP %u allows %u", wr->num_sge, qp->pub.qp_num,
               qp->cap.max_send_sge);
        return EINVAL;
    }
    const struct sr_ah *ah = (const struct sr_ah *)wr->wr.ud.ah;
    if (!ah || ah->epoch != sr_epoch) {
        sr_log("ibv_post_send: UD QP %u: %s address handle", qp->pub.qp_num, ah ? "a stale" : "no");
        return EINVAL;
    }
    if (wr->send_flags & IBV_SEND_INLINE) {
        uint64_t len = 0;
        for (int i = 0; i < wr->num_sge; i++)
            len += wr->sg_list[i].length;
        if (len > qp->cap.max_inline_data) {
            sr_log("ibv_post_send: %llu bytes exceed the inline limit %u of UD QP %u",
                   (unsigned long long)len, qp->cap.max_inline_data, qp->pub.qp_num);
            return EINVAL;
        }
    }
    if (qp->sq_tail - sr_sq_free_from(qp) >= qp->cap.max_send_wr)
        return ENOMEM;
    return 0;
}

/* Gathers the WR's payload; its completion status (SUCCESS to go on). */
static enum ibv_wc_status sr_ud_gather(struct sr_qp *qp, const struct ibv_send_wr *wr,
                                       struct sr_ud_msg *m)
{
    uint64_t len = 0;
    int inl = wr->send_flags & IBV_SEND_INLINE;
    m->niov = 1;
    for (int i = 0; i < wr->num_sge; i++) {
        const struct ibv_sge *g = &wr->sg_list[i];
        if (!inl && !sr_mr_check(qp->pub.pd, g->lkey, g->addr, g->length, 0))
            return IBV_WC_LOC_PROT_ERR;
        len += g->length;
        if (!g->length)
            continue;
        m->iov[m->niov].iov_base = (void *)(uintptr_t)g->addr;
        m->iov[m->niov++].iov_len = g->length;
    }
    if (len > SR_UD_MTU)
        return IBV_WC_LOC_LEN_ERR;      /* a UD message is one packet */
    m->len = (uint32_t)len;
    return IBV_WC_SUCCESS;
}

static void sr_ud_send_one(struct sr_qp *qp, const struct ibv_send_wr *wr)
{
    if (qp->pub.state == IBV_QPS_ERR || qp->pub.state == IBV_QPS_SQE) {
        sr_ud_send_done(qp, wr, IBV_WC_WR_FLUSH_ERR);
        return;
    }
    struct sr_ud_msg m;
    m.src_qpn = qp->pub.qp_num;
    m.has_imm = wr->opcode == IBV_WR_SEND_WITH_IMM;
    m.imm = wr->imm_data;
    enum ibv_wc_status st = sr_ud_gather(qp, wr, &m);
    if (st == IBV_WC_SUCCESS) {
        sr_ud_grh(&m, (const struct sr_ah *)wr->wr.ud.ah);
        uint32_t qkey = (wr->wr.ud.remote_qkey & SR_QKEY_OWN) ? qp->ud->qkey : wr->wr.ud.remote_qkey;
        sr_ud_deliver(&m, wr->wr.ud.remote_qpn & 0xffffff, qkey);
    }
    sr_ud_send_done(qp, wr, st);
}

int sr_ud_post_send(struct sr_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
    int rc = 0;
    pthread_mutex_lock(&sr_lock);
    enum ibv_qp_state s = qp->pub.state;
    if (s != IBV_QPS_RTS && s != IBV_QPS_SQD && s != IBV_QPS_SQE && s != IBV_QPS_ERR) {
        sr_log("ibv_post_send: QP %u is not in RTS (state %d)", qp->pub.qp_num, s);
        *bad = wr;
        pthread_mutex_unlock(&sr_lock);
        return EINVAL;
    }
    for (; wr; wr = wr->next) {
        if ((rc = sr_ud_check_wr(qp, wr))) {
            *bad = wr;
            break;
        }
        sr_ud_send_one(qp, wr);
    }
    pthread_mutex_unlock(&sr_lock);
    return rc;
}
