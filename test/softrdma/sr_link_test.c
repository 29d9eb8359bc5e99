/* Link state of established RC connections (doc/softrdma.md, "Link
 * state"): in a network namespace of its own, the test makes two veth
 * pairs, lka (10.77.1.1) and lkb (10.77.2.1), and connects QP a on
 * lka's port to QP b on lkb's port (timeout 16 = 268 ms per try,
 * retry_cnt 2: a retry budget of 805 ms). SENDs with their sequence number
 * as immediate flow from a to b while b re-posts receives; then:
 *
 * - a's own interface goes down during the traffic: a's sends complete
 *   SUCCESS for a prefix, then one RETRY_EXC_ERR within the budget (from
 *   the moment the link went down; tolerance for a loaded machine), then
 *   WR_FLUSH_ERR; b received exactly that prefix, in order, data intact,
 *   and nothing lands after the error;
 * - b's interface loses its carrier (its veth peer goes down: the far
 *   end's link, which a learns from b's shared block);
 * - a's interface deleted (as with its namespace): RETRY_EXC_ERR;
 * - a's interface down for 268 ms and up again, well within the budget
 *   (3.2 s on this pair, for a loaded machine's reaction), with sends and an
 *   RDMA WRITE posted into the outage: nothing fails, everything arrives
 *   once, in order, intact.
 *
 * The device learns of a link change from its link watch (sr_link.c), a
 * moment after the command that made it returns: a few ms, more on a
 * loaded machine, and a veth peer's lost carrier reaches even the
 * kernel's own flags only through its linkwatch work. SENDs posted before
 * then still go (a SEND with nothing before it goes into the peer at
 * once), so the tests never count on a fixed number of SENDs falling into
 * the outage: they post until the device holds one, within a deadline. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sr_test_pair.h"

#define TIMEOUT 16
#define RETRY 2
#define MSG 256
#define NRECV 64
/* (RETRY+1) x 4.096 us << timeout */
#define BUDGET_OF(t) ((long)((4096ull << (t)) / 1000000u) * (RETRY + 1))
#define BUDGET_MS BUDGET_OF(TIMEOUT)
/* The outage test: an outage of a third of BUDGET_MS on QPs with a budget
 * of 3.2 s. The link's return has to reach the device within the budget
 * (the command, the kernel's linkwatch work that sets IFF_RUNNING and
 * notifies, the device thread): under load that took over 536 ms (the
 * linkwatch news 430 ms after the command), which failed the QP. */
#define OUTAGE_TIMEOUT 18
#define OUTAGE_MS (BUDGET_MS / 3)
#define WRITE_ID (1ull << 40)  /* the RDMA WRITE's wr_id: above any SEND's seq */
#define SLACK_MS 1500       /* a loaded 2-core machine: the device thread's reaction */

static int sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc)
        print_error("command failed (%d): %s\n", rc, cmd);
    return rc;
}

/* Two veth pairs (no dummy driver everywhere): lka/lka2 and lkb/lkb2, the
 * addresses on lka and lkb; the other ends give them their carrier. */
static void links_make(void)
{
    assert_int_equal(sh("ip link add lka type veth peer name lka2 2>/dev/null;"
                        "ip link add lkb type veth peer name lkb2 2>/dev/null;"
                        "ip addr replace 10.77.1.1/24 dev lka && ip addr replace 10.77.2.1/24 dev lkb &&"
                        "ip link set lka up && ip link set lka2 up && ip link set lkb up &&"
                        "ip link set lkb2 up"), 0);
    /* both carriers on before the QPs are connected */
    long end = now_ms() + DEADLINE_MS;
    while (system("ip -br link show lka | grep -q LOWER_UP && ip -br link show lkb | grep -q LOWER_UP"))
        assert_true(now_ms() < end);
}

/* The port whose first GID is the IPv4 address a.b.c.d. */
static int port_of(struct ibv_context *ctx, const char *ip)
{
    union ibv_gid want = { .raw = { [10] = 0xff, [11] = 0xff } };
    assert_int_equal(inet_pton(AF_INET, ip, &want.raw[12]), 1);
    struct ibv_device_attr da;
    assert_int_equal(ibv_query_device(ctx, &da), 0);
    for (int p = 1; p <= da.phys_port_cnt; p++) {
        union ibv_gid g;
        if (!ibv_query_gid(ctx, (uint8_t)p, 0, &g) && !memcmp(&g, &want, sizeof g))
            return p;
    }
    fail_msg("no port with address %s", ip);
    return 0;
}

