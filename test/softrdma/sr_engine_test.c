/* Engine test of the softrdma device: every verb and error case on a pair
 * of RC QPs connected by hand (ibv_modify_qp with the peer's QPN), as
 * programs that exchange QP numbers over TCP do. Built against Debian's
 * libibverbs; run with LD_LIBRARY_PATH=release/lib64/softrdma. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <infiniband/verbs.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "sr_wire.h"

#include "sr_test_pair.h"

static void test_send_recv_sges(void **st)
{
    (void)st;
    struct pair *p = pair_new(64, 1, 7, IBV_ACCESS_LOCAL_WRITE);
    struct ibv_wc wc;
    post_recv(&p->b, 11, 2, 0, 2048);
    fill(p->a.buf, 4096, 3);
    struct ibv_sge g[3] = { { (uintptr_t)p->a.buf, 1000, p->a.mr->lkey },
                            { (uintptr_t)p->a.buf + 1000, 1000, p->a.mr->lkey },
                            { (uintptr_t)p->a.buf + 2000, 1500, p->a.mr->lkey } };
    struct ibv_send_wr wr = { .wr_id = 7, .sg_list = g, .num_sge = 3, .opcode = IBV_WR_SEND }, *bad;
    assert_int_equal(ibv_post_send(p->a.qp, &wr, &bad), 0);
    assert_int_equal(poll_n(p->b.rcq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
    assert_int_equal(wc.opcode, IBV_WC_RECV);
    assert_int_equal(wc.wr_id, 11);
    assert_int_equal(wc.byte_len, 3500);
    assert_int_equal(wc.qp_num, p->b.qp->qp_num);
    assert_int_equal(wc.src_qp, p->a.qp->qp_num);
    assert_false(wc.wc_flags & IBV_WC_WITH_IMM);
    assert_memory_equal(p->b.buf, p->a.buf, 3500);
    assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
    assert_int_equal(wc.opcode, IBV_WC_SEND);
    assert_int_equal(wc.wr_id, 7);
    pair_free(p);
}

/* SENDs shorter than their receives, queued back to back on the stream:
 * each must take exactly its own bytes (regression: the receive's full
 * length was read from the stream, swallowing the next request). The
 * sends are posted before the receives, so both are on the stream when
 * the responder starts the first payload, and 5000 bytes exceed the
 * device's 4 KiB stream buffer, so the payload goes through readv. */
static void test_short_sends_long_receives(void **st)
{
    (void)st;
    enum { LEN = 5000, RLEN = 8192, N = 4 };
    struct pair *p = pair_new(64, 1, 7, IBV_ACCESS_LOCAL_WRITE);
    struct ibv_wc wc[N];
    for (int i = 0; i < N; i++) {
        fill(p->a.buf + i * RLEN, LEN, 17u * (unsigned)i + 1);
        assert_int_equal(post_send(&p->a, IBV_WR_SEND, (uint64_t)i, (size_t)i * RLEN, LEN, 0,
                                   0, 0, p->a.mr->lkey), 0);
    }
    assert_int_equal(poll_n(p->a.scq, wc, 1, 200), 0);    /* RNR: held, not failed */
    memset(p->b.buf, 0x5a, BUF);
    for (int i = 0; i < N; i++)     /* odd receives: two SGEs of RLEN/2 */
        post_recv(&p->b, 100 + (uint64_t)i, i % 2 ? 2 : 1, (size_t)i * RLEN,
                  i % 2 ? RLEN / 2 : RLEN);
    assert_int_equal(poll_n(p->b.rcq, wc, N, DEADLINE_MS), N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(wc[i].status, IBV_WC_SUCCESS);
        assert_int_equal(wc[i].wr_id, 100 + i);
        assert_int_equal(wc[i].byte_len, LEN);
        assert_memory_equal(p->b.buf + i * RLEN, p->a.buf + i * RLEN, LEN);
        /* the tail of the receive past the message is untouched */
        assert_int_equal((unsigned char)p->b.buf[i * RLEN + LEN], 0x5a);
        assert_int_equal((unsigned char)p->b.buf[(i + 1) * RLEN - 1], 0x5a);
    }
    assert_int_equal(poll_n(p->a.scq, wc, N, DEADLINE_MS), N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(wc[i].status, IBV_WC_SUCCESS);
        assert_int_equal(wc[i].wr_id, i);
    }
    pair_free(p);
}

/* Opens a raw stream to the NIC that owns qpn, as a peer device would. */
static int raw_stream(uint32_t qpn)
{
    const char *fab = getenv("SOFTRDMA_FABRIC");
    char link[512];
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    /* QPNs are claimed in blocks of 256: qp/b<qpn / 256> (sr_qpn.c) */
    snprintf(link, sizeof link, "%s/qp/b%u", fab && *fab ? fab : "/run/softrdma", qpn >> 8);
    assert_true(readlink(link, sa.sun_path, sizeof sa.sun_path - 1) > 0);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct sr_hello h = { .magic = SR_HELLO_MAGIC, .dst_qpn = qpn, .src_qpn = 0xabcdef };
    assert_int_equal(write(fd, &h, sizeof h), sizeof h);
    return fd;
}

/* A peer's request header claiming more than any message can hold: the
 * device drops that stream (EOF at the peer) and keeps working. */
static void test_malformed_header_dropped(void **st)
{
    (void)st;
    struct pair *p = pair_new(64, 1, 7, IBV_ACCESS_LOCAL_WRITE);
    int fd = raw_stream(p->a.qp->qp_num);
    struct sr_req_hdr h = { .op = SR_OP_SEND, .rnr_retry = 7, .len = 0x80000000u };
    post_recv(&p->a, 1, 1, 0, 100);
    assert_int_equal(write(fd, &h, sizeof h), sizeof h);
    /* the stream opens with the device's attach offer (the direct data
     * path); after it, nothing is answered and the stream ends */
    struct { struct sr_resp_hdr h; struct sr_attach a; } att;
    size_t got = 0;
    long end = now_ms() + DEADLINE_MS;
    ssize_t n = 1;
    while (n > 0 && got <= sizeof att && now_ms() < end) {
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        assert_int_equal(poll(&pf, 1, DEADLINE_MS), 1);
        char tmp[256];
        n = read(fd, tmp, sizeof tmp);
        if (n > 0 && got + (size_t)n <= sizeof att)
            memcpy((char *)&att + got, tmp, (size_t)n);
        if (n > 0)
            got += (size_t)n;
    }
    assert_int_equal(n, 0);                     /* dropped */
    assert_int_equal(got, sizeof att);          /* nothing answered */
    assert_int_equal(att.h.type, SR_RESP_ATTACH);
    close(fd);
    struct ibv_wc wc;
    assert_int_equal(ibv_poll_cq(p->a.rcq, 1, &wc), 0);   /* receive untouched */
    send_verified(p, 3, 100, 9);    /* the device still moves data */
    pair_free(p);
}

