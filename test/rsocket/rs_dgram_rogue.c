/*
 * rs_dgram_rogue VICTIM_IP VICTIM_PORT OWN_IP - a malicious datagram
 * rsocket peer written with plain verbs and rdma_cm (no engine): it makes
 * first contact over UDP (op 0, payload "GOOD0") to learn the victim's
 * QPN from the op-7 reply, builds an address handle, and then sends UD
 * messages with: version 9, a v4 version with the v6 length, a 3-byte
 * message (shorter than any header), an IPv6 header to an IPv4 socket,
 * an empty message; then valid headers with "GOOD" and "END". The victim
 * (rs_dgram_api sink) must deliver exactly GOOD0, GOOD, END.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <infiniband/verbs.h>
#include <poll.h>
#include <rdma/rdma_cma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QKEY 0x01234567u

static int die(const char *what)
{
    fprintf(stderr, "rs_dgram_rogue: %s: %s\n", what, strerror(errno));
    exit(1);
}

static struct sockaddr_in addr4(const char *ip, int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1)
        die("address");
    return a;
}

static void cm_wait(struct rdma_event_channel *ch, enum rdma_cm_event_type want)
{
    struct rdma_cm_event *ev;
    struct pollfd p = { .fd = ch->fd, .events = POLLIN };
    if (poll(&p, 1, 10000) != 1 || rdma_get_cm_event(ch, &ev))
        die("cm event");
    if (ev->event != want) {
        errno = EPROTO;
        die(rdma_event_str(ev->event));
    }
    rdma_ack_cm_event(ev);
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    struct sockaddr_in victim = addr4(argv[1], atoi(argv[2])), own = addr4(argv[3], 0);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    socklen_t l = sizeof(own);
    if (u < 0 || bind(u, (struct sockaddr *)&own, l) || getsockname(u, (struct sockaddr *)&own, &l))
        die("udp socket");
    struct rdma_cm_id *id;
    if (rdma_create_id(NULL, &id, NULL, RDMA_PS_UDP) || rdma_bind_addr(id, (struct sockaddr *)&own))
        die("rdma id");
    struct ibv_pd *pd = ibv_alloc_pd(id->verbs);
    struct ibv_cq *cq = ibv_create_cq(id->verbs, 64, NULL, NULL, 0);
    struct ibv_qp_init_attr ia = { .send_cq = cq, .recv_cq = cq, .qp_type = IBV_QPT_UD,
                                   .sq_sig_all = 1,
                                   .cap = { .max_send_wr = 16, .max_recv_wr = 4,
                                            .max_send_sge = 1, .max_recv_sge = 1 } };
    if (!pd || !cq || rdma_create_qp(id, pd, &ia))
        die("UD QP");
    /* first contact: op 0 with data, our QPN and IP */
    uint8_t h[16 + 5] = { 0x55, 0x55, 0x55, 0x55, 4, 0, 16, 0 };
    uint32_t qpn = htonl(id->qp->qp_num & 0xFFFFFF);
    memcpy(h + 8, &qpn, 4);
    memcpy(h + 12, &own.sin_addr, 4);
    memcpy(h + 16, "GOOD0", 5);
    if (sendto(u, h, sizeof(h), 0, (struct sockaddr *)&victim, sizeof(victim)) != sizeof(h))
        die("first contact");
    uint8_t r[64];
    struct pollfd p = { .fd = u, .events = POLLIN };
    if (poll(&p, 1, 10000) != 1 || recv(u, r, sizeof(r), 0) != 16 || r[5] != 7)
        die("no op-7 reply");
    uint32_t vq;
    memcpy(&vq, r + 8, 4);
    vq = ntohl(vq);
    /* the address handle, from a resolved route */
    struct rdma_event_channel *ch = rdma_create_event_channel();
    struct rdma_cm_id *rid;
    own.sin_port = 0;
    if (!ch || rdma_create_id(ch, &rid, NULL, RDMA_PS_UDP) ||
        rdma_resolve_addr(rid, (struct sockaddr *)&own, (struct sockaddr *)&victim, 2000))
        die("resolve_addr");
    cm_wait(ch, RDMA_CM_EVENT_ADDR_RESOLVED);
    if (rdma_resolve_route(rid, 2000))
        die("resolve_route");
    cm_wait(ch, RDMA_CM_EVENT_ROUTE_RESOLVED);
    struct ibv_sa_path_rec *pr = rid->route.path_rec;
    struct ibv_ah_attr aa = { .dlid = ntohs(pr->dlid), .port_num = rid->port_num, .is_global = 1 };
    aa.grh.dgid = pr->dgid;
    aa.grh.hop_limit = pr->hop_limit;
    struct ibv_ah *ah = ibv_create_ah(pd, &aa);
    uint8_t *buf = calloc(1, 4096);
    struct ibv_mr *mr = ibv_reg_mr(pd, buf, 4096, IBV_ACCESS_LOCAL_WRITE);
    if (!ah || !mr)
        die("AH / MR");
    struct { uint8_t hdr[8]; size_t hlen; const char *data; } msgs[] = {
        { { 9, 8 }, 8, "BAD-version" },
        { { 4, 24 }, 8, "BAD-length" },
        { { 4, 8 }, 0, "" },                           /* 3 bytes: cut below */
        { { 6, 24 }, 8, "BAD-family-v6-header-to-v4" },
        { { 0 }, 0, NULL },                            /* empty message */
        { { 4, 8 }, 8, "GOOD" },
        { { 4, 8 }, 8, "END" },
    };
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        size_t n = msgs[i].hlen;
        memcpy(buf, msgs[i].hdr, 8);
        memcpy(buf + 2, &own.sin_port, 2);      /* 0 after the resolve: any port */
        memcpy(buf + 4, &own.sin_addr, 4);
        if (msgs[i].data) {
            memcpy(buf + n, msgs[i].data, strlen(msgs[i].data));
            n += strlen(msgs[i].data);
        }
        if (i == 2)
            n = 3;
        struct ibv_sge sge = { (uintptr_t)buf, (uint32_t)n, mr->lkey };
        struct ibv_send_wr wr = { .sg_list = &sge, .num_sge = n ? 1 : 0, .opcode = IBV_WR_SEND }, *bad;
        wr.wr.ud.ah = ah;
        wr.wr.ud.remote_qpn = vq;
        wr.wr.ud.remote_qkey = QKEY;
        if (ibv_post_send(id->qp, &wr, &bad))
            die("post_send");
        struct ibv_wc wc;
        int got = 0;
        for (int k = 0; k < 1000000 && got == 0; k++)
            got = ibv_poll_cq(cq, 1, &wc);
        if (got != 1)
            die("no send completion");
    }
    printf("sent 5 malformed UD messages and 2 valid ones to QPN %u\n", vq);
    return 0;
}
