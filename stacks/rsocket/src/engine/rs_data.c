/*
 * rs_data.c - the data path: completion processing (receiver dispatch,
 * send completions), the send path (staging ring -> RDMA WRITE WITH IMM
 * into the peer's advertised half-buffers) and the receive path (reading
 * rbuf in order, returning credits). Nothing here allocates.
 */
#include "rs_sock.h"
#include "rs_ring.h"
#include "rs_sendq.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>

#define RS_CQ_BATCH     16
#define RS_CQ_ACK_BATCH 64

uint64_t rs_wrid(enum rs_op op, uint32_t value, uint32_t sbuf_bytes)
{
    return (uint64_t)sbuf_bytes << 32 | (uint32_t)op << 29 | (value & RS_IMM_VALUE_MASK);
}

static enum rs_op wrid_op(uint64_t wr_id) { return (enum rs_op)((uint32_t)wr_id >> 29); }
static uint32_t wrid_value(uint64_t wr_id) { return (uint32_t)wr_id & RS_IMM_VALUE_MASK; }
static uint32_t wrid_sbuf(uint64_t wr_id) { return (uint32_t)(wr_id >> 32) & 0x7fffffff; }

/* ---- completions ------------------------------------------------------ */

static void repost_recv(struct rsock *s)
{
    struct ibv_recv_wr wr = { .wr_id = RS_WRID_RECV }, *bad;
    if (ibv_post_recv(s->id->qp, &wr, &bad))
        rs_set_error(s, EIO, "cannot re-post a receive");
}

static void queue_data(struct rsock *s, uint32_t len)
{
    s->rmsg[s->rmsg_tail] = len;
    s->rmsg_tail = rs_ring_advance(s->rmsg_tail, 1, s->rmsg_slots);
    s->rx_window -= len;
    s->rx_queued += len;
    s->rx_bytes += len;
}

static void handle_recv(struct rsock *s, const struct ibv_wc *wc)
{
    struct rs_rx_verdict v;
    struct rs_rx_limits lim = {
        .rx_window = s->rx_window,
        .rmsg_free = s->rmsg_slots - 1 -
                     rs_ring_count(s->rmsg_head, s->rmsg_tail, s->rmsg_slots),
        .sseq_no = s->sseq_no,
        .sseq_comp = s->sseq_comp,
        .peer_rq_size = s->peer_rq_size,
    };

    if (wc->status != IBV_WC_SUCCESS) {
        if (wc->status != IBV_WC_WR_FLUSH_ERR)
            rs_set_error(s, EIO, "receive completion failed");
        else if (s->cm_shared)
            rs_cms_flushed(s);
        return;
    }
    if (!(wc->wc_flags & IBV_WC_WITH_IMM)) {
        rs_set_error(s, EPROTO, "peer sent a message without immediate data");
        return;
    }
    if (s->state == RS_ERROR)
        return;
    rs_wire_classify(wc->imm_data, &lim, &v);
    switch (v.kind) {
    case RS_RX_DATA:       queue_data(s, v.len); break;
    case RS_RX_CREDIT:     s->sseq_comp = v.limit; break;
    case RS_RX_IGNORE:     break;
    /* The sender spent a sequence number on it (ref 1.7). librdmacm's
     * receiver never counts it back, so every riomap shrinks the window
     * for good; counting it as consumed at once returns the credit with
     * the next update (it holds no rmsg slot, so the window stays safe). */
    case RS_RX_IOMAP:      s->rseq_no++; break;
    case RS_RX_SHUTDOWN:   s->peer_wr_closed = 1; break;
    case RS_RX_DISCONNECT:
        s->peer_wr_closed = s->peer_gone = 1;
        if (s->state == RS_CONNECTED)
            rs_set_state(s, RS_DISCONNECTED);
        break;
    case RS_RX_BAD:
        rs_set_error(s, EPROTO, v.why);
        return;
    }
    repost_recv(s);
}

/* Give back what one completed WR held: its budget entry, its staging
 * bytes, the keepalive probe's flag. */
static void release_send(struct rsock *s, uint64_t desc)
{
    enum rs_op op = wrid_op(desc);
    struct rs_sq_budget b = { s->sqe_avail, s->ctrl_avail };

    rs_sq_complete(&b, op);
    s->sqe_avail = b.sqe_avail;
    s->ctrl_avail = b.ctrl_avail;
    if (op == RS_OP_CTRL && wrid_value(desc) == RS_CTRL_KEEPALIVE)
        s->ka_outstanding = 0;      /* answered (or failed: judged below) */
    s->sbuf_bytes_avail += wrid_sbuf(desc);
}