static void test_write_imm_and_read(void **st)
{
    (void)st;
    int all = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
    struct pair *p = pair_new(64, 1, 7, all);
    struct ibv_wc wc;
    post_recv(&p->b, 21, 0, 0, 0);
    fill(p->a.buf, 40000, 9);
    assert_int_equal(post_send(&p->a, IBV_WR_RDMA_WRITE_WITH_IMM, 1, 0, 40000, 0,
                               (uintptr_t)p->b.buf + 100, p->b.mr->rkey, p->a.mr->lkey), 0);
    assert_int_equal(poll_n(p->b.rcq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
    assert_int_equal(wc.opcode, IBV_WC_RECV_RDMA_WITH_IMM);
    assert_true(wc.wc_flags & IBV_WC_WITH_IMM);
    assert_int_equal(wc.imm_data, htonl(0xC0FFEE));
    assert_int_equal(wc.byte_len, 40000);
    assert_memory_equal(p->b.buf + 100, p->a.buf, 40000);   /* landed before the completion */
    assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.opcode, IBV_WC_RDMA_WRITE);
    /* plain WRITE: no receive consumed, no remote completion */
    fill(p->a.buf, 1000, 77);
    assert_int_equal(post_send(&p->a, IBV_WR_RDMA_WRITE, 2, 0, 1000, 0,
                               (uintptr_t)p->b.buf + 50000, p->b.mr->rkey, p->a.mr->lkey), 0);
    assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
    assert_memory_equal(p->b.buf + 50000, p->a.buf, 1000);
    assert_int_equal(ibv_poll_cq(p->b.rcq, 1, &wc), 0);
    /* READ back into a different place */
    fill(p->b.buf + 60000, 5000, 5);
    assert_int_equal(post_send(&p->a, IBV_WR_RDMA_READ, 3, 10000, 5000, 0,
                               (uintptr_t)p->b.buf + 60000, p->b.mr->rkey, p->a.mr->lkey), 0);
    assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
    assert_int_equal(wc.opcode, IBV_WC_RDMA_READ);
    assert_int_equal(wc.byte_len, 5000);
    assert_memory_equal(p->a.buf + 10000, p->b.buf + 60000, 5000);
    pair_free(p);
}

static void test_inline_unsignaled(void **st)
{
    (void)st;
    struct pair *p = pair_new(64, 0, 7, IBV_ACCESS_LOCAL_WRITE);
    struct ibv_wc wc[8];
    for (int i = 0; i < 4; i++)
        post_recv(&p->b, 100 + i, 1, (size_t)i * 64, 64);
    for (int i = 0; i < 4; i++) {
        fill(p->a.buf, 32, (unsigned)i);
        /* inline: the data is taken at post time; lkey is not checked */
        assert_int_equal(post_send(&p->a, IBV_WR_SEND, (uint64_t)i, 0, 32,
                                   IBV_SEND_INLINE | (i == 3 ? IBV_SEND_SIGNALED : 0), 0, 0, 0), 0);
    }
    assert_int_equal(poll_n(p->b.rcq, wc, 4, DEADLINE_MS), 4);
    for (int i = 0; i < 4; i++) {
        char want[32];
        fill(want, 32, (unsigned)i);
        assert_int_equal(wc[i].wr_id, 100 + i);     /* in order, exactly once */
        assert_memory_equal(p->b.buf + i * 64, want, 32);
    }
    assert_int_equal(poll_n(p->a.scq, wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc[0].wr_id, 3);
    assert_int_equal(ibv_poll_cq(p->a.scq, 8, wc), 0);      /* unsignaled ones: none */
    pair_free(p);
}

/* Waits until the channel has an event (a completion arrived on an armed CQ). */
static void wait_cq_event(struct ibv_comp_channel *ch)
{
    struct pollfd pfd = { .fd = ch->fd, .events = POLLIN };
    assert_int_equal(poll(&pfd, 1, DEADLINE_MS), 1);
    struct ibv_cq *cq;
    void *ctx;
    assert_int_equal(ibv_get_cq_event(ch, &cq, &ctx), 0);
    ibv_ack_cq_events(cq, 1);
}

/* As on hardware, a work queue slot stays taken until the application
 * polls the completion that covers it: a completed but unpolled WR (and
 * every unsignaled WR before it) still counts against max_send_wr, and a
 * filled but unpolled receive against max_recv_wr. */
static void test_wq_slots_free_when_polled(void **st)
{
    (void)st;
    struct pair *p = pair_open();
    struct ibv_comp_channel *ch = ibv_create_comp_channel(p->ctx);
    assert_non_null(ch);
    pair_connect(p, 256, 0, 7, IBV_ACCESS_LOCAL_WRITE, ch);
    struct ibv_qp_attr qa;
    struct ibv_qp_init_attr qi;
    assert_int_equal(ibv_query_qp(p->a.qp, &qa, IBV_QP_CAP, &qi), 0);
    int depth = (int)qi.cap.max_send_wr;
    assert_int_equal(depth, 64);
    struct ibv_wc wc[4];
    for (int i = 0; i < depth; i++)
        post_recv(&p->b, 1000 + (uint64_t)i, 1, (size_t)i * 8, 8);
    assert_int_equal(ibv_req_notify_cq(p->a.scq, 0), 0);
    for (int i = 0; i < depth; i++) {   /* only the last one signaled */
        fill(p->a.buf + i * 8, 8, (unsigned)i);
        assert_int_equal(post_send(&p->a, IBV_WR_SEND, (uint64_t)i, (size_t)i * 8, 8,
                                   i == depth - 1 ? IBV_SEND_SIGNALED : 0, 0, 0, p->a.mr->lkey), 0);
    }
    /* The last WR's completion is there: the device has finished all of
     * them, and the receiver's receives are all filled. Nothing polled. */
    wait_cq_event(ch);
    assert_int_equal(post_send(&p->a, IBV_WR_SEND, 99, 0, 8, IBV_SEND_SIGNALED, 0, 0,
                               p->a.mr->lkey), ENOMEM);
    struct ibv_recv_wr rwr = { .wr_id = 99 }, *rbad;
    assert_int_equal(ibv_post_recv(p->b.qp, &rwr, &rbad), ENOMEM);
    /* Polling the one signaled completion frees all 64 send slots. */
    assert_int_equal(poll_n(p->a.scq, wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc[0].wr_id, depth - 1);
    assert_int_equal(wc[0].status, IBV_WC_SUCCESS);
    for (int i = 0; i < depth; i++)
        assert_int_equal(post_send(&p->a, IBV_WR_RDMA_WRITE, 200 + (uint64_t)i, 0, 0,
                                   IBV_SEND_SIGNALED, 0, 0, 0), 0);
    /* Polling one receive frees exactly one receive slot. */
    assert_int_equal(poll_n(p->b.rcq, wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc[0].wr_id, 1000);
    assert_int_equal(ibv_post_recv(p->b.qp, &rwr, &rbad), 0);
    assert_int_equal(ibv_post_recv(p->b.qp, &rwr, &rbad), ENOMEM);
    /* All signaled: each polled completion frees one slot. */
    assert_int_equal(post_send(&p->a, IBV_WR_SEND, 99, 0, 8, IBV_SEND_SIGNALED, 0, 0,
                               p->a.mr->lkey), ENOMEM);
    assert_int_equal(poll_n(p->a.scq, wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc[0].wr_id, 200);
    assert_int_equal(post_send(&p->a, IBV_WR_RDMA_WRITE, 300, 0, 0, IBV_SEND_SIGNALED, 0, 0, 0), 0);
    assert_int_equal(post_send(&p->a, IBV_WR_RDMA_WRITE, 301, 0, 0, IBV_SEND_SIGNALED, 0, 0, 0),
                     ENOMEM);
    /* A reset empties the queues: the unpolled completions free nothing
     * more, and the whole depth is available again. */
    struct ibv_qp_attr ra = { .qp_state = IBV_QPS_RESET };
    assert_int_equal(ibv_modify_qp(p->b.qp, &ra, IBV_QP_STATE), 0);
    ra.qp_state = IBV_QPS_INIT;
    ra.port_num = 1;
    assert_int_equal(ibv_modify_qp(p->b.qp, &ra, IBV_QP_STATE | IBV_QP_PORT), 0);
    for (int i = 0; i < depth; i++)
        assert_int_equal(ibv_post_recv(p->b.qp, &rwr, &rbad), 0);
    assert_int_equal(ibv_post_recv(p->b.qp, &rwr, &rbad), ENOMEM);
    for (int i = 0; i < depth; i++) {   /* the data arrived intact, in order */
        char want[8];
        fill(want, 8, (unsigned)i);
        assert_memory_equal(p->b.buf + i * 8, want, 8);
    }
    pair_free(p);
    assert_int_equal(ibv_destroy_comp_channel(ch), 0);
}

static int lowest_free_fd(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    close(fd);
    return fd;
}

static int highest_open_fd(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int hi = -1;
    for (struct dirent *e; (e = readdir(d));)
        if (atoi(e->d_name) > hi)
            hi = atoi(e->d_name);
    closedir(d);
    return hi;
}

/* One SEND each way, checked: both QPs' streams exist afterwards. */
static void exchange_both_ways(struct pair *p)
{
    struct ibv_wc wc;
    struct side *from[2] = { &p->a, &p->b }, *to[2] = { &p->b, &p->a };
    for (int i = 0; i < 2; i++) {
        post_recv(to[i], 7, 1, 4096, 64);
        fill(from[i]->buf, 64, 40u + (unsigned)i);
        assert_int_equal(post_send(from[i], IBV_WR_SEND, 8, 0, 64, IBV_SEND_SIGNALED, 0, 0,
                                   from[i]->mr->lkey), 0);
        assert_int_equal(poll_n(to[i]->rcq, &wc, 1, DEADLINE_MS), 1);
        assert_int_equal(wc.status, IBV_WC_SUCCESS);
        assert_int_equal(poll_n(from[i]->scq, &wc, 1, DEADLINE_MS), 1);
        char want[64];
        fill(want, 64, 40u + (unsigned)i);
        assert_memory_equal(to[i]->buf + 4096, want, 64);
    }
}

/* The device's own descriptors (streams, epoll, pipe write ends) live
 * high, so the application's numbers stay compact: after connecting two
 * QPs the lowest free fd is unchanged, and a completion channel's fd (the
 * application's) is that lowest one. With the fd limit too low for the
 * high range they fall back to low numbers and everything still works. */
static void test_internal_fds_high(void **st)
{
    (void)st;
    struct pair *p = pair_open();
    int low = lowest_free_fd();
    pair_connect(p, 64, 1, 7, IBV_ACCESS_LOCAL_WRITE, NULL);
    exchange_both_ways(p);
    assert_int_equal(lowest_free_fd(), low);
    assert_true(highest_open_fd() >= 256);
    struct ibv_comp_channel *ch = ibv_create_comp_channel(p->ctx);
    assert_non_null(ch);
    assert_int_equal(ch->fd, low);
    assert_int_equal(ibv_destroy_comp_channel(ch), 0);
    pair_free(p);

    struct rlimit old, tight;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    tight = old;
    tight.rlim_cur = 128;       /* below the high range: fallback */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
    p = pair_new(64, 1, 7, IBV_ACCESS_LOCAL_WRITE);
    exchange_both_ways(p);
    /* a stream is open only while something is on it: a SEND waiting for
     * its receive (RNR, rnr_retry 7) holds one, at a low number */
    struct ibv_wc wc;
    fill(p->a.buf, 64, 77);
    assert_int_equal(post_send(&p->a, IBV_WR_SEND, 9, 0, 64, IBV_SEND_SIGNALED, 0, 0,
                               p->a.mr->lkey), 0);
    assert_true(lowest_free_fd() > low);    /* the stream took a low number */
    post_recv(&p->b, 9, 1, 0, 64);
    assert_int_equal(poll_n(p->b.rcq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
    assert_memory_equal(p->b.buf, p->a.buf, 64);
    assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
    pair_free(p);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
}

static void modify_state(struct ibv_qp *qp, enum ibv_qp_state st)
{
    struct ibv_qp_attr a = { .qp_state = st, .port_num = 1 };
    assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE | (st == IBV_QPS_INIT ? IBV_QP_PORT : 0)), 0);
}

/* Sends are refused before RTS (RESET, INIT, RTR) and receives in RESET,
 * as on hardware; a zero-length WRITE without SGEs and with rkey 0 is
 * legal. */
static void test_post_states(void **st)
{
    (void)st;
    struct pair *p = pair_new(64, 1, 7, IBV_ACCESS_LOCAL_WRITE);
    struct ibv_send_wr w0 = { .wr_id = 5, .opcode = IBV_WR_RDMA_WRITE,
                              .send_flags = IBV_SEND_SIGNALED }, *bad;
    assert_int_equal(ibv_post_send(p->a.qp, &w0, &bad), 0);     /* sg_list NULL, rkey 0 */
    struct ibv_wc wc;
    assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
    assert_int_equal(wc.wr_id, 5);
    struct ibv_recv_wr r0 = { .wr_id = 6 }, *rbad;
    modify_state(p->a.qp, IBV_QPS_RESET);
    assert_int_equal(ibv_post_send(p->a.qp, &w0, &bad), EINVAL);
    assert_ptr_equal(bad, &w0);
    assert_int_equal(ibv_post_recv(p->a.qp, &r0, &rbad), EINVAL);
    modify_state(p->a.qp, IBV_QPS_INIT);
    assert_int_equal(ibv_post_send(p->a.qp, &w0, &bad), EINVAL);
    assert_int_equal(ibv_post_recv(p->a.qp, &r0, &rbad), 0);
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_RTR, .dest_qp_num = p->b.qp->qp_num };
    assert_int_equal(ibv_modify_qp(p->a.qp, &a, IBV_QP_STATE | IBV_QP_DEST_QPN), 0);
    assert_int_equal(ibv_post_send(p->a.qp, &w0, &bad), EINVAL);
    pair_free(p);
}

/* What hardware refuses to free while in use: a CQ with a QP (EBUSY), a
 * PD with MRs or QPs (EBUSY), a CQ whose reported completion events are
 * not acknowledged (rdma-core blocks; softrdma says EBUSY). An event still
 * in the channel for a destroyed CQ is dropped, never handed out. */
static void test_destroy_busy(void **st)
{
    (void)st;
    struct pair *p = pair_open();
    struct ibv_comp_channel *ch = ibv_create_comp_channel(p->ctx);
    assert_non_null(ch);
    pair_connect(p, 64, 1, 7, IBV_ACCESS_LOCAL_WRITE, ch);
    assert_int_equal(ibv_destroy_cq(p->a.scq), EBUSY);
    assert_int_equal(ibv_dealloc_pd(p->pd), EBUSY);
    /* one event read and not acknowledged */
    struct ibv_send_wr w0 = { .wr_id = 1, .opcode = IBV_WR_RDMA_WRITE }, *bad;
    assert_int_equal(ibv_req_notify_cq(p->a.scq, 0), 0);
    assert_int_equal(ibv_post_send(p->a.qp, &w0, &bad), 0);
    struct pollfd pfd = { .fd = ch->fd, .events = POLLIN };
    assert_int_equal(poll(&pfd, 1, DEADLINE_MS), 1);
    struct ibv_cq *ecq;
    void *ectx;
    assert_int_equal(ibv_get_cq_event(ch, &ecq, &ectx), 0);
    assert_ptr_equal(ecq, p->a.scq);
    struct ibv_wc wc;
    assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
    /* and a second event left unread in the channel */
    assert_int_equal(ibv_req_notify_cq(p->a.scq, 0), 0);
    assert_int_equal(ibv_post_send(p->a.qp, &w0, &bad), 0);
    assert_int_equal(poll(&pfd, 1, DEADLINE_MS), 1);
    assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(ibv_destroy_qp(p->a.qp), 0);
    assert_int_equal(ibv_destroy_cq(p->a.scq), EBUSY);     /* unacknowledged */
    ibv_ack_cq_events(p->a.scq, 1);
    assert_int_equal(ibv_destroy_cq(p->a.scq), 0);
    fcntl(ch->fd, F_SETFL, O_NONBLOCK);
    errno = 0;
    assert_int_equal(ibv_get_cq_event(ch, &ecq, &ectx), -1);  /* dropped */
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(ibv_destroy_qp(p->b.qp), 0);
    assert_int_equal(ibv_destroy_cq(p->a.rcq), 0);
    assert_int_equal(ibv_destroy_cq(p->b.scq), 0);
    assert_int_equal(ibv_destroy_cq(p->b.rcq), 0);
    assert_int_equal(ibv_dealloc_pd(p->pd), EBUSY);         /* MRs remain */
    assert_int_equal(ibv_dereg_mr(p->a.mr), 0);
    assert_int_equal(ibv_dereg_mr(p->b.mr), 0);
    assert_int_equal(ibv_dealloc_pd(p->pd), 0);
    assert_int_equal(ibv_destroy_comp_channel(ch), 0);
    free(p->a.buf);
    free(p->b.buf);
    ibv_close_device(p->ctx);
    free(p);
}

static void expect_error_then_flush(struct side *s, enum ibv_wc_status st)
{
    struct ibv_wc wc;
    assert_int_equal(poll_n(s->scq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, st);
    struct ibv_qp_attr a;
    struct ibv_qp_init_attr ia;
    assert_int_equal(ibv_query_qp(s->qp, &a, IBV_QP_STATE, &ia), 0);
    assert_int_equal(a.qp_state, IBV_QPS_ERR);
    assert_int_equal(post_send(s, IBV_WR_SEND, 99, 0, 0, IBV_SEND_SIGNALED, 0, 0, 0), 0);
    assert_int_equal(poll_n(s->scq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_WR_FLUSH_ERR);
    assert_int_equal(wc.wr_id, 99);
}

/* The responder's QP went to ERR as well: its receive wr_id completed with
 * st and the QP reports ERR. */
static void expect_responder_err(struct side *s, uint64_t wr_id, enum ibv_wc_status st)
{
    struct ibv_wc wc;
    assert_int_equal(poll_n(s->rcq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.wr_id, wr_id);
    assert_int_equal(wc.status, st);
    struct ibv_qp_attr a;
    struct ibv_qp_init_attr ia;
    assert_int_equal(ibv_query_qp(s->qp, &a, IBV_QP_STATE, &ia), 0);
    assert_int_equal(a.qp_state, IBV_QPS_ERR);
}

static void test_bad_rkey(void **st)
{
    (void)st;
    int all = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
    struct pair *p = pair_new(64, 1, 7, all);
    post_recv(&p->b, 7, 1, 0, 100);
    assert_int_equal(post_send(&p->a, IBV_WR_RDMA_WRITE, 1, 0, 100, 0,
                               (uintptr_t)p->b.buf, p->b.mr->rkey ^ 0x10000, p->a.mr->lkey), 0);
    expect_error_then_flush(&p->a, IBV_WC_REM_ACCESS_ERR);
    expect_responder_err(&p->b, 7, IBV_WC_WR_FLUSH_ERR);
    pair_free(p);
}

static void test_out_of_bounds_and_access(void **st)
{
    (void)st;
    /* b's memory allows local write only: remote write and read refused */
    struct pair *p = pair_new(64, 1, 7, IBV_ACCESS_LOCAL_WRITE);
    assert_int_equal(post_send(&p->a, IBV_WR_RDMA_WRITE, 1, 0, 100, 0,
                               (uintptr_t)p->b.buf, p->b.mr->rkey, p->a.mr->lkey), 0);
    expect_error_then_flush(&p->a, IBV_WC_REM_ACCESS_ERR);
    pair_free(p);
    int all = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
    p = pair_new(64, 1, 7, all);
    assert_int_equal(post_send(&p->a, IBV_WR_RDMA_READ, 1, 0, 100, 0,
                               (uintptr_t)p->b.buf + BUF - 50, p->b.mr->rkey, p->a.mr->lkey), 0);
    expect_error_then_flush(&p->a, IBV_WC_REM_ACCESS_ERR);
    pair_free(p);
}

static void test_bad_lkey(void **st)
{
    (void)st;
    struct pair *p = pair_new(64, 1, 7, IBV_ACCESS_LOCAL_WRITE);
    post_recv(&p->b, 1, 1, 0, 100);
    assert_int_equal(post_send(&p->a, IBV_WR_SEND, 1, 0, 100, 0, 0, 0, p->a.mr->lkey + 1), 0);
    expect_error_then_flush(&p->a, IBV_WC_LOC_PROT_ERR);
    pair_free(p);
}

/* A receive with a bad lkey is accepted at post time (as hardware does)
 * and completes with LOC_PROT_ERR when a message arrives for it; the
 * sender gets REM_OP_ERR and both QPs go to ERR. */
static void test_recv_bad_lkey(void **st)
{
    (void)st;
    struct pair *p = pair_new(64, 1, 7, IBV_ACCESS_LOCAL_WRITE);
    struct ibv_sge g = { (uintptr_t)p->b.buf, 100, p->b.mr->lkey + 1 };
    struct ibv_recv_wr wr = { .wr_id = 5, .sg_list = &g, .num_sge = 1 }, *bad;
    assert_int_equal(ibv_post_recv(p->b.qp, &wr, &bad), 0);
    assert_int_equal(post_send(&p->a, IBV_WR_SEND, 1, 0, 100, 0, 0, 0, p->a.mr->lkey), 0);
    expect_responder_err(&p->b, 5, IBV_WC_LOC_PROT_ERR);
    expect_error_then_flush(&p->a, IBV_WC_REM_OP_ERR);
    pair_free(p);
}

/* A destination GID that is not the peer's: the connection fails (the
 * first send completes with RETRY_EXC_ERR), never silent success. */
static void test_wrong_dgid(void **st)
{
    (void)st;
    struct pair *p = pair_new(64, 1, 7, IBV_ACCESS_LOCAL_WRITE);
    union ibv_gid bogus = { .raw = { [10] = 0xff, [11] = 0xff, 203, 0, 113, 9 } };
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };
    assert_int_equal(ibv_modify_qp(p->a.qp, &a, IBV_QP_STATE), 0);
    qp_connect_gid(p->a.qp, p->b.qp->qp_num, 7, &bogus);
    post_recv(&p->b, 1, 1, 0, 100);
    assert_int_equal(post_send(&p->a, IBV_WR_SEND, 1, 0, 100, 0, 0, 0, p->a.mr->lkey), 0);
    expect_error_then_flush(&p->a, IBV_WC_RETRY_EXC_ERR);
    struct ibv_wc wc;
    assert_int_equal(ibv_poll_cq(p->b.rcq, 1, &wc), 0);     /* nothing arrived */
    pair_free(p);
}

static void test_rnr(void **st)
{
    (void)st;
    struct ibv_wc wc;
    /* rnr_retry 1: a send finding no receive fails after the retries */
    struct pair *p = pair_new(64, 1, 1, IBV_ACCESS_LOCAL_WRITE);
    assert_int_equal(post_send(&p->a, IBV_WR_SEND, 1, 0, 10, 0, 0, 0, p->a.mr->lkey), 0);
    expect_error_then_flush(&p->a, IBV_WC_RNR_RETRY_EXC_ERR);
    pair_free(p);
    /* rnr_retry 7: it waits for the receive, however long */
    p = pair_new(64, 1, 7, IBV_ACCESS_LOCAL_WRITE);
    fill(p->a.buf, 10, 1);
    assert_int_equal(post_send(&p->a, IBV_WR_SEND, 2, 0, 10, 0, 0, 0, p->a.mr->lkey), 0);
    int early = poll_n(p->a.scq, &wc, 1, 300);
    if (early)
        print_error("unexpected completion: status %d wr_id %llu\n", wc.status, (unsigned long long)wc.wr_id);
    assert_int_equal(early, 0);     /* still waiting */
    post_recv(&p->b, 5, 1, 0, 10);
    expect_delivered(p, 10);
    pair_free(p);
}

/* Sets the transport retry count and local ACK timeout (4.096 us <<
 * timeout, 0 = infinite) of a QP in RTS (RTS->RTS). */
static void set_retry(struct ibv_qp *qp, int retry_cnt, int timeout)
{
    struct ibv_qp_attr r = { .retry_cnt = (uint8_t)retry_cnt, .timeout = (uint8_t)timeout };
    assert_int_equal(ibv_modify_qp(qp, &r, IBV_QP_RETRY_CNT | IBV_QP_TIMEOUT), 0);
}

/* b reaches INIT only; a is in RTS towards it. */
static struct pair *pair_half_ready(int retry_cnt, int timeout)
{
    struct pair *p = pair_open();
    int all = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
    side_init(p, &p->a, 64, 1, all);
    side_init(p, &p->b, 64, 1, all);
    qp_connect(p->a.qp, p->b.qp->qp_num, 7);
    set_retry(p->a.qp, retry_cnt, timeout);
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1, .qp_access_flags = all };
    assert_int_equal(ibv_modify_qp(p->b.qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
                                   IBV_QP_ACCESS_FLAGS), 0);
    return p;
}

static int all_zero(const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

/* A WRITE to a peer QP that is not yet in RTR is not delivered: a real HCA
 * drops it and the requester retries. With timeout 0 (infinite) it lands
 * once the peer reaches RTR; with retry_cnt 1 and a short timeout it fails
 * with RETRY_EXC_ERR and the peer's memory and state stay as they were. */
static void test_write_before_rtr(void **st)
{
    (void)st;
    struct ibv_wc wc;
    struct pair *p = pair_half_ready(7, 0);
    fill(p->a.buf, 100, 3);
    assert_int_equal(post_send(&p->a, IBV_WR_RDMA_WRITE, 1, 0, 100, IBV_SEND_SIGNALED,
                               (uintptr_t)p->b.buf, p->b.mr->rkey, p->a.mr->lkey), 0);
    assert_int_equal(poll_n(p->a.scq, &wc, 1, 300), 0);
    assert_true(all_zero(p->b.buf, 100));   /* not delivered while b is in INIT */
    /* b to RTR (and RTS): the retried write lands */
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_RTR, .dest_qp_num = p->a.qp->qp_num,
                             .path_mtu = IBV_MTU_1024, .ah_attr = { .port_num = 1 } };
    assert_int_equal(ibv_modify_qp(p->b.qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
                                   IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
                                   IBV_QP_MIN_RNR_TIMER), 0);
    assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
    assert_memory_equal(p->b.buf, p->a.buf, 100);
    pair_free(p);

    /* retries run out: 2 tries of 4.096 us << 12 (16 ms) */
    p = pair_half_ready(1, 12);
    fill(p->a.buf, 100, 4);
    assert_int_equal(post_send(&p->a, IBV_WR_RDMA_WRITE, 2, 0, 100, IBV_SEND_SIGNALED,
                               (uintptr_t)p->b.buf, p->b.mr->rkey, p->a.mr->lkey), 0);
    expect_error_then_flush(&p->a, IBV_WC_RETRY_EXC_ERR);
    assert_true(all_zero(p->b.buf, 100));
    struct ibv_qp_init_attr ia;
    assert_int_equal(ibv_query_qp(p->b.qp, &a, IBV_QP_STATE, &ia), 0);
    assert_int_equal(a.qp_state, IBV_QPS_INIT);
    pair_free(p);
}

/* Spins on the CQ (no sleep: the poller must be as quick as it can be to
 * catch a QP state that lags its completion); returns the count. */
static int spin_poll(struct ibv_cq *cq, struct ibv_wc *wc, long ms)
{
    long end = now_ms() + ms;
    int r = 0;
    while (!r && now_ms() < end)
        r = ibv_poll_cq(cq, 1, wc);
    return r;
}

/* An error completion announces the QP's move to ERR: ibv_query_qp right
 * after polling it must say ERR (regression: the completion was published
 * before the state changed). Repeated, since a lag shows only sometimes. */
static void test_error_state_before_completion(void **st)
{
    (void)st;
    struct pair *p = pair_new(64, 1, 0, IBV_ACCESS_LOCAL_WRITE);
    long end = now_ms() + 20000;
    int rounds = 0;
    for (; rounds < 300 && now_ms() < end; rounds++) {
        struct ibv_wc wc;
        struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };
        struct ibv_qp_init_attr ia;
        if (rounds) {
            assert_int_equal(ibv_modify_qp(p->a.qp, &a, IBV_QP_STATE), 0);
            qp_connect(p->a.qp, p->b.qp->qp_num, 0);
        }
        /* b posts no receive: with rnr_retry 0 the send fails quickly */
        assert_int_equal(post_send(&p->a, IBV_WR_SEND, 1, 0, 10, 0, 0, 0, p->a.mr->lkey), 0);
        assert_int_equal(spin_poll(p->a.scq, &wc, DEADLINE_MS), 1);
        assert_int_equal(wc.status, IBV_WC_RNR_RETRY_EXC_ERR);
        assert_int_equal(ibv_query_qp(p->a.qp, &a, IBV_QP_STATE, &ia), 0);
        if (a.qp_state != IBV_QPS_ERR)
            print_error("round %d: QP state %d after its error completion\n", rounds, a.qp_state);
        assert_int_equal(a.qp_state, IBV_QPS_ERR);
    }
    assert_true(rounds >= 20);
    pair_free(p);
}

static void test_flush_on_err(void **st)
{
    (void)st;
    struct pair *p = pair_new(64, 1, 7, IBV_ACCESS_LOCAL_WRITE);
    struct ibv_wc wc[4];
    for (int i = 0; i < 3; i++)
        post_recv(&p->b, 40 + i, 1, 0, 10);
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };
    assert_int_equal(ibv_modify_qp(p->b.qp, &a, IBV_QP_STATE), 0);
    assert_int_equal(poll_n(p->b.rcq, wc, 3, DEADLINE_MS), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(wc[i].status, IBV_WC_WR_FLUSH_ERR);
        assert_int_equal(wc[i].wr_id, 40 + i);
    }
    pair_free(p);
}

static void test_cq_overflow(void **st)
{
    (void)st;
    struct pair *p = pair_new(2, 1, 7, IBV_ACCESS_LOCAL_WRITE);
    struct ibv_wc wc[4];
    for (int i = 0; i < 3; i++)
        post_recv(&p->b, (uint64_t)i, 1, 0, 10);
    for (int i = 0; i < 3; i++)
        assert_int_equal(post_send(&p->a, IBV_WR_SEND, (uint64_t)i, 0, 10, 0, 0, 0, p->a.mr->lkey), 0);
    int r = 0;
    long end = now_ms() + DEADLINE_MS;
    while (r >= 0 && now_ms() < end) {
        r = ibv_poll_cq(p->b.rcq, 0, wc);   /* look without taking */
        if (r >= 0)
            usleep(500);
    }
    assert_true(r < 0);     /* overrun is reported, not silently dropped */
    pair_free(p);
}

static void test_comp_channel(void **st)
{
    (void)st;
    struct pair *p = pair_new(64, 1, 7, IBV_ACCESS_LOCAL_WRITE);
    struct ibv_comp_channel *ch = ibv_create_comp_channel(p->ctx);
    struct ibv_cq *cq = ibv_create_cq(p->ctx, 8, (void *)0x1234, ch, 0);
    assert_non_null(cq);
    /* a completion without ibv_req_notify_cq leaves the fd quiet */
    struct ibv_qp_init_attr ia = { .send_cq = cq, .recv_cq = cq, .qp_type = IBV_QPT_RC,
                                   .cap = { .max_send_wr = 4, .max_recv_wr = 4, .max_send_sge = 1,
                                            .max_recv_sge = 1 } };
    struct ibv_qp *qp = ibv_create_qp(p->pd, &ia);
    assert_non_null(qp);
    struct ibv_wc wc;
    struct ibv_recv_wr rw = { .wr_id = 1 }, *bad;
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1 };
    assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PORT), 0);
    assert_int_equal(ibv_post_recv(qp, &rw, &bad), 0);
    a.qp_state = IBV_QPS_ERR;
    assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE), 0);   /* flush: one completion */
    struct pollfd pf = { .fd = ch->fd, .events = POLLIN };
    assert_int_equal(poll(&pf, 1, 200), 0);
    assert_int_equal(ibv_poll_cq(cq, 1, &wc), 1);
    assert_int_equal(ibv_req_notify_cq(cq, 0), 0);
    a.qp_state = IBV_QPS_RESET;
    assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE), 0);
    a.qp_state = IBV_QPS_INIT;
    assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PORT), 0);
    assert_int_equal(ibv_post_recv(qp, &rw, &bad), 0);
    a.qp_state = IBV_QPS_ERR;
    assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE), 0);
    assert_int_equal(poll(&pf, 1, DEADLINE_MS), 1);
    struct ibv_cq *ecq;
    void *ectx;
    assert_int_equal(ibv_get_cq_event(ch, &ecq, &ectx), 0);
    assert_ptr_equal(ecq, cq);
    assert_ptr_equal(ectx, (void *)0x1234);
    ibv_ack_cq_events(cq, 1);
    ibv_destroy_qp(qp);
    ibv_destroy_cq(cq);
    assert_int_equal(ibv_destroy_comp_channel(ch), 0);
    pair_free(p);
}

