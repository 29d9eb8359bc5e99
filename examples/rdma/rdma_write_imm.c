/* rdma_write_imm: RDMA WRITE WITH IMMEDIATE as "data + notification".
 *
 * A plain RDMA WRITE is invisible to the target's CPU. WRITE_WITH_IMM puts
 * the data into the target buffer exactly like a WRITE, and additionally
 * consumes one posted RECV at the target, whose completion
 * (IBV_WC_RECV_RDMA_WITH_IMM) carries 32 bits of immediate data and the
 * number of bytes written. The RECV needs no buffer of its own.
 *
 * Here the immediate value is the iteration number in network byte order
 * (the verbs API passes imm_data through untouched, so both sides convert).
 * For every iteration the server checks the immediate value, the length and
 * the data, then answers with a 4-byte SEND so the client may reuse the
 * buffer: a simple one-message flow control.
 *
 *   server:  rdma_write_imm -s -a 192.168.21.180 [-p 7472]
 *   client:  rdma_write_imm -c 192.168.21.180 [-p 7472] [-n 1000] [-S 16384]
 */
#include "ex_common.h"

#include <arpa/inet.h>
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: rdma_write_imm -s [-a BIND_ADDR] [-p PORT] [-S BYTES] [-t SECONDS]\n"
    "       rdma_write_imm -c SERVER_ADDR [-p PORT] [-n ITERATIONS] [-S BYTES] [-t SECONDS]\n";

enum { QUEUE_DEPTH = 8 };

/* Server -> client in the accept private data (network byte order). */
struct buf_info {
    uint64_t addr;
    uint32_t rkey;
    uint32_t len;
};

/* Client -> server in the connect private data. */
struct run_info {
    uint32_t iterations;
};

/* Lengths vary from 1 to `size` so byte_len is really checked. */
static uint32_t write_len(uint32_t i, size_t size)
{
    return 1 + (uint32_t)(((uint64_t)i * 7919u) % size);
}

/* Posts a RECV. With sge == NULL it has no scatter list: a WRITE_WITH_IMM
 * only needs the RECV for its completion, not for data. */
static void post_recv(struct ibv_qp *qp, struct ibv_sge *sge, uint64_t wr_id)
{
    struct ibv_recv_wr wr = { .wr_id = wr_id, .sg_list = sge, .num_sge = sge ? 1 : 0 }, *bad;
    if (ibv_post_recv(qp, &wr, &bad))
        ex_fail_errno("ibv_post_recv");
}

/* ---- server ------------------------------------------------------------- */

/* Returns the next receive completion; send completions of our acks are
 * checked and skipped (they share the CQ and may come in any order). */
static void next_recv_wc(struct ex_endpoint *ep, int64_t deadline, struct ibv_wc *wc)
{
    for (int guard = 0; guard < 2 * QUEUE_DEPTH + 2; guard++) {
        ex_wait_wc(ep->cq, ep->cc, deadline, wc);
        if (wc->status != IBV_WC_SUCCESS || wc->opcode != IBV_WC_SEND)
            return;
    }
    ex_fail("no receive completion among %d send completions", 2 * QUEUE_DEPTH + 2);
}

static void check_write(const struct ibv_wc *wc, const uint8_t *buf, uint32_t i, size_t size)
{
    ex_check_wc(wc, IBV_WC_RECV_RDMA_WITH_IMM, "RECV for WRITE_WITH_IMM");
    if (!(wc->wc_flags & IBV_WC_WITH_IMM))
        ex_fail("iteration %u: completion without immediate data", i);
    if (ntohl(wc->imm_data) != i)
        ex_fail("iteration %u: immediate value %u (raw 0x%08x), expected %u", i,
                ntohl(wc->imm_data), wc->imm_data, i);
    if (wc->byte_len != write_len(i, size))
        ex_fail("iteration %u: %u bytes written, expected %u", i, wc->byte_len,
                write_len(i, size));
    long bad = ex_find_mismatch(buf, wc->byte_len, i);
    if (bad >= 0)
        ex_fail("iteration %u: written data differs at byte %ld", i, bad);
}

