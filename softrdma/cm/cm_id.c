/* softrdma librdmacm: ids, addresses and routes, QPs on ids. */
#include "cm_internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct cm_id *cm_id_new(struct rdma_event_channel *ch, void *context, enum rdma_port_space ps,
                        enum ibv_qp_type type)
{
    struct cm_id *id = calloc(1, sizeof *id);
    if (!id) {
        errno = ENOMEM;
        return NULL;
    }
    if (!ch) {
        struct cm_channel *own = cm_channel_new();
        if (!own) {
            free(id);
            return NULL;
        }
        ch = &own->pub;
        id->sync = 1;
    }
    id->pub.channel = ch;
    id->pub.context = context;
    id->pub.ps = ps;
    id->pub.qp_type = type;
    id->epoch = sr_epoch;
    id->conn.fd = id->lsn.fd = -1;
    return id;
}

CM_API int rdma_create_id(struct rdma_event_channel *ch, struct rdma_cm_id **out, void *context,
                          enum rdma_port_space ps)
{
    if (!out) {
        errno = EINVAL;
        return -1;
    }
    if (ps != RDMA_PS_TCP && ps != RDMA_PS_IB && ps != RDMA_PS_UDP) {
        sr_log("rdma_create_id: port space 0x%x not supported (RDMA_PS_TCP, RDMA_PS_IB, RDMA_PS_UDP)", ps);
        errno = EPROTONOSUPPORT;
        return -1;
    }
    if (sr_nic_start())
        return -1;
    sr_ports_prime();
    struct cm_id *id = cm_id_new(ch, context, ps, ps == RDMA_PS_UDP ? IBV_QPT_UD : IBV_QPT_RC);
    if (!id)
        return -1;
    *out = &id->pub;
    return 0;
}

CM_API int rdma_destroy_id(struct rdma_cm_id *pub)
{
    struct cm_id *id = cm_of(pub);
    if (!pub) {
        errno = EINVAL;
        return -1;
    }
    if (sr_stale(id->epoch, "rdma_destroy_id"))
        return -1;
    pthread_mutex_lock(&sr_lock);
    cm_conn_close(id);
    cm_listen_close(id);
    cm_port_release(id);
    cm_exit_untrack(id);
    if (pub->event)
        rdma_ack_cm_event(pub->event);
    pub->event = NULL;
    cm_events_forget(id);
    if (id->sync)
        cm_channel_destroy_private(pub->channel);
    free(pub->route.path_rec);
    pub->route.path_rec = NULL;
    free(id->ep_attr);
    id->ep_attr = NULL;
    id->epoch = 0;
    id->destroyed = 1;
    if (!id->events_out)
        sr_defer_free(id);
    pthread_mutex_unlock(&sr_lock);
    return 0;
}

static int cm_check_family(const struct sockaddr *sa, const char *who)
{
    if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)) {
        sr_log("%s: address family %d not supported (AF_INET, AF_INET6)", who,
               sa ? sa->sa_family : -1);
        errno = sa ? EAFNOSUPPORT : EINVAL;
        return -1;
    }
    return 0;
}

static void cm_set_device(struct cm_id *id, const struct sockaddr *local)
{
    int port = sr_port_of_addr(local);
    id->pub.verbs = sr_default_context();
    id->pub.port_num = (uint8_t)(port > 0 ? port : 1);
}

CM_API int rdma_bind_addr(struct rdma_cm_id *pub, struct sockaddr *addr)
{
    struct cm_id *id = cm_of(pub);
    if (!pub || sr_stale(id->epoch, "rdma_bind_addr") || cm_check_family(addr, "rdma_bind_addr"))
        return -1;
    int port = cm_is_any(addr) ? 1 : sr_port_of_addr(addr);
    if (port < 0)
        return -1;      /* the interfaces cannot be listed (logged, errno) */
    if (!port) {
        sr_log("rdma_bind_addr: address is not on an interface of this host");
        errno = EADDRNOTAVAIL;
        return -1;
    }
    if (!cm_port_allowed(cm_port(addr))) {
        sr_log("rdma_bind_addr: port %u is privileged (needs CAP_NET_BIND_SERVICE)",
               cm_port(addr));
        errno = EACCES;
        return -1;
    }
    pthread_mutex_lock(&sr_lock);
    struct sockaddr_storage want;
    memset(&want, 0, sizeof want);
    memcpy(&want, addr, cm_addrlen(addr));
    if (cm_port_claim(id, (struct sockaddr *)&want)) {
        pthread_mutex_unlock(&sr_lock);
        /* no line: a port in use is an answer, not a fault (as bind(2) and
         * rdma-core say nothing); the socket framework asks this for every
         * worker of a pre-forked server whose listener's RDMA side another
         * process holds, and the line landed in the server's log */
        errno = EADDRINUSE;
        return -1;
    }
    memcpy(&pub->route.addr.src_storage, &want, sizeof want);
    if (!cm_is_any(addr))
        cm_set_device(id, addr);
    pthread_mutex_unlock(&sr_lock);
    return 0;
}

