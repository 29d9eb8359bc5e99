/* A process at its descriptor limit (EMFILE) still knows its own GIDs.
 * getifaddrs needs a netlink socket, so at the limit it fails; the device
 * used to take that as "no interfaces": a stream whose connect() had
 * succeeded was then addressed to a "foreign" GID and dropped, and the
 * sender's work completed with RETRY_EXC_ERR (nothing logged on its side).
 *
 * Two RC QPs of this process, connected by hand with a global route to
 * port 1's GID 0. B goes to RTR first; then every descriptor but two is
 * taken (A's requester socket and the device's accept of it), A goes to
 * RTR, and its stream's GID check runs with no descriptor left. A SEND
 * from A must arrive in B's buffer intact. The queries that list ports
 * (ibv_query_port, ibv_query_gid, rdma_bind_addr on a local address) must
 * answer from the interface table, not fail; rdma_create_event_channel
 * fails with EMFILE (not ENOMEM). Run with LD_LIBRARY_PATH at the
 * softrdma build. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "sr_test_proc.h"

#define MSG "sent at the descriptor limit"

static int fillers[1024], nfill;

/* Takes every free descriptor, then gives back the last `keep`. */
static void exhaust_fds(int keep)
{
    int fd;
    while (nfill < 1024 && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        fillers[nfill++] = fd;
    if (errno != EMFILE)
        FAIL("could not reach the descriptor limit: %s", strerror(errno));
    for (int i = 0; i < keep; i++)
        close(fillers[--nfill]);
}


/* B's requester stream is two descriptors (its socket, and the device's
 * accept of it on A's side, both in this process), opened at RTR and
 * closed by the device once the attach offer is read and nothing is on
 * it: wait until both ends are gone (the count is back to `want`), so
 * that it takes none of the two left free. */
static void wait_fds(int want)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (count_fds() != want) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 20)
            FAIL("B's stream was not accepted and closed again in 20 s (%d fds, want %d)",
                 count_fds(), want);
        usleep(1000);
    }
}

static void release_fds(void)
{
    while (nfill)
        close(fillers[--nfill]);
}

static void to_rts(struct ibv_qp *qp, uint32_t dest, const union ibv_gid *gid, int rts)
{
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1,
                             .qp_access_flags = IBV_ACCESS_LOCAL_WRITE };
    if (qp->state == IBV_QPS_RESET &&
        ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
        FAIL("INIT");
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_RTR;
    a.path_mtu = IBV_MTU_1024;
    a.dest_qp_num = dest;
    a.max_dest_rd_atomic = 1;
    a.min_rnr_timer = 12;
    a.ah_attr.is_global = 1;
    a.ah_attr.port_num = 1;
    a.ah_attr.grh.dgid = *gid;
    a.ah_attr.grh.hop_limit = 64;
    if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
                      IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
        FAIL("RTR: %s", strerror(errno));
    if (!rts)
        return;
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_RTS;
    a.timeout = 10;
    a.retry_cnt = 2;
    a.rnr_retry = 7;
    a.max_rd_atomic = 1;
    if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
                      IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
        FAIL("RTS");
}

static struct ibv_wc poll_one(struct ibv_cq *cq)
{
    struct ibv_wc wc;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int n = ibv_poll_cq(cq, 1, &wc);
        if (n == 1)
            return wc;
        if (n < 0)
            FAIL("ibv_poll_cq %d", n);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 20)
            FAIL("no completion in 20 s");
        usleep(1000);
    }
}

