/*
 * rs_ctrl.c - control traffic: credit and receive-buffer updates,
 * SHUTDOWN/DISCONNECT messages, keepalive probes (a timerfd in the wait
 * fd, no thread) and the bounded drain done by close().
 */
#include "rs_sock.h"
#include "rs_ring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* A peer lost with its verdict pending (rs_anchor_lost.c) left the QP in
 * the error state: nothing more is posted on it. */
static int qp_usable(struct rsock *s)
{
    return (s->state == RS_CONNECTED || s->state == RS_DISCONNECTED) &&
           !s->disconnect_sent && !s->lost_until && s->id && s->id->qp;
}

static uint8_t *ctrl_slot(struct rsock *s)
{
    uint32_t i = s->ctrl_seq++ % RS_QP_CTRL_SLOTS;
    return s->sbuf + s->sbuf_size + i * RS_CTRL_BUF_LEN;
}

/*
 * Return credits (absolute limit rseq_no + rq_size) and, when half of rbuf
 * has been read, advertise that half into the peer's next SGL slot.
 */
void rs_update_credits(struct rsock *s)
{
    uint32_t half = s->rbuf_size / 2;
    int give_buf;

    if (!qp_usable(s) || s->peer_gone || s->ctrl_avail == 0)
        return;
    give_buf = s->rbuf_bytes_avail >= half;
    if (!give_buf && rs_seq_diff(s->rseq_no, s->rseq_comp) < 0)
        return;
    s->rseq_comp = (uint16_t)(s->rseq_no + s->rq_size / 2);
    uint32_t imm = rs_wire_imm(RS_OP_SGL, (uint32_t)s->rseq_no + s->rq_size);
    if (!give_buf) {
        if (rs_post_write(s, rs_wrid(RS_OP_SGL, 0, 0), imm, 1, NULL, 0, 0,
                          s->remote_sgl.addr, s->remote_sgl.key))
            return;
        s->ctrl_avail--;
        return;
    }
    struct rs_wire_sge adv = { (uintptr_t)(s->rbuf + s->rbuf_free_offset), s->rmr->rkey, half };
    uint8_t *slot = ctrl_slot(s);
    rs_wire_encode_sge(&adv, s->peer_be, slot);
    struct ibv_sge sge = { (uintptr_t)slot, RS_SGE_WIRE_LEN, s->smr->lkey };
    uint64_t raddr = s->remote_sgl.addr + (uint64_t)RS_SGE_WIRE_LEN * s->remote_sge;
    if (rs_post_write(s, rs_wrid(RS_OP_SGL, RS_SGL_ADVERTISES, 0), imm, 1, &sge, 1,
                      RS_SGE_WIRE_LEN, raddr, s->remote_sgl.key))
        return;
    s->ctrl_avail--;
    s->rbuf_free_offset = rs_ring_advance(s->rbuf_free_offset, half, s->rbuf_size);
    s->remote_sge = (s->remote_sge + 1) % s->remote_sgl.length;
    s->rbuf_bytes_avail -= half;
    s->rx_window += half;
}

/*
 * Post one 0-byte control message, waiting for a control slot until
 * `deadline` (ms, rs_now_ms clock). A deadline already past still posts
 * when a slot is free after one progress pass: posting never waits.
 */
static int send_ctrl_until(struct rsock *s, enum rs_ctrl type, int64_t deadline)
{
    while (qp_usable(s) && s->ctrl_avail == 0) {
        rs_progress(s, 0);
        if (s->ctrl_avail == 0 && rs_wait_timed(s, deadline, 0))
            return -1;
    }
    if (!qp_usable(s))
        return 0;
    if (rs_post_write(s, rs_wrid(RS_OP_CTRL, type, 0), rs_wire_imm(RS_OP_CTRL, type), 1,
                      NULL, 0, 0, s->remote_sgl.addr, s->remote_sgl.key))
        return -1;
    s->ctrl_avail--;
    if (type == RS_CTRL_DISCONNECT)
        s->disconnect_sent = 1;
    return 0;
}

