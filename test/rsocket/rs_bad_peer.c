/*
 * rs_bad_peer - a misbehaving rsockets peer written directly on rdma_cm
 * and verbs (not on the engine). It connects to an engine listener and
 * breaks the protocol in one way per case:
 *
 *   short      10 bytes of private data          -> the engine rejects
 *   version    version 2                         -> the engine rejects
 *   garbage    version 1, zero credits, no SGL   -> the engine rejects
 *   op         immediate with unknown op 5       -> the engine disconnects
 *   ctrl       control message 9                 -> the engine disconnects
 *   big        a 100000-byte data message        -> the engine disconnects
 *   length     data length past the buffer       -> the engine disconnects
 *              (60000 + 65536 + 65536 bytes, each a valid size)
 * The connection cases are meant for a listener that never reads (the
 * engine test's sink), so only the engine's own checks can end them.
 *   credits    credit limit beyond its window    -> the engine disconnects
 *   disc       nothing: the engine side closes at once (for the close
 *              tests, SO_LINGER {1,0} or RS_CLOSE_TIMEOUT_MS=0); the
 *              in-band DISCONNECT (control message 0) must arrive on the
 *              CQ. CM events are not read, as an older librdmacm does
 *              not read them for accepted sockets.
 *
 *   rs_bad_peer ADDR PORT CASE...   exit 0 when every case got its answer
 *
 * The connection data is laid out by hand from the protocol description
 * (40 bytes: version, flags, BE credits, reserved, scaled iomap size,
 * BE target SGL {addr, rkey, count}, BE first buffer {addr, rkey, len}).
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <infiniband/verbs.h>
#include <poll.h>
#include <rdma/rdma_cma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RQ 16
#define RBUF (128 * 1024)

struct bad_conn {
    struct rdma_event_channel *ch;
    struct rdma_cm_id *id;
    struct ibv_pd *pd;
    struct ibv_cq *cq;
    struct ibv_mr *rmr, *tmr;
    uint8_t *rbuf, *target;
    uint64_t peer_buf_addr;
    uint32_t peer_buf_key;
};

static int fail(const char *c, const char *what)
{
    fprintf(stderr, "rs_bad_peer %s: %s: %s\n", c, what, strerror(errno));
    return -1;
}

/* The next CM event within timeout_ms; its type, or -1. Private data of an
 * ESTABLISHED event is copied to `pd` (40 bytes) when given. */
static int next_event(struct bad_conn *b, int timeout_ms, uint8_t *pd)
{
    struct pollfd p = { .fd = b->ch->fd, .events = POLLIN };
    struct rdma_cm_event *ev;
    if (poll(&p, 1, timeout_ms) != 1)
        return -1;
    if (rdma_get_cm_event(b->ch, &ev))
        return -1;
    int type = ev->event;
    if (pd && ev->param.conn.private_data && ev->param.conn.private_data_len >= 40)
        memcpy(pd, ev->param.conn.private_data, 40);
    rdma_ack_cm_event(ev);
    return type;
}

static int resolve(struct bad_conn *b, struct sockaddr *dst)
{
    if (rdma_resolve_addr(b->id, NULL, dst, 5000) ||
        next_event(b, 30000, NULL) != RDMA_CM_EVENT_ADDR_RESOLVED)
        return -1;
    if (rdma_resolve_route(b->id, 5000) ||
        next_event(b, 30000, NULL) != RDMA_CM_EVENT_ROUTE_RESOLVED)
        return -1;
    return 0;
}

static int make_qp(struct bad_conn *b)
{
    struct ibv_qp_init_attr qa = { 0 };
    b->pd = ibv_alloc_pd(b->id->verbs);
    b->cq = b->pd ? ibv_create_cq(b->id->verbs, 64, NULL, NULL, 0) : NULL;
    if (!b->cq)
        return -1;
    qa.send_cq = qa.recv_cq = b->cq;
    qa.qp_type = IBV_QPT_RC;
    qa.cap = (struct ibv_qp_cap){ .max_send_wr = RQ, .max_recv_wr = RQ,
                                  .max_send_sge = 2, .max_recv_sge = 1,
                                  .max_inline_data = 64 };
    qa.sq_sig_all = 1;
    if (rdma_create_qp(b->id, b->pd, &qa))
        return -1;
    b->rbuf = aligned_alloc(4096, RBUF);
    b->target = aligned_alloc(4096, 4096);
    if (!b->rbuf || !b->target)
        return -1;
    memset(b->target, 0, 4096);
    int acc = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;
    b->rmr = ibv_reg_mr(b->pd, b->rbuf, RBUF, acc);
    b->tmr = ibv_reg_mr(b->pd, b->target, 4096, acc);
    if (!b->rmr || !b->tmr)
        return -1;
    for (int i = 0; i < RQ; i++) {
        struct ibv_recv_wr wr = { .wr_id = (uint64_t)i, .num_sge = 0 }, *bad;
        if (ibv_post_recv(b->id->qp, &wr, &bad))
            return -1;
    }
    return 0;
}

