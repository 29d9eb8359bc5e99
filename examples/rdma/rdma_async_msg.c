/* rdma_async_msg: asynchronous RDMA messaging on one event loop.
 *
 * Everything an RDMA program waits for is behind a pollable fd:
 *   - the rdma_cm event channel (connect requests, established,
 *     disconnected, ...), one per process here;
 *   - one completion channel per connection's CQ (work completions).
 * A single epoll set watches all of them; the loop turns what arrives into
 * callbacks (connection request, established, message received,
 * disconnected). No thread and no busy polling.
 *
 * The client sends -n messages of varying length with up to -w of them
 * unanswered; the server checks each and echoes it; the client checks each
 * echo, then disconnects. The server serves -k clients (at the same time or
 * one after another) and exits.
 *
 *   server:  rdma_async_msg -s -a 192.168.21.180 [-p 7473] [-k 3]
 *   client:  rdma_async_msg -c 192.168.21.180 [-p 7473] [-n 1000] [-w 8]
 */
#include "ex_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static const char usage[] =
    "usage: rdma_async_msg -s [-a BIND_ADDR] [-p PORT] [-k CLIENTS] [-t SECONDS]\n"
    "       rdma_async_msg -c SERVER_ADDR [-p PORT] [-n MESSAGES] [-w IN_FLIGHT (1..8)] [-t SECONDS]\n";

enum {
    MSG_MAX = 1024,         /* largest message, header included */
    RECV_SLOTS = 16,        /* RECVs kept posted per connection */
    SEND_SLOTS = 16,        /* send buffers per connection */
    MAX_WINDOW = 8,         /* client messages in flight (-w); at most half the
                               RECV_SLOTS so the server always has a RECV posted
                               (no RNR waits) */
};

/* Message header, network byte order, followed by a pattern payload. */
struct msg_hdr {
    uint32_t seq;           /* 0, 1, 2, ... per connection */
    uint32_t len;           /* whole message, header included */
    uint32_t tag;           /* chosen by the client; keeps clients' data apart */
};

/* Client -> server in the connect private data (network byte order). */
struct client_hello {
    uint32_t tag;           /* goes into every message of this client */
    uint32_t messages;      /* how many it will send: the server checks it got all */
};

/* What an epoll entry points at: the first member tells which kind it is. */
enum source_kind { SOURCE_CM, SOURCE_CQ };

struct loop;

struct conn {
    enum source_kind kind;              /* SOURCE_CQ: must stay first */
    struct loop *loop;
    struct rdma_cm_id *id;
    struct ex_endpoint ep;
    uint8_t *recv_bufs, *send_bufs;     /* RECV_SLOTS / SEND_SLOTS x MSG_MAX */
    struct ibv_mr *recv_mr, *send_mr;
    unsigned send_next, sends_in_flight;
    uint32_t tag;
    uint32_t expected;                  /* server: messages the client announced */
    uint32_t recv_seq;                  /* next sequence number expected */
    uint32_t send_seq;                  /* next sequence number to send */
    uint32_t send_due;                  /* messages that should have been sent by now */
    bool dead;                          /* destroyed after the current epoll batch */
    struct conn *next_dead;
};

struct callbacks {
    void (*on_connect_request)(struct loop *loop, struct rdma_cm_id *id,
                               const void *private_data, size_t len);
    void (*on_established)(struct conn *c);
    void (*on_message)(struct conn *c, uint32_t seq, uint32_t tag,
                       const uint8_t *payload, uint32_t payload_len);
    void (*on_disconnected)(struct conn *c);
};

struct loop {
    enum source_kind cm_kind;           /* SOURCE_CM: the epoll tag of `ch` */
    int epfd;
    struct rdma_event_channel *ch;
    const struct callbacks *cb;
    const struct ex_opts *opts;
    int64_t deadline;
    bool stop;
    int served;                         /* server: connections finished */
    struct conn *dead;                  /* closed in this epoll batch; freed after it,
                                           because later events of the same batch may
                                           still point at them */
};

/* ---- messages ----------------------------------------------------------- */

static uint32_t msg_len(uint32_t seq)
{
    return sizeof(struct msg_hdr) + (seq * 131u) % (MSG_MAX - sizeof(struct msg_hdr) + 1);
}

static uint32_t payload_seed(uint32_t seq, uint32_t tag)
{
    return seq ^ (tag << 16);
}

/* Copies a message into the next send slot and posts a SEND; the caller
 * has checked that a slot is free. */
