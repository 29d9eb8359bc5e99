/*
 * ref_conn.c - connection setup and teardown of the reference peer:
 * rdma_cm on an explicit event channel, one RC QP, the three buffers of
 * §1.3, the 40-byte private data of §1.2, and rclose's teardown of §1.8.
 */
#include "ref_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ref_io.h"

static int fail(const char *step)
{
    fprintf(stderr, "rs_ref_peer: %s: %s\n", step, strerror(errno ? errno : EIO));
    return -1;
}

void ref_sizes_default(struct ref_sizes *s)
{
    /* the librdmacm defaults of §2 "Tunables" */
    s->sq_size = 384;
    s->rq_size = 384;
    s->sq_inline = 64;
    s->rbuf_size = 131072;
    s->sbuf_size = 131072;
    s->iomap_size = 0;
    s->claim_big_endian = false;
}

static bool our_order_big_endian(const struct ref_conn *c)
{
    return c->sz.claim_big_endian || BYTE_ORDER == BIG_ENDIAN;
}

static uint64_t to_order64(bool be, uint64_t v) { return be ? htobe64(v) : htole64(v); }
static uint32_t to_order32(bool be, uint32_t v) { return be ? htobe32(v) : htole32(v); }
static uint64_t from_order64(bool be, uint64_t v) { return be ? be64toh(v) : le64toh(v); }
static uint32_t from_order32(bool be, uint32_t v) { return be ? be32toh(v) : le32toh(v); }

static void put_sge_order(bool be, uint8_t *p, const struct ref_sge *s)
{
    uint64_t a = to_order64(be, s->addr);
    uint32_t k = to_order32(be, s->key), l = to_order32(be, s->length);
    memcpy(p, &a, 8); memcpy(p + 8, &k, 4); memcpy(p + 12, &l, 4);
}

/* The peer RDMA-writes the table while we read it: read through volatile. */
static void get_sge_order(bool be, const uint8_t *p, struct ref_sge *s)
{
    uint64_t a; uint32_t k, l;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    memcpy(&a, (const void *)p, 8); memcpy(&k, (const void *)(p + 8), 4);
    memcpy(&l, (const void *)(p + 12), 4);
    s->addr = from_order64(be, a); s->key = from_order32(be, k); s->length = from_order32(be, l);
}

void ref_put_sge_peer(const struct ref_conn *c, uint8_t *p, const struct ref_sge *s)
{
    put_sge_order(c->peer_big_endian, p, s);
}

void ref_target_sge(const struct ref_conn *c, unsigned idx, struct ref_sge *out)
{
    get_sge_order(our_order_big_endian(c), c->target + REF_SGE_WIRE_LEN * idx, out);
}

void ref_target_sge_store(struct ref_conn *c, unsigned idx, const struct ref_sge *s)
{
    put_sge_order(our_order_big_endian(c), c->target + REF_SGE_WIRE_LEN * idx, s);
}

bool ref_target_iomap(const struct ref_conn *c, unsigned idx, uint64_t *offset, struct ref_sge *sge)
{
    const uint8_t *p = c->target + REF_SGE_WIRE_LEN * REF_SGL_SIZE + REF_IOMAP_WIRE_LEN * idx;
    uint64_t off;
    if (idx >= c->sz.iomap_size)
        return false;
    memcpy(&off, p, 8);
    *offset = from_order64(our_order_big_endian(c), off);
    get_sge_order(our_order_big_endian(c), p + 8, sge);
    return sge->length != 0;
}

static size_t page_round(size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    return (n + pg - 1) / pg * pg;
}

