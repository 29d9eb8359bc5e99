/* softrdma_ud_bench: UD between two processes on the device: the one-way
 * latency of a 64 B SEND (half the ping-pong round trip, both sides
 * polling, yielding the CPU between polls as softrdma_bench does) and the rate of a stream of 64 B inline SENDs (the sender
 * polls its completions, the receiver keeps 512 receives posted and
 * re-posts each as it completes; UD drops what finds no receive, so the
 * delivered rate and the loss are printed too). Not a test: it prints
 *   ud_latency_us=<x> ud_send_msgs_per_s=<n> ud_recv_msgs_per_s=<n> ud_lost=<n>
 * Usage: softrdma_ud_bench [iterations] [stream messages]
 * Run with LD_LIBRARY_PATH=release/lib64/softrdma. */
#include <arpa/inet.h>
#include <infiniband/verbs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>
#define BENCH_NAME "softrdma_ud_bench"
#include "softrdma_bench_util.h"

#define QKEY 0x1234u
#define RQ 512
#define SLOT 128
#define GRH 40

struct ep {
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct ibv_cq *scq, *rcq;
    struct ibv_qp *qp;
    struct ibv_mr *mr;
    struct ibv_ah *ah;
    char *buf;
};

static void ep_modify(struct ep *e)
{
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1, .qkey = QKEY };
    if (ibv_modify_qp(e->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_QKEY))
        die("INIT");
    a.qp_state = IBV_QPS_RTR;
    if (ibv_modify_qp(e->qp, &a, IBV_QP_STATE))
        die("RTR");
    a.qp_state = IBV_QPS_RTS;
    if (ibv_modify_qp(e->qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN))
        die("RTS");
}

static void ep_open(struct ep *e)
{
    struct ibv_device **l = ibv_get_device_list(NULL);
    if (!l || !l[0] || !(e->ctx = ibv_open_device(l[0])))
        die("opening the device (is LD_LIBRARY_PATH set to release/lib64/softrdma?)");
    ibv_free_device_list(l);
    e->pd = ibv_alloc_pd(e->ctx);
    e->scq = ibv_create_cq(e->ctx, 256, NULL, NULL, 0);
    e->rcq = ibv_create_cq(e->ctx, 2 * RQ, NULL, NULL, 0);
    struct ibv_qp_init_attr a = { .send_cq = e->scq, .recv_cq = e->rcq, .qp_type = IBV_QPT_UD,
        .sq_sig_all = 1, .cap = { .max_send_wr = 64, .max_recv_wr = RQ, .max_send_sge = 1,
                                  .max_recv_sge = 1, .max_inline_data = 64 } };
    e->qp = ibv_create_qp(e->pd, &a);
    e->buf = calloc(RQ + 1, SLOT);
    e->mr = ibv_reg_mr(e->pd, e->buf, (RQ + 1) * SLOT, IBV_ACCESS_LOCAL_WRITE);
    struct ibv_ah_attr aa = { .port_num = 1 };
    e->ah = ibv_create_ah(e->pd, &aa);
    if (!e->pd || !e->scq || !e->rcq || !e->qp || !e->buf || !e->mr || !e->ah)
        die("creating resources");
    ep_modify(e);
}

static void post_recv(struct ep *e, uint64_t slot)
{
    struct ibv_sge g = { (uintptr_t)e->buf + slot * SLOT, SLOT, e->mr->lkey };
    struct ibv_recv_wr wr = { .wr_id = slot, .sg_list = &g, .num_sge = 1 }, *bad;
    if (ibv_post_recv(e->qp, &wr, &bad))
        die("ibv_post_recv");
}

static void post_send(struct ep *e, uint32_t qpn)
{
    struct ibv_sge g = { (uintptr_t)e->buf + (size_t)RQ * SLOT, 64, e->mr->lkey };
    struct ibv_send_wr wr = { .sg_list = &g, .num_sge = 1, .opcode = IBV_WR_SEND,
                              .send_flags = IBV_SEND_INLINE }, *bad;
    wr.wr.ud.ah = e->ah;
    wr.wr.ud.remote_qpn = qpn;
    wr.wr.ud.remote_qkey = QKEY;
    if (ibv_post_send(e->qp, &wr, &bad))
        die("ibv_post_send");
}

