/* softrdma librdmacm: listen, connect, accept, reject, disconnect.
 * A listener is a SOCK_SEQPACKET unix socket; fabric names
 * ($FABRIC/cm/<ip>_<port>) are symlinks to it. One connection per
 * connected id carries REQ, REP, RTU, REJ and DREQ messages; its EOF means
 * the peer id is gone (DISCONNECTED). The device thread runs the callbacks. */
#include "cm_internal.h"
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void cm_conn_cb(struct sr_watch *w, uint32_t events);

int cm_send(struct cm_id *id, struct cm_msg *m)
{
    if (id->conn.fd < 0)
        return errno = ENOTCONN, -1;
    ssize_t n = send(id->conn.fd, m, sizeof *m, MSG_DONTWAIT | MSG_NOSIGNAL);
    return n == (ssize_t)sizeof *m ? 0 : -1;
}

void cm_fill_msg(struct cm_msg *m, uint32_t type, const struct rdma_conn_param *p,
                 uint32_t qpn)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    m->qpn = qpn;
    if (!p)
        return;
    m->pdata_len = p->private_data_len;
    if (p->private_data && p->private_data_len)
        memcpy(m->pdata, p->private_data, p->private_data_len);
    m->responder_resources = p->responder_resources;
    m->initiator_depth = p->initiator_depth;
    m->flow_control = p->flow_control;
    m->retry_count = p->retry_count;
    m->rnr_retry_count = p->rnr_retry_count;
    m->srq = p->srq;
}

void cm_conn_close(struct cm_id *id)
{
    cm_timeout_disarm(id);
    if (id->conn.fd >= 0)
        sr_watch_del(&id->conn);
}

static void cm_names_drop(struct cm_id *id)
{
    for (int i = 0; i < id->nnames; i++) {
        unlink(id->names[i]);
        free(id->names[i]);
    }
    free(id->names);
    id->names = NULL;
    id->nnames = 0;
}

void cm_listen_close(struct cm_id *id)
{
    cm_timeout_disarm(id);          /* a back-off (cm_listen_backoff) */
    cm_names_drop(id);
    if (id->lsn.fd >= 0) {
        sr_watch_del(&id->lsn);
        unlink(id->lsn_path);
    }
}

int cm_qp_to_init(struct cm_id *id)
{
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT };
    int mask;
    rdma_init_qp_attr(&id->pub, &a, &mask);
    return ibv_modify_qp(id->pub.qp, &a, mask);
}

static int cm_qp_to_rts(struct cm_id *id)
{
    struct ibv_qp_attr a;
    int mask;
    if (id->pub.qp->state == IBV_QPS_RESET && cm_qp_to_init(id))
        return -1;
    if (id->peer.has_attach)
        sr_qp_preattach(id->pub.qp, &id->peer.attach);
    a.qp_state = IBV_QPS_RTR;
    rdma_init_qp_attr(&id->pub, &a, &mask);
    if (ibv_modify_qp(id->pub.qp, &a, mask))
        return -1;
    a.qp_state = IBV_QPS_RTS;
    rdma_init_qp_attr(&id->pub, &a, &mask);
    return ibv_modify_qp(id->pub.qp, &a, mask);
}

void cm_qp_error(struct cm_id *id)
{
    if (id->pub.qp) {
        struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };
        ibv_modify_qp(id->pub.qp, &a, IBV_QP_STATE);
    }
}

/* Peer sent DREQ or went away. */
static void cm_peer_gone(struct cm_id *id)
{
    enum cm_state was = id->state;
    cm_conn_close(id);
    id->state = CM_DISCONNECTED;
    id->req_gone = was == CM_REQ_RCVD;
    cm_qp_error(id);
    if (was == CM_REQ_WAIT) {
        sr_defer_free(id);      /* never shown to the user */
        return;
    }
    if (was == CM_CONNECTED)
        cm_push_disconnected(id);
    else if (was == CM_CONNECTING || was == CM_ACCEPTING || was == CM_RESPONDED)
        cm_event_push(id, NULL, RDMA_CM_EVENT_CONNECT_ERROR, -ECONNRESET, NULL);
}