static void *page_alloc(size_t n)
{
    void *p = aligned_alloc((size_t)sysconf(_SC_PAGESIZE), page_round(n));
    if (p)
        memset(p, 0, page_round(n));
    return p;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int create_qp(struct ref_conn *c)
{
    struct ibv_qp_init_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.send_cq = c->cq;
    attr.recv_cq = c->cq;
    attr.qp_type = IBV_QPT_RC;
    attr.sq_sig_all = 1;                     /* every send completes (§1.1) */
    attr.cap.max_send_wr = c->sz.sq_size;
    attr.cap.max_recv_wr = c->sz.rq_size;
    attr.cap.max_send_sge = 2;
    attr.cap.max_recv_sge = 1;
    attr.cap.max_inline_data = c->sz.sq_inline;
    if (rdma_create_qp(c->id, c->pd, &attr))
        return fail("rdma_create_qp");
    c->qp = c->id->qp;
    c->sz.sq_inline = attr.cap.max_inline_data;   /* what the QP grants */
    return 0;
}

static int register_buffers(struct ref_conn *c)
{
    int rw = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;
    c->target_len = REF_SGE_WIRE_LEN * REF_SGL_SIZE + REF_IOMAP_WIRE_LEN * (size_t)c->sz.iomap_size;
    c->rbuf = page_alloc(c->sz.rbuf_size);
    /* control messages that cannot go inline are staged past the ring */
    c->sbuf = page_alloc(c->sz.sbuf_size + REF_CTRL_AREA);
    c->target = page_alloc(c->target_len);
    c->rmsg = calloc((size_t)c->sz.rq_size + 1, sizeof(*c->rmsg));
    if (!c->rbuf || !c->sbuf || !c->target || !c->rmsg)
        return fail("buffer allocation");
    c->rbuf_mr = ibv_reg_mr(c->pd, c->rbuf, c->sz.rbuf_size, rw);
    c->target_mr = ibv_reg_mr(c->pd, c->target, c->target_len, rw);
    c->sbuf_mr = ibv_reg_mr(c->pd, c->sbuf, c->sz.sbuf_size + REF_CTRL_AREA,
                           IBV_ACCESS_LOCAL_WRITE);
    if (!c->rbuf_mr || !c->target_mr || !c->sbuf_mr)
        return fail("ibv_reg_mr");
    return 0;
}

static void init_sequence_state(struct ref_conn *c)
{
    c->sqe_avail = c->sz.sq_size - REF_QP_CTRL_SIZE;
    c->ctrl_seqno = 0;
    c->ctrl_max_seqno = REF_QP_CTRL_SIZE;
    c->sbuf_bytes_avail = c->sz.sbuf_size;
    c->rseq_comp = c->sz.rq_size / 2;
    /* the second half is advertised at the first credit update (§1.7) */
    c->rbuf_bytes_avail = c->sz.rbuf_size / 2;
    c->rbuf_free_offset = c->sz.rbuf_size / 2;
}

static int create_endpoint(struct ref_conn *c)
{
    struct ibv_context *ctx = c->id->verbs;
    c->pd = ibv_alloc_pd(ctx);
    if (!c->pd)
        return fail("ibv_alloc_pd");
    c->cq_ch = ibv_create_comp_channel(ctx);
    if (!c->cq_ch || set_nonblock(c->cq_ch->fd))
        return fail("ibv_create_comp_channel");
    c->cq = ibv_create_cq(ctx, c->sz.sq_size + c->sz.rq_size, c, c->cq_ch, 0);
    if (!c->cq)
        return fail("ibv_create_cq");
    if (create_qp(c) || register_buffers(c))
        return -1;
    init_sequence_state(c);
    for (unsigned i = 0; i < c->sz.rq_size; i++)
        if (ref_post_recv(c))
            return fail("ibv_post_recv");
    return 0;
}

static void our_conn_data(const struct ref_conn *c, uint8_t out[REF_CONN_DATA_LEN])
{
    struct ref_conn_data d;
    memset(&d, 0, sizeof(d));
    d.version = REF_PROTO_VERSION;
    d.flags = REF_FLAG_IOMAP | (our_order_big_endian(c) ? REF_FLAG_NET : 0);
    d.credits = c->sz.rq_size;
    d.iomap_size = c->sz.iomap_size;
    d.target_sgl = (struct ref_sge){ (uintptr_t)c->target, c->target_mr->rkey, REF_SGL_SIZE };
    d.data_buf = (struct ref_sge){ (uintptr_t)c->rbuf, c->rbuf_mr->rkey, c->sz.rbuf_size / 2 };
    ref_conn_data_encode(out, &d);
}

/* check_peer_data: decode and validate the peer's 40 bytes (§1.2) */
static int check_peer_data(const void *pd, uint8_t len, struct ref_conn_data *d)
{
    if (!pd || len < REF_CONN_DATA_LEN) {
        fprintf(stderr, "rs_ref_peer: peer private data is %u bytes, need %d\n", len, REF_CONN_DATA_LEN);
        errno = EPROTO;
        return -1;
    }
    ref_conn_data_decode(pd, d);
    if (d->version != REF_PROTO_VERSION) {
        fprintf(stderr, "rs_ref_peer: peer protocol version %u, need 1\n", d->version);
        errno = ENOTSUP;
        return -1;
    }
    if (d->target_sgl.length == 0) {
        fprintf(stderr, "rs_ref_peer: peer target SGL has 0 entries\n");
        errno = EPROTO;
        return -1;
    }
    fprintf(stderr, "rs_ref_peer: peer conn data: flags 0x%x credits %u iomap %u sgl entries %u "
            "first buffer %u bytes\n", d->flags, d->credits, d->iomap_size, d->target_sgl.length,
            d->data_buf.length);
    return 0;
}

/* apply_peer_data: what the receiver of conn data does (§1.2) */
static void apply_peer_data(struct ref_conn *c, const struct ref_conn_data *d)
{
    c->peer = *d;
    c->remote_sgl = d->target_sgl;
    c->remote_sge = 1;                       /* entry 0 is its data_buf */
    c->remote_iomap.addr = d->target_sgl.addr + REF_SGE_WIRE_LEN * (uint64_t)d->target_sgl.length;
    c->remote_iomap.key = d->target_sgl.key;
    c->remote_iomap.length = d->iomap_size;
    c->peer_big_endian = d->flags & REF_FLAG_NET;
    put_sge_order(our_order_big_endian(c), c->target, &d->data_buf);
    c->sseq_comp = d->credits;
}

static void mark_connected(struct ref_conn *c)
{
    c->connected = c->readable = c->writable = true;
}

/* wait_cm_event: the next CM event on our channel, within timeout_ms */
static struct rdma_cm_event *wait_cm_event(struct ref_conn *c, enum rdma_cm_event_type want, int timeout_ms)
{
    struct rdma_cm_event *ev;
    struct pollfd pfd = { .fd = c->cm_ch->fd, .events = POLLIN };
    int r = poll(&pfd, 1, timeout_ms);
    if (r <= 0) {
        errno = r == 0 ? ETIMEDOUT : errno;
        fprintf(stderr, "rs_ref_peer: no CM event %s within %d ms\n", rdma_event_str(want), timeout_ms);
        return NULL;
    }
    if (rdma_get_cm_event(c->cm_ch, &ev)) {
        fail("rdma_get_cm_event");
        return NULL;
    }
    if (ev->event != want) {
        fprintf(stderr, "rs_ref_peer: CM event %s (status %d), expected %s\n",
                rdma_event_str(ev->event), ev->status, rdma_event_str(want));
        errno = ev->event == RDMA_CM_EVENT_REJECTED ? ECONNREFUSED : EPROTO;
        rdma_ack_cm_event(ev);
        return NULL;
    }
    return ev;
}

static int open_channel(struct ref_conn *c)
{
    c->cm_ch = rdma_create_event_channel();
    if (!c->cm_ch || set_nonblock(c->cm_ch->fd))
        return fail("rdma_create_event_channel");
    return 0;
}

int ref_listen(struct ref_conn *c, const struct sockaddr *addr, socklen_t len)
{
    (void)len;
    if (open_channel(c))
        return -1;
    if (rdma_create_id(c->cm_ch, &c->listen_id, c, RDMA_PS_TCP))
        return fail("rdma_create_id");
    if (rdma_bind_addr(c->listen_id, (struct sockaddr *)addr))
        return fail("rdma_bind_addr");
    if (rdma_listen(c->listen_id, 4))
        return fail("rdma_listen");
    return 0;
}

static void fill_connect_params(struct rdma_conn_param *p, const uint8_t *priv)
{
    memset(p, 0, sizeof(*p));
    p->private_data = priv;
    p->private_data_len = REF_CONN_DATA_LEN;
    p->responder_resources = 0;
    p->initiator_depth = 0;       /* never RDMA READ (§1.1; 1 only on iWARP) */
    p->flow_control = 1;
    p->retry_count = 7;
    p->rnr_retry_count = 7;       /* infinite: the protocol depends on it */
}

int ref_accept(struct ref_conn *c, int timeout_ms)
{
    struct rdma_cm_event *ev = wait_cm_event(c, RDMA_CM_EVENT_CONNECT_REQUEST, timeout_ms);
    struct rdma_conn_param param;
    struct ref_conn_data peer;
    uint8_t priv[REF_CONN_DATA_LEN];
    if (!ev)
        return -1;
    c->id = ev->id;
    param = ev->param.conn;                  /* the passive side copies the request's */
    if (check_peer_data(ev->param.conn.private_data, ev->param.conn.private_data_len, &peer)) {
        rdma_ack_cm_event(ev);
        rdma_reject(c->id, NULL, 0);
        return -1;
    }
    rdma_ack_cm_event(ev);
    if (create_endpoint(c))
        return -1;
    apply_peer_data(c, &peer);
    our_conn_data(c, priv);
    param.private_data = priv;               /* ... and replaces the private data */
    param.private_data_len = REF_CONN_DATA_LEN;
    if (rdma_accept(c->id, &param))
        return fail("rdma_accept");
    ev = wait_cm_event(c, RDMA_CM_EVENT_ESTABLISHED, timeout_ms);
    if (!ev)
        return -1;
    rdma_ack_cm_event(ev);
    mark_connected(c);
    return 0;
}

int ref_connect(struct ref_conn *c, const struct sockaddr *addr, int timeout_ms)
{
    struct rdma_cm_event *ev;
    struct rdma_conn_param param;
    struct ref_conn_data peer;
    uint8_t priv[REF_CONN_DATA_LEN];
    int r;
    if (open_channel(c))
        return -1;
    if (rdma_create_id(c->cm_ch, &c->id, c, RDMA_PS_TCP))
        return fail("rdma_create_id");
    if (rdma_resolve_addr(c->id, NULL, (struct sockaddr *)addr, 2000))
        return fail("rdma_resolve_addr");
    if (!(ev = wait_cm_event(c, RDMA_CM_EVENT_ADDR_RESOLVED, timeout_ms)))
        return -1;
    rdma_ack_cm_event(ev);
    if (rdma_resolve_route(c->id, 2000))
        return fail("rdma_resolve_route");
    if (!(ev = wait_cm_event(c, RDMA_CM_EVENT_ROUTE_RESOLVED, timeout_ms)))
        return -1;
    rdma_ack_cm_event(ev);
    if (create_endpoint(c))
        return -1;
    our_conn_data(c, priv);
    fill_connect_params(&param, priv);
    if (rdma_connect(c->id, &param))
        return fail("rdma_connect");
    if (!(ev = wait_cm_event(c, RDMA_CM_EVENT_ESTABLISHED, timeout_ms)))
        return -1;
    r = check_peer_data(ev->param.conn.private_data, ev->param.conn.private_data_len, &peer);
    rdma_ack_cm_event(ev);
    if (r)
        return -1;
    apply_peer_data(c, &peer);
    mark_connected(c);
    return 0;
}

static void dereg(struct ibv_mr **mr)
{
    if (*mr)
        ibv_dereg_mr(*mr);
    *mr = NULL;
}

/* §1.8 rclose: in-band DISCONNECT (sent by the caller), then tear down;
 * rdma_disconnect is never called, the peer learns from the in-band
 * message and from our id going away. */
void ref_destroy(struct ref_conn *c)
{
    if (c->cq_events_unacked && c->cq)
        ibv_ack_cq_events(c->cq, c->cq_events_unacked);
    if (c->id && c->qp)
        rdma_destroy_qp(c->id);
    dereg(&c->rbuf_mr);
    dereg(&c->sbuf_mr);
    dereg(&c->target_mr);
    if (c->cq)
        ibv_destroy_cq(c->cq);
    if (c->cq_ch)
        ibv_destroy_comp_channel(c->cq_ch);
    if (c->pd)
        ibv_dealloc_pd(c->pd);
    if (c->id)
        rdma_destroy_id(c->id);
    if (c->listen_id)
        rdma_destroy_id(c->listen_id);
    if (c->cm_ch)
        rdma_destroy_event_channel(c->cm_ch);
    free(c->rbuf);
    free(c->sbuf);
    free(c->target);
    free(c->rmsg);
    memset(c, 0, sizeof(*c));
}