static void connect_on(struct ibv_qp *qp, int port, uint32_t dest, struct ibv_context *ctx,
                       int peer_port, uint8_t timeout)
{
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = (uint8_t)port,
        .qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ };
    assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
                                   IBV_QP_ACCESS_FLAGS), 0);
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_RTR;
    a.dest_qp_num = dest;
    a.path_mtu = IBV_MTU_1024;
    a.ah_attr.is_global = 1;
    a.ah_attr.port_num = (uint8_t)port;
    assert_int_equal(ibv_query_gid(ctx, (uint8_t)peer_port, 0, &a.ah_attr.grh.dgid), 0);
    assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
                                   IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
                                   IBV_QP_MIN_RNR_TIMER), 0);
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_RTS;
    a.timeout = timeout;
    a.retry_cnt = RETRY;
    a.rnr_retry = 7;
    assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
                                   IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC), 0);
}

/* a on lka, b on lkb, b's NRECV receives posted (receive i at offset
 * (i % NRECV) * MSG). */
static struct pair *link_pair(uint8_t timeout)
{
    links_make();
    struct pair *p = pair_open();
    int all = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
    side_init(p, &p->a, 256, 1, all);
    side_init(p, &p->b, 256, 1, all);
    int pa = port_of(p->ctx, "10.77.1.1"), pb = port_of(p->ctx, "10.77.2.1");
    connect_on(p->a.qp, pa, p->b.qp->qp_num, p->ctx, pb, timeout);
    connect_on(p->b.qp, pb, p->a.qp->qp_num, p->ctx, pa, timeout);
    for (int i = 0; i < NRECV; i++)
        post_recv(&p->b, (uint64_t)i, 1, (size_t)(i % NRECV) * MSG, MSG);
    return p;
}

/* What the traffic saw. */
struct run {
    int posted;             /* SENDs posted: seq 0..posted-1 */
    int sent_ok, err_at;    /* a: successes before the error, its seq (-1: none) */
    int flushed;
    int got;                /* b: receives completed, in order */
    int writes;             /* a: successful RDMA WRITEs (WRITE_ID) */
    long t_down0, t_down;   /* `down` started, returned: the link went down between */
    long t_err;
};

/* b's completions: each the next seq, data intact; its receive re-posted. */
static void take_recvs(struct pair *p, struct run *r)
{
    struct ibv_wc wc[16];
    int n = ibv_poll_cq(p->b.rcq, 16, wc);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        assert_int_equal(wc[i].status, IBV_WC_SUCCESS);
        assert_int_equal(ntohl(wc[i].imm_data), (uint32_t)r->got);     /* in order, once */
        assert_int_equal(wc[i].byte_len, MSG);
        char want[MSG];
        fill(want, MSG, (unsigned)r->got);
        assert_memory_equal(p->b.buf + (size_t)(wc[i].wr_id % NRECV) * MSG, want, MSG);
        memset(p->b.buf + (size_t)(wc[i].wr_id % NRECV) * MSG, 0, MSG);
        post_recv(&p->b, wc[i].wr_id + NRECV, 1, (size_t)(wc[i].wr_id % NRECV) * MSG, MSG);
        r->got++;
    }
}

/* a's completions: SUCCESS..., then at most one error, then flushes. */
static void take_sends(struct pair *p, struct run *r, enum ibv_wc_status err)
{
    struct ibv_wc wc[16];
    int n = ibv_poll_cq(p->a.scq, 16, wc);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        if (wc[i].status == IBV_WC_SUCCESS && wc[i].wr_id == WRITE_ID) {
            assert_int_equal(wc[i].opcode, IBV_WC_RDMA_WRITE);
            r->writes++;
        } else if (wc[i].status == IBV_WC_SUCCESS) {
            assert_int_equal(r->err_at, -1);
            assert_int_equal(wc[i].wr_id, (uint64_t)r->sent_ok);
            r->sent_ok++;
        } else if (r->err_at < 0) {
            assert_int_equal(wc[i].status, err);
            assert_int_equal(wc[i].wr_id, (uint64_t)r->sent_ok);
            r->err_at = (int)wc[i].wr_id;
            r->t_err = now_ms();
        } else {
            assert_int_equal(wc[i].status, IBV_WC_WR_FLUSH_ERR);
            r->flushed++;
        }
    }
}

