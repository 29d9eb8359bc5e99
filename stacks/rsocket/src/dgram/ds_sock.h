/*
 * ds_sock.h - datagram rsockets (SOCK_DGRAM), wire-compatible with
 * librdmacm's ds_* sockets: one kernel UDP socket per rsocket (first
 * contact, ds_wire.h) and one UD QP per local address (the data). No
 * service thread: the socket's own calls and poll_events() read the UDP
 * socket, the completion queues and the rdma_cm channel that resolves
 * peers' address handles.
 *
 * Locking: every field of struct dsock and of the QPs and destinations it
 * owns is guarded by dsock.lock. Nothing blocks with it held: blocking
 * calls drop it around poll() on the wait fd (ds_wait).
 */
#ifndef DS_SOCK_H
#define DS_SOCK_H

#include <infiniband/verbs.h>
#include <pthread.h>
#include <rdma/rdma_cma.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>

#include "ds_wire.h"

#define DS_RQ_DEFAULT 256       /* receive slots per QP */
#define DS_SQ_DEFAULT 128       /* send slots per QP */
#define DS_UDP_SLOTS  32        /* first-contact datagrams queued */
#define DS_HASH       64        /* destination hash buckets */
#define DS_DEST_MAX   65536     /* peers remembered per socket */
#define DS_RESOLVE_MS 2000      /* address / route resolution timeout */
/* A resolution without any event this long after it started is given up
 * (both steps' timeouts and slack); a send starts the next one at most this
 * often, so a peer that never answers costs one resolution per period. */
#define DS_RESOLVE_STUCK_MS (2 * DS_RESOLVE_MS + 1000)
#define DS_RETRY_MS 1000
#define DS_REPOST_BATCH 16      /* receive slots re-posted per ibv_post_recv */
#define DS_SRC_UDP    1         /* wait fd tags (a QP's channel: the QP pointer) */
#define DS_SRC_CM     2

/* One UD QP: the socket's traffic from one local address. */
struct ds_qp {
    struct ds_qp *next;
    struct sockaddr_storage local;   /* IP of the QP + the UDP socket's port */
    struct rdma_cm_id *id;
    struct ibv_pd *pd;
    struct ibv_comp_channel *ch;
    struct ibv_cq *cq;
    struct ibv_qp *qp;
    uint8_t *rbuf;  struct ibv_mr *rmr;   /* rq slots of DS_GRH + DS_SLOT */
    uint8_t *sbuf;  struct ibv_mr *smr;   /* sq slots of DS_SLOT */
    uint32_t *sfree; uint32_t nfree;      /* free send slots (stack) */
    uint32_t rq, sq;
    uint32_t max_msg;                     /* path MTU: largest UD message */
    /* consumed receive slots waiting to be re-posted in one chain (the
     * device's post takes a lock the senders share) */
    uint32_t repost[DS_REPOST_BATCH], nrepost;
};

/* A peer, keyed by its UDP address (the source of its first contact). */
struct ds_dest {
    struct ds_dest *next;            /* hash chain */
    struct sockaddr_storage addr;
    struct sockaddr_storage local;   /* our address toward it (QP IP + UDP port) */
    struct ds_qp *qp;                /* ours for that address; NULL: the device has
                                      * no UD QP for it, everything stays on UDP */
    struct ibv_ah *ah;               /* NULL: sends go over UDP */
    uint32_t qpn;                    /* the peer's, 0 until it told us */
    struct rdma_cm_id *res;          /* resolution in progress */
    int res_failed;                  /* last resolution failed: retried on next
                                      * contact, or by a send after retry_ms */
    int64_t res_ms;                  /* rs_now_ms() when `res` started */
    int64_t retry_ms;                /* no new resolution from a send before */
};

/* A received datagram waiting for the application. */
struct ds_rx {
    uint8_t *data;
    uint32_t len;
    struct ds_qp *qp;                /* UD: its receive slot is re-posted on consumption */
    uint32_t slot;                   /* UD slot, or first-contact pool slot (qp NULL) */
    struct sockaddr_storage src;
};

