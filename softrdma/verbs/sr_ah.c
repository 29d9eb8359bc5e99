/* softrdma: address handles. An AH records where UD datagrams go (its
 * attributes; the destination QP is named per WR) and the sender's GID
 * that goes into each GRH. As on RoCE every datagram carries a GRH; an AH
 * without one (is_global 0, LID style, which RoCE hardware refuses) is
 * accepted and routed by QPN alone, as RC QPs without a GID are. An AH
 * keeps its PD in use (EBUSY), as on hardware. */
#include "sr_ud.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The sender's GID for attr (its sgid_index on its port); EINVAL if the
 * port or index does not exist. */
static int sr_ah_sgid(const struct ibv_ah_attr *attr, union ibv_gid *sgid)
{
    struct sr_port ports[SR_MAX_PORTS];
    int n = sr_ports_scan(ports, SR_MAX_PORTS);
    if (n < 0)
        return errno;
    if (attr->port_num < 1 || attr->port_num > n) {
        sr_log("ibv_create_ah: no port %u (device has %d)", attr->port_num, n);
        return EINVAL;
    }
    const struct sr_port *p = &ports[attr->port_num - 1];
    int idx = attr->is_global ? attr->grh.sgid_index : 0;
    if (attr->is_global && idx >= p->ngids) {
        sr_log("ibv_create_ah: port %u has no GID index %d (%d GIDs)", attr->port_num, idx, p->ngids);
        return EINVAL;
    }
    memset(sgid, 0, sizeof *sgid);
    if (idx < p->ngids)
        *sgid = p->gids[idx];
    return 0;
}

SR_API struct ibv_ah *ibv_create_ah(struct ibv_pd *pd, struct ibv_ah_attr *attr)
{
    if (!pd || !attr) {
        sr_log("ibv_create_ah: %s is NULL", pd ? "attr" : "pd");
        errno = EINVAL;
        return NULL;
    }
    if (sr_stale(((struct sr_pd *)pd)->epoch, "ibv_create_ah"))
        return NULL;
    struct sr_ah *ah = calloc(1, sizeof *ah);
    if (!ah) {
        errno = ENOMEM;
        return NULL;
    }
    int err = sr_ah_sgid(attr, &ah->sgid);
    if (err) {
        free(ah);
        errno = err;
        return NULL;
    }
    ah->attr = *attr;
    ah->epoch = sr_epoch;
    ah->pub.context = pd->context;
    ah->pub.pd = pd;
    pthread_mutex_lock(&sr_lock);
    ((struct sr_pd *)pd)->users++;
    pthread_mutex_unlock(&sr_lock);
    return &ah->pub;
}

SR_API int ibv_destroy_ah(struct ibv_ah *pub)
{
    struct sr_ah *ah = (struct sr_ah *)pub;
    if (!ah)
        return EINVAL;
    if (sr_stale(ah->epoch, "ibv_destroy_ah"))
        return EPERM;
    pthread_mutex_lock(&sr_lock);
    ((struct sr_pd *)pub->pd)->users--;
    ah->epoch = 0;          /* a WR naming it later is refused */
    pthread_mutex_unlock(&sr_lock);
    free(ah);
    return 0;
}

/* The index of gid among the port's GIDs, -1 if it is not one. */
static int sr_gid_index(uint8_t port, const union ibv_gid *gid)
{
    struct sr_port ports[SR_MAX_PORTS];
    int n = sr_ports_scan(ports, SR_MAX_PORTS);
    if (port < 1 || port > n)
        return -1;
    for (int i = 0; i < ports[port - 1].ngids; i++)
        if (!memcmp(ports[port - 1].gids[i].raw, gid->raw, 16))
            return i;
    return -1;
}

/* An AH back to the sender of a received datagram: its GRH's source GID
 * becomes the destination, its destination GID names our sgid_index. */
SR_API int ibv_init_ah_from_wc(struct ibv_context *ctx, uint8_t port_num, struct ibv_wc *wc,
                               struct ibv_grh *grh, struct ibv_ah_attr *ah_attr)
{
    (void)ctx;
    memset(ah_attr, 0, sizeof *ah_attr);
    ah_attr->dlid = wc->slid;
    ah_attr->sl = wc->sl;
    ah_attr->src_path_bits = wc->dlid_path_bits;
    ah_attr->port_num = port_num;
    if (!(wc->wc_flags & IBV_WC_GRH))
        return 0;
    int idx = grh ? sr_gid_index(port_num, &grh->dgid) : -1;
    if (idx < 0) {
        sr_log("ibv_init_ah_from_wc: the GRH's destination GID is not on port %u", port_num);
        errno = ENOENT;
        return -1;
    }
    uint32_t vtf = be32toh(grh->version_tclass_flow);
    ah_attr->is_global = 1;
    ah_attr->grh.dgid = grh->sgid;
    ah_attr->grh.sgid_index = (uint8_t)idx;
    ah_attr->grh.flow_label = vtf & 0xfffff;
    ah_attr->grh.traffic_class = (uint8_t)(vtf >> 20);
    ah_attr->grh.hop_limit = 0xff;
    return 0;
}

SR_API struct ibv_ah *ibv_create_ah_from_wc(struct ibv_pd *pd, struct ibv_wc *wc,
                                            struct ibv_grh *grh, uint8_t port_num)
{
    struct ibv_ah_attr attr;
    if (!pd || !wc || ibv_init_ah_from_wc(pd->context, port_num, wc, grh, &attr))
        return NULL;
    return ibv_create_ah(pd, &attr);
}