static void run_server(const struct ex_opts *o)
{
    int64_t deadline = ex_now_ms() + o->timeout_s * 1000LL;
    struct rdma_event_channel *ch = rdma_create_event_channel();
    struct rdma_cm_id *listen_id;
    if (!ch || rdma_create_id(ch, &listen_id, NULL, RDMA_PS_TCP))
        ex_fail_errno("creating the CM event channel and id");
    ex_listen(listen_id, o->addr, o->port, "rdma_write_imm");

    struct rdma_cm_event *ev = ex_expect_cm_event(ch, RDMA_CM_EVENT_CONNECT_REQUEST, deadline);
    struct rdma_cm_id *id = ev->id;
    struct run_info run;
    if (ev->param.conn.private_data_len < sizeof(run))
        ex_fail("connect request without run information");
    memcpy(&run, ev->param.conn.private_data, sizeof(run));
    uint32_t iterations = ntohl(run.iterations);
    rdma_ack_cm_event(ev);

    struct ex_endpoint ep;
    ex_endpoint_create(id, QUEUE_DEPTH, &ep);
    uint8_t *buf = ex_alloc_buf(o->size);
    uint32_t *ack = ex_alloc_buf(sizeof(*ack));
    struct ibv_mr *mr = ex_reg_mr(&ep, buf, o->size,
                                  IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE, "target");
    struct ibv_mr *ack_mr = ex_reg_mr(&ep, ack, sizeof(*ack), IBV_ACCESS_LOCAL_WRITE, "ack");
    /* RECVs must be posted before the peer can send: before accepting. */
    for (int r = 0; r < QUEUE_DEPTH; r++)
        post_recv(ep.qp, NULL, r);

    struct buf_info info = { .addr = htobe64((uintptr_t)buf), .rkey = htonl(mr->rkey),
                             .len = htonl((uint32_t)o->size) };
    struct rdma_conn_param param = { .private_data = &info, .private_data_len = sizeof(info),
                                     .rnr_retry_count = 7 };
    if (rdma_accept(id, &param))
        ex_fail_errno("rdma_accept");
    rdma_ack_cm_event(ex_expect_cm_event(ch, RDMA_CM_EVENT_ESTABLISHED, deadline));

    for (uint32_t i = 0; i < iterations; i++) {
        struct ibv_wc wc;
        next_recv_wc(&ep, deadline, &wc);
        check_write(&wc, buf, i, o->size);
        post_recv(ep.qp, NULL, wc.wr_id);           /* give the RECV back */
        *ack = htonl(i);                            /* buffer free: tell the client */
        struct ibv_sge sge = { .addr = (uintptr_t)ack, .length = sizeof(*ack),
                               .lkey = ack_mr->lkey };
        struct ibv_send_wr wr = { .wr_id = i, .sg_list = &sge, .num_sge = 1,
                                  .opcode = IBV_WR_SEND }, *bad;
        if (ibv_post_send(ep.qp, &wr, &bad))
            ex_fail_errno("ibv_post_send (ack %u)", i);
    }
    printf("rdma_write_imm: server verified %u writes with immediate data\n", iterations);
    fflush(stdout);

    rdma_ack_cm_event(ex_expect_cm_event(ch, RDMA_CM_EVENT_DISCONNECTED, deadline));
    ibv_dereg_mr(mr);
    ibv_dereg_mr(ack_mr);
    ex_endpoint_destroy(id, &ep);
    rdma_destroy_id(id);
    rdma_destroy_id(listen_id);
    rdma_destroy_event_channel(ch);
    free(buf);
    free(ack);
}

/* ---- client ------------------------------------------------------------- */

/* Waits for both completions of iteration i, in whichever order they come:
 * our WRITE_WITH_IMM and the server's ack. */
static void wait_write_and_ack(struct ex_endpoint *ep, const uint32_t *ack, uint32_t i,
                               int64_t deadline)
{
    bool written = false, acked = false;
    for (int n = 0; n < 2 && !(written && acked); n++) {
        struct ibv_wc wc;
        ex_wait_wc(ep->cq, ep->cc, deadline, &wc);
        if (wc.status == IBV_WC_SUCCESS && wc.opcode == IBV_WC_RDMA_WRITE) {
            written = true;
            continue;
        }
        ex_check_wc(&wc, IBV_WC_RECV, "ack RECV");
        if (wc.byte_len != sizeof(*ack) || ntohl(*ack) != i)
            ex_fail("iteration %u: bad ack (%u bytes, value %u)", i, wc.byte_len, ntohl(*ack));
        acked = true;
    }
    if (!(written && acked))
        ex_fail("iteration %u: expected one WRITE and one ack completion", i);
}

