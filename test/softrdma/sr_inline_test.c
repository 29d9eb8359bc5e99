/* Tests of the softrdma device's large inline sends: an RC QP grants 64 KiB
 * of inline data; a send that can go at post time goes straight from the
 * caller's buffers into the peer (directly, no staging copy); one that must
 * wait (no receive posted: RNR on the stream) keeps its own copy, so the
 * caller may reuse its buffers at once in both cases. Every transfer's data
 * is checked with a pattern that does not repeat within 64 KiB, after the
 * source was overwritten right after ibv_post_send returned. Built against
 * Debian's libibverbs; run with LD_LIBRARY_PATH=release/lib64/softrdma. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "sr_test_pair.h"

#define INL_MAX 65536
static const int ALL = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;

/* The device's counters of WRs delivered directly and by stream. */
static void stats(uint64_t *direct, uint64_t *stream)
{
    void (*f)(uint64_t *, uint64_t *) = (void (*)(uint64_t *, uint64_t *))dlsym(RTLD_DEFAULT, "sr_stats");
    assert_non_null(f);     /* the softrdma device is the libibverbs loaded */
    f(direct, stream);
}

/* A pattern whose bytes depend on the position (no 256-byte period, so a
 * shifted or repeated block shows). */
static void pattern(char *b, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t x = (uint32_t)i * 2654435761u + seed * 40503u;
        b[i] = (char)(x >> 24 ^ x >> 11);
    }
}

/* One inline WR of len bytes gathered from nsge pieces of src (their
 * sizes split the length as evenly as they can); lkey 0 (not looked at). */
static int post_inline(struct side *s, enum ibv_wr_opcode op, uint64_t id, const char *src,
                       uint32_t len, int nsge, uint64_t raddr, uint32_t rkey)
{
    struct ibv_sge g[4];
    uint32_t off = 0;
    for (int i = 0; i < nsge; i++) {
        uint32_t k = i == nsge - 1 ? len - off : len / (uint32_t)nsge;
        g[i] = (struct ibv_sge){ (uintptr_t)src + off, k, 0 };
        off += k;
    }
    struct ibv_send_wr wr = { .wr_id = id, .sg_list = g, .num_sge = len ? nsge : 0, .opcode = op,
                              .send_flags = IBV_SEND_INLINE, .imm_data = htonl(7) }, *bad;
    wr.wr.rdma.remote_addr = raddr;
    wr.wr.rdma.rkey = rkey;
    return ibv_post_send(s->qp, &wr, &bad);
}

static struct ibv_cq *cq_new(struct pair *p)
{
    struct ibv_cq *cq = ibv_create_cq(p->ctx, 16, NULL, NULL, 0);
    assert_non_null(cq);
    return cq;
}

/* What an RC QP grants whatever it asked for: 64 KiB; more is refused.
 * UD keeps its 512 B limit. */
static void test_caps(void **st)
{
    (void)st;
    struct pair *p = pair_open();
    struct ibv_cq *cq = cq_new(p);
    struct ibv_qp_init_attr a = { .send_cq = cq, .recv_cq = cq, .qp_type = IBV_QPT_RC,
                                  .cap = { .max_send_wr = 4, .max_recv_wr = 4, .max_send_sge = 1,
                                           .max_recv_sge = 1, .max_inline_data = 0 } };
    struct ibv_qp *qp = ibv_create_qp(p->pd, &a);
    assert_non_null(qp);
    assert_int_equal(a.cap.max_inline_data, INL_MAX);
    struct ibv_qp_attr qa;
    struct ibv_qp_init_attr qi;
    assert_int_equal(ibv_query_qp(qp, &qa, IBV_QP_CAP, &qi), 0);
    assert_int_equal(qi.cap.max_inline_data, INL_MAX);
    assert_int_equal(ibv_destroy_qp(qp), 0);
    a.cap.max_inline_data = INL_MAX + 1;
    errno = 0;
    assert_null(ibv_create_qp(p->pd, &a));
    assert_int_equal(errno, EINVAL);
    a.qp_type = IBV_QPT_UD;
    a.cap.max_inline_data = 513;
    errno = 0;
    assert_null(ibv_create_qp(p->pd, &a));
    assert_int_equal(errno, EINVAL);
    a.cap.max_inline_data = 0;
    assert_non_null(qp = ibv_create_qp(p->pd, &a));
    assert_int_equal(a.cap.max_inline_data, 64);
    assert_int_equal(ibv_destroy_qp(qp), 0);
    ibv_destroy_cq(cq);
    ibv_dealloc_pd(p->pd);
    ibv_close_device(p->ctx);
    free(p);
}

