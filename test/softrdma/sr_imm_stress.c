/* Device-level stress: bursts of small inline RDMA WRITEs, WRITEs with
 * immediate and SENDs with immediate from a client to a server (two
 * processes, normally on the two namespace test hosts). The server keeps
 * few receives posted, so requests stall for a receive (RNR) and resume,
 * while plain writes run ahead; burst sizes vary so that the responder's
 * read buffer ends at every possible point of a request. Every byte and
 * every immediate (order, exactly once) is checked. A lost device wake-up
 * shows as no completion for WAIT_S seconds: the program fails with the
 * sequence number it waited for.
 *
 * Usage: sr_imm_stress server ADDR PORT ROUNDS
 *        sr_imm_stress client ADDR PORT ROUNDS */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <rdma/rdma_cma.h>
#include <rdma/rdma_verbs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOTS 1024          /* write slots in the server's region */
#define SLOT_SIZE 64        /* bytes per slot and per receive buffer */
#define MAX_BURST 900       /* messages per round; + 96 to end on a SEND <= SLOTS */
#define SERVER_RECVS 32     /* receives the server keeps posted */
#define WAIT_S 30           /* no completion for this long: a hang */
#define LAST_FLAG 0x80000000u

struct region_info { uint64_t addr; uint32_t rkey; } __attribute__((packed));

struct ends {
    struct rdma_cm_id *id;
    struct ibv_pd *pd;
    struct ibv_comp_channel *ch;
    struct ibv_cq *cq;
};

static void die(const char *what, uint32_t seq)
{
    fprintf(stderr, "sr_imm_stress: %s (sequence %u): %s\n", what, seq, strerror(errno));
    exit(1);
}

static uint32_t msg_len(uint32_t seq) { return 1 + (seq * 7u) % SLOT_SIZE; }
static uint8_t msg_byte(uint32_t seq, uint32_t i) { return (uint8_t)(seq * 31u + i * 13u + 1); }
/* 0 plain WRITE, 1 WRITE_WITH_IMM, 2 SEND_WITH_IMM. Even rounds mix
 * them (receives run out: RNR stalls and resumes); odd rounds are runs of
 * plain writes that need no receive, with a SEND now and then, so the
 * responder goes through long stretches of requests without a stall. */
static int msg_kind(uint32_t seq, int round)
{
    if (round % 2)
        return seq % 97 == 96 ? 2 : 0;
    return (int)(seq % 3);
}

static void fill(uint8_t *p, uint32_t seq)
{
    for (uint32_t i = 0; i < msg_len(seq); i++)
        p[i] = msg_byte(seq, i);
}

static void check(const uint8_t *p, uint32_t seq, const char *where)
{
    for (uint32_t i = 0; i < msg_len(seq); i++)
        if (p[i] != msg_byte(seq, i)) {
            fprintf(stderr, "sr_imm_stress: %s: byte %u of message %u is 0x%02x, expected 0x%02x\n",
                    where, i, seq, p[i], msg_byte(seq, i));
            exit(1);
        }
}

/* One completion, waiting on the channel for at most WAIT_S seconds. */
static void next_wc(struct ends *e, struct ibv_wc *wc, uint32_t seq)
{
    time_t deadline = time(NULL) + WAIT_S;
    for (;;) {
        int n = ibv_poll_cq(e->cq, 1, wc);
        if (n < 0)
            die("ibv_poll_cq", seq);
        if (n == 0 && ibv_req_notify_cq(e->cq, 0))
            die("ibv_req_notify_cq", seq);
        if (n == 0)
            n = ibv_poll_cq(e->cq, 1, wc);
        if (n > 0) {
            if (wc->status != IBV_WC_SUCCESS) {
                fprintf(stderr, "sr_imm_stress: completion error %s (wr_id %llu, sequence %u)\n",
                        ibv_wc_status_str(wc->status), (unsigned long long)wc->wr_id, seq);
                exit(1);
            }
            return;
        }
        if (time(NULL) >= deadline) {
            fprintf(stderr, "sr_imm_stress: no completion for %d s while waiting for sequence %u: lost wake-up\n",
                    WAIT_S, seq);
            exit(1);
        }
        struct pollfd pfd = { .fd = e->ch->fd, .events = POLLIN };
        if (poll(&pfd, 1, 1000) > 0) {
            struct ibv_cq *cq;
            void *ctx;
            if (ibv_get_cq_event(e->ch, &cq, &ctx))
                die("ibv_get_cq_event", seq);
            ibv_ack_cq_events(cq, 1);
        }
    }
}

