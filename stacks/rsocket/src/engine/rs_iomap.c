/*
 * rs_iomap.c - zero-copy direct writes (riomap / riounmap / riowrite).
 * A mapping registers the caller's buffer, takes a slot of the peer's
 * iomap table and is published by the next send (IOMAP_SGL, one credit).
 * riowrite looks the offset up in our own table, filled by the peer.
 *
 * riounmap revokes: rsockets has no message for it (a librdmacm peer keeps
 * writing into the stale entry, and its writes then fail with a remote
 * access error that ends the connection), so the entry is overwritten
 * with a zero-length one through the same IOMAP_SGL path. A peer - this
 * engine or librdmacm - finds no mapping there and refuses the riowrite
 * (EINVAL) instead. Posted at once when a credit is free, else by the
 * next send; RC order makes it land before anything sent after it.
 */
#include "rs_sock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define RS_IOMAP_LOCAL_MAX 64

struct rs_iomap_entry {
    void *buf;
    size_t len;
    uint64_t offset;
    struct ibv_mr *mr;
    int remote_idx;              /* -1: local only (PROT_NONE) */
    int pending;                 /* not yet published to the peer */
    /* A revocation (mr NULL, pending): the peer's slot remote_idx is
     * overwritten with a zero-length entry; the slot stays taken until
     * then, so a new mapping cannot be published before it. */
};

static int entry_in_use(const struct rs_iomap_entry *e)
{
    return e->mr || e->pending;
}

struct rs_iomap {
    struct rs_iomap_entry e[RS_IOMAP_LOCAL_MAX];
    int pending;                 /* entries with pending set: every send
                                  * checks it, the table is walked only
                                  * when it is not 0 */
};

static void set_pending(struct rs_iomap *m, struct rs_iomap_entry *e, int on)
{
    m->pending += on - e->pending;
    e->pending = on;
}

void rs_iomap_free(struct rsock *s)
{
    if (!s->iomap)
        return;
    for (int i = 0; i < RS_IOMAP_LOCAL_MAX; i++)
        if (s->iomap->e[i].mr)
            ibv_dereg_mr(s->iomap->e[i].mr);
    free(s->iomap);
    s->iomap = NULL;
}

static int remote_slot_free(struct rs_iomap *m, int idx)
{
    for (int i = 0; i < RS_IOMAP_LOCAL_MAX; i++)
        if (entry_in_use(&m->e[i]) && m->e[i].remote_idx == idx)
            return 0;
    return 1;
}

/* Publish pending entries while resources allow; returns how many remain. */
int rs_iomap_flush(struct rsock *s)
{
    int left = 0;
    if (!s->iomap || !s->iomap->pending)
        return 0;
    for (int i = 0; i < RS_IOMAP_LOCAL_MAX; i++) {
        struct rs_iomap_entry *e = &s->iomap->e[i];
        if (!e->pending)
            continue;
        if (!s->sqe_avail || !rs_seq_has_credit(s->sseq_no, s->sseq_comp) ||
            s->sbuf_bytes_avail < RS_IOMAP_WIRE_LEN) {
            left++;
            continue;
        }
        uint8_t wire[RS_IOMAP_WIRE_LEN];
        struct rs_wire_sge sge = { 0, 0, 0 };       /* a revocation */
        if (e->mr)
            sge = (struct rs_wire_sge){ (uintptr_t)e->buf, e->mr->rkey, (uint32_t)e->len };
        struct ibv_sge lsge[2];
        rs_wire_encode_iomap(e->offset, &sge, s->peer_be, wire);
        int n = rs_stage_copy(s, wire, RS_IOMAP_WIRE_LEN, lsge);
        uint64_t raddr = s->remote_iomap.addr + (uint64_t)RS_IOMAP_WIRE_LEN * e->remote_idx;
        if (rs_post_write(s, rs_wrid(RS_OP_IOMAP_SGL, (uint32_t)e->remote_idx, RS_IOMAP_WIRE_LEN),
                          rs_wire_imm(RS_OP_IOMAP_SGL, (uint32_t)e->remote_idx), 1,
                          lsge, n, RS_IOMAP_WIRE_LEN, raddr, s->remote_iomap.key))
            return -1;
        s->sseq_no++;
        s->sqe_avail--;
        set_pending(s->iomap, e, 0);
        if (!e->mr)
            memset(e, 0, sizeof(*e));           /* revoked: the slot is free */
    }
    return left;
}

/*
 * Publish every pending mapping before the caller's own traffic (ref: the
 * next rsend/rsendv/riowrite carries them), waiting for credits or send
 * slots until `deadline`. 0 when none is left, -1 with errno otherwise.
 */
int rs_iomap_publish(struct rsock *s, int64_t deadline)
{
    while (s->iomap && s->iomap->pending && s->state == RS_CONNECTED) {
        int left = rs_iomap_flush(s);
        if (left <= 0)
            return left;
        rs_progress(s, 0);
        if (rs_iomap_flush(s) > 0 && rs_wait_locked(s, deadline))
            return -1;
    }
    return 0;
}