static void put_sge(uint8_t *p, uint64_t addr, uint32_t key, uint32_t len)
{
    uint64_t a = htobe64(addr);
    uint32_t k = htobe32(key), l = htobe32(len);
    memcpy(p, &a, 8);
    memcpy(p + 8, &k, 4);
    memcpy(p + 12, &l, 4);
}

/* Valid connection data, then spoiled according to the case. */
static size_t conn_data(struct bad_conn *b, const char *c, uint8_t pd[40])
{
    uint16_t credits = htobe16(RQ);
    memset(pd, 0, 40);
    pd[0] = 1;                       /* version */
    pd[1] = 2;                       /* IOMAP flag, little-endian host */
    memcpy(pd + 2, &credits, 2);
    put_sge(pd + 8, (uintptr_t)b->target, b->tmr->rkey, 2);
    put_sge(pd + 24, (uintptr_t)b->rbuf, b->rmr->rkey, RBUF / 2);
    if (!strcmp(c, "short"))
        return 10;
    if (!strcmp(c, "version"))
        pd[0] = 2;
    if (!strcmp(c, "garbage")) {
        memset(pd + 2, 0, 2);        /* no credits */
        memset(pd + 8, 0xff, 16);    /* SGL count 0xffffffff */
        memset(pd + 24, 0, 16);      /* no first buffer */
    }
    return 40;
}

static int connect_case(struct bad_conn *b, struct sockaddr *dst, const char *c, uint8_t peer[40])
{
    uint8_t pd[40];
    b->ch = rdma_create_event_channel();
    if (!b->ch || rdma_create_id(b->ch, &b->id, NULL, RDMA_PS_TCP))
        return fail(c, "create id");
    if (resolve(b, dst))
        return fail(c, "resolve");
    if (make_qp(b))
        return fail(c, "qp and buffers");
    struct rdma_conn_param cp = { .private_data = pd,
                                  .private_data_len = (uint8_t)conn_data(b, c, pd),
                                  .flow_control = 1, .retry_count = 7,
                                  .rnr_retry_count = 7 };
    if (rdma_connect(b->id, &cp))
        return fail(c, "rdma_connect");
    return next_event(b, 30000, peer);
}

/* One evil RDMA WRITE WITH IMM (no data) into the engine's first buffer. */
static int send_imm(struct bad_conn *b, uint32_t op, uint32_t value)
{
    struct ibv_send_wr wr = { 0 }, *bad;
    wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
    wr.imm_data = htobe32(op << 29 | (value & 0x1fffffff));
    wr.wr.rdma.remote_addr = b->peer_buf_addr;
    wr.wr.rdma.rkey = b->peer_buf_key;
    return ibv_post_send(b->id->qp, &wr, &bad);
}

/* Receive completions until the in-band DISCONNECT or 30 s; the CM
 * channel is deliberately left unread. */
static int wait_inband_disconnect(struct bad_conn *b)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int polls = 0; polls < 100000000; polls++) {
        struct ibv_wc wc;
        int n = ibv_poll_cq(b->cq, 1, &wc);
        if (n < 0)
            return fail("disc", "ibv_poll_cq");
        if (n == 1 && wc.status == IBV_WC_SUCCESS && wc.opcode == IBV_WC_RECV_RDMA_WITH_IMM) {
            uint32_t imm = be32toh(wc.imm_data);
            if (imm >> 29 == 7 && (imm & 0x1fffffff) == 0)
                return 0;
            continue;
        }
        if (n == 1 && wc.status != IBV_WC_SUCCESS) {
            fprintf(stderr, "rs_bad_peer disc: completion status %s before the DISCONNECT\n",
                    ibv_wc_status_str(wc.status));
            return -1;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 30)
            break;
        if (n == 0) {
            struct timespec nap = { 0, 1000000 };   /* no CQ channel: poll at 1 ms */
            nanosleep(&nap, NULL);
        }
    }
    fprintf(stderr, "rs_bad_peer disc: no in-band DISCONNECT within 30 s\n");
    return -1;
}