static void make_qp(struct ends *e)
{
    e->pd = ibv_alloc_pd(e->id->verbs);
    e->ch = ibv_create_comp_channel(e->id->verbs);
    e->cq = e->ch ? ibv_create_cq(e->id->verbs, 4 * SLOTS, NULL, e->ch, 0) : NULL;
    if (!e->pd || !e->cq)
        die("PD/channel/CQ", 0);
    struct ibv_qp_init_attr a = {
        .send_cq = e->cq, .recv_cq = e->cq, .qp_type = IBV_QPT_RC,
        .cap = { .max_send_wr = SLOTS, .max_recv_wr = SERVER_RECVS + 1,
                 .max_send_sge = 1, .max_recv_sge = 1, .max_inline_data = SLOT_SIZE },
    };
    if (rdma_create_qp(e->id, e->pd, &a))
        die("rdma_create_qp", 0);
}

static void post_recv(struct ends *e, struct ibv_mr *mr, uint8_t *buf, uint64_t idx)
{
    struct ibv_sge sge = { (uintptr_t)buf, SLOT_SIZE, mr->lkey };
    struct ibv_recv_wr wr = { .wr_id = idx, .sg_list = &sge, .num_sge = 1 }, *bad;
    if (ibv_post_recv(e->id->qp, &wr, &bad))
        die("ibv_post_recv", (uint32_t)idx);
}

static struct rdma_addrinfo *lookup(const char *addr, const char *port, int passive)
{
    struct rdma_addrinfo hints = { .ai_port_space = RDMA_PS_TCP,
                                   .ai_flags = passive ? RAI_PASSIVE : 0 }, *res;
    if (rdma_getaddrinfo(addr, port, &hints, &res))
        die("rdma_getaddrinfo", 0);
    return res;
}

/* Receives one round; returns the sequence number after its last message. */
static uint32_t server_round(struct ends *e, struct ibv_mr *rmr, uint8_t *recvs,
                             uint8_t *region, uint32_t first, uint64_t *recv_idx,
                             int *sends_out, int r)
{
    uint32_t want = first;      /* next message with an immediate */
    for (;;) {
        while (msg_kind(want, r) == 0)
            want++;
        struct ibv_wc wc;
        next_wc(e, &wc, want);
        if (wc.opcode == IBV_WC_SEND) {
            /* the last round-done: the client may have started this round
             * before its ACK reached us */
            if (!*sends_out)
                die("SEND completion without a SEND", want);
            (*sends_out)--;
            continue;
        }
        uint32_t imm = ntohl(wc.imm_data);
        uint32_t seq = imm & ~LAST_FLAG;
        if (!(wc.wc_flags & IBV_WC_WITH_IMM) || seq != want) {
            fprintf(stderr, "sr_imm_stress: got immediate %u (flags %d), expected message %u\n",
                    seq, wc.wc_flags, want);
            exit(1);
        }
        uint8_t *buf = recvs + (wc.wr_id % (SERVER_RECVS + 1)) * SLOT_SIZE;
        if (wc.opcode == IBV_WC_RECV) {
            if (msg_kind(seq, r) != 2 || wc.byte_len != msg_len(seq))
                die("SEND of the wrong kind or length", seq);
            check(buf, seq, "SEND");
        } else if (wc.opcode != IBV_WC_RECV_RDMA_WITH_IMM || msg_kind(seq, r) != 1) {
            die("unexpected completion opcode", seq);
        }
        post_recv(e, rmr, recvs + ((*recv_idx) % (SERVER_RECVS + 1)) * SLOT_SIZE, *recv_idx);
        (*recv_idx)++;
        want = seq + 1;
        if (imm & LAST_FLAG)
            break;
    }
    /* RC order: every write of the round landed before its last message */
    for (uint32_t s = first; s < want; s++)
        if (msg_kind(s, r) != 2)
            check(region + (s % SLOTS) * SLOT_SIZE, s, "WRITE");
    return want;
}

