/*
 * rs_ref_peer - a minimal, clean-room rsockets protocol v1 peer on
 * rdma_cm + libibverbs, for interop tests against the engine.
 *
 *   rs_ref_peer server|client ADDR PORT SCENARIO
 *
 * Scenarios: see interop_scen.c. The server prints LISTENING once it
 * listens. Exit status 0 when the scenario passed; otherwise one line
 * names what failed. REF_CLAIM_BIG_ENDIAN=1 announces a big-endian host
 * (the NET flag), so the peer must swap the SGL and iomap entries it
 * writes to us.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "interop_common.h"
#include "interop_scen.h"
#include "ref_io.h"

#define ACCEPT_TIMEOUT_MS 60000
#define CONNECT_TIMEOUT_MS 30000
#define KEEPALIVE_IDLE_MS 2500     /* longer than the engine side's 1 s keepalive period */
#define MIN_CREDIT_EVENTS 10

struct ref_end {
    struct ref_conn conn;
    struct ibv_mr *iomap_mr;
    uint8_t *iomap_buf;
};

static int64_t deadline(void) { return ref_now_ms() + IO_DEADLINE_MS; }

static int ref_send_all(void *ctx, const void *buf, size_t len)
{
    struct ref_end *r = ctx;
    return ref_send(&r->conn, buf, len, deadline()) == (ssize_t)len ? 0 : -1;
}

static ssize_t ref_recv_some(void *ctx, void *buf, size_t len)
{
    struct ref_end *r = ctx;
    return ref_recv(&r->conn, buf, len, deadline());
}

static int ref_shut_wr(void *ctx)
{
    struct ref_end *r = ctx;
    return ref_shutdown(&r->conn, SHUT_WR, deadline());
}

static void print_stats(const struct ref_stats *s)
{
    fprintf(stderr, "rs_ref_peer: stats: data sent %" PRIu64 " (inline %" PRIu64 ", largest chunk %"
            PRIu64 ") recv %" PRIu64 "; credits sent sgl %" PRIu64 " zero %" PRIu64
            ", received sgl %" PRIu64 " zero %" PRIu64 "; keepalives %" PRIu64 "\n",
            s->data_sent, s->inline_sent, s->chunk_max, s->data_recv, s->credit_sent_sgl,
            s->credit_sent_zero, s->credit_recv_sgl, s->credit_recv_zero, s->keepalive_sent);
}

static int ref_close_end(void *ctx)
{
    struct ref_end *r = ctx;
    int rc;
    print_stats(&r->conn.st);
    if (r->iomap_mr)
        ibv_dereg_mr(r->iomap_mr);
    r->iomap_mr = NULL;
    rc = ref_close(&r->conn, deadline());
    free(r->iomap_buf);
    r->iomap_buf = NULL;
    return rc;
}

/* probes on a live, idle connection; then stay idle (processing the CQ)
 * long enough for the engine's own keepalive writes to reach us */
static int ref_keepalive_idle(void *ctx)
{
    struct ref_end *r = ctx;
    int64_t idle_end;
    for (int i = 0; i < KEEPALIVE_PROBES; i++)
        if (ref_keepalive(&r->conn, deadline()))
            return -1;
    if (ref_wait_sends(&r->conn, deadline()) || r->conn.error)
        return -1;
    idle_end = ref_now_ms() + KEEPALIVE_IDLE_MS;
    while (ref_now_ms() < idle_end)
        if (ref_progress(&r->conn, idle_end) && errno != ETIMEDOUT)
            return -1;
    if (r->conn.error || r->conn.disconnected) {
        fprintf(stderr, "rs_ref_peer: connection broken while idle\n");
        return -1;
    }
    return 0;
}

