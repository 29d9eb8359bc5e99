/*
 * Unit tests of the rsockets v1 wire encodings. Every expected byte vector
 * below was written by hand from the protocol description (private data
 * layout, immediate encoding op<<29|value in network order, SGE = u64 addr,
 * u32 key, u32 length), not produced by the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "rs_ring.h"
#include "rs_wire.h"

static const struct rs_conn_info sample_conn = {
    .version = 1,
    .flags = RS_CONN_FLAG_IOMAP,
    .credits = 384,
    .iomap_size = 0,
    .target_sgl = { .addr = 0x00007f1122334000ull, .key = 0x11223344, .length = 2 },
    .data_buf = { .addr = 0x00007f5566770000ull, .key = 0xa0b0c0d0, .length = 65536 },
};

static const uint8_t sample_conn_bytes[40] = {
    0x01, 0x02, 0x01, 0x80, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x7f, 0x11, 0x22, 0x33, 0x40, 0x00,   /* target_sgl.addr */
    0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x02,   /* key, length */
    0x00, 0x00, 0x7f, 0x55, 0x66, 0x77, 0x00, 0x00,   /* data_buf.addr */
    0xa0, 0xb0, 0xc0, 0xd0, 0x00, 0x01, 0x00, 0x00,   /* key, length */
};

static void test_conn_encode(void **state)
{
    (void)state;
    uint8_t out[40];
    memset(out, 0xee, sizeof(out));
    rs_wire_encode_conn(&sample_conn, out);
    assert_memory_equal(out, sample_conn_bytes, 40);
}

static void test_conn_decode(void **state)
{
    (void)state;
    struct rs_conn_info ci;
    assert_int_equal(rs_wire_decode_conn(sample_conn_bytes, 40, &ci, NULL), 0);
    assert_int_equal(ci.version, 1);
    assert_int_equal(ci.flags, 2);
    assert_int_equal(ci.credits, 384);
    assert_true(ci.target_sgl.addr == 0x00007f1122334000ull);
    assert_int_equal(ci.target_sgl.key, 0x11223344);
    assert_int_equal(ci.target_sgl.length, 2);
    assert_true(ci.data_buf.addr == 0x00007f5566770000ull);
    assert_int_equal(ci.data_buf.key, 0xa0b0c0d0);
    assert_int_equal(ci.data_buf.length, 65536);
}

static void test_conn_iomap_scaling(void **state)
{
    (void)state;
    assert_int_equal(rs_wire_scale_iomap(0), 0x00);
    assert_int_equal(rs_wire_scale_iomap(1), 0x01);
    assert_int_equal(rs_wire_scale_iomap(128), 0x80);
    assert_int_equal(rs_wire_scale_iomap(256), 0x81);
    assert_int_equal(rs_wire_scale_iomap(0x1200), 0x92);
    assert_int_equal(rs_wire_unscale_iomap(0x01), 1);
    assert_int_equal(rs_wire_unscale_iomap(0x7f), 127);
    /* 0x80 is 128 as-is (librdmacm sends it for any size of 128..255) */
    assert_int_equal(rs_wire_unscale_iomap(0x80), 128);
    assert_int_equal(rs_wire_unscale_iomap(rs_wire_scale_iomap(128)), 128);
    assert_int_equal(rs_wire_unscale_iomap(rs_wire_scale_iomap(200)), 128);
    assert_int_equal(rs_wire_unscale_iomap(0x81), 256);
    assert_int_equal(rs_wire_unscale_iomap(0x92), 0x1200);

    struct rs_conn_info ci = sample_conn, back;
    uint8_t out[40];
    ci.iomap_size = 512;
    rs_wire_encode_conn(&ci, out);
    assert_int_equal(out[7], 0x82);
    assert_int_equal(rs_wire_decode_conn(out, 40, &back, NULL), 0);
    assert_int_equal(back.iomap_size, 512);
    /* Without the IOMAP flag byte 7 is the old reserved field: ignored. */
    out[1] = 0;
    assert_int_equal(rs_wire_decode_conn(out, 40, &back, NULL), 0);
    assert_int_equal(back.iomap_size, 0);
}

