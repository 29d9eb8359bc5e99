/* softrdma: the direct data path. The sending application's own thread, in
 * ibv_post_send, takes the peer QP's posted receive from the peer's shared
 * segment, moves the data into the peer's registered memory
 * (process_vm_writev; READ: process_vm_readv), pushes the receive
 * completion into the peer's CQ ring and adds to the peer's completion
 * channel only if that CQ is armed. No device thread, no stream message,
 * no ACK. Everything unusual (no receive posted: RNR; a key, bounds or
 * access error; a receive too short or with a bad lkey; the peer not in
 * RTR/RTS; a full peer CQ; fault knobs; a peer of another user, whose
 * memory the kernel will not let us write) goes the stream's way, where
 * the peer's device answers it with the semantics it always had. A WR
 * goes directly only when nothing is outstanding on the stream before it,
 * so delivery stays in order and exactly once.
 *
 * Locking: the peer QP block's lock is held from the checks to the
 * completion push, so the peer's ibv_dereg_mr (which takes every QP block
 * lock after clearing the key) returns only once no data can land in the
 * region any more. Called with sr_lock held. */
#include "sr_internal.h"
#include "sr_sys.h"
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define SR_RNR_YIELDS 4

/* ---- responder side: the offer ---- */

/* What a requester needs to reach qp directly; -1 when the device has no
 * segment. *evfd: the channel's eventfd here, -1 if none. */
static int sr_fast_attach_fill(struct sr_qp *qp, struct sr_attach *a, int *evfd)
{
    int segfd = sr_seg_fd();
    if (segfd < 0)
        return -1;
    struct ibv_comp_channel *ch = qp->pub.recv_cq->channel;
    *evfd = ch ? ch->fd : -1;
    memset(a, 0, sizeof *a);
    a->pid = (int32_t)getpid();
    a->gen = __atomic_load_n(&qp->s->gen, __ATOMIC_ACQUIRE);
    a->qp_off = qp->s_off;
    a->has_evfd = *evfd >= 0;
    a->ch_id = ch ? ((struct sr_channel *)ch)->id : 0;
    a->ch_fd = *evfd;
    a->seg_fd = segfd;
    a->token_addr = (uintptr_t)&sr_seg()->token;
    return 0;
}

void sr_fast_offer(int fd, struct sr_qp *qp)
{
    struct { struct sr_resp_hdr h; struct sr_attach a; } m;
    int evfd;
    memset(&m, 0, sizeof m);
    if (sr_fast_attach_fill(qp, &m.a, &evfd))
        return;
    m.h.type = SR_RESP_ATTACH;
    m.h.count = 1;
    m.h.len = sizeof m.a;
    int fds[2] = { m.a.seg_fd, evfd };
    int nfds = evfd >= 0 ? 2 : 1;
    union { struct cmsghdr h; char b[CMSG_SPACE(2 * sizeof(int))]; } cm;
    memset(&cm, 0, sizeof cm);
    struct iovec iov = { &m, sizeof m };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = cm.b, .msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int)) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    /* the first bytes on a fresh stream: the socket buffer has room */
    ssize_t n = sr_sys_sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0 && n != (ssize_t)sizeof m)
        sr_log("QP %u: attach message cut short (%zd bytes); the stream will fail", qp->pub.qp_num, n);
}

int sr_qp_attach_info(struct ibv_qp *pub, struct sr_attach *a)
{
    struct sr_qp *qp = (struct sr_qp *)pub;
    int evfd;
    if (pub->qp_type != IBV_QPT_RC || sr_fast_attach_fill(qp, a, &evfd))
        return -1;
    return 0;
}

void sr_qp_preattach(struct ibv_qp *pub, const struct sr_attach *a)
{
    struct sr_qp *qp = (struct sr_qp *)pub;
    pthread_mutex_lock(&sr_lock);
    qp->pre = *a;               /* only RC QPs give theirs (sr_qp_attach_info) */
    pthread_mutex_unlock(&sr_lock);
}

/* ---- requester side ---- */

static void sr_fast_close_fds(struct sr_fast *f)
{
    for (int i = 0; i < f->nfds; i++)
        sr_sys_close(f->fds[i]);
    f->nfds = 0;
}

