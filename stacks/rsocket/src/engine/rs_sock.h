/*
 * rs_sock.h - the engine's socket object and the internal interfaces
 * between its parts (connection setup, data path, control messages,
 * readiness). Nothing here is exported from the library.
 *
 * Locking: every field of struct rsock is guarded by rsock.lock. No engine
 * function blocks while holding it: blocking calls drop the lock around
 * poll() on the wait fd (rs_wait_locked).
 */
#ifndef RS_SOCK_H
#define RS_SOCK_H

#include <infiniband/verbs.h>
#include <nstack/nstack_spin.h>
#include <errno.h>
#include <pthread.h>
#include <rdma/rdma_cma.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/uio.h>

#include "rs_sendq.h"
#include "rs_wire.h"

#define RS_VISIBLE __attribute__((visibility("default")))

#define RS_QP_CTRL_SLOTS   4         /* send queue entries kept for control */
#define RS_CTRL_BUF_LEN    64        /* staging bytes per control slot */
#define RS_SNDLOWAT        2048      /* least sbuf space worth a data write */
#define RS_WRID_RECV       (1ull << 63)
/* Internal send flag, never a send flag of Linux's (MSG_CMSG_CLOEXEC is
 * recvmsg's): the call comes through the socket API (rs_module.c), which
 * keeps kernel TCP's order of errors after the peer's close. */
#define RS_MSG_TCP         0x40000000
#define RS_RESOLVE_RETRIES 6         /* timed-out resolutions retried (1000<<n ms) */

/* Tunables, read once (rs_tunables_load, under pthread_once); read-only after. */
struct rs_tunables {
    uint32_t polling_time_us;
    uint32_t inline_default;
    uint32_t sqsize_default;
    uint32_t rqsize_default;
    uint32_t mem_default;        /* receive buffer bytes */
    uint32_t wmem_default;       /* send staging ring bytes */
    uint32_t iomap_size;
    uint32_t close_timeout_ms;   /* bound of close() when the peer is gone */
    uint32_t resolve_timeout_ms; /* address and route resolution */
    uint32_t connect_timeout_ms; /* whole blocking connect */
    uint32_t anchor_hello_ms;    /* anchored: wait for the peer's hello */
    uint32_t anchor_timeout_ms;  /* anchored: whole handshake once committed */
    uint32_t anchor_negcache_ms; /* anchored: remember a peer without hello */
    uint32_t anchor_lost_ms;     /* anchored: wait for the anchor's word on a lost peer */
    uint32_t ack_timeout;        /* QP local ACK timeout (rdma_cm option), 0: rdma_cm's */
    uint32_t anchor_buf;         /* anchored: rbuf and sbuf bytes (0: mem/wmem_default) */
    uint32_t anchor_buf_conns;   /* anchored: sockets of a process with anchor_buf at a time */
};
extern struct rs_tunables rs_tun;
void rs_tunables_load(void);
/* Each tunable's value, default and source to `publish` (the dispatcher's
 * fw->publish_setting, module ABI 1.3); loads them first. */
typedef int (*rs_publish_fn)(const char *module, const char *key, const char *value, const char *dflt,
                             const char *source);
void rs_tunables_publish(rs_publish_fn publish);

enum rs_state {
    RS_INIT,
    RS_BOUND,
    RS_LISTENING,
    RS_ACCEPTING,        /* passive: rdma_accept sent, ESTABLISHED not yet seen */
    RS_RESOLVING_ADDR,
    RS_RESOLVING_ROUTE,
    RS_CONNECTING,
    RS_CONNECTED,
    RS_DISCONNECTED,     /* peer closed or we closed; data may remain queued */
    RS_CONNECT_ERROR,
    RS_ERROR,
};

struct rsock {
    pthread_mutex_t lock;
    int domain;
    enum rs_state state;         /* written with rs_set_state (read unlocked) */
    int err;                     /* pending SO_ERROR */
    int accept_err;              /* listener: EMFILE/ENFILE for the next accept */
    int nonblock;
    unsigned fork_gen;           /* rs_fork_gen when created */
    uint64_t gen;                /* grows on every event (poll_events) */
    void *cookie;                /* dispatcher's notify cookie, or NULL */

