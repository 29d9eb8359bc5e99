/*
 * ref_io.c - the reference peer's data path (clean-room reading of the
 * rsockets v1 protocol, reference §1.4-§1.10). Single-threaded: one
 * connection per process, no locks.
 */
#include "ref_io.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define WR_RECV (1ULL << 63)
#define WR_MSG(op, len) (((uint64_t)(op) << 29) | ((len) & REF_IMM_VALUE_MASK))
#define WR_OP(w) ((enum ref_op)(((w) >> 29) & 7))
#define WR_LEN(w) ((uint32_t)((w) & REF_IMM_VALUE_MASK))
#define CQ_ACK_BATCH 64
#define BLOCK_SLICE_MS 500

int64_t ref_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int violation(struct ref_conn *c, const char *what, uint32_t v)
{
    fprintf(stderr, "rs_ref_peer: PROTOCOL VIOLATION by the peer: %s (value %u)\n", what, v);
    c->error = true;
    errno = EPROTO;
    return -1;
}

int ref_post_recv(struct ref_conn *c)
{
    /* 0 SGEs: data comes by RDMA WRITE, the WR only consumes the imm (§1.1) */
    struct ibv_recv_wr wr = { .wr_id = WR_RECV, .sg_list = NULL, .num_sge = 0 }, *bad;
    return ibv_post_recv(c->qp, &wr, &bad);
}

/* post_write: one RDMA WRITE (with imm unless imm_op < 0) of n SGEs */
static int post_write(struct ref_conn *c, struct ibv_sge *sge, int nsge, bool inl, int imm_op,
                      uint32_t imm_val, uint64_t raddr, uint32_t rkey, uint64_t wr_id)
{
    struct ibv_send_wr wr, *bad;
    memset(&wr, 0, sizeof(wr));
    wr.wr_id = wr_id;
    wr.sg_list = nsge ? sge : NULL;
    wr.num_sge = nsge;
    wr.opcode = imm_op < 0 ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_WRITE_WITH_IMM;
    wr.send_flags = IBV_SEND_SIGNALED | (inl ? IBV_SEND_INLINE : 0);
    if (imm_op >= 0)
        wr.imm_data = ref_imm((enum ref_op)imm_op, imm_val);
    wr.wr.rdma.remote_addr = raddr;
    wr.wr.rdma.rkey = rkey;
    if (ibv_post_send(c->qp, &wr, &bad)) {
        fprintf(stderr, "rs_ref_peer: ibv_post_send: %s\n", strerror(errno ? errno : EIO));
        c->error = true;
        return -1;
    }
    c->pending_sends++;
    return 0;
}

static bool ctrl_slot_free(const struct ref_conn *c) { return c->ctrl_seqno != c->ctrl_max_seqno; }

static unsigned rmsg_count(const struct ref_conn *c)
{
    unsigned n = c->sz.rq_size + 1u;
    return (c->rmsg_tail + n - c->rmsg_head) % n;
}

/* §1.7: return credits (and a free half-buffer) when the condition holds */
static int update_credits(struct ref_conn *c)
{
    uint32_t half = c->sz.rbuf_size / 2;
    uint32_t limit;
    if (!(c->rbuf_bytes_avail >= half || (int16_t)(c->rseq_no - c->rseq_comp) >= 0))
        return 0;
    if (!ctrl_slot_free(c) || !c->connected || c->disconnected)
        return 0;
    c->rseq_comp = (uint16_t)(c->rseq_no + c->sz.rq_size / 2);
    limit = (uint16_t)(c->rseq_no + c->sz.rq_size);
    c->ctrl_seqno++;
    if (c->rbuf_bytes_avail >= half) {
        struct ref_sge adv = { (uintptr_t)(c->rbuf + c->rbuf_free_offset), c->rbuf_mr->rkey, half };
        uint8_t *buf = c->sbuf + c->sz.sbuf_size +               /* control area */
                       REF_SGE_WIRE_LEN * (c->ctrl_seqno % REF_QP_CTRL_SIZE);
        bool inl = c->sz.sq_inline >= REF_SGE_WIRE_LEN;
        struct ibv_sge sge = { (uintptr_t)buf, REF_SGE_WIRE_LEN, inl ? 0 : c->sbuf_mr->lkey };
        ref_put_sge_peer(c, buf, &adv);
        if (post_write(c, &sge, 1, inl, REF_OP_SGL, limit,
                       c->remote_sgl.addr + REF_SGE_WIRE_LEN * (uint64_t)c->remote_sge,
                       c->remote_sgl.key, WR_MSG(REF_OP_SGL, 0)))
            return -1;
        c->rbuf_free_offset = (c->rbuf_free_offset + half) % c->sz.rbuf_size;
        c->remote_sge = (c->remote_sge + 1) % c->remote_sgl.length;
        c->rbuf_bytes_avail -= half;
        c->st.credit_sent_sgl++;
    } else {
        if (post_write(c, NULL, 0, false, REF_OP_SGL, limit, 0, 0, WR_MSG(REF_OP_SGL, 0)))
            return -1;
        c->st.credit_sent_zero++;
    }
    return 0;
}

