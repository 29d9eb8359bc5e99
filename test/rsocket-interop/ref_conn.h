/*
 * ref_conn.h - one rsockets v1 connection of the reference peer, directly
 * on rdma_cm + libibverbs (no rsocket code). One connection per process,
 * single-threaded: no locking anywhere.
 */
#ifndef REF_CONN_H
#define REF_CONN_H

#include <netinet/in.h>
#include <rdma/rdma_cma.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ref_proto.h"

/* sizes of one connection (librdmacm defaults unless a scenario shrinks them) */
struct ref_sizes {
    uint16_t sq_size, rq_size;
    uint32_t sq_inline;
    uint32_t rbuf_size, sbuf_size;
    uint16_t iomap_size;        /* slots the peer may publish to us */
    bool claim_big_endian;      /* set the NET flag: the peer must swap SGLs */
};
void ref_sizes_default(struct ref_sizes *s);

/* bytes after the sbuf ring for control payloads that cannot go inline:
 * one 16-byte credit SGE per control slot, then one 24-byte iomap entry */
#define REF_CTRL_AREA 128
#define REF_CTRL_IOMAP_OFF 64

struct ref_rmsg { uint32_t len; };

/* protocol event counters, checked by scenarios */
struct ref_stats {
    uint64_t credit_sent_sgl, credit_sent_zero;   /* our updates */
    uint64_t credit_recv_sgl, credit_recv_zero;   /* peer's updates */
    uint64_t data_sent, data_recv, inline_sent;
    uint64_t keepalive_sent;
    uint64_t iomap_recv;                          /* IOMAP_SGL imms from the peer */
    uint64_t chunk_max;
};

struct ref_conn {
    struct ref_sizes sz;
    struct rdma_event_channel *cm_ch;
    struct rdma_cm_id *listen_id, *id;
    struct ibv_pd *pd;
    struct ibv_comp_channel *cq_ch;
    struct ibv_cq *cq;
    struct ibv_qp *qp;
    unsigned cq_events_unacked;

    uint8_t *rbuf, *sbuf, *target;          /* page-aligned, page-rounded */
    size_t target_len;
    struct ibv_mr *rbuf_mr, *sbuf_mr, *target_mr;

    /* what the peer told us (§1.2) */
    struct ref_sge remote_sgl;              /* its target-SGL array */
    struct ref_sge remote_iomap;            /* its iomap table (length = slots) */
    unsigned remote_sge;                    /* next entry we advertise into */
    bool peer_big_endian;
    struct ref_conn_data peer;              /* its 40 bytes, decoded */

    /* send side (§1.5) */
    uint16_t sseq_no, sseq_comp;
    int sqe_avail;
    uint16_t ctrl_seqno, ctrl_max_seqno;
    uint32_t sbuf_bytes_avail, sbuf_head;
    unsigned target_sge;                    /* our entry the next write goes to */

    /* receive side (§1.6, §1.7) */
    struct ref_rmsg *rmsg;                  /* rq_size + 1 slots */
    unsigned rmsg_head, rmsg_tail;
    uint32_t rbuf_offset, rbuf_bytes_avail, rbuf_free_offset;
    uint16_t rseq_no, rseq_comp;

    bool connected, readable, writable, disconnected, error;
    int pending_sends;                      /* posted and not completed */
    struct ref_stats st;
};

/* rs_conn_* return 0 or -1 after printing one line naming the step */
int ref_listen(struct ref_conn *c, const struct sockaddr *addr, socklen_t len);
int ref_accept(struct ref_conn *c, int timeout_ms);
int ref_connect(struct ref_conn *c, const struct sockaddr *addr, int timeout_ms);
void ref_destroy(struct ref_conn *c);   /* §1.8 rclose teardown, no rdma_disconnect */

/* target-table entries as the peer wrote them (in our announced order) */
void ref_target_sge(const struct ref_conn *c, unsigned idx, struct ref_sge *out);
void ref_target_sge_store(struct ref_conn *c, unsigned idx, const struct ref_sge *s);
bool ref_target_iomap(const struct ref_conn *c, unsigned idx, uint64_t *offset, struct ref_sge *sge);

/* encode an sge / iomap entry in the PEER's byte order */
void ref_put_sge_peer(const struct ref_conn *c, uint8_t *p, const struct ref_sge *s);

#endif
