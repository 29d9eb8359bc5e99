/*
 * rs_endpoint.c - the verbs resources of one connection: completion
 * channel and CQ (in the wait fd), the RC QP, the three registered
 * buffers, the posted receives and the 40-byte connection data.
 */
#include "rs_sock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

static size_t page_round(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) & ~(page - 1);
}

/* Page-aligned and page-rounded, so fork protection (MADV_DONTFORK) never
 * covers a neighbour's heap. Mapped, not from the heap: a connection's
 * buffers go back to the system at close (heap chunks of this size stay in
 * the process after bursts of connections). *len gets the mapped length
 * for page_free.
 *
 * The last few freed mappings are kept for the next connection (at most
 * BUF_CACHE, a few hundred KiB of which only the pages a connection
 * touched are resident): an mmap, a munmap and its TLB shootdown (the
 * device thread shares the address space) per buffer and connection were
 * 5% of a connection's CPU. A kept buffer is NOT zeroed: only the
 * registered data buffers, which a peer can write but never read and
 * which are read only where something was written, come from here
 * (page_alloc_zeroed for the rest). Entries of another fork generation
 * are forgotten, never reused. Locking: buf_lock guards buf_cache. */
#define BUF_CACHE 8
static pthread_mutex_t buf_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { void *p; size_t len; unsigned gen; } buf_cache[BUF_CACHE];

static void *buf_cache_take(size_t len)
{
    unsigned gen = __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED);
    void *p = NULL;
    pthread_mutex_lock(&buf_lock);
    for (int i = 0; i < BUF_CACHE && !p; i++) {
        if (buf_cache[i].p && buf_cache[i].gen != gen)
            buf_cache[i].p = NULL;          /* a parent's: not ours to use */
        if (buf_cache[i].p && buf_cache[i].len == len) {
            p = buf_cache[i].p;
            buf_cache[i].p = NULL;
        }
    }
    pthread_mutex_unlock(&buf_lock);
    return p;
}

static int buf_cache_put(void *p, size_t len)
{
    unsigned gen = __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED);
    int kept = 0;
    pthread_mutex_lock(&buf_lock);
    for (int i = 0; i < BUF_CACHE && !kept; i++)
        if (!buf_cache[i].p || buf_cache[i].gen != gen) {
            buf_cache[i].p = p;
            buf_cache[i].len = len;
            buf_cache[i].gen = gen;
            kept = 1;
        }
    pthread_mutex_unlock(&buf_lock);
    return kept;
}

static void *page_alloc(size_t n, size_t *len)
{
    *len = page_round(n);
    void *p = buf_cache_take(*len);
    if (p)
        return p;
    p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        *len = 0;
        return NULL;
    }
    return p;
}

/* The same, zeroed (a kept mapping is cleared). */
static void *page_alloc_zeroed(size_t n, size_t *len)
{
    *len = page_round(n);
    void *p = buf_cache_take(*len);
    if (p) {
        memset(p, 0, *len);
        return p;
    }
    return page_alloc(n, len);
}

static void page_free(void *p, size_t *len)
{
    if (p && *len && !buf_cache_put(p, *len))
        munmap(p, *len);
    *len = 0;
}

/*
 * A device context's max_qp_wr, queried once per context and fork
 * generation: a device's limits do not change, and ibv_query_device costs
 * the software device a scan of the host's interfaces (a netlink dump) on
 * every call - about 11 system calls of each connection's set-up.
 * Locking: qd_lock guards the one cached entry; only try-locked (a busy
 * lock, or one a fork left held, means a plain query), so no thread waits.
 */
static pthread_mutex_t qd_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { struct ibv_context *ctx; unsigned gen; int max_wr; } qd_cache;

static int device_max_wr(struct ibv_context *ctx)
{
    unsigned gen = __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED);
    int cached = -1, locked = pthread_mutex_trylock(&qd_lock) == 0;
    if (locked && qd_cache.ctx == ctx && qd_cache.gen == gen)
        cached = qd_cache.max_wr;
    if (locked)
        pthread_mutex_unlock(&qd_lock);
    if (cached >= 0)
        return cached;
    struct ibv_device_attr attr;
    int max = ibv_query_device(ctx, &attr) ? 0 : attr.max_qp_wr;
    if (max > 0 && pthread_mutex_trylock(&qd_lock) == 0) {
        qd_cache.ctx = ctx;
        qd_cache.gen = gen;
        qd_cache.max_wr = max;
        pthread_mutex_unlock(&qd_lock);
    }
    return max;
}

