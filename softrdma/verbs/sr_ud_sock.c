/* softrdma: UD datagrams between processes of different users. The kernel
 * lets a process write into another only with ptrace rights over it, so a
 * worker that dropped to www-data cannot deliver into a root process
 * directly (pidfd_getfd and process_vm_writev are refused). For that case
 * each process with UD QPs listens on one AF_UNIX SOCK_SEQPACKET socket,
 * $FABRIC/udnic/<pid>.<epoch> (0666), watched by its device thread; a
 * sending process keeps one connection per such destination process and
 * writes one record (header + payload) per datagram, without blocking: a
 * full connection is a datagram dropped, as a NIC drops what it cannot
 * take. (A datagram socket would do with less code, but the kernel queues
 * at most net.unix.max_dgram_qlen, 10, datagrams on an unconnected one.)
 * The receiving device thread delivers each record into the local QP with
 * every check of the direct path (sr_ud_deliver_to). The receiver trusts nothing in
 * the header but what a network would carry: it checks the destination
 * QPN, Q_Key, GID and length itself. Its sockets are used through direct
 * system calls (sr_sys.h), as all of the device's own descriptors. Guarded
 * by sr_lock (the device thread
 * holds it in callbacks; senders in ibv_post_send). */
#include "sr_ud.h"
#include "sr_sys.h"
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SR_UD_WIRE_MAGIC 0x53525557u
/* datagrams taken per callback: epoll reports the socket again if more */
#define SR_UD_SOCK_BATCH 64
#define SR_UD_SOCK_YIELDS 4

/* What travels ahead of the payload. */
struct sr_ud_wire {
    uint32_t magic;
    uint32_t dst_qpn, src_qpn, qkey, len;
    uint32_t imm;
    uint8_t has_imm, sl, global, pad;
    struct ibv_grh grh;
};

static struct sr_watch sr_ud_rx = { .fd = -1 };
static unsigned sr_ud_rx_epoch;
static char sr_ud_rx_name[64] = "-";
static char sr_ud_rx_path[600];

static void sr_ud_sock_unlink(void)
{
    if (sr_ud_rx_path[0] && sr_ud_rx_epoch == sr_epoch)
        unlink(sr_ud_rx_path);
}

/* One datagram from the socket, checked, into the local QP it names. */
static void sr_ud_sock_one(const struct sr_ud_wire *h, char *payload, size_t n)
{
    if (n < sizeof *h || h->magic != SR_UD_WIRE_MAGIC || h->len > SR_UD_MTU ||
        n != sizeof *h + h->len)
        return;         /* not a datagram of ours: dropped */
    struct sr_ud_peer lp;
    memset(&lp, 0, sizeof lp);
    lp.qpn = h->dst_qpn & 0xffffff;
    if (sr_ud_local(&lp)) {
        sr_ud_count(SR_UD_NO_QP);
        return;
    }
    struct sr_ud_msg m;
    memset(&m, 0, sizeof m);
    m.src_qpn = h->src_qpn & 0xffffff;
    m.sl = h->sl;
    m.global = h->global;
    m.grh = h->grh;
    m.len = h->len;
    m.has_imm = h->has_imm;
    m.imm = h->imm;
    m.niov = 1;
    if (h->len) {
        m.iov[1].iov_base = payload;
        m.iov[1].iov_len = h->len;
        m.niov = 2;
    }
    /* no yields: the application's ibv_post_recv waits for our sr_lock */
    sr_ud_deliver_to(&lp, &m, h->qkey, 0);
}

/* A sending process's connection; freed after the device thread's batch. */
struct sr_ud_conn { struct sr_watch w; };

static void sr_ud_conn_cb(struct sr_watch *w, uint32_t events)
{
    static union { struct sr_ud_wire h; char b[sizeof(struct sr_ud_wire) + SR_UD_MTU + 1]; } buf;
    (void)events;
    for (int i = 0; i < SR_UD_SOCK_BATCH; i++) {
        struct iovec iov = { buf.b, sizeof buf.b };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n = sr_sys_recvmsg(w->fd, &mh, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {           /* the sender is gone */
            sr_watch_del(w);
            sr_defer_free(w);
            return;
        }
        if (!(mh.msg_flags & MSG_TRUNC))
            sr_ud_sock_one(&buf.h, buf.b + sizeof buf.h, (size_t)n);
    }
}

static void sr_ud_accept_cb(struct sr_watch *w, uint32_t events)
{
    (void)events;
    for (int i = 0; i < SR_UD_SOCK_BATCH; i++) {
        int fd = sr_sys_accept4(w->fd, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct sr_ud_conn *c = calloc(1, sizeof *c);
        if (!c) {
            sr_sys_close(fd);
            continue;
        }
        if (sr_watch_add(&c->w, fd, EPOLLIN, sr_ud_conn_cb))
            free(c);
    }
}

/* Binds and watches this process's socket; -1 (logged) if it cannot. */
static int sr_ud_sock_open(void)
{
    char dir[520];
    snprintf(dir, sizeof dir, "%s/udnic", sr_fabric_dir());
    snprintf(sr_ud_rx_name, sizeof sr_ud_rx_name, "%d.%u", (int)getpid(), sr_epoch);
    snprintf(sr_ud_rx_path, sizeof sr_ud_rx_path, "%s/%s", dir, sr_ud_rx_name);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = -1;
    if (strlen(sr_ud_rx_path) >= sizeof sa.sun_path) {
        errno = ENAMETOOLONG;
        goto fail;
    }
    memcpy(sa.sun_path, sr_ud_rx_path, strlen(sr_ud_rx_path) + 1);
    if (sr_mkdir_p(dir))
        goto fail;
    fd = sr_sys_socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    unlink(sr_ud_rx_path);      /* a dead process's of the same pid */
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 128))
        goto fail;
    sr_fabric_share(sr_ud_rx_path);     /* senders of every user */
    if (sr_watch_add(&sr_ud_rx, fd, EPOLLIN, sr_ud_accept_cb))
        goto fail_bound;
    static int at;
    if (!at++)
        atexit(sr_ud_sock_unlink);
    return 0;
fail_bound:
    unlink(sr_ud_rx_path);
    fd = -1;                    /* closed by sr_watch_add */
fail:
    sr_log("UD socket %s: %s; datagrams from other users' processes will be dropped",
           sr_ud_rx_path, strerror(errno));
    if (fd >= 0)
        sr_sys_close(fd);
    snprintf(sr_ud_rx_name, sizeof sr_ud_rx_name, "-");
    return -1;
}

