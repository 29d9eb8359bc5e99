/*
 * test_rs_sendq.c - send-queue accounting (review F1): a completion gives
 * back exactly the budget its post took, so the data budget never grows
 * past sq_size - RS_QP_CTRL_SLOTS however much control traffic completes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rs_sendq.h"

#define SQ_SIZE 384
#define CTRL_SLOTS 4

static void test_ctrl_completions_return_ctrl_slots(void **state)
{
    (void)state;
    struct rs_sq_budget b = { SQ_SIZE - CTRL_SLOTS, CTRL_SLOTS };
    /* 1000 credit updates and control messages, each posted on a control
     * slot and completed: the data budget must not move */
    for (int i = 0; i < 1000; i++) {
        enum rs_op op = i % 2 ? RS_OP_SGL : RS_OP_CTRL;
        assert_true(rs_sq_op_is_ctrl(op));
        b.ctrl_avail--;
        rs_sq_complete(&b, op);
        assert_int_equal(b.ctrl_avail, CTRL_SLOTS);
        assert_int_equal(b.sqe_avail, SQ_SIZE - CTRL_SLOTS);
    }
}

static void test_data_completions_return_data_entries(void **state)
{
    (void)state;
    struct rs_sq_budget b = { SQ_SIZE - CTRL_SLOTS, CTRL_SLOTS };
    const enum rs_op data_ops[] = { RS_OP_DATA, RS_OP_WRITE, RS_OP_IOMAP_SGL };
    for (size_t i = 0; i < sizeof(data_ops) / sizeof(data_ops[0]); i++) {
        assert_false(rs_sq_op_is_ctrl(data_ops[i]));
        b.sqe_avail--;
        rs_sq_complete(&b, data_ops[i]);
        assert_int_equal(b.sqe_avail, SQ_SIZE - CTRL_SLOTS);
        assert_int_equal(b.ctrl_avail, CTRL_SLOTS);
    }
}

/* Full queue: every entry posted, then all completed in an interleaved
 * order; both budgets come back to their initial values, never above. */
static void test_full_queue_round_trip(void **state)
{
    (void)state;
    struct rs_sq_budget b = { SQ_SIZE - CTRL_SLOTS, CTRL_SLOTS };
    b.sqe_avail = 0;
    b.ctrl_avail = 0;
    for (int i = 0; i < SQ_SIZE; i++) {
        rs_sq_complete(&b, i < CTRL_SLOTS ? RS_OP_SGL : RS_OP_DATA);
        assert_true(b.sqe_avail <= SQ_SIZE - CTRL_SLOTS);
        assert_true(b.ctrl_avail <= CTRL_SLOTS);
    }
    assert_int_equal(b.sqe_avail, SQ_SIZE - CTRL_SLOTS);
    assert_int_equal(b.ctrl_avail, CTRL_SLOTS);
}

/* Review F10: after the peer closed, no failed write is an error,
 * whatever its status (a flushed one or a retry/remote error). */
static void test_failed_send_after_peer_closed_is_not_an_error(void **state)
{
    (void)state;
    for (int flushed = 0; flushed < 2; flushed++)
        for (int ka = 0; ka < 2; ka++)
            for (int sent = 0; sent < 2; sent++)
                assert_int_equal(rs_send_failure_verdict(flushed, ka, 1, sent), RS_SF_IGNORE);
    /* our own DISCONNECT flushed what was queued behind it */
    assert_int_equal(rs_send_failure_verdict(1, 0, 0, 1), RS_SF_IGNORE);
}

static void test_failed_send_while_connected_is_an_error(void **state)
{
    (void)state;
    assert_int_equal(rs_send_failure_verdict(0, 0, 0, 0), RS_SF_IO_ERROR);
    assert_int_equal(rs_send_failure_verdict(1, 0, 0, 0), RS_SF_IO_ERROR);
    assert_int_equal(rs_send_failure_verdict(0, 0, 0, 1), RS_SF_IO_ERROR);
    assert_int_equal(rs_send_failure_verdict(0, 1, 0, 0), RS_SF_KEEPALIVE_TIMEOUT);
}