static void cm_on_rep(struct cm_id *id, struct cm_msg *m)
{
    if (id->pub.qp_type == IBV_QPT_UD) {
        cm_ud_on_rep(id, m);
        return;
    }
    cm_timeout_disarm(id);
    id->peer = *m;
    if (!id->pub.qp) {
        id->state = CM_RESPONDED;
        cm_event_push(id, NULL, RDMA_CM_EVENT_CONNECT_RESPONSE, 0, m);
        return;
    }
    if (cm_qp_to_rts(id)) {
        /* our own shortage (EMFILE, ENOMEM): as librdmacm does when it
         * cannot move the QP, the peer gets a REJ and we a CONNECT_ERROR
         * carrying the errno, not a reset the peer never caused */
        int e = errno;
        struct cm_msg rej;
        cm_fill_msg(&rej, CM_MSG_REJ, NULL, 0);
        (void)cm_send(id, &rej);
        cm_conn_close(id);
        cm_qp_error(id);
        id->state = CM_DISCONNECTED;
        cm_event_push(id, NULL, RDMA_CM_EVENT_CONNECT_ERROR, -(e ? e : ENOMEM), NULL);
        return;
    }
    struct cm_msg rtu;
    cm_fill_msg(&rtu, CM_MSG_RTU, NULL, id->pub.qp->qp_num);
    if (cm_send(id, &rtu)) {
        cm_peer_gone(id);
        return;
    }
    id->state = CM_CONNECTED;
    cm_event_push(id, NULL, RDMA_CM_EVENT_ESTABLISHED, 0, m);
    cm_detach_at_established(id, m);
}

/* An incoming connection's REQ: the child id now exists for the user. */
static void cm_on_req(struct cm_id *id, struct cm_msg *m)
{
    struct cm_id *l = id->listener;
    if (!l || l->epoch != sr_epoch || l->state != CM_LISTEN) {
        cm_conn_close(id);
        id->state = CM_DISCONNECTED;
        return;
    }
    id->peer = *m;
    memcpy(&id->pub.route.addr.src_storage, &m->dst, sizeof m->dst);
    memcpy(&id->pub.route.addr.dst_storage, &m->src, sizeof m->src);
    id->pub.verbs = sr_default_context();
    int port = sr_port_of_addr(&id->pub.route.addr.src_addr);
    id->pub.port_num = (uint8_t)(port > 0 ? port : 1);
    id->state = CM_REQ_RCVD;
    cm_event_push(id, &l->pub, RDMA_CM_EVENT_CONNECT_REQUEST, 0, m);
}

static void cm_on_msg(struct cm_id *id, struct cm_msg *m)
{
    switch (m->type) {
    case CM_MSG_REQ:
        if (id->state == CM_REQ_WAIT)
            cm_on_req(id, m);
        break;
    case CM_MSG_REP:
        if (id->state == CM_CONNECTING)
            cm_on_rep(id, m);
        break;
    case CM_MSG_RTU:
        if (id->state == CM_ACCEPTING) {
            cm_timeout_disarm(id);
            id->state = CM_CONNECTED;
            cm_event_push(id, NULL, RDMA_CM_EVENT_ESTABLISHED, 0, &id->peer);
            cm_detach_at_established(id, &id->peer);    /* the REQ's flag */
        }
        break;
    case CM_MSG_REJ:
        if (id->state == CM_CONNECTING) {
            cm_conn_close(id);
            id->state = CM_IDLE;
            cm_event_push(id, NULL, RDMA_CM_EVENT_REJECTED, 28, m);
        } else if (id->state == CM_ACCEPTING) {
            /* the active side turned our REP down (rdma_reject after
             * CONNECT_RESPONSE): as rdma_cm does on a REJ, the QP goes to
             * ERR and the consumer's reason is reported */
            cm_conn_close(id);
            cm_qp_error(id);
            id->state = CM_DISCONNECTED;
            cm_event_push(id, NULL, RDMA_CM_EVENT_REJECTED, 28, m);
        }
        break;
    case CM_MSG_DREQ:
        cm_peer_gone(id);
        break;
    case CM_MSG_DETACH:
        cm_on_detach(id);
        break;
    }
}

/* Woken by epoll (events set), the callbacks of the device's listeners and
 * CM connections take one connection or message and return: the watch is
 * level-triggered, so anything left brings the next round here, and the
 * common case - one message, one connection - no longer ends in a read
 * or accept that finds nothing (EAGAIN), one system call per message
 * and per connection on each end. Called otherwise (events 0), they
 * take what is there, up to their bound. */
#define CM_PER_WAKE(events, max) ((events) ? 1 : (max))

