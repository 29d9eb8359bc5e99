/* rdma_write_read: one-sided RDMA WRITE and RDMA READ.
 *
 * The server registers a buffer for remote access and tells the client its
 * address and rkey in the private data of its connect reply (rdma_accept).
 * The client then, for each iteration, RDMA-WRITEs a pattern into that
 * buffer, RDMA-READs it back into a second local buffer and compares. The
 * server CPU takes no part in the transfers; after the client disconnects,
 * the server checks that its buffer holds the client's last pattern.
 *
 *   server:  rdma_write_read -s -a 192.168.21.180 [-p 7471]
 *   client:  rdma_write_read -c 192.168.21.180 [-p 7471] [-n 100] [-S 65536]
 */
#include "ex_common.h"

#include <arpa/inet.h>
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: rdma_write_read -s [-a BIND_ADDR] [-p PORT] [-S BYTES] [-t SECONDS]\n"
    "       rdma_write_read -c SERVER_ADDR [-p PORT] [-n ITERATIONS] [-S BYTES] [-t SECONDS]\n";

/* Server -> client, in the accept private data. Network byte order, because
 * the two hosts need not share an endianness. */
struct buf_info {
    uint64_t addr;
    uint32_t rkey;
    uint32_t len;
};

/* Client -> server, in the connect private data: how many iterations will
 * run, so the server knows which pattern must be in its buffer at the end. */
struct run_info {
    uint32_t iterations;
};

/* ---- server ------------------------------------------------------------- */

static void run_server(const struct ex_opts *o)
{
    int64_t deadline = ex_now_ms() + o->timeout_s * 1000LL;
    struct rdma_event_channel *ch = rdma_create_event_channel();
    struct rdma_cm_id *listen_id;
    if (!ch || rdma_create_id(ch, &listen_id, NULL, RDMA_PS_TCP))
        ex_fail_errno("creating the CM event channel and id");
    ex_listen(listen_id, o->addr, o->port, "rdma_write_read");

    struct rdma_cm_event *ev = ex_expect_cm_event(ch, RDMA_CM_EVENT_CONNECT_REQUEST, deadline);
    struct rdma_cm_id *id = ev->id;   /* the new connection's own id */
    struct run_info run;
    if (ev->param.conn.private_data_len < sizeof(run))
        ex_fail("connect request without run information (%u bytes of private data)",
                ev->param.conn.private_data_len);
    memcpy(&run, ev->param.conn.private_data, sizeof(run));
    uint32_t iterations = ntohl(run.iterations);
    /* The client asked to issue this many RDMA READs at once; we must be
     * willing to respond to them (responder_resources). */
    uint8_t reads_wanted = ev->param.conn.initiator_depth;
    rdma_ack_cm_event(ev);

    struct ex_endpoint ep;
    ex_endpoint_create(id, 4, &ep);
    uint8_t *buf = ex_alloc_buf(o->size);
    struct ibv_mr *mr = ex_reg_mr(&ep, buf, o->size,
                                  IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
                                  IBV_ACCESS_REMOTE_READ, "server buffer");

    struct buf_info info = { .addr = htobe64((uintptr_t)buf), .rkey = htonl(mr->rkey),
                             .len = htonl((uint32_t)o->size) };
    struct rdma_conn_param param = {
        .private_data = &info, .private_data_len = sizeof(info),
        .responder_resources = reads_wanted ? reads_wanted : 1,
        .initiator_depth = 0,            /* we issue no READs ourselves */
        .rnr_retry_count = 7,
    };
    if (rdma_accept(id, &param))
        ex_fail_errno("rdma_accept");
    rdma_ack_cm_event(ex_expect_cm_event(ch, RDMA_CM_EVENT_ESTABLISHED, deadline));
    printf("rdma_write_read: client connected, buffer %zu bytes rkey 0x%x\n", o->size, mr->rkey);
    fflush(stdout);

    /* Nothing to do while the client works: wait for its disconnect. */
    rdma_ack_cm_event(ex_expect_cm_event(ch, RDMA_CM_EVENT_DISCONNECTED, deadline));
    long bad = ex_find_mismatch(buf, o->size, iterations - 1);
    if (iterations == 0 || bad >= 0)
        ex_fail("server buffer does not hold the client's last pattern (byte %ld)", bad);
    printf("rdma_write_read: server verified the last of %u writes (%zu bytes)\n",
           iterations, o->size);

    ibv_dereg_mr(mr);
    ex_endpoint_destroy(id, &ep);
    rdma_destroy_id(id);
    rdma_destroy_id(listen_id);
    rdma_destroy_event_channel(ch);
    free(buf);
}

