/* rdma_errors: what RNR and remote access errors look like.
 *
 * One process, two RC queue pairs on the same device port, connected to each
 * other by hand (each one's RTR names the other's QPN and the port's own
 * GID). Each scenario uses a fresh pair, because an error completion moves
 * the requester's QP to the error state for good:
 *
 *   rnr-exceeded   SEND to a QP with no RECV posted, rnr_retry = 0:
 *                  IBV_WC_RNR_RETRY_EXC_ERR, the QP is in ERR, and a WR
 *                  posted afterwards completes with IBV_WC_WR_FLUSH_ERR.
 *   rnr-waits      the same with rnr_retry = 7 ("retry forever"): the SEND
 *                  waits until the receiver posts a RECV, then succeeds.
 *   bad-rkey       RDMA WRITE with a wrong rkey: IBV_WC_REM_ACCESS_ERR,
 *                  target memory untouched.
 *   out-of-bounds  RDMA WRITE with the right rkey past the end of the MR:
 *                  IBV_WC_REM_ACCESS_ERR, target memory untouched.
 *   no-read-right  RDMA READ of an MR registered without REMOTE_READ:
 *                  IBV_WC_REM_ACCESS_ERR.
 *   recv-too-small SEND of 64 bytes into a 16-byte RECV: the receiver gets
 *                  IBV_WC_LOC_LEN_ERR, the sender IBV_WC_REM_INV_REQ_ERR.
 *
 *   rdma_errors -a 192.168.21.180 [-o SCENARIO] [-t SECONDS]
 *
 * Prints one line per scenario; exits 1 at the first unexpected outcome.
 */
#include "ex_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { BUF = 4096, MSG = 64 };

static const char usage[] =
    "usage: rdma_errors -a LOCAL_ADDR [-o SCENARIO] [-t SECONDS]\n"
    "scenarios: rnr-exceeded rnr-waits bad-rkey out-of-bounds no-read-right recv-too-small\n"
    "           (default: all)\n";

/* The device port that owns the local address, and its GID index. */
struct port_ref {
    struct ibv_context *ctx;
    uint8_t port;
    int gid_index;
    union ibv_gid gid;
    enum ibv_mtu mtu;
};

/* One end of a loopback pair. */
struct end {
    struct ibv_comp_channel *cc;
    struct ibv_cq *cq;
    struct ibv_qp *qp;
};

struct pair {
    struct ibv_pd *pd;
    struct end a, b;        /* a: requester, b: responder */
    uint8_t *buf_a, *buf_b;
    struct ibv_mr *mr_a, *mr_b;
};

/* ---- device ------------------------------------------------------------- */

