/*
 * rs_sendq.h - send-queue accounting as pure data (unit-tested without a
 * device). The send queue is split into RS_QP_CTRL_SLOTS entries for
 * control traffic (credit/SGL updates, DISCONNECT, SHUTDOWN, keepalive)
 * and sq_size - RS_QP_CTRL_SLOTS for data and iomap writes. A completion
 * gives back exactly the budget its post took: on a real HCA the entry is
 * reclaimed only when its completion is polled, so counting a control
 * completion as a data entry would let the engine overrun the queue.
 */
#ifndef RS_SENDQ_H
#define RS_SENDQ_H

#include <stdint.h>

#include "rs_wire.h"

struct rs_sq_budget {
    uint32_t sqe_avail;          /* data/iomap entries free */
    uint32_t ctrl_avail;         /* control entries free */
};

/* Control traffic is tagged RS_OP_SGL or RS_OP_CTRL in its wr_id. */
static inline int rs_sq_op_is_ctrl(enum rs_op op)
{
    return op == RS_OP_SGL || op == RS_OP_CTRL;
}

/* A send completion (success or error) returns its entry. */
static inline void rs_sq_complete(struct rs_sq_budget *b, enum rs_op op)
{
    if (rs_sq_op_is_ctrl(op))
        b->ctrl_avail++;
    else
        b->sqe_avail++;
}

#endif /* RS_SENDQ_H */
