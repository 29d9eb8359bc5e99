/* stats_shm.h - layout of /dev/shm/nstack-stat.<pid>, shared by
 * libnStackAPI.so (writer) and the nstack-stat tool (reader).
 *
 * Each thread owns one slot (single writer, relaxed atomic stores), so the
 * hot path is a thread-local pointer and a plain add; the reader sums all
 * slots. Slot 0 is shared (atomic adds) for threads beyond NSTAT_SLOTS. */
#ifndef STATS_SHM_H
#define STATS_SHM_H

#include <stdint.h>

#define NSTAT_MAGIC 0x6e737431u    /* "nst1" */
#define NSTAT_VERSION 3
#define NSTAT_STACKS 16
#define NSTAT_SLOTS 128
#define NSTAT_NAME 32

enum nstat_counter {
    NSTAT_CONN_OUT,     /* connect() that routed to the stack */
    NSTAT_CONN_IN,      /* accepted connections */
    NSTAT_SOCKETS,      /* sockets placed on the stack */
    NSTAT_TX_BYTES,
    NSTAT_RX_BYTES,
    NSTAT_FALLBACK,     /* connects a module could not make, retried here */
    NSTAT_ANCHORED,     /* TCP-anchored connections the module carries: anchor()
                         * calls minus later fallbacks (a slot may wrap; the
                         * sum over slots is exact modulo 2^64) */
    NSTAT_ANCHOR_TCP,   /* anchored candidates that stayed on TCP: the peer does
                         * not run the framework (or the module declined) */
    NSTAT_N
};

struct nstat_slot {
    uint64_t owner;                            /* tid, 0 = free */
    uint64_t c[NSTAT_STACKS][NSTAT_N];
};

struct nstat_shm {
    uint32_t magic, version;
    int32_t pid;
    int32_t n_stacks;
    char comm[NSTAT_NAME];
    char names[NSTAT_STACKS][NSTAT_NAME];
    struct nstat_slot slots[NSTAT_SLOTS];
};

#define NSTAT_PATH_FMT "/dev/shm/nstack-stat.%d"

#endif