static int ref_iomap_publish_hook(void *ctx)
{
    struct ref_end *r = ctx;
    r->iomap_buf = calloc(1, IOMAP_LEN);
    if (!r->iomap_buf)
        return -1;
    r->iomap_mr = ibv_reg_mr(r->conn.pd, r->iomap_buf, IOMAP_LEN,
                             IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
    if (!r->iomap_mr) {
        fprintf(stderr, "rs_ref_peer: ibv_reg_mr (iomap): %s\n", strerror(errno));
        return -1;
    }
    return ref_iomap_publish(&r->conn, 0, IOMAP_OFFSET, r->iomap_mr, deadline());
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static int ref_iomap_verify(void *ctx)
{
    struct ref_end *r = ctx;
    const uint8_t *b = r->iomap_buf;
    long bad = io_check(b + IOMAP_WRITE_AT, IOMAP_WRITE_LEN, 0, 13);
    if (bad >= 0) {
        fprintf(stderr, "rs_ref_peer: riowrite data wrong at byte %ld of the write\n", bad);
        return -1;
    }
    if (!all_zero(b, IOMAP_WRITE_AT) ||
        !all_zero(b + IOMAP_WRITE_AT + IOMAP_WRITE_LEN, IOMAP_LEN - IOMAP_WRITE_AT - IOMAP_WRITE_LEN)) {
        fprintf(stderr, "rs_ref_peer: riowrite touched bytes outside its range\n");
        return -1;
    }
    fprintf(stderr, "rs_ref_peer: riowrite of %u bytes landed at offset %u of our mapping\n",
            IOMAP_WRITE_LEN, IOMAP_WRITE_AT);
    return 0;
}

/* riowrite into the mapping the engine published to us */
static int ref_riowrite_hook(void *ctx)
{
    struct ref_end *r = ctx;
    uint8_t *buf;
    ssize_t n;
    uint64_t off;
    struct ref_sge s;
    if (r->conn.st.iomap_recv != 1 || !ref_target_iomap(&r->conn, 0, &off, &s)) {
        fprintf(stderr, "rs_ref_peer: expected one IOMAP_SGL and a filled slot 0 before MAPD "
                "(got %" PRIu64 " IOMAP_SGL)\n", r->conn.st.iomap_recv);
        return -1;
    }
    fprintf(stderr, "rs_ref_peer: peer published offset 0x%" PRIx64 " length %u\n", off, s.length);
    if (off != IOMAP_OFFSET || s.length != IOMAP_LEN) {
        fprintf(stderr, "rs_ref_peer: published entry differs from riomap(offset 0x%x, %u bytes)\n",
                IOMAP_OFFSET, IOMAP_LEN);
        return -1;
    }
    buf = malloc(IOMAP_WRITE_LEN);
    if (!buf)
        return -1;
    io_fill(buf, IOMAP_WRITE_LEN, 0, 13);
    n = ref_riowrite(&r->conn, buf, IOMAP_WRITE_LEN, IOMAP_OFFSET + IOMAP_WRITE_AT, deadline());
    free(buf);
    if (n != (ssize_t)IOMAP_WRITE_LEN) {
        fprintf(stderr, "rs_ref_peer: riowrite wrote %zd of %u bytes (mapping not found?)\n", n,
                IOMAP_WRITE_LEN);
        return -1;
    }
    return ref_wait_sends(&r->conn, deadline());
}

static int ref_check_counters(void *ctx, const char *scenario)
{
    const struct ref_stats *s = &((struct ref_end *)ctx)->conn.st;
    print_stats(s);
    if (s->credit_recv_zero < MIN_CREDIT_EVENTS || s->credit_recv_sgl < MIN_CREDIT_EVENTS ||
        s->credit_sent_zero < MIN_CREDIT_EVENTS || s->credit_sent_sgl < MIN_CREDIT_EVENTS) {
        fprintf(stderr, "rs_ref_peer: %s: fewer than %d credit updates of some kind\n", scenario,
                MIN_CREDIT_EVENTS);
        return -1;
    }
    return 0;
}

static int parse_addr(const char *host, const char *port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
    struct addrinfo *ai;
    int r = getaddrinfo(host, port, &hints, &ai);
    if (r) {
        fprintf(stderr, "rs_ref_peer: bad address '%s' port '%s': %s\n", host, port, gai_strerror(r));
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static void sizes_for(const char *scenario, struct ref_sizes *sz)
{
    const char *be = getenv("REF_CLAIM_BIG_ENDIAN");
    ref_sizes_default(sz);
    if (!strcmp(scenario, "small-window")) {
        sz->sq_size = sz->rq_size = SMALL_WINDOW_RQ;
        sz->rbuf_size = sz->sbuf_size = 2 * SMALL_WINDOW_BUF;
    }
    if (!strcmp(scenario, "riowrite"))
        sz->iomap_size = 1;           /* the engine may publish one mapping to us */
    sz->claim_big_endian = be && !strcmp(be, "1");
}

/* the engine applied the scenario's socket options: its connection data
 * says so (RDMA_RQSIZE -> credits, SO_RCVBUF x2 -> half-buffer,
 * RDMA_IOMAPSIZE -> iomap slots) */
static int check_peer_options(const struct ref_conn *c, const char *scenario)
{
    const struct ref_conn_data *p = &c->peer;
    if (!strcmp(scenario, "small-window") &&
        (p->credits != SMALL_WINDOW_RQ || p->data_buf.length != SMALL_WINDOW_BUF)) {
        fprintf(stderr, "rs_ref_peer: small-window: peer offers %u credits and a %u-byte buffer, "
                "expected %d and %d\n", p->credits, p->data_buf.length, SMALL_WINDOW_RQ, SMALL_WINDOW_BUF);
        return -1;
    }
    if (!strcmp(scenario, "iomap") && p->iomap_size != 1) {
        fprintf(stderr, "rs_ref_peer: iomap: peer offers %u iomap slots, expected 1\n", p->iomap_size);
        return -1;
    }
    return 0;
}

static int open_connection(struct ref_end *r, bool server, const struct sockaddr *sa, socklen_t len)
{
    if (!server)
        return ref_connect(&r->conn, sa, CONNECT_TIMEOUT_MS);
    if (ref_listen(&r->conn, sa, len))
        return -1;
    printf("LISTENING\n");
    fflush(stdout);
    return ref_accept(&r->conn, ACCEPT_TIMEOUT_MS);
}

int main(int argc, char **argv)
{
    static struct ref_end r;
    struct sockaddr_storage ss;
    socklen_t len;
    bool server;
    struct io_end e = {
        .ctx = &r, .name = "rs_ref_peer", .is_ref = true,
        .send_all = ref_send_all, .recv = ref_recv_some, .shut_wr = ref_shut_wr, .close = ref_close_end,
        .keepalive_idle = ref_keepalive_idle, .iomap_publish = ref_iomap_publish_hook,
        .iomap_verify = ref_iomap_verify, .riowrite = ref_riowrite_hook, .check_counters = ref_check_counters,
    };
    if (argc != 5 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
        fprintf(stderr, "usage: rs_ref_peer server|client ADDR PORT SCENARIO\n");
        return 2;
    }
    if (!io_scenario_known(argv[4])) {
        fprintf(stderr, "rs_ref_peer: unknown scenario '%s'\n", argv[4]);
        return 2;
    }
    server = !strcmp(argv[1], "server");
    if (parse_addr(argv[2], argv[3], &ss, &len))
        return 2;
    sizes_for(argv[4], &r.conn.sz);
    if (open_connection(&r, server, (struct sockaddr *)&ss, len) || check_peer_options(&r.conn, argv[4])) {
        fprintf(stderr, "rs_ref_peer: %s: connection not established\n", argv[4]);
        ref_destroy(&r.conn);
        return 1;
    }
    return io_run(&e, argv[4], server) ? 1 : 0;
}
