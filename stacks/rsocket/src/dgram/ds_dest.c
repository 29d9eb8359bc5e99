/*
 * ds_dest.c - a datagram socket's peers: a hash by UDP address, the local
 * QP toward each, and its address handle, resolved without blocking on
 * the socket's own rdma_cm channel (rdma_resolve_addr, then
 * rdma_resolve_route, each bounded by DS_RESOLVE_MS; events read by
 * ds_progress). Until a peer has both an AH and its QPN (learnt from any
 * valid first-contact header it sent), sends to it go over UDP, and a
 * failed or unanswered resolution is started again by the next contact or,
 * for a sender that only sends, by a send (ds_dest_retry).
 * Lock: dsock.lock, held by every caller.
 */
#include "ds_sock.h"
#include "rs_sock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static socklen_t sa_len(const struct sockaddr *a)
{
    return a->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static int any_or_loopback(const struct sockaddr *a)
{
    if (a->sa_family == AF_INET) {
        uint32_t ip = ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr);
        return ip == INADDR_ANY || (ip >> 24) == 127;
    }
    const struct in6_addr *ip6 = &((const struct sockaddr_in6 *)a)->sin6_addr;
    return IN6_IS_ADDR_UNSPECIFIED(ip6) || IN6_IS_ADDR_LOOPBACK(ip6);
}

/* The local address of our traffic toward peer: the UDP socket's bound
 * IP, or when that is a wildcard (or loopback) the one the kernel would
 * pick (a connected throw-away UDP socket); always with the UDP port. */