CM_API int rdma_resolve_addr(struct rdma_cm_id *pub, struct sockaddr *src, struct sockaddr *dst,
                             int timeout_ms)
{
    struct cm_id *id = cm_of(pub);
    struct sockaddr_storage s;
    (void)timeout_ms;
    if (!pub || sr_stale(id->epoch, "rdma_resolve_addr") ||
        cm_check_family(dst, "rdma_resolve_addr"))
        return -1;
    /* dst may point into this id's own route (librdmacm's rsockets passes
     * &id->route.addr.dst_addr): copy it out before the route changes */
    struct sockaddr_storage d;
    memset(&d, 0, sizeof d);
    memcpy(&d, dst, cm_addrlen(dst));
    if (src && src->sa_family && rdma_bind_addr(pub, src))
        return -1;
    pthread_mutex_lock(&sr_lock);
    sr_ifc_scope_begin();       /* source, link, port space, port: one look */
    memcpy(&pub->route.addr.dst_storage, &d, sizeof d);
    dst = (struct sockaddr *)&d;
    int have_src = pub->route.addr.src_addr.sa_family &&
                   !cm_is_any(&pub->route.addr.src_addr);
    int err = 0;
    if (!have_src) {
        uint16_t port = pub->route.addr.src_addr.sa_family ? cm_port(&pub->route.addr.src_addr) : 0;
        if (cm_pick_source(dst, &s) == 0) {
            memcpy(&pub->route.addr.src_storage, &s, sizeof s);
            cm_set_port(&pub->route.addr.src_addr, port);
        } else {
            err = -errno;   /* ENETUNREACH, or EMFILE & co. from listing interfaces */
        }
    }
    if (!err && cm_link_check(&pub->route.addr.src_addr, "rdma_resolve_addr"))
        err = -ENETUNREACH;
    if (!err && !cm_port(&pub->route.addr.src_addr) &&
        cm_port_claim(id, &pub->route.addr.src_addr))
        err = -EADDRINUSE;     /* no free ephemeral port */
    if (!err) {
        cm_set_device(id, &pub->route.addr.src_addr);
        id->state = CM_ADDR_RESOLVED;
    }
    sr_ifc_scope_end();
    cm_event_push(id, NULL, err ? RDMA_CM_EVENT_ADDR_ERROR : RDMA_CM_EVENT_ADDR_RESOLVED, err, NULL);
    pthread_mutex_unlock(&sr_lock);
    return id->sync ? cm_sync_wait(id, RDMA_CM_EVENT_ADDR_RESOLVED) : 0;
}

CM_API int rdma_resolve_route(struct rdma_cm_id *pub, int timeout_ms)
{
    struct cm_id *id = cm_of(pub);
    (void)timeout_ms;
    if (!pub || sr_stale(id->epoch, "rdma_resolve_route"))
        return -1;
    if (id->state != CM_ADDR_RESOLVED) {
        sr_log("rdma_resolve_route: address not resolved");
        errno = EINVAL;
        return -1;
    }
    if (cm_link_check(&pub->route.addr.src_addr, "rdma_resolve_route")) {
        pthread_mutex_lock(&sr_lock);
        cm_event_push(id, NULL, RDMA_CM_EVENT_ROUTE_ERROR, -ENETUNREACH, NULL);
        pthread_mutex_unlock(&sr_lock);
        return id->sync ? cm_sync_wait(id, RDMA_CM_EVENT_ROUTE_RESOLVED) : 0;
    }
    pthread_mutex_lock(&sr_lock);
    if (!pub->route.path_rec)
        pub->route.path_rec = calloc(1, sizeof *pub->route.path_rec);
    pub->route.num_paths = pub->route.path_rec ? 1 : 0;
    if (pub->route.path_rec) {
        pub->route.path_rec->pkey = htobe16(0xffff);
        pub->route.path_rec->mtu = IBV_MTU_1024;
        pub->route.path_rec->hop_limit = 64;
    }
    cm_route_fill(pub);
    id->state = CM_ROUTE_RESOLVED;
    cm_event_push(id, NULL, RDMA_CM_EVENT_ROUTE_RESOLVED, 0, NULL);
    pthread_mutex_unlock(&sr_lock);
    return id->sync ? cm_sync_wait(id, RDMA_CM_EVENT_ROUTE_RESOLVED) : 0;
}