static void conn_send(struct conn *c, uint32_t seq, uint32_t tag)
{
    unsigned slot = c->send_next++ % SEND_SLOTS;
    uint8_t *buf = c->send_bufs + slot * MSG_MAX;
    uint32_t len = msg_len(seq);
    struct msg_hdr h = { htonl(seq), htonl(len), htonl(tag) };
    memcpy(buf, &h, sizeof(h));
    ex_fill_pattern(buf + sizeof(h), len - sizeof(h), payload_seed(seq, tag));

    struct ibv_sge sge = { .addr = (uintptr_t)buf, .length = len, .lkey = c->send_mr->lkey };
    struct ibv_send_wr wr = { .wr_id = slot, .sg_list = &sge, .num_sge = 1,
                              .opcode = IBV_WR_SEND }, *bad;
    if (ibv_post_send(c->ep.qp, &wr, &bad))
        ex_fail_errno("ibv_post_send (message %u)", seq);
    c->sends_in_flight++;
}

/* Sends what is due while send slots are free. A slot frees when its SEND
 * completion is polled, and that completion may come well after the peer
 * has received the message and answered it (the acknowledgement travels
 * on its own): how many SENDs are unfinished is not bounded by the peer's
 * window, so a message waits here for a slot instead. */
static void conn_pump(struct conn *c)
{
    while (c->send_seq < c->send_due && c->sends_in_flight < SEND_SLOTS) {
        conn_send(c, c->send_seq, c->tag);
        c->send_seq++;
    }
}

static void conn_post_recv(struct conn *c, unsigned slot)
{
    struct ibv_sge sge = { .addr = (uintptr_t)(c->recv_bufs + slot * MSG_MAX),
                           .length = MSG_MAX, .lkey = c->recv_mr->lkey };
    struct ibv_recv_wr wr = { .wr_id = slot, .sg_list = &sge, .num_sge = 1 }, *bad;
    if (ibv_post_recv(c->ep.qp, &wr, &bad))
        ex_fail_errno("ibv_post_recv");
}

/* Parses a received message and hands it to the on_message callback. */
static void deliver_message(struct conn *c, const struct ibv_wc *wc)
{
    const uint8_t *buf = c->recv_bufs + wc->wr_id * MSG_MAX;
    struct msg_hdr h;
    if (wc->byte_len < sizeof(h))
        ex_fail("connection %u: runt message of %u bytes", c->tag, wc->byte_len);
    memcpy(&h, buf, sizeof(h));
    if (ntohl(h.len) != wc->byte_len)
        ex_fail("connection %u: message %u says %u bytes, %u arrived", c->tag,
                ntohl(h.seq), ntohl(h.len), wc->byte_len);
    c->loop->cb->on_message(c, ntohl(h.seq), ntohl(h.tag), buf + sizeof(h),
                            wc->byte_len - sizeof(h));
}

/* Checks sequence and payload; shared by server (request) and client (echo). */
static void check_message(struct conn *c, uint32_t seq, uint32_t tag,
                          const uint8_t *payload, uint32_t payload_len)
{
    if (seq != c->recv_seq)
        ex_fail("connection %u: message %u arrived, expected %u", c->tag, seq, c->recv_seq);
    if (tag != c->tag)
        ex_fail("connection %u: message %u carries tag %u", c->tag, seq, tag);
    if (payload_len != msg_len(seq) - sizeof(struct msg_hdr))
        ex_fail("connection %u: message %u has %u payload bytes", c->tag, seq, payload_len);
    long bad = ex_find_mismatch(payload, payload_len, payload_seed(seq, tag));
    if (bad >= 0)
        ex_fail("connection %u: message %u differs at payload byte %ld", c->tag, seq, bad);
    c->recv_seq++;
}

/* ---- connections -------------------------------------------------------- */

static void epoll_add(struct loop *loop, int fd, void *source)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = source };
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev))
        ex_fail_errno("epoll_ctl ADD fd %d", fd);
}

/* Creates the verbs resources of a connection, posts its RECVs and puts its
 * completion channel into the epoll set. */
