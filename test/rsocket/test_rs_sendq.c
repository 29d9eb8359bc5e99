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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctrl_completions_return_ctrl_slots),
        cmocka_unit_test(test_data_completions_return_data_entries),
        cmocka_unit_test(test_full_queue_round_trip),
        cmocka_unit_test(test_failed_send_after_peer_closed_is_not_an_error),
        cmocka_unit_test(test_failed_send_while_connected_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