static int run_server(const char *addr, const char *port, int rounds)
{
    struct rdma_addrinfo *res = lookup(addr, port, 1);
    struct rdma_cm_id *lid;
    if (rdma_create_ep(&lid, res, NULL, NULL) || rdma_listen(lid, 4))
        die("listen", 0);
    struct ends e = { 0 };
    if (rdma_get_request(lid, &e.id))
        die("rdma_get_request", 0);
    make_qp(&e);
    uint8_t *region = calloc(SLOTS, SLOT_SIZE), *recvs = calloc(SERVER_RECVS + 1, SLOT_SIZE);
    uint32_t ack_buf = 0;
    struct ibv_mr *mr = region ? ibv_reg_mr(e.pd, region, SLOTS * SLOT_SIZE,
                                            IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE) : NULL;
    struct ibv_mr *rmr = recvs ? ibv_reg_mr(e.pd, recvs, (SERVER_RECVS + 1) * SLOT_SIZE,
                                            IBV_ACCESS_LOCAL_WRITE) : NULL;
    if (!mr || !rmr)
        die("ibv_reg_mr", 0);
    uint64_t recv_idx = 0;
    for (; recv_idx < SERVER_RECVS; recv_idx++)
        post_recv(&e, rmr, recvs + recv_idx * SLOT_SIZE, recv_idx);
    struct region_info info = { (uintptr_t)region, mr->rkey };
    struct rdma_conn_param p = { .private_data = &info, .private_data_len = sizeof info,
                                 .responder_resources = 1, .initiator_depth = 1,
                                 .retry_count = 7, .rnr_retry_count = 7 };
    if (rdma_accept(e.id, &p))
        die("rdma_accept", 0);
    uint32_t seq = 0;
    int sends_out = 0;
    for (int r = 0; r < rounds; r++) {
        seq = server_round(&e, rmr, recvs, region, seq, &recv_idx, &sends_out, r);
        /* round verified: the client may reuse the slots */
        ack_buf = seq;
        if (rdma_post_send(e.id, NULL, &ack_buf, sizeof ack_buf, NULL, IBV_SEND_INLINE | IBV_SEND_SIGNALED))
            die("rdma_post_send (round done)", seq);
        sends_out++;
    }
    while (sends_out) {
        struct ibv_wc wc;
        next_wc(&e, &wc, seq);
        if (wc.opcode != IBV_WC_SEND)
            die("round-done SEND completion expected", seq);
        sends_out--;
    }
    printf("sr_imm_stress server: %d rounds, %u messages verified\n", rounds, seq);
    rdma_disconnect(e.id);
    return 0;
}

/* One WR of a burst; the burst is posted as one chain, so that its
 * requests reach the responder back to back (inline data is copied at
 * post time, so each WR has its own source). */
static void client_prepare(struct ibv_send_wr *wr, struct ibv_sge *sge, uint8_t *src,
                           const struct region_info *ri, uint32_t seq, int last, int r)
{
    int kind = msg_kind(seq, r);
    fill(src, seq);
    *sge = (struct ibv_sge){ (uintptr_t)src, msg_len(seq), 0 };
    *wr = (struct ibv_send_wr){ .wr_id = seq, .sg_list = sge, .num_sge = 1,
                                .send_flags = IBV_SEND_INLINE | IBV_SEND_SIGNALED };
    wr->imm_data = htonl(seq | (last ? LAST_FLAG : 0));
    wr->opcode = kind == 0 ? IBV_WR_RDMA_WRITE : kind == 1 ? IBV_WR_RDMA_WRITE_WITH_IMM
                                                           : IBV_WR_SEND_WITH_IMM;
    wr->wr.rdma.remote_addr = ri->addr + (seq % SLOTS) * SLOT_SIZE;
    wr->wr.rdma.rkey = ri->rkey;
}

