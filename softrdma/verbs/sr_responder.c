/* softrdma: the responder side: applies a peer's requests to this
 * process's registered memory and answers in order (ACK, NAK, READ data). */
#include "sr_internal.h"
#include "sr_sys.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define SR_OUTQ 256
#define SR_RNR_STEP_MS 10

static struct sr_inconn *sr_inconns;   /* guarded by sr_lock */
static void sr_resp_cb(struct sr_watch *w, uint32_t events);
static void sr_resp_process(struct sr_inconn *c);
static int sr_resp_flush(struct sr_inconn *c);

void sr_resp_accept(int fd)
{
    struct sr_inconn *c = calloc(1, sizeof *c);
    if (c)
        c->outq = calloc(SR_OUTQ, sizeof *c->outq);
    if (!c || !c->outq) {
        free(c);
        sr_sys_close(fd);
        return;
    }
    c->outq_cap = SR_OUTQ;
    c->forced_rnr = sr_knobs.force_rnr;
    if (sr_watch_add(&c->w, fd, EPOLLIN, sr_resp_cb)) {
        free(c->outq);
        free(c);
        return;
    }
    c->next = sr_inconns;
    sr_inconns = c;
    /* A requester reopening its stream after an idle close writes its
     * hello and request at once: read them in this round, as the bytes of
     * a standing stream would be, not one epoll round later (a disconnect
     * handled in between would put the QP in ERR first). */
    sr_resp_process(c);
}