static void cm_conn_cb(struct sr_watch *w, uint32_t events)
{
    struct cm_id *id = (struct cm_id *)((char *)w - offsetof(struct cm_id, conn));
    struct cm_msg m;
    for (int i = 0; i < CM_PER_WAKE(events, 16) && id->conn.fd >= 0; i++) {
        ssize_t n = recv(w->fd, &m, sizeof m, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n != (ssize_t)sizeof m) {
            cm_peer_gone(id);
            return;
        }
        cm_on_msg(id, &m);
    }
}

/* Out of descriptors, the listener cannot take a request off its socket
 * (which would stay readable and spin the device thread): the requests
 * wait in the backlog while the socket is unwatched for a back-off. The
 * consumer hears of it once per episode, as a CONNECT_ERROR on the
 * listening id with the errno (a kernel CM needs no descriptor for a
 * request; rsocket's accept() then fails with EMFILE as TCP's does). */
static void cm_listen_starved(struct cm_id *l, int err)
{
    if (!l->starved++) {
        sr_log("rdma_listen: cannot take a connection request: %s; retrying every 100 ms",
               strerror(err));
        cm_event_push(l, NULL, RDMA_CM_EVENT_CONNECT_ERROR, -err, NULL);
    }
    cm_listen_backoff(l);
}

static void cm_listen_cb(struct sr_watch *w, uint32_t events)
{
    struct cm_id *l = (struct cm_id *)((char *)w - offsetof(struct cm_id, lsn));
    for (int i = 0; i < CM_PER_WAKE(events, 64); i++) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && sr_errno_is_shortage(errno)) {
            cm_listen_starved(l, errno);
            return;
        }
        if (fd < 0)
            return;
        l->starved = 0;
        struct cm_id *id = cm_id_new(l->pub.channel, l->pub.context, l->pub.ps, l->pub.qp_type);
        if (!id) {
            close(fd);
            continue;
        }
        id->listener = l;
        id->state = CM_REQ_WAIT;
        if (sr_watch_add(&id->conn, fd, EPOLLIN, cm_conn_cb))
            free(id);
    }
}

/* Creates name -> our socket; a name left by a dead listener is reused.
 * 0, 1 if the name is stale and cannot be removed (another user's, under
 * the fabric's sticky bit), -1 (errno) otherwise. */
static int cm_claim_one_name(const char *sock, const char *name)
{
    if (strlen(name) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return errno = ENAMETOOLONG, -1;
    for (int tries = 0; tries < 2; tries++) {
        if (!symlink(sock, name))
            return 0;
        if (errno != EEXIST)
            return -1;
        if (cm_sock_live(name, SOCK_SEQPACKET))
            break;
        if (unlink(name) && errno == EPERM)
            return 1;
    }
    errno = EADDRINUSE;
    return -1;
}

/* The listener's name, or when a stale one of another user holds it, the
 * alternate name "<name>~u<euid>" that active sides try next
 * (cm_connect_listener). The name taken is written to out. */
static int cm_claim_name(const char *sock, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s", name);
    int rc = cm_claim_one_name(sock, name);
    if (rc != 1)
        return rc;
    if ((size_t)snprintf(out, len, "%s~u%u", name, (unsigned)geteuid()) >= len)
        return errno = ENAMETOOLONG, -1;
    rc = cm_claim_one_name(sock, out);
    return rc == 1 ? (errno = EADDRINUSE, -1) : rc;
}

static int cm_add_name(struct cm_id *id, const struct sockaddr *sa, uint16_t port)
{
    char name[512], taken[540];
    if (cm_listen_name(sa, port, name, sizeof name))
        return -1;
    cm_ud_name(id, name, sizeof name);
    for (int i = 0; i < id->nnames; i++)
        if (!strcmp(id->names[i], name))
            return 0;
    char **n = realloc(id->names, (size_t)(id->nnames + 1) * sizeof *n);
    if (!n)
        return -1;
    id->names = n;
    if (cm_claim_name(id->lsn_path, name, taken, sizeof taken))
        return -1;
    id->names[id->nnames++] = strdup(taken);
    return 0;
}

/* A blocking SOCK_SEQPACKET connection to the unix socket at path, or -1. */
static int cm_connect_path(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path)
        return errno = ENAMETOOLONG, -1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        int e = errno;
        close(fd);
        errno = e;
        fd = -1;
    }
    return fd;
}