void sr_fast_detach(struct sr_qp *qp)
{
    struct sr_fast *f = &qp->fast;
    sr_fast_close_fds(f);
    sr_peer_seg_put(f->seg);
    memset(f, 0, sizeof *f);
    f->evfd = -1;
}

/* A block of `len` bytes at `off` lies inside the peer's segment. */
static int sr_fast_inside(const struct sr_peer_seg *seg, uint64_t off, uint64_t len)
{
    return off >= sizeof(struct sr_seg_hdr) && off < seg->size && len <= seg->size - off;
}

/* The pid must be the process that owns the segment: it holds the
 * segment's random token at the address the offer names. */
int sr_fast_token_ok(const struct sr_fast *f, const struct sr_peer_seg *seg)
{
    uint64_t tok = 0;
    struct iovec l = { &tok, sizeof tok }, r = { (void *)(uintptr_t)f->msg.token_addr, sizeof tok };
    return process_vm_readv(f->msg.pid, &l, 1, &r, 1, 0) == sizeof tok &&
           tok == ((struct sr_seg_hdr *)seg->base)->token;
}

/* Binds the requester to the peer QP block f->msg names in seg (the
 * caller's reference, dropped on failure): 0 bound (f->broken set if the
 * segment's owner is not at that pid for us: another user), -1 not. */
static int sr_fast_bind(struct sr_fast *f, struct sr_peer_seg *seg)
{
    if (!seg || (f->msg.qp_off & 4095) || !sr_fast_inside(seg, f->msg.qp_off, sizeof(struct sr_shm_qp))) {
        sr_peer_seg_put(seg);
        return -1;
    }
    if (!sr_fast_token_ok(f, seg))
        f->broken = 1;          /* another user, or not the same pid space */
    f->seg = seg;
    f->peer_hdr = (struct sr_seg_hdr *)seg->base;
    f->peer = (struct sr_shm_qp *)(seg->base + f->msg.qp_off);
    f->gen = f->msg.gen;
    f->pid = f->msg.pid;
    return 0;
}

static void sr_fast_use(struct sr_qp *qp)
{
    struct sr_fast *f = &qp->fast;
    if (f->nfds < 1)
        return;
    int evfd = f->nfds == 2 ? f->fds[1] : -1;
    struct sr_peer_seg *seg = sr_peer_seg_get(f->fds[0]);   /* takes fds[0] */
    f->nfds = 0;
    if (sr_fast_bind(f, seg)) {
        if (evfd >= 0)
            sr_sys_close(evfd);
        return;
    }
    /* The channel's copy goes to the process's cache (a bounded one).
     * Nothing is fetched here: only under the peer block's lock, with the
     * generation checked, is the channel's descriptor number sure to be
     * that channel's (sr_fast_to_recv). */
    if (evfd >= 0 && f->msg.has_evfd && !f->broken)
        sr_peerch_get(f, evfd);
    else if (evfd >= 0)
        sr_sys_close(evfd);
}

/* A peer process whose segment is not mapped here yet: its memfd, taken
 * with pidfd_getfd (allowed only with ptrace rights over it, as
 * process_vm_writev). The pidfd is kept with the segment when the token
 * then checks out (sr_peerch.c opens it the same way). */
static struct sr_peer_seg *sr_fast_fetch_seg(const struct sr_attach *a, int *pidfd)
{
    *pidfd = (int)syscall(SYS_pidfd_open, a->pid, 0);
    if (*pidfd < 0)
        return NULL;
    int fd = (int)syscall(SYS_pidfd_getfd, *pidfd, a->seg_fd, 0);
    if (fd < 0) {
        sr_sys_close(*pidfd);
        *pidfd = -1;
        return NULL;
    }
    return sr_peer_seg_get(fd);     /* takes fd; checks size and magic */
}

