/* Helpers of the softrdma device tests (sr_test_pair.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "sr_test_pair.h"

long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Polls until n completions arrived or the deadline passed; returns count. */
int poll_n(struct ibv_cq *cq, struct ibv_wc *wc, int n, long ms)
{
    int got = 0;
    long end = now_ms() + ms;
    while (got < n && now_ms() < end) {
        int r = ibv_poll_cq(cq, n - got, wc + got);
        if (r < 0)
            return r;
        got += r;
        if (!r)
            usleep(200);
    }
    return got;
}

void side_init_chs(struct pair *p, struct side *s, int cqe, int sig_all, int access,
                   struct ibv_comp_channel *scq_ch, struct ibv_comp_channel *rcq_ch)
{
    s->scq = ibv_create_cq(p->ctx, cqe, NULL, scq_ch, 0);
    s->rcq = ibv_create_cq(p->ctx, cqe, NULL, rcq_ch, 0);
    assert_non_null(s->scq);
    assert_non_null(s->rcq);
    struct ibv_qp_init_attr a = {
        .send_cq = s->scq, .recv_cq = s->rcq, .qp_type = IBV_QPT_RC, .sq_sig_all = sig_all,
        .cap = { .max_send_wr = 64, .max_recv_wr = 64, .max_send_sge = 4, .max_recv_sge = 4,
                 .max_inline_data = 64 },
    };
    s->qp = ibv_create_qp(p->pd, &a);
    assert_non_null(s->qp);
    s->buf = calloc(1, BUF);
    s->mr = ibv_reg_mr(p->pd, s->buf, BUF, access);
    assert_non_null(s->mr);
}

void side_init_ch(struct pair *p, struct side *s, int cqe, int sig_all, int access,
                  struct ibv_comp_channel *scq_ch)
{
    side_init_chs(p, s, cqe, sig_all, access, scq_ch, NULL);
}

void qp_to_init(struct ibv_qp *qp)
{
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1,
        .qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ };
    assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
                                   IBV_QP_ACCESS_FLAGS), 0);
}

int qp_to_rtr(struct ibv_qp *qp, uint32_t dest, const union ibv_gid *dgid)
{
    struct ibv_qp_attr a;
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_RTR;
    a.dest_qp_num = dest;
    a.path_mtu = IBV_MTU_1024;
    a.ah_attr.is_global = 1;
    a.ah_attr.port_num = 1;
    if (dgid)
        a.ah_attr.grh.dgid = *dgid;
    else
        assert_int_equal(ibv_query_gid(qp->context, 1, 0, &a.ah_attr.grh.dgid), 0);
    return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
                         IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
                         IBV_QP_MIN_RNR_TIMER);
}

void qp_to_rts(struct ibv_qp *qp, int rnr_retry)
{
    struct ibv_qp_attr a;
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_RTS;
    a.rnr_retry = (uint8_t)rnr_retry;
    a.retry_cnt = 7;
    assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
                                   IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC), 0);
}

/* dgid NULL: the GID of port 1 (this host, where both QPs live). */
void qp_connect_gid(struct ibv_qp *qp, uint32_t dest, int rnr_retry, const union ibv_gid *dgid)
{
    qp_to_init(qp);
    assert_int_equal(qp_to_rtr(qp, dest, dgid), 0);
    qp_to_rts(qp, rnr_retry);
}

void side_init(struct pair *p, struct side *s, int cqe, int sig_all, int access)
{
    side_init_ch(p, s, cqe, sig_all, access, NULL);
}

void qp_connect(struct ibv_qp *qp, uint32_t dest, int rnr_retry)
{
    qp_connect_gid(qp, dest, rnr_retry, NULL);
}

struct pair *pair_open(void)
{
    struct pair *p = calloc(1, sizeof *p);
    struct ibv_device **l = ibv_get_device_list(NULL);
    assert_non_null(l);
    assert_non_null(l[0]);
    p->ctx = ibv_open_device(l[0]);
    ibv_free_device_list(l);
    assert_non_null(p->ctx);
    p->pd = ibv_alloc_pd(p->ctx);
    return p;
}

/* Two connected sides; a's send CQ reports to a_scq_ch (may be NULL). */
void pair_connect(struct pair *p, int cqe, int sig_all, int rnr_retry, int b_access,
                  struct ibv_comp_channel *a_scq_ch)
{
    int all = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
    side_init_ch(p, &p->a, cqe, sig_all, all, a_scq_ch);
    side_init(p, &p->b, cqe, sig_all, b_access);
    qp_connect(p->a.qp, p->b.qp->qp_num, rnr_retry);
    qp_connect(p->b.qp, p->a.qp->qp_num, rnr_retry);
}

struct pair *pair_new(int cqe, int sig_all, int rnr_retry, int b_access)
{
    struct pair *p = pair_open();
    pair_connect(p, cqe, sig_all, rnr_retry, b_access, NULL);
    return p;
}

void side_free(struct side *s)
{
    ibv_destroy_qp(s->qp);
    ibv_dereg_mr(s->mr);
    ibv_destroy_cq(s->scq);
    ibv_destroy_cq(s->rcq);
    free(s->buf);
}

void pair_free(struct pair *p)
{
    side_free(&p->a);
    side_free(&p->b);
    ibv_dealloc_pd(p->pd);
    ibv_close_device(p->ctx);
    free(p);
}

void fill(char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (char)(seed + i * 7);
}

void post_recv(struct side *s, uint64_t id, int nsge, size_t off, uint32_t len)
{
    struct ibv_sge g[2] = { { (uintptr_t)s->buf + off, len, s->mr->lkey },
                            { (uintptr_t)s->buf + off + len, len, s->mr->lkey } };
    struct ibv_recv_wr wr = { .wr_id = id, .sg_list = g, .num_sge = nsge }, *bad;
    assert_int_equal(ibv_post_recv(s->qp, &wr, &bad), 0);
}

int post_send(struct side *s, enum ibv_wr_opcode op, uint64_t id, size_t off, uint32_t len,
              unsigned flags, uint64_t raddr, uint32_t rkey, uint32_t lkey)
{
    struct ibv_sge g = { (uintptr_t)s->buf + off, len, lkey };
    struct ibv_send_wr wr = { .wr_id = id, .sg_list = &g, .num_sge = len ? 1 : 0, .opcode = op,
                              .send_flags = flags, .imm_data = htonl(0xC0FFEE) }, *bad;
    wr.wr.rdma.remote_addr = raddr;
    wr.wr.rdma.rkey = rkey;
    return ibv_post_send(s->qp, &wr, &bad);
}

void expect_delivered(struct pair *p, uint32_t len)
{
    struct ibv_wc wc;
    assert_int_equal(poll_n(p->b.rcq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
    assert_memory_equal(p->b.buf, p->a.buf, len);
    assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
}

void send_verified(struct pair *p, uint64_t id, uint32_t len, unsigned seed)
{
    struct ibv_wc wc;
    post_recv(&p->b, id, 1, 0, len);
    fill(p->a.buf, len, seed);
    assert_int_equal(post_send(&p->a, IBV_WR_SEND, id, 0, len, 0, 0, 0, p->a.mr->lkey), 0);
    assert_int_equal(poll_n(p->b.rcq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
    assert_memory_equal(p->b.buf, p->a.buf, len);
}