static const uint32_t sizes[] = { 1, 63, 64, 511, 512, 513, 4096, 40000, 65535, 65536 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* Inline SENDs and WRITEs of every size up to the limit, from an
 * unregistered buffer overwritten as soon as the post returns: all go
 * directly (none by stream) and land intact. One byte over the limit is
 * refused. */
static void test_direct_from_caller(void **st)
{
    (void)st;
    struct pair *p = pair_new(64, 1, 7, ALL);
    char *src = malloc(INL_MAX + 1), *want = malloc(INL_MAX);
    struct ibv_wc wc;
    uint64_t d0, s0, d1, s1;
    stats(&d0, &s0);
    for (unsigned i = 0; i < 2 * NSIZES; i++) {
        uint32_t len = sizes[i % NSIZES];
        int write = i >= NSIZES, nsge = 1 + (int)(i % 4);
        pattern(want, len, i + 1);
        memcpy(src, want, len);
        memset(p->b.buf, 0, BUF);
        if (!write)
            post_recv(&p->b, i, 1, 0, BUF);
        assert_int_equal(post_inline(&p->a, write ? IBV_WR_RDMA_WRITE : IBV_WR_SEND, i, src, len, nsge,
                                     (uintptr_t)p->b.buf, p->b.mr->rkey), 0);
        memset(src, 0xEE, len);     /* the caller's to reuse at once */
        assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
        assert_int_equal(wc.status, IBV_WC_SUCCESS);
        assert_int_equal(wc.wr_id, i);
        if (!write) {
            assert_int_equal(poll_n(p->b.rcq, &wc, 1, DEADLINE_MS), 1);
            assert_int_equal(wc.status, IBV_WC_SUCCESS);
            assert_int_equal(wc.byte_len, len);
        }
        assert_memory_equal(p->b.buf, want, len);
    }
    stats(&d1, &s1);
    assert_int_equal(d1 - d0, 2 * NSIZES);
    assert_int_equal(s1 - s0, 0);
    assert_int_not_equal(post_inline(&p->a, IBV_WR_RDMA_WRITE, 99, src, INL_MAX + 1, 1,
                                     (uintptr_t)p->b.buf, p->b.mr->rkey), 0);
    assert_int_equal(poll_n(p->a.scq, &wc, 1, 20), 0);
    free(src);
    free(want);
    pair_free(p);
}

/* SENDs posted while the peer has no receive: the first goes the stream's
 * way (RNR: the peer's device holds it and stops reading), the others
 * queue behind it until the stream's socket is full, and then wait in the
 * send queue. Each keeps its own copy (the source is overwritten after
 * every post); as receives come, one at a time, they arrive in order and
 * intact. NWAIT sends of mostly 64 KiB (about 6 MiB) overfill the socket
 * (the device asks for a 4 MiB send buffer): without its own copy, a
 * send still queued would carry the overwritten bytes. */
#define NWAIT 120
static uint32_t wait_len(unsigned i)
{
    return i % 4 == 3 ? sizes[NSIZES - 1 - (i / 4) % NSIZES] : INL_MAX;
}

/* A side whose send queue holds NWAIT WRs (sr_test_pair's hold 64). */
static void side_deep(struct pair *p, struct side *s)
{
    s->scq = ibv_create_cq(p->ctx, 2 * NWAIT, NULL, NULL, 0);
    s->rcq = ibv_create_cq(p->ctx, 2 * NWAIT, NULL, NULL, 0);
    assert_non_null(s->scq);
    assert_non_null(s->rcq);
    struct ibv_qp_init_attr a = {
        .send_cq = s->scq, .recv_cq = s->rcq, .qp_type = IBV_QPT_RC, .sq_sig_all = 1,
        .cap = { .max_send_wr = NWAIT, .max_recv_wr = NWAIT, .max_send_sge = 4, .max_recv_sge = 1 },
    };
    assert_non_null(s->qp = ibv_create_qp(p->pd, &a));
    s->buf = calloc(1, BUF);
    assert_non_null(s->mr = ibv_reg_mr(p->pd, s->buf, BUF, ALL));
}

static void test_waiting_keeps_copy(void **st)
{
    (void)st;
    struct pair *p = pair_open();
    side_deep(p, &p->a);
    side_deep(p, &p->b);
    qp_connect(p->a.qp, p->b.qp->qp_num, 7);
    qp_connect(p->b.qp, p->a.qp->qp_num, 7);
    char *src = malloc(INL_MAX), *want = malloc(INL_MAX);
    struct ibv_wc wc;
    uint64_t d0, s0, d1, s1;
    stats(&d0, &s0);
    for (unsigned i = 0; i < NWAIT; i++) {
        uint32_t len = wait_len(i);
        pattern(src, len, 100 + i);
        assert_int_equal(post_inline(&p->a, IBV_WR_SEND, i, src, len, 1 + (int)(i % 3), 0, 0), 0);
        memset(src, 0xEE, len);
    }
    assert_int_equal(poll_n(p->a.scq, &wc, 1, 50), 0);     /* no receive: nothing done */
    for (unsigned i = 0; i < NWAIT; i++) {
        uint32_t len = wait_len(i);
        memset(p->b.buf, 0, BUF);
        post_recv(&p->b, i, 1, 0, BUF);
        assert_int_equal(poll_n(p->b.rcq, &wc, 1, DEADLINE_MS), 1);
        assert_int_equal(wc.status, IBV_WC_SUCCESS);
        assert_int_equal(wc.byte_len, len);
        pattern(want, len, 100 + i);
        assert_memory_equal(p->b.buf, want, len);
    }
    for (unsigned i = 0; i < NWAIT; i++) {      /* every send completes, in order */
        assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
        assert_int_equal(wc.status, IBV_WC_SUCCESS);
        assert_int_equal(wc.wr_id, i);
    }
    stats(&d1, &s1);
    assert_true(s1 - s0 >= 1);      /* the first went the stream's way */
    free(src);
    free(want);
    pair_free(p);
}

/* Large inline SENDs waiting for a receive are flushed when the QP goes
 * to ERR, and a reset QP starts with an empty queue. Their copies are
 * freed exactly once on the way (flush, reset, destroy: the sanitizer
 * build, label engine, reports a double free or a leak). */
static void test_waiting_flushed(void **st)
{
    (void)st;
    struct pair *p = pair_new(64, 1, 7, ALL);
    char *src = malloc(INL_MAX);
    struct ibv_wc wc;
    pattern(src, INL_MAX, 5);
    for (int i = 0; i < 4; i++)
        assert_int_equal(post_inline(&p->a, IBV_WR_SEND, i, src, INL_MAX - (uint32_t)i, 1, 0, 0), 0);
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };
    assert_int_equal(ibv_modify_qp(p->a.qp, &a, IBV_QP_STATE), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
        assert_int_equal(wc.status, IBV_WC_WR_FLUSH_ERR);
        assert_int_equal(wc.wr_id, (uint64_t)i);
    }
    /* queued again in ERR, then dropped by a reset */
    assert_int_equal(post_inline(&p->a, IBV_WR_SEND, 9, src, INL_MAX, 1, 0, 0), 0);
    assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_WR_FLUSH_ERR);
    a.qp_state = IBV_QPS_RESET;
    assert_int_equal(ibv_modify_qp(p->a.qp, &a, IBV_QP_STATE), 0);
    free(src);
    pair_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_direct_from_caller),
        cmocka_unit_test(test_waiting_keeps_copy),
        cmocka_unit_test(test_waiting_flushed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