/*
 * A send completion covers its own WR and every unsignalled one posted
 * before it (RC completes in order); all of them are released. The WR
 * it names is the one a failure is judged by.
 */
static void handle_send(struct rsock *s, const struct ibv_wc *wc)
{
    struct rs_sq_track *t = &s->sq_track;
    uint64_t desc = 0;

    if (!rs_sq_track_holds(t, wc->wr_id)) {
        rs_log(3, "send completion for slot %llu, which holds no work request",
               (unsigned long long)wc->wr_id);
        return;
    }
    for (uint32_t n = t->count; n > 0; n--) {
        uint32_t slot = t->head;
        desc = rs_sq_track_pop(t, wrid_sbuf(t->rec[slot]));
        release_send(s, desc);
        if (slot == wc->wr_id)
            break;
    }
    if (s->user_timeout_ms > 0)     /* progress: TCP restarts its timer on an ACK */
        s->ut_since_ms = s->sq_track.sig_outstanding ? rs_now_ms() : 0;
    if (wc->status == IBV_WC_SUCCESS || s->state == RS_ERROR || s->send_fail.pending)
        return;
    enum rs_op op = wrid_op(desc);
    s->send_fail.pending = 1;
    s->send_fail.flushed = wc->status == IBV_WC_WR_FLUSH_ERR;
    s->send_fail.keepalive = op == RS_OP_CTRL && wrid_value(desc) == RS_CTRL_KEEPALIVE;
    s->send_fail.op = (int)op;
    s->send_fail.status = wc->status;
    if (s->send_fail.flushed && s->cm_shared)
        rs_cms_flushed(s);           /* the QP is in error: see rs_cmshare.c */
}

/* Statuses that say the peer's side went away (its queue pair or process),
 * not that this end did something wrong: a reset, as TCP reports a peer
 * that vanished. A flush that this end did not cause (no DISCONNECT sent:
 * judged before) means the queue pair was moved to the error state under
 * us - the device does so when the peer's process dies. */
static int peer_unreachable(int status)
{
    return status == IBV_WC_RETRY_EXC_ERR || status == IBV_WC_RNR_RETRY_EXC_ERR ||
           status == IBV_WC_REM_ABORT_ERR || status == IBV_WC_WR_FLUSH_ERR;
}

/* After a CQ pass: the first failed send of the pass, judged now that any
 * DISCONNECT completed in the same pass has been seen. */
static void judge_send_failure(struct rsock *s)
{
    if (!s->send_fail.pending)
        return;
    s->send_fail.pending = 0;
    if (s->state == RS_ERROR)
        return;
    if (s->cm_shared && !s->peer_gone)
        rs_cms_sync(s);              /* what its own CM channel said first */
    switch (rs_send_failure_verdict(s->send_fail.flushed, s->send_fail.keepalive,
                                    s->peer_gone, s->disconnect_sent)) {
    case RS_SF_IGNORE:
        break;
    case RS_SF_KEEPALIVE_TIMEOUT:
        rs_set_error(s, ETIMEDOUT, "keepalive: peer does not answer");
        break;
    case RS_SF_IO_ERROR: {
        int lost = peer_unreachable(s->send_fail.status);
        if (lost && rs_anchor_peer_lost(s))
            break;
        rs_log(lost ? 1 : 3, "send completion failed: op %d status %s (state %d)", s->send_fail.op,
               ibv_wc_status_str(s->send_fail.status), (int)s->state);
        rs_set_error(s, lost ? ECONNRESET : EIO, NULL);
        break;
    }
    }
}

static int process_cq(struct rsock *s)
{
    struct ibv_wc wc[RS_CQ_BATCH];
    int total = 0, n;

    if (!s->cq)
        return 0;
    /* Bounded: the CQ holds at most sq_size + rq_size entries. */
    while (total <= s->sq_size + s->rq_size &&
           (n = ibv_poll_cq(s->cq, RS_CQ_BATCH, wc)) > 0) {
        for (int i = 0; i < n; i++) {
            if (wc[i].wr_id & RS_WRID_RECV)
                handle_recv(s, &wc[i]);
            else
                handle_send(s, &wc[i]);
        }
        total += n;
    }
    judge_send_failure(s);
    if (total)
        rs_event(s);
    return total;
}

/* Consume the completion-channel event, if there is one; returns 1 or 0.
 * One read at most: the CQ raises one event per arming, and it is armed
 * again only after its event was read, so a second read would only fail
 * with EAGAIN (a syscall on every pass). */