static struct conn *conn_create(struct loop *loop, struct rdma_cm_id *id, uint32_t tag)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        ex_fail("out of memory for a connection");
    c->kind = SOURCE_CQ;
    c->loop = loop;
    c->id = id;
    c->tag = tag;
    id->context = c;     /* CM events on this id lead back to the connection */
    ex_endpoint_create(id, RECV_SLOTS + SEND_SLOTS, &c->ep);
    c->recv_bufs = ex_alloc_buf(RECV_SLOTS * MSG_MAX);
    c->send_bufs = ex_alloc_buf(SEND_SLOTS * MSG_MAX);
    c->recv_mr = ex_reg_mr(&c->ep, c->recv_bufs, RECV_SLOTS * MSG_MAX,
                           IBV_ACCESS_LOCAL_WRITE, "receive slots");
    c->send_mr = ex_reg_mr(&c->ep, c->send_bufs, SEND_SLOTS * MSG_MAX, 0, "send slots");
    for (unsigned s = 0; s < RECV_SLOTS; s++)
        conn_post_recv(c, s);
    if (ibv_req_notify_cq(c->ep.cq, 0))
        ex_fail("ibv_req_notify_cq failed");
    epoll_add(loop, c->ep.cc->fd, c);
    return c;
}

/* Stops watching the connection; the memory goes at the end of the batch. */
static void conn_close(struct conn *c)
{
    epoll_ctl(c->loop->epfd, EPOLL_CTL_DEL, c->ep.cc->fd, NULL);
    c->dead = true;
    c->next_dead = c->loop->dead;
    c->loop->dead = c;
}

static void conn_destroy(struct conn *c)
{
    ibv_dereg_mr(c->recv_mr);
    ibv_dereg_mr(c->send_mr);
    ex_endpoint_destroy(c->id, &c->ep);
    rdma_destroy_id(c->id);
    free(c->recv_bufs);
    free(c->send_bufs);
    free(c);
}

/* ---- the event loop ----------------------------------------------------- */

static void handle_wc(struct conn *c, const struct ibv_wc *wc)
{
    /* At disconnect the QP enters the error state and every RECV still
     * posted comes back flushed: expected, not a failure. A connection that
     * broke for real stops delivering and the deadline reports it. */
    if (wc->status == IBV_WC_WR_FLUSH_ERR)
        return;
    if (wc->status != IBV_WC_SUCCESS)
        ex_fail("connection %u: work completion error: %s (opcode %d)", c->tag,
                ibv_wc_status_str(wc->status), wc->opcode);
    if (wc->opcode == IBV_WC_SEND) {
        c->sends_in_flight--;
        conn_pump(c);                               /* a queued message may go */
    } else if (wc->opcode == IBV_WC_RECV) {
        deliver_message(c, wc);
        conn_post_recv(c, (unsigned)wc->wr_id);   /* the slot is free again */
    } else {
        ex_fail("connection %u: unexpected completion opcode %d", c->tag, wc->opcode);
    }
}

/* The CQ's channel fd is readable: consume the event, re-arm, then drain
 * the CQ (re-arming first means a completion racing with the drain still
 * raises a new event). */
static void on_cq_readable(struct conn *c)
{
    struct ibv_cq *cq;
    void *ctx;
    if (ibv_get_cq_event(c->ep.cc, &cq, &ctx)) {
        if (errno == EAGAIN)
            return;
        ex_fail_errno("ibv_get_cq_event");
    }
    ibv_ack_cq_events(cq, 1);
    if (ibv_req_notify_cq(cq, 0))
        ex_fail("ibv_req_notify_cq failed");
    /* Bounded: each completion answers a WR we posted, and at most
     * RECV_SLOTS + SEND_SLOTS are outstanding between two round trips. */
    for (int n = 0; n < 100000; n++) {
        struct ibv_wc wc;
        int got = ibv_poll_cq(cq, 1, &wc);
        if (got < 0)
            ex_fail("ibv_poll_cq failed (%d)", got);
        if (got == 0)
            return;
        handle_wc(c, &wc);
    }
    ex_fail("connection %u: completion queue never drained", c->tag);
}