/* s fails (rs_set_error, before its QP goes to ERR) while its CM no
 * longer carries the DREQ that rdma_disconnect sent the peer
 * (rs_cms_detach): the in-band DISCONNECT tells the peer instead, as the
 * DREQ did (its RDMA side ends: EOF once read). Best effort, never waits:
 * a free control slot or nothing (the peer's anchor then tells it). */
void rs_ctrl_farewell(struct rsock *s)
{
    if (!s->cm_detached || s->peer_gone || !qp_usable(s) || s->ctrl_avail == 0)
        return;
    if (rs_post_write(s, rs_wrid(RS_OP_CTRL, RS_CTRL_DISCONNECT, 0),
                      rs_wire_imm(RS_OP_CTRL, RS_CTRL_DISCONNECT), 1, NULL, 0, 0, s->remote_sgl.addr,
                      s->remote_sgl.key) == 0) {
        s->ctrl_avail--;
        s->disconnect_sent = 1;
    }
}

/* Post one control message, waiting at most close_timeout_ms for a slot. */
int rs_send_ctrl(struct rsock *s, enum rs_ctrl type)
{
    return send_ctrl_until(s, type, rs_now_ms() + rs_tun.close_timeout_ms);
}

int rs_shutdown_locked(struct rsock *s, int how)
{
    if (s->state != RS_CONNECTED && s->state != RS_DISCONNECTED) {
        errno = ENOTCONN;
        return -1;
    }
    if (how == SHUT_RD || how == SHUT_RDWR)
        s->rd_open = 0;
    if (how == SHUT_WR || how == SHUT_RDWR)
        s->wr_open = 0;
    rs_event(s);
    if (s->peer_gone || s->disconnect_sent)
        return 0;
    if (!s->rd_open && !s->wr_open)
        return rs_send_ctrl(s, RS_CTRL_DISCONNECT);
    if (how == SHUT_WR)
        return rs_send_ctrl(s, RS_CTRL_SHUTDOWN);
    return 0;
}

/* Whether a completion is still to come: only signalled WRs raise one
 * while the QP works, and each also completes the unsignalled WRs before
 * it. Unsignalled WRs after the last signalled one (close without a
 * DISCONNECT: the peer is gone) raise nothing to wait for. */
static int sends_outstanding(struct rsock *s)
{
    return s->sq_track.sig_outstanding > 0;
}

/* With a close time of 0 (SO_LINGER {1,0}), the DISCONNECT just posted
 * may still take this long to complete: rdma_disconnect moves the QP to
 * the error state, which would flush it unsent. */
#define RS_ABORT_DISCONNECT_MS 1000

/* close(): tell the peer, let queued data land, but never wait longer than
 * close_timeout_ms (or SO_LINGER's time) for a peer that is gone. The
 * in-band DISCONNECT is posted whenever a control slot is free, also with
 * a time of 0 (SO_LINGER {1,0}): a peer that does not watch CM events
 * (older librdmacm on accepted sockets) learns of the close only from it.
 * Only the waits depend on the time; with 0, only the DISCONNECT's own
 * completion is awaited (RS_ABORT_DISCONNECT_MS at most). */
