/* softrdma: the requester side of a QP: its outbound stream carries work
 * requests to the peer's device; answers come back in order on it. The
 * stream is open only while something is on it: once the attach offer is
 * read and every request is answered, the fast path carries the traffic
 * and the stream closes (both its ends: the peer's accepted one sees EOF);
 * a request that must go the peer device's way opens it again. */
#include "sr_internal.h"
#include "sr_sys.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void sr_req_cb(struct sr_watch *w, uint32_t events);

/* A local shortage is reported by ibv_modify_qp. */
static int sr_req_no_socket(struct sr_qp *qp)
{
    int e = errno;
    if (!sr_errno_is_shortage(e))
        return 0;
    if (!qp->fdwait_since)      /* one line per episode, not per retry */
        sr_log("QP %u: no stream to QP %u: %s", qp->pub.qp_num, qp->dest_qpn, strerror(e));
    errno = e;
    return -1;
}

int sr_req_connect(struct sr_qp *qp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char link[300];
    sr_qpn_owner_link(qp->dest_qpn, link, sizeof link);
    ssize_t n = readlink(link, sa.sun_path, sizeof sa.sun_path - 1);
    if (n <= 0 && qp->out_idle && sr_reach_defer())
        return -1;              /* this thread chrooted away: the device thread reopens */
    int fd = n > 0 ? sr_sys_socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
    if (n > 0 && fd < 0 && sr_req_no_socket(qp))
        return -1;
    if (fd < 0 || sr_sys_connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        /* as on a wire: nothing fails now, the sends will time out */
        if (fd >= 0)
            sr_sys_close(fd);
        qp->out_dead = 1;
        return 0;
    }
    int sz = 4 << 20;
    syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    struct sr_hello h = { .magic = SR_HELLO_MAGIC, .dst_qpn = qp->dest_qpn,
                          .src_qpn = qp->pub.qp_num, .has_dgid = (uint8_t)qp->has_dgid,
                          .gen = qp->reopen_gen };
    memcpy(h.dgid, qp->dgid.raw, sizeof h.dgid);
    if (sr_sys_write(fd, &h, sizeof h) != sizeof h) {
        sr_sys_close(fd);
        qp->out_dead = 1;
        return 0;
    }
    syscall(SYS_fcntl, fd, F_SETFL, O_NONBLOCK);
    memset(&qp->out_rx, 0, sizeof qp->out_rx);
    /* the responder's attach message carries descriptors */
    qp->out_rx.fds = qp->fast.fds;
    qp->out_rx.nfds = &qp->fast.nfds;
    qp->resp_got = 0;
    qp->out_open = 1;
    qp->out_dead = 0;
    sr_stats_stream_open();
    if (sr_watch_add(&qp->out, fd, EPOLLIN, sr_req_cb)) {
        int e = errno;          /* the epoll set is full (ENOMEM, ENOSPC) */
        qp->out_open = 0;
        qp->out_dead = 1;
        sr_log("QP %u: cannot watch its stream: %s", qp->pub.qp_num, strerror(e));
        errno = e;
        return -1;
    }
    return 0;
}

/* QPs whose stream could not be reopened for want of a descriptor,
 * retried every SR_FDWAIT_MS by the device thread. Guarded by sr_lock. */
#define SR_FDWAIT_MS 10
static struct sr_qp *sr_fdwait;
static uint64_t sr_fdwait_due;

static void sr_fdwait_unlink(struct sr_qp *qp)
{
    if (!qp->fdwait_queued)
        return;
    for (struct sr_qp **pp = &sr_fdwait; *pp; pp = &(*pp)->fdwait_next)
        if (*pp == qp) {
            *pp = qp->fdwait_next;
            break;
        }
    qp->fdwait_queued = 0;
}

static void sr_fdwait_queue(struct sr_qp *qp)
{
    if (!qp->fdwait_since)
        qp->fdwait_since = sr_now_ms();
    if (qp->fdwait_queued)
        return;
    if (!sr_fdwait)
        sr_fdwait_due = sr_now_ms() + SR_FDWAIT_MS;
    qp->fdwait_queued = 1;
    qp->fdwait_next = sr_fdwait;
    sr_fdwait = qp;
}

