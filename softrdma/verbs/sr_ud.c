/* softrdma: UD queue pairs: the UD block peers read, the fabric entry that
 * names it, and the UD state machine with the attribute masks the kernel's
 * ib_modify_qp_is_ok demands for UD (see sr_ud.h). sr_lock held by callers. */
#include "sr_ud.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The host's GIDs, every port, into the UD block (for the senders' check
 * that a destination GID belongs to this host). */
static void sr_ud_fill_gids(struct sr_shm_ud *u)
{
    struct sr_port ports[SR_MAX_PORTS];
    int n = sr_ports_scan(ports, SR_MAX_PORTS);
    u->ngids = 0;
    for (int p = 0; p < n; p++)
        for (int g = 0; g < ports[p].ngids && u->ngids < SR_UD_MAX_GIDS; g++)
            memcpy(u->gids[u->ngids++], ports[p].gids[g].raw, 16);
}

/* $FABRIC/ud/<qpn> -> "ud1:<pid>:<segment fd>:<channel fd>:<UD block offset>:<UD socket>"
 * (the socket's name under $FABRIC/udnic, "-" if none) */
static int sr_ud_register(struct sr_qp *qp)
{
    struct sr_ud *ud = qp->ud;
    char dir[300], target[128];
    snprintf(dir, sizeof dir, "%s/ud", sr_fabric_dir());
    if (sr_mkdir_p(dir))
        return -1;
    int evfd = sr_cq_evfd((struct sr_cq *)qp->pub.recv_cq);
    snprintf(ud->path, sizeof ud->path, "%s/%u", dir, qp->pub.qp_num);
    snprintf(target, sizeof target, "ud1:%d:%d:%d:%llu:%s", (int)getpid(), sr_seg_fd(), evfd,
             (unsigned long long)ud->off, sr_ud_sock_name());
    unlink(ud->path);       /* a dead owner's: the QPN is ours now ($FABRIC/qp) */
    return symlink(target, ud->path);
}

int sr_ud_create(struct sr_qp *qp)
{
    struct sr_ud *ud = calloc(1, sizeof *ud);
    struct sr_seg_hdr *seg = sr_seg();
    if (!ud || !seg) {
        free(ud);
        errno = ENOMEM;
        return -1;
    }
    ud->size = sizeof *ud->s;
    ud->off = sr_seg_alloc(ud->size);
    if (!ud->off) {
        free(ud);
        return -1;
    }
    ud->s = (struct sr_shm_ud *)((char *)seg + ud->off);
    ud->s->qpn = qp->pub.qp_num;
    ud->s->qp_off = qp->s_off;
    sr_ud_fill_gids(ud->s);
    __atomic_store_n(&ud->s->magic, SR_UD_MAGIC, __ATOMIC_RELEASE);
    qp->ud = ud;
    if (sr_ud_register(qp)) {
        sr_log("ibv_create_qp: cannot register UD QP %u in %s/ud: %s", qp->pub.qp_num,
               sr_fabric_dir(), strerror(errno));
        sr_ud_destroy(qp);
        return -1;
    }
    return 0;
}

void sr_ud_destroy(struct sr_qp *qp)
{
    struct sr_ud *ud = qp->ud;
    if (!ud)
        return;
    if (ud->path[0])
        unlink(ud->path);
    __atomic_store_n(&ud->s->magic, 0, __ATOMIC_RELEASE);
    sr_seg_free(ud->off, ud->size);
    free(ud);
    qp->ud = NULL;
}

/* Masks per transition, as the kernel's qp_state_table has them for UD:
 * what is required, what else is allowed. */
struct sr_ud_rule { int from, to, req, opt; };
#define SR_UD_KEYS (IBV_QP_PKEY_INDEX | IBV_QP_QKEY)
static const struct sr_ud_rule sr_ud_rules[] = {
    { IBV_QPS_RESET, IBV_QPS_INIT, IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_QKEY, 0 },
    { IBV_QPS_INIT, IBV_QPS_INIT, 0, SR_UD_KEYS | IBV_QP_PORT },
    { IBV_QPS_INIT, IBV_QPS_RTR, 0, SR_UD_KEYS },
    { IBV_QPS_RTR, IBV_QPS_RTS, IBV_QP_SQ_PSN, IBV_QP_QKEY },
    { IBV_QPS_RTS, IBV_QPS_RTS, 0, IBV_QP_QKEY },
    { IBV_QPS_RTS, IBV_QPS_SQD, 0, IBV_QP_EN_SQD_ASYNC_NOTIFY },
    { IBV_QPS_SQD, IBV_QPS_SQD, 0, SR_UD_KEYS },
    { IBV_QPS_SQD, IBV_QPS_RTS, 0, IBV_QP_QKEY },
    { IBV_QPS_SQE, IBV_QPS_RTS, 0, IBV_QP_QKEY },
};

/* 0 if the transition and its mask are allowed, else EINVAL with a line. */
static int sr_ud_check(struct sr_qp *qp, enum ibv_qp_state to, int mask)
{
    int m = mask & ~(IBV_QP_STATE | IBV_QP_CUR_STATE);
    if (to == IBV_QPS_RESET || to == IBV_QPS_ERR)
        return 0;
    for (size_t i = 0; i < sizeof sr_ud_rules / sizeof sr_ud_rules[0]; i++) {
        const struct sr_ud_rule *r = &sr_ud_rules[i];
        if (r->from != (int)qp->pub.state || r->to != (int)to)
            continue;
        if ((m & r->req) != r->req || (m & ~(r->req | r->opt))) {
            sr_log("ibv_modify_qp: UD QP %u, state %d -> %d: attribute mask 0x%x, needs 0x%x, "
                   "allows 0x%x more", qp->pub.qp_num, qp->pub.state, to, mask, r->req, r->opt);
            return EINVAL;
        }
        return 0;
    }
    sr_log("ibv_modify_qp: UD QP %u cannot go from state %d to %d", qp->pub.qp_num,
           qp->pub.state, to);
    return EINVAL;
}

int sr_ud_modify(struct sr_qp *qp, struct ibv_qp_attr *a, int mask)
{
    enum ibv_qp_state to = (mask & IBV_QP_STATE) ? a->qp_state : qp->pub.state;
    int err = sr_ud_check(qp, to, mask);
    if (err)
        return err;
    if ((mask & IBV_QP_PKEY_INDEX) && a->pkey_index != 0) {
        sr_log("ibv_modify_qp: UD QP %u: pkey_index %u (the port has one P_Key, index 0)",
               qp->pub.qp_num, a->pkey_index);
        return EINVAL;
    }
    if (mask & IBV_QP_QKEY) {
        qp->ud->qkey = a->qkey;
        __atomic_store_n(&qp->ud->s->qkey, a->qkey, __ATOMIC_RELEASE);
    }
    if (mask & IBV_QP_PORT)
        qp->port = a->port_num;
    if (mask & IBV_QP_SQ_PSN)
        qp->ud->sq_psn = a->sq_psn & 0xffffff;
    if (to == IBV_QPS_ERR) {
        if (qp->pub.state != IBV_QPS_ERR)
            sr_qp_to_error(qp);
        return 0;
    }
    if (to == IBV_QPS_RESET)
        sr_qp_reset(qp);
    else
        sr_qp_set_state(qp, to);
    return 0;
}

void sr_ud_query(struct sr_qp *qp, struct ibv_qp_attr *a)
{
    a->qkey = qp->ud->qkey;
    a->sq_psn = qp->ud->sq_psn;
    a->path_mtu = IBV_MTU_4096;
}