void rs_close_drain(struct rsock *s)
{
    uint32_t ms = s->linger.l_onoff ? (uint32_t)s->linger.l_linger * 1000
                                    : rs_tun.close_timeout_ms;
    int64_t deadline = rs_now_ms() + ms;

    /* A kernel TCP close sends its FIN at once. An anchored connection's
     * went out only after the teardown below and the dispatcher's close,
     * after the peer had read our DISCONNECT and closed: both ends then
     * sat in TIME-WAIT (the peer's FIN crossed ours), and a server that
     * binds without SO_REUSEADDR could not listen on its port again
     * (sockperf, in the bench). So the anchor's FIN leaves first, ahead of
     * the DISCONNECT (the peer's module takes a FIN as "the DISCONNECT is
     * on its way", rs_anchor_fin_step; data before it still arrives) -
     * not when the close resets: unread data (reset_if_unread) or
     * SO_LINGER 0, an abortive close, which sends a reset and no FIN. */
    if (s->anchor_fd >= 0 && !s->rx_queued && !(s->linger.l_onoff && s->linger.l_linger == 0))
        shutdown(s->anchor_fd, SHUT_WR);
    if (qp_usable(s) && !s->peer_gone)
        send_ctrl_until(s, RS_CTRL_DISCONNECT, deadline);
    if (!ms && s->disconnect_sent)
        deadline = rs_now_ms() + RS_ABORT_DISCONNECT_MS;
    while (s->cq && s->state != RS_ERROR && sends_outstanding(s)) {
        rs_progress(s, 1);
        if (!sends_outstanding(s) || rs_wait_timed(s, deadline, 0))
            break;
    }
    /* Every caller frees the socket next: its QP goes first, so that
     * rdma_disconnect does not move it to ERR, which makes the device
     * complete each posted receive flushed (rq_size of them) into a CQ
     * nobody polls again - a tenth of a close's CPU on the software
     * device. The peer hears of the close as before (in-band DISCONNECT
     * above, the CM's disconnect request below). */
    if (s->id && s->id->qp)
        rdma_destroy_qp(s->id);
    if (s->id && s->state >= RS_CONNECTING)
        rdma_disconnect(s->id);
}

/* ---- keepalive ---------------------------------------------------------- */

/* A keepalive default as the kernel's (net.ipv4.tcp_keepalive_*). */
static int ka_sysctl(const char *name, int dflt)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/sys/net/ipv4/%s", name);
    FILE *f = fopen(path, "re");
    int v = 0;
    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v > 0 ? v : dflt;
}

/* The socket's timerfd, in its wait fd: made at the first need (the
 * keepalive, a lost peer's verdict: rs_anchor_lost.c). */
int rs_timer_ensure(struct rsock *s)
{
    if (s->timer_fd >= 0)
        return 0;
    s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->timer_fd < 0)
        return -1;
    if (rs_wait_fd_add(s, s->timer_fd) == 0)
        return 0;
    close(s->timer_fd);
    s->timer_fd = -1;
    return -1;
}

/* (Re)arm the keepalive timer; it lives in the wait fd, so a sleeping
 * poller wakes to send the probe and nothing runs when nobody polls. As
 * TCP: the first probe after TCP_KEEPIDLE, then one every TCP_KEEPINTVL,
 * dead after TCP_KEEPCNT unanswered intervals, or, with TCP_USER_TIMEOUT
 * set, once a probe has been unanswered that long (it overrides KEEPCNT). */
int rs_keepalive_arm(struct rsock *s)
{
    if (!s->keepalive && s->user_timeout_ms <= 0) {
        if (s->timer_fd >= 0) {
            struct itimerspec off = { 0 };
            timerfd_settime(s->timer_fd, 0, &off, NULL);
        }
        return 0;
    }
    if (rs_timer_ensure(s))
        return -1;
    if (!s->keepalive) {
        /* TCP_USER_TIMEOUT alone: unacknowledged sends are looked at 16
         * times per timeout (every 10 ms to 1 s): a dead link is told at
         * most two periods after it (one to notice a sender out of credits
         * and probe, one to see the timeout pass; rs_keepalive_tick) */
        long ms = s->user_timeout_ms / 16;
        ms = ms < 10 ? 10 : ms > 1000 ? 1000 : ms;
        struct timespec p = { ms / 1000, (ms % 1000) * 1000000L };
        struct itimerspec ut = { .it_interval = p, .it_value = p };
        return timerfd_settime(s->timer_fd, 0, &ut, NULL);
    }
    int idle = s->keepidle_s > 0 ? s->keepidle_s : ka_sysctl("tcp_keepalive_time", 7200);
    int intvl = s->keepintvl_s > 0 ? s->keepintvl_s : ka_sysctl("tcp_keepalive_intvl", 75);
    s->ka_limit = s->keepcnt > 0 ? s->keepcnt : ka_sysctl("tcp_keepalive_probes", 9);
    struct itimerspec its = { .it_interval = { intvl, 0 }, .it_value = { idle, 0 } };
    return timerfd_settime(s->timer_fd, 0, &its, NULL);
}