void sr_resp_detach(struct sr_inconn *c)
{
    if (c->detached)
        return;
    c->detached = 1;
    /* Answers already due (ACKs of delivered requests) still leave, as a
     * NIC has sent them by the time it completes the receive: best effort,
     * never blocking. */
    if (c->outq_count && c->w.fd >= 0)
        sr_resp_flush(c);
    sr_watch_del(&c->w);
    if (c->qp && c->qp->in == c)
        c->qp->in = NULL;
    for (struct sr_inconn **pp = &sr_inconns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    sr_defer_free(c->outq);
    sr_defer_free(c);
}

/* SOFTRDMA_ACK_DELAY_MS: answers leave only once the oldest queued one has
 * waited that long (a slow acknowledgement path: the requester's
 * completions come late while the data is already delivered). */
static int sr_resp_held(struct sr_inconn *c)
{
    if (sr_knobs.ack_delay_ms <= 0 || !c->outq_count || c->dead || c->detached)
        return 0;
    uint64_t now = sr_now_ms();
    if (!c->ack_due)
        c->ack_due = now + (uint64_t)sr_knobs.ack_delay_ms;
    return now < c->ack_due;
}

static void sr_resp_update_watch(struct sr_inconn *c)
{
    uint32_t ev = 0;
    if (!c->stalled && !c->dead && c->outq_count < c->outq_cap)
        ev |= EPOLLIN;
    if (c->outq_count && !sr_resp_held(c))
        ev |= EPOLLOUT;
    sr_watch_mod(&c->w, ev);
}

static void sr_resp_queue(struct sr_inconn *c, uint8_t type, uint8_t status, char *data, uint32_t len)
{
    if (type == SR_RESP_ACK && c->outq_count) {
        /* an ACK not yet on the wire covers this request too: one
         * message and one wakeup of the requester for a whole batch */
        struct sr_outq_item *last = &c->outq[(c->outq_head + c->outq_count - 1) % c->outq_cap];
        if (last->hdr.type == SR_RESP_ACK && !last->sent && last->hdr.count < UINT16_MAX) {
            last->hdr.count++;
            return;
        }
    }
    struct sr_outq_item *it = &c->outq[(c->outq_head + c->outq_count) % c->outq_cap];
    memset(it, 0, sizeof *it);
    it->hdr.type = type;
    it->hdr.status = status;
    it->hdr.len = len;
    it->hdr.count = 1;
    it->data = data;
    c->outq_count++;
}

#define SR_FLUSH_BATCH 32

/* Counts n bytes written off the head of the queue. */
static void sr_resp_sent(struct sr_inconn *c, size_t n)
{
    while (n && c->outq_count) {
        struct sr_outq_item *it = &c->outq[c->outq_head];
        size_t due = sizeof it->hdr + it->hdr.len - it->sent;
        if (n < due) {
            it->sent += n;
            return;
        }
        n -= due;
        c->outq_head = (c->outq_head + 1) % c->outq_cap;
        c->outq_count--;
    }
}

/* Writes queued answers, up to SR_FLUSH_BATCH per sendmsg.
 * Returns -1 when the peer is gone. */
static int sr_resp_flush(struct sr_inconn *c)
{
    if (sr_resp_held(c))
        return 0;       /* the timers send them when due */
    c->ack_due = 0;
    while (c->outq_count) {
        struct iovec iov[2 * SR_FLUSH_BATCH];
        int niov = 0;
        size_t total = 0;
        for (int k = 0; k < c->outq_count && k < SR_FLUSH_BATCH; k++) {
            struct sr_outq_item *it = &c->outq[(c->outq_head + k) % c->outq_cap];
            iov[niov++] = (struct iovec){ &it->hdr, sizeof it->hdr };
            if (it->hdr.len)
                iov[niov++] = (struct iovec){ it->data, it->hdr.len };
            total += sizeof it->hdr + it->hdr.len;
        }
        size_t done = c->outq[c->outq_head].sent;
        struct iovec *cur = iov;
        sr_iov_advance(&cur, &niov, done);
        struct msghdr mh = { .msg_iov = cur, .msg_iovlen = (size_t)niov };
        ssize_t n = sr_sys_sendmsg(c->w.fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0)
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        sr_resp_sent(c, (size_t)n);
        if ((size_t)n < total - done)
            return 0;   /* socket full: EPOLLOUT brings us back */
    }
    return 0;
}

static int sr_needs_recv(uint8_t op)
{
    return op == SR_OP_SEND || op == SR_OP_SEND_IMM || op == SR_OP_WRITE_IMM;
}

/* A NAK ends the stream: the requester's QP goes to ERR. */
static void sr_resp_nak(struct sr_inconn *c, enum ibv_wc_status st)
{
    sr_resp_queue(c, SR_RESP_NAK, (uint8_t)st, NULL, 0);
    c->dead = 1;
}

/* A responder error other than RNR (bad rkey, bounds, access, length,
 * receive lkey): as on hardware, the responder's own QP goes to ERR and
 * the NAK goes out. The QP is in ERR before the NAK leaves, so that no
 * one who learns of the error (from this side's or the peer's completion)
 * finds it still in RTS. The stream is cut loose from the QP first so that
 * the NAK still drains; it is released when the requester closes it. */
static void sr_resp_fatal(struct sr_inconn *c, enum ibv_wc_status st)
{
    struct sr_qp *qp = c->qp;
    if (qp->in == c)
        qp->in = NULL;
    c->qp = NULL;
    sr_qp_to_error(qp);
    sr_resp_nak(c, st);
    sr_resp_flush(c);
}

static int sr_remote_ok(struct sr_inconn *c, int access)
{
    struct sr_qp *qp = c->qp;
    if (!c->hdr.len)
        return 1;
    if ((qp->access & access) != access)
        return 0;
    return sr_mr_check(qp->pub.pd, c->hdr.rkey, c->hdr.raddr, c->hdr.len, access) != NULL;
}

/* Copies the leading SGEs of a receive that hold exactly len bytes (the
 * last one trimmed): a SEND shorter than its receive must not take bytes
 * of the next message. Returns the number of entries. */
static int sr_iov_prefix(struct iovec *dst, const struct sr_sge_sh *src, int nsge, size_t len)
{
    int n = 0;
    for (int i = 0; i < nsge && len; i++) {
        dst[n].iov_base = (void *)(uintptr_t)src[i].addr;
        dst[n].iov_len = src[i].len;
        if (dst[n].iov_len > len)
            dst[n].iov_len = len;
        len -= dst[n].iov_len;
        if (dst[n].iov_len)
            n++;
    }
    return n;
}

/* The receive lives in shared memory a peer can write: its SGEs are
 * checked against our own MR table when data is scattered into them (as
 * hardware checks lkeys then), so nothing lands outside a registered,
 * locally writable region of the QP's PD. */
static int sr_resp_rwqe_iov(struct sr_inconn *c, size_t len)
{
    struct sr_rwqe *rw = c->rwqe;
    struct sr_sge_sh sg[SR_MAX_SGE];
    uint32_t n = __atomic_load_n(&rw->nsge, __ATOMIC_RELAXED);
    if (rw->bad_lkey || n > SR_MAX_SGE)
        return -1;
    memcpy(sg, rw->sge, n * sizeof sg[0]);  /* checked and used: one copy */
    for (uint32_t i = 0; i < n; i++)
        if (!sr_mr_check(c->qp->pub.pd, sg[i].lkey, sg[i].addr, sg[i].len, IBV_ACCESS_LOCAL_WRITE))
            return -1;
    c->niov = sr_iov_prefix(c->iov, sg, (int)n, len);
    return 0;
}

/* Sets up where the payload of c->hdr goes. Returns 0, or 1 if stalled (RNR). */
static int sr_resp_start(struct sr_inconn *c)
{
    struct sr_qp *qp = c->qp;
    struct sr_req_hdr *h = &c->hdr;
    c->niov = 0;
    c->discard = 0;
    c->pending_status = 0;
    c->rwqe = NULL;
    c->left = h->op == SR_OP_READ ? 0 : h->len;
    if (qp->pub.state == IBV_QPS_RESET || qp->pub.state == IBV_QPS_INIT || sr_link_is_down(qp)) {
        /* not ready to receive, or this QP's link is down (sr_link.c): a
         * real HCA drops the packet and the requester retries
         * (sr_resp_timers), up to its retry count */
        if (!c->notready_since)
            c->notready_since = sr_now_ms();
        c->stalled = 1;
        return 1;
    }
    c->notready_since = 0;
    int delay = sr_knobs.delay_ms;
    if (delay > 0 && !c->delay_passed) {
        uint64_t now = sr_now_ms();
        if (!c->delay_until)
            c->delay_until = now + (uint64_t)delay;
        if (now < c->delay_until) {
            c->stalled = 1;     /* fault injection: a slow responder */
            return 1;
        }
        c->delay_passed = 1;
    }
    if (h->op < SR_OP_SEND || h->op > SR_OP_READ) {
        sr_resp_fatal(c, IBV_WC_REM_INV_REQ_ERR);
        return 0;
    }
    if (sr_needs_recv(h->op)) {
        sr_shm_lock(&qp->s->lock);
        int none = qp->s->rq_head == __atomic_load_n(&qp->s->rq_tail, __ATOMIC_ACQUIRE);
        if (!none)
            c->rwqe = sr_rwqe_at(qp->s, qp->s->rq_head);
        pthread_mutex_unlock(&qp->s->lock);
        if (none || c->forced_rnr > 0) {
            c->rwqe = NULL;
            c->stalled = 1;
            return 1;
        }
        c->rnr_retries = 0;
        c->rnr_deadline = 0;
    }
    if (h->op == SR_OP_READ) {
        if (!sr_remote_ok(c, IBV_ACCESS_REMOTE_READ))
            sr_resp_fatal(c, IBV_WC_REM_ACCESS_ERR);
        else
            sr_resp_queue(c, SR_RESP_READ, 0, (char *)(uintptr_t)h->raddr, h->len);
        return 0;
    }
    if (h->op == SR_OP_WRITE || h->op == SR_OP_WRITE_IMM) {
        if (!sr_remote_ok(c, IBV_ACCESS_REMOTE_WRITE)) {
            c->discard = 1;
            c->pending_status = IBV_WC_REM_ACCESS_ERR;
        } else if (h->len) {
            c->iov[0].iov_base = (void *)(uintptr_t)h->raddr;
            c->iov[0].iov_len = h->len;
            c->niov = 1;
        }
        return 0;
    }
    if (h->len > c->rwqe->len) {
        c->discard = 1;
        c->pending_status = IBV_WC_REM_INV_REQ_ERR;
        return 0;
    }
    if (h->len && sr_resp_rwqe_iov(c, h->len)) {
        c->discard = 1;
        c->pending_status = IBV_WC_REM_OP_ERR;
        return 0;
    }
    return 0;
}

/* The receive being filled leaves the queue. */
static void sr_resp_take_rwqe(struct sr_inconn *c)
{
    struct sr_shm_qp *b = c->qp->s;
    sr_shm_lock(&b->lock);
    __atomic_store_n(&b->rq_head, b->rq_head + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&b->lock);
    c->rwqe = NULL;
}

/* Payload has landed: complete the receive, then acknowledge. */
static void sr_resp_finish(struct sr_inconn *c)
{
    struct sr_qp *qp = c->qp;
    struct sr_req_hdr *h = &c->hdr;
    c->have_hdr = 0;
    c->hdr_got = 0;
    c->delay_until = 0;
    c->delay_passed = 0;
    if (c->dead)
        return;     /* already answered with a NAK */
    if (c->pending_status) {
        if (c->rwqe) {
            /* receiver side of the failure: too short, or a bad lkey */
            enum ibv_wc_status mine = c->pending_status == IBV_WC_REM_OP_ERR ?
                                      IBV_WC_LOC_PROT_ERR : IBV_WC_LOC_LEN_ERR;
            struct ibv_wc wc = { .wr_id = c->rwqe->wr_id, .status = mine,
                                 .opcode = IBV_WC_RECV, .qp_num = qp->pub.qp_num,
                                 .src_qp = c->hello.src_qpn };
            sr_resp_take_rwqe(c);
            sr_qp_set_state(qp, IBV_QPS_ERR);   /* before its completion shows */
            sr_qp_complete(qp, 1, &wc);
        }
        sr_resp_fatal(c, (enum ibv_wc_status)c->pending_status);
        return;
    }
    if (h->op == SR_OP_READ)
        return;     /* the READ response already is the answer */
    if (c->rwqe) {
        struct ibv_wc wc = { .wr_id = c->rwqe->wr_id, .status = IBV_WC_SUCCESS,
                             .byte_len = h->len, .qp_num = qp->pub.qp_num,
                             .src_qp = c->hello.src_qpn };
        wc.opcode = h->op == SR_OP_WRITE_IMM ? IBV_WC_RECV_RDMA_WITH_IMM : IBV_WC_RECV;
        if (h->op != SR_OP_SEND) {
            wc.wc_flags = IBV_WC_WITH_IMM;
            wc.imm_data = h->imm;
        }
        sr_resp_take_rwqe(c);
        sr_qp_complete(qp, 1, &wc);
    }
    sr_resp_queue(c, SR_RESP_ACK, 0, NULL, 0);
}

static int sr_resp_hello(struct sr_inconn *c)
{
    int r = sr_rx_need(c->w.fd, &c->rx, &c->hello, sizeof c->hello, &c->hello_got);
    if (r <= 0)
        return r;
    struct sr_qp *qp = c->hello.magic == SR_HELLO_MAGIC ? sr_qp_find(c->hello.dst_qpn) : NULL;
    /* a UD QP takes no RC requests (a HCA drops the transport mismatch) */
    if (!qp || qp->ud || qp->pub.state == IBV_QPS_ERR)
        return -1;
    /* a requester back after an idle close wants the QP it attached to;
     * a reset since then broke that link (it was broken at once when the
     * stream stayed open) */
    if (c->hello.gen && c->hello.gen != __atomic_load_n(&qp->s->gen, __ATOMIC_ACQUIRE))
        return -1;
    if (c->hello.has_dgid && !sr_gid_is_local(c->hello.dgid)) {
        /* Packets for another host's GID never reach this QP: the
         * requester sees its link fail (RETRY_EXC_ERR), as on a wire. */
        sr_log("QP %u: request from QP %u addressed to a GID that is not on this host; dropped",
               qp->pub.qp_num, c->hello.src_qpn);
        return -1;
    }
    if (qp->in)
        sr_resp_detach(qp->in);
    qp->in = c;
    c->qp = qp;
    sr_fast_offer(c->w.fd, qp);
    return 1;
}

static void sr_resp_process(struct sr_inconn *c)
{
    for (int i = 0; i < 256; i++) {
        if (c->detached)
            return;
        if (c->dead || c->stalled || c->outq_count == c->outq_cap)
            break;
        int r;
        if (!c->qp) {
            r = sr_resp_hello(c);
        } else if (c->have_hdr) {
            r = sr_rx_payload(c->w.fd, &c->rx, c->discard ? NULL : c->iov, &c->niov, &c->left);
            if (r == 1)
                sr_resp_finish(c);
        } else {
            r = sr_rx_need(c->w.fd, &c->rx, &c->hdr, sizeof c->hdr, &c->hdr_got);
            if (r == 1 && c->hdr.len > SR_MAX_MSG) {
                /* no valid request is that long: the stream cannot be
                 * trusted to stay in step, so it is dropped */
                sr_log("QP %u: request of %u bytes from QP %u exceeds the %u-byte message limit; stream dropped",
                       c->qp->pub.qp_num, c->hdr.len, c->hello.src_qpn, SR_MAX_MSG);
                r = -1;
            } else if (r == 1) {
                c->have_hdr = 1;
                if (sr_resp_start(c) == 0 && c->left == 0)
                    sr_resp_finish(c);
            }
        }
        if (r < 0) {
            sr_resp_flush(c);
            sr_resp_detach(c);
            return;
        }
        if (r == 0)
            break;
    }
    if (c->detached)
        return;
    if (sr_resp_flush(c) < 0) {
        sr_resp_detach(c);
        return;
    }
    sr_resp_update_watch(c);
    /* Requests already read into c->rx are invisible to epoll: when the
     * loop stops at its bound (or on a full answer queue that the flush
     * above emptied) with the socket drained, no event would ever come
     * for them, and the requester waits for their answers forever. */
    if (!c->stalled && !c->dead && c->outq_count < c->outq_cap && c->rx.off < c->rx.len)
        sr_watch_again(&c->w);
}

static void sr_resp_cb(struct sr_watch *w, uint32_t events)
{
    struct sr_inconn *c = (struct sr_inconn *)w;
    if (c->detached)
        return;
    if ((events & (EPOLLHUP | EPOLLERR)) && (c->stalled || c->dead)) {
        sr_resp_detach(c);
        return;
    }
    if (c->dead && !c->outq_count) {
        sr_resp_detach(c);
        return;
    }
    sr_resp_process(c);
}

/* A receive may now be there: retry the stalled request. */
void sr_resp_resume(struct sr_inconn *c)
{
    if (!c->stalled || c->detached)
        return;
    c->stalled = 0;
    if (sr_resp_start(c) == 1)
        return;
    if (c->left == 0)
        sr_resp_finish(c);
    if (!c->detached)
        sr_resp_process(c);
}

/* The request at the head of a stalled stream fails: NAK (the requester's
 * QP goes to ERR with st), the stream is dead. */
static void sr_resp_give_up(struct sr_inconn *c, enum ibv_wc_status st)
{
    c->stalled = 0;
    c->have_hdr = 0;
    sr_resp_nak(c, st);
    if (sr_resp_flush(c) < 0)
        sr_resp_detach(c);
    else
        sr_resp_update_watch(c);
}

/* A request to a QP not yet in RTR has been retried for as long as the
 * requester's retry_cnt+1 tries of its local ACK timeout (4.096 us <<
 * timeout, at least SR_RNR_STEP_MS) allow; timeout 0 waits forever. */
static int sr_resp_notready_expired(const struct sr_inconn *c, uint64_t now)
{
    uint64_t budget = sr_retry_budget_ms(c->hdr.timeout, c->hdr.retry_cnt, SR_RNR_STEP_MS);
    if (!budget || !c->notready_since)
        return 0;
    return now - c->notready_since >= budget;
}

/* Every SR_RNR_STEP_MS a stalled stream counts one RNR retry; past the
 * request's rnr_retry (7 = forever) the request fails with RNR_RETRY_EXC. */
void sr_resp_timers(uint64_t now, int *next_ms)
{
    struct sr_inconn *c, *next;
    for (c = sr_inconns; c; c = next) {
        next = c->next;
        if (c->ack_due && !c->detached) {
            if (now >= c->ack_due && sr_resp_flush(c) < 0) {
                sr_resp_detach(c);
                continue;
            }
            if (c->ack_due && (int)(c->ack_due - now) < *next_ms)
                *next_ms = (int)(c->ack_due - now);
            sr_resp_update_watch(c);
        }
        if (!c->stalled || c->detached)
            continue;
        if (!c->rnr_deadline)
            c->rnr_deadline = now + SR_RNR_STEP_MS;
        if (now < c->rnr_deadline) {
            int left = (int)(c->rnr_deadline - now);
            if (left < *next_ms)
                *next_ms = left;
            continue;
        }
        c->rnr_deadline = now + SR_RNR_STEP_MS;
        if (*next_ms > SR_RNR_STEP_MS)
            *next_ms = SR_RNR_STEP_MS;
        if (c->delay_until && !c->delay_passed) {
            sr_resp_resume(c);  /* held by SOFTRDMA_DELAY_MS, not an RNR */
            continue;
        }
        if (c->qp->pub.state == IBV_QPS_RESET || c->qp->pub.state == IBV_QPS_INIT ||
            sr_link_is_down(c->qp)) {
            /* not an RNR: the QP is not ready yet or its link is down; the
             * requester's transport retries run out eventually */
            if (sr_resp_notready_expired(c, now)) {
                sr_log("QP %u: request from QP %u retried while this QP is not in RTR or its link is down; retries exhausted",
                       c->qp->pub.qp_num, c->hello.src_qpn);
                sr_resp_give_up(c, IBV_WC_RETRY_EXC_ERR);
            } else {
                sr_resp_resume(c);
            }
            continue;
        }
        if (c->forced_rnr > 0)
            c->forced_rnr--;
        c->rnr_retries++;
        if (c->hdr.rnr_retry < 7 && c->rnr_retries > c->hdr.rnr_retry) {
            sr_resp_give_up(c, IBV_WC_RNR_RETRY_EXC_ERR);
            continue;
        }
        sr_resp_resume(c);
        if (c->stalled && !c->detached)
            sr_resp_update_watch(c);
    }
}