/* In a forked child the parent's QPs are not ours to retry. */
void sr_req_forget(void)
{
    sr_fdwait = NULL;
}

uint64_t sr_retry_budget_ms(unsigned timeout, unsigned retry_cnt, uint64_t min_ms)
{
    if (!timeout)
        return 0;
    uint64_t try_ms = timeout > 31 ? UINT64_MAX / 64 : (4096ull << timeout) / 1000000u;
    if (try_ms < min_ms)
        try_ms = min_ms;
    return try_ms * ((uint64_t)retry_cnt + 1);
}

static void sr_req_attach_timers(uint64_t now, int *next_ms);

void sr_req_timers(uint64_t now, int *next_ms)
{
    sr_req_attach_timers(now, next_ms);
    if (!sr_fdwait)
        return;
    if (now < sr_fdwait_due) {
        if ((int)(sr_fdwait_due - now) < *next_ms)
            *next_ms = (int)(sr_fdwait_due - now);
        return;
    }
    struct sr_qp *l = sr_fdwait;
    sr_fdwait = NULL;
    sr_fdwait_due = now + SR_FDWAIT_MS;
    while (l) {
        struct sr_qp *qp = l;
        l = qp->fdwait_next;
        qp->fdwait_queued = 0;
        sr_req_kick(qp);        /* the direct path may take it by now */
        if (!qp->fdwait_queued) {
            qp->fdwait_since = 0;   /* the wait is over: the next starts afresh */
            continue;
        }
        uint64_t budget = sr_retry_budget_ms(qp->timeout, qp->retry_cnt, SR_FDWAIT_MS);
        if (budget && now - qp->fdwait_since >= budget) {
            sr_log("QP %u: still no descriptor for its stream to QP %u after %llu ms; its sends fail",
                   qp->pub.qp_num, qp->dest_qpn, (unsigned long long)budget);
            sr_fdwait_unlink(qp);
            qp->out_idle = 0;
            qp->out_dead = 1;
            qp->fdwait_since = 0;
            sr_req_kick(qp);
        }
    }
    if (sr_fdwait && *next_ms > SR_FDWAIT_MS)
        *next_ms = SR_FDWAIT_MS;
}

/* Sends posted right after the QP's first stream opened (rdma_cm's
 * ESTABLISHED comes before the peer's attach offer is read) used to go
 * the stream's way: the peer's device thread read and delivered each and
 * sent an ACK, which ours read - two thread wake-ups and half a dozen
 * system calls per end of every connection, for its first messages. They
 * now wait for the offer, which the responder writes first on every new
 * stream, and go directly once it is read (sr_req_cb kicks them). The
 * wait ends with the offer, with any other answer, when the stream closes
 * or breaks, and at the latest after SR_ATTACH_WAIT_MS (the device thread
 * then sends them the stream's way, sr_req_timers): nothing depends on
 * the offer coming. The bound is long on purpose: an offer is late only
 * when the peer's device thread does not run (a stopped or starved peer,
 * SR_ALIVE_MS), and then a send on the stream would not complete sooner
 * either (its ACK comes from that thread too). Only sends whose data is
 * the device's already are held (sr_req_holdable). Guarded by sr_lock. */
#define SR_ATTACH_WAIT_MS SR_ALIVE_MS
static unsigned sr_attwait_n;      /* QPs waiting */

/* Only sends whose data cannot change under them are held: inline data
 * (copied at post time), none (zero length), or a READ (nothing sent).
 * Other sends have always gone at post time, and a program that refills
 * a buffer before the send's completion (wrong by the verbs rules, but
 * harmless when the device sends at once) must keep seeing that: such a
 * send ends the wait for everything queued, in order. */
static int sr_req_holdable(const struct sr_qp *qp)
{
    uint32_t ns = qp->cap.max_send_wr;
    for (uint32_t i = qp->sq_tx; i != qp->sq_tail; i++) {
        const struct sr_swqe *s = &qp->sq[i % ns];
        if (s->len && s->opcode != IBV_WR_RDMA_READ && !(s->flags & IBV_SEND_INLINE))
            return 0;
    }
    return 1;
}