    int wait_fd;                 /* epoll: CM fd, CQ channel fd, timer fd */
    /* active side: timed-out resolutions retried (rs_conn.c) */
    int64_t connect_start_ms;    /* rs_now_ms() at connect() */
    int resolve_retries;         /* of the current stage (address or route) */

    /* Threads blocked inside the engine on this socket (rs_wait_locked).
     * One of them, the poller, sleeps in poll() on the wait fd and the kick
     * eventfd; the others sleep on wake_cond. Whoever changes the socket's
     * state (rs_event, lock held) wakes them all, so an event consumed by
     * one thread (or by poll_events) is never lost to another. All fields
     * below are guarded by lock. */
    pthread_cond_t wake_cond;
    int cond_waiters;            /* threads in pthread_cond_wait */
    int poller_busy;             /* a thread owns the wait fd poll */
    int poller_asleep;           /* ... and is inside poll() right now */
    int kick_fd;                 /* eventfd that wakes the poller */
    int kick_pending;            /* kick_fd holds an unread count */
    int rpoll_sleepers;          /* threads in rpoll() polling kick_fd too */
    uint64_t serial;             /* unique per socket, set once at rs_alloc */
    int timer_fd;                /* keepalive / TCP_USER_TIMEOUT period, -1 when off */
    int64_t ut_since_ms;         /* TCP_USER_TIMEOUT: signalled sends outstanding
                                  * without progress since (0: none) */
    int ka_outstanding;          /* a keepalive probe awaits its completion */
    int ka_missed;               /* intervals it has been waiting */
    int ka_limit;                /* unanswered intervals = dead (TCP_KEEPCNT) */
    int64_t ka_sent_ms;          /* when it was posted (TCP_USER_TIMEOUT) */
    /* The first failed send completion of a CQ pass, judged at the end of
     * the pass: the peer's DISCONNECT may sit behind it in the same batch. */
    struct {
        int pending, flushed, keepalive, op;
        enum ibv_wc_status status;
    } send_fail;
    struct rdma_event_channel *cm_chan;  /* NULL once on the shared one */
    struct rdma_cm_id *id;
    /* The id moved to the process's shared channel (rs_cmshare.c):
     * cm_shared under lock; cm_shared_ev gets RS_CMS_* bits from whoever
     * drains that channel (atomic OR, taken with an atomic exchange). */
    int cm_shared;
    unsigned cm_shared_ev;
    /* The device was asked to drop the id's CM connection (rs_cms_detach):
     * the CM tells nothing more of the peer; the anchor's FIN stands for
     * its end, judged at fin_until (rs_now_ms, 0: no FIN waiting). Lock. */
    int cm_detached;
    int64_t fin_until;
    struct ibv_comp_channel *comp_chan;
    struct ibv_cq *cq;
    unsigned cq_unacked;
    int cq_armed;
    /* A lazy pass (the dispatcher's poll_lazy, module ABI 1.5) found the
     * CQ's event taken and left it unarmed: the dispatcher arms it
     * (rs_arm) before it sleeps, and meanwhile a peer's completion costs
     * it no eventfd write and us no read. Cleared whenever the CQ is
     * armed. Lock held. */
    int cq_lazy;
    /* rs_wait.c's spin before a sleep: misses in a row (a hit resets
     * them) and waits skipped since they reached the cap (lock held). */
    uint8_t spin_misses, spin_skipped;
    int64_t spin_sources_ns;     /* when a spin last looked at the other sources */
    /* what the socket's answers took lately (rs_wait.c, nstack_spin.h) */
    struct nstack_spin_learn spin_learn;
    int64_t giveup_sources_ns;   /* when an EAGAIN last did (rs_progress_giveup) */

    /* sizes, settable until the endpoint exists */
    uint16_t sq_size, rq_size;
    uint32_t sq_inline;
    uint32_t rbuf_size, sbuf_size;
    uint8_t big_buf;             /* holds one of RS_ANCHOR_BUF_CONNS (rs_memlock.c) */
    uint8_t odp;                 /* buffers registered on demand (rs_memlock.c) */
    uint16_t target_iomap_size;