/* TCP_USER_TIMEOUT, as TCP applies it to data it retransmits: signalled
 * sends (every send is signalled while the option is set, rs_data.c) have
 * been outstanding, with no completion in between, for that long. A link
 * that is down holds them in the device (doc/softrdma.md, "Link state")
 * until the QP's own retry budget, longer than most user timeouts. */
static int user_timeout_due(struct rsock *s, int64_t now)
{
    if (s->sq_track.sig_outstanding == 0) {
        s->ut_since_ms = 0;
        return 0;
    }
    if (!s->ut_since_ms)
        s->ut_since_ms = now;
    return now - s->ut_since_ms >= (int64_t)s->user_timeout_ms;
}

/* A 0-byte RDMA WRITE the peer's NIC answers (keepalive, and the probe
 * of a sender out of credits); one at a time. */
static void post_probe(struct rsock *s)
{
    if (s->ctrl_avail == 0)
        return;             /* control traffic in flight proves nothing yet */
    if (rs_post_write(s, rs_wrid(RS_OP_CTRL, RS_CTRL_KEEPALIVE, 0), 0, 0, NULL, 0, 0,
                      s->remote_sgl.addr, s->remote_sgl.key) == 0) {
        s->ctrl_avail--;
        s->ka_outstanding = 1;
        s->ka_missed = 0;
        s->ka_sent_ms = rs_now_ms();
    }
}

/* TCP_USER_TIMEOUT: sends unanswered that long end the connection. A
 * sender out of credits or target space has nothing outstanding (its
 * writes completed; the peer's credit update is what a dead link holds
 * back): it probes, as TCP sends zero-window probes, and an unanswered
 * probe times out too. */
static int user_timeout_tick(struct rsock *s)
{
    if (user_timeout_due(s, rs_now_ms())) {
        rs_set_error(s, ETIMEDOUT, "TCP_USER_TIMEOUT: sent data unacknowledged");
        return 1;
    }
    if (!s->keepalive && !s->ka_outstanding && s->sq_track.sig_outstanding == 0 &&
        !rs_can_send(s))
        post_probe(s);
    return 0;
}

/* A 0-byte RDMA WRITE (no immediate): the peer's application sees
 * nothing. A dead peer makes it fail (send completion error), a silent one
 * (stopped, partitioned) leaves it unanswered: after TCP_KEEPCNT
 * whole intervals with the probe outstanding (or TCP_USER_TIMEOUT ms) the
 * connection is declared dead with ETIMEDOUT. One probe at a time, so probes never use up the control
 * slots. The timer is read on every progress pass, so ticks are counted
 * whether or not several periods passed between two passes. */
void rs_keepalive_tick(struct rsock *s)
{
    uint64_t ticks;
    if (s->timer_fd < 0 || read(s->timer_fd, &ticks, sizeof(ticks)) != sizeof(ticks))
        return;
    if (!qp_usable(s) || s->peer_gone)
        return;
    if (s->user_timeout_ms > 0 && user_timeout_tick(s))
        return;
    if (!s->keepalive)
        return;
    if (s->ka_outstanding) {
        s->ka_missed += ticks > (uint64_t)s->ka_limit ? s->ka_limit : (int)ticks;
        int dead = s->user_timeout_ms > 0
                   ? rs_now_ms() - s->ka_sent_ms >= (int64_t)s->user_timeout_ms
                   : s->ka_missed >= s->ka_limit;
        if (dead)
            rs_set_error(s, ETIMEDOUT, "keepalive: peer does not answer");
        return;
    }
    post_probe(s);
}