static void clamp_sizes(struct rsock *s)
{
    uint32_t max = 0xfffe;
    int dev_max = device_max_wr(s->id->verbs);
    if (dev_max > 0 && (uint32_t)dev_max < max)
        max = (uint32_t)dev_max;
    if (s->sq_size > max) s->sq_size = (uint16_t)max;
    if (s->rq_size > max) s->rq_size = (uint16_t)max;
    if (s->sq_size < 16) s->sq_size = 16;
    if (s->rq_size < 16) s->rq_size = 16;
    s->rbuf_size &= ~1u;                   /* two equal halves */
    if (s->rbuf_size < 8192) s->rbuf_size = 8192;
    if (s->sbuf_size < 4096) s->sbuf_size = 4096;
}

static int create_cq(struct rsock *s)
{
    s->comp_chan = ibv_create_comp_channel(s->id->verbs);
    if (!s->comp_chan)
        return -1;
    int fl = fcntl(s->comp_chan->fd, F_GETFL);
    if (fl < 0 || fcntl(s->comp_chan->fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    s->cq = ibv_create_cq(s->id->verbs, s->sq_size + s->rq_size, s, s->comp_chan, 0);
    if (!s->cq)
        return -1;
    if (ibv_req_notify_cq(s->cq, 0))
        return -1;
    s->cq_armed = 1;
    return rs_wait_fd_add(s, s->comp_chan->fd);
}

static int create_qp(struct rsock *s)
{
    struct ibv_qp_init_attr attr = {
        .send_cq = s->cq,
        .recv_cq = s->cq,
        .cap = {
            .max_send_wr = s->sq_size,
            .max_recv_wr = s->rq_size,
            .max_send_sge = 2,
            .max_recv_sge = 1,
            .max_inline_data = s->sq_inline,
        },
        .qp_type = IBV_QPT_RC,
        .sq_sig_all = 0,            /* selective signalling: rs_sendq.h */
    };
    if (rdma_create_qp(s->id, s->id->pd, &attr))
        return -1;
    s->sq_inline = attr.cap.max_inline_data;
    return 0;
}

static struct ibv_mr *reg(struct rsock *s, void *buf, size_t len, int access)
{
    return ibv_reg_mr(s->id->pd, buf, len, access | (s->odp ? IBV_ACCESS_ON_DEMAND : 0));
}

static void free_buffers(struct rsock *s)
{
    if (s->rmr) ibv_dereg_mr(s->rmr);
    if (s->smr) ibv_dereg_mr(s->smr);
    if (s->tmr) ibv_dereg_mr(s->tmr);
    s->rmr = s->smr = s->tmr = NULL;
    page_free(s->rbuf, &s->rbuf_map);
    page_free(s->sbuf, &s->sbuf_map);
    page_free(s->target, &s->target_map);
    s->rbuf = s->sbuf = s->target = NULL;
}

/* Under RLIMIT_MEMLOCK (a non-root user's default is 8 MiB) the default
 * buffers (2 x 128 KiB registered per connection) would allow some thirty
 * connections per process: when registering fails, the buffers shrink to
 * a quarter (each side advertises its own, so nothing on the wire is
 * fixed) down to RS_MEMLOCK_MIN_BUF before the connection gives up on RDMA
 * (rs_memlock.c sizes them to the limit in the first place). */
static int shrink_buffers(struct rsock *s)
{
    if (s->rbuf_size <= RS_MEMLOCK_MIN_BUF && s->sbuf_size <= RS_MEMLOCK_MIN_BUF)
        return -1;
    free_buffers(s);
    s->rbuf_size = s->rbuf_size / 4 < RS_MEMLOCK_MIN_BUF ? RS_MEMLOCK_MIN_BUF : s->rbuf_size / 4;
    s->sbuf_size = s->sbuf_size / 4 < RS_MEMLOCK_MIN_BUF ? RS_MEMLOCK_MIN_BUF : s->sbuf_size / 4;
    return 0;
}

/* limited: registered memory is limited for this process (rs_memlock_fit):
 * then no closed connection's registrations are kept (rs_epcache.c). */
static int register_buffers(struct rsock *s, int limited)
{
    const int remote = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;
    size_t slen = s->sbuf_size + RS_QP_CTRL_SLOTS * RS_CTRL_BUF_LEN;

    s->target_len = RS_SGL_SIZE * RS_SGE_WIRE_LEN +
                    (size_t)s->target_iomap_size * RS_IOMAP_WIRE_LEN;
    s->rmsg_slots = s->rq_size + 1u;
    if (!s->rmsg)                        /* kept across a shrink */
        s->rmsg = calloc(s->rmsg_slots, sizeof(*s->rmsg));
    if (!s->sq_track.rec)
        s->sq_track.rec = calloc(s->sq_size, sizeof(*s->sq_track.rec));
    if (!s->rmsg || !s->sq_track.rec) {
        errno = ENOMEM;
        return -1;
    }
    if (rs_epc_take(s, limited))
        return 0;
    s->rbuf = page_alloc(s->rbuf_size, &s->rbuf_map);
    s->sbuf = page_alloc(slen, &s->sbuf_map);
    s->target = page_alloc_zeroed(s->target_len, &s->target_map);
    if (!s->rbuf || !s->sbuf || !s->target) {
        errno = ENOMEM;
        return -1;
    }
    s->rmr = reg(s, s->rbuf, s->rbuf_size, remote);
    s->smr = reg(s, s->sbuf, slen, IBV_ACCESS_LOCAL_WRITE);
    s->tmr = reg(s, s->target, s->target_len, remote);
    return s->rmr && s->smr && s->tmr ? 0 : -1;
}

static int create_buffers(struct rsock *s, int limited)
{
    for (;;) {
        errno = 0;
        if (register_buffers(s, limited) == 0)
            return 0;
        if (errno != ENOMEM || !s->rbuf || !s->sbuf || !s->target)
            return -1;                   /* not the registration's limit */
        rs_memlock_refused();
        int saved = errno;
        if (shrink_buffers(s)) {
            errno = saved;
            return -1;
        }
    }
}

/* Receives carry no SGE: data arrives by RDMA WRITE, the receive only
 * consumes the immediate. Posted as chains of RECV_CHAIN work requests:
 * one device call (one pass over its locks) per chain instead of one per
 * receive, which was a tenth of a connection's set-up CPU at rq_size 384. */
#define RECV_CHAIN 64
static int post_receives(struct rsock *s)
{
    struct ibv_recv_wr wr[RECV_CHAIN], *bad;
    for (uint32_t done = 0; done < s->rq_size;) {
        uint32_t n = s->rq_size - done < RECV_CHAIN ? s->rq_size - done : RECV_CHAIN;
        for (uint32_t i = 0; i < n; i++)
            wr[i] = (struct ibv_recv_wr){ .wr_id = RS_WRID_RECV,
                                          .next = i + 1 < n ? &wr[i + 1] : NULL };
        if (ibv_post_recv(s->id->qp, wr, &bad))
            return -1;
        done += n;
    }
    return 0;
}

static void init_counters(struct rsock *s)
{
    rs_sq_track_init(&s->sq_track, s->sq_track.rec, s->sq_size, s->sbuf_size, RS_SNDLOWAT);
    s->sqe_avail = s->sq_size - RS_QP_CTRL_SLOTS;
    s->ctrl_avail = RS_QP_CTRL_SLOTS;
    s->sbuf_bytes_avail = s->sbuf_size;
    s->rseq_comp = s->rq_size / 2;
    s->rbuf_bytes_avail = s->rbuf_free_offset = s->rx_window = s->rbuf_size / 2;
}

/*
 * iWARP has no RDMA write with immediate data: rsockets switches to its
 * write + send message mode there, which this engine does not implement.
 * Such devices are refused before anything is set up; `what` names the
 * side in the log line. 1 when supported, 0 (errno ENOTSUP) otherwise.
 */
int rs_transport_supported(const struct rdma_cm_id *id, const char *what)
{
    if (!id->verbs || id->verbs->device->transport_type != IBV_TRANSPORT_IWARP)
        return 1;
    rs_log(3, "%s: device %s is iWARP, which this rsocket engine does not support "
           "(no RDMA write with immediate data)", what, ibv_get_device_name(id->verbs->device));
    errno = ENOTSUP;
    return 0;
}

/* The reason of a failed device call that did not set errno: out of
 * descriptors (the device opens some per channel and QP) is EMFILE/ENFILE,
 * as the kernel reports it, not ENOMEM. */
static int endpoint_errno(void)
{
    if (errno)
        return errno;
    int probe = eventfd(0, EFD_CLOEXEC);
    if (probe >= 0) {
        close(probe);
        return ENOMEM;
    }
    return errno == EMFILE || errno == ENFILE ? errno : ENOMEM;
}

int rs_endpoint_create(struct rsock *s)
{
    int limited = rs_memlock_fit(s);
    clamp_sizes(s);
    errno = 0;
    if (create_cq(s) || create_qp(s) || create_buffers(s, limited) || post_receives(s)) {
        int saved = endpoint_errno();
        /* a resource limit is named once per process (note_memlock, the
         * dispatcher's EMFILE line) and counted per connection */
        rs_log(saved == ENOMEM || saved == EMFILE || saved == ENFILE ? 0 : 3,
               "cannot create the RDMA endpoint: %s", strerror(saved));
        rs_endpoint_destroy(s);
        errno = saved;
        return -1;
    }
    init_counters(s);
    return 0;
}

void rs_endpoint_destroy(struct rsock *s)
{
    if (s->id && s->id->qp)
        rdma_destroy_qp(s->id);
    rs_epc_put(s);                      /* the QP is gone: the buffers may serve again */
    if (s->rmr) ibv_dereg_mr(s->rmr);
    if (s->smr) ibv_dereg_mr(s->smr);
    if (s->tmr) ibv_dereg_mr(s->tmr);
    s->rmr = s->smr = s->tmr = NULL;
    if (s->cq) {
        if (s->cq_unacked)
            ibv_ack_cq_events(s->cq, s->cq_unacked);
        s->cq_unacked = 0;
        ibv_destroy_cq(s->cq);
        s->cq = NULL;
    }
    if (s->comp_chan) {
        ibv_destroy_comp_channel(s->comp_chan);
        s->comp_chan = NULL;
    }
    page_free(s->rbuf, &s->rbuf_map);
    page_free(s->sbuf, &s->sbuf_map);
    page_free(s->target, &s->target_map);
    free(s->sq_track.rec);
    s->sq_track.rec = NULL;
    s->rbuf = s->sbuf = s->target = NULL;
}

void rs_local_conn_data(struct rsock *s, uint8_t out[RS_CONN_DATA_LEN])
{
    struct rs_conn_info ci = {
        .version = RS_WIRE_VERSION,
        .flags = RS_CONN_FLAG_IOMAP | (rs_wire_host_is_be() ? RS_CONN_FLAG_NET : 0),
        .credits = s->rq_size,
        .iomap_size = s->target_iomap_size,
        .target_sgl = { (uintptr_t)s->target, s->tmr->rkey, RS_SGL_SIZE },
        .data_buf = { (uintptr_t)s->rbuf, s->rmr->rkey, s->rbuf_size / 2 },
    };
    rs_wire_encode_conn(&ci, out);
}

/* The peer's first receive buffer becomes our target SGL entry 0. */
void rs_save_peer_conn(struct rsock *s, const struct rs_conn_info *ci)
{
    s->remote_sgl = ci->target_sgl;
    s->remote_sge = 1;
    s->remote_iomap.addr = ci->target_sgl.addr +
                           (uint64_t)RS_SGE_WIRE_LEN * ci->target_sgl.length;
    s->remote_iomap.key = ci->target_sgl.key;
    s->remote_iomap.length = ci->iomap_size;
    s->peer_be = !!(ci->flags & RS_CONN_FLAG_NET);
    s->peer_rq_size = ci->credits;
    s->sseq_comp = ci->credits;
    rs_wire_encode_sge(&ci->data_buf, rs_wire_host_is_be(), s->target);
    s->target_sge = 0;
    s->tgt_left = 0;
}
