/*
 * interop_scen.h - the interop scenarios, written once against a small
 * byte-stream interface that each end implements: the reference peer
 * (ref_main.c, over ref_io) and the engine side (engine_peer.c, over the
 * rsocket API or plain sockets under the nStack preload).
 */
#ifndef INTEROP_SCEN_H
#define INTEROP_SCEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct io_end {
    void *ctx;
    const char *name;                 /* "ref" or "engine", for messages */
    bool is_ref;                      /* the reference peer drives keepalive/iomap */
    int (*send_all)(void *ctx, const void *buf, size_t len);
    ssize_t (*recv)(void *ctx, void *buf, size_t len);    /* 0 = end of stream */
    int (*shut_wr)(void *ctx);
    int (*close)(void *ctx);
    /* optional per-side hooks (NULL where the side has nothing to do) */
    int (*keepalive_idle)(void *ctx);         /* ref: probes, then idle */
    int (*iomap_publish)(void *ctx);          /* ref: publish its buffer */
    int (*iomap_verify)(void *ctx);           /* ref: the engine's data landed */
    int (*iomap_write)(void *ctx);            /* engine: riowrite into it */
    int (*riowrite)(void *ctx);               /* ref: write into the engine's map */
    int (*map_publish)(void *ctx);            /* engine: riomap its buffer */
    int (*map_verify)(void *ctx);             /* engine: the ref's data landed */
    int (*check_counters)(void *ctx, const char *scenario);  /* after the data */
};

/* io_run: run SCENARIO as server or client; 0 on success, else -1 after
 * one line naming the failed step */
int io_run(struct io_end *e, const char *scenario, bool server);
bool io_scenario_known(const char *scenario);

#endif