static void on_cm_event(struct loop *loop)
{
    struct rdma_cm_event *ev;
    if (rdma_get_cm_event(loop->ch, &ev)) {
        if (errno == EAGAIN)
            return;
        ex_fail_errno("rdma_get_cm_event");
    }
    /* Copy what we need and ack first: rdma_destroy_id (in a disconnect
     * callback) waits until every event of that id is acknowledged. */
    enum rdma_cm_event_type type = ev->event;
    struct rdma_cm_id *id = ev->id;
    int status = ev->status;
    uint8_t pdata[256];              /* private_data_len is 8 bits */
    size_t plen = ev->param.conn.private_data ? ev->param.conn.private_data_len : 0;
    memcpy(pdata, ev->param.conn.private_data, plen);
    rdma_ack_cm_event(ev);
    struct conn *c = id->context;

    switch (type) {
    case RDMA_CM_EVENT_CONNECT_REQUEST:
        loop->cb->on_connect_request(loop, id, pdata, plen);
        break;
    case RDMA_CM_EVENT_ADDR_RESOLVED:       /* client: step 2, the route */
        if (rdma_resolve_route(id, 2000))
            ex_fail_errno("rdma_resolve_route");
        break;
    case RDMA_CM_EVENT_ROUTE_RESOLVED: {    /* client: step 3, connect */
        c = conn_create(loop, id, (uint32_t)getpid() & 0xffff);
        struct client_hello hello = { htonl(c->tag), htonl((uint32_t)loop->opts->iterations) };
        struct rdma_conn_param param = { .private_data = &hello, .private_data_len = sizeof(hello),
                                         .retry_count = 7, .rnr_retry_count = 7 };
        if (rdma_connect(id, &param))
            ex_fail_errno("rdma_connect");
        break;
    }
    case RDMA_CM_EVENT_ESTABLISHED:
        loop->cb->on_established(c);
        break;
    case RDMA_CM_EVENT_DISCONNECTED:
        loop->cb->on_disconnected(c);
        break;
    case RDMA_CM_EVENT_TIMEWAIT_EXIT:
        break;
    default:    /* ADDR_ERROR, ROUTE_ERROR, REJECTED, UNREACHABLE, ... */
        ex_fail("connection failed: %s (status %d)%s", rdma_event_str(type), status,
                ex_cm_failure_hint(type));
    }
}

static void run_loop(struct loop *loop)
{
    while (!loop->stop) {
        struct epoll_event evs[16];
        int left = ex_remaining_ms(loop->deadline);
        if (left == 0)
            ex_fail("timed out (%d connection(s) finished)", loop->served);
        int n = epoll_wait(loop->epfd, evs, 16, left);
        if (n < 0 && errno != EINTR)
            ex_fail_errno("epoll_wait");
        for (int i = 0; i < n && !loop->stop; i++) {
            enum source_kind *kind = evs[i].data.ptr;
            if (*kind == SOURCE_CM)
                on_cm_event(loop);
            else if (!((struct conn *)kind)->dead)
                on_cq_readable((struct conn *)kind);
        }
        while (loop->dead) {
            struct conn *c = loop->dead;
            loop->dead = c->next_dead;
            conn_destroy(c);
        }
    }
}

static void loop_init(struct loop *loop, const struct ex_opts *o, const struct callbacks *cb)
{
    memset(loop, 0, sizeof(*loop));
    loop->cm_kind = SOURCE_CM;
    loop->cb = cb;
    loop->opts = o;
    loop->deadline = ex_now_ms() + o->timeout_s * 1000LL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        ex_fail_errno("epoll_create1");
    loop->ch = rdma_create_event_channel();
    if (!loop->ch)
        ex_fail_errno("rdma_create_event_channel");
    epoll_add(loop, loop->ch->fd, &loop->cm_kind);
}

static void loop_fini(struct loop *loop)
{
    rdma_destroy_event_channel(loop->ch);
    close(loop->epfd);
}

/* ---- server callbacks --------------------------------------------------- */

static void server_connect_request(struct loop *loop, struct rdma_cm_id *id,
                                   const void *private_data, size_t len)
{
    struct client_hello hello;
    if (len < sizeof(hello)) {
        fprintf(stderr, "rdma_async_msg: connect request without client hello; rejected\n");
        rdma_reject(id, NULL, 0);
        rdma_destroy_id(id);
        return;
    }
    memcpy(&hello, private_data, sizeof(hello));
    struct conn *c = conn_create(loop, id, ntohl(hello.tag));
    c->expected = ntohl(hello.messages);
    struct rdma_conn_param param = { .rnr_retry_count = 7 };
    if (rdma_accept(id, &param))
        ex_fail_errno("rdma_accept");
}

static void server_established(struct conn *c)
{
    printf("rdma_async_msg: connection %u established\n", c->tag);
    fflush(stdout);
}

static void server_message(struct conn *c, uint32_t seq, uint32_t tag,
                           const uint8_t *payload, uint32_t payload_len)
{
    check_message(c, seq, tag, payload, payload_len);
    c->send_due = c->recv_seq;     /* echo each message, in order */
    conn_pump(c);
}

