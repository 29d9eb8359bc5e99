/* rdma_cm helpers with deadlines.
 *
 * rdma_get_cm_event() blocks without a timeout, so we first poll() the event
 * channel's fd (a normal pollable fd) and only read the event once the fd is
 * readable. */
#include "ex_common.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>

struct rdma_cm_event *ex_next_cm_event(struct rdma_event_channel *ch,
                                       int64_t deadline_ms, const char *what)
{
    struct pollfd pfd = { .fd = ch->fd, .events = POLLIN };
    for (;;) {
        int left = ex_remaining_ms(deadline_ms);
        if (left == 0)
            ex_fail("timed out waiting for %s", what);
        int rc = poll(&pfd, 1, left);
        if (rc < 0 && errno != EINTR)
            ex_fail_errno("poll on the CM event channel");
        if (rc <= 0)
            continue;        /* signal or timeout: the deadline check decides */
        /* Readable: an event is queued, so this does not block (we are the
         * channel's only reader). */
        struct rdma_cm_event *ev;
        if (rdma_get_cm_event(ch, &ev) == 0)
            return ev;
        if (errno != EAGAIN && errno != EINTR)
            ex_fail_errno("rdma_get_cm_event while waiting for %s", what);
    }
}

const char *ex_cm_failure_hint(enum rdma_cm_event_type type)
{
    switch (type) {
    case RDMA_CM_EVENT_REJECTED:    return ": no server listens there, or it refused";
    case RDMA_CM_EVENT_UNREACHABLE: return ": the server did not answer";
    case RDMA_CM_EVENT_ADDR_ERROR:  return ": no RDMA device reaches that address";
    case RDMA_CM_EVENT_ROUTE_ERROR: return ": no route to that address";
    default:                        return "";
    }
}

struct rdma_cm_event *ex_expect_cm_event(struct rdma_event_channel *ch,
                                         enum rdma_cm_event_type expected,
                                         int64_t deadline_ms)
{
    const char *want = rdma_event_str(expected);
    struct rdma_cm_event *ev = ex_next_cm_event(ch, deadline_ms, want);
    if (ev->event != expected) {
        /* REJECTED carries the peer's reason (e.g. nobody listening). */
        ex_fail("expected CM event %s, got %s (status %d)%s", want,
                rdma_event_str(ev->event), ev->status, ex_cm_failure_hint(ev->event));
    }
    return ev;
}

void ex_resolve_server(struct rdma_cm_id *id, struct rdma_event_channel *ch,
                       const char *addr, const char *port, int64_t deadline_ms)
{
    struct sockaddr_storage dst;
    ex_sockaddr(addr, port, &dst);
    /* Step 1: which local device/port reaches the server's IP address. */
    int timeout = ex_remaining_ms(deadline_ms);
    if (rdma_resolve_addr(id, NULL, (struct sockaddr *)&dst, timeout > 2000 ? 2000 : timeout))
        ex_fail_errno("rdma_resolve_addr %s", addr);
    rdma_ack_cm_event(ex_expect_cm_event(ch, RDMA_CM_EVENT_ADDR_RESOLVED, deadline_ms));
    /* Step 2: the path to it (on RoCE: the GIDs and the next hop). */
    timeout = ex_remaining_ms(deadline_ms);
    if (rdma_resolve_route(id, timeout > 2000 ? 2000 : timeout))
        ex_fail_errno("rdma_resolve_route %s", addr);
    rdma_ack_cm_event(ex_expect_cm_event(ch, RDMA_CM_EVENT_ROUTE_RESOLVED, deadline_ms));
}

void ex_listen(struct rdma_cm_id *id, const char *addr, const char *port,
               const char *progname)
{
    struct sockaddr_storage ss;
    ex_sockaddr(addr, port, &ss);
    if (rdma_bind_addr(id, (struct sockaddr *)&ss))
        ex_fail_errno("rdma_bind_addr %s port %s", addr ? addr : "0.0.0.0", port);
    if (rdma_listen(id, 8))
        ex_fail_errno("rdma_listen");
    printf("%s: listening on %s port %s\n", progname, addr ? addr : "0.0.0.0", port);
    fflush(stdout);
}
