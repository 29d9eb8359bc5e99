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

/*
 * Selective signalling (local only, nothing changes on the wire). The QP
 * is created with sq_sig_all = 0 and a send WR asks for a completion only
 * when the engine needs one: a completion per message would wake a thread
 * that waits for the peer's reply, not for its own send. RC completes in
 * order, so a signalled completion also completes every unsignalled WR
 * posted before it; after a QP error every outstanding WR, signalled or
 * not, completes (with an error or FLUSH_ERR status). The tracker below
 * keeps, per send-queue entry in posting order, the resources its WR holds
 * (its rs_wrid() descriptor: budget class, staging bytes, keepalive flag)
 * and hands them back when a completion covers the entry.
 *
 * The WR's wr_id is its tracker slot; bit 63 of a record marks it as
 * signalled (descriptors never use it: it is RS_WRID_RECV's bit).
 */
#define RS_SQ_REC_SIGNALED (1ull << 63)

struct rs_sq_track {
    uint64_t *rec;               /* [size]: descriptor | RS_SQ_REC_SIGNALED */
    uint32_t size, head, count;  /* ring of outstanding WRs, oldest at head */
    uint32_t sig_outstanding;    /* signalled WRs among them */
    uint32_t tail_run;           /* unsignalled WRs after the last signalled */
    uint32_t tail_bytes;         /* staging bytes those hold */
    uint32_t sig_every;          /* most WRs in a row without a signal */
    uint32_t sig_bytes;          /* most staging bytes held unsignalled */
    uint32_t low_bytes;          /* staging space a sender waits for */
};

static inline void rs_sq_track_init(struct rs_sq_track *t, uint64_t *rec, uint32_t size,
                                    uint32_t sbuf_size, uint32_t low_bytes)
{
    *t = (struct rs_sq_track){ .rec = rec, .size = size, .low_bytes = low_bytes };
    t->sig_every = size / 4 ? size / 4 : 1;
    t->sig_bytes = sbuf_size / 4 ? sbuf_size / 4 : 1;
}

/* The value of an RS_OP_SGL descriptor whose write advertises a receive
 * buffer (a credit-only update uses 0). The accept path waits for the
 * first one's completion before it hands the socket out. */
#define RS_SGL_ADVERTISES 1u

/* WRs whose completion the engine waits for: DISCONNECT (close drains
 * until it completes), the keepalive probe (its completion answers it),
 * and buffer advertisements. */
static inline int rs_sq_must_signal(enum rs_op op, uint32_t value)
{
    if (op == RS_OP_CTRL)
        return value == RS_CTRL_DISCONNECT || value == RS_CTRL_KEEPALIVE;
    return op == RS_OP_SGL && value == RS_SGL_ADVERTISES;
}

/* What the budgets will be once the WR is posted, and what it holds. */
struct rs_sq_post {
    int must;                    /* the engine waits for this WR's completion */
    uint32_t staged;             /* staging bytes it holds until completion */
    uint32_t sqe_after, ctrl_after, sbuf_after;
};

/*
 * Whether the next WR must be signalled. Besides the WRs the engine waits
 * for, the one that empties a budget (or leaves the staging ring below
 * what a sender waits for) is signalled: whoever then blocks on that
 * budget is sure to get it back, with everything posted before. The run
 * and byte limits return resources early enough that a streaming sender
 * rarely blocks on them at all.
 */
static inline int rs_sq_need_signal(const struct rs_sq_track *t, const struct rs_sq_post *p)
{
    return p->must || t->tail_run + 1 >= t->sig_every ||
           t->tail_bytes + p->staged >= t->sig_bytes ||
           p->sqe_after == 0 || p->ctrl_after == 0 || p->sbuf_after < t->low_bytes;
}

/* Slot the next WR will take (its wr_id); the ring has room whenever the
 * budgets allowed the post (they never exceed the send queue). */
static inline uint32_t rs_sq_track_next_slot(const struct rs_sq_track *t)
{
    return (t->head + t->count) % t->size;
}

/* Record a WR that was posted into the next slot. */
static inline void rs_sq_track_push(struct rs_sq_track *t, uint64_t desc, uint32_t staged,
                                    int signaled)
{
    t->rec[rs_sq_track_next_slot(t)] = desc | (signaled ? RS_SQ_REC_SIGNALED : 0);
    t->count++;
    if (signaled) {
        t->sig_outstanding++;
        t->tail_run = t->tail_bytes = 0;
    } else {
        t->tail_run++;
        t->tail_bytes += staged;
    }
}

/* Whether a completion's slot names an outstanding WR. */
static inline int rs_sq_track_holds(const struct rs_sq_track *t, uint64_t slot)
{
    return slot < t->size && (slot + t->size - t->head) % t->size < t->count;
}

/* Take the oldest outstanding WR's record; `staged` is the staging bytes
 * it held (for the tail counters). Only when count > 0. */
static inline uint64_t rs_sq_track_pop(struct rs_sq_track *t, uint32_t staged)
{
    uint64_t r = t->rec[t->head];
    t->head = (t->head + 1) % t->size;
    t->count--;
    if (r & RS_SQ_REC_SIGNALED) {
        t->sig_outstanding--;
    } else if (t->sig_outstanding == 0) {
        /* an error completion reached the unsignalled tail */
        t->tail_run--;
        t->tail_bytes -= staged;
    }
    return r & ~RS_SQ_REC_SIGNALED;
}

#endif /* RS_SENDQ_H */
