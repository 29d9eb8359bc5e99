/*
 * interop_common.h - what both ends of an interop scenario agree on:
 * the data pattern, the digest, message sizes and volumes. Test logic
 * only; no protocol knowledge (the reference peer's protocol code is in
 * ref_*.c, the engine side uses the rsocket API).
 */
#ifndef INTEROP_COMMON_H
#define INTEROP_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define IO_DEADLINE_MS 120000          /* any single scenario step */
#define SINK_BYTES (64u << 20)         /* sink/source volume */
#define HALF_CLOSE_FWD 100000u         /* client -> server before SHUT_WR */
#define HALF_CLOSE_BACK 300000u        /* server -> client after it */
#define PENDING_BYTES (1u << 20)       /* close-with-pending volume */
#define SMALL_WINDOW_BYTES (1u << 20)  /* each way, in small messages */
#define SMALL_WINDOW_RQ 16
#define SMALL_WINDOW_BUF 8192          /* SO_RCVBUF/SO_SNDBUF: doubled by the engine */
#define KEEPALIVE_PROBES 3
#define IOMAP_LEN (256u * 1024)
#define IOMAP_OFFSET 0x100000u         /* the published offset */
#define IOMAP_WRITE_AT 1000u           /* riowrite target inside it */
#define IOMAP_WRITE_LEN 200000u

static inline uint8_t io_pattern(uint64_t i, uint32_t seed)
{
    return (uint8_t)(i * 131 + (i >> 11) + seed * 29 + 7);
}

static inline void io_fill(uint8_t *p, size_t n, uint64_t start, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = io_pattern(start + i, seed);
}

/* io_check: index of the first wrong byte, or -1 */
static inline long io_check(const uint8_t *p, size_t n, uint64_t start, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != io_pattern(start + i, seed))
            return (long)i;
    return -1;
}

/* FNV-1a 64: a digest both ends compute over a stream */
#define IO_FNV_INIT 0xcbf29ce484222325ULL
static inline uint64_t io_fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* echo message sizes: around inline (64), the first chunk (2048), the
 * half-buffer (65536) and beyond the whole buffer (131072) */
static const uint32_t io_echo_sizes[] = {
    1, 2, 15, 16, 17, 63, 64, 65, 100, 1000, 2047, 2048, 2049, 4095, 4096, 6144, 10000,
    32768, 65535, 65536, 65537, 100000, 131071, 131072, 131073, 200000, 7, 199999, 64, 1,
};
#define IO_ECHO_COUNT (sizeof(io_echo_sizes) / sizeof(io_echo_sizes[0]))

/* small-window message sizes cycle through these */
static inline uint32_t io_small_size(unsigned i) { return 1 + (i * 37) % 300; }

#endif