static int on_data(struct ref_conn *c, uint32_t len, uint32_t byte_len)
{
    unsigned n = c->sz.rq_size + 1u;
    if (len == 0 || len > REF_MAX_TRANSFER)
        return violation(c, "data message length outside 1..65536", len);
    if (byte_len != len)
        return violation(c, "imm length differs from bytes written", byte_len);
    if (rmsg_count(c) >= c->sz.rq_size)
        return violation(c, "data message beyond the credits we granted", rmsg_count(c));
    c->rmsg[c->rmsg_tail].len = len;
    c->rmsg_tail = (c->rmsg_tail + 1) % n;
    c->st.data_recv++;
    return 0;
}

static int on_ctrl(struct ref_conn *c, uint32_t type)
{
    switch (type) {
    case REF_CTRL_DISCONNECT:
        c->disconnected = true;          /* queued data is still delivered */
        c->readable = c->writable = false;
        return 1;                        /* CQ processing stops at once */
    case REF_CTRL_SHUTDOWN:
        if (c->writable)
            c->readable = false;
        else
            c->disconnected = true, c->readable = false;
        return 0;
    case REF_CTRL_KEEPALIVE:
        return violation(c, "KEEPALIVE sent as an imm (librdmacm never does)", type);
    default:
        return violation(c, "unknown control type", type);
    }
}

static int on_recv(struct ref_conn *c, const struct ibv_wc *wc)
{
    enum ref_op op;
    uint32_t v;
    int r = 0;
    if (wc->status != IBV_WC_SUCCESS)
        return 0;                        /* failed receives are skipped, not re-posted */
    if (!(wc->wc_flags & IBV_WC_WITH_IMM))
        return violation(c, "receive completion without imm (a SEND?)", wc->byte_len);
    op = ref_imm_op(wc->imm_data);
    v = ref_imm_value(wc->imm_data);
    switch (op) {
    case REF_OP_DATA:
        r = on_data(c, v, wc->byte_len);
        break;
    case REF_OP_SGL:
        c->sseq_comp = (uint16_t)v;
        if (wc->byte_len == REF_SGE_WIRE_LEN)
            c->st.credit_recv_sgl++;
        else if (wc->byte_len == 0)
            c->st.credit_recv_zero++;
        else
            r = violation(c, "credit update of odd size", wc->byte_len);
        break;
    case REF_OP_IOMAP_SGL:
        if (v >= c->sz.iomap_size)
            r = violation(c, "iomap index beyond our table", v);
        else
            c->st.iomap_recv++;
        break;
    case REF_OP_CTRL:
        r = on_ctrl(c, v);
        break;
    default:
        r = violation(c, "reserved imm op", op);
        break;
    }
    if (r >= 0 && !c->disconnected && ref_post_recv(c))
        c->error = true;
    return r;
}