int sr_fast_preattach(struct sr_qp *qp, const struct sr_attach *a)
{
    struct sr_fast *f = &qp->fast;
    if (f->seg || a->pid <= 0 || !sr_req_streamless_ok())
        return -1;
    f->msg = *a;
    int pidfd = -1;
    struct sr_peer_seg *seg = sr_peer_seg_of_pid(a->pid);
    if (!seg)
        seg = sr_fast_fetch_seg(a, &pidfd);
    /* The block must be the QP this one connects to: the same outcome as
     * a stream opened to the owner of dest_qpn. */
    if (sr_fast_bind(f, seg) || f->broken || f->peer->slow_only ||
        __atomic_load_n(&f->peer->qpn, __ATOMIC_RELAXED) != qp->dest_qpn ||
        __atomic_load_n(&f->peer->gen, __ATOMIC_ACQUIRE) != a->gen) {
        if (pidfd >= 0)
            sr_sys_close(pidfd);
        sr_fast_detach(qp);
        return -1;
    }
    if (pidfd >= 0 && f->seg->pidfd < 0)
        f->seg->pidfd = sr_fd_internal(pidfd);
    else if (pidfd >= 0)
        sr_sys_close(pidfd);
    return 0;
}

int sr_fast_attach_read(struct sr_qp *qp, int fd)
{
    struct sr_fast *f = &qp->fast;
    int r = sr_rx_need(fd, &qp->out_rx, &f->msg, sizeof f->msg, &f->got);
    if (r <= 0)
        return r;
    f->want = 0;
    qp->out_rx.fds = NULL;      /* no more descriptors on this stream */
    qp->out_rx.nfds = NULL;
    sr_fast_use(qp);
    sr_fast_close_fds(f);       /* whatever was not taken */
    return 1;
}

static int sr_op_needs_recv(uint8_t op)
{
    return op == SR_OP_SEND || op == SR_OP_SEND_IMM || op == SR_OP_WRITE_IMM;
}

/* The peer's receive at rq_head, if there is one and it lies inside the
 * segment (its geometry is the peer's word, checked before use). */
static struct sr_rwqe *sr_fast_rwqe(struct sr_fast *f)
{
    struct sr_shm_qp *p = f->peer;
    if (p->rq_head == __atomic_load_n(&p->rq_tail, __ATOMIC_ACQUIRE) || !p->max_recv_wr)
        return NULL;
    uint64_t size = p->rwqe_size;
    uint64_t at = f->msg.qp_off + sizeof *p + (uint64_t)(p->rq_head % p->max_recv_wr) * size;
    if (size < sizeof(struct sr_rwqe) || !sr_fast_inside(f->seg, at, size))
        return NULL;
    struct sr_rwqe *rw = (struct sr_rwqe *)(f->seg->base + at);
    if (rw->nsge > SR_MAX_SGE || sizeof *rw + rw->nsge * sizeof rw->sge[0] > size)
        return NULL;
    return rw;
}

/* Where a SEND of len bytes lands: the receive's leading SGEs, each
 * checked against the peer's MR table (a bad or deregistered lkey is the
 * peer device's error to report). Returns the entries, -1 if not direct. */
static int sr_fast_recv_iov(struct sr_fast *f, const struct sr_rwqe *rw, uint32_t len,
                            struct iovec *riov)
{
    int n = 0;
    for (uint32_t i = 0; i < rw->nsge && len; i++) {
        uint32_t k = rw->sge[i].len < len ? rw->sge[i].len : len;
        if (!k)
            continue;
        if (!sr_shm_mr_ok(f->peer_hdr, f->peer->pd, rw->sge[i].lkey, rw->sge[i].addr, k,
                          IBV_ACCESS_LOCAL_WRITE))
            return -1;
        riov[n].iov_base = (void *)(uintptr_t)rw->sge[i].addr;
        riov[n++].iov_len = k;
        len -= k;
    }
    return len ? -1 : n;
}

/* Moves the payload; 0 when all of it moved. */
static int sr_fast_move(struct sr_fast *f, struct sr_swqe *s, struct iovec *riov, int rn)
{
    if (!s->len)
        return 0;
    ssize_t n = s->opcode == IBV_WR_RDMA_READ ?
        process_vm_readv(f->pid, s->iov, (unsigned long)s->nsge, riov, (unsigned long)rn, 0) :
        process_vm_writev(f->pid, s->iov, (unsigned long)s->nsge, riov, (unsigned long)rn, 0);
    if (n == (ssize_t)s->len)
        return 0;
    if (n < 0 && (errno == EPERM || errno == ENOSYS))
        f->broken = 1;  /* another user's process: the stream carries it all */
    return -1;
}

