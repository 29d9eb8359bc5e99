/*
 * rs_engine_proto.h - the request header the engine test client sends as
 * the first 16 bytes of every connection; it tells the server which
 * scenario to play.
 */
#ifndef RS_ENGINE_PROTO_H
#define RS_ENGINE_PROTO_H

#include <stdint.h>
#include <string.h>

enum tp_op {
    TP_DATA = 'D',       /* client sends n (seed), server verifies, sends n back (seed+1) */
    TP_PEEK = 'P',       /* server sends 1000, waits for a byte, sends 5000, waits */
    TP_SHUT_CLIENT = 'S',/* client sends n then SHUT_WR; server reads n, EOF, replies n */
    TP_SHUT_SERVER = 'R',/* server sends n then SHUT_WR; reads n from client, then EOF */
    TP_CLOSE = 'C',      /* client sends n and closes at once; server must get all + EOF */
    TP_ECHO = 'E',       /* server reads n (seed) and sends it back, then waits for EOF */
    TP_FDS = 'F',        /* server answers its open fd count (8 bytes) */
    TP_EXIT = 'X',       /* server exits with its verdict */
};

struct tp_hdr {
    uint8_t op;
    uint32_t seed;
    uint64_t n;
};

#define TP_HDR_LEN 16

static inline void tp_encode(const struct tp_hdr *h, uint8_t out[TP_HDR_LEN])
{
    memset(out, 0, TP_HDR_LEN);
    out[0] = h->op;
    memcpy(out + 4, &h->seed, 4);
    memcpy(out + 8, &h->n, 8);
}

static inline void tp_decode(const uint8_t in[TP_HDR_LEN], struct tp_hdr *h)
{
    h->op = in[0];
    memcpy(&h->seed, in + 4, 4);
    memcpy(&h->n, in + 8, 8);
}

#endif
