/* softrdma: internal objects of the user-space RDMA device.
 *
 * Locking rule: every device object (QPs, MRs, streams, CM ids) is read and
 * changed only with sr_lock held. The device thread takes it while it
 * handles a batch of events and drops it while it sleeps in epoll_wait.
 * sr_lock is recursive so that CM callbacks running on the device thread
 * may call verbs entry points. What peers' sending threads touch lives in
 * the shared segment under its own robust, process-shared locks: a QP's
 * receive side (struct sr_shm_qp lock) and a CQ's ring (struct sr_shm_cq
 * lock), taken in the order sr_lock, QP block, CQ ring (a peer's sender
 * holds its own sr_lock, then our QP block, then our CQ), so ibv_poll_cq
 * never waits for a device thread. A channel's list of CQs has a local
 * lock, taken before a CQ ring's. */
#ifndef SR_INTERNAL_H
#define SR_INTERNAL_H
#include <errno.h>
#include <infiniband/verbs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include "sr_wire.h"

#define SR_API __attribute__((visibility("default")))
#define SR_MAX_PORTS 8
#define SR_MAX_GIDS 16
#define SR_MAX_QP_WR 16384
#define SR_MAX_SGE 32
/* Inline data: an RC QP grants SR_MAX_INLINE (RS_MAX_TRANSFER, the
 * rsocket engine's largest write), whatever it was asked for. Inline data
 * costs the device nothing when the send goes directly at post time,
 * straight from the caller's buffers (sr_req_post_direct); only a send that
 * must wait is copied: into its WQE's slot (the size the QP asked for,
 * 64 to SR_INLINE_SLOT bytes), when larger into a buffer of its own
 * (sr_swqe.heap). UD keeps 512 (its
 * messages are at most the 4096 B MTU). */
#define SR_MAX_INLINE 65536
#define SR_MAX_INLINE_UD 512
#define SR_INLINE_SLOT 512
#define SR_MAX_CQE 1048576
#define SR_MAX_MR 65536
#define SR_MAX_MSG (1u << 30)

/* A local shortage (no descriptor, no memory): the calling process's own
 * error, reported by the call that met it; anything else a peer or the
 * fabric causes fails later, as on a wire. */
