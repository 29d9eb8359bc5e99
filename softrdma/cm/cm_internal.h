/* softrdma librdmacm: connection manager objects.
 * Locking: everything here is guarded by sr_lock (see sr_internal.h); a
 * channel's event queue also by it. Nothing blocks while holding it. */
#ifndef CM_INTERNAL_H
#define CM_INTERNAL_H
#include "sr_internal.h"
#include <rdma/rdma_cma.h>
#include <sys/types.h>

#define CM_PDATA_MAX 256
#define CM_API __attribute__((visibility("default")))

struct cm_event {
    struct rdma_cm_event pub;
    int dead;                       /* its id was destroyed: skipped, never shown */
    uint8_t pdata[CM_PDATA_MAX];
    struct cm_event *next;
};

struct cm_channel {
    struct rdma_event_channel pub;
    /* pub.fd: an eventfd (semaphore), one count per queued event */
    struct cm_event *head, *tail;
    unsigned epoch;
    /* Teardown under an event thread (see rdma_destroy_event_channel). */
    int closed;                     /* rdma_destroy_event_channel ran (atomic) */
    int readers;                    /* threads inside rdma_get_cm_event (atomic) */
    pid_t last_reader;              /* thread that took the latest event */
    pid_t late_reader;              /* closed: that thread parks if it calls again */
};

enum cm_state {
    CM_IDLE, CM_ADDR_RESOLVED, CM_ROUTE_RESOLVED, CM_LISTEN, CM_CONNECTING,
    CM_REQ_WAIT, CM_REQ_RCVD, CM_ACCEPTING, CM_RESPONDED, CM_CONNECTED, CM_DISCONNECTED,
};

enum cm_msg_type { CM_MSG_REQ = 1, CM_MSG_REP, CM_MSG_RTU, CM_MSG_REJ, CM_MSG_DREQ, CM_MSG_DETACH };

/* One SOCK_SEQPACKET message on a CM connection. */
struct cm_msg {
    uint32_t type;
    uint32_t qpn;
    uint8_t pdata_len;
    uint8_t responder_resources, initiator_depth, flow_control;
    uint8_t retry_count, rnr_retry_count, srq, pad;
    struct sockaddr_storage src, dst;   /* as the active side sees them */
    uint8_t pdata[CM_PDATA_MAX];
    /* REQ and REP of an RC id with a QP: how the peer reaches that QP
     * directly (sr_wire.h), so that no stream is opened at RTR */
    uint32_t has_attach;
    struct sr_attach attach;
    uint32_t flags;                 /* CM_MSG_FLAG_* (REQ, REP) */
};
/* The sender asked before connecting to drop the CM connection once
 * established (rdma_softrdma_detach, cm_detach.c). */
#define CM_MSG_FLAG_DETACH 1u

struct cm_id {
    struct rdma_cm_id pub;
    unsigned epoch;
    int sync;                       /* owns a private channel; calls wait */
    enum cm_state state;
    int afonly, reuseaddr;
    uint8_t ack_timeout;           /* RDMA_OPTION_ID_ACK_TIMEOUT, 0: the default (17) */
    struct sr_watch conn;           /* CM connection (seqpacket) */
    struct sr_watch lsn;            /* listening socket */
    int starved;                    /* requests left waiting: no descriptor (cm_conn.c) */
    /* rdma_softrdma_detach (cm_detach.c): DETACH sent / the peer's read;
     * once both, the CM connection is closed and the id stays CONNECTED
     * without it (no DREQ, no peer death told). sr_lock. */
    uint8_t detach_sent, peer_detach;
    /* asked before the connection was made: REQ/REP say so, and when both
     * did, the connection closes at ESTABLISHED with no DETACH messages */
    uint8_t detach_early;
    /* the requester left while its request waited for rdma_accept */
    uint8_t req_gone;
    /* handshake timeout (cm_timeout.c): in the armed list while tm_at */
    uint64_t tm_at;                 /* deadline (sr_now_ms), 0: not armed */
    struct cm_id *tm_next, *tm_prev;
    char lsn_path[400];
    char **names;                   /* listen names (symlinks) we created */
    int nnames;
    struct cm_msg peer;             /* last REQ/REP received */
    struct rdma_conn_param my;      /* what we sent */
    int own_cqs;
    struct ibv_qp_init_attr *ep_attr;   /* rdma_create_ep on a passive id */
    struct ibv_pd *ep_pd;
    struct cm_id *listener;         /* CM_REQ_WAIT: who accepted the connection */
    char port_claim[500];           /* our claim in the port space, "" if none */
    /* port_claim is a port-0 pick (cm_port_pool.c may keep it at release):
     * its address key and network namespace */
    int claim_pooled;
    char claim_key[64];
    unsigned long claim_ns;
    int events_out;                 /* events handed to the user, not yet acked */
    int destroyed;                  /* rdma_destroy_id ran; freed at the last ack */
    /* owns fabric names (port claim, listener): removed at exit (cm_exit.c) */
    int exit_tracked;
    struct cm_id *exit_next, *exit_prev;
};

static inline struct cm_id *cm_of(struct rdma_cm_id *id) { return (struct cm_id *)id; }

/* cm_detach.c: the peer's DETACH arrived (device thread, sr_lock). */
void cm_on_detach(struct cm_id *id);
/* At ESTABLISHED: both ends asked early (peer: the REQ or REP read). */
void cm_detach_at_established(struct cm_id *id, const struct cm_msg *peer);

