/* softrdma: internal objects of the user-space RDMA device.
 *
 * Locking rule (one rule for the whole device): every device object (QPs,
 * MRs, streams, CM ids) is read and changed only with sr_lock held. The
 * device thread takes it while it handles a batch of events and drops it
 * while it sleeps in epoll_wait. sr_lock is recursive so that CM callbacks
 * running on the device thread may call verbs entry points. A CQ's ring has
 * its own lock (cq->lock, taken after sr_lock when both are needed) so that
 * ibv_poll_cq never waits for the device thread. */
#ifndef SR_INTERNAL_H
#define SR_INTERNAL_H
#include <infiniband/verbs.h>
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
#define SR_MAX_INLINE 512
#define SR_MAX_CQE 1048576
#define SR_MAX_MR 65536
#define SR_MAX_MSG (1u << 30)

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
};
extern struct sr_knobs sr_knobs;

void sr_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
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
/* Frees p after the device thread's current batch of events. */
void sr_defer_free(void *p);

/* ---- memory (sr_mr.c) ---- */
/* users: MRs and QPs made on the PD (guarded by sr_lock); a PD in use
 * cannot be freed (EBUSY), as on hardware. */
struct sr_pd { struct ibv_pd pub; unsigned epoch; int users; };
struct sr_mr { struct ibv_mr pub; int access; unsigned epoch; };
/* Key -> MR whose range holds [addr, addr+len) with all of access; NULL if not. */
struct sr_mr *sr_mr_check(struct ibv_pd *pd, uint32_t key, uint64_t addr,
                          uint64_t len, int access);

/* ---- completion queues (sr_cq.c) ---- */
struct sr_channel { struct ibv_comp_channel pub; int wfd; unsigned epoch; };
struct sr_qp;
/* What polling a completion frees in its QP's work queues. Hardware frees a
 * send WQE slot (and every unsignaled one before it) only when the
 * application polls the CQE that covers it, and a receive slot when its
 * CQE is polled; a program that counts its slots wrongly must see ENOMEM. */
struct sr_wc_src {
    struct sr_qp *qp;              /* NULL: frees nothing (QP reset or destroyed) */
    uint32_t sq_upto;              /* send: the QP's sq_retired becomes this */
    int recv;                      /* receive: one RQ slot */
};
struct sr_cq {
    struct ibv_cq pub;
    pthread_mutex_t lock;          /* guards ring, src, head, count, armed, overflow */
    struct ibv_wc *ring;
    struct sr_wc_src *src;         /* per ring entry */
    int users;                     /* QPs using the CQ; guarded by sr_lock */
    /* Channel bookkeeping, under lock: events written to the channel and
     * not yet read, events handed out by ibv_get_cq_event; a destroyed CQ
     * whose events are still in the pipe stays allocated (zombie) until
     * ibv_get_cq_event has read them, which then skips them. */
    unsigned events_in_pipe, events_reported;
    int zombie;
    int cap, head, count;
    int armed, overflow;
    unsigned epoch;
};
/* Adds a completion; returns -1 (and flags the CQ) on overflow. On
 * overflow, src->qp is put in ERR state before the overrun becomes
 * visible to ibv_poll_cq; the caller then completes the move. */
int sr_cq_push(struct sr_cq *cq, const struct ibv_wc *wc, const struct sr_wc_src *src);
/* Entries of qp left in the CQ no longer free its slots (reset, destroy). */
void sr_cq_forget_qp(struct sr_cq *cq, struct sr_qp *qp);

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
};
struct sr_rwqe {
    uint64_t wr_id;
    int nsge;
    uint32_t len;
    int bad_lkey;                  /* checked when data arrives, as hardware does */
    struct iovec *iov;
};

/* Bytes buffered from a stream; payloads bypass it where possible. */
struct sr_rx { char buf[4096]; size_t off, len; };

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
    struct sr_rwqe *rwqe;          /* receive being filled */
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
    struct sr_swqe *sq;
    struct iovec *sq_iov;
    char *sq_inline;
    uint32_t sq_head, sq_tx, sq_tail;
    /* Slots the application has polled free: [sq_retired, sq_head) are
     * completed but still occupied. Written by ibv_poll_cq under the send
     * CQ's lock, read by ibv_post_send under sr_lock: atomic accesses. */
    uint32_t sq_retired;
    uint64_t tx_count;             /* requests written (SOFTRDMA_DROP_AFTER) */
    size_t tx_off;                 /* bytes of sq[tx] already written */
    size_t rd_left;                /* READ response payload bytes still due */
    struct iovec rd_iov[SR_MAX_SGE];
    int rd_niov;
    /* receive queue ring */
    struct sr_rwqe *rq;
    struct iovec *rq_iov;
    uint32_t rq_head, rq_tail;
    uint32_t rq_retired;           /* as sq_retired, under the recv CQ's lock */
    /* requester stream */
    struct sr_watch out;
    int out_open;
    int out_dead;
    struct sr_rx out_rx;
    size_t resp_got;
    struct sr_resp_hdr resp;
    struct sr_inconn *in;          /* responder stream, if the peer connected */
    char reg_path[512];            /* fabric entry naming this QPN */
    struct sr_qp *next;
};
struct sr_qp *sr_qp_find(uint32_t qpn);
void sr_qp_to_error(struct sr_qp *qp);
/* Queues a completion of qp's send queue (recv 0: covers every WR up to
 * sq_head) or receive queue (recv 1). */
void sr_qp_complete(struct sr_qp *qp, int recv, const struct ibv_wc *wc);
/* requester */
int sr_req_connect(struct sr_qp *qp);
void sr_req_kick(struct sr_qp *qp);
void sr_req_close(struct sr_qp *qp);
/* responder */
void sr_resp_accept(int fd);
void sr_resp_resume(struct sr_inconn *c);
void sr_resp_detach(struct sr_inconn *c);
void sr_resp_timers(uint64_t now, int *next_ms);

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