static void on_send_done(struct ref_conn *c, const struct ibv_wc *wc)
{
    enum ref_op op = WR_OP(wc->wr_id);
    c->pending_sends--;
    if (wc->status != IBV_WC_SUCCESS && c->disconnected) {
        /* the peer is gone already: flushed WRs and credit updates that
         * could not reach it are expected, not errors */
    } else if (wc->status != IBV_WC_SUCCESS && op == REF_OP_SGL) {
        /* a credit update races with the peer's rclose by design (it
         * destroys its QP once its own sends completed): the peer is gone,
         * what it sent before is still delivered, then end of stream */
        fprintf(stderr, "rs_ref_peer: note: credit update not delivered (%s): peer closed\n",
                ibv_wc_status_str(wc->status));
        c->disconnected = true;
        c->readable = c->writable = false;
    } else if (wc->status != IBV_WC_SUCCESS) {
        fprintf(stderr, "rs_ref_peer: send completion %s (op %d)\n", ibv_wc_status_str(wc->status), op);
        c->error = true;
    }
    if (op == REF_OP_DATA || op == REF_OP_IOMAP_SGL || op == REF_OP_WRITE) {
        c->sqe_avail++;
        c->sbuf_bytes_avail += WR_LEN(wc->wr_id);
        return;
    }
    c->ctrl_max_seqno++;
    if (op == REF_OP_CTRL && WR_LEN(wc->wr_id) == REF_CTRL_DISCONNECT) {
        struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };
        c->disconnected = true;
        c->readable = c->writable = false;
        ibv_modify_qp(c->qp, &a, IBV_QP_STATE);     /* flush, as ucma_shutdown does */
    }
}

/* drain_cq: process every completion ready now; returns how many */
static int drain_cq(struct ref_conn *c)
{
    struct ibv_wc wc;
    int n = 0, r;
    while ((r = ibv_poll_cq(c->cq, 1, &wc)) == 1) {
        n++;
        if (wc.wr_id & WR_RECV) {
            int stop = on_recv(c, &wc);
            if (stop < 0)
                return -1;
            if (stop > 0)
                break;
        } else {
            on_send_done(c, &wc);
        }
    }
    if (r < 0) {
        c->error = true;
        return -1;
    }
    return n;
}

/* CM events after connect: DISCONNECTED when the peer destroyed its id */
static void poll_cm(struct ref_conn *c)
{
    struct rdma_cm_event *ev;
    while (rdma_get_cm_event(c->cm_ch, &ev) == 0) {
        if (ev->event == RDMA_CM_EVENT_DISCONNECTED || ev->event == RDMA_CM_EVENT_TIMEWAIT_EXIT) {
            c->disconnected = true;
            c->readable = c->writable = false;
        }
        rdma_ack_cm_event(ev);
    }
}

static int wait_channels(struct ref_conn *c, int64_t deadline)
{
    struct pollfd pfd[2] = { { .fd = c->cq_ch->fd, .events = POLLIN },
                             { .fd = c->cm_ch->fd, .events = POLLIN } };
    int64_t left = deadline - ref_now_ms();
    struct ibv_cq *cq;
    void *ctx;
    if (left <= 0) {
        errno = ETIMEDOUT;
        return -1;
    }
    if (poll(pfd, 2, (int)(left < BLOCK_SLICE_MS ? left : BLOCK_SLICE_MS)) < 0 && errno != EINTR)
        return -1;
    if ((pfd[0].revents & POLLIN) && ibv_get_cq_event(c->cq_ch, &cq, &ctx) == 0 &&
        ++c->cq_events_unacked >= CQ_ACK_BATCH) {
        ibv_ack_cq_events(c->cq, c->cq_events_unacked);
        c->cq_events_unacked = 0;
    }
    if (pfd[1].revents & POLLIN)
        poll_cm(c);
    return 0;
}

int ref_progress(struct ref_conn *c, int64_t deadline)
{
    int n;
    if (c->error) {
        errno = errno ? errno : EIO;
        return -1;
    }
    if (update_credits(c) || (n = drain_cq(c)) < 0 || update_credits(c))
        return -1;
    if (n > 0)
        return 0;
    if (ibv_req_notify_cq(c->cq, 0))
        return -1;
    if ((n = drain_cq(c)) < 0 || update_credits(c))
        return -1;
    if (n > 0)
        return 0;
    return wait_channels(c, deadline);
}

