/*
 * ds_io.c - the data path of datagram rsockets.
 *
 * Send: to a peer with an address handle and a known QPN, one UD SEND of
 * ds_header + data from a send slot; otherwise one UDP datagram of the
 * first-contact header (op 0) + data, as librdmacm does until the peer
 * answers. Receive: ds_progress reads the UDP socket (answers each op-0
 * header with an op-7 reply carrying our QPN, learns the sender's QPN and
 * queues its data), the CQs (validated UD messages) and the rdma_cm
 * channel, into one ring the application reads in arrival order.
 * Everything runs in the caller's thread (no service thread); anything
 * malformed is counted in `dropped` and never reaches the application.
 */
#include "ds_sock.h"
#include "rs_sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RSLOT (DS_GRH + DS_SLOT)

static size_t iov_total(const struct iovec *iov, size_t n)
{
    size_t t = 0;
    for (size_t i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

static void iov_gather(uint8_t *dst, const struct iovec *iov, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        memcpy(dst, iov[i].iov_base, iov[i].iov_len);
        dst += iov[i].iov_len;
    }
}

static size_t iov_scatter(const struct iovec *iov, size_t n, const uint8_t *src, size_t len)
{
    size_t done = 0;
    for (size_t i = 0; i < n && done < len; i++) {
        size_t k = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;
        memcpy(iov[i].iov_base, src + done, k);
        done += k;
    }
    return done;
}

/* ---- receive side: queueing ---------------------------------------- */

static struct ds_rx *rx_push(struct dsock *d)
{
    if (d->rx_len == d->rx_cap)
        return NULL;
    struct ds_rx *r = &d->rx[(d->rx_head + d->rx_len) % d->rx_cap];
    d->rx_len++;
    return r;
}

void ds_rx_release(struct dsock *d, struct ds_rx *r)
{
    if (r->qp)
        ds_qp_repost(r->qp, r->slot);
    else
        d->udp_free[d->udp_nfree++] = r->slot;
}

/* One line per socket (the first drop), naming the cause and the source
 * (the UDP source; for UD the socket's QP address, as a bad header names
 * no sender); every drop is counted. */
static void drop(struct dsock *d, const char *why, const struct sockaddr *from)
{
    if (d->dropped++)
        return;
    char ip[INET6_ADDRSTRLEN] = "?";
    const void *a = from && from->sa_family == AF_INET6
        ? (const void *)&((const struct sockaddr_in6 *)from)->sin6_addr
        : from ? (const void *)&((const struct sockaddr_in *)from)->sin_addr : NULL;
    if (a)
        inet_ntop(from->sa_family, a, ip, sizeof(ip));
    rs_log(2, "datagram socket: dropped a datagram (%s %s port %u): %s; later drops are only counted",
           from == NULL ? "at" : "from", ip,
           from ? ntohs(((const struct sockaddr_in *)from)->sin_port) : 0, why);
}

/* A connected socket takes datagrams from its peer only. */
static int from_stranger(const struct dsock *d, const struct sockaddr *src)
{
    return d->connected && !ds_addr_equal(src, (const struct sockaddr *)&d->peer);
}

static void on_recv(struct dsock *d, struct ds_qp *q, const struct ibv_wc *wc)
{
    uint32_t slot = (uint32_t)wc->wr_id;
    const uint8_t *m = q->rbuf + (size_t)slot * RSLOT + DS_GRH;
    size_t hlen, n = wc->byte_len >= DS_GRH ? wc->byte_len - DS_GRH : 0;
    struct sockaddr_storage src;
    struct ds_rx *r;
    if (wc->status != IBV_WC_SUCCESS || wc->byte_len < DS_GRH ||
        ds_hdr_get(m, n, d->domain, &src, &hlen)) {
        if (wc->status == IBV_WC_SUCCESS)
            drop(d, "bad UD header (version, length or family)", NULL);
    } else if (from_stranger(d, (struct sockaddr *)&src)) {
        drop(d, "UD datagram from an address the socket is not connected to",
             (struct sockaddr *)&src);
    } else if ((r = rx_push(d)) == NULL) {
        drop(d, "receive queue full", (struct sockaddr *)&src);
    } else {
        *r = (struct ds_rx){ .data = (uint8_t *)m + hlen, .len = (uint32_t)(n - hlen),
                             .qp = q, .slot = slot, .src = src };
        return;
    }
    if (wc->status != IBV_WC_WR_FLUSH_ERR)
        ds_qp_repost(q, slot);
}

static void poll_cq(struct dsock *d, struct ds_qp *q)
{
    struct ibv_wc wc[32];
    for (int round = 0; round < 8; round++) {
        int n = ibv_poll_cq(q->cq, 32, wc);
        for (int i = 0; i < n; i++) {
            if (wc[i].opcode & IBV_WC_RECV)
                on_recv(d, q, &wc[i]);
            else if (q->nfree < q->sq)
                q->sfree[q->nfree++] = (uint32_t)wc[i].wr_id;   /* status ignored, as upstream */
        }
        if (n < 32)
            return;
    }
}

/* A first-contact header naming our QP toward ds (QPN 0 when we have none). */
static size_t udp_hdr(struct dsock *d, const struct ds_dest *ds, uint8_t op, uint8_t *h)
{
    const struct sockaddr *l = (const struct sockaddr *)&ds->local;
    const void *ip = l->sa_family == AF_INET6
        ? (const void *)&((const struct sockaddr_in6 *)l)->sin6_addr
        : (const void *)&((const struct sockaddr_in *)l)->sin_addr;
    return ds_udp_hdr_put(h, d->domain, op, ds->qp ? ds->qp->qp->qp_num : 0, ip);
}

/* Our op-7 reply: our QPN toward this peer, and our QP's address. */
static void udp_reply(struct dsock *d, const struct ds_dest *ds, const struct sockaddr *to,
                      socklen_t tl)
{
    uint8_t h[DS_UDP_HDR6];
    size_t n = udp_hdr(d, ds, DS_UDP_OP_REPLY, h);
    sendto(d->udp_fd, h, n, MSG_DONTWAIT | MSG_NOSIGNAL, to, tl);
}

static void on_udp(struct dsock *d, uint8_t *buf, size_t n, const struct sockaddr *src,
                   socklen_t sl)
{
    struct ds_udp_info h;
    if (ds_udp_hdr_get(buf, n, src->sa_family, &h)) {
        drop(d, "bad first-contact header (tag, version, length or family)", src);
        return;
    }
    struct ds_dest *ds = ds_dest_get(d, src);
    if (!ds) {
        drop(d, errno == ENOBUFS ? "too many peers" : "no local address toward the source", src);
        return;
    }
    if (h.op == DS_UDP_OP_DATA)
        udp_reply(d, ds, src, sl);
    ds_dest_learn(d, ds, h.qpn);
    if (h.op != DS_UDP_OP_DATA)
        return;
    struct ds_rx *r;
    if (d->udp_nfree == 0 || (r = rx_push(d)) == NULL) {
        drop(d, "receive queue full", src);
        return;
    }
    uint32_t slot = d->udp_free[--d->udp_nfree];
    uint8_t *dst = d->udp_pool + (size_t)slot * DS_SLOT;
    memcpy(dst, buf + h.len, n - h.len);
    *r = (struct ds_rx){ .data = dst, .len = (uint32_t)(n - h.len), .slot = slot };
    memcpy(&r->src, src, sl);
}

/* Only while a first-contact datagram can be queued: the rest waits in
 * the UDP socket's own buffer (its SO_RCVBUF), not dropped here. */
static void read_udp(struct dsock *d)
{
    uint8_t buf[DS_SLOT + 1];
    for (int i = 0; i < 64 && d->udp_nfree && d->rx_len < d->rx_cap; i++) {
        struct sockaddr_storage src;
        socklen_t sl = sizeof(src);
        ssize_t n = recvfrom(d->udp_fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&src,
                             &sl);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return;                      /* EAGAIN; ICMP errors are not ours to report */
        if ((size_t)n > DS_SLOT)
            drop(d, "first-contact datagram larger than a slot", (struct sockaddr *)&src);
        else
            on_udp(d, buf, (size_t)n, (struct sockaddr *)&src, sl);
    }
}

/* Whatever changed wakes the threads blocked on the socket. */
static void changed(struct dsock *d)
{
    d->gen++;
    if (d->cond_waiters)
        pthread_cond_broadcast(&d->cond);
    uint64_t one = 1;
    if (d->poller_asleep && write(d->kick_fd, &one, sizeof(one)) < 0)
        rs_log(1, "datagram socket: kick: %s", strerror(errno));
}

/* The CQs alone: no system call (the data path's pass). */
static int progress_cqs(struct dsock *d)
{
    uint32_t before = d->rx_len;
    uint64_t freed = 0;
    for (struct ds_qp *q = d->qps; q; q = q->next) {
        uint32_t f = q->nfree;
        poll_cq(d, q);
        freed += q->nfree - f;
    }
    return d->rx_len != before || freed;
}

/* The sources the wait fd says are ready: the UDP socket, the rdma_cm
 * channel, and completion channels (each event consumed, the CQ re-armed
 * and drained again, so no completion goes unnoticed). */
static void progress_sources(struct dsock *d)
{
    struct epoll_event ev[8];
    int n = epoll_wait(d->wait_fd, ev, 8, 0);
    for (int i = 0; i < n; i++) {
        if (ev[i].data.u64 == DS_SRC_UDP)
            read_udp(d);
        else if (ev[i].data.u64 == DS_SRC_CM)
            ds_dest_cm_events(d);
        else
            ds_qp_arm(ev[i].data.ptr);  /* a QP lives as long as its socket */
    }
}

void ds_progress_fast(struct dsock *d)
{
    if (progress_cqs(d))
        changed(d);
}

void ds_progress(struct dsock *d)
{
    for (struct ds_qp *q = d->qps; q; q = q->next)
        ds_qp_flush_recv(q);             /* nothing consumed stays unposted across a wait */
    uint32_t before = d->rx_len;
    int moved = progress_cqs(d);
    progress_sources(d);
    moved |= progress_cqs(d);
    if (moved || d->rx_len != before)
        changed(d);
}

static void cond_wait_until(struct dsock *d, int64_t deadline_ms)
{
    d->cond_waiters++;
    if (deadline_ms < 0) {
        pthread_cond_wait(&d->cond, &d->lock);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t left = deadline_ms - rs_now_ms();
        left = left < 0 ? 0 : left;
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&d->cond, &d->lock, &ts);
    }
    d->cond_waiters--;
}