void sr_req_attach_wait(struct sr_qp *qp)
{
    if (!qp->out_open || qp->fast.seg || qp->attach_wait_until)
        return;
    qp->attach_wait_until = sr_now_ms() + SR_ATTACH_WAIT_MS;
    sr_attwait_n++;
}

static void sr_req_attach_settled(struct sr_qp *qp)
{
    if (!qp->attach_wait_until)
        return;
    qp->attach_wait_until = 0;
    sr_attwait_n--;
}

/* Sends of QPs whose offer is late go the stream's way now. */
static void sr_req_attach_timers(uint64_t now, int *next_ms)
{
    if (!sr_attwait_n)
        return;
    unsigned seen = 0;
    for (struct sr_qp *q = sr_qp_all(); q; q = q->next) {
        if (!q->attach_wait_until || q->epoch != sr_epoch)
            continue;
        seen++;
        if (now >= q->attach_wait_until) {
            sr_req_attach_settled(q);
            sr_req_kick(q);
        } else if ((int)(q->attach_wait_until - now) < *next_ms) {
            *next_ms = (int)(q->attach_wait_until - now);
        }
    }
    if (!seen)
        sr_attwait_n = 0;   /* a forked child's count of its parent's QPs */
}

void sr_req_close(struct sr_qp *qp)
{
    sr_req_attach_settled(qp);
    sr_fdwait_unlink(qp);
    qp->fdwait_since = 0;
    if (qp->out_open)
        sr_watch_del(&qp->out);
    qp->out_open = 0;
    qp->out_idle = 0;
    qp->reopen_gen = 0;
    sr_fast_detach(qp);
}

/* Nothing on the stream and nothing the fast path cannot carry without
 * it: no request unanswered, no answer half read, the peer attached and
 * writable by us, no fault knob (those model the stream's behaviour). */
static int sr_req_idle(const struct sr_qp *qp)
{
    const struct sr_fast *f = &qp->fast;
    return qp->out_open && f->peer && !f->broken && !f->want && !f->peer->slow_only &&
           qp->sq_head == qp->sq_tail && !qp->tx_off && !qp->rd_left && !qp->resp_got &&
           qp->out_rx.off == qp->out_rx.len && qp->pub.state != IBV_QPS_ERR &&
           sr_req_streamless_ok();
}

int sr_req_streamless_ok(void)
{
    return sr_knobs.delay_ms <= 0 && sr_knobs.drop_after <= 0 && sr_knobs.force_rnr <= 0 &&
           sr_knobs.ack_delay_ms <= 0 && sr_knobs.idle_close && sr_streams_may_close();
}

/* Closes an idle stream, keeping the fast path: the QP then holds no
 * descriptor (the peer's device closes its end at EOF, which its
 * responder treats as a requester gone quiet). */
static void sr_req_idle_close(struct sr_qp *qp)
{
    if (!sr_req_idle(qp))
        return;
    sr_watch_del(&qp->out);
    qp->out_open = 0;
    qp->out_idle = 1;
}

/* A request needs the peer's device (RNR, an error to be answered, a
 * stopped peer...): a fresh stream to the same peer QP incarnation, the
 * fast path attached again from its offer. A peer gone, reset or in ERR
 * refuses it, and the sends fail as when the stream broke. With no
 * descriptor to be had the fast path is kept and the device thread
 * retries (sr_req_timers): -1 then, nothing to do now. */
static int sr_req_reopen(struct sr_qp *qp)
{
    qp->reopen_gen = qp->fast.gen;
    if (sr_req_connect(qp)) {
        if (qp->out_dead) {     /* the epoll set is full: the link is lost */
            qp->out_idle = 0;
            return 0;
        }
        sr_fdwait_queue(qp);
        return -1;
    }
    qp->out_idle = 0;
    qp->fdwait_since = 0;
    sr_fast_detach(qp);         /* the new stream's attach offer maps the peer afresh */
    return 0;
}

void sr_req_note_due(struct sr_qp *qp)
{
    uint32_t due = qp->sq_tx != qp->sq_head;
    if (__atomic_load_n(&qp->s->req_due, __ATOMIC_RELAXED) != due)
        __atomic_store_n(&qp->s->req_due, due, __ATOMIC_RELEASE);
}