static int take_cq_event(struct rsock *s)
{
    struct ibv_cq *cq;
    void *ctx;

    if (!s->comp_chan || ibv_get_cq_event(s->comp_chan, &cq, &ctx))
        return 0;
    s->cq_armed = 0;
    if (++s->cq_unacked >= RS_CQ_ACK_BATCH) {
        ibv_ack_cq_events(s->cq, s->cq_unacked);
        s->cq_unacked = 0;
    }
    return 1;
}

/* One look at the CQ for a waiter that spins before it sleeps (rs_wait.c):
 * the completions found are handled and, if the CQ was armed, the event
 * they raised is read, as rs_progress does. Returns 1 when any came. */
int rs_spin_cq(struct rsock *s)
{
    if (process_cq(s) <= 0)
        return 0;
    if (s->cq_armed && take_cq_event(s) && s->cookie && rs_notify_fn)
        rs_notify_fn(s->cookie);
    return 1;
}

/*
 * One epoll_wait on the wait fd with no timeout tells which sources have
 * something, instead of a read per source that mostly fails with EAGAIN.
 * Only for connected sockets: other states have more sources (accepting
 * children, the listener-progress fd) and are not on the data path, so
 * they read everything.
 */
static unsigned ready_sources(struct rsock *s)
{
    struct epoll_event ev[8];
    unsigned m = 0;

    if (!rs_sources_known(s))
        return RS_SRC_ALL;
    int n = epoll_wait(s->wait_fd, ev, 8, 0);
    if (n < 0)
        return RS_SRC_ALL;
    for (int i = 0; i < n; i++)
        m |= rs_source_of(s, ev[i].data.fd);
    return m;
}

unsigned rs_source_of(const struct rsock *s, int fd)
{
    if (s->comp_chan && fd == s->comp_chan->fd)
        return RS_SRC_CQ;
    if (s->cm_chan && fd == s->cm_chan->fd)
        return RS_SRC_CM;
    if (fd >= 0 && fd == s->timer_fd)
        return RS_SRC_TIMER;
    if (fd >= 0 && fd == s->anchor_fd)
        return RS_SRC_ANCHOR;
    return RS_SRC_ALL;
}

/*
 * Poll the CQ; if it is not armed, arm it and poll once more (a
 * completion that arrived before the arm would raise no event). Polling
 * finds only completions that came after the last arm, so when it finds
 * any while armed, the event has fired: read it now (one read) rather than
 * let it wake the next wait for nothing (a poll, then the read anyway).
 * Returns the events read.
 */
static int arm_and_poll(struct rsock *s)
{
    if (!s->cq || s->cq_armed || s->fork_gen != rs_fork_gen)
        return 0;
    if (ibv_req_notify_cq(s->cq, 0) == 0) {
        s->cq_armed = 1;
        s->cq_lazy = 0;
    }
    return process_cq(s);
}

/* lazy: leave the CQ unarmed (cq_lazy) for the dispatcher to arm before
 * it sleeps - only when no thread sleeps in the engine on this socket
 * (those rely on the arm of whoever took their wake-up). */
static int poll_and_arm(struct rsock *s, int lazy)
{
    int consumed = 0;

    if (process_cq(s) > 0 && s->cq_armed)
        consumed = take_cq_event(s);
    if (lazy && s->cq && !s->cq_armed && !s->poller_busy && !s->cond_waiters) {
        s->cq_lazy = 1;
        return consumed;
    }
    arm_and_poll(s);
    return consumed;
}

int rs_arm_cq(struct rsock *s)
{
    s->cq_lazy = 0;
    return arm_and_poll(s) > 0;
}

/*
 * All pending work, never blocking: CM events, CQ events, completions,
 * re-arm then poll once more (a completion that arrived before the arm
 * would raise no event), the keepalive timer, credit return.
 *
 * The keepalive timer is judged only after the CQ has been polled: after a
 * long idle gap the probe's answer is usually already in the CQ, and
 * reading the expirations first would declare a live peer dead.
 *
 * When an I/O call (not poll_events) changed the socket's state - a CQ or
 * CM event consumed, a timer expiry - a thread sleeping in the
 * dispatcher's epoll may have lost its wake-up: tell the dispatcher.
 */
static int progress_from(struct rsock *s, unsigned src, int from_poll, int consumed, int lazy);