/* One completion of cq within secs; 0 if none came. */
static int poll_one(struct ibv_cq *cq, struct ibv_wc *wc, double secs)
{
    double end = mono_now() + secs;
    for (long i = 0;; i++) {
        int n = ibv_poll_cq(cq, 1, wc);
        if (n < 0 || (n == 1 && wc->status != IBV_WC_SUCCESS))
            die("completion");
        if (n == 1)
            return 1;
        sched_yield();  /* as softrdma_bench: on few cores the peer needs the CPU */
        if (!(i & 63) && mono_now() > end)
            return 0;
    }
}

static void xfer(int wfd, int rfd, uint32_t *mine, uint32_t *theirs)
{
    if (write(wfd, mine, sizeof *mine) != sizeof *mine || read(rfd, theirs, sizeof *theirs) != sizeof *theirs)
        die("exchanging QPNs");
}

/* Ping-pong: the initiator sends first; each side answers what it got. */
static double pingpong(struct ep *e, uint32_t peer, int iters, int initiator)
{
    struct ibv_wc wc, swc;
    double t0 = mono_now();
    for (int i = 0; i < iters; i++) {
        if (initiator) {
            post_send(e, peer);
            if (!poll_one(e->scq, &swc, 2) || !poll_one(e->rcq, &wc, 2))
                die("ping-pong (a datagram lost)");
        } else {
            if (!poll_one(e->rcq, &wc, 2))
                die("ping-pong (a datagram lost)");
            post_send(e, peer);
            if (!poll_one(e->scq, &swc, 2))
                die("send completion");
        }
        post_recv(e, wc.wr_id < RQ ? wc.wr_id : 0);
    }
    return (mono_now() - t0) / iters / 2 * 1e6;
}

static void stream_send(struct ep *e, uint32_t peer, int n, int done_fd)
{
    struct ibv_wc wc;
    double t0 = mono_now();
    for (int i = 0; i < n; i++) {
        post_send(e, peer);
        if (!poll_one(e->scq, &wc, 2))
            die("send completion");
    }
    double secs = mono_now() - t0;
    if (write(done_fd, &secs, sizeof secs) != sizeof secs)
        die("reporting");
}

/* Counts what arrives until 200 ms pass without a datagram. */
static void stream_recv(struct ep *e, int n, int done_fd)
{
    struct ibv_wc wc;
    long got = 0;
    double first = 0, last = 0;
    while (got < n && poll_one(e->rcq, &wc, got ? 0.2 : 5)) {
        last = mono_now();
        if (!got++)
            first = last;
        post_recv(e, wc.wr_id);
    }
    double secs;
    if (read(done_fd, &secs, sizeof secs) != sizeof secs)
        die("reading the sender's time");
    printf("ud_send_msgs_per_s=%.0f ud_recv_msgs_per_s=%.0f ud_lost=%ld\n", n / secs,
           got > 1 ? (got - 1) / (last - first) : 0.0, n - got);
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 10000;
    int n = argc > 2 ? atoi(argv[2]) : 200000;
    int a2b[2], b2a[2];
    if (pipe(a2b) || pipe(b2a))
        die("pipe");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    struct ep e;
    memset(&e, 0, sizeof e);
    ep_open(&e);
    for (uint64_t s = 0; s < RQ; s++)
        post_recv(&e, s);
    uint32_t me = e.qp->qp_num, peer;
    if (pid == 0) {     /* B: answers the ping-pong, then sends the stream */
        xfer(b2a[1], a2b[0], &me, &peer);
        pingpong(&e, peer, iters, 0);
        stream_send(&e, peer, n, b2a[1]);
        _exit(0);
    }
    xfer(a2b[1], b2a[0], &me, &peer);
    double lat = pingpong(&e, peer, iters, 1);
    printf("ud_latency_us=%.2f ", lat);
    stream_recv(&e, n, b2a[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