    /* options */
    int nodelay, keepalive, keepidle_s, reuseaddr, afonly;
    struct linger linger;
    struct timeval rcvtimeo, sndtimeo;

    /* registered memory */
    uint8_t *rbuf;   struct ibv_mr *rmr;
    uint8_t *sbuf;   struct ibv_mr *smr;     /* ring + control slots */
    uint8_t *target; struct ibv_mr *tmr;     /* SGL[2] + iomap table */
    size_t target_len;
    size_t rbuf_map, sbuf_map, target_map;   /* mapped lengths (munmap) */

    /* send side */
    uint16_t sseq_no, sseq_comp;
    uint32_t sqe_avail, ctrl_avail, ctrl_seq;
    struct rs_sq_track sq_track;            /* posted send WRs (rs_sendq.h) */
    uint32_t sbuf_bytes_avail, sbuf_head;
    int target_sge;
    uint64_t tgt_addr; uint32_t tgt_key, tgt_left;
    struct rs_wire_sge remote_sgl;
    uint32_t remote_sge;
    struct rs_wire_sge remote_iomap;        /* length = entry count */
    int peer_be;
    uint16_t peer_rq_size;

    /* receive side */
    uint32_t *rmsg;              /* ring of data-message lengths */
    uint32_t rmsg_slots, rmsg_head, rmsg_tail;
    uint16_t rseq_no, rseq_comp;
    uint32_t rbuf_offset, rbuf_bytes_avail, rbuf_free_offset, rx_window;
    uint64_t rx_queued;          /* bytes readable now (FIONREAD) */

    /* stream state */
    int rd_open, wr_open;        /* local shutdown not yet done */
    int peer_wr_closed;          /* EOF after the queue drains */
    int peer_gone;               /* DISCONNECT or CM DISCONNECTED seen */
    uint8_t fin_write_taken;     /* the one send TCP takes after the peer's FIN */
    int disconnect_sent;

    /* listener: connections accepted on the wire, not yet by the app */
    struct rsock *acceptq_head, *acceptq_tail, *acceptq_next;
    int backlog, acceptq_len;
    int lp_registered;           /* in the listener progress fd (lp_lock) */
    int lp_in_wait;              /* the progress fd is in our wait fd (atomic
                                  * stores: read unlocked, rs_set_state) */
    int in_listener_wait;        /* accepting: our CM fd is in the listener's wait fd */

    struct rs_iomap *iomap;      /* riomap state, NULL until used */

    /* TCP-anchored sockets (rs_anchor.c): the handshake, NULL otherwise;
     * set before the socket is handed out, freed with it. anc_phase is
     * written under lock with atomic stores (the data path reads it
     * unlocked: rs_anchor_ready). Once upgraded, anchor_fd is the TCP
     * socket watched for peer death (anchor_ev: EPOLLRDHUP, 0 after a
     * FIN), -1 otherwise. */
    struct rs_anchor *anc;
    int anc_phase;
    /* A passive end's first send while upgrading, kept to leave first
     * (rs_anchor_early.c; socket lock): NULL/0 when there is none. */
    uint8_t *early;
    uint32_t early_len;
    int early_busy;
    int anchor_fd;
    uint32_t anchor_ev;
    int anchor_fin;              /* the anchor delivered the peer's FIN */
    /* The RDMA peer became unreachable and the anchor has not said yet how
     * it went (rs_anchor_lost.c): until this time (rs_now_ms), 0 when no
     * verdict is pending. Nothing is posted meanwhile (rs_can_send, the
     * control path); the anchor's readiness or timer_fd ends it. */
    int64_t lost_until;
    /* passive anchor listener: its one connection request is accepted
     * into this socket (under the listener's lock, then this one's) */
    struct rsock *adopt_into;
    /* Downgrade of an upgraded anchored socket back to TCP (before a
     * fork or exec; rs_anchor_down.c): data bytes written to the peer and
     * received from it over RDMA (the in-band DOWN/ACK carry them), and
     * the state of the downgrade, NULL until one starts. */
    uint64_t tx_bytes, rx_bytes;
    struct rs_down *down;

