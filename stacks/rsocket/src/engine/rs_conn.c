/*
 * rs_conn.c - the connection state machine on rdma_cm. Each socket has a
 * private event channel whose fd is in its wait fd (until an anchored
 * socket is upgraded: rs_cmshare.c); every CM event is handled
 * non-blocking here, from poll_events or from a blocking call.
 *
 *   active:  RESOLVING_ADDR -> RESOLVING_ROUTE -> CONNECTING -> CONNECTED
 *   passive: LISTENING; each CONNECT_REQUEST is answered at once
 *            (rdma_accept, no thread, no lag): rs_accept.c.
 */
#include "rs_sock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int rs_conn_bind(struct rsock *s, const struct sockaddr *addr, socklen_t len)
{
    (void)len;
    if (s->state != RS_INIT) {
        errno = EINVAL;
        return -1;
    }
    if (rdma_bind_addr(s->id, (struct sockaddr *)addr))
        return -1;
    rs_set_state(s, RS_BOUND);
    return 0;
}

int rs_conn_listen(struct rsock *s, int backlog)
{
    if (s->state == RS_LISTENING) {
        s->rd_open = 1;          /* listening again after a shutdown */
        s->backlog = backlog > 0 ? backlog : 1;
        return 0;
    }
    if (s->state != RS_BOUND && s->state != RS_INIT) {
        errno = EINVAL;
        return -1;
    }
    if (rdma_listen(s->id, backlog) || rs_lprog_register(s))
        return -1;
    s->backlog = backlog > 0 ? backlog : 1;
    rs_set_state(s, RS_LISTENING);
    return 0;
}

int rs_conn_start(struct rsock *s, const struct sockaddr *addr, socklen_t len)
{
    (void)len;
    /* while connecting, any wait also answers this process's listeners
     * (a connect to our own listener must not wait for an accept()) */
    if (rs_lprog_add_to_wait_fd(s))
        return -1;
    s->connect_start_ms = rs_now_ms();
    s->resolve_retries = 0;
    if (rdma_resolve_addr(s->id, NULL, (struct sockaddr *)addr,
                          (int)rs_tun.resolve_timeout_ms)) {
        rs_lprog_del_from_wait_fd(s);
        return -1;
    }
    rs_set_state(s, RS_RESOLVING_ADDR);
    return 0;
}

/* A dead link ends an RC connection after retry_count+1 local ACK timeouts
 * (4.096 us << timeout): rdma_cm's default on RoCE, 17, gives 4.3 s, where
 * TCP retransmits for about 15 minutes (tcp_retries2) and leaves shorter
 * verdicts to keepalive and TCP_USER_TIMEOUT (rs_ctrl.c), which this
 * engine applies as TCP does. 25 (137 s a try, 18 minutes with 7
 * retries) keeps the transport from deciding first. Not on the wire:
 * interoperates with any rsockets peer. A librdmacm without the option
 * keeps its default. */
void rs_conn_ack_timeout(struct rdma_cm_id *id)
{
    uint8_t t = (uint8_t)rs_tun.ack_timeout;
    if (t)
        (void)rdma_set_option(id, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, &t, sizeof(t));
}

void rs_conn_fill_param(struct rdma_conn_param *p, const uint8_t *pdata)
{
    memset(p, 0, sizeof(*p));
    p->private_data = pdata;
    p->private_data_len = RS_CONN_DATA_LEN;
    p->responder_resources = 0;
    p->initiator_depth = 0;
    p->flow_control = 1;
    p->retry_count = 7;
    p->rnr_retry_count = 7;      /* infinite: the protocol relies on it */
}

static void on_route_resolved(struct rsock *s)
{
    uint8_t pdata[RS_CONN_DATA_LEN];
    struct rdma_conn_param param;

    if (!rs_transport_supported(s->id, "connect") || rs_endpoint_create(s)) {
        rs_set_error(s, errno, NULL);
        return;
    }
    rs_local_conn_data(s, pdata);
    rs_conn_fill_param(&param, pdata);
    rs_conn_ack_timeout(s->id);
    rs_cms_detach_early(s);
    if (rdma_connect(s->id, &param)) {
        rs_set_error(s, errno, NULL);
        return;
    }
    rs_set_state(s, RS_CONNECTING);
}

static void on_established(struct rsock *s, const struct rdma_cm_event *ev)
{
    struct rs_conn_info ci;
    const char *why = NULL;

    if (rs_wire_decode_conn(ev->param.conn.private_data,
                            ev->param.conn.private_data_len, &ci, &why)) {
        int err = errno;
        rs_log(3, "connect: peer's reply private data rejected: %s", why);
        rs_set_state(s, RS_CONNECTED);     /* so rs_set_error tears the QP down */
        rs_set_error(s, err, NULL);
        rs_set_state(s, RS_CONNECT_ERROR);
        return;
    }
    rs_save_peer_conn(s, &ci);
    rs_set_state(s, RS_CONNECTED);
    rs_update_credits(s);
}

/* Map a failed CM step to the errno a TCP socket would report. */
int rs_conn_failure_errno(const struct rdma_cm_event *ev)
{
    switch (ev->event) {
    case RDMA_CM_EVENT_REJECTED: return ECONNREFUSED;
    case RDMA_CM_EVENT_ADDR_ERROR: return ev->status < 0 ? -ev->status : EHOSTUNREACH;
    case RDMA_CM_EVENT_ROUTE_ERROR: return ev->status < 0 ? -ev->status : ENETUNREACH;
    case RDMA_CM_EVENT_UNREACHABLE: return ev->status < 0 ? -ev->status : ETIMEDOUT;
    default: return ev->status < 0 ? -ev->status : ECONNREFUSED;
    }
}

