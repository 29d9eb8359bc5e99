/* rdma_tcp_exchange: an RC connection made by hand, without rdma_cm.
 *
 * rdma_cm normally finds the device, exchanges the queue pair numbers and
 * drives the QP states. This example does all of it itself, the way many
 * HPC programs do:
 *   1. a TCP connection between the two hosts (only used for set-up);
 *   2. the device and GID index that belong to the local IP address of that
 *      TCP connection (RoCE v2 GIDs are the interface addresses, IPv4 ones
 *      as IPv4-mapped IPv6 addresses ::ffff:a.b.c.d);
 *   3. PD, CQ, QP, then RESET -> INIT (port, access rights);
 *   4. LID, GID, QPN, PSN and MTU exchanged over TCP;
 *   5. INIT -> RTR (where to send: the peer's GID and QPN, its first PSN)
 *      and RTR -> RTS (our first PSN, retry and timeout policy);
 *   6. SEND/RECV ping-pong, every message checked; a TCP handshake at the
 *      end so neither side tears down its QP while the other still works.
 *
 *   server:  rdma_tcp_exchange -s -a 192.168.21.180 [-p 7474]
 *   client:  rdma_tcp_exchange -c 192.168.21.180 [-p 7474] [-n 1000] [-S 4096]
 */
#include "ex_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: rdma_tcp_exchange -s [-a BIND_ADDR] [-p PORT] [-S BYTES] [-t SECONDS]\n"
    "       rdma_tcp_exchange -c SERVER_ADDR [-p PORT] [-n ITERATIONS] [-S BYTES] [-t SECONDS]\n";

enum { RECV_SLOTS = 4 };

/* What each side tells the other over TCP (network byte order). */
struct wire_info {
    uint32_t qpn;           /* queue pair number */
    uint32_t psn;           /* first packet sequence number we will send */
    uint16_t lid;           /* InfiniBand local id (0 on RoCE) */
    uint16_t mtu;           /* enum ibv_mtu of our port */
    uint8_t gid[16];        /* our GID: where to send on RoCE */
    uint32_t iterations;    /* client -> server: messages to exchange */
};

/* Local RDMA resources. */
struct rc_side {
    struct ibv_context *ctx;
    uint8_t port;
    int gid_index;
    struct ibv_port_attr port_attr;
    union ibv_gid gid;
    struct ibv_pd *pd;
    struct ibv_comp_channel *cc;
    struct ibv_cq *cq;
    struct ibv_qp *qp;
    uint8_t *buf;           /* RECV_SLOTS receive slots, then one send slot */
    struct ibv_mr *mr;
    size_t slot;            /* bytes per slot (-S) */
};

/* ---- TCP, bounded by the deadline --------------------------------------- */

static void wait_fd(int fd, short events, int64_t deadline, const char *what)
{
    struct pollfd pfd = { .fd = fd, .events = events };
    for (;;) {
        int left = ex_remaining_ms(deadline);
        if (left == 0)
            ex_fail("timed out waiting for %s", what);
        int rc = poll(&pfd, 1, left);
        if (rc > 0)
            return;
        if (rc < 0 && errno != EINTR)
            ex_fail_errno("poll (%s)", what);
    }
}

static void tcp_write_all(int fd, const void *p, size_t len, int64_t deadline)
{
    const uint8_t *b = p;
    while (len > 0) {
        wait_fd(fd, POLLOUT, deadline, "the TCP peer to accept data");
        ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            ex_fail_errno("TCP send");
        if (n > 0) {
            b += n;
            len -= (size_t)n;
        }
    }
}

static void tcp_read_all(int fd, void *p, size_t len, int64_t deadline)
{
    uint8_t *b = p;
    while (len > 0) {
        wait_fd(fd, POLLIN, deadline, "data from the TCP peer");
        ssize_t n = recv(fd, b, len, 0);
        if (n == 0)
            ex_fail("TCP peer closed the connection during set-up");
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            ex_fail_errno("TCP recv");
        if (n > 0) {
            b += n;
            len -= (size_t)n;
        }
    }
}

static int tcp_server_accept(const struct ex_opts *o, int64_t deadline)
{
    struct sockaddr_storage ss;
    ex_sockaddr(o->addr, o->port, &ss);
    int lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
        ex_fail_errno("TCP socket");
    if (bind(lfd, (struct sockaddr *)&ss, sizeof(ss)) || listen(lfd, 1))
        ex_fail_errno("TCP bind/listen on %s port %s", o->addr ? o->addr : "0.0.0.0", o->port);
    printf("rdma_tcp_exchange: listening on %s port %s\n", o->addr ? o->addr : "0.0.0.0", o->port);
    fflush(stdout);
    wait_fd(lfd, POLLIN, deadline, "a TCP connection");
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
    if (fd < 0)
        ex_fail_errno("TCP accept");
    close(lfd);
    return fd;
}