/* Data messages that fit one write each but together overrun the space
 * advertised (128 KiB at most: both halves), against a sink that never
 * reads. The contents do not matter: the immediate is judged first. */
static int send_length_past(struct bad_conn *b)
{
    if (send_imm(b, 0, 60000) || send_imm(b, 0, 65536))
        return -1;
    return send_imm(b, 0, 65536);
}

static void destroy(struct bad_conn *b)
{
    if (b->id && b->id->qp)
        rdma_destroy_qp(b->id);
    if (b->rmr) ibv_dereg_mr(b->rmr);
    if (b->tmr) ibv_dereg_mr(b->tmr);
    if (b->cq) ibv_destroy_cq(b->cq);
    if (b->pd) ibv_dealloc_pd(b->pd);
    if (b->id) rdma_destroy_id(b->id);
    if (b->ch) rdma_destroy_event_channel(b->ch);
    free(b->rbuf);
    free(b->target);
}

static int run_case(struct sockaddr *dst, const char *c)
{
    struct bad_conn b = { 0 };
    uint8_t peer[40] = { 0 };
    int ev = connect_case(&b, dst, c, peer), ret = -1;
    int handshake_case = !strcmp(c, "short") || !strcmp(c, "version") || !strcmp(c, "garbage");
    if (handshake_case) {
        if (ev == RDMA_CM_EVENT_REJECTED)
            ret = 0;
        else
            fprintf(stderr, "rs_bad_peer %s: expected REJECTED, got event %d\n", c, ev);
        destroy(&b);
        return ret;
    }
    if (ev != RDMA_CM_EVENT_ESTABLISHED) {
        fprintf(stderr, "rs_bad_peer %s: expected ESTABLISHED, got event %d\n", c, ev);
        destroy(&b);
        return -1;
    }
    uint64_t a;
    uint32_t k;
    memcpy(&a, peer + 24, 8);
    memcpy(&k, peer + 32, 4);
    b.peer_buf_addr = be64toh(a);
    b.peer_buf_key = be32toh(k);
    int r = !strcmp(c, "op")      ? send_imm(&b, 5, 0)
          : !strcmp(c, "ctrl")    ? send_imm(&b, 7, 9)
          : !strcmp(c, "big")     ? send_imm(&b, 0, 100000)
          : !strcmp(c, "length")  ? send_length_past(&b)
          : !strcmp(c, "credits") ? send_imm(&b, 4, RQ + 5000)
          : !strcmp(c, "disc")    ? 0
          : (errno = EINVAL, -1);
    if (!r && !strcmp(c, "disc"))
        ret = wait_inband_disconnect(&b);
    else if (r)
        fail(c, "post the bad message");
    else {
        /* the engine must drop us: DISCONNECTED within the deadline */
        ev = next_event(&b, 30000, NULL);
        if (ev == RDMA_CM_EVENT_DISCONNECTED)
            ret = 0;
        else
            fprintf(stderr, "rs_bad_peer %s: expected DISCONNECTED, got event %d\n", c, ev);
    }
    destroy(&b);
    return ret;
}

int main(int argc, char **argv)
{
    struct sockaddr_storage ss = { 0 };
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    int failed = 0;
    if (argc < 4) {
        fprintf(stderr, "usage: rs_bad_peer ADDR PORT CASE...\n");
        return 2;
    }
    if (inet_pton(AF_INET, argv[1], &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)atoi(argv[2]));
    } else if (inet_pton(AF_INET6, argv[1], &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)atoi(argv[2]));
    } else {
        fprintf(stderr, "rs_bad_peer: bad address \"%s\"\n", argv[1]);
        return 2;
    }
    for (int i = 3; i < argc; i++) {
        int r = run_case((struct sockaddr *)&ss, argv[i]);
        printf("case %s: %s\n", argv[i], r ? "FAILED" : "ok");
        failed |= r != 0;
    }
    return failed;
}