/* cm_channel.c */
struct cm_channel *cm_channel_new(void);
/* Destroys a sync id's private channel (no event thread to park). */
void cm_channel_destroy_private(struct rdma_event_channel *pub);
void cm_event_push(struct cm_id *id, struct rdma_cm_id *listen, enum rdma_cm_event_type type,
                   int status, const struct cm_msg *m);
/* DISCONNECTED, then TIMEWAIT_EXIT when a QP is attached (as rdma_cm does). */
void cm_push_disconnected(struct cm_id *id);
/* rdma_destroy_id: queued events of the id are dropped. */
void cm_events_forget(struct cm_id *id);
/* For a sync id: wait for the next event; fails (errno) unless it is want. */
int cm_sync_wait(struct cm_id *id, enum rdma_cm_event_type want);

/* cm_addr.c */
socklen_t cm_addrlen(const struct sockaddr *sa);
int cm_is_any(const struct sockaddr *sa);
int cm_is_loopback(const struct sockaddr *sa);
uint16_t cm_port(const struct sockaddr *sa);
void cm_set_port(struct sockaddr *sa, uint16_t port);
/* Fabric name of a listener on (addr, port). */
int cm_listen_name(const struct sockaddr *sa, uint16_t port, char *out, size_t len);
/* The same name, for connecting to it: the directory is not created. */
int cm_peer_listen_name(const struct sockaddr *sa, uint16_t port, char *out, size_t len);
/* Every local address of a family, for wildcard listens; returns count,
 * -1 (errno, logged) if the addresses cannot be listed. */
int cm_local_addrs(int family, struct sockaddr_storage *out, int max);
/* -1 with errno: ENETUNREACH, or why the interfaces cannot be listed. */
int cm_pick_source(const struct sockaddr *dst, struct sockaddr_storage *src);
struct ibv_pd *cm_default_pd(void);
/* -1 (ENETUNREACH, one line) if the interface of a local source address
 * is down or has no carrier: the device's link state as the CM sees it at
 * address and route resolution and connect. */
int cm_link_check(const struct sockaddr *src, const char *who);

/* cm_port.c: claim (address, port) in the RDMA TCP port space; port 0
 * picks a free port and writes it into sa. EADDRINUSE if taken. */
int cm_port_claim(struct cm_id *id, struct sockaddr *sa);
void cm_port_release(struct cm_id *id);
/* 0 if the caller may not bind the port (below 1024 without
 * CAP_NET_BIND_SERVICE), else 1. */
int cm_port_allowed(uint16_t port);
/* Fabric-wide lock around every check-then-create of port claims and
 * listener names (sr_lock held; never nested). */
void cm_names_lock(void);
void cm_names_unlock(void);
/* 1 unless connecting to the unix socket at path is refused (owner gone);
 * never blocks. */
int cm_sock_live(const char *path, int type);

/* cm_port_pool.c: released port-0 claims kept for the next port-0 claim
 * of the same address key, port space and namespace (sr_lock held).
 * put: 0 if kept (the caller leaves the claim in place); take: the port,
 * id->port_claim set, or 0; exit: every kept claim removed. */
int cm_pool_put(const struct cm_id *id, const char *key, unsigned long ns, uint16_t port);
int cm_pool_take(struct cm_id *id, const char *key, unsigned long ns);
void cm_pool_exit(void);

/* cm_exit.c: ids that own fabric names; their names go at exit.
 * sr_lock held. */
void cm_exit_track(struct cm_id *id);
void cm_exit_untrack(struct cm_id *id);

/* cm_conn.c */
void cm_conn_close(struct cm_id *id);
int cm_send(struct cm_id *id, struct cm_msg *m);
void cm_fill_msg(struct cm_msg *m, uint32_t type, const struct rdma_conn_param *p, uint32_t qpn);
void cm_listen_close(struct cm_id *id);
int cm_qp_to_init(struct cm_id *id);
/* Moves the id's QP (if any) to ERR. */
void cm_qp_error(struct cm_id *id);

/* cm_ud.c: RDMA_PS_UDP ids */
int cm_ud_init_qp_attr(struct rdma_cm_id *pub, struct ibv_qp_attr *a, int *mask);
int cm_ud_qp_ready(struct cm_id *id);
void cm_route_fill(struct rdma_cm_id *pub);
void cm_ud_name(const struct cm_id *id, char *name, size_t len);
void cm_ud_event_param(struct cm_id *id, struct rdma_ud_param *ud, const struct cm_msg *m,
                       const void *pdata);
int cm_ud_accept(struct cm_id *id, const struct rdma_conn_param *p);
void cm_ud_on_rep(struct cm_id *id, const struct cm_msg *m);

/* cm_id.c */
struct cm_id *cm_id_new(struct rdma_event_channel *ch, void *context, enum rdma_port_space ps,
                        enum ibv_qp_type type);
/* Handshake timeout (cm_timeout.c); sr_lock held. Armed when the REQ
 * goes out (active) and when the REP goes out (passive); disarmed when the
 * id leaves CM_CONNECTING / CM_ACCEPTING. */
/* Stops watching listener l's socket for a while (out of descriptors). */
void cm_listen_backoff(struct cm_id *l);
void cm_timeout_arm(struct cm_id *id);
void cm_timeout_disarm(struct cm_id *id);
#endif