static bool can_send(struct ref_conn *c)
{
    struct ref_sge t;
    ref_target_sge(c, c->target_sge, &t);
    return c->sqe_avail > 0 && c->sbuf_bytes_avail >= REF_SNDLOWAT &&
           c->sseq_no != c->sseq_comp && t.length != 0;
}

static int wait_can_send(struct ref_conn *c, int64_t deadline)
{
    while (!can_send(c)) {
        if (c->disconnected || !c->writable) {
            errno = c->disconnected ? ECONNRESET : EPIPE;
            return -1;
        }
        if (ref_progress(c, deadline))
            return -1;
    }
    return 0;
}

/* stage n bytes in the sbuf ring; fills 1 or 2 SGEs (wrap) */
static int stage_in_sbuf(struct ref_conn *c, const uint8_t *src, uint32_t n, struct ibv_sge sge[2])
{
    uint32_t first = c->sz.sbuf_size - c->sbuf_head;
    int nsge = 1;
    if (first > n)
        first = n;
    memcpy(c->sbuf + c->sbuf_head, src, first);
    sge[0] = (struct ibv_sge){ (uintptr_t)(c->sbuf + c->sbuf_head), first, c->sbuf_mr->lkey };
    if (n > first) {
        memcpy(c->sbuf, src + first, n - first);
        sge[1] = (struct ibv_sge){ (uintptr_t)c->sbuf, n - first, c->sbuf_mr->lkey };
        nsge = 2;
    }
    c->sbuf_head = (c->sbuf_head + n) % c->sz.sbuf_size;
    return nsge;
}

/* §1.5: one data chunk to the current target SGE */
static int send_chunk(struct ref_conn *c, const uint8_t *src, uint32_t n)
{
    struct ref_sge t;
    struct ibv_sge sge[2];
    int nsge;
    bool inl = n <= c->sz.sq_inline;
    ref_target_sge(c, c->target_sge, &t);
    if (inl) {
        sge[0] = (struct ibv_sge){ (uintptr_t)src, n, 0 };
        nsge = 1;
        c->st.inline_sent++;
    } else {
        nsge = stage_in_sbuf(c, src, n, sge);
    }
    /* consume the target SGE before posting: once the write lands the
     * peer may re-advertise this entry, and our store must not undo that */
    {
        struct ref_sge left = { t.addr + n, t.key, t.length - n };
        ref_target_sge_store(c, c->target_sge, &left);
        if (left.length == 0)                    /* a message never crosses an SGE */
            c->target_sge = (c->target_sge + 1) % REF_SGL_SIZE;
    }
    c->sseq_no++;
    c->sqe_avail--;
    c->sbuf_bytes_avail -= n;
    c->st.data_sent++;
    if (n > c->st.chunk_max)
        c->st.chunk_max = n;
    return post_write(c, sge, nsge, inl, REF_OP_DATA, n, t.addr, t.key, WR_MSG(REF_OP_DATA, n));
}

ssize_t ref_send(struct ref_conn *c, const void *buf, size_t len, int64_t deadline)
{
    const uint8_t *p = buf;
    size_t left = len;
    uint32_t olen = REF_OLAP_START_SIZE, xfer;
    struct ref_sge t;
    while (left) {
        if (wait_can_send(c, deadline))
            return -1;
        if (olen < left) {
            xfer = olen;
            if (olen < REF_MAX_TRANSFER)
                olen <<= 1;              /* pipelining: 2 KiB, 4 KiB, ... 64 KiB */
        } else {
            xfer = (uint32_t)left;
        }
        ref_target_sge(c, c->target_sge, &t);
        if (xfer > c->sbuf_bytes_avail)
            xfer = c->sbuf_bytes_avail;
        if (xfer > t.length)
            xfer = t.length;
        if (send_chunk(c, p, xfer))
            return -1;
        p += xfer;
        left -= xfer;
    }
    return (ssize_t)len;
}

