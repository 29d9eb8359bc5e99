/*
 * rs_wire.h - the rsockets protocol version 1 on the wire, as pure data:
 * connection private data, immediate data, SGL/iomap entries, the u16
 * sequence arithmetic and the receiver's verdict on each completion.
 * No verbs here, so every rule is unit-testable with byte vectors.
 */
#ifndef RS_WIRE_H
#define RS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define RS_WIRE_VERSION      1
#define RS_CONN_DATA_LEN     40
#define RS_CONN_FLAG_NET     0x01   /* sender host is big-endian */
#define RS_CONN_FLAG_IOMAP   0x02   /* byte 7 carries the scaled iomap size */
#define RS_SGL_SIZE          2      /* entries in a target SGL */
#define RS_SGE_WIRE_LEN      16     /* u64 addr, u32 key, u32 length */
#define RS_IOMAP_WIRE_LEN    24     /* u64 offset, then an SGE */
#define RS_MAX_TRANSFER      65536  /* largest single data write */
#define RS_IMM_VALUE_MASK    0x1FFFFFFFu

/* Immediate-data operations (op = top 3 bits). */
enum rs_op {
    RS_OP_DATA = 0,
    RS_OP_RSVD_DATA_MORE = 1,
    RS_OP_WRITE = 2,             /* local wr_id tag only, never on the wire */
    RS_OP_RSVD_DRA_MORE = 3,
    RS_OP_SGL = 4,               /* credit update (absolute u16 limit) */
    RS_OP_RSVD = 5,
    RS_OP_IOMAP_SGL = 6,
    RS_OP_CTRL = 7,
};

enum rs_ctrl {
    RS_CTRL_DISCONNECT = 0,
    RS_CTRL_KEEPALIVE = 1,
    RS_CTRL_SHUTDOWN = 2,
};

/* One SGE as exchanged by the protocol (host-order view). */
struct rs_wire_sge {
    uint64_t addr;
    uint32_t key;
    uint32_t length;
};

/* Decoded rs_conn_data. */
struct rs_conn_info {
    uint8_t version;
    uint8_t flags;
    uint16_t credits;            /* sender's rq_size */
    uint16_t iomap_size;         /* decoded target_iomap_size */
    struct rs_wire_sge target_sgl;
    struct rs_wire_sge data_buf;
};

/* ---- private data ---------------------------------------------------- */
uint8_t rs_wire_scale_iomap(uint16_t entries);
uint16_t rs_wire_unscale_iomap(uint8_t scaled);
void rs_wire_encode_conn(const struct rs_conn_info *ci, uint8_t out[RS_CONN_DATA_LEN]);
/* 0, or -1 with errno EPROTO (short/garbage) or ENOTSUP (version != 1).
 * *why names the problem for the one-line diagnostic. */
int rs_wire_decode_conn(const void *buf, size_t len, struct rs_conn_info *out,
                        const char **why);
int rs_wire_host_is_be(void);

/* ---- SGEs and iomap entries in a given byte order -------------------- */
void rs_wire_encode_sge(const struct rs_wire_sge *sge, int big_endian,
                        uint8_t out[RS_SGE_WIRE_LEN]);
void rs_wire_decode_sge(const uint8_t in[RS_SGE_WIRE_LEN], int big_endian,
                        struct rs_wire_sge *sge);
void rs_wire_encode_iomap(uint64_t offset, const struct rs_wire_sge *sge,
                          int big_endian, uint8_t out[RS_IOMAP_WIRE_LEN]);
void rs_wire_decode_iomap(const uint8_t in[RS_IOMAP_WIRE_LEN], int big_endian,
                          uint64_t *offset, struct rs_wire_sge *sge);

/* ---- immediate data -------------------------------------------------- */
/* Returns the value to store in ibv_send_wr.imm_data (network order). */
uint32_t rs_wire_imm(enum rs_op op, uint32_t value);
/* From ibv_wc.imm_data (network order). */
enum rs_op rs_wire_imm_op(uint32_t imm_be);
uint32_t rs_wire_imm_value(uint32_t imm_be);

/* ---- u16 sequence arithmetic ----------------------------------------- */
static inline int16_t rs_seq_diff(uint16_t a, uint16_t b)
{
    return (int16_t)(uint16_t)(a - b);
}
/* Sender may post another data write while sseq_no != sseq_comp. */
static inline int rs_seq_has_credit(uint16_t sseq_no, uint16_t sseq_comp)
{
    return sseq_no != sseq_comp;
}
/* Credits available to a sender (0 .. 65535). */
static inline uint16_t rs_seq_credits(uint16_t sseq_no, uint16_t sseq_comp)
{
    return (uint16_t)(sseq_comp - sseq_no);
}

/* ---- receiver verdict ------------------------------------------------ */
enum rs_rx_kind {
    RS_RX_DATA,         /* len bytes queued at the read position */
    RS_RX_CREDIT,       /* new send limit in `limit` */
    RS_RX_IGNORE,       /* keepalive */
    RS_RX_IOMAP,        /* iomap update: nothing to queue, but it took a credit */
    RS_RX_SHUTDOWN,     /* peer stops sending */
    RS_RX_DISCONNECT,   /* peer closed */
    RS_RX_BAD,          /* protocol violation: close with EPROTO */
};

/* What the receiver knows when judging one completion. */
struct rs_rx_limits {
    uint32_t rx_window;      /* bytes advertised to the peer, not yet filled */
    uint32_t rmsg_free;      /* free slots in the data-message ring */
    uint16_t sseq_no;        /* our send sequence */
    uint16_t sseq_comp;      /* our current send limit */
    uint16_t peer_rq_size;   /* the most credits the peer may grant */
};

struct rs_rx_verdict {
    enum rs_rx_kind kind;
    uint32_t len;            /* RS_RX_DATA */
    uint16_t limit;          /* RS_RX_CREDIT */
    const char *why;         /* RS_RX_BAD */
};

void rs_wire_classify(uint32_t imm_be, const struct rs_rx_limits *lim,
                      struct rs_rx_verdict *out);

#endif /* RS_WIRE_H */
