/* softrdma_bench: latency (SEND ping-pong), throughput (RDMA_WRITE
 * stream) and the rate of a stream of 64 B SENDs (window 16, the receiver
 * re-posting each receive) between two processes on the device. Not a
 * test: it prints
 *   latency_us=<avg round trip / 2> write_MBps=<MB/s> send_msgs_per_s=<n>
 * Run with LD_LIBRARY_PATH=release/lib64/softrdma (tools/bench.sh does).
 * Usage: softrdma_bench [iterations] [MiB to write] [block]
 * "block": waiting sides sleep on a completion channel (ibv_req_notify_cq,
 * ibv_get_cq_event) instead of polling: the figures then include the
 * wake-ups, as blocking programs see them. */
#include <arpa/inet.h>
#include <infiniband/verbs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <sched.h>
#include <unistd.h>
#define BENCH_NAME "softrdma_bench"
#include "softrdma_bench_util.h"

#define MSG 65536
#define WINDOW 16
#define RING (MSG * WINDOW)

static int block_mode;

struct ep {
    struct ibv_comp_channel *ch;
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct ibv_cq *cq;
    struct ibv_qp *qp;
    struct ibv_mr *mr;
    char *buf;
};

static void ep_open(struct ep *e)
{
    struct ibv_device **l = ibv_get_device_list(NULL);
    if (!l || !l[0] || !(e->ctx = ibv_open_device(l[0])))
        die("opening the device (is LD_LIBRARY_PATH set to release/lib64/softrdma?)");
    ibv_free_device_list(l);
    e->pd = ibv_alloc_pd(e->ctx);
    e->ch = block_mode ? ibv_create_comp_channel(e->ctx) : NULL;
    if (block_mode && !e->ch)
        die("ibv_create_comp_channel");
    e->cq = ibv_create_cq(e->ctx, 4 * WINDOW, NULL, e->ch, 0);
    struct ibv_qp_init_attr a = { .send_cq = e->cq, .recv_cq = e->cq, .qp_type = IBV_QPT_RC,
        .sq_sig_all = 1, .cap = { .max_send_wr = WINDOW, .max_recv_wr = WINDOW,
                                  .max_send_sge = 1, .max_recv_sge = 1, .max_inline_data = 64 } };
    e->qp = ibv_create_qp(e->pd, &a);
    e->buf = calloc(1, RING);
    e->mr = ibv_reg_mr(e->pd, e->buf, RING, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
    if (!e->pd || !e->cq || !e->qp || !e->buf || !e->mr)
        die("creating resources");
}

static void ep_connect(struct ep *e, uint32_t dest)
{
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1,
        .qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE };
    if (ibv_modify_qp(e->qp, &a, IBV_QP_STATE | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS | IBV_QP_PKEY_INDEX))
        die("INIT");
    a.qp_state = IBV_QPS_RTR;
    a.dest_qp_num = dest;
    if (ibv_modify_qp(e->qp, &a, IBV_QP_STATE | IBV_QP_DEST_QPN))
        die("RTR");
    a.qp_state = IBV_QPS_RTS;
    a.rnr_retry = 7;
    if (ibv_modify_qp(e->qp, &a, IBV_QP_STATE | IBV_QP_RNR_RETRY))
        die("RTS");
}

static void post_recv(struct ep *e)
{
    struct ibv_sge g = { (uintptr_t)e->buf, 64, e->mr->lkey };
    struct ibv_recv_wr wr = { .sg_list = &g, .num_sge = 1 }, *bad;
    if (ibv_post_recv(e->qp, &wr, &bad))
        die("ibv_post_recv");
}

static void post_send(struct ep *e, enum ibv_wr_opcode op, size_t off, uint32_t len,
                      uint64_t raddr, uint32_t rkey)
{
    struct ibv_sge g = { (uintptr_t)e->buf + off, len, e->mr->lkey };
    struct ibv_send_wr wr = { .sg_list = &g, .num_sge = 1, .opcode = op,
                              .send_flags = len <= 64 ? IBV_SEND_INLINE : 0 }, *bad;
    wr.wr.rdma.remote_addr = raddr;
    wr.wr.rdma.rkey = rkey;
    if (ibv_post_send(e->qp, &wr, &bad))
        die("ibv_post_send");
}

/* Waits for one completion (bounded by 30 s). Block mode arms the CQ,
 * polls once more (a completion that came meanwhile is not missed), then
 * sleeps in ibv_get_cq_event. */