/*
 * A connected socket woken by its CQ (the usual case) polls the CQ first,
 * which costs no system call: completions found while it was armed mean
 * its one event fired (poll_and_arm's reasoning), and reading that event
 * is all the wake-up costs. Asking the wait fd which sources are ready
 * first costs one more call per wake-up (redis-server over rsocket: 5.2
 * system calls per GET before, 4.2 after). A CM event, timer or anchor
 * news left unread meanwhile keeps the wait fd readable (its sources are
 * level-triggered), so the next wait returns at once and that pass, with
 * no new completion, reads them.
 */
int rs_progress(struct rsock *s, int from_poll)
{
    if (rs_sources_known(s) && s->cq_armed && process_cq(s) > 0) {
        int consumed = take_cq_event(s);
        if (consumed)
            return progress_from(s, 0, from_poll, consumed, 0);
    }
    return progress_from(s, ready_sources(s), from_poll, 0, 0);
}

/*
 * rs_progress for a socket whose wait fd has not fired since the last
 * full pass (the dispatcher's poll_recheck, module ABI 1.5: a level-
 * triggered registration re-checked after the application's own calls, a
 * new or modified one). The CQ is polled as rs_progress does; the wait fd
 * is not asked which sources are ready: any that has something keeps it
 * readable, the dispatcher's next kernel wait sees that and makes a full
 * pass. Saves the epoll_wait of ready_sources on every re-check
 * (redis-server: one per GET).
 */
static int recheck(struct rsock *s, int lazy)
{
    if (!rs_sources_known(s))
        return rs_progress(s, 1);
    int consumed = s->cq_armed && process_cq(s) > 0 ? take_cq_event(s) : 0;
    return progress_from(s, 0, 1, consumed, lazy);
}

int rs_progress_recheck(struct rsock *s)
{
    return recheck(s, 0);
}

/*
 * The dispatcher's lazy pass (module ABI 1.5 poll_lazy, for a socket with
 * one registration in one unwatched epoll set): the CQ whose event this
 * pass took stays unarmed, and the dispatcher arms it (rs_arm_cq) only
 * before it sleeps. While the application is busy - an event loop
 * serving other connections, or writing its reply - the peer's
 * completions then raise no event: no eventfd write and wake-up on the
 * peer's side, no read here. The CQ-first logic of rs_progress stays:
 * completions found while armed mean the event fired.
 */
int rs_progress_lazy(struct rsock *s, int fired)
{
    if (!fired || !rs_sources_known(s))
        return fired ? rs_progress(s, 1) : recheck(s, 1);
    if (s->cq_armed && process_cq(s) > 0) {
        int consumed = take_cq_event(s);
        if (consumed)
            return progress_from(s, 0, 1, consumed, 1);
    }
    return progress_from(s, ready_sources(s), 1, 0, 1);
}

/* rs_progress for a caller that knows which sources are ready (a wait
 * that polled them): RS_SRC_* bits. */
int rs_progress_sources(struct rsock *s, unsigned src, int from_poll)
{
    return progress_from(s, src, from_poll, 0, 0);
}

static int progress_from(struct rsock *s, unsigned src, int from_poll, int consumed, int lazy)
{
    uint64_t gen_before = s->gen;

    if (src & RS_SRC_CM)
        rs_conn_process_cm(s);
    if (s->cm_shared)
        rs_cms_apply(s);
    if ((src & RS_SRC_ANCHOR) && s->anchor_fd >= 0)
        rs_anchor_check(s);
    if (s->lp_in_wait && (s->state < RS_RESOLVING_ADDR || s->state > RS_CONNECTING))
        rs_lprog_del_from_wait_fd(s);     /* the connect has its outcome */
    if (src & RS_SRC_CQ)
        consumed += take_cq_event(s);
    /* The passive side may write its first credit update as soon as it
     * has accepted, before our ESTABLISHED event (and with it the peer's
     * connection data) has been read: leave completions in the CQ until
     * then, unarmed, so they neither get judged against an empty window
     * nor keep the wait fd readable. ESTABLISHED itself wakes us. */
    if (s->state != RS_CONNECTING) {
        consumed += poll_and_arm(s, lazy);
        if (src & RS_SRC_TIMER)
            rs_keepalive_tick(s);
        rs_update_credits(s);
    }
    if (s->lost_until)
        rs_anchor_lost_step(s);       /* the anchor's word, or its timer */
    if (s->cm_detached)
        rs_anchor_fin_step(s);        /* the anchor's FIN stands for DISCONNECTED */
    if (__builtin_expect(s->early_len != 0, 0))
        rs_anchor_early_drain(s, 0);  /* a reply sent while upgrading leaves first */
    if ((consumed || s->gen != gen_before) && !from_poll && s->cookie && rs_notify_fn)
        rs_notify_fn(s->cookie);
    return consumed;
}

