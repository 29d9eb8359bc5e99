/*
 * rs_poll.c - readiness. poll_events does all pending work without
 * blocking (rs_progress re-arms the CQ and polls once more, so no edge is
 * lost between the work and the mask) and returns the socket's true mask.
 */
#include "rs_sock.h"

#include <nstack/nstack_module.h>
#include <sys/epoll.h>

static uint32_t listener_mask(struct rsock *s)
{
    if (!s->rd_open)                 /* shut down: as Linux's closed listener */
        return EPOLLIN | EPOLLOUT | EPOLLHUP | EPOLLRDHUP;
    return rs_accept_ready(s) || s->accept_err ? EPOLLIN : 0;
}

static uint32_t stream_mask(struct rsock *s)
{
    uint32_t m = 0;

    if (s->rx_queued || s->peer_wr_closed || !s->rd_open)
        m |= EPOLLIN;
    if (s->peer_wr_closed)
        m |= EPOLLRDHUP;
    /* Hang-up only once the queued data is read (programs such as
     * rstream's do_poll treat POLLHUP as an error and would drop the
     * tail), and, as on Linux, only once both directions are closed: a
     * peer's close alone is IN|OUT|RDHUP (half-closed) until this end
     * shuts its side; an error (reset, timeout) is RS_ERROR. */
    if (s->peer_gone && !s->rx_queued && (!s->wr_open || s->disconnect_sent))
        m |= EPOLLHUP;
    if (s->wr_open && !s->peer_gone && !s->disconnect_sent && rs_can_send(s))
        m |= EPOLLOUT;
    if (s->peer_gone)
        m |= EPOLLOUT;           /* a write would fail at once: not blocking */
    return m;
}

uint32_t rs_poll_mask(struct rsock *s)
{
    if (rs_check_usable(s))
        return EPOLLERR | EPOLLHUP;
    switch (s->state) {
    case RS_LISTENING:
        return listener_mask(s) | (s->err ? EPOLLERR : 0);
    case RS_CONNECTED:
    case RS_DISCONNECTED:
        return stream_mask(s) | (s->err ? EPOLLERR : 0);
    case RS_CONNECT_ERROR:
        return EPOLLOUT | EPOLLERR | EPOLLHUP;
    case RS_ERROR:
        return EPOLLIN | EPOLLOUT | EPOLLHUP | (s->err ? EPOLLERR : 0);
    case RS_INIT:
    case RS_BOUND:
        return EPOLLOUT | EPOLLHUP;      /* like an unconnected TCP socket */
    default:
        return 0;                        /* connecting */
    }
}

/* full: ask the wait fd's sources (poll_events); else only the CQ and
 * the state (poll_recheck: the dispatcher saw no wake-up since the last
 * full pass, so no source has anything: module ABI 1.5). */
#define PASS_FULL 1
#define PASS_LAZY 2

static uint32_t poll_mask_after(struct rsock *s, uint64_t *gen, int how)
{
    uint32_t m;
    if (rs_wait_serves_listeners(s))
        rs_lprog_run();      /* requests to any listener of the process */
    pthread_mutex_lock(&s->lock);
    if (rs_check_usable(s) == 0) {
        if (how & PASS_LAZY)
            rs_progress_lazy(s, how & PASS_FULL);
        else if (how & PASS_FULL)
            rs_progress(s, 1);
        else
            rs_progress_recheck(s);
    }
    m = rs_poll_mask(s);
    if ((how & PASS_LAZY) && s->cq_lazy)
        m |= NSTACK_EV_UNARMED;      /* the dispatcher arms it before it sleeps */
    if (gen)
        *gen = s->gen;
    pthread_mutex_unlock(&s->lock);
    return m;
}

uint32_t rs_poll_events(struct rsock *s, uint64_t *gen)
{
    return poll_mask_after(s, gen, PASS_FULL);
}

uint32_t rs_poll_recheck(struct rsock *s, uint64_t *gen)
{
    return poll_mask_after(s, gen, 0);
}

uint32_t rs_poll_lazy(struct rsock *s, uint64_t *gen, int fired)
{
    return poll_mask_after(s, gen, PASS_LAZY | (fired ? PASS_FULL : 0));
}

int rs_poll_arm(struct rsock *s)
{
    pthread_mutex_lock(&s->lock);
    int news = rs_check_usable(s) == 0 && rs_arm_cq(s);
    pthread_mutex_unlock(&s->lock);
    return news;
}

/* Module ABI 1.6 busy_poll_ns: a connected socket's looks (rs_poll_recheck,
 * rs_poll_lazy) poll its CQ in user space, so a wait that found nothing
 * may keep looking for polling_time (RS_POLLING_TIME, as the engine's own
 * blocking calls do before they sleep: rs_wait.c). */
uint64_t rs_busy_poll_ns(struct rsock *s)
{
    pthread_mutex_lock(&s->lock);
    int live = s->state == RS_CONNECTED && s->cq && s->fork_gen == rs_fork_gen;
    pthread_mutex_unlock(&s->lock);
    return live ? (uint64_t)rs_tun.polling_time_us * 1000 : 0;
}