/* ---- selective signalling: the tracker ---------------------------------- */

#define SBUF_SIZE 65536u
#define LOW_BYTES 2048u
#define DESC(op, val, bytes) ((uint64_t)(bytes) << 32 | (uint32_t)(op) << 29 | (val))

struct sq_model {
    struct rs_sq_track t;
    uint64_t rec[SQ_SIZE];
    struct rs_sq_budget b;
    uint32_t sbuf_avail;
};

static void model_init(struct sq_model *m)
{
    rs_sq_track_init(&m->t, m->rec, SQ_SIZE, SBUF_SIZE, LOW_BYTES);
    m->b = (struct rs_sq_budget){ SQ_SIZE - CTRL_SLOTS, CTRL_SLOTS };
    m->sbuf_avail = SBUF_SIZE;
}

/* Post as the engine does; returns the slot (wr_id) and whether signalled. */
static uint32_t model_post(struct sq_model *m, enum rs_op op, uint32_t val, uint32_t staged,
                           int *sig)
{
    int ctrl = rs_sq_op_is_ctrl(op);
    m->sbuf_avail -= staged;
    struct rs_sq_post p = { rs_sq_must_signal(op, val), staged,
                            m->b.sqe_avail - !ctrl, m->b.ctrl_avail - ctrl, m->sbuf_avail };
    *sig = rs_sq_need_signal(&m->t, &p);
    uint32_t slot = rs_sq_track_next_slot(&m->t);
    rs_sq_track_push(&m->t, DESC(op, val, staged), staged, *sig);
    if (ctrl)
        m->b.ctrl_avail--;
    else
        m->b.sqe_avail--;
    return slot;
}

/* A completion naming `slot`: release it and everything before it. */
static int model_complete(struct sq_model *m, uint64_t slot)
{
    int released = 0;
    if (!rs_sq_track_holds(&m->t, slot))
        return -1;
    for (uint32_t n = m->t.count; n > 0; n--) {
        uint32_t h = m->t.head;
        uint64_t d = rs_sq_track_pop(&m->t, (uint32_t)(m->t.rec[h] >> 32) & 0x7fffffff);
        rs_sq_complete(&m->b, (enum rs_op)((uint32_t)d >> 29));
        m->sbuf_avail += (uint32_t)(d >> 32) & 0x7fffffff;
        released++;
        if (h == slot)
            break;
    }
    return released;
}

/* Small inline data messages are mostly unsignalled; one signalled
 * completion gives back every entry posted before it. */
static void test_signalled_completion_releases_earlier_unsignalled(void **state)
{
    (void)state;
    struct sq_model m;
    int sig, nsig = 0;
    uint32_t last_sig = 0, posted = 0;
    model_init(&m);
    while (!nsig) {
        uint32_t slot = model_post(&m, RS_OP_DATA, 64, 0, &sig);
        posted++;
        if (sig) {
            nsig++;
            last_sig = slot;
        }
    }
    assert_true(posted > 1);                /* not every WR signalled */
    assert_true(posted <= SQ_SIZE / 4);     /* ... but often enough */
    assert_int_equal(m.t.sig_outstanding, 1);
    assert_int_equal(model_complete(&m, last_sig), (int)posted);
    assert_int_equal(m.b.sqe_avail, SQ_SIZE - CTRL_SLOTS);
    assert_int_equal(m.t.count, 0);
    assert_int_equal(m.t.sig_outstanding, 0);
}

/* WRs the engine waits for are always signalled. */
static void test_awaited_wrs_are_signalled(void **state)
{
    (void)state;
    struct sq_model m;
    int sig;
    model_init(&m);
    model_post(&m, RS_OP_SGL, 0, 0, &sig);          /* credit only */
    assert_false(sig);
    model_post(&m, RS_OP_CTRL, RS_CTRL_DISCONNECT, 0, &sig);
    assert_true(sig);
    model_post(&m, RS_OP_CTRL, RS_CTRL_KEEPALIVE, 0, &sig);
    assert_true(sig);
    /* the last control slot: its completion must come back */
    model_post(&m, RS_OP_SGL, 0, 0, &sig);
    assert_true(sig);
    model_init(&m);
    model_post(&m, RS_OP_SGL, RS_SGL_ADVERTISES, 0, &sig);
    assert_true(sig);
}