CM_API int rdma_set_option(struct rdma_cm_id *pub, int level, int optname, void *optval,
                           size_t optlen)
{
    struct cm_id *id = cm_of(pub);
    if (!pub || !optval || sr_stale(id->epoch, "rdma_set_option"))
        return errno = EINVAL, -1;
    if (level == RDMA_OPTION_ID && optname == RDMA_OPTION_ID_TOS && optlen == sizeof(uint8_t))
        return 0;
    if (level == RDMA_OPTION_ID && (optname == RDMA_OPTION_ID_REUSEADDR ||
                                    optname == RDMA_OPTION_ID_AFONLY) && optlen == sizeof(int)) {
        if (optname == RDMA_OPTION_ID_REUSEADDR)
            id->reuseaddr = *(int *)optval;
        else
            id->afonly = *(int *)optval;
        return 0;
    }
    if (level == RDMA_OPTION_ID && optname == RDMA_OPTION_ID_ACK_TIMEOUT &&
        optlen == sizeof(uint8_t)) {
        id->ack_timeout = *(uint8_t *)optval;  /* the QP's local ACK timeout at RTS */
        return 0;
    }
    if (level == RDMA_OPTION_IB && optname == RDMA_OPTION_IB_PATH)
        return 0;
    sr_log("rdma_set_option: level %d option %d (len %zu) not supported", level, optname, optlen);
    errno = ENOSYS;
    return -1;
}

CM_API __be16 rdma_get_src_port(struct rdma_cm_id *id) { return htons(cm_port(&id->route.addr.src_addr)); }
CM_API __be16 rdma_get_dst_port(struct rdma_cm_id *id) { return htons(cm_port(&id->route.addr.dst_addr)); }

CM_API int rdma_migrate_id(struct rdma_cm_id *pub, struct rdma_event_channel *ch)
{
    struct cm_id *id = cm_of(pub);
    if (!pub || sr_stale(id->epoch, "rdma_migrate_id"))
        return -1;
    struct rdma_event_channel *own = NULL;
    int make_sync = !ch;
    if (!ch) {
        struct cm_channel *c = cm_channel_new();
        if (!c)
            return -1;
        ch = &c->pub;
    }
    pthread_mutex_lock(&sr_lock);
    if (id->sync)
        own = pub->channel;
    pub->channel = ch;
    id->sync = make_sync;
    pthread_mutex_unlock(&sr_lock);
    if (own)
        cm_channel_destroy_private(own);
    return 0;
}

CM_API struct ibv_context **rdma_get_devices(int *num)
{
    struct ibv_context **l = calloc(2, sizeof *l);
    if (!l)
        return NULL;
    l[0] = sr_default_context();
    if (num)
        *num = l[0] ? 1 : 0;
    return l;
}

CM_API void rdma_free_devices(struct ibv_context **list) { free(list); }

/* ---- QPs on ids ---- */

static int cm_make_cqs(struct rdma_cm_id *pub, struct ibv_qp_init_attr *a)
{
    struct cm_id *id = cm_of(pub);
    if (!a->recv_cq) {
        if (!pub->recv_cq) {
            pub->recv_cq_channel = ibv_create_comp_channel(pub->verbs);
            pub->recv_cq = ibv_create_cq(pub->verbs, a->cap.max_recv_wr ? (int)a->cap.max_recv_wr : 1,
                                         pub, pub->recv_cq_channel, 0);
            id->own_cqs = 1;
        }
        a->recv_cq = pub->recv_cq;
    }
    if (!a->send_cq) {
        if (!pub->send_cq) {
            pub->send_cq_channel = ibv_create_comp_channel(pub->verbs);
            pub->send_cq = ibv_create_cq(pub->verbs, a->cap.max_send_wr ? (int)a->cap.max_send_wr : 1,
                                         pub, pub->send_cq_channel, 0);
            id->own_cqs = 1;
        }
        a->send_cq = pub->send_cq;
    }
    return a->recv_cq && a->send_cq ? 0 : -1;
}

static void cm_free_cqs(struct rdma_cm_id *pub)
{
    if (pub->recv_cq)
        ibv_destroy_cq(pub->recv_cq);
    if (pub->send_cq && pub->send_cq != pub->recv_cq)
        ibv_destroy_cq(pub->send_cq);
    if (pub->recv_cq_channel)
        ibv_destroy_comp_channel(pub->recv_cq_channel);
    if (pub->send_cq_channel && pub->send_cq_channel != pub->recv_cq_channel)
        ibv_destroy_comp_channel(pub->send_cq_channel);
    pub->recv_cq = pub->send_cq = NULL;
    pub->recv_cq_channel = pub->send_cq_channel = NULL;
}