static void sr_req_done(struct sr_qp *qp, enum ibv_wc_status st)
{
    struct sr_swqe *s = &qp->sq[qp->sq_head % qp->cap.max_send_wr];
    qp->sq_head++;
    sr_swqe_release(s);
    sr_req_note_due(qp);
    if (st == IBV_WC_SUCCESS && !(s->flags & IBV_SEND_SIGNALED))
        return;
    struct ibv_wc wc = { .wr_id = s->wr_id, .status = st, .qp_num = qp->pub.qp_num };
    switch (s->opcode) {
    case IBV_WR_RDMA_WRITE:
    case IBV_WR_RDMA_WRITE_WITH_IMM: wc.opcode = IBV_WC_RDMA_WRITE; break;
    case IBV_WR_RDMA_READ: wc.opcode = IBV_WC_RDMA_READ; wc.byte_len = s->len; break;
    default: wc.opcode = IBV_WC_SEND; break;
    }
    sr_qp_complete(qp, 0, &wc);
}

/* The head request failed: it completes with st, the rest are flushed.
 * The QP is in ERR before the error completion can be polled, so that
 * ibv_query_qp after it never reports RTS (as on hardware). */
void sr_req_fail(struct sr_qp *qp, enum ibv_wc_status st)
{
    sr_qp_set_state(qp, IBV_QPS_ERR);
    if (qp->sq_head != qp->sq_tail)
        sr_req_done(qp, st);
    sr_qp_to_error(qp);
}

void sr_req_lost(struct sr_qp *qp)
{
    sr_req_close(qp);
    qp->out_dead = 1;
    if (qp->sq_head != qp->sq_tail)
        sr_req_fail(qp, IBV_WC_RETRY_EXC_ERR);
}

/* Fault injection: the link of a QP breaks after N requests. */
static int sr_drop_due(struct sr_qp *qp)
{
    int n = sr_knobs.drop_after;
    return n > 0 && ++qp->tx_count == (uint64_t)n;
}

static void sr_req_direct_done(struct sr_qp *qp)
{
    qp->sq_tx++;
    sr_req_done(qp, IBV_WC_SUCCESS);
}

/* The conditions are sr_req_kick's for its first request (nothing held,
 * nothing on the stream before it); whatever they send elsewhere, the
 * kick decides later, with the data the device's by then. */
int sr_req_post_direct(struct sr_qp *qp)
{
    if (qp->pub.state != IBV_QPS_RTS || qp->sq_tail - qp->sq_tx != 1 || qp->sq_tx != qp->sq_head ||
        qp->tx_off || qp->out_dead || (!qp->out_open && !qp->out_idle) ||
        qp->attach_wait_until || sr_link_hold(qp) || !sr_fast_try(qp))
        return 0;
    sr_req_direct_done(qp);
    return 1;
}

/* Writes WR s (the next on the stream) from where its last write
 * stopped: 1 when all of it is on the stream (it counts as sent), 0 when
 * the socket is full (the rest waits for EPOLLOUT), -1 when the stream
 * broke (the QP's sends fail). */
static int sr_req_write(struct sr_qp *qp, struct sr_swqe *s)
{
    struct iovec iov[SR_MAX_SGE + 1];
    iov[0].iov_base = &s->hdr;
    iov[0].iov_len = sizeof s->hdr;
    int niov = 1;
    if (s->opcode != IBV_WR_RDMA_READ)
        for (int i = 0; i < s->nsge; i++)
            iov[niov++] = s->iov[i];
    size_t total = 0;
    for (int i = 0; i < niov; i++)
        total += iov[i].iov_len;
    struct iovec *cur = iov;
    sr_iov_advance(&cur, &niov, qp->tx_off);
    struct msghdr mh = { .msg_iov = cur, .msg_iovlen = (size_t)niov };
    ssize_t n = sr_sys_sendmsg(qp->out.fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        sr_watch_mod(&qp->out, EPOLLIN | EPOLLOUT);
        return 0;
    }
    if (n < 0) {
        sr_req_lost(qp);
        return -1;
    }
    qp->tx_off += (size_t)n;
    if (qp->tx_off < total) {
        sr_watch_mod(&qp->out, EPOLLIN | EPOLLOUT);
        return 0;
    }
    qp->tx_off = 0;
    qp->sq_tx++;
    sr_req_note_due(qp);
    sr_stats_stream();
    if (sr_drop_due(qp)) {
        sr_log("SOFTRDMA_DROP_AFTER: dropping the connection of QP %u", qp->pub.qp_num);
        sr_req_lost(qp);
        return -1;
    }
    return 1;
}