    /* options stored for getsockopt that RDMA has no use for (rs_opts.c) */
    int cork, keepintvl_s, keepcnt, defer_accept_s, fastopen, reuseport,
        user_timeout_ms, quickack_off, tos;
};

/* Phases of an anchored socket on its way back to TCP (rs_anchor_down.c;
 * the others are in rs_anchor.c): RELEASING, we stopped sending on RDMA
 * and wait for the peer's ACK; DOWN, the connection is on TCP again with
 * what RDMA delivered before kept in a leftover buffer. The data path
 * reads anc_phase unlocked (atomic stores under the lock). */
#define RS_ANC_PHASE_RELEASING 99
#define RS_ANC_PHASE_DOWN      103
/* A send must not go on RDMA any more (ENOPROTOOPT: the module carries
 * it on TCP once down). */
static inline int rs_anchor_going_down(const struct rsock *s)
{
    int p = __atomic_load_n(&s->anc_phase, __ATOMIC_ACQUIRE);
    if (p != RS_ANC_PHASE_RELEASING && p != RS_ANC_PHASE_DOWN)
        return 0;
    errno = ENOPROTOOPT;
    return 1;
}
/* The receive buffer was handed to the leftover: reads are served there. */
static inline int rs_anchor_is_down(const struct rsock *s)
{
    if (__atomic_load_n(&s->anc_phase, __ATOMIC_ACQUIRE) != RS_ANC_PHASE_DOWN)
        return 0;
    errno = ENOPROTOOPT;
    return 1;
}

/* Fork generation; grows in every child (pthread_atfork). */
extern unsigned rs_fork_gen;
void rs_fork_child_reset(void);

/* Logging: one line, through the dispatcher when loaded as a module. */
void rs_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern void (*rs_notify_fn)(void *cookie);
extern void (*rs_log_sink)(int level, const char *line);

/* Whether the 4-byte length word at p, in memory the peer writes with RDMA
 * (our target SGL and iomap table), is non-zero. An acquire load rather
 * than a plain read after a fence: the entry's other fields are read only
 * after a non-zero length was seen, and ThreadSanitizer models acquire
 * loads (it ignores stand-alone fences). p is 4-byte aligned (the tables
 * start page-aligned and their entries are multiples of 8 bytes). */
static inline int rs_peer_len_set(const uint8_t *p)
{
    return __atomic_load_n((const uint32_t *)(const void *)p, __ATOMIC_ACQUIRE) != 0;
}

/* rs_sock.c: lifetime, checks, waiting */
struct rsock *rs_alloc(int domain, const struct rsock *inherit);
void rs_count_parked(int delta);
void rs_free(struct rsock *s);
int rs_wait_fd_add(struct rsock *s, int fd);
int rs_check_usable(struct rsock *s);
int64_t rs_now_ms(void);
int64_t rs_now_ns(void);          /* CLOCK_MONOTONIC, both */
void rs_set_error(struct rsock *s, int err, const char *why);

/* rs_wait.c: blocking waits shared by every thread blocked on a socket */
int rs_wake_init(struct rsock *s);
void rs_wake_destroy(struct rsock *s);
int rs_wait_locked(struct rsock *s, int64_t deadline_ms);
/* The same with an internal deadline: timed = the call has a socket timeout. */
int rs_wait_timed(struct rsock *s, int64_t deadline_ms, int timed);
int64_t rs_deadline(const struct timeval *tv, int nonblock);
void rs_event(struct rsock *s);
/* Make the kick eventfd if it does not exist yet (lock held): 0, or -1. */
int rs_kick_ensure(struct rsock *s);
/* ... at once when the socket is blocking (after its mode was set). */
void rs_kick_for_mode(struct rsock *s);
/* Read the kick eventfd once no thread sleeps on it (lock held). */
void rs_kick_drain(struct rsock *s);
/* Where the engine's own descriptors go: the dispatcher's high range. */
int rs_high_fd_base(void);
/* Milliseconds left until a deadline (-1: none) for poll(); 0 when past. */
int rs_poll_timeout(int64_t deadline_ms);