CM_API int rdma_create_qp(struct rdma_cm_id *pub, struct ibv_pd *pd, struct ibv_qp_init_attr *a)
{
    struct cm_id *id = cm_of(pub);
    if (!pub || !a || sr_stale(id->epoch, "rdma_create_qp"))
        return errno = EINVAL, -1;
    if (!pub->verbs) {
        sr_log("rdma_create_qp: id is not bound to a device (bind or resolve an address first)");
        errno = EINVAL;
        return -1;
    }
    if (!pd)
        pd = pub->pd ? pub->pd : cm_default_pd();
    a->qp_type = pub->qp_type;     /* as librdmacm: the id's port space decides */
    if (cm_make_cqs(pub, a)) {
        cm_free_cqs(pub);
        return -1;
    }
    struct ibv_qp *qp = ibv_create_qp(pd, a);
    if (!qp)
        return -1;
    pthread_mutex_lock(&sr_lock);       /* as rdma_destroy_qp */
    pub->qp = qp;
    pub->pd = pd;
    int rc = pub->qp_type == IBV_QPT_UD ? cm_ud_qp_ready(id) : cm_qp_to_init(id);
    if (rc)
        pub->qp = NULL;
    pthread_mutex_unlock(&sr_lock);
    if (rc)
        ibv_destroy_qp(qp);
    return rc ? -1 : 0;
}

CM_API int rdma_create_qp_ex(struct rdma_cm_id *pub, struct ibv_qp_init_attr_ex *ax)
{
    struct ibv_qp_init_attr a = {
        .qp_context = ax->qp_context, .send_cq = ax->send_cq, .recv_cq = ax->recv_cq,
        .srq = ax->srq, .cap = ax->cap, .qp_type = ax->qp_type, .sq_sig_all = ax->sq_sig_all,
    };
    int rc = rdma_create_qp(pub, (ax->comp_mask & IBV_QP_INIT_ATTR_PD) ? ax->pd : NULL, &a);
    if (!rc) {
        ax->cap = a.cap;
        ax->send_cq = a.send_cq;
        ax->recv_cq = a.recv_cq;
    }
    return rc;
}

/* The id lets go of its QP under sr_lock before the QP is destroyed: the
 * device thread, handling a DREQ or the peer's death (cm_qp_error), reads
 * pub->qp under that lock and must never see a QP being destroyed. */
CM_API void rdma_destroy_qp(struct rdma_cm_id *pub)
{
    if (!pub)
        return;
    pthread_mutex_lock(&sr_lock);
    struct ibv_qp *qp = pub->qp;
    pub->qp = NULL;
    pthread_mutex_unlock(&sr_lock);
    if (!qp)
        return;
    ibv_destroy_qp(qp);
    cm_free_cqs(pub);
}

CM_API int rdma_init_qp_attr(struct rdma_cm_id *pub, struct ibv_qp_attr *a, int *mask)
{
    struct cm_id *id = cm_of(pub);
    if (!pub || !a || !mask)
        return errno = EINVAL, -1;
    enum ibv_qp_state want = a->qp_state;
    memset(a, 0, sizeof *a);
    a->qp_state = want;
    if (pub->qp_type == IBV_QPT_UD)
        return cm_ud_init_qp_attr(pub, a, mask);
    switch (want) {
    case IBV_QPS_INIT:
        a->port_num = pub->port_num ? pub->port_num : 1;
        a->qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
        *mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS;
        return 0;
    case IBV_QPS_RTR:
        a->path_mtu = IBV_MTU_1024;
        a->dest_qp_num = id->peer.qpn;
        a->max_dest_rd_atomic = 16;
        a->min_rnr_timer = 12;
        a->ah_attr.is_global = 1;
        a->ah_attr.port_num = pub->port_num;
        a->ah_attr.grh.hop_limit = 64;
        if (pub->route.addr.dst_addr.sa_family)
            sr_gid_from_sa(&pub->route.addr.dst_addr, &a->ah_attr.grh.dgid);
        *mask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
        return 0;
    case IBV_QPS_RTS:
        /* The kernel's rdma_cm on RoCE: a packet life time of 16
         * (CMA_IBOE_PACKET_LIFETIME), the CM's timeout one more: 17, 537 ms
         * per try, 4.3 s with 7 retries (a link down that long fails the
         * QP, doc/softrdma.md "Link state"); RDMA_OPTION_ID_ACK_TIMEOUT
         * sets it instead. */
        a->timeout = id->ack_timeout ? id->ack_timeout : 17;
        a->retry_cnt = 7;
        a->rnr_retry = id->peer.rnr_retry_count;
        a->max_rd_atomic = 16;
        *mask = IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
                IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC;
        return 0;
    default:
        errno = EINVAL;
        return -1;
    }
}