static void test_conn_reject_bad(void **state)
{
    (void)state;
    struct rs_conn_info ci;
    uint8_t buf[40];
    const char *why = NULL;

    assert_int_equal(rs_wire_decode_conn(sample_conn_bytes, 39, &ci, &why), -1);
    assert_int_equal(errno, EPROTO);
    assert_non_null(why);
    assert_int_equal(rs_wire_decode_conn(NULL, 0, &ci, &why), -1);
    assert_int_equal(errno, EPROTO);

    memcpy(buf, sample_conn_bytes, 40);
    buf[0] = 2;
    assert_int_equal(rs_wire_decode_conn(buf, 40, &ci, &why), -1);
    assert_int_equal(errno, ENOTSUP);
    buf[0] = 0;
    assert_int_equal(rs_wire_decode_conn(buf, 40, &ci, &why), -1);
    assert_int_equal(errno, ENOTSUP);

    memcpy(buf, sample_conn_bytes, 40);
    buf[2] = buf[3] = 0;                        /* zero credits */
    assert_int_equal(rs_wire_decode_conn(buf, 40, &ci, &why), -1);
    assert_int_equal(errno, EPROTO);

    memcpy(buf, sample_conn_bytes, 40);
    memset(buf + 20, 0, 4);                     /* SGL with 0 entries */
    assert_int_equal(rs_wire_decode_conn(buf, 40, &ci, &why), -1);
    assert_int_equal(errno, EPROTO);

    memcpy(buf, sample_conn_bytes, 40);
    memset(buf + 36, 0, 4);                     /* empty first buffer */
    assert_int_equal(rs_wire_decode_conn(buf, 40, &ci, &why), -1);
    assert_int_equal(errno, EPROTO);

    memset(buf, 0xff, 40);                      /* garbage */
    assert_int_equal(rs_wire_decode_conn(buf, 40, &ci, &why), -1);

    /* review F7: a peer with a 1 GiB receive buffer advertises 512 MiB */
    memcpy(buf, sample_conn_bytes, 40);
    const uint8_t half_512m[4] = { 0x20, 0x00, 0x00, 0x00 };
    memcpy(buf + 36, half_512m, 4);
    assert_int_equal(rs_wire_decode_conn(buf, 40, &ci, &why), 0);
    assert_int_equal(ci.data_buf.length, 0x20000000u);
    const uint8_t half_too_big[4] = { 0x80, 0x00, 0x00, 0x01 };
    memcpy(buf + 36, half_too_big, 4);
    assert_int_equal(rs_wire_decode_conn(buf, 40, &ci, &why), -1);
    assert_int_equal(errno, EPROTO);
}

static void test_sge_both_orders(void **state)
{
    (void)state;
    const struct rs_wire_sge sge = { .addr = 0x0102030405060708ull,
                                     .key = 0x090a0b0c, .length = 0x00008000 };
    const uint8_t le[16] = { 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
                             0x0c, 0x0b, 0x0a, 0x09, 0x00, 0x80, 0x00, 0x00 };
    const uint8_t be[16] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                             0x09, 0x0a, 0x0b, 0x0c, 0x00, 0x00, 0x80, 0x00 };
    uint8_t out[16];
    struct rs_wire_sge back;

    rs_wire_encode_sge(&sge, 0, out);
    assert_memory_equal(out, le, 16);
    rs_wire_encode_sge(&sge, 1, out);
    assert_memory_equal(out, be, 16);
    rs_wire_decode_sge(le, 0, &back);
    assert_memory_equal(&back, &sge, sizeof(sge));
    rs_wire_decode_sge(be, 1, &back);
    assert_true(back.addr == sge.addr && back.key == sge.key && back.length == sge.length);
}

static void test_iomap_entry(void **state)
{
    (void)state;
    const struct rs_wire_sge sge = { .addr = 0x1000, .key = 7, .length = 4096 };
    const uint8_t le[24] = { 0x00, 0x20, 0, 0, 0, 0, 0, 0,          /* offset 0x2000 */
                             0x00, 0x10, 0, 0, 0, 0, 0, 0,          /* addr 0x1000 */
                             0x07, 0, 0, 0, 0x00, 0x10, 0x00, 0x00 };
    uint8_t out[24];
    uint64_t off;
    struct rs_wire_sge back;

    rs_wire_encode_iomap(0x2000, &sge, 0, out);
    assert_memory_equal(out, le, 24);
    rs_wire_decode_iomap(le, 0, &off, &back);
    assert_true(off == 0x2000 && back.addr == 0x1000 && back.key == 7 && back.length == 4096);
}

