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

/*
 * What a failed send completion means (review F10). Once the peer has
 * closed (its DISCONNECT or the CM's DISCONNECTED was seen), a write still
 * in flight may fail with any status: a peer that destroyed its QP makes
 * it fail with a retry or remote-access error on hardware, and with the
 * software device as well. That is the end of the connection the peer
 * asked for, not an error: queued data and then EOF must still be read.
 * FLUSH_ERR after our own DISCONNECT is our QP being torn down.
 */
enum rs_send_failure {
    RS_SF_IGNORE,                /* the connection ended normally */
    RS_SF_KEEPALIVE_TIMEOUT,     /* the probe found no peer: ETIMEDOUT */
    RS_SF_IO_ERROR,              /* anything else: EIO */
};

static inline enum rs_send_failure rs_send_failure_verdict(int flushed, int keepalive,
                                                           int peer_gone, int disconnect_sent)
{
    if (peer_gone || (flushed && disconnect_sent))
        return RS_SF_IGNORE;
    return keepalive ? RS_SF_KEEPALIVE_TIMEOUT : RS_SF_IO_ERROR;
}

#endif /* RS_SENDQ_H */