/* Returns 1 if the peer's channel is due a signal. */
static int sr_fast_recv_done(struct sr_qp *qp, struct sr_swqe *s, struct sr_rwqe *rw,
                             struct sr_shm_cq *pcq)
{
    struct sr_fast *f = &qp->fast;
    struct ibv_wc wc = { .wr_id = rw->wr_id, .status = IBV_WC_SUCCESS, .byte_len = s->len,
                         .qp_num = f->peer->qpn, .src_qp = qp->pub.qp_num,
                         .opcode = IBV_WC_RECV };
    if (s->hdr.op == SR_OP_WRITE_IMM)
        wc.opcode = IBV_WC_RECV_RDMA_WITH_IMM;
    if (s->hdr.op != SR_OP_SEND) {
        wc.wc_flags = IBV_WC_WITH_IMM;
        wc.imm_data = s->hdr.imm;
    }
    struct sr_wc_src src = { .qp_off = f->msg.qp_off, .gen = f->gen, .recv = 1 };
    __atomic_store_n(&f->peer->rq_head, f->peer->rq_head + 1, __ATOMIC_RELEASE);
    int wake;
    sr_shm_cq_add(pcq, &wc, &src, f->evfd, NULL, 1, &wake);
    return wake;
}

/* A WRITE's or READ's target: the peer QP's access flags and the peer's
 * MR (key, PD, bounds, access). Entries in riov, -1 if not direct. */
static int sr_fast_remote_iov(struct sr_fast *f, const struct sr_swqe *s, struct iovec *riov)
{
    struct sr_shm_qp *p = f->peer;
    unsigned need = s->hdr.op == SR_OP_READ ? IBV_ACCESS_REMOTE_READ : IBV_ACCESS_REMOTE_WRITE;
    unsigned acc = __atomic_load_n(&p->access, __ATOMIC_ACQUIRE);
    if (!s->len)
        return 0;       /* no key is looked at for 0 bytes */
    if ((acc & need) != need ||
        !sr_shm_mr_ok(f->peer_hdr, p->pd, s->hdr.rkey, s->hdr.raddr, s->len, need))
        return -1;      /* the peer's device answers REM_ACCESS_ERR */
    riov[0].iov_base = (void *)(uintptr_t)s->hdr.raddr;
    riov[0].iov_len = s->len;
    return 1;
}

/* The peer's receive CQ, inside its segment, with a slot held; NULL if
 * not (full: the peer's device reports the overrun). */
static struct sr_shm_cq *sr_fast_recv_cq(struct sr_fast *f)
{
    uint64_t off = f->peer->recv_cq_off;
    if (!sr_fast_inside(f->seg, off, sizeof(struct sr_shm_cq)))
        return NULL;
    struct sr_shm_cq *pcq = (struct sr_shm_cq *)(f->seg->base + off);
    if (pcq->cap > SR_MAX_CQE ||
        !sr_fast_inside(f->seg, off, sizeof *pcq + (uint64_t)pcq->cap * sizeof pcq->ring[0]) ||
        sr_shm_cq_reserve(pcq))
        return NULL;
    return pcq;
}

/* SEND and WRITE_WITH_IMM: take the peer's receive, move, complete it.
 * 1 done, 0 not direct, -1 no receive posted (yet). *wake: the peer's
 * channel is due a signal. */
static int sr_fast_to_recv(struct sr_qp *qp, struct sr_swqe *s, struct iovec *riov, int rn,
                           int *wake)
{
    struct sr_fast *f = &qp->fast;
    int imm_write = s->hdr.op == SR_OP_WRITE_IMM;
    struct sr_rwqe *rw = sr_fast_rwqe(f);
    if (!rw)
        return -1;
    if (rw->bad_lkey || (!imm_write && s->len > rw->len))
        return 0;       /* an error the peer's device reports */
    if (!imm_write && (rn = sr_fast_recv_iov(f, rw, s->len, riov)) < 0)
        return 0;
    /* the wake-up's descriptor in hand before anything lands (a hit: one
     * comparison); none to be had: the peer's device delivers and signals */
    f->evfd = f->msg.has_evfd ? sr_peerch_get(f, -1) : -1;
    if (f->msg.has_evfd && f->evfd < 0)
        return 0;
    struct sr_shm_cq *pcq = sr_fast_recv_cq(f);
    if (!pcq)
        return 0;
    if (sr_fast_move(f, s, riov, rn)) {
        sr_shm_cq_unreserve(pcq);
        return 0;
    }
    *wake = sr_fast_recv_done(qp, s, rw, pcq);
    return 1;
}