/*
 * The send and receive paths' pass: completions only, no system call
 * (polling and arming a CQ are user-space on an HCA). Whatever waits on
 * the wait fd - a CQ event, a CM event, the keepalive timer - is left
 * there: it keeps the wait fd readable, so the next wait or poll_events
 * wakes at once and runs rs_progress. A call that is about to give up
 * (EAGAIN) runs rs_progress itself, so a program that only ever retries
 * still sees a peer's disconnect.
 *
 * The dispatcher is told only when a CQ event was read here: that is the
 * one way this pass can take a wake-up away from a thread sleeping on the
 * wait fd. Completions polled without reading their event leave the fd
 * readable, and the sleeper's own poll_events sees the new state. (A
 * notify per call would cost the dispatcher a lock on every send/recv.)
 */
void rs_progress_io(struct rsock *s)
{
    if (!rs_sources_known(s)) {
        rs_progress(s, 0);
        return;
    }
    /* a CQ left unarmed for the dispatcher stays so: it arms before it sleeps */
    int consumed = poll_and_arm(s, s->cq_lazy);
    rs_update_credits(s);
    if (__builtin_expect(s->early_len != 0, 0))
        rs_anchor_early_drain(s, 0);
    if (consumed && s->cookie && rs_notify_fn)
        rs_notify_fn(s->cookie);
}

/*
 * A nonblocking send or recv about to fail with EAGAIN (rs_progress_io
 * has just polled the CQ): the wait fd's other sources are read too, so
 * that a program that only ever retries still sees a peer's disconnect,
 * the anchor's news and its keepalive timer - at most every
 * RS_GIVEUP_SOURCES_NS per socket. An event loop reads until EAGAIN once
 * per message; a full pass there cost an epoll_wait on the wait fd per
 * message and re-armed a CQ that the dispatcher had left unarmed
 * (poll_lazy), so the peer's next message cost it an eventfd write and
 * us a read (DMM's vs_epoll: both, every message). Between the full
 * passes a source with work keeps the wait fd readable, and the next wait
 * on it makes that pass; a CQ left unarmed stays so.
 */
#define RS_GIVEUP_SOURCES_NS (2 * 1000000)

void rs_progress_giveup(struct rsock *s)
{
    if (!rs_sources_known(s)) {
        rs_progress(s, 0);
        return;
    }
    int64_t t = rs_now_ns();
    if (t - s->giveup_sources_ns < RS_GIVEUP_SOURCES_NS)
        return;
    s->giveup_sources_ns = t;
    if (!s->cq_lazy)
        rs_progress(s, 0);
    else
        progress_from(s, ready_sources(s), 0, 0, 1);
}

/* ---- sending ---------------------------------------------------------- */

/* Load the next advertised receive buffer of the peer, if it has one. The
 * slot is cleared at once: the peer rewrites it only after it was used up. */
static int target_ready(struct rsock *s)
{
    struct rs_wire_sge sge;
    uint8_t *slot = s->target + s->target_sge * RS_SGE_WIRE_LEN;

    if (s->tgt_left)
        return 1;
    if (!rs_peer_len_set(slot + 12))
        return 0;
    rs_wire_decode_sge(slot, rs_wire_host_is_be(), &sge);
    if (sge.length == 0)
        return 0;
    memset(slot + 12, 0, 4);
    s->tgt_addr = sge.addr;
    s->tgt_key = sge.key;
    s->tgt_left = sge.length;
    return 1;
}

int rs_can_send(struct rsock *s)
{
    return s->sqe_avail > 0 && !s->lost_until &&
           s->sbuf_bytes_avail >= RS_SNDLOWAT &&
           rs_seq_has_credit(s->sseq_no, s->sseq_comp) &&
           target_ready(s);
}

/* Whether the WR described by `desc` must be signalled (rs_sendq.h):
 * its budget class says which budget it takes. The staging bytes it holds
 * were already taken from sbuf_bytes_avail by the caller. */
static int post_needs_signal(struct rsock *s, uint64_t desc)
{
    enum rs_op op = wrid_op(desc);
    int ctrl = rs_sq_op_is_ctrl(op);
    struct rs_sq_post p = {
        .must = rs_sq_must_signal(op, wrid_value(desc)),
        .staged = wrid_sbuf(desc),
        .sqe_after = s->sqe_avail - !ctrl,
        .ctrl_after = s->ctrl_avail - ctrl,
        .sbuf_after = s->sbuf_bytes_avail,
    };
    return rs_sq_need_signal(&s->sq_track, &p);
}