static int local_toward(struct dsock *d, const struct sockaddr *peer,
                        struct sockaddr_storage *out)
{
    socklen_t l = sizeof(*out);
    if (getsockname(d->udp_fd, (struct sockaddr *)out, &l))
        return -1;
    if (!any_or_loopback((struct sockaddr *)out))
        return 0;
    in_port_t port = ((struct sockaddr_in *)out)->sin_port;   /* same offset in sin6 */
    int t = socket(d->domain, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (t < 0)
        return -1;
    l = sizeof(*out);
    int r = connect(t, peer, sa_len(peer)) || getsockname(t, (struct sockaddr *)out, &l);
    close(t);
    ((struct sockaddr_in *)out)->sin_port = port;
    return r ? -1 : 0;
}

/* The resolution's id needs no port of its own, but rdma_resolve_addr
 * from port 0 claims one in the RDMA UDP port space, at random from the
 * range the kernel gives UDP sockets theirs (and softrdma keeps a plain
 * port-0 claim for a while after rdma_destroy_id). A socket made later
 * whose kernel port is that one could not bind its UD QP there
 * (EADDRINUSE): its data stayed on UDP. On softrdma a REUSEADDR claim
 * never stands in the way of a bind to a given port (the kernel's rdma_cm
 * frees the port at rdma_destroy_id). Best effort: without the option the
 * resolution works as before. */
static int resolve_id_make(struct dsock *d, struct ds_dest *ds)
{
    int one = 1;
    if (rdma_create_id(d->cm, &ds->res, ds, RDMA_PS_UDP))
        return -1;
    (void)rdma_set_option(ds->res, RDMA_OPTION_ID, RDMA_OPTION_ID_REUSEADDR, &one, sizeof(one));
    return 0;
}

static void resolve_start(struct dsock *d, struct ds_dest *ds)
{
    if (ds->res || !ds->qp)
        return;
    struct sockaddr_storage src = ds->qp->local;
    ((struct sockaddr_in *)&src)->sin_port = 0;
    if (resolve_id_make(d, ds)) {
        ds->res = NULL;
        ds->res_failed = 1;
        return;
    }
    if (rdma_resolve_addr(ds->res, (struct sockaddr *)&src, (struct sockaddr *)&ds->addr,
                          DS_RESOLVE_MS)) {
        rdma_destroy_id(ds->res);
        ds->res = NULL;
        ds->res_failed = 1;
    }
    ds->res_ms = rs_now_ms();
    ds->retry_ms = ds->res_ms + DS_RETRY_MS;
}

void ds_dest_retry(struct dsock *d, struct ds_dest *ds)
{
    if (ds->ah || !ds->qp)
        return;
    int64_t now = rs_now_ms();
    if (ds->res && now - ds->res_ms > DS_RESOLVE_STUCK_MS) {
        /* no event came (an overloaded or restarted peer device): give up
         * this one, so that the next can start */
        rs_log(1, "datagram socket: a peer's address resolution got no answer in %d ms; retrying",
               DS_RESOLVE_STUCK_MS);
        rdma_destroy_id(ds->res);
        ds->res = NULL;
        ds->res_failed = 1;
    }
    if (!ds->res && now >= ds->retry_ms)
        resolve_start(d, ds);
}

struct ds_dest *ds_dest_find(struct dsock *d, const struct sockaddr *peer)
{
    for (struct ds_dest *ds = d->hash[ds_addr_hash(peer) % DS_HASH]; ds; ds = ds->next)
        if (ds_addr_equal((struct sockaddr *)&ds->addr, peer))
            return ds;
    return NULL;
}

struct ds_dest *ds_dest_get(struct dsock *d, const struct sockaddr *peer)
{
    struct ds_dest *ds = ds_dest_find(d, peer);
    if (ds)
        return ds;
    if (d->n_dests >= DS_DEST_MAX) {
        errno = ENOBUFS;                 /* a flood of sources must not eat memory */
        return NULL;
    }
    struct sockaddr_storage local;
    if (local_toward(d, peer, &local) || !(ds = calloc(1, sizeof(*ds))))
        return NULL;
    d->n_dests++;
    memcpy(&ds->addr, peer, sa_len(peer));
    ds->local = local;
    ds->qp = ds_qp_get(d, (struct sockaddr *)&local);   /* NULL: UDP only (logged) */
    uint32_t h = ds_addr_hash(peer) % DS_HASH;
    ds->next = d->hash[h];
    d->hash[h] = ds;
    resolve_start(d, ds);
    return ds;
}

void ds_dest_learn(struct dsock *d, struct ds_dest *ds, uint32_t qpn)
{
    /* QPN 0 (QP0 is never a data QP): the peer has no UD QP, stays on UDP */
    if (qpn == 0 || (qpn == ds->qpn && (ds->ah || ds->res)))
        return;
    if (qpn != ds->qpn && ds->ah) {
        /* the peer made a new QP: its old AH may name another port */
        ibv_destroy_ah(ds->ah);
        ds->ah = NULL;
    }
    ds->qpn = qpn;
    if (!ds->ah)
        resolve_start(d, ds);
}

static int sgid_index(struct ibv_context *ctx, uint8_t port, const union ibv_gid *want)
{
    union ibv_gid g;
    for (int i = 0; i < 16; i++)
        if (ibv_query_gid(ctx, port, i, &g) == 0 && memcmp(&g, want, sizeof(g)) == 0)
            return i;
    return 0;
}

/* The AH from the resolved route, as librdmacm's udp_svc_create_ah; a GRH
 * also when the path has no LID (RoCE-like devices route by GID). */
static void make_ah(struct ds_dest *ds, struct rdma_cm_id *id)
{
    struct ibv_sa_path_rec *p = id->route.path_rec;
    if (!p)
        return;
    struct ibv_ah_attr a = { .dlid = ntohs(p->dlid), .sl = p->sl,
                             .static_rate = p->rate, .port_num = id->port_num };
    if (p->hop_limit > 1 || a.dlid == 0) {
        a.is_global = 1;
        a.grh.dgid = p->dgid;
        a.grh.sgid_index = (uint8_t)sgid_index(id->verbs, id->port_num, &p->sgid);
        a.grh.flow_label = ntohl(p->flow_label);
        a.grh.hop_limit = p->hop_limit;
        a.grh.traffic_class = p->traffic_class;
    }
    ds->ah = ibv_create_ah(ds->qp->pd, &a);
    if (!ds->ah)
        rs_log(2, "datagram socket: no address handle for a peer (%s); it stays on UDP",
               strerror(errno));
}

static void resolve_done(struct ds_dest *ds, int ok)
{
    struct rdma_cm_id *id = ds->res;
    ds->res = NULL;
    ds->res_failed = !ok;
    rdma_destroy_id(id);
}

void ds_dest_cm_events(struct dsock *d)
{
    struct rdma_cm_event *ev;
    for (int i = 0; i < 64 && rdma_get_cm_event(d->cm, &ev) == 0; i++) {
        struct ds_dest *ds = ev->id->context;
        enum rdma_cm_event_type t = ev->event;
        struct rdma_cm_id *id = ev->id;
        if (t == RDMA_CM_EVENT_ROUTE_RESOLVED && ds->res == id)
            make_ah(ds, id);
        rdma_ack_cm_event(ev);
        if (ds->res != id)
            continue;
        if (t == RDMA_CM_EVENT_ADDR_RESOLVED) {
            if (rdma_resolve_route(id, DS_RESOLVE_MS))
                resolve_done(ds, 0);
        } else {
            resolve_done(ds, t == RDMA_CM_EVENT_ROUTE_RESOLVED && ds->ah);
        }
    }
}

void ds_dest_free_all(struct dsock *d)
{
    for (int h = 0; h < DS_HASH; h++) {
        while (d->hash[h]) {
            struct ds_dest *ds = d->hash[h];
            d->hash[h] = ds->next;
            if (ds->res)
                rdma_destroy_id(ds->res);
            if (ds->ah)
                ibv_destroy_ah(ds->ah);
            free(ds);
        }
    }
}