/* An inline send that cannot go directly (a peer of another user, RNR,
 * the fault knobs) but is next on an open stream is written to the stream
 * inside ibv_post_send, from the caller's buffers: the socket takes its
 * copy, as the device's staging copy would (sr_inline_stage). 1 when all
 * of it went (or the stream broke: the QP's sends fail, it with them);
 * 0 leaves it to be staged and sent by sr_req_kick (a full socket: what
 * is written stays written, tx_off says how much). */
int sr_req_post_stream(struct sr_qp *qp)
{
    if (qp->pub.state != IBV_QPS_RTS || qp->sq_tail - qp->sq_tx != 1 || qp->tx_off ||
        qp->out_dead || !qp->out_open || qp->attach_wait_until || sr_link_hold(qp))
        return 0;
    struct sr_swqe *s = &qp->sq[qp->sq_tx % qp->cap.max_send_wr];
    if (s->local_err)
        return 0;
    return sr_req_write(qp, s) != 0;    /* -1: failed with the QP's other sends */
}

/* Writes queued requests until the socket is full. */
void sr_req_kick(struct sr_qp *qp)
{
    uint32_t ns = qp->cap.max_send_wr;
    while (qp->pub.state == IBV_QPS_RTS && qp->sq_tx != qp->sq_tail) {
        struct sr_swqe *s = &qp->sq[qp->sq_tx % ns];
        if (s->local_err || qp->out_dead || (!qp->out_open && !qp->out_idle)) {
            if (qp->sq_head == qp->sq_tx)
                sr_req_fail(qp, s->local_err ? IBV_WC_LOC_PROT_ERR : IBV_WC_RETRY_EXC_ERR);
            return;
        }
        if (sr_link_hold(qp))
            break;      /* a link is down: held, sr_link_timers retries */
        if (qp->attach_wait_until) {
            if (sr_now_ms() < qp->attach_wait_until && sr_req_holdable(qp))
                break;  /* the peer's offer is on its way: then directly */
            sr_req_attach_settled(qp);
        }
        /* Directly into the peer when nothing is on the stream before it
         * (in order, exactly once); anything unusual goes the stream's way,
         * where the peer's device answers it. */
        if (qp->sq_tx == qp->sq_head && !qp->tx_off && sr_fast_try(qp)) {
            sr_req_direct_done(qp);
            continue;
        }
        if (!qp->out_open) {
            if (sr_req_reopen(qp))
                return;         /* waiting for a descriptor */
            continue;
        }
        if (sr_req_write(qp, s) <= 0)
            return;
    }
    if (qp->out_open)
        sr_watch_mod(&qp->out, EPOLLIN);
}

