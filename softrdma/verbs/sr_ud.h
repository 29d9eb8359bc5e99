/* softrdma: unreliable datagram (UD) queue pairs and address handles.
 *
 * A UD QP is an sr_qp (its receive ring is the same shared block RC uses)
 * plus a UD block in the owner's segment that peers read: the Q_Key and
 * the host's GIDs. A sender finds a destination QP through the fabric
 * entry $FABRIC/ud/<qpn> (a symlink whose target is text: the owner's pid,
 * the descriptor numbers of its segment and of the QP's receive channel,
 * and the UD block's offset), takes those descriptors with pidfd_getfd
 * (the same permission the direct path's process_vm_writev needs) and then
 * delivers in its own ibv_post_send as the RC direct path does: the peer's
 * posted receive, process_vm_writev, the peer's CQ ring, its channel.
 *
 * Locking: the sender's peer cache (sr_ud_peer.c) is guarded by sr_lock;
 * the peer's receive ring by its QP block lock (as for RC). */
#ifndef SR_UD_H
#define SR_UD_H
#include "sr_internal.h"

#define SR_UD_MAGIC 0x53525544u
#define SR_GRH_LEN 40
#define SR_UD_MAX_GIDS (SR_MAX_PORTS * SR_MAX_GIDS)
/* A Q_Key with this bit set in a WR means "use the QP's own Q_Key". */
#define SR_QKEY_OWN 0x80000000u

/* In the owner's segment (peers read it; the owner writes it). */
struct sr_shm_ud {
    /* Where every segment block keeps its lock (the allocator's, whatever
     * it does with it); the UD block itself needs none: peers only read. */
    pthread_mutex_t block_lock;
    uint32_t magic;                /* SR_UD_MAGIC; 0 once the QP is gone */
    uint32_t qpn;
    uint32_t qkey;                 /* atomic: modify_qp may change it */
    uint32_t ngids;
    uint64_t qp_off;               /* its struct sr_shm_qp */
    uint8_t gids[SR_UD_MAX_GIDS][16];  /* the host's GIDs (when the QP was made) */
};

/* The UD part of an sr_qp (qp->ud); guarded by sr_lock. */
struct sr_ud {
    struct sr_shm_ud *s;
    uint64_t off;
    size_t size;
    uint32_t qkey;
    uint16_t pkey_index;
    uint32_t sq_psn;
    char path[512];                /* $FABRIC/ud/<qpn> */
};

struct sr_ah {
    struct ibv_ah pub;
    unsigned epoch;
    struct ibv_ah_attr attr;
    union ibv_gid sgid;            /* the sender's GID that goes into the GRH */
};

/* sr_ud.c: QP life cycle (called from sr_qp.c for IBV_QPT_UD) */
int sr_ud_create(struct sr_qp *qp);
void sr_ud_destroy(struct sr_qp *qp);
int sr_ud_modify(struct sr_qp *qp, struct ibv_qp_attr *a, int mask);
void sr_ud_query(struct sr_qp *qp, struct ibv_qp_attr *a);
/* Largest UD message: the port's active MTU (4096). */
#define SR_UD_MTU 4096u

/* sr_ud_peer.c: a destination QP as this process reaches it. */
struct sr_ud_peer {
    uint32_t qpn;
    int32_t pid;
    struct sr_peer_seg *seg;       /* NULL: our own segment */
    char *base;
    uint64_t size;
    struct sr_shm_ud *ud;
    struct sr_shm_qp *qp;
    uint64_t qp_off;
    uint32_t gen;
    int evfd;                      /* its receive channel, -1 if none */
    int own_evfd;                  /* evfd is ours to close */
    uint64_t retry_ms;             /* unreachable: not looked up before this */
    /* another user's process (no pidfd_getfd): its device's UD socket,
     * "" when reached directly; looked up again at retry_ms */
    char sock[108];
    struct sr_ud_peer *next;
};
/* The peer for qpn, usable now (generation current); NULL: drop. */
struct sr_ud_peer *sr_ud_peer_get(uint32_t qpn);
/* Forget every cached peer (fork child). */
void sr_ud_peers_forget(void);
/* A QP of this process as a destination (0), -1 if qpn is not one. */
int sr_ud_local(struct sr_ud_peer *p);
/* process_vm_writev into another process was refused: from now on every
 * other process is reached through its UD socket (one line). */
void sr_ud_direct_refused(void);

/* sr_ud_send.c: one datagram on its way */
struct sr_ud_msg {
    uint32_t src_qpn;
    uint8_t sl;
    int global;                        /* the AH has a GRH: grh.dgid is checked */
    struct iovec iov[1 + SR_MAX_SGE];  /* [0] the GRH, then the payload */
    int niov;
    uint32_t len;                      /* payload bytes */
    int has_imm;
    uint32_t imm;                      /* network order, as posted */
    struct ibv_grh grh;
};
/* Why datagrams were dropped (sr_ud_stats). */
enum { SR_UD_SENT, SR_UD_NO_QP, SR_UD_QKEY, SR_UD_GID, SR_UD_NO_RECV, SR_UD_CQ_FULL, SR_UD_NSTATS };
int sr_ud_count(int what);
int sr_ud_post_send(struct sr_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad);
/* Q_Key and GID checks, the receive, the completion, the signal; with up
 * to `yields` CPU yields while no receive is posted. Drops silently. */
void sr_ud_deliver_to(struct sr_ud_peer *p, struct sr_ud_msg *m, uint32_t qkey, int yields);

/* sr_ud_sock.c: datagrams to processes of other users, through their
 * device thread (an AF_UNIX datagram socket per process with UD QPs). */
/* This process's socket name for fabric entries ("" if it has none). */
const char *sr_ud_sock_name(void);
void sr_ud_sock_send(struct sr_ud_peer *p, const struct sr_ud_msg *m, uint32_t qkey);
/* Closes our connections to processes that have gone (sr_ud_peer.c's sweep). */
void sr_ud_sock_sweep(void);
#endif