/* imm_data as it sits in memory (network order), compared byte by byte. */
static void assert_imm_bytes(uint32_t imm_be, uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3)
{
    const uint8_t want[4] = { b0, b1, b2, b3 };
    assert_memory_equal(&imm_be, want, 4);
}

static void test_imm_every_op(void **state)
{
    (void)state;
    assert_imm_bytes(rs_wire_imm(RS_OP_DATA, 0x400), 0x00, 0x00, 0x04, 0x00);
    assert_imm_bytes(rs_wire_imm(RS_OP_DATA, 65536), 0x00, 0x01, 0x00, 0x00);
    assert_imm_bytes(rs_wire_imm(RS_OP_SGL, 0x180), 0x80, 0x00, 0x01, 0x80);
    assert_imm_bytes(rs_wire_imm(RS_OP_IOMAP_SGL, 0), 0xc0, 0x00, 0x00, 0x00);
    assert_imm_bytes(rs_wire_imm(RS_OP_IOMAP_SGL, 3), 0xc0, 0x00, 0x00, 0x03);
    assert_imm_bytes(rs_wire_imm(RS_OP_CTRL, RS_CTRL_DISCONNECT), 0xe0, 0, 0, 0);
    assert_imm_bytes(rs_wire_imm(RS_OP_CTRL, RS_CTRL_KEEPALIVE), 0xe0, 0, 0, 1);
    assert_imm_bytes(rs_wire_imm(RS_OP_CTRL, RS_CTRL_SHUTDOWN), 0xe0, 0, 0, 2);
    /* values are truncated to 29 bits and never leak into the op */
    assert_imm_bytes(rs_wire_imm(RS_OP_DATA, 0xffffffff), 0x1f, 0xff, 0xff, 0xff);

    uint32_t imm = htonl(0x80000180);
    assert_int_equal(rs_wire_imm_op(imm), RS_OP_SGL);
    assert_int_equal(rs_wire_imm_value(imm), 0x180);
    imm = htonl(0xe0000002);
    assert_int_equal(rs_wire_imm_op(imm), RS_OP_CTRL);
    assert_int_equal(rs_wire_imm_value(imm), 2);
}

static const struct rs_rx_limits base_limits = {
    .rx_window = 65536, .rmsg_free = 10, .sseq_no = 100, .sseq_comp = 110,
    .peer_rq_size = 384,
};

static struct rs_rx_verdict classify_raw(uint32_t imm_host, const struct rs_rx_limits *lim)
{
    struct rs_rx_verdict v;
    rs_wire_classify(htonl(imm_host), lim, &v);
    return v;
}

static void test_dispatch_good(void **state)
{
    (void)state;
    struct rs_rx_verdict v;

    v = classify_raw(0x00000400, &base_limits);
    assert_int_equal(v.kind, RS_RX_DATA);
    assert_int_equal(v.len, 1024);
    v = classify_raw(0x00010000, &base_limits);          /* exactly the window */
    assert_int_equal(v.kind, RS_RX_DATA);
    v = classify_raw(0x80000000 | 200, &base_limits);
    assert_int_equal(v.kind, RS_RX_CREDIT);
    assert_int_equal(v.limit, 200);
    v = classify_raw(0x80000000 | 110, &base_limits);     /* same limit again */
    assert_int_equal(v.kind, RS_RX_CREDIT);
    /* limits use only the low 16 bits: rseq_no + rq_size may exceed 0xffff */
    struct rs_rx_limits wrap = base_limits;
    wrap.sseq_no = 0xfff0; wrap.sseq_comp = 0xfff8;
    v = classify_raw(0x80000000 | 0x10010, &wrap);
    assert_int_equal(v.kind, RS_RX_CREDIT);
    assert_int_equal(v.limit, 0x0010);
    assert_int_equal(classify_raw(0xc0000001, &base_limits).kind, RS_RX_IOMAP);
    assert_int_equal(classify_raw(0xe0000000, &base_limits).kind, RS_RX_DISCONNECT);
    assert_int_equal(classify_raw(0xe0000001, &base_limits).kind, RS_RX_IGNORE);
    assert_int_equal(classify_raw(0xe0000002, &base_limits).kind, RS_RX_SHUTDOWN);
}

