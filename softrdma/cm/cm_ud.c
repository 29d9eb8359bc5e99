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

/* ---- SIDR: UD service ID resolution (rdma_listen / rdma_connect /
 * rdma_accept on RDMA_PS_UDP ids, as udaddy uses them). It rides the RC
 * handshake's REQ and REP on a CM connection that closes after the REP:
 * the active side gets ESTABLISHED with param.ud (an AH to the peer, its
 * QPN and Q_Key), the passive side no event after its rdma_accept. ---- */

/* UDP listeners have names of their own: "<fabric>/cm/udp-<ip>_<port>". */
void cm_ud_name(const struct cm_id *id, char *name, size_t len)
{
    char *slash = strrchr(name, '/');
    size_t n = strlen(name);
    if (id->pub.ps != RDMA_PS_UDP || !slash || n + 4 >= len)
        return;
    memmove(slash + 5, slash + 1, strlen(slash + 1) + 1);
    memcpy(slash + 1, "udp-", 4);
}

/* The index of gid on port, 0 if it is not there. */
static uint8_t cm_ud_gid_index(uint8_t port, const union ibv_gid *gid)
{
    struct sr_port ports[SR_MAX_PORTS];
    int n = sr_ports_scan(ports, SR_MAX_PORTS);
    if (port < 1 || port > n)
        return 0;
    for (int i = 0; i < ports[port - 1].ngids; i++)
        if (!memcmp(ports[port - 1].gids[i].raw, gid->raw, 16))
            return (uint8_t)i;
    return 0;
}

/* param.ud of an event: the peer's QPN from its message, the Q_Key of the
 * port space, an AH from the id's local address to its peer's. */
void cm_ud_event_param(struct cm_id *id, struct rdma_ud_param *ud, const struct cm_msg *m,
                       const void *pdata)
{
    struct rdma_cm_id *pub = &id->pub;
    memset(ud, 0, sizeof *ud);
    ud->private_data = m->pdata_len ? pdata : NULL;
    ud->private_data_len = m->pdata_len;
    ud->qp_num = m->qpn;
    ud->qkey = RDMA_UDP_QKEY;
    ud->ah_attr.is_global = 1;
    ud->ah_attr.port_num = pub->port_num ? pub->port_num : 1;
    ud->ah_attr.grh.hop_limit = 64;
    union ibv_gid sgid;
    sr_gid_from_sa(&pub->route.addr.src_addr, &sgid);
    sr_gid_from_sa(&pub->route.addr.dst_addr, &ud->ah_attr.grh.dgid);
    ud->ah_attr.grh.sgid_index = cm_ud_gid_index(ud->ah_attr.port_num, &sgid);
}

/* The passive side's rdma_accept: the REP names our QP, and the CM
 * connection ends (SIDR has none). sr_lock held. */
int cm_ud_accept(struct cm_id *id, const struct rdma_conn_param *p)
{
    struct cm_msg m;
    uint32_t qpn = p && p->qp_num ? p->qp_num : id->pub.qp ? id->pub.qp->qp_num : 0;
    cm_fill_msg(&m, CM_MSG_REP, p, qpn);
    int rc = cm_send(id, &m);
    cm_conn_close(id);
    id->state = CM_IDLE;
    if (rc)
        errno = ECONNRESET;
    return rc;
}

/* The active side's REP: ESTABLISHED with the peer's UD address, and the
 * CM connection ends. sr_lock held. */
void cm_ud_on_rep(struct cm_id *id, const struct cm_msg *m)
{
    cm_conn_close(id);
    id->peer = *m;
    id->state = CM_IDLE;
    cm_event_push(id, NULL, RDMA_CM_EVENT_ESTABLISHED, 0, m);
}