static int tcp_client_connect(const struct ex_opts *o, int64_t deadline)
{
    struct sockaddr_storage ss;
    ex_sockaddr(o->addr, o->port, &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        ex_fail_errno("TCP socket");
    if (connect(fd, (struct sockaddr *)&ss, sizeof(ss)) && errno != EINPROGRESS)
        ex_fail_errno("TCP connect to %s port %s", o->addr, o->port);
    wait_fd(fd, POLLOUT, deadline, "the TCP connection");
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        errno = err;
        ex_fail_errno("TCP connect to %s port %s", o->addr, o->port);
    }
    return fd;
}

/* ---- device and GID ----------------------------------------------------- */

/* The GID a RoCE device gives to the local IP address of `fd`. */
static void local_gid_of(int fd, union ibv_gid *gid, char *text, size_t text_len)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len))
        ex_fail_errno("getsockname");
    memset(gid, 0, sizeof(*gid));
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        gid->raw[10] = gid->raw[11] = 0xff;          /* ::ffff:a.b.c.d */
        memcpy(&gid->raw[12], &in->sin_addr, 4);
        inet_ntop(AF_INET, &in->sin_addr, text, (socklen_t)text_len);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        memcpy(gid->raw, &in6->sin6_addr, 16);
        inet_ntop(AF_INET6, &in6->sin6_addr, text, (socklen_t)text_len);
    }
}

/* Searches one port's GID table for `want`; returns the index or -1. */
static int find_gid_index(struct ibv_context *ctx, uint8_t port, int table_len,
                          const union ibv_gid *want)
{
    for (int i = 0; i < table_len; i++) {
        union ibv_gid g;
        if (ibv_query_gid(ctx, port, i, &g) == 0 && memcmp(&g, want, sizeof(g)) == 0)
            return i;
    }
    return -1;
}

/* Opens the device whose port has `want` in its GID table. */
static void open_device_for_gid(const union ibv_gid *want, const char *ip, struct rc_side *s)
{
    int ndev = 0;
    struct ibv_device **list = ibv_get_device_list(&ndev);
    if (!list || ndev == 0)
        ex_fail("no RDMA device found (ibv_get_device_list)");
    for (int d = 0; d < ndev; d++) {
        struct ibv_context *ctx = ibv_open_device(list[d]);
        struct ibv_device_attr dattr;
        if (!ctx)
            continue;
        if (ibv_query_device(ctx, &dattr) == 0) {
            for (uint8_t port = 1; port <= dattr.phys_port_cnt; port++) {
                struct ibv_port_attr pattr;
                if (ibv_query_port(ctx, port, &pattr))
                    continue;
                int idx = find_gid_index(ctx, port, pattr.gid_tbl_len, want);
                if (idx >= 0) {
                    s->ctx = ctx;
                    s->port = port;
                    s->gid_index = idx;
                    s->port_attr = pattr;
                    s->gid = *want;
                    printf("rdma_tcp_exchange: %s is GID index %d of %s port %u\n", ip, idx,
                           ibv_get_device_name(list[d]), port);
                    ibv_free_device_list(list);
                    return;
                }
            }
        }
        ibv_close_device(ctx);
    }
    ibv_free_device_list(list);
    ex_fail("no RDMA device has a GID for local address %s", ip);
}

/* ---- queue pair --------------------------------------------------------- */

static void create_qp(struct rc_side *s, size_t slot)
{
    s->slot = slot;
    s->pd = ibv_alloc_pd(s->ctx);
    s->cc = s->pd ? ibv_create_comp_channel(s->ctx) : NULL;
    s->cq = s->cc ? ibv_create_cq(s->ctx, 2 * RECV_SLOTS + 2, NULL, s->cc, 0) : NULL;
    if (!s->cq)
        ex_fail_errno("creating PD, completion channel and CQ");
    s->buf = ex_alloc_buf((RECV_SLOTS + 1) * slot);
    s->mr = ibv_reg_mr(s->pd, s->buf, (RECV_SLOTS + 1) * slot, IBV_ACCESS_LOCAL_WRITE);
    if (!s->mr)
        ex_fail_errno("ibv_reg_mr");
    struct ibv_qp_init_attr attr = {
        .send_cq = s->cq, .recv_cq = s->cq, .qp_type = IBV_QPT_RC, .sq_sig_all = 1,
        .cap = { .max_send_wr = 2, .max_recv_wr = RECV_SLOTS,
                 .max_send_sge = 1, .max_recv_sge = 1 },
    };
    s->qp = ibv_create_qp(s->pd, &attr);
    if (!s->qp)
        ex_fail_errno("ibv_create_qp");
}