const char *sr_ud_sock_name(void)
{
    if (sr_ud_rx_epoch != sr_epoch) {
        /* first UD QP of this process (or of a forked child: the parent's
         * socket is the parent's) */
        if (sr_ud_rx.fd >= 0 && sr_ud_rx_epoch)
            sr_sys_close(sr_ud_rx.fd);
        sr_ud_rx.fd = -1;
        sr_ud_rx_epoch = sr_epoch;
        sr_ud_sock_open();
    }
    return sr_ud_rx_name;
}

/* Our connections to destination processes' sockets, by path. */
struct sr_ud_tx { char path[108]; int fd; unsigned epoch; struct sr_ud_tx *next; };
static struct sr_ud_tx *sr_ud_txs;

static void sr_ud_tx_drop(struct sr_ud_tx *t)
{
    for (struct sr_ud_tx **pp = &sr_ud_txs; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    if (t->epoch == sr_epoch)
        sr_sys_close(t->fd);
    free(t);
}

/* Closes the connections whose destination process has gone (the peer
 * never writes to us: a read that does not block is EOF or an error). */
void sr_ud_sock_sweep(void)
{
    for (struct sr_ud_tx *t = sr_ud_txs, *next; t; t = next) {
        next = t->next;
        char b;
        struct iovec iov = { &b, 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (t->epoch != sr_epoch ||
            !(sr_sys_recvmsg(t->fd, &mh, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN))
            sr_ud_tx_drop(t);
    }
}

/* The connection to the socket at path, made if needed; NULL if none. */
static struct sr_ud_tx *sr_ud_tx_get(const char *path)
{
    for (struct sr_ud_tx *t = sr_ud_txs; t; t = t->next)
        if (!strcmp(t->path, path)) {
            if (t->epoch == sr_epoch)
                return t;
            sr_ud_tx_drop(t);   /* a parent's (fork): not ours to use */
            break;
        }
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct sr_ud_tx *t = calloc(1, sizeof *t);
    if (!t || strlen(path) >= sizeof sa.sun_path) {
        free(t);
        return NULL;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = sr_sys_socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || sr_sys_connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        if (fd >= 0)
            sr_sys_close(fd);
        free(t);
        return NULL;
    }
    snprintf(t->path, sizeof t->path, "%s", path);
    t->fd = sr_fd_internal(fd);
    t->epoch = sr_epoch;
    t->next = sr_ud_txs;
    sr_ud_txs = t;
    return t;
}

void sr_ud_sock_send(struct sr_ud_peer *p, const struct sr_ud_msg *m, uint32_t qkey)
{
    struct sr_ud_wire h = { .magic = SR_UD_WIRE_MAGIC, .dst_qpn = p->qpn, .src_qpn = m->src_qpn,
                            .qkey = qkey, .len = m->len, .imm = m->imm,
                            .has_imm = (uint8_t)m->has_imm, .sl = m->sl,
                            .global = (uint8_t)m->global, .grh = m->grh };
    struct iovec iov[1 + SR_MAX_SGE];
    iov[0].iov_base = &h;
    iov[0].iov_len = sizeof h;
    for (int i = 1; i < m->niov; i++)
        iov[i] = m->iov[i];
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)m->niov };
    struct sr_ud_tx *t = sr_ud_tx_get(p->sock);
    /* a full connection: the destination's device is often just draining
     * it; a few yields (as for a receive not yet posted), then the drop */
    for (int tries = 0; t; tries++) {
        if (sr_sys_sendmsg(t->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
            return;
        if ((errno != EAGAIN && errno != ENOBUFS) || tries == SR_UD_SOCK_YIELDS)
            break;
        sched_yield();
    }
    if (t && (errno == EAGAIN || errno == ENOBUFS)) {
        sr_ud_count(SR_UD_NO_RECV);     /* its device cannot keep up */
        return;
    }
    if (t)
        sr_ud_tx_drop(t);               /* the process is gone */
    sr_ud_count(SR_UD_NO_QP);
    p->retry_ms = 0;                    /* look it up again */
}