/* Handles one response header; returns -1 if the stream is unusable. */
static int sr_req_response(struct sr_qp *qp)
{
    struct sr_resp_hdr *r = &qp->resp;
    if (r->type == SR_RESP_ATTACH && r->len == sizeof(struct sr_attach) && !qp->fast.seg) {
        qp->fast.want = 1;
        qp->fast.got = 0;
        return 0;
    }
    sr_req_attach_settled(qp);      /* another answer first: no offer comes */
    if (qp->sq_head == qp->sq_tx)
        return -1;      /* answer to nothing: protocol error */
    struct sr_swqe *s = &qp->sq[qp->sq_head % qp->cap.max_send_wr];
    switch (r->type) {
    case SR_RESP_ACK:
        for (unsigned i = 0; i < r->count; i++) {
            if (qp->sq_head == qp->sq_tx ||
                qp->sq[qp->sq_head % qp->cap.max_send_wr].opcode == IBV_WR_RDMA_READ)
                return -1;  /* acknowledges more than was sent: protocol error */
            sr_req_done(qp, IBV_WC_SUCCESS);
        }
        return 0;
    case SR_RESP_NAK:
        if (r->status == IBV_WC_SUCCESS || r->status > IBV_WC_GENERAL_ERR) {
            sr_log("QP %u: NAK with invalid status %u from the responder; link dropped",
                   qp->pub.qp_num, r->status);
            return -1;
        }
        sr_req_fail(qp, (enum ibv_wc_status)r->status);
        return 1;
    case SR_RESP_READ:
        if (s->opcode != IBV_WR_RDMA_READ || r->len != s->len) {
            sr_log("QP %u: READ response of %u bytes does not match the request; link dropped",
                   qp->pub.qp_num, r->len);
            return -1;
        }
        memcpy(qp->rd_iov, s->iov, (size_t)s->nsge * sizeof *s->iov);
        qp->rd_niov = s->nsge;
        qp->rd_left = r->len;
        if (!r->len)
            sr_req_done(qp, IBV_WC_SUCCESS);
        return 0;
    }
    return -1;
}

static void sr_req_cb(struct sr_watch *w, uint32_t events)
{
    struct sr_qp *qp = (struct sr_qp *)((char *)w - offsetof(struct sr_qp, out));
    if (events & EPOLLOUT)
        sr_req_kick(qp);
    for (int i = 0; i < 1024 && qp->out_open; i++) {
        if (qp->fast.want) {
            int r = sr_fast_attach_read(qp, w->fd);
            if (r < 0)
                goto lost;
            if (r == 0)
                return;
            sr_req_attach_settled(qp);
            sr_req_kick(qp);    /* queued sends may go directly now */
            continue;
        }
        if (qp->rd_left) {
            int r = sr_rx_payload(w->fd, &qp->out_rx, qp->rd_iov, &qp->rd_niov, &qp->rd_left);
            if (r < 0)
                goto lost;
            if (r == 0)
                return;
            sr_req_done(qp, IBV_WC_SUCCESS);
            continue;
        }
        int r = sr_rx_need(w->fd, &qp->out_rx, &qp->resp, sizeof qp->resp, &qp->resp_got);
        if (r == 0) {
            sr_req_kick(qp);
            sr_req_idle_close(qp);
            return;
        }
        if (r < 0)
            goto lost;
        qp->resp_got = 0;
        r = sr_req_response(qp);
        if (r > 0)
            return;
        if (r < 0)
            goto lost;
    }
    /* Bound reached. Answers already read into out_rx are invisible to
     * epoll: if the socket is drained, no event would ever come for them
     * (the hang of rsfw.copies_inline: completions stuck in the buffer). */
    if (qp->out_open && qp->out_rx.off < qp->out_rx.len)
        sr_watch_again(w);
    return;
lost:
    sr_req_lost(qp);
}

/* Answers the application must not overtake. A request that went the
 * stream's way completes when the device thread reads its answer, while
 * the peer's reply to it comes by the direct path, pushed into our CQ by
 * the peer's own thread. On a loaded host the application then saw the
 * reply and posted again before this process's device thread had run at
 * all: its sends stayed uncompleted, the program (which, as on hardware,
 * finds a send's completion with the reply it caused) never polled them,
 * and its send queue filled up - ENOMEM from ibv_post_send
 * (softrdma_stress_rping: 16 sends on the first stream, none answered,
 * the device thread not scheduled once meanwhile). The peer's device
 * writes the answer before its application can reply (the reply's
 * ibv_post_send waits for sr_lock, which that device holds until its
 * answers are written), so when the reply is polled the answer is here
 * to be read: the polling thread reads it, as a NIC would have, and the
 * send's completion is in its CQ with the reply. */
void sr_req_catch_up(struct sr_shm_qp *b)
{
    uint32_t qpn = __atomic_load_n(&b->qpn, __ATOMIC_RELAXED);
    pthread_mutex_lock(&sr_lock);
    struct sr_qp *qp = sr_qp_find(qpn);
    if (qp && qp->s == b && qp->out_open && qp->sq_head != qp->sq_tx)
        sr_req_cb(&qp->out, 0);
    pthread_mutex_unlock(&sr_lock);
}