int ds_wait(struct dsock *d, int64_t deadline_ms)
{
    int t = rs_poll_timeout(deadline_ms);
    if (deadline_ms >= 0 && t == 0) {
        errno = EAGAIN;
        return -1;
    }
    if (d->poller) {
        cond_wait_until(d, deadline_ms);
        return 0;
    }
    struct pollfd p[2] = { { .fd = d->wait_fd, .events = POLLIN },
                           { .fd = d->kick_fd, .events = POLLIN } };
    d->poller = d->poller_asleep = 1;
    pthread_mutex_unlock(&d->lock);
    int r = poll(p, 2, t);
    int e = errno;
    pthread_mutex_lock(&d->lock);
    d->poller = d->poller_asleep = 0;
    uint64_t v;
    if (r > 0 && (p[1].revents & POLLIN) && read(d->kick_fd, &v, sizeof(v)) < 0)
        rs_log(0, "datagram socket: kick read: %s", strerror(errno));
    if (d->cond_waiters)
        pthread_cond_broadcast(&d->cond);   /* one of them polls next */
    if (r < 0 && e == EINTR) {
        errno = EINTR;
        return -1;
    }
    return 0;
}

/* Tell the dispatcher's other waiters when this call consumed events. */
static void tell(struct dsock *d)
{
    if (d->gen != d->gen_told && d->cookie && rs_notify_fn) {
        d->gen_told = d->gen;
        rs_notify_fn(d->cookie);
    }
}