static void server_disconnected(struct conn *c)
{
    struct loop *loop = c->loop;
    /* The client disconnects only after every echo came back, so all its
     * messages have been received by now. */
    if (c->recv_seq != c->expected)
        ex_fail("client %u disconnected after %u of %u messages", c->tag, c->recv_seq,
                c->expected);
    printf("rdma_async_msg: client %u disconnected after %u checked messages\n",
           c->tag, c->recv_seq);
    rdma_disconnect(c->id);        /* completes our half; an error only means it already is */
    conn_close(c);
    if (++loop->served == loop->opts->clients)
        loop->stop = true;
}

static const struct callbacks server_callbacks = {
    server_connect_request, server_established, server_message, server_disconnected,
};

static void run_server(const struct ex_opts *o)
{
    struct loop loop;
    loop_init(&loop, o, &server_callbacks);
    struct rdma_cm_id *listen_id;
    if (rdma_create_id(loop.ch, &listen_id, NULL, RDMA_PS_TCP))
        ex_fail_errno("rdma_create_id");
    ex_listen(listen_id, o->addr, o->port, "rdma_async_msg");
    run_loop(&loop);
    printf("rdma_async_msg: server served %d client(s)\n", loop.served);
    rdma_destroy_id(listen_id);
    loop_fini(&loop);
}

/* ---- client callbacks --------------------------------------------------- */

/* Up to -w messages beyond the last echo, -n in all. */
static void client_send_window(struct conn *c)
{
    uint32_t total = (uint32_t)c->loop->opts->iterations;
    uint32_t due = c->recv_seq + (uint32_t)c->loop->opts->window;
    c->send_due = due < total ? due : total;
    conn_pump(c);
}

static void client_established(struct conn *c)
{
    client_send_window(c);
}

static void client_message(struct conn *c, uint32_t seq, uint32_t tag,
                           const uint8_t *payload, uint32_t payload_len)
{
    uint32_t total = (uint32_t)c->loop->opts->iterations;
    check_message(c, seq, tag, payload, payload_len);
    client_send_window(c);         /* one answered, one more may fly */
    if (c->recv_seq == total && rdma_disconnect(c->id))
        ex_fail_errno("rdma_disconnect");
}

static void client_disconnected(struct conn *c)
{
    uint32_t total = (uint32_t)c->loop->opts->iterations;
    if (c->recv_seq != total)
        ex_fail("disconnected after %u of %u echoes", c->recv_seq, total);
    printf("rdma_async_msg: client %u: %u messages echoed and checked\n", c->tag, total);
    c->loop->stop = true;
    conn_close(c);             /* the client's loop ends with its only connection */
}

static void client_unexpected_request(struct loop *loop, struct rdma_cm_id *id,
                                      const void *private_data, size_t len)
{
    (void)loop;
    (void)id;
    (void)private_data;
    (void)len;
    ex_fail("client received a connect request");
}

static const struct callbacks client_callbacks = {
    client_unexpected_request, client_established, client_message, client_disconnected,
};

static void run_client(const struct ex_opts *o)
{
    struct loop loop;
    loop_init(&loop, o, &client_callbacks);
    struct rdma_cm_id *id;
    if (rdma_create_id(loop.ch, &id, NULL, RDMA_PS_TCP))
        ex_fail_errno("rdma_create_id");
    id->context = NULL;            /* the connection is created at ROUTE_RESOLVED */
    struct sockaddr_storage dst;
    ex_sockaddr(o->addr, o->port, &dst);
    /* Step 1; the loop continues with ADDR_RESOLVED -> ROUTE_RESOLVED -> ... */
    if (rdma_resolve_addr(id, NULL, (struct sockaddr *)&dst, 2000))
        ex_fail_errno("rdma_resolve_addr %s", o->addr);
    run_loop(&loop);
    loop_fini(&loop);
}

int main(int argc, char **argv)
{
    static const struct ex_opts defaults = {
        .port = "7473", .iterations = 1000, .size = MSG_MAX, .timeout_s = 60, .clients = 1,
        .window = MAX_WINDOW,
    };
    struct ex_opts o;
    ex_parse_opts(argc, argv, &defaults, usage, &o);
    if (o.window > MAX_WINDOW) {
        fprintf(stderr, "rdma_async_msg: option -w: at most %d messages in flight, got %d\n%s",
                MAX_WINDOW, o.window, usage);
        return 2;
    }
    if (o.server)
        run_server(&o);
    else
        run_client(&o);
    return 0;
}
