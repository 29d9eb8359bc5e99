/* softrdma librdmacm: an established connection without its CM connection
 * (issue 8, descriptors per connection).
 *
 * Once ESTABLISHED, a connected id's seqpacket connection only carries a
 * DREQ and tells, by its EOF, that the peer id or process is gone. A user
 * that learns both another way - rsocket's TCP-anchored connection: the
 * in-band DISCONNECT and the TCP anchor - calls rdma_softrdma_detach() (a
 * softrdma extension, looked up with dlsym; real rdma-core has none) to
 * give the descriptor back. Both ends must ask: each sends DETACH on the
 * connection and closes it once it has sent its own and read the peer's,
 * so an EOF after both is never taken for a disconnect, and an end whose
 * peer did not ask (an older library, a plain rdma_cm user) keeps the
 * connection and every rdma_cm event as before. A later rdma_disconnect()
 * still sends its DREQ while the connection is open (a peer that did not
 * detach gets DISCONNECTED; one that did closes at our DETACH, before the
 * DREQ) and reports DISCONNECTED locally either way; a detached id's peer
 * is told nothing by the CM - the user asked for that.
 * Asked before the connection is made (before rdma_connect, or on a
 * request before rdma_accept), the wish rides in the REQ or REP
 * (CM_MSG_FLAG_DETACH): when both ends said so, each closes the connection
 * at ESTABLISHED - the active after its RTU, the passive after reading it -
 * and no DETACH is sent; otherwise a later call after ESTABLISHED detaches
 * as above.
 * SOFTRDMA_CM_DETACH=0 refuses every request (EOPNOTSUPP), for A/B runs. */
#include "cm_internal.h"
#include <errno.h>

static void cm_detach_close(struct cm_id *id)
{
    if (id->detach_sent && id->peer_detach && id->conn.fd >= 0)
        cm_conn_close(id);
}

void cm_on_detach(struct cm_id *id)
{
    if (id->state != CM_CONNECTED)
        return;
    id->peer_detach = 1;
    cm_detach_close(id);
}

void cm_detach_at_established(struct cm_id *id, const struct cm_msg *peer)
{
    if (!id->detach_early || !(peer->flags & CM_MSG_FLAG_DETACH) || id->conn.fd < 0)
        return;
    id->detach_sent = id->peer_detach = 1;
    cm_conn_close(id);
}

static int cm_detach_allowed(void)
{
    static int v = -1;              /* read once; the same value by every thread */
    if (__atomic_load_n(&v, __ATOMIC_RELAXED) < 0)
        __atomic_store_n(&v, sr_env_int("SOFTRDMA_CM_DETACH", 1) != 0, __ATOMIC_RELAXED);
    return __atomic_load_n(&v, __ATOMIC_RELAXED);
}

CM_API int rdma_softrdma_detach(struct rdma_cm_id *pub)
{
    struct cm_id *id = cm_of(pub);
    if (!pub || sr_stale(id->epoch, "rdma_softrdma_detach"))
        return -1;
    if (!cm_detach_allowed())
        return errno = EOPNOTSUPP, -1;
    pthread_mutex_lock(&sr_lock);
    int rc = 0;
    if (pub->qp_type == IBV_QPT_RC && (id->state == CM_IDLE || id->state == CM_ADDR_RESOLVED ||
                                       id->state == CM_ROUTE_RESOLVED || id->state == CM_REQ_RCVD)) {
        id->detach_early = 1;       /* told in our REQ or REP */
    } else if (id->state != CM_CONNECTED || pub->qp_type != IBV_QPT_RC) {
        errno = EINVAL;
        rc = -1;
    } else if (!id->detach_sent && id->conn.fd >= 0) {
        struct cm_msg m;
        cm_fill_msg(&m, CM_MSG_DETACH, NULL, 0);
        rc = cm_send(id, &m);
        if (rc == 0) {
            id->detach_sent = 1;
            cm_detach_close(id);
        }
    }
    pthread_mutex_unlock(&sr_lock);
    return rc;
}