static void test_fork_child_refused(void **st)
{
    (void)st;
    struct pair *p = pair_new(64, 1, 7, IBV_ACCESS_LOCAL_WRITE);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int rc = post_send(&p->a, IBV_WR_SEND, 1, 0, 10, 0, 0, 0, p->a.mr->lkey);
        struct ibv_wc wc;
        int pr = ibv_poll_cq(p->a.scq, 1, &wc);
        _exit(rc == EPERM && pr < 0 ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* the parent's resources still work */
    struct ibv_wc wc;
    post_recv(&p->b, 1, 1, 0, 10);
    assert_int_equal(post_send(&p->a, IBV_WR_SEND, 1, 0, 10, 0, 0, 0, p->a.mr->lkey), 0);
    assert_int_equal(poll_n(p->b.rcq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
    pair_free(p);
}

/* In a forked child, without asserts (cmocka's longjmp must not run in
 * the child): opens the device afresh, connects two QPs, moves a pattern.
 * Returns 0 on success, the failing step otherwise. */
static int child_fresh_device(void)
{
    struct ibv_device **l = ibv_get_device_list(NULL);
    struct ibv_context *ctx = l && l[0] ? ibv_open_device(l[0]) : NULL;
    struct ibv_pd *pd = ctx ? ibv_alloc_pd(ctx) : NULL;
    if (!pd)
        return 1;
    struct ibv_cq *cq = ibv_create_cq(ctx, 16, NULL, NULL, 0);
    struct ibv_qp_init_attr ia = { .qp_type = IBV_QPT_RC, .send_cq = cq, .recv_cq = cq,
        .cap = { .max_send_wr = 4, .max_recv_wr = 4, .max_send_sge = 1, .max_recv_sge = 1 } };
    struct ibv_qp *x = cq ? ibv_create_qp(pd, &ia) : NULL;
    struct ibv_qp *y = cq ? ibv_create_qp(pd, &ia) : NULL;
    char *buf = calloc(1, 8192);
    struct ibv_mr *mr = ibv_reg_mr(pd, buf, 8192, IBV_ACCESS_LOCAL_WRITE);
    if (!x || !y || !mr)
        return 2;
    union ibv_gid gid;
    if (ibv_query_gid(ctx, 1, 0, &gid))
        return 3;
    struct ibv_qp *qs[2] = { x, y };
    for (int i = 0; i < 2; i++) {
        struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1,
                                 .qp_access_flags = IBV_ACCESS_LOCAL_WRITE };
        if (ibv_modify_qp(qs[i], &a, IBV_QP_STATE | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
            return 4;
        memset(&a, 0, sizeof a);
        a.qp_state = IBV_QPS_RTR;
        a.dest_qp_num = qs[1 - i]->qp_num;
        a.ah_attr.is_global = 1;
        a.ah_attr.grh.dgid = gid;
        if (ibv_modify_qp(qs[i], &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_DEST_QPN))
            return 5;
        a.qp_state = IBV_QPS_RTS;
        a.rnr_retry = 7;
        if (ibv_modify_qp(qs[i], &a, IBV_QP_STATE | IBV_QP_RNR_RETRY))
            return 6;
    }
    fill(buf, 4096, 42);
    struct ibv_sge rg = { (uintptr_t)buf + 4096, 4096, mr->lkey }, sg = { (uintptr_t)buf, 4096, mr->lkey };
    struct ibv_recv_wr rw = { .wr_id = 2, .sg_list = &rg, .num_sge = 1 }, *rbad;
    struct ibv_send_wr sw = { .wr_id = 1, .sg_list = &sg, .num_sge = 1, .opcode = IBV_WR_SEND,
                              .send_flags = IBV_SEND_SIGNALED }, *sbad;
    if (ibv_post_recv(y, &rw, &rbad) || ibv_post_send(x, &sw, &sbad))
        return 7;
    struct ibv_wc wc[2];
    int n = 0;
    for (long end = now_ms() + DEADLINE_MS; n < 2 && now_ms() < end;) {
        int r = ibv_poll_cq(cq, 2 - n, wc + n);
        if (r < 0)
            return 8;
        n += r;
        if (!r)
            usleep(200);
    }
    if (n != 2 || wc[0].status || wc[1].status || memcmp(buf, buf + 4096, 4096))
        return 9;
    ibv_destroy_qp(x);
    ibv_destroy_qp(y);
    return 0;
}

static void test_fork_child_fresh_device(void **st)
{
    (void)st;
    struct pair *p = pair_new(64, 1, 7, IBV_ACCESS_LOCAL_WRITE);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the parent's QP stays off limits while the child's own ones work */
        int rc = child_fresh_device();
        if (!rc && post_send(&p->a, IBV_WR_SEND, 1, 0, 10, 0, 0, 0, p->a.mr->lkey) != EPERM)
            rc = 20;
        _exit(rc);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    pair_free(p);
}

static void test_unsupported(void **st)
{
    (void)st;
    struct pair *p = pair_new(64, 1, 7, IBV_ACCESS_LOCAL_WRITE);
    struct ibv_qp_init_attr ia = { .send_cq = p->a.scq, .recv_cq = p->a.rcq, .qp_type = IBV_QPT_UC,
                                   .cap = { .max_send_wr = 1, .max_recv_wr = 1 } };
    errno = 0;
    assert_null(ibv_create_qp(p->pd, &ia));
    assert_int_equal(errno, EOPNOTSUPP);
    struct ibv_srq_init_attr sa = { .attr = { .max_wr = 4, .max_sge = 1 } };
    assert_null(ibv_create_srq(p->pd, &sa));
    assert_int_equal(errno, EOPNOTSUPP);
    struct ibv_sge g = { (uintptr_t)p->a.buf, 8, p->a.mr->lkey };
    struct ibv_send_wr wr = { .sg_list = &g, .num_sge = 1, .opcode = IBV_WR_ATOMIC_CMP_AND_SWP }, *bad;
    assert_int_equal(ibv_post_send(p->a.qp, &wr, &bad), EINVAL);
    assert_ptr_equal(bad, &wr);
    pair_free(p);
}

int main(void)
{
    char dir[] = "/tmp/softrdma-engine.XXXXXX";
    /* hardware-exact work queue accounting; SOFTRDMA_STRICT_SQ=0 from
     * outside shows the lenient mode failing test_wq_slots_free_when_polled */
    setenv("SOFTRDMA_STRICT_SQ", "1", 0);
    if (!getenv("SOFTRDMA_FABRIC") && mkdtemp(dir))
        setenv("SOFTRDMA_FABRIC", dir, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_recv_sges),
        cmocka_unit_test(test_short_sends_long_receives),
        cmocka_unit_test(test_malformed_header_dropped),
        cmocka_unit_test(test_write_imm_and_read),
        cmocka_unit_test(test_inline_unsignaled),
        cmocka_unit_test(test_wq_slots_free_when_polled),
        cmocka_unit_test(test_internal_fds_high),
        cmocka_unit_test(test_post_states),
        cmocka_unit_test(test_destroy_busy),
        cmocka_unit_test(test_bad_rkey),
        cmocka_unit_test(test_out_of_bounds_and_access),
        cmocka_unit_test(test_bad_lkey),
        cmocka_unit_test(test_recv_bad_lkey),
        cmocka_unit_test(test_wrong_dgid),
        cmocka_unit_test(test_rnr),
        cmocka_unit_test(test_write_before_rtr),
        cmocka_unit_test(test_error_state_before_completion),
        cmocka_unit_test(test_flush_on_err),
        cmocka_unit_test(test_cq_overflow),
        cmocka_unit_test(test_comp_channel),
        cmocka_unit_test(test_fork_child_refused),
        cmocka_unit_test(test_fork_child_fresh_device),
        cmocka_unit_test(test_unsupported),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (!strcmp(getenv("SOFTRDMA_FABRIC"), dir)) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd)) {}
    }
    return rc;
}