static size_t copy_out(struct ref_conn *c, uint8_t *dst, size_t len)
{
    size_t done = 0;
    unsigned n = c->sz.rq_size + 1u;
    while (done < len && rmsg_count(c)) {
        struct ref_rmsg *m = &c->rmsg[c->rmsg_head];
        uint32_t take = m->len < len - done ? m->len : (uint32_t)(len - done);
        uint32_t first = c->sz.rbuf_size - c->rbuf_offset;
        if (first > take)
            first = take;
        memcpy(dst + done, c->rbuf + c->rbuf_offset, first);
        memcpy(dst + done + first, c->rbuf, take - first);
        c->rbuf_offset = (c->rbuf_offset + take) % c->sz.rbuf_size;
        c->rbuf_bytes_avail += take;
        m->len -= take;
        done += take;
        if (m->len == 0) {
            c->rmsg_head = (c->rmsg_head + 1) % n;
            c->rseq_no++;
        }
    }
    return done;
}

ssize_t ref_recv(struct ref_conn *c, void *buf, size_t len, int64_t deadline)
{
    while (!rmsg_count(c)) {
        if (c->disconnected || !c->readable) {
            /* the CM's DISCONNECTED can be seen in the same wake-up as the
             * last data completions: poll the CQ before calling it the end */
            if (!c->error && drain_cq(c) > 0 && rmsg_count(c))
                break;
            if (c->error) {
                errno = EIO;
                return -1;
            }
            return 0;
        }
        if (ref_progress(c, deadline))
            return -1;
    }
    return (ssize_t)copy_out(c, buf, len);
}