/* RESET -> INIT: bind the QP to a port; RECVs may be posted from now on. */
static void qp_to_init(struct rc_side *s)
{
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .pkey_index = 0,
                             .port_num = s->port, .qp_access_flags = 0 };
    if (ibv_modify_qp(s->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
                                     IBV_QP_ACCESS_FLAGS))
        ex_fail_errno("ibv_modify_qp INIT");
}

/* INIT -> RTR: the QP learns its peer (address vector, QPN, first PSN). */
static void qp_to_rtr(struct rc_side *s, const struct wire_info *peer)
{
    struct ibv_qp_attr a = {
        .qp_state = IBV_QPS_RTR,
        .path_mtu = ntohs(peer->mtu) < s->port_attr.active_mtu ? (enum ibv_mtu)ntohs(peer->mtu)
                                                                : s->port_attr.active_mtu,
        .dest_qp_num = ntohl(peer->qpn),
        .rq_psn = ntohl(peer->psn),
        .max_dest_rd_atomic = 1,
        .min_rnr_timer = 12,                        /* 0.64 ms before an RNR retry */
        .ah_attr = {
            .dlid = ntohs(peer->lid),
            .port_num = s->port,
            .is_global = 1,                         /* RoCE: routed by GID */
            .grh = { .sgid_index = (uint8_t)s->gid_index, .hop_limit = 64 },
        },
    };
    memcpy(a.ah_attr.grh.dgid.raw, peer->gid, 16);
    if (ibv_modify_qp(s->qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
                                     IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
                                     IBV_QP_MIN_RNR_TIMER))
        ex_fail_errno("ibv_modify_qp RTR");
}