static void addr_to_gid(const char *addr, union ibv_gid *gid)
{
    struct sockaddr_storage ss;
    ex_sockaddr(addr, "1", &ss);
    memset(gid, 0, sizeof(*gid));
    if (ss.ss_family == AF_INET) {          /* RoCE v2: ::ffff:a.b.c.d */
        gid->raw[10] = gid->raw[11] = 0xff;
        memcpy(&gid->raw[12], &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else {
        memcpy(gid->raw, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    }
}

/* Returns true when port `port` of `ctx` has `want` in its GID table. */
static bool port_has_gid(struct ibv_context *ctx, uint8_t port, const union ibv_gid *want,
                         struct port_ref *out)
{
    struct ibv_port_attr pa;
    if (ibv_query_port(ctx, port, &pa))
        return false;
    for (int i = 0; i < pa.gid_tbl_len; i++) {
        union ibv_gid g;
        if (ibv_query_gid(ctx, port, i, &g) == 0 && !memcmp(&g, want, sizeof(g))) {
            *out = (struct port_ref){ ctx, port, i, g, pa.active_mtu };
            return true;
        }
    }
    return false;
}

static void find_port(const char *addr, struct port_ref *out)
{
    union ibv_gid want;
    addr_to_gid(addr, &want);
    int n = 0;
    struct ibv_device **list = ibv_get_device_list(&n);
    for (int d = 0; list && d < n; d++) {
        struct ibv_context *ctx = ibv_open_device(list[d]);
        struct ibv_device_attr da;
        if (ctx && ibv_query_device(ctx, &da) == 0)
            for (uint8_t p = 1; p <= da.phys_port_cnt; p++)
                if (port_has_gid(ctx, p, &want, out)) {
                    ibv_free_device_list(list);
                    return;
                }
        if (ctx)
            ibv_close_device(ctx);
    }
    if (list)
        ibv_free_device_list(list);
    ex_fail("no RDMA device has a GID for %s", addr);
}

/* ---- loopback pair ------------------------------------------------------ */

static void create_end(struct port_ref *pr, struct ibv_pd *pd, struct end *e)
{
    e->cc = ibv_create_comp_channel(pr->ctx);
    e->cq = e->cc ? ibv_create_cq(pr->ctx, 8, NULL, e->cc, 0) : NULL;
    if (!e->cq)
        ex_fail_errno("creating a completion channel and CQ");
    struct ibv_qp_init_attr attr = {
        .send_cq = e->cq, .recv_cq = e->cq, .qp_type = IBV_QPT_RC, .sq_sig_all = 1,
        .cap = { .max_send_wr = 4, .max_recv_wr = 4, .max_send_sge = 1, .max_recv_sge = 1 },
    };
    e->qp = ibv_create_qp(pd, &attr);
    if (!e->qp)
        ex_fail_errno("ibv_create_qp");
}

/* RESET -> INIT. Both ends are in INIT before either goes on, as when two
 * hosts exchange their QP numbers: a QP still in RESET drops what reaches it. */
static void init_end(struct port_ref *pr, struct end *e)
{
    struct ibv_qp_attr a = {
        .qp_state = IBV_QPS_INIT, .port_num = pr->port,
        .qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ,
    };
    if (ibv_modify_qp(e->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
                                     IBV_QP_ACCESS_FLAGS))
        ex_fail_errno("ibv_modify_qp INIT");
}

/* INIT -> RTR -> RTS, with `peer` as the remote QP. */
static void connect_end(struct port_ref *pr, struct end *e, const struct end *peer,
                        uint8_t rnr_retry)
{
    struct ibv_qp_attr a;
    memset(&a, 0, sizeof(a));
    a.qp_state = IBV_QPS_RTR;
    a.path_mtu = pr->mtu;
    a.dest_qp_num = peer->qp->qp_num;
    a.rq_psn = 0;
    a.max_dest_rd_atomic = 1;
    a.min_rnr_timer = 1;                       /* short RNR waits: 0.01 ms */
    a.ah_attr.port_num = pr->port;
    a.ah_attr.is_global = 1;
    a.ah_attr.grh.dgid = pr->gid;              /* loopback: our own GID */
    a.ah_attr.grh.sgid_index = (uint8_t)pr->gid_index;
    a.ah_attr.grh.hop_limit = 64;
    if (ibv_modify_qp(e->qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
                                     IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
                                     IBV_QP_MIN_RNR_TIMER))
        ex_fail_errno("ibv_modify_qp RTR");
    memset(&a, 0, sizeof(a));
    a.qp_state = IBV_QPS_RTS;
    a.timeout = 14;
    a.retry_cnt = 7;
    a.rnr_retry = rnr_retry;                   /* 0: fail at once; 7: forever */
    a.sq_psn = 0;
    a.max_rd_atomic = 1;
    if (ibv_modify_qp(e->qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
                                     IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
        ex_fail_errno("ibv_modify_qp RTS");
}

/* A connected pair; b's buffer gets the remote rights `b_access`. */
static void create_pair(struct port_ref *pr, uint8_t rnr_retry, int b_access, struct pair *p)
{
    memset(p, 0, sizeof(*p));
    p->pd = ibv_alloc_pd(pr->ctx);
    if (!p->pd)
        ex_fail_errno("ibv_alloc_pd");
    create_end(pr, p->pd, &p->a);
    create_end(pr, p->pd, &p->b);
    p->buf_a = ex_alloc_buf(BUF);
    p->buf_b = ex_alloc_buf(BUF);
    p->mr_a = ibv_reg_mr(p->pd, p->buf_a, BUF, IBV_ACCESS_LOCAL_WRITE);
    p->mr_b = ibv_reg_mr(p->pd, p->buf_b, BUF, IBV_ACCESS_LOCAL_WRITE | b_access);
    if (!p->mr_a || !p->mr_b)
        ex_fail_errno("ibv_reg_mr");
    init_end(pr, &p->a);
    init_end(pr, &p->b);
    connect_end(pr, &p->a, &p->b, rnr_retry);
    connect_end(pr, &p->b, &p->a, rnr_retry);
}

static void destroy_end(struct end *e)
{
    ibv_destroy_qp(e->qp);
    ibv_destroy_cq(e->cq);
    ibv_destroy_comp_channel(e->cc);
}

static void destroy_pair(struct pair *p)
{
    destroy_end(&p->a);
    destroy_end(&p->b);
    ibv_dereg_mr(p->mr_a);
    ibv_dereg_mr(p->mr_b);
    ibv_dealloc_pd(p->pd);
    free(p->buf_a);
    free(p->buf_b);
}

/* ---- work requests ------------------------------------------------------ */

/* Posts one WR from a's buffer: a SEND, or an RDMA op at remote (addr, rkey). */
static void post_from_a(struct pair *p, enum ibv_wr_opcode op, uint64_t addr, uint32_t rkey)
{
    struct ibv_sge sge = { .addr = (uintptr_t)p->buf_a, .length = MSG, .lkey = p->mr_a->lkey };
    struct ibv_send_wr wr = { .wr_id = op, .sg_list = &sge, .num_sge = 1, .opcode = op,
                              .wr.rdma = { .remote_addr = addr, .rkey = rkey } }, *bad;
    if (ibv_post_send(p->a.qp, &wr, &bad))
        ex_fail_errno("ibv_post_send");
}

static void post_recv_b(struct pair *p, uint32_t len)
{
    struct ibv_sge sge = { .addr = (uintptr_t)p->buf_b, .length = len, .lkey = p->mr_b->lkey };
    struct ibv_recv_wr wr = { .wr_id = 1, .sg_list = &sge, .num_sge = 1 }, *bad;
    if (ibv_post_recv(p->b.qp, &wr, &bad))
        ex_fail_errno("ibv_post_recv");
}

/* Waits for a's next completion and requires `status`. */
static void expect_status(struct pair *p, enum ibv_wc_status status, const char *scenario,
                          int64_t deadline)
{
    struct ibv_wc wc;
    ex_wait_wc(p->a.cq, p->a.cc, deadline, &wc);
    if (wc.status != status)
        ex_fail("%s: completion status '%s', expected '%s'", scenario,
                ibv_wc_status_str(wc.status), ibv_wc_status_str(status));
}

/* The QP must reach `want`. On hardware it already has when the error
 * completion is polled; a device may publish the completion a moment before
 * the state change, so the state gets until `deadline` (checked every ms). */
static void expect_qp_state(struct ibv_qp *qp, enum ibv_qp_state want, const char *scenario,
                            int64_t deadline)
{
    for (;;) {
        struct ibv_qp_attr a;
        struct ibv_qp_init_attr ia;
        if (ibv_query_qp(qp, &a, IBV_QP_STATE, &ia))
            ex_fail_errno("%s: ibv_query_qp", scenario);
        if (a.qp_state == want)
            return;
        if (ex_remaining_ms(deadline) == 0)
            ex_fail("%s: QP state %d, expected %d", scenario, a.qp_state, want);
        usleep(1000);
    }
}

static void expect_untouched(const struct pair *p, const char *scenario)
{
    for (size_t i = 0; i < BUF; i++)
        if (p->buf_b[i])
            ex_fail("%s: target memory changed at byte %zu despite the error", scenario, i);
}

/* ---- scenarios ---------------------------------------------------------- */

static void rnr_exceeded(struct port_ref *pr, int64_t deadline)
{
    struct pair p;
    create_pair(pr, 0, 0, &p);
    ex_fill_pattern(p.buf_a, MSG, 1);
    post_from_a(&p, IBV_WR_SEND, 0, 0);          /* b has no RECV posted */
    expect_status(&p, IBV_WC_RNR_RETRY_EXC_ERR, "rnr-exceeded", deadline);
    expect_qp_state(p.a.qp, IBV_QPS_ERR, "rnr-exceeded", deadline);
    post_from_a(&p, IBV_WR_SEND, 0, 0);          /* a QP in ERR flushes new WRs */
    expect_status(&p, IBV_WC_WR_FLUSH_ERR, "rnr-exceeded (next WR)", deadline);
    destroy_pair(&p);
    printf("rnr-exceeded: SEND without RECV, rnr_retry 0 -> RNR retry exceeded, QP in ERR, "
           "next WR flushed\n");
}

static void rnr_waits(struct port_ref *pr, int64_t deadline)
{
    struct pair p;
    create_pair(pr, 7, 0, &p);
    ex_fill_pattern(p.buf_a, MSG, 2);
    post_from_a(&p, IBV_WR_SEND, 0, 0);
    struct ibv_wc wc;
    if (ibv_poll_cq(p.a.cq, 1, &wc) != 0)        /* it cannot have completed yet */
        ex_fail("rnr-waits: SEND completed (%s) before any RECV was posted",
                ibv_wc_status_str(wc.status));
    post_recv_b(&p, BUF);                        /* now the retries can succeed */
    expect_status(&p, IBV_WC_SUCCESS, "rnr-waits", deadline);
    ex_wait_wc(p.b.cq, p.b.cc, deadline, &wc);
    ex_check_wc(&wc, IBV_WC_RECV, "rnr-waits RECV");
    if (wc.byte_len != MSG || ex_find_mismatch(p.buf_b, MSG, 2) >= 0)
        ex_fail("rnr-waits: received %u bytes, data %s", wc.byte_len,
                ex_find_mismatch(p.buf_b, MSG, 2) >= 0 ? "differs" : "matches");
    destroy_pair(&p);
    printf("rnr-waits: SEND before RECV, rnr_retry 7 -> delivered once the RECV was posted\n");
}

/* RDMA WRITE or READ that the responder must refuse. */
static void access_error(struct port_ref *pr, const char *scenario, enum ibv_wr_opcode op,
                         int b_access, int64_t addr_off, uint32_t rkey_xor, int64_t deadline)
{
    struct pair p;
    create_pair(pr, 7, b_access, &p);
    ex_fill_pattern(p.buf_a, MSG, 3);
    post_from_a(&p, op, (uintptr_t)p.buf_b + addr_off, p.mr_b->rkey ^ rkey_xor);
    expect_status(&p, IBV_WC_REM_ACCESS_ERR, scenario, deadline);
    expect_untouched(&p, scenario);
    destroy_pair(&p);
    printf("%s: -> remote access error, target memory untouched\n", scenario);
}

static void recv_too_small(struct port_ref *pr, int64_t deadline)
{
    struct pair p;
    create_pair(pr, 7, 0, &p);
    ex_fill_pattern(p.buf_a, MSG, 4);
    post_recv_b(&p, MSG / 4);
    post_from_a(&p, IBV_WR_SEND, 0, 0);
    expect_status(&p, IBV_WC_REM_INV_REQ_ERR, "recv-too-small", deadline);
    struct ibv_wc wc;
    ex_wait_wc(p.b.cq, p.b.cc, deadline, &wc);
    if (wc.status != IBV_WC_LOC_LEN_ERR)
        ex_fail("recv-too-small: receiver status '%s', expected '%s'",
                ibv_wc_status_str(wc.status), ibv_wc_status_str(IBV_WC_LOC_LEN_ERR));
    destroy_pair(&p);
    printf("recv-too-small: 64-byte SEND, 16-byte RECV -> local length error at the receiver, "
           "invalid request at the sender\n");
}

int main(int argc, char **argv)
{
    const char *addr = NULL, *only = NULL;
    int timeout_s = 60, c;
    opterr = 0;
    while ((c = getopt(argc, argv, "a:o:t:h")) != -1) {
        if (c == 'a')
            addr = optarg;
        else if (c == 'o')
            only = optarg;
        else if (c == 't' && atoi(optarg) > 0)
            timeout_s = atoi(optarg);
        else {
            fprintf(stderr, "rdma_errors: bad option '-%c'\n%s", optopt ? optopt : c, usage);
            return 2;
        }
    }
    if (!addr || optind < argc) {
        fprintf(stderr, "rdma_errors: the local address (-a) is required\n%s", usage);
        return 2;
    }
    int64_t deadline = ex_now_ms() + timeout_s * 1000LL;
    struct port_ref pr;
    find_port(addr, &pr);

    int ran = 0;
#define SCENARIO(name, call) \
    if (!only || !strcmp(only, name)) { call; ran++; }
    SCENARIO("rnr-exceeded", rnr_exceeded(&pr, deadline));
    SCENARIO("rnr-waits", rnr_waits(&pr, deadline));
    SCENARIO("bad-rkey", access_error(&pr, "bad-rkey", IBV_WR_RDMA_WRITE, IBV_ACCESS_REMOTE_WRITE,
                                      0, 0x5a5a, deadline));
    SCENARIO("out-of-bounds", access_error(&pr, "out-of-bounds", IBV_WR_RDMA_WRITE,
                                           IBV_ACCESS_REMOTE_WRITE, BUF - MSG / 2, 0, deadline));
    SCENARIO("no-read-right", access_error(&pr, "no-read-right", IBV_WR_RDMA_READ,
                                           IBV_ACCESS_REMOTE_WRITE, 0, 0, deadline));
    SCENARIO("recv-too-small", recv_too_small(&pr, deadline));
#undef SCENARIO
    if (ran == 0)
        ex_fail("unknown scenario '%s'", only);
    ibv_close_device(pr.ctx);
    printf("rdma_errors: all scenarios behaved as expected\n");
    return 0;
}