/*
 * A resolution that timed out (ARP, or an SA path query on a busy IB
 * fabric) is tried again as librdmacm does: retry n waits 1000<<n ms, up
 * to RS_RESOLVE_RETRIES per stage, and never past the connect timeout.
 * The resolution's own timeout is the wait: its event comes back here.
 * 1 when a new attempt is under way, 0 when the connect should fail.
 */
static int retry_resolution(struct rsock *s, enum rdma_cm_event_type failed)
{
    const char *stage = failed == RDMA_CM_EVENT_ADDR_ERROR ? "address" : "route";
    int64_t left = s->connect_start_ms + rs_tun.connect_timeout_ms - rs_now_ms();

    if (s->resolve_retries >= RS_RESOLVE_RETRIES || left <= 0) {
        rs_log(2, "connect: %s resolution timed out %d times; giving up", stage,
               s->resolve_retries + 1);
        return 0;
    }
    s->resolve_retries++;
    int64_t ms = (int64_t)1000 << s->resolve_retries;
    if (ms > left)
        ms = left;
    if (failed == RDMA_CM_EVENT_ROUTE_ERROR)
        return rdma_resolve_route(s->id, (int)ms) == 0;
    /* the id's destination is rewritten by the call: pass a copy */
    struct sockaddr_storage dst;
    memcpy(&dst, &s->id->route.addr.dst_storage, sizeof(dst));
    return rdma_resolve_addr(s->id, NULL, (struct sockaddr *)&dst, (int)ms) == 0;
}

static void on_active_event(struct rsock *s, const struct rdma_cm_event *ev)
{
    switch (ev->event) {
    case RDMA_CM_EVENT_ADDR_ERROR:
    case RDMA_CM_EVENT_ROUTE_ERROR:
        if (ev->status == -ETIMEDOUT && retry_resolution(s, ev->event))
            break;
        rs_set_error(s, rs_conn_failure_errno(ev), NULL);
        break;
    case RDMA_CM_EVENT_ADDR_RESOLVED:
        s->resolve_retries = 0;
        if (rdma_resolve_route(s->id, (int)rs_tun.resolve_timeout_ms))
            rs_set_error(s, errno, NULL);
        else
            rs_set_state(s, RS_RESOLVING_ROUTE);
        break;
    case RDMA_CM_EVENT_ROUTE_RESOLVED:
        on_route_resolved(s);
        break;
    case RDMA_CM_EVENT_ESTABLISHED:
        on_established(s, ev);
        break;
    case RDMA_CM_EVENT_CONNECT_RESPONSE:
        break;
    default:
        rs_set_error(s, rs_conn_failure_errno(ev), NULL);
        break;
    }
}

static void on_connected_event(struct rsock *s, const struct rdma_cm_event *ev)
{
    switch (ev->event) {
    case RDMA_CM_EVENT_DISCONNECTED:
    case RDMA_CM_EVENT_DEVICE_REMOVAL:
    case RDMA_CM_EVENT_TIMEWAIT_EXIT:
        s->peer_gone = 1;
        s->peer_wr_closed = 1;
        if (s->state == RS_CONNECTED)
            rs_set_state(s, RS_DISCONNECTED);
        break;
    default:
        break;
    }
}

/* ---- event loop step ------------------------------------------------- */

static void dispatch_event(struct rsock *s, struct rdma_cm_event *ev)
{
    if (s->state == RS_LISTENING) {
        if (ev->event == RDMA_CM_EVENT_CONNECT_REQUEST) {
            uint8_t pdata[256];
            size_t plen = ev->param.conn.private_data_len;
            struct rdma_cm_id *nid = ev->id;
            if (plen > sizeof(pdata))
                plen = sizeof(pdata);
            if (ev->param.conn.private_data)
                memcpy(pdata, ev->param.conn.private_data, plen);
            else
                plen = 0;
            rdma_ack_cm_event(ev);
            rs_accept_request(s, nid, pdata, plen);
            return;
        }
        /* the software device's listener could not take a request for
         * lack of descriptors (a kernel CM never reports this) */
        if (ev->event == RDMA_CM_EVENT_CONNECT_ERROR && ev->id == s->id && ev->status < 0)
            rs_accept_note_error(s, -ev->status);
    } else if (s->state == RS_ACCEPTING) {
        rs_accept_on_event(s, ev);
    } else if (s->state >= RS_RESOLVING_ADDR && s->state <= RS_CONNECTING) {
        on_active_event(s, ev);
    } else {
        on_connected_event(s, ev);
    }
    rdma_ack_cm_event(ev);
    rs_event(s);
}

/* Handle every pending CM event without blocking. Bounded: a channel only
 * holds the events already queued by the kernel/device. */
int rs_conn_process_cm(struct rsock *s)
{
    struct rdma_cm_event *ev;
    int n = 0;

    if (!s->cm_chan)
        return 0;
    while (n < 1024 && rdma_get_cm_event(s->cm_chan, &ev) == 0) {
        dispatch_event(s, ev);
        n++;
    }
    if (s->state == RS_LISTENING)
        rs_accept_resolve(s);       /* accepted connections' outcomes */
    return n;
}
