/* Waiting for work completions with a deadline.
 *
 * The classic sequence: poll the CQ; if it is empty, arm it
 * (ibv_req_notify_cq), poll once more to close the race with a completion
 * that arrived before the arming, then sleep on the completion channel fd,
 * read the event (ibv_get_cq_event) and acknowledge it (ibv_ack_cq_events,
 * which ibv_destroy_cq waits for). */
#include "ex_common.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>

static bool poll_one(struct ibv_cq *cq, struct ibv_wc *wc)
{
    int n = ibv_poll_cq(cq, 1, wc);
    if (n < 0)
        ex_fail("ibv_poll_cq failed (%d)", n);
    return n == 1;
}

/* Consumes one event from the channel once its fd is readable. */
static void sleep_on_channel(struct ibv_comp_channel *cc, int64_t deadline_ms)
{
    struct pollfd pfd = { .fd = cc->fd, .events = POLLIN };
    int left = ex_remaining_ms(deadline_ms);
    if (left == 0)
        ex_fail("timed out waiting for a work completion");
    int rc = poll(&pfd, 1, left);
    if (rc < 0 && errno != EINTR)
        ex_fail_errno("poll on the completion channel");
    if (rc <= 0)
        return;   /* timeout or signal: the caller re-checks the deadline */
    /* Readable, and we are the channel's only reader: this does not block. */
    struct ibv_cq *ev_cq;
    void *ev_ctx;
    if (ibv_get_cq_event(cc, &ev_cq, &ev_ctx) == 0)
        ibv_ack_cq_events(ev_cq, 1);
    else if (errno != EAGAIN)
        ex_fail_errno("ibv_get_cq_event");
}

void ex_wait_wc(struct ibv_cq *cq, struct ibv_comp_channel *cc,
                int64_t deadline_ms, struct ibv_wc *wc)
{
    for (;;) {
        if (poll_one(cq, wc))
            return;
        if (ibv_req_notify_cq(cq, 0))
            ex_fail("ibv_req_notify_cq failed");
        if (poll_one(cq, wc))
            return;
        sleep_on_channel(cc, deadline_ms);
    }
}

void ex_check_wc(const struct ibv_wc *wc, enum ibv_wc_opcode opcode, const char *what)
{
    if (wc->status != IBV_WC_SUCCESS)
        ex_fail("%s completed with error: %s (status %d, vendor_err 0x%x)", what,
                ibv_wc_status_str(wc->status), wc->status, wc->vendor_err);
    if (wc->opcode != opcode)
        ex_fail("%s: unexpected completion opcode %d (expected %d)", what, wc->opcode, opcode);
}