/* RTR -> RTS: the QP may send, starting at our PSN. */
static void qp_to_rts(struct rc_side *s, uint32_t my_psn)
{
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_RTS, .timeout = 14, .retry_cnt = 7,
                             .rnr_retry = 7, .sq_psn = my_psn, .max_rd_atomic = 1 };
    if (ibv_modify_qp(s->qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
                                     IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
        ex_fail_errno("ibv_modify_qp RTS");
}

static void destroy_side(struct rc_side *s)
{
    ibv_destroy_qp(s->qp);
    ibv_dereg_mr(s->mr);
    ibv_destroy_cq(s->cq);
    ibv_destroy_comp_channel(s->cc);
    ibv_dealloc_pd(s->pd);
    ibv_close_device(s->ctx);
    free(s->buf);
}

/* ---- messages ----------------------------------------------------------- */

static uint32_t message_len(uint32_t seq, size_t slot)
{
    return 4 + (uint32_t)(((uint64_t)seq * 977u) % (slot - 3));
}

static void post_recv_slot(struct rc_side *s, unsigned slot)
{
    struct ibv_sge sge = { .addr = (uintptr_t)(s->buf + slot * s->slot),
                           .length = (uint32_t)s->slot, .lkey = s->mr->lkey };
    struct ibv_recv_wr wr = { .wr_id = slot, .sg_list = &sge, .num_sge = 1 }, *bad;
    if (ibv_post_recv(s->qp, &wr, &bad))
        ex_fail_errno("ibv_post_recv");
}

/* Sends message `seq`: 4-byte sequence number then a pattern. */
static void send_message(struct rc_side *s, uint32_t seq)
{
    uint8_t *p = s->buf + RECV_SLOTS * s->slot;   /* the send slot */
    uint32_t len = message_len(seq, s->slot), be = htonl(seq);
    memcpy(p, &be, 4);
    ex_fill_pattern(p + 4, len - 4, seq);
    struct ibv_sge sge = { .addr = (uintptr_t)p, .length = len, .lkey = s->mr->lkey };
    struct ibv_send_wr wr = { .wr_id = seq, .sg_list = &sge, .num_sge = 1,
                              .opcode = IBV_WR_SEND }, *bad;
    if (ibv_post_send(s->qp, &wr, &bad))
        ex_fail_errno("ibv_post_send (message %u)", seq);
}

/* Waits for `sends` send completions and one receive, in any order; checks
 * the received message is `seq`, then re-posts its slot. */
static void wait_exchange(struct rc_side *s, int sends, uint32_t seq, int64_t deadline)
{
    bool received = false;
    /* Every completion either counts or fails, so sends + 1 polls suffice. */
    for (int n = 0; n <= sends + 1 && (sends > 0 || !received); n++) {
        struct ibv_wc wc;
        ex_wait_wc(s->cq, s->cc, deadline, &wc);
        if (wc.status == IBV_WC_SUCCESS && wc.opcode == IBV_WC_SEND && sends > 0) {
            sends--;
            continue;
        }
        ex_check_wc(&wc, IBV_WC_RECV, "RECV");
        if (received)
            ex_fail("message %u: a second message arrived unasked", seq);
        const uint8_t *p = s->buf + wc.wr_id * s->slot;
        uint32_t be;
        memcpy(&be, p, 4);
        if (ntohl(be) != seq || wc.byte_len != message_len(seq, s->slot))
            ex_fail("message %u: got sequence %u with %u bytes", seq, ntohl(be), wc.byte_len);
        long bad = ex_find_mismatch(p + 4, wc.byte_len - 4, seq);
        if (bad >= 0)
            ex_fail("message %u differs at byte %ld", seq, bad + 4);
        post_recv_slot(s, (unsigned)wc.wr_id);
        received = true;
    }
    if (sends > 0 || !received)
        ex_fail("message %u: completions missing", seq);
}

/* ---- the program -------------------------------------------------------- */

static void run(const struct ex_opts *o)
{
    int64_t deadline = ex_now_ms() + o->timeout_s * 1000LL;
    int fd = o->server ? tcp_server_accept(o, deadline) : tcp_client_connect(o, deadline);

    struct rc_side s;
    char ip[INET6_ADDRSTRLEN];
    memset(&s, 0, sizeof(s));
    union ibv_gid want;
    local_gid_of(fd, &want, ip, sizeof(ip));
    open_device_for_gid(&want, ip, &s);
    create_qp(&s, o->size);
    qp_to_init(&s);
    for (unsigned r = 0; r < RECV_SLOTS; r++)
        post_recv_slot(&s, r);      /* before the peer can possibly send */

    srand48(ex_now_ms() ^ getpid());
    uint32_t my_psn = (uint32_t)lrand48() & 0xffffff;     /* PSNs are 24 bits */
    struct wire_info mine = { .qpn = htonl(s.qp->qp_num), .psn = htonl(my_psn),
                              .lid = htons(s.port_attr.lid),
                              .mtu = htons((uint16_t)s.port_attr.active_mtu),
                              .iterations = htonl((uint32_t)o->iterations) }, peer;
    memcpy(mine.gid, s.gid.raw, 16);
    tcp_write_all(fd, &mine, sizeof(mine), deadline);
    tcp_read_all(fd, &peer, sizeof(peer), deadline);
    uint32_t iterations = o->server ? ntohl(peer.iterations) : (uint32_t)o->iterations;

    qp_to_rtr(&s, &peer);
    qp_to_rts(&s, my_psn);
    char ready = 'R';               /* both QPs can receive before anyone sends */
    tcp_write_all(fd, &ready, 1, deadline);
    tcp_read_all(fd, &ready, 1, deadline);

    for (uint32_t i = 0; i < iterations; i++) {
        if (o->server) {
            wait_exchange(&s, i > 0 ? 1 : 0, i, deadline);   /* + our previous echo */
            send_message(&s, i);
        } else {
            send_message(&s, i);
            wait_exchange(&s, 1, i, deadline);
        }
    }
    if (o->server && iterations > 0) {
        struct ibv_wc wc;           /* the last echo's completion */
        ex_wait_wc(s.cq, s.cc, deadline, &wc);
        ex_check_wc(&wc, IBV_WC_SEND, "last echo");
    }
    printf("rdma_tcp_exchange: %s: %u messages exchanged and checked\n",
           o->server ? "server" : "client", iterations);

    char done = 'D';                /* nobody destroys its QP while the peer works */
    tcp_write_all(fd, &done, 1, deadline);
    tcp_read_all(fd, &done, 1, deadline);
    close(fd);
    destroy_side(&s);
}

int main(int argc, char **argv)
{
    static const struct ex_opts defaults = {
        .port = "7474", .iterations = 1000, .size = 4096, .timeout_s = 60, .clients = 1,
    };
    struct ex_opts o;
    ex_parse_opts(argc, argv, &defaults, usage, &o);
    run(&o);
    return 0;
}
