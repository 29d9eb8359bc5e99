/*
 * Unit tests of the datagram rsocket headers (stacks/rsocket/src/dgram/ds_wire.c).
 * Expected bytes were written by hand from librdmacm's ds_udp_header and
 * ds_header layouts (doc/rsocket-framework.md, "Datagram sockets"), not
 * produced by the code under test. Every malformed case must be refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "ds_wire.h"

static const uint8_t udp4_reply[16] = {
    0x55, 0x55, 0x55, 0x55, 4, 7, 16, 0,       /* tag, version, op reply, length */
    0x00, 0x12, 0x34, 0x56,                     /* qpn 0x123456, top byte 0 */
    192, 168, 21, 180,
};

static void test_udp_hdr_put4(void **state)
{
    (void)state;
    uint8_t p[32], ip[4] = { 192, 168, 21, 180 };
    assert_int_equal(ds_udp_hdr_put(p, AF_INET, DS_UDP_OP_REPLY, 0xAB123456u, ip), 16);
    assert_memory_equal(p, udp4_reply, 16);    /* the QPN's top byte is cleared */
}

static void test_udp_hdr_put6(void **state)
{
    (void)state;
    uint8_t p[32], ip[16];
    inet_pton(AF_INET6, "fd21::180", ip);
    assert_int_equal(ds_udp_hdr_put(p, AF_INET6, DS_UDP_OP_DATA, 7, ip), 28);
    const uint8_t head[12] = { 0x55, 0x55, 0x55, 0x55, 6, 0, 28, 0, 0, 0, 0, 7 };
    assert_memory_equal(p, head, 12);
    assert_memory_equal(p + 12, ip, 16);
}

static void test_udp_hdr_get_good(void **state)
{
    (void)state;
    struct ds_udp_info h;
    uint8_t d[20];
    memcpy(d, udp4_reply, 16);
    memcpy(d + 16, "data", 4);
    assert_int_equal(ds_udp_hdr_get(d, sizeof(d), AF_INET, &h), 0);
    assert_int_equal(h.version, 4);
    assert_int_equal(h.op, 7);
    assert_int_equal(h.len, 16);
    assert_int_equal(h.qpn, 0x123456);
}

static void test_udp_hdr_get_rejects(void **state)
{
    (void)state;
    struct ds_udp_info h;
    uint8_t d[40];
    memcpy(d, udp4_reply, 16);
    assert_int_equal(ds_udp_hdr_get(d, 15, AF_INET, &h), -1);           /* short */
    assert_int_equal(ds_udp_hdr_get(d, 16, AF_INET6, &h), -1);          /* family */
    d[0] = 0x54;
    assert_int_equal(ds_udp_hdr_get(d, 16, AF_INET, &h), -1);           /* tag */
    memcpy(d, udp4_reply, 16);
    d[4] = 5;
    assert_int_equal(ds_udp_hdr_get(d, 16, AF_INET, &h), -1);           /* version */
    d[4] = 4;
    d[6] = 28;
    assert_int_equal(ds_udp_hdr_get(d, 40, AF_INET, &h), -1);           /* length for v4 */
    d[4] = 6;
    assert_int_equal(ds_udp_hdr_get(d, 20, AF_INET6, &h), -1);          /* v6 header cut short */
    assert_int_equal(ds_udp_hdr_get(d, 28, AF_INET6, &h), 0);           /* the whole v6 one */
}

static void test_hdr_round_trip4(void **state)
{
    (void)state;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(7000) };
    inet_pton(AF_INET, "192.168.21.181", &a.sin_addr);
    uint8_t p[8];
    assert_int_equal(ds_hdr_put(p, (struct sockaddr *)&a), 8);
    const uint8_t want[8] = { 4, 8, 0x1b, 0x58, 192, 168, 21, 181 };
    assert_memory_equal(p, want, 8);
    struct sockaddr_storage src;
    size_t hl;
    assert_int_equal(ds_hdr_get(p, 8, AF_INET, &src, &hl), 0);
    assert_int_equal(hl, 8);
    assert_true(ds_addr_equal((struct sockaddr *)&src, (struct sockaddr *)&a));
}

static void test_hdr_round_trip6(void **state)
{
    (void)state;
    struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(7001),
                              .sin6_flowinfo = htonl(0x12345) };
    inet_pton(AF_INET6, "fd21::181", &a.sin6_addr);
    uint8_t p[24];
    assert_int_equal(ds_hdr_put(p, (struct sockaddr *)&a), 24);
    const uint8_t head[8] = { 6, 24, 0x1b, 0x59, 0x00, 0x01, 0x23, 0x45 };
    assert_memory_equal(p, head, 8);
    struct sockaddr_storage src;
    size_t hl;
    assert_int_equal(ds_hdr_get(p, 24, AF_INET6, &src, &hl), 0);
    assert_int_equal(hl, 24);
    assert_true(ds_addr_equal((struct sockaddr *)&src, (struct sockaddr *)&a));
    assert_int_equal(((struct sockaddr_in6 *)&src)->sin6_scope_id, 0);
}

static void test_hdr_rejects(void **state)
{
    (void)state;
    struct sockaddr_storage src;
    size_t hl;
    uint8_t v4[8] = { 4, 8, 0, 1, 10, 0, 0, 1 };
    uint8_t v6[24] = { 6, 24 };
    assert_int_equal(ds_hdr_get(v4, 7, AF_INET, &src, &hl), -1);        /* short */
    assert_int_equal(ds_hdr_get(v4, 8, AF_INET6, &src, &hl), -1);       /* family */
    v4[1] = 24;
    assert_int_equal(ds_hdr_get(v4, 8, AF_INET, &src, &hl), -1);        /* length */
    v4[0] = 5;
    v4[1] = 8;
    assert_int_equal(ds_hdr_get(v4, 8, AF_INET, &src, &hl), -1);        /* version */
    /* upstream's wrap: an 8..23-byte message with a v6 header */
    assert_int_equal(ds_hdr_get(v6, 8, AF_INET6, &src, &hl), -1);
    assert_int_equal(ds_hdr_get(v6, 23, AF_INET6, &src, &hl), -1);
    assert_int_equal(ds_hdr_get(v6, 24, AF_INET6, &src, &hl), 0);
}

static void test_addr_equal_hash(void **state)
{
    (void)state;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(1) }, b = a;
    a.sin_addr.s_addr = htonl(0x0a000001);
    b.sin_addr.s_addr = htonl(0x0a000001);
    memset(b.sin_zero, 0xff, sizeof(b.sin_zero));        /* padding does not count */
    assert_true(ds_addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
    assert_int_equal(ds_addr_hash((struct sockaddr *)&a), ds_addr_hash((struct sockaddr *)&b));
    b.sin_port = htons(2);
    assert_false(ds_addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_udp_hdr_put4),
        cmocka_unit_test(test_udp_hdr_put6),
        cmocka_unit_test(test_udp_hdr_get_good),
        cmocka_unit_test(test_udp_hdr_get_rejects),
        cmocka_unit_test(test_hdr_round_trip4),
        cmocka_unit_test(test_hdr_round_trip6),
        cmocka_unit_test(test_hdr_rejects),
        cmocka_unit_test(test_addr_equal_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
