/* One RC endpoint on an rdma_cm id: PD, completion channel, CQ, QP. */
#include "ex_common.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ex_endpoint_create(struct rdma_cm_id *id, int depth, struct ex_endpoint *ep)
{
    memset(ep, 0, sizeof(*ep));
    ep->pd = ibv_alloc_pd(id->verbs);
    if (!ep->pd)
        ex_fail_errno("ibv_alloc_pd");
    ep->cc = ibv_create_comp_channel(id->verbs);
    if (!ep->cc)
        ex_fail_errno("ibv_create_comp_channel");
    /* Sends and receives share the CQ: it needs room for both queues. */
    ep->cq = ibv_create_cq(id->verbs, 2 * depth, NULL, ep->cc, 0);
    if (!ep->cq)
        ex_fail_errno("ibv_create_cq");

    struct ibv_qp_init_attr attr = {
        .send_cq = ep->cq,
        .recv_cq = ep->cq,
        .qp_type = IBV_QPT_RC,          /* reliable connected: RDMA READ/WRITE need it */
        .sq_sig_all = 1,                /* every send produces a completion */
        .cap = { .max_send_wr = depth, .max_recv_wr = depth,
                 .max_send_sge = 1, .max_recv_sge = 1 },
    };
    /* rdma_create_qp creates the QP and lets rdma_cm drive its state
     * (INIT/RTR/RTS) during connect/accept. */
    if (rdma_create_qp(id, ep->pd, &attr))
        ex_fail_errno("rdma_create_qp");
    ep->qp = id->qp;
}

struct ibv_mr *ex_reg_mr(struct ex_endpoint *ep, void *buf, size_t len, int access,
                         const char *what)
{
    struct ibv_mr *mr = ibv_reg_mr(ep->pd, buf, len, access);
    if (!mr)
        ex_fail_errno("ibv_reg_mr (%s, %zu bytes)", what, len);
    return mr;
}

void ex_endpoint_destroy(struct rdma_cm_id *id, struct ex_endpoint *ep)
{
    if (ep->qp)
        rdma_destroy_qp(id);
    if (ep->cq)
        ibv_destroy_cq(ep->cq);
    if (ep->cc)
        ibv_destroy_comp_channel(ep->cc);
    if (ep->pd)
        ibv_dealloc_pd(ep->pd);
    memset(ep, 0, sizeof(*ep));
}

void *ex_alloc_buf(size_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t rounded = (len + (size_t)page - 1) / (size_t)page * (size_t)page;
    void *p = NULL;
    if (posix_memalign(&p, (size_t)page, rounded))
        ex_fail("out of memory for a %zu byte buffer", len);
    memset(p, 0, rounded);
    return p;
}

void ex_client_close(struct rdma_cm_id *id, struct rdma_event_channel *ch,
                     struct ex_endpoint *ep, int64_t deadline_ms)
{
    if (rdma_disconnect(id))
        ex_fail_errno("rdma_disconnect");
    rdma_ack_cm_event(ex_expect_cm_event(ch, RDMA_CM_EVENT_DISCONNECTED, deadline_ms));
    ex_endpoint_destroy(id, ep);
    rdma_destroy_id(id);
    rdma_destroy_event_channel(ch);
}