static int post_seq(struct pair *p, int seq)
{
    size_t off = (size_t)(seq % 64) * MSG;
    fill(p->a.buf + off, MSG, (unsigned)seq);
    struct ibv_sge g = { (uintptr_t)p->a.buf + off, MSG, p->a.mr->lkey };
    struct ibv_send_wr wr = { .wr_id = (uint64_t)seq, .sg_list = &g, .num_sge = 1,
                              .opcode = IBV_WR_SEND_WITH_IMM, .send_flags = IBV_SEND_SIGNALED,
                              .imm_data = htonl((uint32_t)seq) }, *bad;
    return ibv_post_send(p->a.qp, &wr, &bad);
}

/* 100 SENDs, then `down` runs (the link goes away mid-stream), then SENDs
 * until the QP fails: they go until the device sees the link down, then
 * fill the send queue, held, until the budget is spent. The deadline
 * bounds it (no error in time fails the test). */
static void traffic(struct pair *p, struct run *r, const char *down, enum ibv_wc_status err)
{
    *r = (struct run){ .err_at = -1 };
    long end = now_ms() + DEADLINE_MS;
    for (int seq = 0; r->err_at < 0 && now_ms() < end; seq++) {
        if (seq == 100) {
            r->t_down0 = now_ms();
            assert_int_equal(sh(down), 0);
            r->t_down = now_ms();
        }
        int rc;
        while ((rc = post_seq(p, seq)) == ENOMEM && r->err_at < 0 && now_ms() < end) {
            take_sends(p, r, err);      /* the queue is full: wait for room or the error */
            take_recvs(p, r);
            usleep(200);
        }
        if (rc)
            break;
        r->posted = seq + 1;
        take_sends(p, r, err);
        take_recvs(p, r);
    }
}

/* Waits for every posted SEND's completion. */
static void settle(struct pair *p, struct run *r, enum ibv_wc_status err, long ms)
{
    long end = now_ms() + ms;
    while (r->sent_ok + (r->err_at >= 0) + r->flushed < r->posted && now_ms() < end) {
        take_sends(p, r, err);
        take_recvs(p, r);
        usleep(500);
    }
    take_recvs(p, r);
}

static void expect_retry_exc(const char *down, const char *up)
{
    struct pair *p = link_pair(TIMEOUT);
    struct run r;
    traffic(p, &r, down, IBV_WC_RETRY_EXC_ERR);
    settle(p, &r, IBV_WC_RETRY_EXC_ERR, BUDGET_MS + SLACK_MS + DEADLINE_MS);
    long took = r.t_err - r.t_down;
    print_message("%s: %d posted, %d delivered, RETRY_EXC_ERR at seq %d after %ld ms (budget %ld), "
                  "%d flushed\n", down, r.posted, r.sent_ok, r.err_at, took, BUDGET_MS, r.flushed);
    assert_true(r.err_at >= 100);       /* the traffic before went through */
    assert_int_equal(r.sent_ok + 1 + r.flushed, r.posted);
    /* the budget runs from the moment the link went down, some time while
     * `down` ran: not before it started, not later (the slack) than it ended */
    assert_true(r.t_err - r.t_down0 >= BUDGET_MS - 20);
    assert_true(took <= BUDGET_MS + SLACK_MS);
    /* nothing lands after the error: b received exactly the prefix */
    long quiet = now_ms() + 200;
    while (now_ms() < quiet)
        take_recvs(p, &r);
    assert_int_equal(r.got, r.sent_ok);
    struct ibv_qp_attr a;
    struct ibv_qp_init_attr ia;
    assert_int_equal(ibv_query_qp(p->a.qp, &a, IBV_QP_STATE, &ia), 0);
    assert_int_equal(a.qp_state, IBV_QPS_ERR);
    assert_int_equal(sh(up), 0);
    pair_free(p);
}

static void test_own_link_down(void **st)
{
    (void)st;
    expect_retry_exc("ip link set lka down", "ip link set lka up");
}

static void test_peer_link_down(void **st)
{
    (void)st;
    /* the far end loses its carrier (its veth peer down), as on a wire */
    expect_retry_exc("ip link set lkb2 down", "ip link set lkb2 up");
}