static int run_client(const char *addr, const char *port, int rounds)
{
    struct rdma_addrinfo *res = lookup(addr, port, 0);
    struct ends e = { 0 };
    if (rdma_create_ep(&e.id, res, NULL, NULL))
        die("rdma_create_ep", 0);
    make_qp(&e);
    uint32_t done_buf = 0;
    struct ibv_mr *dmr = ibv_reg_mr(e.pd, &done_buf, sizeof done_buf, IBV_ACCESS_LOCAL_WRITE);
    if (!dmr)
        die("ibv_reg_mr", 0);
    struct rdma_conn_param p = { .responder_resources = 1, .initiator_depth = 1,
                                 .retry_count = 7, .rnr_retry_count = 7 };
    if (rdma_connect(e.id, &p))
        die("rdma_connect", 0);
    struct region_info ri;
    if (!e.id->event || e.id->event->param.conn.private_data_len < sizeof ri)
        die("no region in the accept's private data", 0);
    memcpy(&ri, e.id->event->param.conn.private_data, sizeof ri);
    static uint8_t src[SLOTS][SLOT_SIZE];
    static struct ibv_send_wr wrs[SLOTS];
    static struct ibv_sge sges[SLOTS];
    uint32_t seq = 0;
    srand(12345);
    for (int r = 0; r < rounds; r++) {
        struct ibv_recv_wr rwr = { .wr_id = 1u << 31 };
        struct ibv_sge rsge = { (uintptr_t)&done_buf, sizeof done_buf, dmr->lkey };
        struct ibv_recv_wr *bad;
        rwr.sg_list = &rsge;
        rwr.num_sge = 1;
        if (ibv_post_recv(e.id->qp, &rwr, &bad))
            die("ibv_post_recv", seq);
        uint32_t burst = 1 + (uint32_t)rand() % MAX_BURST, first = seq;
        while (msg_kind(first + burst - 1, r) != 2)
            burst++;    /* a round ends with a SEND (<= MAX_BURST + 96 < SLOTS) */
        for (uint32_t i = 0; i < burst; i++, seq++) {
            client_prepare(&wrs[i], &sges[i], src[i], &ri, seq, i + 1 == burst, r);
            wrs[i].next = i + 1 < burst ? &wrs[i + 1] : NULL;
        }
        struct ibv_send_wr *bad_wr;
        if (ibv_post_send(e.id->qp, wrs, &bad_wr))
            die("ibv_post_send", (uint32_t)bad_wr->wr_id);
        /* burst sends complete, and the server's round-done arrives */
        int got_done = 0;
        for (uint32_t completed = 0; completed < burst || !got_done;) {
            struct ibv_wc wc;
            next_wc(&e, &wc, first + completed);
            if (wc.opcode == IBV_WC_RECV) {
                /* may overtake the last ACKs: they travel another stream */
                if (got_done || done_buf != seq)
                    die("round-done for the wrong round", seq);
                got_done = 1;
            } else if (wc.wr_id != first + completed++) {
                die("send completions out of order", (uint32_t)wc.wr_id);
            }
        }
    }
    printf("sr_imm_stress client: %d rounds, %u messages sent\n", rounds, seq);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
        fprintf(stderr, "usage: sr_imm_stress server|client ADDR PORT ROUNDS\n");
        return 2;
    }
    int rounds = atoi(argv[4]);
    if (rounds <= 0) {
        fprintf(stderr, "sr_imm_stress: ROUNDS must be a positive number, got '%s'\n", argv[4]);
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    return !strcmp(argv[1], "server") ? run_server(argv[2], argv[3], rounds)
                                      : run_client(argv[2], argv[3], rounds);
}
