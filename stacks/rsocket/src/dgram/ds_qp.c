/*
 * ds_qp.c - the UD QP of one local address (librdmacm's ds_create_qp):
 * an rdma_cm id of RDMA_PS_UDP bound to the local IP and the UDP socket's
 * port (it only selects the device), a PD, a completion channel in the
 * socket's wait fd, one CQ for sends and receives, the QP at RTS with
 * Q_Key 0x01234567, and registered slots: receives of DS_GRH + DS_SLOT
 * bytes (all posted), sends of DS_SLOT bytes on a free stack.
 */
#include "ds_sock.h"
#include "rs_sock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>

#define RSLOT (DS_GRH + DS_SLOT)

static void *map(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int ds_qp_post_recv(struct ds_qp *q, uint32_t slot)
{
    struct ibv_sge sge = { .addr = (uintptr_t)(q->rbuf + (size_t)slot * RSLOT),
                           .length = RSLOT, .lkey = q->rmr->lkey };
    struct ibv_recv_wr wr = { .wr_id = slot, .sg_list = &sge, .num_sge = 1 }, *bad;
    return ibv_post_recv(q->qp, &wr, &bad);
}

void ds_qp_flush_recv(struct ds_qp *q)
{
    struct ibv_sge sge[DS_REPOST_BATCH];
    struct ibv_recv_wr wr[DS_REPOST_BATCH], *bad;
    uint32_t n = q->nrepost;
    if (n == 0)
        return;
    for (uint32_t i = 0; i < n; i++) {
        sge[i] = (struct ibv_sge){ .addr = (uintptr_t)(q->rbuf + (size_t)q->repost[i] * RSLOT),
                                   .length = RSLOT, .lkey = q->rmr->lkey };
        wr[i] = (struct ibv_recv_wr){ .wr_id = q->repost[i], .sg_list = &sge[i], .num_sge = 1,
                                      .next = i + 1 < n ? &wr[i + 1] : NULL };
    }
    q->nrepost = 0;
    if (ibv_post_recv(q->qp, wr, &bad))
        rs_log(2, "datagram socket: re-posting %u receive slots failed", n);
}

void ds_qp_repost(struct ds_qp *q, uint32_t slot)
{
    q->repost[q->nrepost++] = slot;
    if (q->nrepost == DS_REPOST_BATCH)
        ds_qp_flush_recv(q);
}

void ds_qp_arm(struct ds_qp *q)
{
    struct ibv_cq *cq;
    void *ctx;
    int n = 0;
    while (n < 64 && ibv_get_cq_event(q->ch, &cq, &ctx) == 0)
        n++;
    if (n)
        ibv_ack_cq_events(q->cq, (unsigned)n);
    ibv_req_notify_cq(q->cq, 0);
}

/* librdmacm takes a UD QP to RTS in rdma_create_qp; a device library that
 * does not is helped here (INIT with the Q_Key, RTR, RTS). */
static int to_rts(struct ds_qp *q)
{
    struct ibv_qp_attr a;
    struct ibv_qp_init_attr ia;
    if (ibv_query_qp(q->qp, &a, IBV_QP_STATE, &ia) == 0 && a.qp_state == IBV_QPS_RTS)
        return 0;
    memset(&a, 0, sizeof(a));
    a.qp_state = IBV_QPS_INIT;
    a.port_num = q->id->port_num ? q->id->port_num : 1;
    a.qkey = DS_QKEY;
    if (ibv_modify_qp(q->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_QKEY))
        return -1;
    a.qp_state = IBV_QPS_RTR;
    if (ibv_modify_qp(q->qp, &a, IBV_QP_STATE))
        return -1;
    a.qp_state = IBV_QPS_RTS;
    a.sq_psn = 0;
    return ibv_modify_qp(q->qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN);
}

static uint32_t path_mtu(struct ds_qp *q)
{
    struct ibv_port_attr pa;
    if (ibv_query_port(q->id->verbs, q->id->port_num ? q->id->port_num : 1, &pa))
        return DS_SLOT;
    uint32_t mtu = 128u << pa.active_mtu;       /* IBV_MTU_256 = 1 */
    return mtu < DS_SLOT ? mtu : DS_SLOT;
}

static int create_verbs(struct dsock *d, struct ds_qp *q)
{
    struct ibv_context *ctx = q->id->verbs;
    if (!(q->pd = ibv_alloc_pd(ctx)) || !(q->ch = ibv_create_comp_channel(ctx)))
        return -1;
    int fl = fcntl(q->ch->fd, F_GETFL);
    if (fl < 0 || fcntl(q->ch->fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    if (!(q->cq = ibv_create_cq(ctx, (int)(q->rq + q->sq), q, q->ch, 0)) ||
        ibv_req_notify_cq(q->cq, 0))
        return -1;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = q };
    if (epoll_ctl(d->wait_fd, EPOLL_CTL_ADD, q->ch->fd, &ev))
        return -1;
    struct ibv_qp_init_attr ia = {
        .send_cq = q->cq, .recv_cq = q->cq, .qp_type = IBV_QPT_UD, .sq_sig_all = 1,
        .cap = { .max_send_wr = q->sq, .max_recv_wr = q->rq,
                 .max_send_sge = 1, .max_recv_sge = 1 },
    };
    if (rdma_create_qp(q->id, q->pd, &ia))
        return -1;
    q->qp = q->id->qp;
    return to_rts(q);
}

static int create_bufs(struct ds_qp *q)
{
    q->rbuf = map((size_t)q->rq * RSLOT);
    q->sbuf = map((size_t)q->sq * DS_SLOT);
    q->sfree = calloc(q->sq, sizeof(uint32_t));
    if (!q->rbuf || !q->sbuf || !q->sfree)
        return -1;
    q->rmr = ibv_reg_mr(q->pd, q->rbuf, (size_t)q->rq * RSLOT, IBV_ACCESS_LOCAL_WRITE);
    q->smr = ibv_reg_mr(q->pd, q->sbuf, (size_t)q->sq * DS_SLOT, IBV_ACCESS_LOCAL_WRITE);
    if (!q->rmr || !q->smr)
        return -1;
    for (uint32_t i = 0; i < q->sq; i++)
        q->sfree[q->nfree++] = q->sq - 1 - i;
    for (uint32_t i = 0; i < q->rq; i++)
        if (ds_qp_post_recv(q, i))
            return -1;
    return 0;
}

static struct ds_qp *qp_create(struct dsock *d, const struct sockaddr *local)
{
    struct ds_qp *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    memcpy(&q->local, local, local->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                         : sizeof(struct sockaddr_in));
    q->rq = d->rq_size;
    q->sq = d->sq_size;
    if (rdma_create_id(NULL, &q->id, q, RDMA_PS_UDP) ||
        rdma_bind_addr(q->id, (struct sockaddr *)&q->local) || !q->id->verbs ||
        create_verbs(d, q) || create_bufs(q)) {
        int e = errno ? errno : ENODEV;
        static int told;                 /* once per process: the device lacks UD */
        if (!__atomic_exchange_n(&told, 1, __ATOMIC_RELAXED))
            rs_log(2, "datagram sockets: no UD QP (%s): their data stays on UDP", strerror(e));
        ds_qp_destroy(q);
        errno = e;
        return NULL;
    }
    q->max_msg = path_mtu(q);
    q->next = d->qps;
    d->qps = q;
    return q;
}

struct ds_qp *ds_qp_get(struct dsock *d, const struct sockaddr *local)
{
    for (struct ds_qp *q = d->qps; q; q = q->next)
        if (ds_addr_equal((struct sockaddr *)&q->local, local))
            return q;
    return qp_create(d, local);
}

void ds_qp_destroy(struct ds_qp *q)
{
    if (!q)
        return;
    if (q->qp)
        rdma_destroy_qp(q->id);
    if (q->rmr)
        ibv_dereg_mr(q->rmr);
    if (q->smr)
        ibv_dereg_mr(q->smr);
    if (q->cq)
        ibv_destroy_cq(q->cq);
    if (q->ch)
        ibv_destroy_comp_channel(q->ch);
    if (q->pd)
        ibv_dealloc_pd(q->pd);
    if (q->id)
        rdma_destroy_id(q->id);
    if (q->rbuf)
        munmap(q->rbuf, (size_t)q->rq * RSLOT);
    if (q->sbuf)
        munmap(q->sbuf, (size_t)q->sq * DS_SLOT);
    free(q->sfree);
    free(q);
}