/* Post one RDMA write. `desc` (rs_wrid) says what it holds; the wr_id on
 * the wire is its tracker slot, so a completion names it exactly. */
int rs_post_write(struct rsock *s, uint64_t desc, uint32_t imm_be, int with_imm,
                  const struct ibv_sge *sge, int nsge, uint32_t len,
                  uint64_t raddr, uint32_t rkey)
{
    /* with TCP_USER_TIMEOUT every send is signalled: its completion is
     * TCP's ACK, the timeout runs from the oldest unanswered one */
    int sig = post_needs_signal(s, desc) || s->user_timeout_ms > 0;
    struct ibv_send_wr wr = {
        .wr_id = rs_sq_track_next_slot(&s->sq_track),
        .sg_list = (struct ibv_sge *)sge,
        .num_sge = nsge,
        .opcode = with_imm ? IBV_WR_RDMA_WRITE_WITH_IMM : IBV_WR_RDMA_WRITE,
        .send_flags = ((len && len <= s->sq_inline) ? IBV_SEND_INLINE : 0) |
                      (sig ? IBV_SEND_SIGNALED : 0),
        .imm_data = imm_be,
    }, *bad;
    wr.wr.rdma.remote_addr = raddr;
    wr.wr.rdma.rkey = rkey;
    if (ibv_post_send(s->id->qp, &wr, &bad)) {
        rs_set_error(s, EIO, "cannot post a send");
        return -1;
    }
    if (s->user_timeout_ms > 0 && s->sq_track.sig_outstanding == 0)
        s->ut_since_ms = rs_now_ms();
    rs_sq_track_push(&s->sq_track, desc, wrid_sbuf(desc), sig);
    return 0;
}

/* Copy into the staging ring; one or two SGEs (the ring may wrap). */
int rs_stage_copy(struct rsock *s, const void *src, uint32_t len, struct ibv_sge sge[2])
{
    uint32_t first = rs_ring_first_part(s->sbuf_head, len, s->sbuf_size);
    int n = 1;

    memcpy(s->sbuf + s->sbuf_head, src, first);
    sge[0] = (struct ibv_sge){ (uintptr_t)(s->sbuf + s->sbuf_head), first, s->smr->lkey };
    if (len > first) {
        memcpy(s->sbuf, (const uint8_t *)src + first, len - first);
        sge[1] = (struct ibv_sge){ (uintptr_t)s->sbuf, len - first, s->smr->lkey };
        n = 2;
    }
    s->sbuf_head = rs_ring_advance(s->sbuf_head, len, s->sbuf_size);
    s->sbuf_bytes_avail -= len;
    return n;
}

struct rs_iov_cursor {
    const struct iovec *iov;
    int cnt, idx;
    size_t off;
};

/* Gather `len` bytes from the iovecs into the staging ring. */
static int stage_from_iov(struct rsock *s, struct rs_iov_cursor *c, uint32_t len,
                          struct ibv_sge sge[2])
{
    uint32_t start = s->sbuf_head, left = len;
    while (left) {
        while (c->off == c->iov[c->idx].iov_len) {
            c->idx++;
            c->off = 0;
        }
        size_t take = c->iov[c->idx].iov_len - c->off;
        if (take > left)
            take = left;
        uint32_t first = rs_ring_first_part(s->sbuf_head, (uint32_t)take, s->sbuf_size);
        const uint8_t *src = (const uint8_t *)c->iov[c->idx].iov_base + c->off;
        memcpy(s->sbuf + s->sbuf_head, src, first);
        memcpy(s->sbuf, src + first, take - first);
        s->sbuf_head = rs_ring_advance(s->sbuf_head, (uint32_t)take, s->sbuf_size);
        c->off += take;
        left -= (uint32_t)take;
    }
    s->sbuf_bytes_avail -= len;
    uint32_t first = rs_ring_first_part(start, len, s->sbuf_size);
    sge[0] = (struct ibv_sge){ (uintptr_t)(s->sbuf + start), first, s->smr->lkey };
    if (len == first)
        return 1;
    sge[1] = (struct ibv_sge){ (uintptr_t)s->sbuf, len - first, s->smr->lkey };
    return 2;
}

