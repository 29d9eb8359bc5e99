/*
 * interop_scen.c - scenario logic shared by both ends (see interop_scen.h).
 * Every transfer is checked by pattern or digest; every blocking step is
 * bounded by the ends' own deadlines.
 */
#include "interop_scen.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interop_common.h"

static int step_failed(struct io_end *e, const char *step)
{
    fprintf(stderr, "%s: %s failed: %s\n", e->name, step, strerror(errno ? errno : EIO));
    return -1;
}

static int recv_all(struct io_end *e, void *buf, size_t len, const char *what)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = e->recv(e->ctx, (uint8_t *)buf + got, len - got);
        if (r <= 0) {
            fprintf(stderr, "%s: %s: %s after %zu of %zu bytes\n", e->name, what,
                    r == 0 ? "end of stream" : strerror(errno), got, len);
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static int expect_eof(struct io_end *e, const char *what)
{
    uint8_t b;
    ssize_t r = e->recv(e->ctx, &b, 1);
    if (r != 0) {
        fprintf(stderr, "%s: %s: expected end of stream, got %zd (%s)\n", e->name, what, r,
                r < 0 ? strerror(errno) : "data");
        return -1;
    }
    return 0;
}

/* recv_stream: read until EOF, checking the pattern; total must be exact */
static int recv_stream(struct io_end *e, size_t expect, uint32_t seed, uint64_t *digest,
                       const char *what)
{
    size_t cap = 1 << 20, total = 0;
    uint8_t *buf = malloc(cap);
    uint64_t h = IO_FNV_INIT;
    ssize_t r;
    if (!buf)
        return step_failed(e, "malloc");
    while ((r = e->recv(e->ctx, buf, cap)) > 0) {
        long bad = io_check(buf, (size_t)r, total, seed);
        if (bad >= 0) {
            fprintf(stderr, "%s: %s: wrong byte at stream offset %zu\n", e->name, what, total + (size_t)bad);
            free(buf);
            return -1;
        }
        h = io_fnv(h, buf, (size_t)r);
        total += (size_t)r;
        if (total > expect)
            break;
    }
    free(buf);
    if (r < 0)
        return step_failed(e, what);
    if (total != expect) {
        fprintf(stderr, "%s: %s: received %zu bytes, expected %zu\n", e->name, what, total, expect);
        return -1;
    }
    if (digest)
        *digest = h;
    return 0;
}

/* send_stream: len pattern bytes in writes of varying size */
static int send_stream(struct io_end *e, size_t len, uint32_t seed, uint64_t *digest)
{
    size_t cap = 1 << 20, off = 0;
    uint8_t *buf = malloc(cap);
    uint64_t h = IO_FNV_INIT;
    unsigned i = 0;
    if (!buf)
        return step_failed(e, "malloc");
    while (off < len) {
        size_t n = cap - (i++ * 4099) % 65536;    /* odd sizes: chunks never align */
        if (n > len - off)
            n = len - off;
        io_fill(buf, n, off, seed);
        h = io_fnv(h, buf, n);
        if (e->send_all(e->ctx, buf, n)) {
            free(buf);
            return step_failed(e, "send");
        }
        off += n;
    }
    free(buf);
    if (digest)
        *digest = h;
    return 0;
}

static int run_echo(struct io_end *e, bool server)
{
    uint8_t *buf = malloc(200000), *back = malloc(200000);
    int rc = -1;
    if (!buf || !back)
        goto out;
    for (unsigned i = 0; i < IO_ECHO_COUNT; i++) {
        uint32_t n = io_echo_sizes[i];
        long bad;
        if (server) {
            if (recv_all(e, buf, n, "echo request"))
                goto out;
            if ((bad = io_check(buf, n, 0, i)) >= 0) {
                fprintf(stderr, "%s: echo message %u (%u bytes): wrong byte %ld\n", e->name, i, n, bad);
                goto out;
            }
            if (e->send_all(e->ctx, buf, n)) {
                step_failed(e, "echo reply");
                goto out;
            }
        } else {
            io_fill(buf, n, 0, i);
            if (e->send_all(e->ctx, buf, n)) {
                step_failed(e, "echo send");
                goto out;
            }
            if (recv_all(e, back, n, "echo reply"))
                goto out;
            if ((bad = io_check(back, n, 0, i)) >= 0) {
                fprintf(stderr, "%s: echo reply %u (%u bytes): wrong byte %ld\n", e->name, i, n, bad);
                goto out;
            }
        }
    }
    rc = server ? expect_eof(e, "after echo") : 0;
out:
    free(buf);
    free(back);
    return rc;
}

/* one-way SINK_BYTES, then the sender's digest; the receiver answers
 * 'K' or 'X' plus its own digest, so both ends compare */
static int run_oneway(struct io_end *e, bool sender)
{
    uint64_t mine = 0, theirs = 0;
    uint8_t verdict[9];
    if (sender) {
        if (send_stream(e, SINK_BYTES, 3, &mine) || e->send_all(e->ctx, &mine, 8))
            return step_failed(e, "stream");
        if (recv_all(e, verdict, 9, "verdict"))
            return -1;
        memcpy(&theirs, verdict + 1, 8);
        fprintf(stderr, "%s: sent %u bytes, digest %016" PRIx64 ", receiver's %016" PRIx64 "\n",
                e->name, SINK_BYTES, mine, theirs);
        if (verdict[0] != 'K' || theirs != mine) {
            fprintf(stderr, "%s: receiver's digest or verdict differs\n", e->name);
            return -1;
        }
        return 0;
    }
    {
        size_t total = 0, cap = 1 << 20;
        uint8_t *buf = malloc(cap);
        uint64_t h = IO_FNV_INIT;
        if (!buf)
            return step_failed(e, "malloc");
        while (total < SINK_BYTES) {
            size_t want = SINK_BYTES - total < cap ? SINK_BYTES - total : cap;
            ssize_t r = e->recv(e->ctx, buf, want);
            long bad;
            if (r <= 0) {
                fprintf(stderr, "%s: stream ended at %zu of %u bytes\n", e->name, total, SINK_BYTES);
                free(buf);
                return -1;
            }
            if ((bad = io_check(buf, (size_t)r, total, 3)) >= 0) {
                fprintf(stderr, "%s: wrong byte at stream offset %zu\n", e->name, total + (size_t)bad);
                free(buf);
                return -1;
            }
            h = io_fnv(h, buf, (size_t)r);
            total += (size_t)r;
        }
        free(buf);
        mine = h;
    }
    if (recv_all(e, &theirs, 8, "sender digest"))
        return -1;
    verdict[0] = theirs == mine ? 'K' : 'X';
    memcpy(verdict + 1, &mine, 8);
    fprintf(stderr, "%s: received %u bytes, digest %016" PRIx64 ", sender's %016" PRIx64 "\n",
            e->name, SINK_BYTES, mine, theirs);
    if (e->send_all(e->ctx, verdict, 9))
        return step_failed(e, "verdict");
    if (verdict[0] != 'K')
        return -1;
    return expect_eof(e, "after the verdict");
}

static int run_half_close(struct io_end *e, bool server)
{
    if (server) {
        if (recv_stream(e, HALF_CLOSE_FWD, 5, NULL, "data before SHUT_WR"))
            return -1;
        return send_stream(e, HALF_CLOSE_BACK, 6, NULL);    /* the closer's side still reads */
    }
    if (send_stream(e, HALF_CLOSE_FWD, 5, NULL) || e->shut_wr(e->ctx))
        return step_failed(e, "send then SHUT_WR");
    return recv_stream(e, HALF_CLOSE_BACK, 6, NULL, "data after our SHUT_WR");
}

static int run_close_pending(struct io_end *e, bool server)
{
    if (server)
        return recv_stream(e, PENDING_BYTES, 7, NULL, "data sent just before close");
    return send_stream(e, PENDING_BYTES, 7, NULL);   /* io_run closes at once */
}

/* recv_exact: len pattern bytes (no end of stream expected) */
static int recv_exact(struct io_end *e, size_t len, uint32_t seed, const char *what)
{
    uint8_t buf[4096];
    size_t total = 0;
    while (total < len) {
        size_t want = len - total < sizeof(buf) ? len - total : sizeof(buf);
        ssize_t r = e->recv(e->ctx, buf, want);
        long bad;
        if (r <= 0) {
            fprintf(stderr, "%s: %s: stream ended at %zu of %zu bytes\n", e->name, what, total, len);
            return -1;
        }
        if ((bad = io_check(buf, (size_t)r, total, seed)) >= 0) {
            fprintf(stderr, "%s: %s: wrong byte at offset %zu\n", e->name, what, total + (size_t)bad);
            return -1;
        }
        total += (size_t)r;
    }
    return 0;
}

/* send_small: len pattern bytes as many messages of 1..300 bytes */
static int send_small(struct io_end *e, size_t len, uint32_t seed)
{
    uint8_t buf[300];
    size_t off = 0;
    for (unsigned i = 0; off < len; i++) {
        size_t n = io_small_size(i);
        if (n > len - off)
            n = len - off;
        io_fill(buf, n, off, seed);
        if (e->send_all(e->ctx, buf, n))
            return step_failed(e, "small message");
        off += n;
    }
    return 0;
}

static int run_small_window(struct io_end *e, bool server)
{
    /* a full stream each way in small messages: with 16 credits and a
     * small buffer, credits run out and come back thousands of times */
    if (server) {
        if (recv_exact(e, SMALL_WINDOW_BYTES, 11, "client stream") || send_small(e, SMALL_WINDOW_BYTES, 12))
            return -1;
    } else {
        if (send_small(e, SMALL_WINDOW_BYTES, 11) || recv_exact(e, SMALL_WINDOW_BYTES, 12, "server stream"))
            return -1;
    }
    if (e->check_counters && e->check_counters(e->ctx, "small-window"))
        return -1;
    return server ? expect_eof(e, "after small-window") : 0;
}

static int run_keepalive(struct io_end *e)
{
    uint8_t buf[5000];
    long bad;
    if (e->is_ref) {
        if (e->keepalive_idle && e->keepalive_idle(e->ctx))
            return step_failed(e, "keepalive probes");
        io_fill(buf, sizeof(buf), 0, 9);
        if (e->send_all(e->ctx, buf, sizeof(buf)) || recv_all(e, buf, sizeof(buf), "echo"))
            return step_failed(e, "data after keepalive");
    } else {
        if (recv_all(e, buf, sizeof(buf), "data after keepalive"))
            return -1;
        if (e->send_all(e->ctx, buf, sizeof(buf)))
            return step_failed(e, "echo");
    }
    if ((bad = io_check(buf, sizeof(buf), 0, 9)) >= 0) {
        fprintf(stderr, "%s: data after keepalive: wrong byte %ld\n", e->name, bad);
        return -1;
    }
    return e->is_ref ? 0 : expect_eof(e, "after keepalive");
}

/* iomap: the ref publishes a buffer, the engine riowrites into it */
static int run_iomap(struct io_end *e)
{
    char msg[4];
    uint8_t verdict;
    if (e->is_ref) {
        if (!e->iomap_publish || e->iomap_publish(e->ctx) || e->send_all(e->ctx, "MAPD", 4))
            return step_failed(e, "publish iomap");
        if (recv_all(e, msg, 4, "riowrite done") || memcmp(msg, "DONE", 4)) {
            fprintf(stderr, "%s: expected DONE after the riowrite\n", e->name);
            return -1;
        }
        verdict = e->iomap_verify(e->ctx) ? 'X' : 'K';
        if (e->send_all(e->ctx, &verdict, 1))
            return step_failed(e, "verdict");
        return verdict == 'K' ? expect_eof(e, "after iomap") : -1;
    }
    if (recv_all(e, msg, 4, "iomap published") || memcmp(msg, "MAPD", 4)) {
        fprintf(stderr, "%s: expected MAPD before riowrite\n", e->name);
        return -1;
    }
    if (!e->iomap_write || e->iomap_write(e->ctx) || e->send_all(e->ctx, "DONE", 4))
        return step_failed(e, "riowrite");
    if (recv_all(e, &verdict, 1, "iomap verdict"))
        return -1;
    if (verdict != 'K') {
        fprintf(stderr, "%s: the reference peer found the riowrite data wrong\n", e->name);
        return -1;
    }
    return 0;
}

/* riowrite: the engine publishes a buffer (riomap), the ref writes into it */
static int run_riowrite(struct io_end *e)
{
    char msg[4];
    uint8_t verdict;
    if (!e->is_ref) {
        if (!e->map_publish || e->map_publish(e->ctx) || e->send_all(e->ctx, "MAPD", 4))
            return step_failed(e, "riomap");
        if (recv_all(e, msg, 4, "riowrite done") || memcmp(msg, "DONE", 4)) {
            fprintf(stderr, "%s: expected DONE after the riowrite\n", e->name);
            return -1;
        }
        verdict = e->map_verify(e->ctx) ? 'X' : 'K';
        if (e->send_all(e->ctx, &verdict, 1))
            return step_failed(e, "verdict");
        return verdict == 'K' ? expect_eof(e, "after riowrite") : -1;
    }
    if (recv_all(e, msg, 4, "mapping published") || memcmp(msg, "MAPD", 4)) {
        fprintf(stderr, "%s: expected MAPD before riowrite\n", e->name);
        return -1;
    }
    if (!e->riowrite || e->riowrite(e->ctx) || e->send_all(e->ctx, "DONE", 4))
        return step_failed(e, "riowrite");
    if (recv_all(e, &verdict, 1, "riowrite verdict"))
        return -1;
    if (verdict != 'K') {
        fprintf(stderr, "%s: the engine found the riowrite data wrong\n", e->name);
        return -1;
    }
    return 0;
}

static const char *const scenarios[] = {
    "echo", "sink", "source", "half-close", "close-with-pending", "keepalive", "small-window", "iomap",
    "riowrite",
};

bool io_scenario_known(const char *scenario)
{
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        if (!strcmp(scenario, scenarios[i]))
            return true;
    return false;
}

static int dispatch(struct io_end *e, const char *sc, bool server)
{
    if (!strcmp(sc, "echo"))
        return run_echo(e, server);
    if (!strcmp(sc, "sink"))
        return run_oneway(e, !server);     /* client -> server */
    if (!strcmp(sc, "source"))
        return run_oneway(e, server);      /* server -> client */
    if (!strcmp(sc, "half-close"))
        return run_half_close(e, server);
    if (!strcmp(sc, "close-with-pending"))
        return run_close_pending(e, server);
    if (!strcmp(sc, "keepalive"))
        return run_keepalive(e);
    if (!strcmp(sc, "small-window"))
        return run_small_window(e, server);
    if (!strcmp(sc, "iomap"))
        return run_iomap(e);
    if (!strcmp(sc, "riowrite"))
        return run_riowrite(e);
    fprintf(stderr, "%s: unknown scenario '%s'\n", e->name, sc);
    errno = EINVAL;
    return -1;
}

int io_run(struct io_end *e, const char *scenario, bool server)
{
    int rc = dispatch(e, scenario, server);
    int rc_close = e->close(e->ctx);
    if (rc == 0 && rc_close)
        rc = step_failed(e, "close");
    if (rc == 0)
        fprintf(stderr, "%s: %s %s OK\n", e->name, scenario, server ? "server" : "client");
    return rc;
}
