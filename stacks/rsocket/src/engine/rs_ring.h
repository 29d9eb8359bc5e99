/*
 * rs_ring.h - offset arithmetic of the circular buffers (the send staging
 * ring, the receive buffer read position, the rmsg queue). Pure, inline.
 */
#ifndef RS_RING_H
#define RS_RING_H

#include <stdint.h>

/* Offset `n` bytes after `off` in a ring of `size` bytes (n <= size). */
static inline uint32_t rs_ring_advance(uint32_t off, uint32_t n, uint32_t size)
{
    off += n;
    return off >= size ? off - size : off;
}

/* How much of `n` bytes starting at `off` fits before the ring wraps. */
static inline uint32_t rs_ring_first_part(uint32_t off, uint32_t n, uint32_t size)
{
    uint32_t room = size - off;
    return n < room ? n : room;
}

/* Entries queued in an index ring of `slots` entries. */
static inline uint32_t rs_ring_count(uint32_t head, uint32_t tail, uint32_t slots)
{
    return tail >= head ? tail - head : slots - head + tail;
}

#endif /* RS_RING_H */