/* Connects to the listener named name, or to a live alternate name of it
 * (cm_claim_name) when name itself has no listener. errno is the one of
 * name itself when nothing answers. */
static int cm_connect_listener(const char *name)
{
    int fd = cm_connect_path(name);
    if (fd >= 0 || (errno != ENOENT && errno != ECONNREFUSED))
        return fd;
    int e = errno;
    char dir[512], prefix[300];
    snprintf(dir, sizeof dir, "%s", name);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return errno = e, -1;
    *slash = 0;
    snprintf(prefix, sizeof prefix, "%s~u", slash + 1);
    DIR *d = opendir(dir);
    struct dirent *ent;
    while (d && fd < 0 && (ent = readdir(d))) {
        char alt[800];
        if (strncmp(ent->d_name, prefix, strlen(prefix)))
            continue;
        snprintf(alt, sizeof alt, "%s/%s", dir, ent->d_name);
        fd = cm_connect_path(alt);
    }
    if (d)
        closedir(d);
    if (fd < 0)
        errno = e;
    return fd;
}

static int cm_add_names(struct cm_id *id, uint16_t port)
{
    struct sockaddr *src = &id->pub.route.addr.src_addr;
    if (!cm_is_any(src))
        return cm_add_name(id, src, port);
    struct sockaddr_storage addrs[64];
    int fams[2] = { src->sa_family, 0 };
    if (src->sa_family == AF_INET6 && !id->afonly)
        fams[1] = AF_INET;
    for (int f = 0; f < 2 && fams[f]; f++) {
        int n = cm_local_addrs(fams[f], addrs, 64);
        if (n < 0)
            return -1;
        for (int i = 0; i < n; i++)
            if (cm_add_name(id, (struct sockaddr *)&addrs[i], port))
                return -1;
    }
    return 0;
}