static void test_dispatch_rejects(void **state)
{
    (void)state;
    struct rs_rx_limits lim = base_limits;
    struct rs_rx_verdict v;

    for (uint32_t op = 1; op <= 5; op += (op == 3 ? 2 : 1)) {   /* 1, 2, 3, 5 */
        v = classify_raw(op << 29 | 16, &lim);
        assert_int_equal(v.kind, RS_RX_BAD);
        assert_non_null(v.why);
    }
    assert_int_equal(classify_raw(0xe0000003, &lim).kind, RS_RX_BAD);
    assert_int_equal(classify_raw(0x00010001, &lim).kind, RS_RX_BAD);   /* past buffer */
    lim.rx_window = 131072;                    /* both halves advertised */
    v = classify_raw(100000, &lim);            /* fits, but > one 64 KiB write */
    assert_int_equal(v.kind, RS_RX_BAD);
    assert_string_equal(v.why, "data message larger than 64 KiB");
    lim.rx_window = 1000;
    v = classify_raw(1001, &lim);
    assert_string_equal(v.why, "data length past the advertised buffer");
    lim = base_limits;
    assert_int_equal(classify_raw(0x00000000, &lim).kind, RS_RX_BAD);   /* empty data */
    lim.rmsg_free = 0;
    assert_int_equal(classify_raw(0x00000010, &lim).kind, RS_RX_BAD);   /* no slot */
    lim = base_limits;
    assert_int_equal(classify_raw(0x80000000 | 109, &lim).kind, RS_RX_BAD); /* backwards */
    assert_int_equal(classify_raw(0x80000000 | (100 + 385), &lim).kind, RS_RX_BAD);
    assert_int_equal(classify_raw(0x80000000 | (100 + 384), &lim).kind, RS_RX_CREDIT);
}

static void test_seq_wrap(void **state)
{
    (void)state;
    assert_true(rs_seq_has_credit(0xffff, 0x0003));
    assert_false(rs_seq_has_credit(0x0003, 0x0003));
    assert_int_equal(rs_seq_credits(0xfffe, 0x0002), 4);
    assert_int_equal(rs_seq_credits(10, 10), 0);
    assert_int_equal(rs_seq_diff(0x0001, 0xffff), 2);
    assert_int_equal(rs_seq_diff(0xffff, 0x0001), -2);
    assert_true(rs_seq_diff(0x8000, 0x0000) < 0);   /* half range is "behind" */
    /* the receiver's update rule: (s16)(rseq_no - rseq_comp) >= 0 */
    assert_true(rs_seq_diff(0x0000, 0xffc0) > 0);
}

static void test_ring_arith(void **state)
{
    (void)state;
    assert_int_equal(rs_ring_advance(0, 100, 4096), 100);
    assert_int_equal(rs_ring_advance(4000, 96, 4096), 0);
    assert_int_equal(rs_ring_advance(4000, 200, 4096), 104);
    assert_int_equal(rs_ring_first_part(4000, 200, 4096), 96);
    assert_int_equal(rs_ring_first_part(10, 200, 4096), 200);
    assert_int_equal(rs_ring_count(3, 3, 8), 0);
    assert_int_equal(rs_ring_count(6, 2, 8), 4);
    assert_int_equal(rs_ring_count(0, 7, 8), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conn_encode),
        cmocka_unit_test(test_conn_decode),
        cmocka_unit_test(test_conn_iomap_scaling),
        cmocka_unit_test(test_conn_reject_bad),
        cmocka_unit_test(test_sge_both_orders),
        cmocka_unit_test(test_iomap_entry),
        cmocka_unit_test(test_imm_every_op),
        cmocka_unit_test(test_dispatch_good),
        cmocka_unit_test(test_dispatch_rejects),
        cmocka_unit_test(test_seq_wrap),
        cmocka_unit_test(test_ring_arith),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
