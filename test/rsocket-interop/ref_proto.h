/*
 * ref_proto.h - rsockets protocol v1 constants and the 40-byte connection
 * data, as read (clean room) from /work/shared/reference/rsocket.md §1.
 * Nothing here comes from the engine's sources: this is the second,
 * independent reading the interop tests compare the engine against.
 */
#ifndef REF_PROTO_H
#define REF_PROTO_H

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* §1.4: imm = htobe32(op << 29 | value), value in the low 29 bits */
enum ref_op {
    REF_OP_DATA = 0,
    REF_OP_RSVD_DATA_MORE = 1,
    REF_OP_WRITE = 2,          /* local riowrite tag, never on the wire */
    REF_OP_RSVD_DRA_MORE = 3,
    REF_OP_SGL = 4,            /* credit update: absolute sequence limit */
    REF_OP_RSVD = 5,
    REF_OP_IOMAP_SGL = 6,      /* value = iomap index written */
    REF_OP_CTRL = 7,
};
enum ref_ctrl { REF_CTRL_DISCONNECT = 0, REF_CTRL_KEEPALIVE = 1, REF_CTRL_SHUTDOWN = 2 };

#define REF_IMM_VALUE_MASK 0x1FFFFFFFu
static inline uint32_t ref_imm(enum ref_op op, uint32_t value)
{
    return htobe32(((uint32_t)op << 29) | (value & REF_IMM_VALUE_MASK));
}
static inline enum ref_op ref_imm_op(uint32_t imm_be) { return (enum ref_op)(be32toh(imm_be) >> 29); }
static inline uint32_t ref_imm_value(uint32_t imm_be) { return be32toh(imm_be) & REF_IMM_VALUE_MASK; }

#define REF_PROTO_VERSION 1
#define REF_FLAG_NET 0x01        /* sender host is big-endian */
#define REF_FLAG_IOMAP 0x02      /* byte 7 (iomap size) is valid */
#define REF_SGL_SIZE 2           /* entries of the target SGL */
#define REF_QP_CTRL_SIZE 4       /* send queue entries kept for control */
#define REF_SNDLOWAT 2048        /* least free sbuf before a data send */
#define REF_OLAP_START_SIZE 2048 /* first chunk of a send, doubling ... */
#define REF_MAX_TRANSFER 65536   /* ... up to this */
#define REF_CONN_DATA_LEN 40
#define REF_SGE_WIRE_LEN 16      /* u64 addr, u32 key, u32 length */
#define REF_IOMAP_WIRE_LEN 24    /* u64 offset, then an sge */

struct ref_sge {
    uint64_t addr;
    uint32_t key;
    uint32_t length;
};

/* §1.2, decoded; every multi-byte field travels big-endian */
struct ref_conn_data {
    uint8_t version;
    uint8_t flags;
    uint16_t credits;
    uint16_t iomap_size;        /* decoded from the scaled byte 7 */
    struct ref_sge target_sgl;  /* length = entry count */
    struct ref_sge data_buf;    /* first receive half-buffer */
};

static inline uint8_t ref_iomap_size_encode(uint16_t n)
{
    return n <= 128 ? (uint8_t)n : (uint8_t)(0x80 | (n >> 8));
}
static inline uint16_t ref_iomap_size_decode(uint8_t b)
{
    /* values up to 128 travel as they are; larger ones as 0x80 | (n >> 8) */
    return b <= 128 ? b : (uint16_t)((b & 0x7f) << 8);
}

static inline void ref_put_sge_be(uint8_t *p, const struct ref_sge *s)
{
    uint64_t a = htobe64(s->addr);
    uint32_t k = htobe32(s->key), l = htobe32(s->length);
    memcpy(p, &a, 8); memcpy(p + 8, &k, 4); memcpy(p + 12, &l, 4);
}
static inline void ref_get_sge_be(const uint8_t *p, struct ref_sge *s)
{
    uint64_t a; uint32_t k, l;
    memcpy(&a, p, 8); memcpy(&k, p + 8, 4); memcpy(&l, p + 12, 4);
    s->addr = be64toh(a); s->key = be32toh(k); s->length = be32toh(l);
}

static inline void ref_conn_data_encode(uint8_t out[REF_CONN_DATA_LEN], const struct ref_conn_data *d)
{
    uint16_t c = htobe16(d->credits);
    memset(out, 0, REF_CONN_DATA_LEN);
    out[0] = d->version;
    out[1] = d->flags;
    memcpy(out + 2, &c, 2);
    out[7] = ref_iomap_size_encode(d->iomap_size);
    ref_put_sge_be(out + 8, &d->target_sgl);
    ref_put_sge_be(out + 24, &d->data_buf);
}

static inline void ref_conn_data_decode(const uint8_t in[REF_CONN_DATA_LEN], struct ref_conn_data *d)
{
    uint16_t c;
    d->version = in[0];
    d->flags = in[1];
    memcpy(&c, in + 2, 2);
    d->credits = be16toh(c);
    d->iomap_size = (d->flags & REF_FLAG_IOMAP) ? ref_iomap_size_decode(in[7]) : 0;
    ref_get_sge_be(in + 8, &d->target_sgl);
    ref_get_sge_be(in + 24, &d->data_buf);
}

#endif