static void wait_wc(struct ep *e, struct ibv_wc *wc)
{
    double end = mono_now() + 30;
    for (int armed = 0;;) {
        int n = ibv_poll_cq(e->cq, 1, wc);
        if (n < 0 || (n == 1 && wc->status != IBV_WC_SUCCESS))
            die("completion");
        if (n == 1)
            return;
        if (block_mode && !armed) {
            if (ibv_req_notify_cq(e->cq, 0))
                die("ibv_req_notify_cq");
            armed = 1;
        } else if (block_mode) {
            struct ibv_cq *cq;
            void *ctx;
            if (ibv_get_cq_event(e->ch, &cq, &ctx))
                die("ibv_get_cq_event");
            ibv_ack_cq_events(cq, 1);
            armed = 0;
        } else {
            sched_yield();  /* the device thread needs the CPU more than we do */
        }
        if (mono_now() > end)
            die("waiting for a completion (30 s)");
    }
}

struct hello { uint32_t qpn, rkey; uint64_t addr; };

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 20000;
    long mib = argc > 2 ? atol(argv[2]) : 1024;
    block_mode = argc > 3 && !strcmp(argv[3], "block");
    int p2c[2], c2p[2];
    if (pipe(p2c) || pipe(c2p))
        die("pipe");
    pid_t pid = fork();
    struct ep e;
    struct hello mine, peer;
    struct ibv_wc wc;
    ep_open(&e);
    mine = (struct hello){ e.qp->qp_num, e.mr->rkey, (uintptr_t)e.buf };
    int wfd = pid ? p2c[1] : c2p[1], rfd = pid ? c2p[0] : p2c[0];
    if (write(wfd, &mine, sizeof mine) != sizeof mine || read(rfd, &peer, sizeof peer) != sizeof peer)
        die("exchanging QP numbers");
    ep_connect(&e, peer.qpn);
    for (int i = 0; i < WINDOW; i++)
        post_recv(&e);
    char go = 1;    /* both sides in RTS, receives posted */
    if (write(wfd, &go, 1) != 1 || read(rfd, &go, 1) != 1)
        die("sync");
    long nsend = 4L * iters;
    if (!pid) {     /* child: echo pings, then take the SEND stream and "done" */
        for (int i = 0; i < iters; i++) {
            do wait_wc(&e, &wc); while (wc.opcode != IBV_WC_RECV);
            post_recv(&e);
            post_send(&e, IBV_WR_SEND, 0, 8, 0, 0);
        }
        for (long i = 0; i <= nsend; i++) {
            do wait_wc(&e, &wc); while (wc.opcode != IBV_WC_RECV);
            post_recv(&e);
        }
        _exit(0);
    }
    double t0 = mono_now();
    for (int i = 0; i < iters; i++) {
        post_send(&e, IBV_WR_SEND, 0, 8, 0, 0);
        int got_recv = 0, got_send = 0;
        while (!got_recv || !got_send) {
            wait_wc(&e, &wc);
            if (wc.opcode == IBV_WC_RECV) {
                got_recv = 1;
                post_recv(&e);
            } else {
                got_send = 1;
            }
        }
    }
    double lat = (mono_now() - t0) / iters / 2 * 1e6;
    long total = mib * 1024 * 1024 / MSG, posted = 0, done = 0;
    t0 = mono_now();
    while (done < total) {
        while (posted < total && posted - done < WINDOW) {
            size_t off = (size_t)(posted % WINDOW) * MSG;
            post_send(&e, IBV_WR_RDMA_WRITE, off, MSG, peer.addr + off, peer.rkey);
            posted++;
        }
        wait_wc(&e, &wc);
        done++;
    }
    double secs = mono_now() - t0;
    posted = done = 0;
    t0 = mono_now();
    while (done < nsend) {
        while (posted < nsend && posted - done < WINDOW) {
            post_send(&e, IBV_WR_SEND, 0, 64, 0, 0);
            posted++;
        }
        wait_wc(&e, &wc);
        done++;
    }
    double rate = (double)nsend / (mono_now() - t0);
    post_send(&e, IBV_WR_SEND, 0, 8, 0, 0);     /* "done" */
    int status;
    waitpid(pid, &status, 0);
    printf("latency_us=%.1f write_MBps=%.0f send_msgs_per_s=%.0f\n", lat,
           (double)total * MSG / secs / 1e6, rate);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
