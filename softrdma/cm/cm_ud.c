/* softrdma librdmacm: UD on rdma_cm. An RDMA_PS_UDP id makes UD QPs, which
 * rdma_create_qp takes to RTS at once (as librdmacm does for UD: there is
 * no connection), with the Q_Key the kernel's rdma_cm gives that port
 * space, RDMA_UDP_QKEY. rdma_resolve_route fills the path record (source
 * and destination GIDs, P_Key, MTU, hop limit) from which a program builds
 * the AH to the destination, as rsockets' datagram code does. sr_lock held
 * where noted. */
#include "cm_internal.h"
#include <errno.h>
#include <string.h>

/* The attributes librdmacm asks the kernel for, per state, for a UD QP. */
int cm_ud_init_qp_attr(struct rdma_cm_id *pub, struct ibv_qp_attr *a, int *mask)
{
    switch (a->qp_state) {
    case IBV_QPS_INIT:
        a->port_num = pub->port_num ? pub->port_num : 1;
        a->pkey_index = 0;
        a->qkey = RDMA_UDP_QKEY;
        *mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_QKEY;
        return 0;
    case IBV_QPS_RTR:
        *mask = IBV_QP_STATE;
        return 0;
    case IBV_QPS_RTS:
        a->sq_psn = 0;
        *mask = IBV_QP_STATE | IBV_QP_SQ_PSN;
        return 0;
    default:
        errno = EINVAL;
        return -1;
    }
}

/* INIT, RTR, RTS: a UD QP on an id is ready to send once created. */
int cm_ud_qp_ready(struct cm_id *id)
{
    static const enum ibv_qp_state steps[] = { IBV_QPS_INIT, IBV_QPS_RTR, IBV_QPS_RTS };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        struct ibv_qp_attr a = { .qp_state = steps[i] };
        int mask;
        if (rdma_init_qp_attr(&id->pub, &a, &mask) || ibv_modify_qp(id->pub.qp, &a, mask))
            return -1;
    }
    return 0;
}

/* The resolved route's path record and the id's GIDs (sr_lock held): the
 * source GID is one of the id's port's GIDs (RoCE v2 form of the source
 * address), the destination GID that of the destination address. */
void cm_route_fill(struct rdma_cm_id *pub)
{
    struct ibv_sa_path_rec *p = pub->route.path_rec;
    union ibv_gid sgid, dgid;
    sr_gid_from_sa(&pub->route.addr.src_addr, &sgid);
    sr_gid_from_sa(&pub->route.addr.dst_addr, &dgid);
    pub->route.addr.addr.ibaddr.sgid = sgid;
    pub->route.addr.addr.ibaddr.dgid = dgid;
    pub->route.addr.addr.ibaddr.pkey = htobe16(0xffff);
    if (!p)
        return;
    p->sgid = sgid;
    p->dgid = dgid;
    p->pkey = htobe16(0xffff);
    if (pub->qp_type == IBV_QPT_UD)
        p->mtu = IBV_MTU_4096;  /* the UD message limit: the port's active MTU */
    p->hop_limit = 64;          /* > 1: AHs carry a GRH, as on RoCE */
    p->reversible = 1;
    p->numb_path = 1;
    p->mtu_selector = 2;        /* exactly */
    p->rate_selector = 2;
    p->rate = IBV_RATE_100_GBPS;
    p->packet_life_time_selector = 2;
}

/* rdma_listen/connect/accept on an RDMA_PS_UDP id would be SIDR, which the
 * device does not model: UD QPs on ids need no connection. -1 (EOPNOTSUPP,
 * one line) for such an id, else 0. */
int cm_ud_no_sidr(const struct rdma_cm_id *pub, const char *who)
{
    if (pub->ps != RDMA_PS_UDP)
        return 0;
    sr_log("%s: RDMA_PS_UDP id: SIDR (UD service resolution) is not supported; "
           "build AHs from rdma_resolve_route's path record", who);
    errno = EOPNOTSUPP;
    return -1;
}