static uint32_t chunk_size(struct rsock *s, size_t left)
{
    uint64_t n = left;
    if (n > RS_MAX_TRANSFER) n = RS_MAX_TRANSFER;
    if (n > s->sbuf_bytes_avail) n = s->sbuf_bytes_avail;
    if (n > s->tgt_left) n = s->tgt_left;
    return (uint32_t)n;
}

/*
 * An inline write is copied by the device at post time, so it can point
 * straight at the caller's buffers (one copy per side, as rsockets does)
 * instead of being staged first. Up to 2 SGEs (the QP's max_send_sge);
 * returns 0 when `len` spans more iovecs than that, leaving `c` unmoved.
 */
static int inline_from_iov(struct rs_iov_cursor *c, uint32_t len, struct ibv_sge sge[2])
{
    struct rs_iov_cursor t = *c;
    uint32_t left = len;
    int n = 0;

    while (left) {
        while (t.off == t.iov[t.idx].iov_len) {
            t.idx++;
            t.off = 0;
        }
        if (n == 2)
            return 0;
        size_t take = t.iov[t.idx].iov_len - t.off;
        if (take > left)
            take = left;
        /* lkey is not checked for inline data */
        sge[n++] = (struct ibv_sge){ (uintptr_t)t.iov[t.idx].iov_base + t.off, (uint32_t)take, 0 };
        t.off += take;
        left -= (uint32_t)take;
    }
    *c = t;
    return n;
}

/* One data write; never crosses the peer's current buffer. */
static int send_chunk(struct rsock *s, struct rs_iov_cursor *c, uint32_t len)
{
    struct ibv_sge sge[2];
    uint32_t staged = 0;
    int nsge = len <= s->sq_inline ? inline_from_iov(c, len, sge) : 0;

    if (!nsge) {
        nsge = stage_from_iov(s, c, len, sge);
        staged = len;
    }
    if (rs_post_write(s, rs_wrid(RS_OP_DATA, len, staged), rs_wire_imm(RS_OP_DATA, len), 1,
                      sge, nsge, len, s->tgt_addr, s->tgt_key))
        return -1;
    s->sseq_no++;
    s->sqe_avail--;
    s->tx_bytes += len;
    s->tgt_addr += len;
    s->tgt_left -= len;
    if (!s->tgt_left)
        s->target_sge = (s->target_sge + 1) % RS_SGL_SIZE;
    return 0;
}

/* sent: bytes this call already took. A pending error (ETIMEDOUT of a
 * keepalive, ECONNRESET) is consumed only by the call that reports it: a
 * call returning a partial count leaves it for the next one (Linux's
 * sk_stream_error does the same). Returns 0 (the send may go on), -1
 * (it fails, errno set) or 1 (taken and dropped: see below). */
static int send_state_error(struct rsock *s, int flags, size_t sent)
{
    if (s->state == RS_ERROR || s->state == RS_CONNECT_ERROR) {
        int e = s->err ? s->err : EPIPE;
        if (!sent)
            s->err = 0;
        errno = e;
        return -1;
    }
    if (s->state < RS_CONNECTED) {
        errno = (s->state >= RS_RESOLVING_ADDR) ? EAGAIN : ENOTCONN;
        return -1;
    }
    if (!s->wr_open || s->peer_gone || s->disconnect_sent) {
        /* Kernel TCP takes the first write after the peer's FIN (the
         * peer's stack answers it with a reset) and fails the next one:
         * a client that writes its request before it reads a server's
         * refusal reads that refusal. The socket API keeps that order
         * (RS_MSG_TCP); the rsocket API fails at once, as librdmacm. */
        if (s->peer_gone && s->wr_open && !s->disconnect_sent && (flags & RS_MSG_TCP) &&
            !s->fin_write_taken && !sent) {
            s->fin_write_taken = 1;
            return 1;
        }
        if (!(flags & MSG_NOSIGNAL))
            raise(SIGPIPE);
        errno = EPIPE;
        return -1;
    }
    return 0;
}