struct dsock {
    pthread_mutex_t lock;
    int domain;
    int nonblock;
    unsigned fork_gen;               /* rs_fork_gen at creation: a fork child's
                                      * copy has no verbs resources */
    int udp_fd;                      /* first contact; bind/connect/names live here */
    int wait_fd;                     /* epoll: udp_fd, CQ channels, cm channel */
    /* Threads blocked in the engine (ds_wait): one, the poller, sleeps in
     * poll() on the wait fd and kick_fd (an eventfd outside the wait fd,
     * so the application's waits never see it); the others on cond.
     * ds_progress wakes both kinds when it changed something. */
    int kick_fd;
    int poller, poller_asleep, cond_waiters;
    pthread_cond_t cond;
    struct rdma_event_channel *cm;   /* peer address resolution */
    void *cookie;
    uint64_t gen, gen_told;          /* grows with every event; last one notified */
    int err;                         /* SO_ERROR */
    int bound, connected;
    struct sockaddr_storage peer;    /* connected peer */
    struct ds_dest *conn_dest;
    uint32_t rq_size, sq_size;       /* for QPs not created yet */
    struct timeval rcvtimeo, sndtimeo;
    struct ds_qp *qps;
    struct ds_dest *hash[DS_HASH];
    uint32_t n_dests;
    /* received datagrams, a ring */
    struct ds_rx *rx;
    uint32_t rx_cap, rx_head, rx_len;
    /* first-contact payloads, copied out of the UDP socket */
    uint8_t *udp_pool;
    uint32_t udp_free[DS_UDP_SLOTS], udp_nfree;
    uint64_t dropped;                /* invalid or unqueueable datagrams */
};

/* ds_ops.c: the arena the sockets live in (ds_is: a range check) */
extern uint8_t *ds_arena_lo, *ds_arena_hi;
static inline int ds_is(const void *p)
{
    const uint8_t *b = (const uint8_t *)p;
    return b >= __atomic_load_n(&ds_arena_lo, __ATOMIC_ACQUIRE) &&
           b < __atomic_load_n(&ds_arena_hi, __ATOMIC_ACQUIRE);
}
int ds_socket(int domain, int type, int protocol, struct dsock **out);
int ds_bind(struct dsock *d, const struct sockaddr *a, socklen_t l);
int ds_connect(struct dsock *d, const struct sockaddr *a, socklen_t l);
int ds_close(struct dsock *d);
int ds_name(struct dsock *d, int peer, struct sockaddr *a, socklen_t *l);
int ds_getsockopt(struct dsock *d, int level, int name, void *v, socklen_t *l);
int ds_setsockopt(struct dsock *d, int level, int name, const void *v, socklen_t l);
int ds_set_nonblock(struct dsock *d, int on);
int ds_ioctl(struct dsock *d, unsigned long req, void *arg);
uint32_t ds_poll_events(struct dsock *d, uint64_t *gen);
void ds_set_cookie(struct dsock *d, void *cookie);

/* 0, or -1/EOWNERDEAD in a fork child (the QPs stayed with the parent) */
int ds_usable(const struct dsock *d);

/* ds_io.c: data */
ssize_t ds_sendmsg(struct dsock *d, const struct msghdr *msg, int flags);
ssize_t ds_recvmsg(struct dsock *d, struct msghdr *msg, int flags);
/* Read everything pending (UDP socket, CQs, cm channel); lock held. */
void ds_progress(struct dsock *d);
/* The completion queues only: no system call. */
void ds_progress_fast(struct dsock *d);
/* Block until the wait fd or kick fires or the deadline (ms, -1 none)
 * passes; lock held, dropped while asleep. -1/EAGAIN at the deadline. */
int ds_wait(struct dsock *d, int64_t deadline_ms);
void ds_rx_release(struct dsock *d, struct ds_rx *r);

/* ds_qp.c: UD QPs */
struct ds_qp *ds_qp_get(struct dsock *d, const struct sockaddr *local);
void ds_qp_destroy(struct ds_qp *q);
int ds_qp_post_recv(struct ds_qp *q, uint32_t slot);
/* A consumed slot: re-posted with the next DS_REPOST_BATCH - 1 others, or
 * by ds_qp_flush_recv (before any wait: ds_progress). */
void ds_qp_repost(struct ds_qp *q, uint32_t slot);
void ds_qp_flush_recv(struct ds_qp *q);
/* Arm the CQ and consume its channel events (never blocks). */
void ds_qp_arm(struct ds_qp *q);

/* ds_dest.c: peers and address handles */
struct ds_dest *ds_dest_get(struct dsock *d, const struct sockaddr *peer);
struct ds_dest *ds_dest_find(struct dsock *d, const struct sockaddr *peer);
/* A valid first-contact header from peer told us its QPN: (re)build the
 * address handle when it is new or changed. */
void ds_dest_learn(struct dsock *d, struct ds_dest *ds, uint32_t qpn);
/* A send to ds while it is not on RDMA yet: gives up a resolution that got
 * no event in DS_RESOLVE_STUCK_MS and starts the next, at most every
 * DS_RETRY_MS. */
void ds_dest_retry(struct dsock *d, struct ds_dest *ds);
void ds_dest_cm_events(struct dsock *d);
void ds_dest_free_all(struct dsock *d);

#endif /* DS_SOCK_H */