/* ---- send side ------------------------------------------------------ */

static ssize_t send_udp(struct dsock *d, struct ds_dest *ds, const struct msghdr *msg,
                        size_t len, int flags)
{
    uint8_t h[DS_UDP_HDR6];
    size_t hl = udp_hdr(d, ds, DS_UDP_OP_DATA, h);
    struct iovec iov[1 + 64];
    if (msg->msg_iovlen > 64) {
        errno = EMSGSIZE;
        return -1;
    }
    iov[0] = (struct iovec){ h, hl };
    memcpy(iov + 1, msg->msg_iov, msg->msg_iovlen * sizeof(struct iovec));
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = msg->msg_iovlen + 1 };
    if (!d->connected || ds != d->conn_dest) {
        m.msg_name = &ds->addr;
        m.msg_namelen = ds->addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                      : sizeof(struct sockaddr_in);
    }
    ssize_t n = sendmsg(d->udp_fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == ENOBUFS) && !d->nonblock &&
        !(flags & MSG_DONTWAIT))
        return (ssize_t)len;             /* a blocking sender: lost, as UDP may */
    return n < 0 ? -1 : (ssize_t)len;
}

static ssize_t send_ud(struct ds_dest *ds, const struct msghdr *msg,
                       size_t len)
{
    struct ds_qp *q = ds->qp;
    uint32_t slot = q->sfree[--q->nfree];
    uint8_t *p = q->sbuf + (size_t)slot * DS_SLOT;
    size_t hl = ds_hdr_put(p, (struct sockaddr *)&q->local);
    iov_gather(p + hl, msg->msg_iov, msg->msg_iovlen);
    struct ibv_sge sge = { .addr = (uintptr_t)p, .length = (uint32_t)(hl + len),
                           .lkey = q->smr->lkey };
    struct ibv_send_wr wr = { .wr_id = slot, .sg_list = &sge, .num_sge = 1,
                              .opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED }, *bad;
    wr.wr.ud.ah = ds->ah;
    wr.wr.ud.remote_qpn = ds->qpn;
    wr.wr.ud.remote_qkey = DS_QKEY;
    if (ibv_post_send(q->qp, &wr, &bad)) {
        q->sfree[q->nfree++] = slot;     /* not leaked, unlike upstream */
        errno = errno ? errno : EIO;
        return -1;
    }
    return (ssize_t)len;
}