/* The checks and the move, under the peer block's lock; as sr_fast_to_recv. */
static int sr_fast_locked(struct sr_qp *qp, struct sr_swqe *s, int *wake)
{
    struct sr_fast *f = &qp->fast;
    struct sr_shm_qp *p = f->peer;
    uint32_t st = __atomic_load_n(&p->state, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&p->gen, __ATOMIC_ACQUIRE) != f->gen || p->slow_only ||
        (st != IBV_QPS_RTR && st != IBV_QPS_RTS))
        return 0;
    struct iovec riov[SR_MAX_SGE];
    int rn = 0;
    uint8_t op = s->hdr.op;
    if (op == SR_OP_WRITE || op == SR_OP_WRITE_IMM || op == SR_OP_READ)
        if ((rn = sr_fast_remote_iov(f, s, riov)) < 0)
            return 0;
    if (sr_op_needs_recv(op))
        return sr_fast_to_recv(qp, s, riov, rn, wake);
    return sr_fast_move(f, s, riov, rn) == 0;
}

/* Work requests delivered directly and by stream (tests look at them
 * through sr_stats); relaxed counters. */
static uint64_t sr_n_direct, sr_n_stream;

SR_API void sr_stats(uint64_t *direct, uint64_t *stream)
{
    *direct = __atomic_load_n(&sr_n_direct, __ATOMIC_RELAXED);
    *stream = __atomic_load_n(&sr_n_stream, __ATOMIC_RELAXED);
}

void sr_stats_stream(void)
{
    __atomic_add_fetch(&sr_n_stream, 1, __ATOMIC_RELAXED);
}

/* Requester streams opened (at RTR without rdma_cm's attach data, and
 * reopened when a request needs the peer's device). */
static uint64_t sr_n_opened;

SR_API void sr_stats_streams(uint64_t *opened)
{
    *opened = __atomic_load_n(&sr_n_opened, __ATOMIC_RELAXED);
}

void sr_stats_stream_open(void)
{
    __atomic_add_fetch(&sr_n_opened, 1, __ATOMIC_RELAXED);
}

/* Inline sends whose data the device copied because they could not go at
 * post time (sr_inline_stage), and their bytes. */
static uint64_t sr_n_staged, sr_staged_bytes;

SR_API void sr_stats_staged(uint64_t *sends, uint64_t *bytes)
{
    *sends = __atomic_load_n(&sr_n_staged, __ATOMIC_RELAXED);
    *bytes = __atomic_load_n(&sr_staged_bytes, __ATOMIC_RELAXED);
}

void sr_stats_stage(uint32_t len)
{
    __atomic_add_fetch(&sr_n_staged, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&sr_staged_bytes, len, __ATOMIC_RELAXED);
}

int sr_fast_try(struct sr_qp *qp)
{
    struct sr_fast *f = &qp->fast;
    if (!f->peer || f->broken || sr_knobs.drop_after > 0)
        return 0;
    /* a stopped peer process: its device answers nothing, nor do we */
    if ((int64_t)(sr_now_ms() - __atomic_load_n(&f->peer_hdr->alive_ms, __ATOMIC_RELAXED)) > SR_ALIVE_MS)
        return 0;
    struct sr_swqe *s = &qp->sq[qp->sq_tx % qp->cap.max_send_wr];
    int wake = 0, done;
    /* No receive posted: the receiver is often just re-posting one. A few
     * yields (bounded: the stream's RNR handling takes over after them)
     * spare the stream round trip that would stall this QP's direct path
     * until its acknowledgement. */
    for (int tries = 0;; tries++) {
        sr_shm_lock(&f->peer->lock);
        done = sr_fast_locked(qp, s, &wake);
        sr_shm_unlock(&f->peer->lock);
        if (done >= 0 || tries == SR_RNR_YIELDS)
            break;
        sched_yield();
    }
    if (wake)
        sr_channel_signal(f->evfd);     /* after the lock: see sr_shm_cq_add */
    if (done > 0)
        __atomic_add_fetch(&sr_n_direct, 1, __ATOMIC_RELAXED);
    return done > 0;
}