/* ---- client ------------------------------------------------------------- */

/* Posts one signaled RDMA WRITE or READ of `len` bytes between the local
 * `mr` and the remote buffer, then waits for its completion. */
static void rdma_op(struct ex_endpoint *ep, enum ibv_wr_opcode op, struct ibv_mr *mr,
                    size_t len, const struct buf_info *remote, int64_t deadline)
{
    struct ibv_sge sge = { .addr = (uintptr_t)mr->addr, .length = (uint32_t)len,
                           .lkey = mr->lkey };
    struct ibv_send_wr wr = {
        .wr_id = op, .sg_list = &sge, .num_sge = 1, .opcode = op,
        .send_flags = IBV_SEND_SIGNALED,
        .wr.rdma = { .remote_addr = be64toh(remote->addr), .rkey = ntohl(remote->rkey) },
    }, *bad;
    const char *what = op == IBV_WR_RDMA_WRITE ? "RDMA WRITE" : "RDMA READ";
    if (ibv_post_send(ep->qp, &wr, &bad))
        ex_fail_errno("ibv_post_send (%s)", what);
    struct ibv_wc wc;
    ex_wait_wc(ep->cq, ep->cc, deadline, &wc);
    ex_check_wc(&wc, op == IBV_WR_RDMA_WRITE ? IBV_WC_RDMA_WRITE : IBV_WC_RDMA_READ, what);
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
    ex_endpoint_create(id, 4, &ep);
    uint8_t *src = ex_alloc_buf(o->size), *dst = ex_alloc_buf(o->size);
    /* A READ writes into local memory, so its target needs LOCAL_WRITE. */
    struct ibv_mr *src_mr = ex_reg_mr(&ep, src, o->size, IBV_ACCESS_LOCAL_WRITE, "source");
    struct ibv_mr *dst_mr = ex_reg_mr(&ep, dst, o->size, IBV_ACCESS_LOCAL_WRITE, "read target");

    struct run_info run = { .iterations = htonl((uint32_t)o->iterations) };
    struct rdma_conn_param param = {
        .private_data = &run, .private_data_len = sizeof(run),
        .initiator_depth = 1,            /* we issue one RDMA READ at a time */
        .responder_resources = 0,
        .retry_count = 7, .rnr_retry_count = 7,
    };
    if (rdma_connect(id, &param))
        ex_fail_errno("rdma_connect");
    struct rdma_cm_event *ev = ex_expect_cm_event(ch, RDMA_CM_EVENT_ESTABLISHED, deadline);
    struct buf_info remote;
    if (ev->param.conn.private_data_len < sizeof(remote))
        ex_fail("server sent no buffer information (%u bytes of private data)",
                ev->param.conn.private_data_len);
    memcpy(&remote, ev->param.conn.private_data, sizeof(remote));
    rdma_ack_cm_event(ev);
    if (ntohl(remote.len) < o->size)
        ex_fail("server buffer has %u bytes, need %zu (use the same -S on both sides)",
                ntohl(remote.len), o->size);

    for (int i = 0; i < o->iterations; i++) {
        ex_fill_pattern(src, o->size, (uint32_t)i);
        memset(dst, 0, o->size);
        rdma_op(&ep, IBV_WR_RDMA_WRITE, src_mr, o->size, &remote, deadline);
        rdma_op(&ep, IBV_WR_RDMA_READ, dst_mr, o->size, &remote, deadline);
        long bad = ex_find_mismatch(dst, o->size, (uint32_t)i);
        if (bad >= 0)
            ex_fail("iteration %d: data read back differs at byte %ld", i, bad);
    }
    printf("rdma_write_read: client verified %d WRITE+READ round trips of %zu bytes\n",
           o->iterations, o->size);

    ibv_dereg_mr(src_mr);
    ibv_dereg_mr(dst_mr);
    ex_client_close(id, ch, &ep, deadline);
    free(src);
    free(dst);
}

int main(int argc, char **argv)
{
    static const struct ex_opts defaults = {
        .port = "7471", .iterations = 100, .size = 65536, .timeout_s = 60, .clients = 1,
    };
    struct ex_opts o;
    ex_parse_opts(argc, argv, &defaults, usage, &o);
    if (o.server)
        run_server(&o);
    else
        run_client(&o);
    return 0;
}