static void test_interface_deleted(void **st)
{
    (void)st;
    expect_retry_exc("ip link del lka", "true");
}

/* SENDs one at a time after a's link went down, until the device holds
 * one (it does not complete at once: a SEND with nothing before it goes
 * into the peer within ibv_post_send); the ones before it went through.
 * Returns the next seq. */
static int post_until_held(struct pair *p, struct run *r, int seq)
{
    long end = now_ms() + DEADLINE_MS;
    for (;;) {
        assert_int_equal(post_seq(p, seq++), 0);
        r->posted++;
        take_sends(p, r, IBV_WC_SUCCESS);
        take_recvs(p, r);
        if (r->sent_ok < r->posted)
            return seq;
        assert_true(now_ms() < end);    /* the link watch never held a SEND */
        usleep(200);
    }
}

/* Down, SENDs and a WRITE held by the outage, up again after OUTAGE_MS
 * (within the QPs' budget, with room for a loaded machine's reaction):
 * nothing lost, nothing twice. */
static void test_outage_survived(void **st)
{
    (void)st;
    struct pair *p = link_pair(OUTAGE_TIMEOUT);
    struct run r = { .err_at = -1 };
    int seq;
    for (seq = 0; seq < 50; seq++) {
        assert_int_equal(post_seq(p, seq), 0);
        r.posted++;
        settle(p, &r, IBV_WC_SUCCESS, DEADLINE_MS);
    }
    assert_int_equal(sh("ip link set lka down"), 0);
    seq = post_until_held(p, &r, seq);
    long t0 = now_ms();
    /* more sends into the outage, and a WRITE of a fresh pattern */
    for (int i = 0; i < 30; i++) {
        assert_int_equal(post_seq(p, seq++), 0);
        r.posted++;
    }
    fill(p->a.buf + 32768, 4096, 99);
    assert_int_equal(post_send(&p->a, IBV_WR_RDMA_WRITE, WRITE_ID, 32768, 4096, IBV_SEND_SIGNALED,
                               (uintptr_t)p->b.buf + 32768, p->b.mr->rkey, p->a.mr->lkey), 0);
    while (now_ms() < t0 + OUTAGE_MS) {
        take_sends(p, &r, IBV_WC_SUCCESS);
        take_recvs(p, &r);
        usleep(1000);
    }
    int during = r.got, sends = r.posted;
    long t_up = now_ms();
    assert_int_equal(sh("ip link set lka up"), 0);
    print_message("link up %ld ms after the first SEND was held (command: %ld ms, budget %ld)\n",
                  now_ms() - t0, now_ms() - t_up, BUDGET_OF(OUTAGE_TIMEOUT));
    r.posted++;     /* the WRITE */
    long end = now_ms() + DEADLINE_MS;
    while (r.sent_ok + r.writes < r.posted && r.err_at < 0 && now_ms() < end) {
        take_sends(p, &r, IBV_WC_SUCCESS);
        take_recvs(p, &r);
        usleep(500);
    }
    long quiet = now_ms() + 200;
    while (now_ms() < quiet)
        take_recvs(p, &r);
    print_message("outage of %ld ms: %d of %d delivered during it, %d after, error %d\n",
                  OUTAGE_MS, during, sends, r.got, r.err_at);
    assert_int_equal(r.err_at, -1);
    assert_true(during < sends);    /* the outage held something back */
    assert_int_equal(r.sent_ok, sends);
    assert_int_equal(r.got, sends);
    assert_int_equal(r.writes, 1);
    char want[4096];
    fill(want, sizeof want, 99);
    assert_memory_equal(p->b.buf + 32768, want, sizeof want);
    pair_free(p);
}

int main(void)
{
    if (geteuid() != 0) {
        printf("sr_link_test: needs root (a network namespace of its own); skipped\n");
        return 0;
    }
    if (unshare(CLONE_NEWNET)) {
        perror("unshare(CLONE_NEWNET)");
        return 1;
    }
    if (sh("ip link set lo up"))
        return 1;
    char dir[] = "/dev/shm/sr-link-fabric.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    setenv("SOFTRDMA_FABRIC", dir, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outage_survived),
        cmocka_unit_test(test_own_link_down),
        cmocka_unit_test(test_peer_link_down),
        cmocka_unit_test(test_interface_deleted),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) {}
    return rc;
}