static const struct sockaddr *send_target(struct dsock *d, const struct msghdr *msg)
{
    if (msg->msg_name == NULL || msg->msg_namelen == 0) {
        if (!d->connected)
            errno = EDESTADDRREQ;
        return d->connected ? (struct sockaddr *)&d->peer : NULL;
    }
    const struct sockaddr *to = msg->msg_name;
    socklen_t need = d->domain == AF_INET6 ? sizeof(struct sockaddr_in6)
                                           : sizeof(struct sockaddr_in);
    if (to->sa_family != d->domain || msg->msg_namelen < need) {
        errno = to->sa_family != d->domain ? EAFNOSUPPORT : EINVAL;
        return NULL;
    }
    return to;                   /* Linux UDP: an address overrides the connected peer */
}

/* An unbound socket gets its port before the first header names it. */
static int autobind(struct dsock *d)
{
    if (d->bound)
        return 0;
    struct sockaddr_storage any = { .ss_family = (sa_family_t)d->domain };
    if (bind(d->udp_fd, (struct sockaddr *)&any, d->domain == AF_INET6
             ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) && errno != EINVAL)
        return -1;
    d->bound = 1;
    return 0;
}

/* Multicast and broadcast have no UD equivalent here: such datagrams go
 * out as plain UDP, without the first-contact header, for whatever
 * kernel sockets listen. */
static int group_addr(const struct sockaddr *to)
{
    if (to->sa_family == AF_INET6)
        return IN6_IS_ADDR_MULTICAST(&((const struct sockaddr_in6 *)to)->sin6_addr);
    uint32_t ip = ntohl(((const struct sockaddr_in *)to)->sin_addr.s_addr);
    return IN_MULTICAST(ip) || ip == INADDR_BROADCAST;
}

static ssize_t send_plain(struct dsock *d, const struct msghdr *msg, const struct sockaddr *to,
                          int flags)
{
    struct msghdr m = *msg;
    m.msg_name = (void *)to;
    m.msg_namelen = to->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    m.msg_control = NULL;
    m.msg_controllen = 0;
    return sendmsg(d->udp_fd, &m, (flags & MSG_DONTWAIT) | MSG_NOSIGNAL);
}