ssize_t rs_sendv_locked(struct rsock *s, const struct iovec *iov, int iovcnt, int flags)
{
    struct rs_iov_cursor c = { iov, iovcnt, 0, 0 };
    size_t total = 0, sent = 0;
    int64_t deadline = rs_deadline(&s->sndtimeo, s->nonblock || (flags & MSG_DONTWAIT));

    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    /* Mappings made by riomap() reach the peer before the data does. */
    if (rs_iomap_publish(s, deadline))
        return -1;
    while (sent < total) {
        if (rs_anchor_going_down(s))
            return sent ? (ssize_t)sent : -1;
        int st = send_state_error(s, flags, sent);
        if (st > 0)
            return (ssize_t)total;      /* taken after the peer's FIN, dropped */
        if (st)
            return sent ? (ssize_t)sent : -1;
        if (!rs_can_send(s)) {
            rs_progress_io(s);
            if (!rs_can_send(s) && deadline == 0)
                rs_progress_giveup(s);
            if (rs_can_send(s))
                continue;
            if (sent && deadline == 0)
                break;
            if (rs_wait_locked(s, deadline))
                return sent ? (ssize_t)sent : -1;
            continue;
        }
        uint32_t n = chunk_size(s, total - sent);
        if (send_chunk(s, &c, n))
            return sent ? (ssize_t)sent : -1;
        sent += n;
    }
    rs_event(s);
    return (ssize_t)sent;
}

/* ---- receiving -------------------------------------------------------- */

/* Copy up to `len` queued bytes out of rbuf; consume unless peeking. */
static size_t copy_out(struct rsock *s, const struct iovec *iov, int iovcnt,
                       size_t *iov_i, size_t *iov_off, size_t len, int peek)
{
    uint32_t head = s->rmsg_head, off = s->rbuf_offset, head_left = 0;
    size_t done = 0;

    if (head != s->rmsg_tail)
        head_left = s->rmsg[head];
    while (done < len && head != s->rmsg_tail && *iov_i < (size_t)iovcnt) {
        if (*iov_off == iov[*iov_i].iov_len) {
            (*iov_i)++;
            *iov_off = 0;
            continue;
        }
        size_t n = iov[*iov_i].iov_len - *iov_off;
        if (n > len - done) n = len - done;
        if (n > head_left) n = head_left;
        n = rs_ring_first_part(off, (uint32_t)n, s->rbuf_size);
        memcpy((uint8_t *)iov[*iov_i].iov_base + *iov_off, s->rbuf + off, n);
        *iov_off += n;
        done += n;
        off = rs_ring_advance(off, (uint32_t)n, s->rbuf_size);
        head_left -= (uint32_t)n;
        if (!head_left) {
            if (!peek)
                s->rseq_no++;
            head = rs_ring_advance(head, 1, s->rmsg_slots);
            if (head != s->rmsg_tail)
                head_left = s->rmsg[head];
        }
    }
    if (!peek) {
        if (head != s->rmsg_tail)
            s->rmsg[head] = head_left;
        s->rmsg_head = head;
        s->rbuf_offset = off;
        s->rbuf_bytes_avail += (uint32_t)done;
        s->rx_queued -= done;
    }
    return done;
}

/* 0 = keep going, 1 = EOF, -1 = error (errno set). */
static int recv_state(struct rsock *s)
{
    if (s->rx_queued)
        return 0;
    if (s->state == RS_ERROR || s->state == RS_CONNECT_ERROR) {
        if (!s->err)
            return 1;
        errno = s->err;
        s->err = 0;
        return -1;
    }
    if (s->state < RS_CONNECTED) {
        errno = s->state >= RS_RESOLVING_ADDR ? EAGAIN : ENOTCONN;
        return -1;
    }
    if (!s->rd_open || s->peer_wr_closed)
        return 1;
    return 0;
}

ssize_t rs_recvv_locked(struct rsock *s, const struct iovec *iov, int iovcnt, int flags)
{
    size_t want = 0, got = 0, iov_i = 0, iov_off = 0;
    int peek = flags & MSG_PEEK;
    int64_t deadline = rs_deadline(&s->rcvtimeo, s->nonblock || (flags & MSG_DONTWAIT));

    for (int i = 0; i < iovcnt; i++)
        want += iov[i].iov_len;
    if (want == 0)
        return 0;
    for (;;) {
        if (rs_anchor_is_down(s))      /* the rest comes from the leftover, then TCP */
            return got ? (ssize_t)got : -1;
        if (!s->rx_queued) {
            rs_progress_io(s);
            if (!s->rx_queued && deadline == 0)
                rs_progress_giveup(s);
        }
        if (s->rx_queued) {
            got += copy_out(s, iov, iovcnt, &iov_i, &iov_off, want - got, peek);
            if (!peek)
                rs_update_credits(s);
            if (got == want || !(flags & MSG_WAITALL) || peek)
                break;
            continue;
        }
        int st = recv_state(s);
        if (st)
            return got ? (ssize_t)got : (st > 0 ? 0 : -1);
        if (rs_wait_locked(s, deadline))
            return got ? (ssize_t)got : -1;
    }
    return (ssize_t)got;
}
