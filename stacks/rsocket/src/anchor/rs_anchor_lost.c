/*
 * rs_anchor_lost.c - an upgraded anchored socket whose RDMA peer became
 * unreachable (the device failed a send with "retry exceeded", a remote
 * abort, or a flush this end did not cause): how did the peer go? The TCP
 * anchor tells, as TCP would have told the application: a FIN (the
 * exiting process's kernel closed its socket) is an orderly close - EOF
 * after the data already received - and an error is a reset. One process
 * exit closes the TCP socket and destroys the queue pair in no fixed
 * order, so the anchor gets RS_ANCHOR_LOST_MS (tunable, 200) to say it.
 *
 * Nobody waits for it with the socket lock held. The socket enters
 * "verdict pending" (rsock.lost_until): it posts nothing (its QP is in
 * the error state: rs_can_send and the control path check it), reports no
 * readiness beyond the bytes it already received, and its calls return
 * EAGAIN or wait in rs_wait like any other wait, with the lock dropped.
 * The anchor is in the wait fd already (EPOLLIN|EPOLLRDHUP; errors only
 * after a FIN), and the socket's timerfd (the keepalive's, made here when
 * keepalive is off) is armed for lost_until, so whoever waits - a
 * blocking call, the dispatcher's epoll or poll - wakes at the verdict:
 * the anchor's FIN or error, or the timer, after which the fallback
 * verdict applies (a reset, as TCP reports a peer that vanished).
 *
 * Locking: the socket lock is held in every function here (struct rsock).
 */
#include "rs_anchor_int.h"

#include <sys/timerfd.h>

/* The anchor (or the peer's DISCONNECT, seen meanwhile) has spoken: 1. */
static int judged(struct rsock *s)
{
    if (s->state == RS_ERROR)
        return 1;                   /* the anchor's reset (rs_anchor_check) */
    if (!s->anchor_fin && !s->peer_gone)
        return 0;
    s->peer_wr_closed = s->peer_gone = 1;   /* EOF once the data is read */
    return 1;
}

/* The timerfd fires at t (absolute, CLOCK_MONOTONIC as rs_now_ms). */
static int arm_at(struct rsock *s, int64_t t)
{
    if (rs_timer_ensure(s))
        return -1;
    struct itimerspec its = { .it_value = { t / 1000, (t % 1000) * 1000000L } };
    return timerfd_settime(s->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void end_pending(struct rsock *s)
{
    s->lost_until = 0;
    (void)rs_keepalive_arm(s);      /* the timer back to the keepalive, or off */
    rs_event(s);
}

int rs_anchor_peer_lost(struct rsock *s)
{
    if (!s->anc || s->anc_phase != ANC_UPGRADED)
        return 0;
    if (s->lost_until)
        return 1;                   /* a later failure of the same loss */
    if (s->anchor_fd >= 0 && !s->anchor_fin)
        rs_anchor_check(s);         /* what it says already; never waits */
    if (judged(s))
        return 1;
    if (s->anchor_fd < 0)
        return 0;
    s->lost_until = rs_now_ms() + rs_tun.anchor_lost_ms;
    if (arm_at(s, s->lost_until)) {
        s->lost_until = 0;          /* no timer: judged now, as silent */
        return 0;
    }
    rs_event(s);                    /* sleepers re-poll: the timer is new */
    return 1;
}

void rs_anchor_lost_step(struct rsock *s)
{
    if (!s->lost_until)
        return;
    if (s->anchor_fd >= 0 && !s->anchor_fin)
        rs_anchor_check(s);
    if (judged(s))
        return end_pending(s);
    if (rs_now_ms() < s->lost_until)
        return;
    rs_log(1, "send completion failed: op %d status %s, and the TCP anchor said nothing within %u ms: "
              "connection reset", s->send_fail.op, ibv_wc_status_str(s->send_fail.status),
           rs_tun.anchor_lost_ms);
    rs_set_error(s, ECONNRESET, NULL);
    end_pending(s);
}

/*
 * The CM no longer tells s of its peer's end (rs_cms_detach): the anchor's
 * FIN stands for it - the peer's TCP socket closed without its module's
 * DISCONNECT before it, as at its process's death. Not at once: a FIN is
 * not ordered with what the peer's device still holds for our QP (a send
 * held for want of a receive travels on the QP's stream, and the peer's
 * in-band DISCONNECT after it), so the DISCONNECT gets RS_ANCHOR_LOST_MS
 * to arrive; then the peer is gone, as DISCONNECTED said before (EOF once
 * the data is read). After the pass's CQ poll (progress_from).
 */
void rs_anchor_fin_step(struct rsock *s)
{
    int waiting = s->anchor_fin && !s->peer_gone && s->state == RS_CONNECTED && !s->lost_until;
    if (!waiting) {
        if (s->fin_until) {
            s->fin_until = 0;
            if (!s->lost_until)         /* else the timer is the lost verdict's */
                (void)rs_keepalive_arm(s);
        }
        return;
    }
    int64_t now = rs_now_ms();
    if (!s->fin_until) {
        s->fin_until = now + rs_tun.anchor_lost_ms;
        if (arm_at(s, s->fin_until) == 0)
            return;
    } else if (now < s->fin_until) {
        return;
    }
    s->fin_until = 0;
    (void)rs_keepalive_arm(s);
    rs_cms_peer_gone(s);
}