static ssize_t send_locked(struct dsock *d, const struct msghdr *msg, int flags, size_t len)
{
    const struct sockaddr *to = send_target(d, msg);
    if (!to || autobind(d))
        return -1;
    if (group_addr(to))
        return send_plain(d, msg, to, flags);
    struct ds_dest *ds = (d->connected && to == (struct sockaddr *)&d->peer && d->conn_dest)
                             ? d->conn_dest : ds_dest_get(d, to);
    if (!ds) {
        errno = errno ? errno : ENETUNREACH;
        return -1;
    }
    size_t hl = d->domain == AF_INET6 ? DS_HDR6 : DS_HDR4;
    if (ds->qp && (!ds->ah || !ds->qpn)) {
        ds_progress(d);                  /* a sender that never receives must
                                          * still read the peer's reply */
        ds_dest_retry(d, ds);
    }
    if (!ds->qp || !ds->ah || !ds->qpn || hl + len > ds->qp->max_msg)
        return send_udp(d, ds, msg, len, flags);
    int64_t deadline = rs_deadline(&d->sndtimeo, d->nonblock || (flags & MSG_DONTWAIT));
    while (ds->qp->nfree == 0) {
        ds_progress_fast(d);
        if (!ds->qp->nfree)
            ds_progress(d);
        if (ds->qp->nfree)
            break;
        if (ds_wait(d, deadline) < 0)
            return -1;
    }
    return send_ud(ds, msg, len);
}

ssize_t ds_sendmsg(struct dsock *d, const struct msghdr *msg, int flags)
{
    if (ds_usable(d))
        return -1;
    size_t len = iov_total(msg->msg_iov, msg->msg_iovlen);
    if (len > (d->domain == AF_INET6 ? DS_MAX_DATA6 : DS_MAX_DATA4)) {
        errno = EMSGSIZE;
        return -1;
    }
    pthread_mutex_lock(&d->lock);
    errno = 0;
    ssize_t r = send_locked(d, msg, flags, len);
    int e = errno;
    tell(d);
    pthread_mutex_unlock(&d->lock);
    errno = e;
    return r;
}

/* ---- receive -------------------------------------------------------- */

static void fill_name(struct msghdr *msg, const struct sockaddr_storage *src)
{
    if (!msg->msg_name)
        return;
    socklen_t l = src->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in);
    memcpy(msg->msg_name, src, l < msg->msg_namelen ? l : msg->msg_namelen);
    msg->msg_namelen = l;
}

static ssize_t take(struct dsock *d, struct msghdr *msg, int flags)
{
    struct ds_rx *r = &d->rx[d->rx_head];
    size_t cap = iov_total(msg->msg_iov, msg->msg_iovlen);
    size_t n = iov_scatter(msg->msg_iov, msg->msg_iovlen, r->data, r->len);
    msg->msg_flags = r->len > cap ? MSG_TRUNC : 0;
    msg->msg_controllen = 0;
    fill_name(msg, &r->src);
    size_t len = r->len;
    if (!(flags & MSG_PEEK)) {
        ds_rx_release(d, r);
        d->rx_head = (d->rx_head + 1) % d->rx_cap;
        d->rx_len--;
    }
    return (flags & MSG_TRUNC) ? (ssize_t)len : (ssize_t)n;
}

ssize_t ds_recvmsg(struct dsock *d, struct msghdr *msg, int flags)
{
    if (ds_usable(d))
        return -1;
    pthread_mutex_lock(&d->lock);
    int64_t deadline = rs_deadline(&d->rcvtimeo, d->nonblock || (flags & MSG_DONTWAIT));
    ssize_t r = -1;
    for (;;) {
        ds_progress_fast(d);
        if (!d->rx_len)
            ds_progress(d);
        if (d->rx_len) {
            r = take(d, msg, flags);
            break;
        }
        if (d->err) {
            errno = d->err;
            d->err = 0;
            break;
        }
        if (ds_wait(d, deadline) < 0)
            break;
    }
    int e = errno;
    tell(d);
    pthread_mutex_unlock(&d->lock);
    errno = e;
    return r;
}