static void run_client(const struct ex_opts *o)
{
    int64_t deadline = ex_now_ms() + o->timeout_s * 1000LL;
    struct rdma_event_channel *ch = rdma_create_event_channel();
    struct rdma_cm_id *id;
    if (!ch || rdma_create_id(ch, &id, NULL, RDMA_PS_TCP))
        ex_fail_errno("creating the CM event channel and id");
    ex_resolve_server(id, ch, o->addr, o->port, deadline);

    struct ex_endpoint ep;
    ex_endpoint_create(id, QUEUE_DEPTH, &ep);
    uint8_t *src = ex_alloc_buf(o->size);
    uint32_t *ack = ex_alloc_buf(sizeof(*ack));
    struct ibv_mr *src_mr = ex_reg_mr(&ep, src, o->size, IBV_ACCESS_LOCAL_WRITE, "source");
    struct ibv_mr *ack_mr = ex_reg_mr(&ep, ack, sizeof(*ack), IBV_ACCESS_LOCAL_WRITE, "ack");
    struct ibv_sge ack_sge = { .addr = (uintptr_t)ack, .length = sizeof(*ack),
                               .lkey = ack_mr->lkey };
    post_recv(ep.qp, &ack_sge, 0);

    struct run_info run = { .iterations = htonl((uint32_t)o->iterations) };
    struct rdma_conn_param param = { .private_data = &run, .private_data_len = sizeof(run),
                                     .retry_count = 7, .rnr_retry_count = 7 };
    if (rdma_connect(id, &param))
        ex_fail_errno("rdma_connect");
    struct rdma_cm_event *ev = ex_expect_cm_event(ch, RDMA_CM_EVENT_ESTABLISHED, deadline);
    struct buf_info remote;
    if (ev->param.conn.private_data_len < sizeof(remote))
        ex_fail("server sent no buffer information");
    memcpy(&remote, ev->param.conn.private_data, sizeof(remote));
    rdma_ack_cm_event(ev);
    if (ntohl(remote.len) < o->size)
        ex_fail("server buffer has %u bytes, need %zu (use the same -S on both sides)",
                ntohl(remote.len), o->size);

    for (uint32_t i = 0; i < (uint32_t)o->iterations; i++) {
        uint32_t len = write_len(i, o->size);
        ex_fill_pattern(src, len, i);
        struct ibv_sge sge = { .addr = (uintptr_t)src, .length = len, .lkey = src_mr->lkey };
        struct ibv_send_wr wr = {
            .wr_id = i, .sg_list = &sge, .num_sge = 1,
            .opcode = IBV_WR_RDMA_WRITE_WITH_IMM,
            .imm_data = htonl(i),                   /* network byte order on the wire */
            .wr.rdma = { .remote_addr = be64toh(remote.addr), .rkey = ntohl(remote.rkey) },
        }, *bad;
        if (ibv_post_send(ep.qp, &wr, &bad))
            ex_fail_errno("ibv_post_send (WRITE_WITH_IMM %u)", i);
        wait_write_and_ack(&ep, ack, i, deadline);
        post_recv(ep.qp, &ack_sge, 0);              /* ready for the next ack */
    }
    printf("rdma_write_imm: client sent %d writes with immediate data, all acknowledged\n",
           o->iterations);

    ibv_dereg_mr(src_mr);
    ibv_dereg_mr(ack_mr);
    ex_client_close(id, ch, &ep, deadline);
    free(src);
    free(ack);
}

int main(int argc, char **argv)
{
    static const struct ex_opts defaults = {
        .port = "7472", .iterations = 1000, .size = 16384, .timeout_s = 60, .clients = 1,
    };
    struct ex_opts o;
    ex_parse_opts(argc, argv, &defaults, usage, &o);
    if (o.server)
        run_server(&o);
    else
        run_client(&o);
    return 0;
}