/* Whatever the traffic, a WR that empties a budget (or leaves the ring
 * below what a sender waits for) is signalled, so a sender blocked on it
 * always gets it back: never a budget at zero with no completion coming. */
static void test_no_budget_runs_out_without_a_completion_coming(void **state)
{
    (void)state;
    struct sq_model m;
    int sig;
    uint32_t seed = 12345;
    model_init(&m);
    for (int i = 0; i < 200000; i++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t r = seed >> 16;
        int can_ctrl = m.b.ctrl_avail > 0;
        int can_data = m.b.sqe_avail > 0 && m.sbuf_avail >= LOW_BYTES;
        if (r % 7 == 0 && can_ctrl) {
            model_post(&m, r % 2 ? RS_OP_SGL : RS_OP_CTRL, r % 2 ? 0 : RS_CTRL_SHUTDOWN, 0, &sig);
        } else if (can_data) {
            uint32_t len = r % 3 ? 64 : 1 + r % m.sbuf_avail;
            model_post(&m, RS_OP_DATA, len, len > 64 ? len : 0, &sig);
        }
        int blocked = !can_ctrl || !can_data;
        if (blocked || r % 5 == 0) {
            /* the device completes the oldest signalled WR, if any */
            assert_true(!blocked || m.t.sig_outstanding > 0);
            for (uint32_t k = 0, h = m.t.head; k < m.t.count; k++, h = (h + 1) % SQ_SIZE)
                if (m.rec[h] & RS_SQ_REC_SIGNALED) {
                    assert_true(model_complete(&m, h) > 0);
                    break;
                }
        }
        assert_true(m.t.count <= SQ_SIZE);
        assert_true(m.t.tail_run < SQ_SIZE / 4);
    }
}

/* After a QP error every WR completes, unsignalled ones included, each
 * naming its own slot: the budgets come back whole. */
static void test_error_completions_release_everything(void **state)
{
    (void)state;
    struct sq_model m;
    int sig;
    uint32_t slots[40];
    model_init(&m);
    for (int i = 0; i < 40; i++)
        slots[i] = model_post(&m, i % 10 == 3 ? RS_OP_SGL : RS_OP_DATA, 64, i % 2 ? 4096 : 0, &sig);
    /* the first 5 succeeded silently, the 6th failed, the rest flushed */
    for (int i = 5; i < 40; i++)
        assert_true(model_complete(&m, slots[i]) >= 1);
    assert_int_equal(m.t.count, 0);
    assert_int_equal(m.t.sig_outstanding, 0);
    assert_int_equal(m.t.tail_run, 0);
    assert_int_equal(m.t.tail_bytes, 0);
    assert_int_equal(m.b.sqe_avail, SQ_SIZE - CTRL_SLOTS);
    assert_int_equal(m.b.ctrl_avail, CTRL_SLOTS);
    assert_int_equal(m.sbuf_avail, SBUF_SIZE);
    /* a slot that holds nothing is refused, not released */
    assert_int_equal(model_complete(&m, slots[0]), -1);
    assert_int_equal(model_complete(&m, SQ_SIZE + 7), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctrl_completions_return_ctrl_slots),
        cmocka_unit_test(test_data_completions_return_data_entries),
        cmocka_unit_test(test_full_queue_round_trip),
        cmocka_unit_test(test_failed_send_after_peer_closed_is_not_an_error),
        cmocka_unit_test(test_failed_send_while_connected_is_an_error),
        cmocka_unit_test(test_signalled_completion_releases_earlier_unsignalled),
        cmocka_unit_test(test_awaited_wrs_are_signalled),
        cmocka_unit_test(test_no_budget_runs_out_without_a_completion_coming),
        cmocka_unit_test(test_error_completions_release_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
