/*
 * rs_accept.c - the passive side: answering connection requests, keeping
 * accepted connections until they are established, the accept queue.
 *
 * A request is answered at once (rdma_accept, no thread) and the new
 * socket waits in the listener's queue in RS_ACCEPTING. It posts nothing
 * there: the active side moves its QP to RTR/RTS only when it processes
 * our reply, and on an HCA anything we wrote before that would be dropped
 * and held up by a retransmission timeout (or fail the QP). While it
 * accepts, its CM channel fd is also in the listener's wait fd, so the
 * listener wakes for ESTABLISHED (or a failure) and rs_accept_resolve(),
 * run by every progress pass of the listener, moves it on: established
 * sockets become CONNECTED (first credit/buffer update posted then) and
 * can be returned by accept(); failed ones are closed with one log line.
 * accept() therefore only ever returns established sockets, and nothing
 * arrives on them afterwards except the peer's traffic.
 *
 * Locking: the queue belongs to the listener (its lock). A queued socket
 * is reachable only through it, so its own lock is taken inside the
 * listener's (listener -> child, never the reverse).
 */
#include "rs_anchor.h"
#include "rs_sock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>

static int new_channel(struct rsock *c)
{
    c->cm_chan = rdma_create_event_channel();
    if (!c->cm_chan)
        return -1;
    int fl = fcntl(c->cm_chan->fd, F_GETFL);
    if (fl < 0 || fcntl(c->cm_chan->fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return rs_wait_fd_add(c, c->cm_chan->fd);
}

static void reject_request(struct rdma_cm_id *id, const char *why)
{
    if (why)
        rs_log(3, "incoming connection rejected: %s", why);
    rdma_reject(id, NULL, 0);
    rdma_destroy_id(id);
}

static int accept_on_wire(struct rsock *c, const struct rs_conn_info *ci)
{
    uint8_t pdata[RS_CONN_DATA_LEN];
    struct rdma_conn_param param;

    if (rs_endpoint_create(c))
        return -1;
    rs_save_peer_conn(c, ci);
    rs_local_conn_data(c, pdata);
    rs_conn_fill_param(&param, pdata);
    rs_conn_ack_timeout(c->id);
    rs_cms_detach_early(c);
    if (rdma_accept(c->id, &param))
        return -1;
    rs_set_state(c, RS_ACCEPTING);
    return 0;
}

/* The listener watches the accepting socket's CM channel. */
/* The listener watches the accepting socket's CM channel, and its
 * completion channel for the completion of the first buffer update. */
static int watch_child(struct rsock *l, struct rsock *c)
{
    if (rs_wait_fd_add(l, c->cm_chan->fd))
        return -1;
    if (rs_wait_fd_add(l, c->comp_chan->fd)) {
        epoll_ctl(l->wait_fd, EPOLL_CTL_DEL, c->cm_chan->fd, NULL);
        return -1;
    }
    c->in_listener_wait = 1;
    return 0;
}

static void unwatch_child(struct rsock *l, struct rsock *c)
{
    if (!c->in_listener_wait)
        return;
    epoll_ctl(l->wait_fd, EPOLL_CTL_DEL, c->cm_chan->fd, NULL);
    epoll_ctl(l->wait_fd, EPOLL_CTL_DEL, c->comp_chan->fd, NULL);
    c->in_listener_wait = 0;
}

/* Still settling: accepting, or established with the first buffer update
 * not yet completed. Handed out only once settled, so its completion does
 * not wake an application that watches the new socket (an epoll inside
 * another epoll sees the raw wait fd) without anything to read. */
static int child_settling(const struct rsock *c)
{
    return c->state == RS_ACCEPTING ||
           (c->state == RS_CONNECTED && c->sq_track.sig_outstanding > 0);
}

static void queue_child(struct rsock *l, struct rsock *c)
{
    if (l->acceptq_tail)
        l->acceptq_tail->acceptq_next = c;
    else
        l->acceptq_head = c;
    l->acceptq_tail = c;
    l->acceptq_len++;
}

/*
 * An anchored socket's listener (rs_anchor.c) takes one request, straight
 * into the waiting socket `adopt_into` rather than a new one: that socket
 * is already the application's (its wait fd is in the dispatcher's sets).
 * Nothing is queued and the listener does not watch it: the socket reads
 * its own CM channel from then on. Listener lock held; the socket's is
 * taken inside it (the engine's order).
 */
static void accept_into(struct rsock *l, struct rdma_cm_id *nid, const struct rs_conn_info *ci)
{
    /* adopt_into stays set: the socket outlives its listener, and a
     * second request finds it taken (id set) and is rejected */
    struct rsock *c = l->adopt_into;
    pthread_mutex_lock(&c->lock);
    int ok = c->id == NULL && c->state == RS_INIT && c->anc_phase < RS_ANC_PHASE_UPGRADED &&
             rs_anchor_request_ok(c, rdma_get_peer_addr(nid));
    if (ok) {
        c->id = nid;
        nid->context = c;
        if (new_channel(c) || rdma_migrate_id(nid, c->cm_chan) || accept_on_wire(c, ci)) {
            c->err = errno ? errno : ECONNABORTED;
            /* the active leaving mid-handshake (ab closing its last
             * connections) is its business: the socket reports it */
            rs_log(c->err == ECONNRESET ? 1 : 3, "anchored connection: accepting failed: %s",
                   strerror(c->err));
            rdma_reject(nid, NULL, 0);
            rs_set_state(c, RS_CONNECT_ERROR);
        }
        rs_event(c);
    }
    void *cookie = c->cookie;
    pthread_mutex_unlock(&c->lock);
    if (!ok)
        return reject_request(nid, "anchor listener: not the TCP peer, or taken or given up");
    if (cookie && rs_notify_fn)
        rs_notify_fn(cookie);
}

/* Out of descriptors for an incoming connection: the request is rejected
 * (its client sees ECONNREFUSED), and the listener's next accept() fails
 * with EMFILE/ENFILE, as the kernel's accept does when it cannot make the
 * new descriptor (the listener reads readable meanwhile). Listener lock
 * held. */
void rs_accept_note_error(struct rsock *l, int err)
{
    if (err != EMFILE && err != ENFILE)
        return;
    l->accept_err = err;
    rs_event(l);
}

/* The request's private data was copied before its event was acked.
 * Requests beyond the backlog (accepting or ready) are rejected. */
void rs_accept_request(struct rsock *l, struct rdma_cm_id *nid, const uint8_t *pdata,
                       size_t plen)
{
    struct rs_conn_info ci;
    const char *why = NULL;

    if (l->acceptq_len >= l->backlog || !l->rd_open)   /* full, or shut down */
        return reject_request(nid, NULL);
    if (rs_wire_decode_conn(pdata, plen, &ci, &why))
        return reject_request(nid, why);
    if (!rs_transport_supported(nid, "incoming connection rejected"))
        return reject_request(nid, NULL);
    if (l->adopt_into)
        return accept_into(l, nid, &ci);
    errno = 0;
    struct rsock *c = rs_alloc(l->domain, l);
    if (!c) {
        int err = errno;
        rs_accept_note_error(l, err);
        return reject_request(nid, err == EMFILE || err == ENFILE ? strerror(err) : "out of memory");
    }
    c->id = nid;
    nid->context = c;
    if (new_channel(c) || rdma_migrate_id(nid, c->cm_chan) || accept_on_wire(c, &ci) ||
        watch_child(l, c)) {
        int err = errno;
        rs_log(3, "incoming connection failed: %s", strerror(err));
        rdma_reject(nid, NULL, 0);
        rs_free(c);
        rs_accept_note_error(l, err);
        return;
    }
    queue_child(l, c);
}

/* A CM event on a socket still in RS_ACCEPTING (its own lock held). */
void rs_accept_on_event(struct rsock *c, const struct rdma_cm_event *ev)
{
    switch (ev->event) {
    case RDMA_CM_EVENT_ESTABLISHED:
        rs_set_state(c, RS_CONNECTED);
        rs_update_credits(c);           /* the peer's QP can receive now */
        break;
    case RDMA_CM_EVENT_DISCONNECTED:
        /* established and closed already: accept() still returns it, the
         * data that came with it is read, then EOF (as TCP) */
        rs_set_state(c, RS_DISCONNECTED);
        c->peer_gone = c->peer_wr_closed = 1;
        break;
    default:                            /* REJECTED, CONNECT_ERROR, UNREACHABLE, ... */
        /* a reset is the active leaving before its RTU: INF, as a TCP
         * client that resets during the handshake is nobody's error */
        rs_log(ev->status == -ECONNRESET ? 1 : 3, "accepted connection failed before it was established: %s",
               rdma_event_str(ev->event));
        c->err = rs_conn_failure_errno(ev);
        rs_set_state(c, RS_CONNECT_ERROR);
        break;
    }
}

static int child_ready(const struct rsock *c)
{
    /* RS_ERROR: failed after ESTABLISHED (the peer broke the protocol):
     * handed out like a TCP connection reset after the handshake, the
     * application reads the error */
    return (c->state == RS_CONNECTED || c->state == RS_DISCONNECTED ||
            c->state == RS_ERROR) && !child_settling(c);
}

static void unlink_child(struct rsock *l, struct rsock *prev, struct rsock *c)
{
    if (prev)
        prev->acceptq_next = c->acceptq_next;
    else
        l->acceptq_head = c->acceptq_next;
    if (l->acceptq_tail == c)
        l->acceptq_tail = prev;
    c->acceptq_next = NULL;
    l->acceptq_len--;
}

static void close_child(struct rsock *c)
{
    pthread_mutex_lock(&c->lock);
    rs_close_drain(c);
    pthread_mutex_unlock(&c->lock);
    rs_free(c);
}

/* Listener lock held. Bounded by the backlog. */
void rs_accept_resolve(struct rsock *l)
{
    struct rsock *prev = NULL, *c = l->acceptq_head;
    int changed = 0;

    while (c) {
        struct rsock *next = c->acceptq_next;
        if (c->state == RS_ACCEPTING) {
            pthread_mutex_lock(&c->lock);
            rs_conn_process_cm(c);
            pthread_mutex_unlock(&c->lock);
        }
        if (c->state == RS_CONNECTED && child_settling(c)) {
            pthread_mutex_lock(&c->lock);
            rs_progress(c, 1);
            pthread_mutex_unlock(&c->lock);
        }
        if (!child_settling(c) && c->in_listener_wait) {
            unwatch_child(l, c);
            changed = 1;
        }
        if (c->state == RS_CONNECT_ERROR) {        /* never established */
            unlink_child(l, prev, c);
            close_child(c);
        } else {
            prev = c;
        }
        c = next;
    }
    if (changed)
        rs_event(l);
}

int rs_accept_ready(const struct rsock *l)
{
    for (const struct rsock *c = l->acceptq_head; c; c = c->acceptq_next)
        if (child_ready(c))
            return 1;
    return 0;
}

/* The oldest established connection, or NULL. */
struct rsock *rs_conn_accept_pop(struct rsock *l)
{
    struct rsock *prev = NULL;
    for (struct rsock *c = l->acceptq_head; c; prev = c, c = c->acceptq_next) {
        if (child_ready(c)) {
            unlink_child(l, prev, c);
            return c;
        }
    }
    return NULL;
}

/* Any queued connection, established or not (closing the listener). */
struct rsock *rs_accept_take_any(struct rsock *l)
{
    struct rsock *c = l->acceptq_head;
    if (!c)
        return NULL;
    unwatch_child(l, c);
    unlink_child(l, NULL, c);
    return c;
}