/* rs_lprog.c: passive-side progress from any wait of the process */
int rs_lprog_add_to_wait_fd(struct rsock *s);
void rs_lprog_del_from_wait_fd(struct rsock *s);
int rs_lprog_register(struct rsock *s);
void rs_lprog_unregister(struct rsock *s);
void rs_lprog_run(void);
/* Whether a wait on s should answer the process's pending connection
 * requests: s is a listener, or s is connecting (its wait fd holds the
 * progress fd, so a single thread can connect to its own listener).
 * Connected sockets skip it: their waits are the data path, and a
 * listener's own wait fd wakes whoever waits on it. Read without the
 * socket lock (a stale answer costs one extra or one skipped pass). */
static inline int rs_wait_serves_listeners(const struct rsock *s)
{
    return __atomic_load_n(&s->lp_in_wait, __ATOMIC_RELAXED) ||
           __atomic_load_n(&s->state, __ATOMIC_RELAXED) == RS_LISTENING;
}
/* s->state and s->lp_in_wait are written only with s->lock held, but
 * rs_wait_serves_listeners reads them without it, so every write is an
 * atomic store (relaxed: the reader wants any recent value, nothing else
 * is published with it); reads under the lock stay plain. */
static inline void rs_set_state(struct rsock *s, enum rs_state st)
{
    __atomic_store_n(&s->state, st, __ATOMIC_RELAXED);
}
void rs_lprog_fork_child(void);

/* rs_endpoint.c: verbs resources of one connection */
int rs_transport_supported(const struct rdma_cm_id *id, const char *what);
int rs_endpoint_create(struct rsock *s);
void rs_endpoint_destroy(struct rsock *s);
void rs_local_conn_data(struct rsock *s, uint8_t out[RS_CONN_DATA_LEN]);
void rs_save_peer_conn(struct rsock *s, const struct rs_conn_info *ci);
/* rs_epcache.c: a closed connection's registered buffers for the next one.
 * take: 1 if s got a kept set of its sizes (rbuf/sbuf/target and MRs; the
 * target cleared); limited (rs_memlock_fit) empties and disables the cache.
 * put (after the QP is destroyed): 1 if kept, s's fields then cleared. */
int rs_epc_take(struct rsock *s, int limited);
int rs_epc_put(struct rsock *s);

/* rs_conn.c: connection state machine on rdma_cm */
int rs_conn_bind(struct rsock *s, const struct sockaddr *addr, socklen_t len);
int rs_conn_listen(struct rsock *s, int backlog);
int rs_conn_start(struct rsock *s, const struct sockaddr *addr, socklen_t len);
int rs_conn_process_cm(struct rsock *s);
void rs_conn_fill_param(struct rdma_conn_param *p, const uint8_t *pdata);
/* The QP's local ACK timeout before rdma_connect/rdma_accept (RS_ACK_TIMEOUT). */
void rs_conn_ack_timeout(struct rdma_cm_id *id);
int rs_conn_failure_errno(const struct rdma_cm_event *ev);

/* rs_accept.c: passive side (requests, accepting sockets, accept queue) */
/* A request that found no descriptor (EMFILE/ENFILE; other errors are
 * ignored): the listener's next accept() fails with it. */
void rs_accept_note_error(struct rsock *l, int err);
void rs_accept_request(struct rsock *l, struct rdma_cm_id *nid, const uint8_t *pdata,
                       size_t plen);
void rs_accept_on_event(struct rsock *c, const struct rdma_cm_event *ev);
void rs_accept_resolve(struct rsock *l);
int rs_accept_ready(const struct rsock *l);
struct rsock *rs_conn_accept_pop(struct rsock *l);
struct rsock *rs_accept_take_any(struct rsock *l);

/* rs_data.c: CQ processing, send and receive */
int rs_progress(struct rsock *s, int from_poll);
/* The send/recv paths' pass: completions and credits, no system call. */
void rs_progress_io(struct rsock *s);
/* A nonblocking send/recv about to fail with EAGAIN: the full pass, at
 * most every 2 ms per socket (rs_data.c). */
void rs_progress_giveup(struct rsock *s);
/* poll_recheck's pass (no wake-up since the last full one): as
 * rs_progress without asking the wait fd; from_poll. */