CM_API int rdma_listen(struct rdma_cm_id *pub, int backlog)
{
    struct cm_id *id = cm_of(pub);
    if (!pub || sr_stale(id->epoch, "rdma_listen"))
        return -1;
    if (!pub->route.addr.src_addr.sa_family) {
        sr_log("rdma_listen: id is not bound (call rdma_bind_addr first)");
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&sr_lock);
    int rc = -1;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    static unsigned seq;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/cm", sr_fabric_dir());
    sr_mkdir_p(dir);
    snprintf(id->lsn_path, sizeof id->lsn_path, "%s/l%d.%u.%u", dir, (int)getpid(), sr_epoch, ++seq);
    if (strlen(id->lsn_path) >= sizeof sa.sun_path) {
        sr_log("rdma_listen: SOFTRDMA_FABRIC path too long");
        errno = ENAMETOOLONG;
        goto out;
    }
    memcpy(sa.sun_path, id->lsn_path, strlen(id->lsn_path) + 1);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int bound = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    /* The name holds our pid: one already there is an earlier image's of
     * this process (an exec closed its socket, nobody unlinked the name;
     * the counters start again) or a dead process's whose pid we got. */
    if (fd >= 0 && !bound && errno == EADDRINUSE && unlink(sa.sun_path) == 0)
        bound = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (!bound || listen(fd, backlog > 0 ? backlog : 128)) {
        sr_log("rdma_listen: cannot create %s: %s", sa.sun_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto out;
    }
    sr_fabric_share(sa.sun_path);   /* active sides of every user connect */
    sr_watch_add(&id->lsn, fd, EPOLLIN, cm_listen_cb);
    cm_names_lock();
    uint16_t port = cm_port(&pub->route.addr.src_addr);
    int named = port ? !cm_add_names(id, port) : 0;
    for (int tries = 0; !named && !port && tries < 64; tries++) {
        uint16_t p = (uint16_t)(32768 + (unsigned)rand() % 28232);
        if (!cm_add_names(id, p))
            port = p, named = 1;
        else if (errno != EADDRINUSE)
            break;      /* e.g. EMFILE: another port would fail alike */
        else
            cm_names_drop(id);
    }
    if (!named) {
        int e = errno;
        cm_names_unlock();
        cm_listen_close(id);
        errno = e;
        goto out;
    }
    cm_names_unlock();
    cm_set_port(&pub->route.addr.src_addr, port);
    cm_exit_track(id);
    id->state = CM_LISTEN;
    rc = 0;
out:
    pthread_mutex_unlock(&sr_lock);
    return rc;
}

CM_API int rdma_connect(struct rdma_cm_id *pub, struct rdma_conn_param *p)
{
    struct cm_id *id = cm_of(pub);
    if (!pub || sr_stale(id->epoch, "rdma_connect"))
        return -1;
    if (id->state != CM_ROUTE_RESOLVED) {
        sr_log("rdma_connect: route not resolved (state %d)", id->state);
        errno = EINVAL;
        return -1;
    }
    if (p && p->private_data_len > 56) {
        sr_log("rdma_connect: %u bytes of private data, at most 56", p->private_data_len);
        errno = EINVAL;
        return -1;
    }
    if (cm_link_check(&pub->route.addr.src_addr, "rdma_connect")) {
        /* the REQ cannot leave: as a CM whose REQs all time out */
        pthread_mutex_lock(&sr_lock);
        cm_event_push(id, NULL, RDMA_CM_EVENT_UNREACHABLE, -ETIMEDOUT, NULL);
        pthread_mutex_unlock(&sr_lock);
        return id->sync ? cm_sync_wait(id, RDMA_CM_EVENT_ESTABLISHED) : 0;
    }
    pthread_mutex_lock(&sr_lock);
    char name[512];
    struct sockaddr *dst = &pub->route.addr.dst_addr;
    int fd = -1;
    if (!cm_peer_listen_name(dst, cm_port(dst), name, sizeof name)) {
        cm_ud_name(id, name, sizeof name);
        fd = cm_connect_listener(name);
    }
    if (fd < 0 && sr_errno_is_shortage(errno)) {
        /* out of descriptors or memory here: this call's error, as a
         * kernel CM's rdma_connect fails when it cannot send the REQ */
        int e = errno;
        pthread_mutex_unlock(&sr_lock);
        errno = e;
        return -1;
    }
    if (fd < 0) {
        int e = errno;
        /* no listener: rejected by the peer's CM; stale name: unreachable */
        cm_event_push(id, NULL, e == ENOENT ? RDMA_CM_EVENT_REJECTED : RDMA_CM_EVENT_UNREACHABLE,
                      e == ENOENT ? 8 : -ETIMEDOUT, NULL);
    } else {
        struct cm_msg m;
        cm_fill_msg(&m, CM_MSG_REQ, p, pub->qp ? pub->qp->qp_num : (p ? p->qp_num : 0));
        m.has_attach = pub->qp && !sr_qp_attach_info(pub->qp, &m.attach);
        m.flags = id->detach_early ? CM_MSG_FLAG_DETACH : 0;
        memcpy(&m.src, &pub->route.addr.src_storage, sizeof m.src);
        memcpy(&m.dst, &pub->route.addr.dst_storage, sizeof m.dst);
        if (p)
            id->my = *p;
        sr_watch_add(&id->conn, fd, EPOLLIN, cm_conn_cb);
        id->state = CM_CONNECTING;
        cm_timeout_arm(id);
        if (cm_send(id, &m))
            cm_peer_gone(id);
    }
    pthread_mutex_unlock(&sr_lock);
    return id->sync ? cm_sync_wait(id, RDMA_CM_EVENT_ESTABLISHED) : 0;
}

CM_API int rdma_accept(struct rdma_cm_id *pub, struct rdma_conn_param *p)
{
    struct cm_id *id = cm_of(pub);
    if (!pub || sr_stale(id->epoch, "rdma_accept"))
        return -1;
    if (p && p->private_data_len > 196) {
        sr_log("rdma_accept: %u bytes of private data, at most 196", p->private_data_len);
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&sr_lock);
    int rc = -1;
    if (id->state != CM_REQ_RCVD && id->req_gone) {
        errno = ECONNRESET;     /* the requester left before our answer: its race, no line */
        goto out;
    }
    if (id->state != CM_REQ_RCVD) {
        sr_log("rdma_accept: id has no pending connection request");
        errno = EINVAL;
        goto out;
    }
    if (pub->qp_type == IBV_QPT_UD) {
        rc = cm_ud_accept(id, p);       /* no connection, no event */
        pthread_mutex_unlock(&sr_lock);
        return rc;
    }
    if (pub->qp && cm_qp_to_rts(id))
        goto out;
    struct cm_msg m;
    cm_fill_msg(&m, CM_MSG_REP, p, pub->qp ? pub->qp->qp_num : (p ? p->qp_num : 0));
    m.has_attach = pub->qp && !sr_qp_attach_info(pub->qp, &m.attach);
    m.flags = id->detach_early ? CM_MSG_FLAG_DETACH : 0;
    if (cm_send(id, &m)) {
        cm_peer_gone(id);
        errno = ECONNRESET;
        goto out;
    }
    id->state = CM_ACCEPTING;
    cm_timeout_arm(id);     /* an active side that never sends the RTU */
    rc = 0;
out:
    pthread_mutex_unlock(&sr_lock);
    if (!rc && id->sync)
        rc = cm_sync_wait(id, RDMA_CM_EVENT_ESTABLISHED);
    return rc;
}

CM_API int rdma_reject(struct rdma_cm_id *pub, const void *pdata, uint8_t len)
{
    struct cm_id *id = cm_of(pub);
    if (!pub || sr_stale(id->epoch, "rdma_reject"))
        return -1;
    pthread_mutex_lock(&sr_lock);
    struct rdma_conn_param p = { .private_data = pdata, .private_data_len = len };
    struct cm_msg m;
    cm_fill_msg(&m, CM_MSG_REJ, &p, 0);
    int rc = cm_send(id, &m);
    cm_conn_close(id);
    id->state = CM_DISCONNECTED;
    pthread_mutex_unlock(&sr_lock);
    return rc;
}

CM_API int rdma_establish(struct rdma_cm_id *pub)
{
    struct cm_id *id = cm_of(pub);
    if (!pub || sr_stale(id->epoch, "rdma_establish"))
        return -1;
    pthread_mutex_lock(&sr_lock);
    int rc = -1;
    if (id->state != CM_RESPONDED) {
        errno = EINVAL;
        goto out;
    }
    struct cm_msg m;
    cm_fill_msg(&m, CM_MSG_RTU, NULL, 0);
    if ((rc = cm_send(id, &m)) == 0) {
        id->state = CM_CONNECTED;
        cm_event_push(id, NULL, RDMA_CM_EVENT_ESTABLISHED, 0, &id->peer);
    }
out:
    pthread_mutex_unlock(&sr_lock);
    return rc;
}

CM_API int rdma_disconnect(struct rdma_cm_id *pub)
{
    struct cm_id *id = cm_of(pub);
    if (!pub || sr_stale(id->epoch, "rdma_disconnect"))
        return -1;
    pthread_mutex_lock(&sr_lock);
    int rc = 0;
    cm_qp_error(id);
    if (id->state == CM_CONNECTED || id->state == CM_ACCEPTING || id->state == CM_RESPONDED) {
        struct cm_msg m;
        cm_fill_msg(&m, CM_MSG_DREQ, NULL, 0);
        cm_send(id, &m);
        cm_conn_close(id);
        id->state = CM_DISCONNECTED;
        cm_push_disconnected(id);
    } else if (id->state != CM_DISCONNECTED) {
        errno = EINVAL;
        rc = -1;
    }
    pthread_mutex_unlock(&sr_lock);
    return rc;
}

CM_API int rdma_get_request(struct rdma_cm_id *listen, struct rdma_cm_id **out)
{
    struct cm_id *l = cm_of(listen);
    struct rdma_cm_event *e;
    if (!listen || !out || sr_stale(l->epoch, "rdma_get_request"))
        return errno = EINVAL, -1;
    if (listen->event) {
        rdma_ack_cm_event(listen->event);
        listen->event = NULL;
    }
    for (int i = 0; i < 1024; i++) {
        if (rdma_get_cm_event(listen->channel, &e))
            return -1;
        if (e->event == RDMA_CM_EVENT_CONNECT_REQUEST)
            break;
        rdma_ack_cm_event(e);   /* stale events of former children */
        e = NULL;
    }
    if (!e)
        return errno = EAGAIN, -1;
    struct rdma_cm_id *id = e->id;
    struct cm_id *c = cm_of(id);
    /* the child becomes synchronous like its listener */
    struct cm_channel *own = cm_channel_new();
    if (!own) {
        rdma_ack_cm_event(e);
        return -1;
    }
    id->channel = &own->pub;
    c->sync = 1;
    id->event = e;
    if (l->ep_attr) {
        struct ibv_qp_init_attr a = *l->ep_attr;
        if (rdma_create_qp(id, l->ep_pd, &a)) {
            rdma_reject(id, NULL, 0);
            rdma_destroy_id(id);
            return -1;
        }
    }
    *out = id;
    return 0;
}