static off_t iomap_add(struct rsock *s, void *buf, size_t len, int prot, off_t offset)
{
    struct rs_iomap_entry *e = NULL;
    int idx = -1;

    if (s->state != RS_CONNECTED || !buf || !len) {
        errno = EINVAL;
        return -1;
    }
    if (!s->iomap && !(s->iomap = calloc(1, sizeof(*s->iomap)))) {
        errno = ENOMEM;
        return -1;
    }
    for (int i = 0; i < RS_IOMAP_LOCAL_MAX && !e; i++)
        if (!entry_in_use(&s->iomap->e[i]))
            e = &s->iomap->e[i];
    if (prot == PROT_WRITE)
        for (uint32_t i = 0; i < s->remote_iomap.length && idx < 0; i++)
            if (remote_slot_free(s->iomap, (int)i))
                idx = (int)i;
    if (!e || (prot == PROT_WRITE && idx < 0)) {
        errno = ENOMEM;
        return -1;
    }
    int access = IBV_ACCESS_LOCAL_WRITE | (prot == PROT_WRITE ? IBV_ACCESS_REMOTE_WRITE : 0) |
                 (s->odp ? IBV_ACCESS_ON_DEMAND : 0);
    e->mr = ibv_reg_mr(s->id->pd, buf, len, access);
    if (!e->mr)
        return -1;
    e->buf = buf;
    e->len = len;
    e->offset = offset == -1 ? (uintptr_t)buf : (uint64_t)offset;
    e->remote_idx = idx;
    set_pending(s->iomap, e, prot == PROT_WRITE);
    return (off_t)e->offset;
}

off_t rs_e_iomap(struct rsock *s, void *buf, size_t len, int prot, int flags, off_t offset)
{
    (void)flags;
    if (prot != PROT_WRITE && prot != PROT_NONE) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    off_t r = rs_check_usable(s) ? -1 : iomap_add(s, buf, len, prot, offset);
    pthread_mutex_unlock(&s->lock);
    return r;
}

/* Forget a mapping; one the peer knows of is revoked (see the top). */
static void iomap_remove(struct rsock *s, struct rs_iomap_entry *e)
{
    int idx = e->remote_idx, published = idx >= 0 && !e->pending;
    uint64_t offset = e->offset;

    ibv_dereg_mr(e->mr);
    set_pending(s->iomap, e, 0);
    memset(e, 0, sizeof(*e));
    if (!published)
        return;
    e->remote_idx = idx;
    e->offset = offset;
    set_pending(s->iomap, e, 1);
    if (s->state == RS_CONNECTED && s->wr_open)
        rs_iomap_flush(s);          /* at once if a credit is free */
}

int rs_e_iounmap(struct rsock *s, void *buf, size_t len)
{
    int r = -1;
    pthread_mutex_lock(&s->lock);
    errno = EINVAL;
    for (int i = 0; s->iomap && i < RS_IOMAP_LOCAL_MAX; i++) {
        struct rs_iomap_entry *e = &s->iomap->e[i];
        if (e->mr && e->buf == buf && e->len == len) {
            iomap_remove(s, e);
            r = 0;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

/* Our table entry covering `offset`, written by the peer. */
static int find_target(struct rsock *s, uint64_t offset, struct rs_wire_sge *out,
                       uint64_t *base)
{
    const uint8_t *t = s->target + RS_SGL_SIZE * RS_SGE_WIRE_LEN;
    for (uint32_t i = 0; i < s->target_iomap_size; i++) {
        if (!rs_peer_len_set(t + i * RS_IOMAP_WIRE_LEN + 20))
            continue;
        rs_wire_decode_iomap(t + i * RS_IOMAP_WIRE_LEN, rs_wire_host_is_be(), base, out);
        if (out->length && offset >= *base && offset - *base < out->length)
            return 1;
    }
    return 0;
}

static ssize_t iowrite_locked(struct rsock *s, const uint8_t *buf, size_t count,
                              uint64_t offset, int flags)
{
    int64_t deadline = rs_deadline(&s->sndtimeo, s->nonblock || (flags & MSG_DONTWAIT));
    size_t done = 0;

    /* Our own mappings first, so the peer can answer into them. */
    if (rs_iomap_publish(s, deadline))
        return -1;
    while (done < count) {
        struct rs_wire_sge t;
        uint64_t base;
        if (s->state != RS_CONNECTED || !s->wr_open) {
            errno = s->state == RS_CONNECTED ? EPIPE : ECONNRESET;
            break;
        }
        if (!find_target(s, offset + done, &t, &base)) {
            errno = EINVAL;
            break;
        }
        if (!s->sqe_avail || s->sbuf_bytes_avail < RS_SNDLOWAT) {
            rs_progress(s, 0);
            if ((!s->sqe_avail || s->sbuf_bytes_avail < RS_SNDLOWAT) &&
                rs_wait_locked(s, deadline))
                break;
            continue;
        }
        uint64_t n = count - done, room = t.length - (offset + done - base);
        if (n > room) n = room;
        if (n > RS_MAX_TRANSFER) n = RS_MAX_TRANSFER;
        if (n > s->sbuf_bytes_avail) n = s->sbuf_bytes_avail;
        struct ibv_sge lsge[2];
        int ns = rs_stage_copy(s, buf + done, (uint32_t)n, lsge);
        if (rs_post_write(s, rs_wrid(RS_OP_WRITE, (uint32_t)n, (uint32_t)n), 0, 0, lsge, ns,
                          (uint32_t)n, t.addr + (offset + done - base), t.key))
            break;
        s->sqe_avail--;
        done += n;
    }
    return done ? (ssize_t)done : -1;
}

ssize_t rs_e_iowrite(struct rsock *s, const void *buf, size_t count, off_t offset, int flags)
{
    if (!buf && count) {
        errno = EFAULT;
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    ssize_t r = rs_check_usable(s) ? -1 : iowrite_locked(s, buf, count, (uint64_t)offset, flags);
    pthread_mutex_unlock(&s->lock);
    return r;
}