int rs_progress_recheck(struct rsock *s);
/* The dispatcher's lazy pass: as rs_progress (fired) or
 * rs_progress_recheck, but the CQ may be left unarmed (cq_lazy). */
int rs_progress_lazy(struct rsock *s, int fired);
/* Before the dispatcher sleeps: arm the CQ, poll it once; 1 when
 * completions came (lock held). */
int rs_arm_cq(struct rsock *s);

/* A connected socket's event sources, as RS_SRC_* bits: its completion
 * channel, its CM channel and its keepalive timer. In other states the
 * wait fd holds more (accepting children, the listener-progress fd), so
 * every source counts as ready (RS_SRC_ALL). */
#define RS_SRC_CQ    1u
#define RS_SRC_CM    2u
#define RS_SRC_TIMER 4u
#define RS_SRC_ANCHOR 8u             /* the TCP anchor (rs_anchor_check) */
#define RS_SRC_ALL   15u
static inline int rs_sources_known(const struct rsock *s)
{
    return s->state == RS_CONNECTED || s->state == RS_DISCONNECTED;
}
/* Which source fd is (RS_SRC_ALL for an fd that is none of them). */
unsigned rs_source_of(const struct rsock *s, int fd);
int rs_progress_sources(struct rsock *s, unsigned src, int from_poll);
/* One non-blocking CQ pass for a spinning waiter: 1 when completions came. */
int rs_spin_cq(struct rsock *s);
/* rs_anchor_early.c (lock held): the kept reply goes out over RDMA once
 * upgraded; wait: block (bounded by SO_SNDTIMEO) rather than stop at EAGAIN. */
void rs_anchor_early_drain(struct rsock *s, int wait);
int rs_can_send(struct rsock *s);
ssize_t rs_sendv_locked(struct rsock *s, const struct iovec *iov, int iovcnt, int flags);
ssize_t rs_recvv_locked(struct rsock *s, const struct iovec *iov, int iovcnt, int flags);
int rs_post_write(struct rsock *s, uint64_t wr_id, uint32_t imm_be, int with_imm,
                  const struct ibv_sge *sge, int nsge, uint32_t len,
                  uint64_t raddr, uint32_t rkey);
int rs_stage_copy(struct rsock *s, const void *src, uint32_t len, struct ibv_sge sge[2]);
uint64_t rs_wrid(enum rs_op op, uint32_t value, uint32_t sbuf_bytes);

/* rs_ctrl.c: control messages, credits, keepalive, shutdown, close */
void rs_update_credits(struct rsock *s);
int rs_send_ctrl(struct rsock *s, enum rs_ctrl type);
/* Lock held, s failing with its CM detached: the in-band DISCONNECT in
 * place of the DREQ (no wait). */
void rs_ctrl_farewell(struct rsock *s);
int rs_shutdown_locked(struct rsock *s, int how);
/* close(): DISCONNECT, queued data, then the QP destroyed and the CM told;
 * the caller frees the socket next. */
void rs_close_drain(struct rsock *s);
void rs_keepalive_tick(struct rsock *s);
int rs_keepalive_arm(struct rsock *s);
int rs_timer_ensure(struct rsock *s);

/* rs_poll.c: readiness */
uint32_t rs_poll_mask(struct rsock *s);
uint32_t rs_poll_events(struct rsock *s, uint64_t *gen);
/* The same without asking the wait fd's sources (module ABI 1.5). */
uint32_t rs_poll_recheck(struct rsock *s, uint64_t *gen);
/* The lazy forms (module ABI 1.5 poll_lazy and arm). */
uint32_t rs_poll_lazy(struct rsock *s, uint64_t *gen, int fired);
int rs_poll_arm(struct rsock *s);
/* Module ABI 1.6 busy_poll_ns: how long a wait may look before it sleeps. */
uint64_t rs_busy_poll_ns(struct rsock *s);

/* rs_iomap.c: riomap / riowrite */
void rs_iomap_free(struct rsock *s);
int rs_iomap_flush(struct rsock *s);
int rs_iomap_publish(struct rsock *s, int64_t deadline);