/* Queries that list the ports, at the limit: answered from the table. */
static void check_queries(struct ibv_context *ctx, const union ibv_gid *gid0)
{
    struct ibv_port_attr pa;
    union ibv_gid g;
    if (ibv_query_port(ctx, 1, &pa))
        FAIL("ibv_query_port at EMFILE failed");
    if (ibv_query_gid(ctx, 1, 0, &g) || memcmp(&g, gid0, sizeof g))
        FAIL("ibv_query_gid at EMFILE failed or changed");
    struct rdma_cm_id *id;
    if (rdma_create_id(NULL, &id, NULL, RDMA_PS_TCP))
        FAIL("rdma_create_id: %s", strerror(errno));
    exhaust_fds(0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (rdma_bind_addr(id, (struct sockaddr *)&sa))
        FAIL("rdma_bind_addr(127.0.0.1) at EMFILE: %s", strerror(errno));
    errno = 0;
    if (rdma_create_event_channel() || errno != EMFILE)
        FAIL("rdma_create_event_channel at the limit: errno %s, want EMFILE", strerror(errno));
    release_fds();
    rdma_destroy_id(id);
}

int main(void)
{
    /* QP streams closed while idle (the default, 2; set in case the
     * environment says otherwise): doc/softrdma.md "Streams open only
     * while used" */
    setenv("SOFTRDMA_IDLE_CLOSE", "2", 1);
    struct rlimit rl = { 256, 256 };
    if (setrlimit(RLIMIT_NOFILE, &rl))
        FAIL("setrlimit");
    struct ibv_device **l = ibv_get_device_list(NULL);
    struct ibv_context *ctx = l && l[0] ? ibv_open_device(l[0]) : NULL;
    if (!ctx)
        FAIL("no softrdma device (LD_LIBRARY_PATH?)");
    union ibv_gid gid;
    if (ibv_query_gid(ctx, 1, 0, &gid))
        FAIL("ibv_query_gid");
    struct ibv_pd *pd = ibv_alloc_pd(ctx);
    struct ibv_cq *cq = ibv_create_cq(ctx, 16, NULL, NULL, 0);
    struct ibv_qp_init_attr ia = { .send_cq = cq, .recv_cq = cq, .qp_type = IBV_QPT_RC,
                                   .cap = { .max_send_wr = 4, .max_recv_wr = 4,
                                            .max_send_sge = 1, .max_recv_sge = 1 } };
    struct ibv_qp *a = ibv_create_qp(pd, &ia), *b = ibv_create_qp(pd, &ia);
    static char sbuf[64] = MSG, rbuf[64];
    struct ibv_mr *smr = ibv_reg_mr(pd, sbuf, sizeof sbuf, IBV_ACCESS_LOCAL_WRITE);
    struct ibv_mr *rmr = ibv_reg_mr(pd, rbuf, sizeof rbuf, IBV_ACCESS_LOCAL_WRITE);
    if (!pd || !cq || !a || !b || !smr || !rmr)
        FAIL("resources");
    struct ibv_sge rs = { (uintptr_t)rbuf, sizeof rbuf, rmr->lkey };
    struct ibv_recv_wr rw = { .wr_id = 2, .sg_list = &rs, .num_sge = 1 }, *brw;
    int before = count_fds();
    to_rts(b, a->qp_num, &gid, 0);
    wait_fds(before);
    if (ibv_post_recv(b, &rw, &brw))
        FAIL("post_recv");
    check_queries(ctx, &gid);
    exhaust_fds(2);
    to_rts(a, b->qp_num, &gid, 1);
    struct ibv_sge ss = { (uintptr_t)sbuf, sizeof MSG, smr->lkey };
    struct ibv_send_wr sw = { .wr_id = 1, .sg_list = &ss, .num_sge = 1, .opcode = IBV_WR_SEND,
                              .send_flags = IBV_SEND_SIGNALED }, *bsw;
    if (ibv_post_send(a, &sw, &bsw))
        FAIL("post_send");
    for (int got = 0; got < 2; got++) {
        struct ibv_wc wc = poll_one(cq);
        if (wc.status != IBV_WC_SUCCESS)
            FAIL("wr %llu completed with %s", (unsigned long long)wc.wr_id,
                 ibv_wc_status_str(wc.status));
    }
    release_fds();
    if (strcmp(rbuf, MSG))
        FAIL("data differs: \"%.63s\"", rbuf);
    printf("PASS: a SEND at the descriptor limit arrived; queries answered from the table\n");
    return 0;
}
