/* Wire formats between two software NICs (device threads).
 * A QP's outbound stream (AF_UNIX SOCK_STREAM, opened by the requester)
 * carries requests; the responder answers on the same stream, in order. */
#ifndef SR_WIRE_H
#define SR_WIRE_H
#include <stdint.h>

enum sr_req_op {
    SR_OP_SEND = 1, SR_OP_SEND_IMM, SR_OP_WRITE, SR_OP_WRITE_IMM, SR_OP_READ,
};

/* SR_RESP_ATTACH comes first on a stream, if at all: len bytes of struct
 * sr_attach, with the responder's segment memfd and, if its QP's recv CQ
 * has a channel, that channel's eventfd (SCM_RIGHTS on its first byte).
 * The requester keeps that copy in a bounded cache (sr_peerch.c) and,
 * once it is evicted (or did not arrive: at EMFILE only the memfd may),
 * fetches the eventfd again by (ch_id, ch_fd) with pidfd_getfd. */
enum sr_resp_type { SR_RESP_ACK = 1, SR_RESP_NAK, SR_RESP_READ, SR_RESP_ATTACH };

/* The same attach data also rides in the connection manager's REQ and REP
 * (softrdma/cm): a QP connected through rdma_cm then reaches its peer
 * directly from RTR on, with no stream opened (sr_fast_preattach). */

struct sr_attach {
    int32_t pid;            /* the responder process (process_vm_*) */
    uint32_t gen;           /* its QP block's generation */
    uint64_t qp_off;        /* its QP block in the segment */
    uint32_t has_evfd;
    uint32_t ch_id;         /* that channel, unique in the responder process */
    int32_t ch_fd;          /* its eventfd's number there (pidfd_getfd) */
    int32_t seg_fd;         /* its segment memfd's number there (pidfd_getfd,
                             * when the attach comes with rdma_cm's REQ/REP) */
    uint64_t token_addr;    /* where the responder sees its segment's token */
};

/* First bytes on a fresh stream: which QP the requester wants. */
struct sr_hello {
    uint32_t magic;
    uint32_t dst_qpn;
    uint32_t src_qpn;
    uint8_t has_dgid;       /* 1: the responder checks dgid is one of its GIDs */
    uint8_t pad[3];
    uint8_t dgid[16];       /* destination GID the requester was given at RTR */
    uint32_t gen;           /* 0, or the generation of the QP block the
                             * requester attached to before: a stream
                             * reopened after an idle close reaches only
                             * that incarnation of the QP (a reset breaks
                             * the link, as when streams stayed open) */
};
#define SR_HELLO_MAGIC 0x53524831u

struct sr_req_hdr {
    uint8_t op;
    uint8_t rnr_retry;      /* requester's QP attributes (set at RTS): */
    uint8_t retry_cnt;      /* transport retries, and the local ACK */
    uint8_t timeout;        /* timeout (4.096 us << timeout, 0 = infinite) */
    uint32_t imm;           /* network order, as posted */
    uint32_t len;           /* payload bytes (request length for READ) */
    uint32_t rkey;
    uint64_t raddr;
};

struct sr_resp_hdr {
    uint8_t type;
    uint8_t status;         /* enum ibv_wc_status for NAK */
    uint16_t count;         /* ACK: requests it acknowledges (coalesced), >= 1 */
    uint32_t len;           /* payload bytes following (READ) */
};
#endif