/* rs_anchor.c: liveness of an upgraded anchored socket (lock held) */
void rs_anchor_check(struct rsock *s);
/* rs_memlock.c: buffers sized to the locked-memory limit (before the
 * endpoint is made); the limit refused a registration (logged once). */
#define RS_MEMLOCK_MIN_BUF 16384u
int rs_memlock_fit(struct rsock *s);   /* 1: registered memory is limited */
/* Anchored sockets: RS_ANCHOR_BUF-sized buffers while fewer than
 * RS_ANCHOR_BUF_CONNS sockets of the process hold them; _give at free. */
void rs_anchor_buf_take(struct rsock *s);
void rs_anchor_buf_give(struct rsock *s);
void rs_memlock_refused(void);
/* rs_anchor_lost.c (lock held): the RDMA peer is unreachable: judge it by
 * the anchor (EOF or reset), now or once it speaks (bounded by
 * RS_ANCHOR_LOST_MS); 1 when judged or pending, 0: the caller reports it. */
int rs_anchor_peer_lost(struct rsock *s);
/* A progress pass on a socket whose verdict is pending (lost_until). */
void rs_anchor_lost_step(struct rsock *s);
/* A progress pass (after the CQ's) on a socket whose CM no longer tells
 * of its peer's end (cm_detached): the anchor's FIN stands for it. */
void rs_anchor_fin_step(struct rsock *s);
void rs_anchor_free(struct rsock *s);
/* fork child: the negative cache's lock may have been held by a thread
 * that does not exist there */
void rs_anc_fork_child(void);

/* rs_cmshare.c: one rdma_cm channel per process for upgraded anchored
 * sockets (lock held for adopt/apply) */
#define RS_CMS_GONE 1u               /* DISCONNECTED / DEVICE_REMOVAL */
void rs_cms_adopt(struct rsock *s);
void rs_cms_apply(struct rsock *s);
void rs_cms_flushed(struct rsock *s);
/* The peer's RDMA side is gone, as DISCONNECTED tells (lock held). */
void rs_cms_peer_gone(struct rsock *s);
/* rs_cmdetach.c: an upgraded socket's CM connection goes (lock held). */
void rs_cms_detach(struct rsock *s);
void rs_cms_detach_early(struct rsock *s);
void rs_cms_sync(struct rsock *s);
void rs_cms_destroy_id(struct rsock *s);
void rs_cms_fork_child(void);

/* rs_ops.c: process-wide initialisation, once */
void rs_global_init_once(void);

/* the engine's socket API (rs_api.c wraps it with fds, rs_module.c with
 * the module contract) */
int rs_e_socket(int domain, int type, int protocol, struct rsock **out);
int rs_e_accept(struct rsock *s, struct sockaddr *addr, socklen_t *len, int flags,
                struct rsock **out);
int rs_e_connect(struct rsock *s, const struct sockaddr *addr, socklen_t len);
int rs_e_close(struct rsock *s);
ssize_t rs_e_sendv(struct rsock *s, const struct iovec *iov, int iovcnt, int flags);
ssize_t rs_e_recvv(struct rsock *s, const struct iovec *iov, int iovcnt, int flags);
int rs_e_getsockopt(struct rsock *s, int level, int name, void *val, socklen_t *len);
int rs_e_setsockopt(struct rsock *s, int level, int name, const void *val, socklen_t len);
int rs_e_name(struct rsock *s, int peer, struct sockaddr *addr, socklen_t *len);
int rs_e_set_nonblock(struct rsock *s, int on);
int rs_e_ioctl(struct rsock *s, unsigned long req, void *arg);
int rs_e_shutdown(struct rsock *s, int how);
int rs_e_bind(struct rsock *s, const struct sockaddr *addr, socklen_t len);
int rs_e_listen(struct rsock *s, int backlog);
off_t rs_e_iomap(struct rsock *s, void *buf, size_t len, int prot, int flags, off_t offset);
int rs_e_iounmap(struct rsock *s, void *buf, size_t len);
ssize_t rs_e_iowrite(struct rsock *s, const void *buf, size_t count, off_t offset, int flags);

#endif /* RS_SOCK_H */