static inline int sr_errno_is_shortage(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

extern pthread_mutex_t sr_lock;
/* Incremented in a forked child: objects made under an older epoch belong
 * to the parent and are refused (no fork support, as on hardware). */
extern unsigned sr_epoch;

/* Fault-injection knobs, read from the environment when the device starts
 * (sr_nic_start); written once under sr_lock, read-only afterwards. */
struct sr_knobs {
    int delay_ms;       /* SOFTRDMA_DELAY_MS: responder holds each request */
    int drop_after;     /* SOFTRDMA_DROP_AFTER: a QP's link breaks after N requests */
    int force_rnr;      /* SOFTRDMA_FORCE_RNR: first N receive checks per stream fail */
    int poll_progress;  /* SOFTRDMA_POLL_PROGRESS=1: empty polls help the idle device */
    int ack_delay_ms;   /* SOFTRDMA_ACK_DELAY_MS: responder holds its answers */
    int strict_wq;      /* SOFTRDMA_STRICT_SQ=1: WQE slots free when polled (default 0 until the rsocket engine counts its control sends) */
    int odp;            /* SOFTRDMA_ODP (default 1): on-demand paging offered (sr_device.c); 0 models a NIC without it */
    int idle_close;     /* SOFTRDMA_IDLE_CLOSE (default 2): QP streams close while idle (sr_reach.c says where; 1: only where the process cannot chroot); 0 keeps them open for the QP's life (doc/softrdma.md) */
};
extern struct sr_knobs sr_knobs;

#include "sr_log.h"
int sr_env_int(const char *name, int dflt);
/* Moves a descriptor the application never sees (device streams, epoll,
 * timers, pipe write ends) above the numbers applications use, so that
 * theirs stay compact; returns the new fd, or fd itself if there is no
 * room up there. fd < 0 is passed through. */
int sr_fd_internal(int fd);
/* The fabric directory, shared by all users (sr_fabric.c): directories
 * made 01777, sockets and files 0666 (sr_fabric_share), whatever the umask. */
const char *sr_fabric_dir(void);
int sr_mkdir_p(const char *path);
void sr_fabric_share(const char *path);
/* Refuse an object from before a fork: logs once per call, sets errno. */
int sr_stale(unsigned epoch, const char *what);

/* ---- device and ports (sr_device.c) ---- */
struct sr_port {
    char ifname[32];
    int ngids;
    union ibv_gid gids[SR_MAX_GIDS];
    int up;
};
/* One IPv4/IPv6 address of an interface (sr_ifcache.c); addr and mask
 * hold a sockaddr_in or sockaddr_in6 (mask zero if the kernel gave none). */
#define SR_MAX_IFADDRS 64
struct sr_ifaddr {
    char ifname[32];
    unsigned flags;             /* IFF_* */
    struct sockaddr_in6 addr, mask;
};
/* The host's addresses in getifaddrs order, from a per-process copy that a
 * netlink watch keeps current: count, or -1 (errno) only if they cannot be
 * listed and were never listed before in this netns. */
int sr_ifaddrs(struct sr_ifaddr *out, int max);
/* A call asking several questions of the address list brackets them with
 * these: the list is brought up to date once (sr_ifcache.c). netns_now:
 * the network namespace's inode, that scope's if it has looked. prime:
 * list once per namespace, for later lookups at the descriptor limit. */
void sr_ifc_scope_begin(void);
void sr_ifc_scope_end(void);
unsigned long sr_ifc_netns_now(void);
void sr_ifc_prime(void);
/* Another watch (the link watch) had news: the next lookup lists again
 * whether or not the copy's own watch has the news yet. */
void sr_ifc_invalidate(void);
/* The calling thread (the device thread) never changes its network
 * namespace: its lookups use the one it has now, without a stat. */
void sr_ifc_thread_fixed(void);
/* Number of ports; -1 (errno) only if the interfaces cannot be listed and
 * were never listed before in this netns (else the last list is used). */
int sr_ports_scan(struct sr_port *ports, int max);
/* Lists the interfaces once per netns while descriptors are at hand (device
 * open, rdma_create_id), so that later scans at EMFILE have a table. */
void sr_ports_prime(void);
/* Port (1-based) whose interface carries the address, 0 if none, -1 (errno) if unknown. */
int sr_port_of_addr(const struct sockaddr *sa);
/* Link state of the interface that carries a local address: 1 up (and
 * carrier), 0 down (ifname says which), -1 not local or unknown. */
int sr_addr_link_up(const struct sockaddr *sa, char *ifname, size_t len);
/* The RoCE v2 GID of an address (IPv4-mapped for IPv4). */
void sr_gid_from_sa(const struct sockaddr *sa, union ibv_gid *g);
/* 1 if the GID belongs to a port of this host (network namespace), 0 if
 * not, -1 (errno) if the interfaces cannot be listed. */
int sr_gid_is_local(const uint8_t gid[16]);
struct ibv_context *sr_default_context(void);

/* ---- watches of the device thread (sr_nic.c) ---- */
struct sr_watch;
typedef void (*sr_watch_cb)(struct sr_watch *w, uint32_t events);
struct sr_watch {
    int fd;
    uint32_t events;
    sr_watch_cb cb;
    int again;                     /* queued by sr_watch_again */
    struct sr_watch *again_next;
};
int sr_nic_start(void);
/* Non-blocking help from a polling application thread (see sr_nic.c). */
void sr_nic_progress(void);
/* librdmacm's handshake timers (cm_timeout.c): run by the device thread
 * every round (at least every 100 ms) with sr_lock held; fn fires what is
 * due at now and may shorten *timeout (ms) to the next deadline. */
void sr_nic_set_timers(void (*fn)(uint64_t now, int *timeout));
/* Takes fd over (moved with sr_fd_internal); on failure it is closed,
 * w->fd is -1 and -1 is returned. */
int sr_watch_add(struct sr_watch *w, int fd, uint32_t events, sr_watch_cb cb);
void sr_watch_mod(struct sr_watch *w, uint32_t events);
void sr_watch_del(struct sr_watch *w);
/* The callback has input buffered in user space that epoll cannot report
 * (the fd may be drained): run w->cb(w, 0) again soon, from the device
 * thread. Called with sr_lock held, from any thread. */
void sr_watch_again(struct sr_watch *w);
const char *sr_nic_path(void);
uint64_t sr_now_ms(void);
/* sr_reach.c: the effective capability `cap` (CAP_*); whether idle streams
 * may close (the process cannot chroot away from the fabric's names). */
int sr_has_cap(int cap);
int sr_streams_may_close(void);
/* The device thread of `epoch` starts: it takes a root of its own. */
void sr_reach_thread_start(unsigned epoch);
/* 1: this thread cannot reach the fabric by name any more but the
 * device thread can: leave the reopen to it. */
int sr_reach_defer(void);
/* Frees p after the device thread's current batch of events. */
void sr_defer_free(void *p);
/* Calls fn(p) there instead (sr_lock held). */
void sr_defer_call(void (*fn)(void *), void *p);
/* sr_qpq.c: a QP's send queue arrays, from the kept blocks of freed QPs
 * of the same shape when there is one (not zeroed: every field is written
 * at post); release keeps or frees a block (-1 from alloc: ENOMEM). */
struct sr_qp;
int sr_qpq_alloc(struct sr_qp *qp);
void sr_qpq_release(void *block);

/* ---- shared memory (sr_shm.c) ----
 * Each process (epoch) has one segment: a memfd the peers of its QPs map
 * (passed over a QP's stream with SCM_RIGHTS when the stream opens). It
 * holds what a peer's sending thread needs to deliver without this
 * process's help: the receive side of each QP (struct sr_shm_qp), every CQ
 * ring (struct sr_shm_cq) and the MR table (struct sr_shm_mr). Locks in it
 * are process-shared and robust (a peer that dies holding one does not
 * block us). Offsets, never pointers, cross processes. */
/* Sparse: pages exist once touched. A process whose address space is
 * limited (RLIMIT_AS) gets a smaller one; peers map what fstat says. */
#define SR_SEG_SIZE (8ull << 30)
#define SR_SEG_MIN (64ull << 20)
#define SR_SEG_MAGIC 0x53525347u

struct sr_shm_mr {                     /* one per key slot */
    uint32_t key;                      /* 0: free; written last (release) */
    uint32_t pd;                       /* the PD's handle */
    uint32_t access;
    uint32_t pad;
    uint64_t addr, len;
};
struct sr_seg_hdr {
    uint32_t magic;
    int32_t pid;
    /* sr_now_ms() of the device thread's last round (every <= 100 ms): a
     * stopped process's NIC stops answering, as the stream path models it,
     * so peers deliver directly only while this is fresh (atomic). */
    uint64_t alive_ms;
    /* random: a peer reads it at the address the attach names through
     * process_vm_readv, proving the pid is this process (pid namespaces,
     * reuse) before it writes anything there */
    uint64_t token;
    struct sr_shm_mr mrs[SR_MAX_MR];
};
#define SR_ALIVE_MS 1000
/* This process's segment (created on first use); NULL if it cannot be. */
struct sr_seg_hdr *sr_seg(void);
int sr_seg_fd(void);
uint64_t sr_seg_size(void);
/* Page-rounded block of the segment: its offset, 0 on failure. The block
 * starts with its robust lock, initialised once for the segment's life
 * (never by the caller: a peer may be waiting for it); the rest is zeroed. */
uint64_t sr_seg_alloc(size_t len);
void sr_seg_free(uint64_t off, size_t len);
/* Robust, process-shared mutex in shared memory. Locking always succeeds:
 * if the owner died, the state is made consistent (its data is then
 * suspect; callers check their generation fields). */
void sr_shm_lock_init(pthread_mutex_t *m);
void sr_shm_lock(pthread_mutex_t *m);
/* Unlock of a lock a peer's segment may hold (see sr_shm.c: a failure
 * keeps every peer segment mapped from then on). */
void sr_shm_unlock(pthread_mutex_t *m);
/* A peer's segment, mapped once per peer process (cached by inode), and
 * a pidfd of that process (-1 until the first eventfd of its channels has
 * to be fetched again, sr_peerch.c). Guarded by sr_lock. */
struct sr_peer_seg {
    uint64_t dev, ino, size;
    char *base;
    int refs;                          /* 0: idle (sr_shm.c keeps it a while) */
    int peak;                          /* most refs at once */
    int pidfd;
    uint64_t idle_at;                  /* sr_now_ms() when refs fell to 0 */
    struct sr_peer_seg *next;
};
struct sr_peer_seg *sr_peer_seg_get(int fd);
/* A mapped segment whose header names pid, one reference taken; NULL if
 * none (the caller checks its token: pids are reused). */
struct sr_peer_seg *sr_peer_seg_of_pid(int32_t pid);
void sr_peer_seg_put(struct sr_peer_seg *p);
/* Unmaps every idle peer segment now (tests). */
void sr_peer_segs_drop_idle(void);

/* ---- peers' completion channels (sr_peerch.c) ----
 * The eventfds of peers' channels that our direct path signals are kept
 * in one cache of SR_PEERCH_SLOTS descriptors for the whole process (not
 * one per QP, nor per peer channel): a QP remembers its slot and the
 * slot's stamp, so a hit costs one comparison on the data path; a miss
 * takes the copy that came with the attach offer, or fetches the
 * descriptor from the peer with pidfd_getfd. Guarded by sr_lock. */
#define SR_PEERCH_SLOTS 32
struct sr_fast;
/* The eventfd of f's peer channel, -1 if it cannot be had now (the
 * delivery then goes the stream's way, whose device signals its own
 * channel). offered: the copy from the attach (-1 if none); taken. With
 * none offered it may fetch the peer's descriptor by number: call it so
 * only under the peer QP block's lock with its generation checked. */
int sr_peerch_get(struct sr_fast *f, int offered);
/* The peer went: its slots are emptied (their descriptors closed). */
void sr_peer_ch_forget(struct sr_peer_seg *p);
/* 1 if the pid of f's offer owns seg: it holds the segment's random token
 * at the address the offer names (read with process_vm_readv). */
int sr_fast_token_ok(const struct sr_fast *f, const struct sr_peer_seg *seg);
void sr_shm_forget(void);

/* ---- memory (sr_mr.c) ---- */
/* users: MRs and QPs made on the PD (guarded by sr_lock); a PD in use
 * cannot be freed (EBUSY), as on hardware. */
struct sr_pd { struct ibv_pd pub; unsigned epoch; int users; };
struct sr_mr { struct ibv_mr pub; int access; unsigned epoch; size_t pinned; };
/* Key -> MR whose range holds [addr, addr+len) with all of access; NULL if not. */
struct sr_mr *sr_mr_check(struct ibv_pd *pd, uint32_t key, uint64_t addr,
                          uint64_t len, int access);
/* The same check against a (peer's) shared MR table. */
int sr_shm_mr_ok(const struct sr_seg_hdr *h, uint32_t pd, uint32_t key, uint64_t addr,
                 uint64_t len, unsigned access);

/* ---- completion queues (sr_cq.c) ----
 * A channel is an eventfd in semaphore mode: one count per event, so the
 * fd is readable exactly while events are due, like the kernel's. Which CQ
 * an event is for lives in each CQ's shared `events` count. */
struct sr_cq;
struct sr_channel {
    struct ibv_comp_channel pub;
    unsigned epoch;
    pthread_mutex_t lock;              /* guards cqs, dead */
    struct sr_cq *cqs;                 /* CQs of the channel */
    unsigned dead;                     /* counts of destroyed CQs still in the fd */
    uint32_t id;                       /* unique in the process, never 0 (sr_attach.ch_id) */
};
struct sr_qp;
/* What polling a completion frees in its QP's work queues. Hardware frees a
 * send WQE slot (and every unsignaled one before it) only when the
 * application polls the CQE that covers it, and a receive slot when its
 * CQE is polled; a program that counts its slots wrongly must see ENOMEM.
 * qp_off/gen name the QP's shared block in the poller's own segment; a
 * generation that no longer matches (QP reset or destroyed) frees nothing. */
struct sr_wc_src {
    uint64_t qp_off;
    uint32_t gen;
    uint32_t sq_upto;                  /* send: the QP's sq_retired becomes this */
    uint32_t recv;                     /* receive: one RQ slot */
    uint32_t pad;
};
struct sr_shm_cqe { struct ibv_wc wc; struct sr_wc_src src; };
struct sr_shm_cq {
    pthread_mutex_t lock;              /* guards everything below */
    uint32_t cap, head, count;
    uint32_t reserved;                 /* slots a peer's sender holds for its push */
    uint32_t armed, overflow;
    uint32_t events;                   /* counts in the channel's eventfd for this CQ */
    uint32_t has_channel;
    struct sr_shm_cqe ring[];
};
struct sr_cq {
    struct ibv_cq pub;
    struct sr_shm_cq *s;               /* in this process's segment */
    uint64_t off, seg_size;
    size_t size;
    int users;                         /* QPs using the CQ; guarded by sr_lock */
    unsigned events_reported;          /* handed out by ibv_get_cq_event; pub.mutex */
    struct sr_cq *ch_next;             /* in the channel's list; channel lock */
    unsigned epoch;
};
/* Adds a completion to a (possibly a peer's) CQ ring whose channel is the
 * eventfd evfd (-1: none). Returns -1 on overflow; the QP state word
 * overrun_state (if given) is ERR before the overrun becomes visible. */
int sr_shm_cq_push(struct sr_shm_cq *s, const struct ibv_wc *wc, const struct sr_wc_src *src,
                   int evfd, uint32_t *overrun_state);
/* The same without the signal: *wake says the channel is due one
 * (sr_channel_signal), to be sent once the caller's locks are released -
 * a woken thread must not find them held (on 2 vCPUs it may well run on
 * the waker's CPU and stop it). resv 1: the push uses a held slot. */
int sr_shm_cq_add(struct sr_shm_cq *s, const struct ibv_wc *wc, const struct sr_wc_src *src,
                  int evfd, uint32_t *overrun_state, int resv, int *wake);
void sr_channel_signal(int evfd);
/* Counts for this process's own channel eventfds (sr_wake.c): written at
 * once, or, on the device thread while it holds sr_lock, right after it
 * lets go (between sr_wake_defer_begin and _end). sr_wake_take takes back
 * one count not written yet (1 if it did); sr_wake_forget drops a
 * channel's pending counts before its descriptor is closed. */
void sr_wake_fd(int fd, uint64_t n);
int sr_wake_take(int fd);
void sr_wake_forget(int fd);
void sr_wake_defer_begin(void);
void sr_wake_defer_end(void);
/* A peer's sender holds a slot before it places data (0), or finds the
 * CQ full (-1: it leaves the overrun to the owner's device). */
int sr_shm_cq_reserve(struct sr_shm_cq *s);
void sr_shm_cq_unreserve(struct sr_shm_cq *s);
/* A completion of qp's send (recv 0: covers every WR up to sq_head) or
 * receive queue into cq; -1 on overflow (qp is then in ERR: the caller
 * completes the move). */
int sr_cq_push(struct sr_cq *cq, const struct ibv_wc *wc, struct sr_qp *qp, int recv);
int sr_cq_evfd(struct sr_cq *cq);
/* Flushed completions of qp (in ERR) into cq under one hold of the CQ's
 * lock: a QP going to ERR flushes every posted receive (hundreds per
 * rsocket), and a lock round per completion was most of a close's cost.
 * Lock order as sr_cq_push (a QP block's lock may be held around it);
 * the channel is signalled once, after the lock (see sr_shm_cq_add). */
struct sr_cq_flush { struct sr_cq *cq; struct sr_qp *qp; int recv, wake; };
void sr_cq_flush_begin(struct sr_cq_flush *f, struct sr_cq *cq, struct sr_qp *qp, int recv);
void sr_cq_flush_add(struct sr_cq_flush *f, uint64_t wr_id, enum ibv_wc_opcode op);
void sr_cq_flush_end(struct sr_cq_flush *f);

/* ---- queue pairs (sr_qp.c, sr_requester.c, sr_responder.c) ---- */
struct sr_swqe {
    uint64_t wr_id;
    enum ibv_wr_opcode opcode;
    unsigned flags;
    uint32_t len;
    int nsge;
    struct sr_req_hdr hdr;
    struct iovec *iov;             /* nsge entries, or 1 inline entry */
    int local_err;                 /* bad lkey: completes in error at its turn */
    char *heap;                    /* inline data beyond the QP's slot that
                                    * waits: owned, freed when the WR retires */
};
/* A posted receive, in the QP's shared block (a peer's sender reads it). */
struct sr_sge_sh { uint64_t addr; uint32_t len, lkey; };
struct sr_rwqe {
    uint64_t wr_id;
    uint32_t nsge;
    uint32_t len;
    uint32_t bad_lkey;             /* checked when data arrives, as hardware does */
    uint32_t pad;
    struct sr_sge_sh sge[];
};
/* The receive side of a QP, in the owner's segment. A peer's sender takes
 * receives and reads the state under `lock`; the owner completes and
 * flushes receives under it too, but posts them without it (lock order:
 * sr_lock, QP block, CQ). */
struct sr_shm_qp {
    /* Guards rq_head and the receives a consumer takes. rq_tail is written
     * only by the owner under its sr_lock (ibv_post_recv, without this
     * lock), with release; consumers read it with acquire. */
    pthread_mutex_t lock;
    uint32_t gen;                  /* changes at reset and destroy */
    uint32_t state;                /* pub.state, for peers (atomic) */
    uint32_t access;               /* qp_access_flags (atomic) */
    uint32_t pd;                   /* the PD's handle */
    uint32_t slow_only;            /* fault knobs: peers use the stream */
    uint32_t qpn;
    uint32_t rq_head, rq_tail;
    /* Slots the application has polled free (atomic; ibv_poll_cq writes,
     * ibv_post_* read): [sq_retired, sq_head) are completed but still
     * occupied. */
    uint32_t sq_retired, rq_retired;
    uint32_t max_recv_wr, rwqe_size;
    uint64_t recv_cq_off;          /* the recv CQ's ring in the segment */
    /* 1 while the interface of this QP's port is down, without carrier or
     * gone (atomic; written by the owner's device thread, sr_link.c): the
     * peer's sender holds its requests then, as a wire would drop them */
    uint32_t link_down;
    /* 1 while requests of this QP wait for their answers on its stream
     * (atomic; written by the owner under sr_lock, read by its ibv_poll_cq:
     * sr_req_catch_up). A peer may write it too: it costs us a look. */
    uint32_t req_due;
    unsigned char rq[];            /* max_recv_wr entries of rwqe_size */
};
static inline struct sr_rwqe *sr_rwqe_at(struct sr_shm_qp *s, uint32_t i)
{
    return (struct sr_rwqe *)(s->rq + (size_t)(i % s->max_recv_wr) * s->rwqe_size);
}

/* The fast path of a requester: the peer QP's block, mapped (sr_fast.c). */
struct sr_fast {
    struct sr_peer_seg *seg;       /* NULL: stream only */
    struct sr_shm_qp *peer;
    struct sr_seg_hdr *peer_hdr;
    uint32_t gen;
    int32_t pid;
    int evfd;                      /* the peer channel to signal after this
                                    * delivery, -1 if none (borrowed: a slot
                                    * of sr_peerch.c) */
    int ch_slot;                   /* where the channel last was (sr_peerch.c) */
    uint32_t ch_stamp;             /* that slot's stamp then; 0: none */
    int broken;                    /* the kernel refused process_vm_* */
    /* the attach message being read from the stream */
    struct sr_attach msg;
    size_t got;
    int want;                      /* an attach header was read */
    int fds[2];
    int nfds;
};

/* Bytes buffered from a stream; payloads bypass it where possible. */
struct sr_rx {
    char buf[4096];
    size_t off, len;
    int *fds, *nfds;               /* set: descriptors passed are kept here (max 2) */
};

struct sr_outq_item { struct sr_resp_hdr hdr; char *data; size_t sent; };

/* A responder-side stream: a peer requester connected to one of our QPs. */
struct sr_inconn {
    struct sr_watch w;
    struct sr_qp *qp;              /* NULL until the hello names it */
    struct sr_hello hello;
    size_t hello_got;
    struct sr_rx rx;
    int have_hdr;
    size_t hdr_got;
    int rnr_retries;               /* failed checks for a receive */
    int forced_rnr;                /* SOFTRDMA_FORCE_RNR left on this stream */
    struct sr_req_hdr hdr;
    /* payload being received */
    struct iovec iov[SR_MAX_SGE];
    int niov;
    size_t left;
    int discard;                   /* payload goes nowhere (error) */
    int pending_status;            /* NAK to send after payload drained */
    struct sr_rwqe *rwqe;          /* receive being filled (in qp->s) */
    int stalled;                   /* RNR: waiting for a receive */
    uint64_t rnr_deadline;         /* 0 = wait forever */
    uint64_t notready_since;       /* stalled because the QP is not in RTR yet */
    int dead;
    int detached;                  /* released: waits in the graveyard */
    uint64_t delay_until;          /* SOFTRDMA_DELAY_MS: request held until */
    int delay_passed;
    uint64_t ack_due;              /* SOFTRDMA_ACK_DELAY_MS: answers held until */
    struct sr_outq_item *outq;
    int outq_cap, outq_head, outq_count;
    struct sr_inconn *next;
};

struct sr_qp {
    struct ibv_qp pub;
    unsigned epoch;
    struct ibv_qp_cap cap;
    int sq_sig_all;
    int port;
    uint8_t rnr_retry;
    uint8_t retry_cnt, timeout;    /* transport retries and local ACK timeout */
    uint32_t dest_qpn;
    int has_dgid;                  /* RTR gave a global route with a GID */
    union ibv_gid dgid;
    int access;                    /* qp_access_flags */
    /* send queue ring: [head, tx) sent awaiting response, [tx, tail) queued */
    struct sr_swqe *sq;            /* sq, sq_iov, sq_inline: in sq_block (sr_qpq.c) */
    struct iovec *sq_iov;
    char *sq_inline;               /* max_send_wr slots of inl_slot bytes */
    uint32_t inl_slot;
    void *sq_block;
    uint32_t sq_head, sq_tx, sq_tail;
    uint64_t tx_count;             /* requests written (SOFTRDMA_DROP_AFTER) */
    size_t tx_off;                 /* bytes of sq[tx] already written */
    size_t rd_left;                /* READ response payload bytes still due */
    struct iovec rd_iov[SR_MAX_SGE];
    int rd_niov;
    /* receive queue ring and state for peers (sr_shm_qp) */
    struct sr_shm_qp *s;
    uint64_t s_off;
    size_t s_size;
    struct sr_fast fast;
    /* requester stream */
    struct sr_watch out;
    int out_open;
    int out_dead;
    /* The stream was closed because nothing was on it (sr_req_idle_close):
     * the fast path carries the traffic, and the stream is opened again
     * when a request needs the peer's device; reopen_gen is the peer QP
     * block's generation it must still find (sr_hello.gen). */
    int out_idle;
    uint32_t reopen_gen;
    /* The reopen found no descriptor (EMFILE...): since when (0: not
     * waiting); the device thread retries it (sr_req_timers) for the
     * QP's retry budget, then its sends fail with RETRY_EXC_ERR. */
    uint64_t fdwait_since;
    /* Sends wait for the first attach offer until then (ms; 0: not
     * waiting): see sr_req_attach_wait. Guarded by sr_lock. */
    uint64_t attach_wait_until;
    /* The peer's attach data from rdma_cm (sr_qp_preattach), used at the
     * next INIT->RTR instead of a stream's offer; pre.pid 0: none.
     * Guarded by sr_lock. */
    struct sr_attach pre;
    int fdwait_queued;
    struct sr_qp *fdwait_next;
    struct sr_rx out_rx;
    size_t resp_got;
    struct sr_resp_hdr resp;
    struct sr_inconn *in;          /* responder stream, if the peer connected */
    struct sr_qpn_blk *qpn_blk;    /* the block its number is from (sr_qpn.c) */
    struct sr_ud *ud;              /* UD QPs only (sr_ud.h) */
    char link_if[32];              /* interface of its port at RTR ("": none; sr_link.c) */
    uint64_t held_since;           /* sends held by a link down since (ms), 0: not */
    struct sr_qp *next;
};
struct sr_qp *sr_qp_find(uint32_t qpn);
/* QP numbers, claimed from the fabric in blocks (sr_qpn.c); under sr_lock.
 * sr_qpn_owner_link: the fabric name whose link names qpn's NIC. */
int sr_qpn_alloc(struct sr_qp *qp);
void sr_qpn_free(struct sr_qp *qp);
void sr_qpn_release_all(void);
void sr_qpn_owner_link(uint32_t qpn, char *buf, size_t len);
/* The process's QPs (a list through ->next; sr_lock held). */
struct sr_qp *sr_qp_all(void);
void sr_qp_to_error(struct sr_qp *qp);
void sr_qp_set_state(struct sr_qp *qp, enum ibv_qp_state st);
/* To RESET: streams closed, queues emptied, a new generation. */
void sr_qp_reset(struct sr_qp *qp);
/* Where the occupied part of the send queue starts (slot accounting). */
uint32_t sr_sq_free_from(struct sr_qp *qp);
/* Waits until no peer is inside a delivery to this process (each holds one
 * of our QP blocks' locks); sr_lock held. */
void sr_qp_quiesce(void);
/* Queues a completion of qp's send queue (recv 0: covers every WR up to
 * sq_head) or receive queue (recv 1). */
void sr_qp_complete(struct sr_qp *qp, int recv, const struct ibv_wc *wc);
/* requester */
/* Opens the QP's stream at RTR; -1 (errno) only for a local shortage
 * (EMFILE, ENFILE, ENOMEM: ibv_modify_qp reports it, the QP stays in
 * INIT). A peer that cannot be reached fails the sends later, as on a wire. */
int sr_req_connect(struct sr_qp *qp);
/* The QP's first stream is open: its sends wait for the peer's attach
 * offer (a bounded time) so that they can go directly (sr_requester.c). */
void sr_req_attach_wait(struct sr_qp *qp);
void sr_req_kick(struct sr_qp *qp);
/* The inline WR just posted, alone in the queue, directly into the peer
 * from the caller's buffers, if sr_req_kick would send it directly: 1 if
 * it went (and completed). Under sr_lock. */
int sr_req_post_direct(struct sr_qp *qp);
/* Else, when it is next on an open stream, onto the stream from the
 * caller's buffers: 1 if all of it went (no staging copy). Under sr_lock. */
int sr_req_post_stream(struct sr_qp *qp);
/* The QP's stream cannot go on: closed, its sends fail (RETRY_EXC_ERR). */
void sr_req_lost(struct sr_qp *qp);
/* A send WR leaves the queue (completed or flushed): its heap goes. */
void sr_swqe_release(struct sr_swqe *s);
/* Publishes whether requests wait for answers on the stream (req_due);
 * after every change of sq_tx or sq_head. */
void sr_req_note_due(struct sr_qp *qp);
/* ibv_poll_cq took a receive of the QP whose block is b, and its block
 * says answers are due: reads them now (takes sr_lock). */
void sr_req_catch_up(struct sr_shm_qp *b);
/* The head request fails with st (QP to ERR first), the rest are flushed. */
void sr_req_fail(struct sr_qp *qp, enum ibv_wc_status st);
void sr_req_close(struct sr_qp *qp);
/* Retries the reopens that found no descriptor (device thread). */
void sr_req_timers(uint64_t now, int *next_ms);
void sr_req_forget(void);       /* forked child: the parent's waits are not ours */
/* How long a requester retries before RETRY_EXC_ERR: retry_cnt+1 tries of
 * its local ACK timeout (4.096 us << timeout, at least min_ms); 0 when
 * timeout is 0 (forever, as the spec says). */
uint64_t sr_retry_budget_ms(unsigned timeout, unsigned retry_cnt, uint64_t min_ms);
/* fast path (sr_fast.c) */
/* Reads the attach message after its header; 1 done, 0 more, -1 error. */
int sr_fast_attach_read(struct sr_qp *qp, int fd);
void sr_fast_detach(struct sr_qp *qp);
/* Delivers the WR at sq_tx directly; 1 done (completed), 0 use the stream. */
int sr_fast_try(struct sr_qp *qp);
void sr_stats_stream(void);     /* a request written to a stream */
void sr_stats_stream_open(void); /* a requester stream opened */
void sr_stats_stage(uint32_t len); /* an inline send's data copied by the device */
/* responder side: the attach message sent first on an accepted stream */
void sr_fast_offer(int fd, struct sr_qp *qp);
/* At INIT->RTR with the peer's attach data from rdma_cm: binds the fast
 * path to the peer's block (its segment mapped already, or fetched with
 * pidfd_getfd); 0 bound, -1 the stream is needed (another user, a peer
 * gone, no segment). sr_lock held. */
int sr_fast_preattach(struct sr_qp *qp, const struct sr_attach *a);
/* The connection manager's side (softrdma/cm, under sr_lock): the attach
 * data of our QP for the REQ/REP (-1: none to give), and the peer's, kept
 * for the RTR transition. */
int sr_qp_attach_info(struct ibv_qp *qp, struct sr_attach *a);
void sr_qp_preattach(struct ibv_qp *qp, const struct sr_attach *a);
/* 1 if a QP may run without its stream now (the idle-close rules and no
 * fault knob that models the stream). */
int sr_req_streamless_ok(void);
/* responder */
void sr_resp_accept(int fd);
void sr_resp_resume(struct sr_inconn *c);
void sr_resp_detach(struct sr_inconn *c);
void sr_resp_timers(uint64_t now, int *next_ms);

/* link state (sr_link.c) */
/* The device thread's netlink link watch (sr_nic_start; sr_lock held). */
void sr_link_watch_open(void);
/* At RTR: the QP's path uses the interface of port (1-based); its shared
 * link_down word is set from that interface's state, and kept so. */
void sr_link_track(struct sr_qp *qp, int port);
/* In sr_req_kick: 1 if the QP's or its peer's link is down (nothing may be
 * sent now; the device thread retries until the retry budget is spent). */
int sr_link_hold(struct sr_qp *qp);
void sr_link_untrack(struct sr_qp *qp);
void sr_link_timers(uint64_t now, int *next_ms);
/* 1 while the QP's own interface is down (responder: hold requests). */
static inline int sr_link_is_down(const struct sr_qp *qp)
{
    return qp->s && __atomic_load_n(&qp->s->link_down, __ATOMIC_ACQUIRE);
}

/* stream helpers (sr_stream.c) */
/* Reads into rx if empty; returns bytes available, 0 on EOF, -1 on error,
 * -2 when nothing is available now. */
ssize_t sr_rx_fill(int fd, struct sr_rx *rx);
/* Copies up to want bytes of header from rx; returns 1 when complete. */
int sr_rx_take(struct sr_rx *rx, void *dst, size_t want, size_t *got);
/* Moves payload into iov (advancing it): buffered bytes first, then readv.
 * Returns 1 when left reaches 0, 0 when more is needed, -1 on EOF/error. */
int sr_rx_payload(int fd, struct sr_rx *rx, struct iovec *iov, int *niov, size_t *left);
int sr_rx_need(int fd, struct sr_rx *rx, void *dst, size_t want, size_t *got);
void sr_iov_advance(struct iovec **iov, int *niov, size_t n);
#endif