int ref_recv_all(struct ref_conn *c, void *buf, size_t len, int64_t deadline)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = ref_recv(c, (uint8_t *)buf + got, len - got, deadline);
        if (r <= 0) {
            fprintf(stderr, "rs_ref_peer: stream ended after %zu of %zu bytes (%s)\n", got, len,
                    r == 0 ? "EOF" : strerror(errno));
            if (r == 0)
                errno = ECONNRESET;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static int post_ctrl(struct ref_conn *c, uint32_t type, int64_t deadline)
{
    while (!ctrl_slot_free(c))
        if (ref_progress(c, deadline))
            return -1;
    c->ctrl_seqno++;
    return post_write(c, NULL, 0, false, REF_OP_CTRL, type, 0, 0, WR_MSG(REF_OP_CTRL, type));
}

int ref_wait_sends(struct ref_conn *c, int64_t deadline)
{
    while (c->pending_sends > 0)
        if (ref_progress(c, deadline))
            return -1;
    return 0;
}

/* §1.8 rshutdown */
int ref_shutdown(struct ref_conn *c, int how, int64_t deadline)
{
    int type = -1;
    if (c->disconnected)
        return 0;
    if (how == SHUT_RDWR) {
        c->readable = c->writable = false;
        type = REF_CTRL_DISCONNECT;
    } else if (how == SHUT_WR) {
        c->writable = false;
        type = c->readable ? REF_CTRL_SHUTDOWN : REF_CTRL_DISCONNECT;
    } else {
        c->readable = false;
        type = c->writable ? -1 : REF_CTRL_DISCONNECT;
    }
    if (type >= 0 && post_ctrl(c, (uint32_t)type, deadline))
        return -1;
    return ref_wait_sends(c, deadline);
}

/* §1.8 rclose: SHUT_RDWR if connected, then teardown without rdma_disconnect */
int ref_close(struct ref_conn *c, int64_t deadline)
{
    int r = 0;
    if (c->connected && !c->disconnected)
        r = ref_shutdown(c, SHUT_RDWR, deadline);
    ref_destroy(c);
    return r;
}

/* §1.10: a 0-byte plain RDMA WRITE to address 0, key 0, on a control slot */
int ref_keepalive(struct ref_conn *c, int64_t deadline)
{
    while (!ctrl_slot_free(c))
        if (ref_progress(c, deadline))
            return -1;
    c->ctrl_seqno++;
    c->st.keepalive_sent++;
    return post_write(c, NULL, 0, false, -1, 0, 0, 0, WR_MSG(REF_OP_CTRL, REF_CTRL_KEEPALIVE));
}

/* §1.9: the entry {offset, sge} in the peer's order, one data credit */
int ref_iomap_publish(struct ref_conn *c, unsigned idx, uint64_t offset, struct ibv_mr *mr,
                      int64_t deadline)
{
    uint8_t *buf = c->sbuf + c->sz.sbuf_size + REF_CTRL_IOMAP_OFF;
    struct ref_sge s = { (uintptr_t)mr->addr, mr->rkey, (uint32_t)mr->length };
    bool inl = c->sz.sq_inline >= REF_IOMAP_WIRE_LEN;
    struct ibv_sge sge = { (uintptr_t)buf, REF_IOMAP_WIRE_LEN, inl ? 0 : c->sbuf_mr->lkey };
    uint64_t off = c->peer_big_endian ? htobe64(offset) : htole64(offset);
    if (idx >= c->remote_iomap.length) {
        fprintf(stderr, "rs_ref_peer: iomap slot %u: peer offers only %u\n", idx, c->remote_iomap.length);
        errno = EINVAL;
        return -1;
    }
    if (wait_can_send(c, deadline))
        return -1;
    memcpy(buf, &off, 8);
    ref_put_sge_peer(c, buf + 8, &s);
    if (post_write(c, &sge, 1, inl, REF_OP_IOMAP_SGL, idx,
                   c->remote_iomap.addr + REF_IOMAP_WIRE_LEN * (uint64_t)idx, c->remote_iomap.key,
                   WR_MSG(REF_OP_IOMAP_SGL, 0)))
        return -1;
    c->sseq_no++;
    c->sqe_avail--;
    return 0;
}

/* find_iomap: our table entry (published by the peer) holding offset */
static int find_iomap(const struct ref_conn *c, uint64_t offset, uint64_t *raddr, uint32_t *rkey,
                      uint64_t *room)
{
    for (unsigned i = 0; i < c->sz.iomap_size; i++) {
        uint64_t start;
        struct ref_sge s;
        if (!ref_target_iomap(c, i, &start, &s))
            continue;
        if (offset >= start && offset - start < s.length) {
            *raddr = s.addr + (offset - start);
            *rkey = s.key;
            *room = s.length - (offset - start);
            return 0;
        }
    }
    return -1;
}

/* §1.9 riowrite: plain RDMA WRITEs (no imm, no credit) chunked as rsend */
ssize_t ref_riowrite(struct ref_conn *c, const void *buf, size_t len, uint64_t offset, int64_t deadline)
{
    const uint8_t *p = buf;
    size_t done = 0;
    uint32_t olen = REF_OLAP_START_SIZE;
    while (done < len) {
        uint64_t raddr, room;
        uint32_t rkey, xfer;
        struct ibv_sge sge[2];
        int nsge;
        bool inl;
        if (find_iomap(c, offset + done, &raddr, &rkey, &room))
            break;                       /* unmapped: return what was written */
        if (wait_can_send(c, deadline))
            return done ? (ssize_t)done : -1;
        xfer = len - done > olen ? olen : (uint32_t)(len - done);
        if (olen < REF_MAX_TRANSFER)
            olen <<= 1;
        if (xfer > c->sbuf_bytes_avail)
            xfer = c->sbuf_bytes_avail;
        if (xfer > room)
            xfer = (uint32_t)room;
        inl = xfer <= c->sz.sq_inline;
        if (inl) {
            sge[0] = (struct ibv_sge){ (uintptr_t)(p + done), xfer, 0 };
            nsge = 1;
        } else {
            nsge = stage_in_sbuf(c, p + done, xfer, sge);
        }
        c->sqe_avail--;
        c->sbuf_bytes_avail -= xfer;
        if (post_write(c, sge, nsge, inl, -1, 0, raddr, rkey, WR_MSG(REF_OP_WRITE, xfer)))
            return -1;
        done += xfer;
    }
    return (ssize_t)done;
}
