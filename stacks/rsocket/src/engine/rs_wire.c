/*
 * rs_wire.c - encoders and decoders for the rsockets v1 wire format.
 * Byte layouts are written out field by field (no packed structs) so the
 * code states the format and does not depend on the compiler's layout.
 */
#include "rs_wire.h"

#define RS_CONN_MAX_HALF 0x80000000u   /* 2 GiB */

#include <endian.h>
#include <errno.h>
#include <string.h>

int rs_wire_host_is_be(void)
{
    return __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;
}

static void put_u16_be(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }
static uint16_t get_u16_be(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void put_u32(uint8_t *p, uint32_t v, int be)
{
    for (int i = 0; i < 4; i++)
        p[be ? i : 3 - i] = (uint8_t)(v >> (24 - 8 * i));
}

static uint32_t get_u32(const uint8_t *p, int be)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | p[be ? i : 3 - i];
    return v;
}

static void put_u64(uint8_t *p, uint64_t v, int be)
{
    for (int i = 0; i < 8; i++)
        p[be ? i : 7 - i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_u64(const uint8_t *p, int be)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[be ? i : 7 - i];
    return v;
}

/* Values up to 128 travel as-is; larger ones as 0x80 | (v >> 8). */
uint8_t rs_wire_scale_iomap(uint16_t entries)
{
    if (entries <= 0x80)
        return (uint8_t)entries;
    return (uint8_t)(0x80 | (entries >> 8));
}

uint16_t rs_wire_unscale_iomap(uint8_t scaled)
{
    /* 0x80 itself is the value 128 sent as-is (librdmacm rounds any
     * size of 128..255 to it), not 0 << 8 */
    if (scaled <= 0x80)
        return scaled;
    return (uint16_t)((scaled & 0x7f) << 8);
}

void rs_wire_encode_sge(const struct rs_wire_sge *sge, int big_endian,
                        uint8_t out[RS_SGE_WIRE_LEN])
{
    put_u64(out, sge->addr, big_endian);
    put_u32(out + 8, sge->key, big_endian);
    put_u32(out + 12, sge->length, big_endian);
}

void rs_wire_decode_sge(const uint8_t in[RS_SGE_WIRE_LEN], int big_endian,
                        struct rs_wire_sge *sge)
{
    sge->addr = get_u64(in, big_endian);
    sge->key = get_u32(in + 8, big_endian);
    sge->length = get_u32(in + 12, big_endian);
}

void rs_wire_encode_iomap(uint64_t offset, const struct rs_wire_sge *sge,
                          int big_endian, uint8_t out[RS_IOMAP_WIRE_LEN])
{
    put_u64(out, offset, big_endian);
    rs_wire_encode_sge(sge, big_endian, out + 8);
}

void rs_wire_decode_iomap(const uint8_t in[RS_IOMAP_WIRE_LEN], int big_endian,
                          uint64_t *offset, struct rs_wire_sge *sge)
{
    *offset = get_u64(in, big_endian);
    rs_wire_decode_sge(in + 8, big_endian, sge);
}

void rs_wire_encode_conn(const struct rs_conn_info *ci, uint8_t out[RS_CONN_DATA_LEN])
{
    memset(out, 0, RS_CONN_DATA_LEN);
    out[0] = ci->version;
    out[1] = ci->flags;
    put_u16_be(out + 2, ci->credits);
    out[7] = rs_wire_scale_iomap(ci->iomap_size);
    rs_wire_encode_sge(&ci->target_sgl, 1, out + 8);
    rs_wire_encode_sge(&ci->data_buf, 1, out + 24);
}

static int conn_fail(int err, const char **why, const char *text)
{
    if (why)
        *why = text;
    errno = err;
    return -1;
}

int rs_wire_decode_conn(const void *buf, size_t len, struct rs_conn_info *out,
                        const char **why)
{
    const uint8_t *p = buf;

    if (!p || len < RS_CONN_DATA_LEN)
        return conn_fail(EPROTO, why, "private data shorter than 40 bytes");
    if (p[0] != RS_WIRE_VERSION)
        return conn_fail(ENOTSUP, why, "protocol version is not 1");
    out->version = p[0];
    out->flags = p[1];
    out->credits = get_u16_be(p + 2);
    out->iomap_size = (p[1] & RS_CONN_FLAG_IOMAP) ? rs_wire_unscale_iomap(p[7]) : 0;
    rs_wire_decode_sge(p + 8, 1, &out->target_sgl);
    rs_wire_decode_sge(p + 24, 1, &out->data_buf);
    if (out->credits == 0)
        return conn_fail(EPROTO, why, "zero credits");
    if (out->target_sgl.length == 0 || out->target_sgl.length > 0xffff)
        return conn_fail(EPROTO, why, "target SGL entry count out of range");
    /* Half of the peer's receive buffer: a plain 32-bit length, not tied
     * to the 29-bit immediate (a data message is at most 64 KiB anyway).
     * Bounded by 2 GiB so that it fits every int and ssize_t it meets. */
    if (out->data_buf.length == 0 || out->data_buf.length > RS_CONN_MAX_HALF)
        return conn_fail(EPROTO, why, "first receive buffer length out of range");
    return 0;
}

uint32_t rs_wire_imm(enum rs_op op, uint32_t value)
{
    return htobe32((uint32_t)op << 29 | (value & RS_IMM_VALUE_MASK));
}

enum rs_op rs_wire_imm_op(uint32_t imm_be)
{
    return (enum rs_op)(be32toh(imm_be) >> 29);
}

uint32_t rs_wire_imm_value(uint32_t imm_be)
{
    return be32toh(imm_be) & RS_IMM_VALUE_MASK;
}

static void verdict_bad(struct rs_rx_verdict *out, const char *why)
{
    out->kind = RS_RX_BAD;
    out->why = why;
}

static void classify_data(uint32_t len, const struct rs_rx_limits *lim,
                          struct rs_rx_verdict *out)
{
    if (len == 0)
        return verdict_bad(out, "zero-length data message");
    if (len > RS_MAX_TRANSFER)   /* a sender never crosses a 64 KiB half */
        return verdict_bad(out, "data message larger than 64 KiB");
    if (len > lim->rx_window)
        return verdict_bad(out, "data length past the advertised buffer");
    if (lim->rmsg_free == 0)
        return verdict_bad(out, "data message beyond the granted credits");
    out->kind = RS_RX_DATA;
    out->len = len;
}

/* A credit limit never moves backwards and never grants more than the
 * peer's receive queue holds beyond what we have already sent. */
static void classify_credit(uint32_t value, const struct rs_rx_limits *lim,
                            struct rs_rx_verdict *out)
{
    uint16_t limit = (uint16_t)value;

    if (rs_seq_diff(limit, lim->sseq_comp) < 0)
        return verdict_bad(out, "credit limit moved backwards");
    if (rs_seq_diff(limit, lim->sseq_no) > (int)lim->peer_rq_size)
        return verdict_bad(out, "credits beyond the peer's window");
    out->kind = RS_RX_CREDIT;
    out->limit = limit;
}

static void classify_ctrl(uint32_t value, struct rs_rx_verdict *out)
{
    switch (value) {
    case RS_CTRL_DISCONNECT: out->kind = RS_RX_DISCONNECT; return;
    case RS_CTRL_KEEPALIVE:  out->kind = RS_RX_IGNORE; return;
    case RS_CTRL_SHUTDOWN:   out->kind = RS_RX_SHUTDOWN; return;
    default:                 verdict_bad(out, "unknown control message");
    }
}

void rs_wire_classify(uint32_t imm_be, const struct rs_rx_limits *lim,
                      struct rs_rx_verdict *out)
{
    uint32_t value = rs_wire_imm_value(imm_be);

    memset(out, 0, sizeof(*out));
    switch (rs_wire_imm_op(imm_be)) {
    case RS_OP_DATA:      return classify_data(value, lim, out);
    case RS_OP_SGL:       return classify_credit(value, lim, out);
    case RS_OP_IOMAP_SGL: out->kind = RS_RX_IOMAP; return;
    case RS_OP_CTRL:      return classify_ctrl(value, out);
    default:              return verdict_bad(out, "unknown operation in immediate data");
    }
}
