/* rdma_cm fidelity cases found by running real programs on softrdma, in
 * one process on loopback (asynchronous ids, one event loop):
 *  - rdma_resolve_addr whose destination points into the id's own
 *    route.addr (librdmacm's rsockets does this): the connection must reach
 *    that destination;
 *  - events queued for an id that is destroyed leave the channel fd quiet;
 *  - rdma_destroy_qp racing an incoming disconnect: the test interposes
 *    ibv_destroy_qp and, right after the QP is gone but before
 *    rdma_destroy_qp returns, has the peer disconnect and waits for the
 *    device thread to handle it. The device must not touch the destroyed
 *    QP (it used to: one "belongs to the parent process" line, and a use
 *    after free once the QP's memory was released).
 * Linked against Debian's librdmacm; run with LD_LIBRARY_PATH at the
 * softrdma build. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <rdma/rdma_cma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EV_MS 10000
#define RACE_ROUNDS 20

struct pair {
    struct rdma_event_channel *cch, *sch;
    struct rdma_cm_id *listener, *client, *server;
};

static struct sockaddr_in lo(uint16_t port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

/* The next event on ch within ms, acked; -1 if none. */
static int next_event(struct rdma_event_channel *ch, int ms, struct rdma_cm_id **id)
{
    struct pollfd pf = { .fd = ch->fd, .events = POLLIN };
    struct rdma_cm_event *e;
    if (poll(&pf, 1, ms) != 1 || rdma_get_cm_event(ch, &e))
        return -1;
    int type = e->event;
    if (id)
        *id = e->id;
    rdma_ack_cm_event(e);
    return type;
}

static void expect_event(struct rdma_event_channel *ch, int want, struct rdma_cm_id **id)
{
    int got = next_event(ch, EV_MS, id);
    if (got != want)
        fail_msg("event %s, wanted %s", got < 0 ? "none" : rdma_event_str(got),
                 rdma_event_str(want));
}

static void make_qp(struct rdma_cm_id *id)
{
    struct ibv_qp_init_attr a = { .qp_type = IBV_QPT_RC,
                                  .cap = { .max_send_wr = 4, .max_recv_wr = 4,
                                           .max_send_sge = 1, .max_recv_sge = 1 } };
    assert_int_equal(rdma_create_qp(id, NULL, &a), 0);
}

static void pair_listen(struct pair *p)
{
    memset(p, 0, sizeof *p);
    p->cch = rdma_create_event_channel();
    p->sch = rdma_create_event_channel();
    assert_non_null(p->cch);
    assert_non_null(p->sch);
    assert_int_equal(rdma_create_id(p->sch, &p->listener, NULL, RDMA_PS_TCP), 0);
    struct sockaddr_in sa = lo(0);
    assert_int_equal(rdma_bind_addr(p->listener, (struct sockaddr *)&sa), 0);
    assert_int_equal(rdma_listen(p->listener, 8), 0);
}

/* Client: destination written into its own route.addr.dst_addr first,
 * and that very field passed to rdma_resolve_addr (as rsockets does). */
static void pair_connect(struct pair *p)
{
    assert_int_equal(rdma_create_id(p->cch, &p->client, NULL, RDMA_PS_TCP), 0);
    struct sockaddr_in dst = lo(ntohs(rdma_get_src_port(p->listener)));
    memcpy(&p->client->route.addr.dst_addr, &dst, sizeof dst);
    assert_int_equal(rdma_resolve_addr(p->client, NULL, &p->client->route.addr.dst_addr, 2000), 0);
    expect_event(p->cch, RDMA_CM_EVENT_ADDR_RESOLVED, NULL);
    struct sockaddr_in *got = (struct sockaddr_in *)&p->client->route.addr.dst_addr;
    assert_int_equal(got->sin_family, AF_INET);
    assert_int_equal(got->sin_addr.s_addr, dst.sin_addr.s_addr);
    assert_int_equal(got->sin_port, dst.sin_port);
    assert_int_equal(rdma_resolve_route(p->client, 2000), 0);
    expect_event(p->cch, RDMA_CM_EVENT_ROUTE_RESOLVED, NULL);
    make_qp(p->client);
    struct rdma_conn_param cp = { .retry_count = 7, .rnr_retry_count = 7 };
    assert_int_equal(rdma_connect(p->client, &cp), 0);
    expect_event(p->sch, RDMA_CM_EVENT_CONNECT_REQUEST, &p->server);
    make_qp(p->server);
    assert_int_equal(rdma_accept(p->server, &cp), 0);
    expect_event(p->cch, RDMA_CM_EVENT_ESTABLISHED, NULL);
    expect_event(p->sch, RDMA_CM_EVENT_ESTABLISHED, NULL);
}

static void pair_close(struct pair *p)
{
    if (p->client) {
        rdma_destroy_qp(p->client);
        rdma_destroy_id(p->client);
    }
    if (p->server) {
        rdma_destroy_qp(p->server);
        rdma_destroy_id(p->server);
    }
    p->client = p->server = NULL;
}

static void test_resolve_into_own_route(void **state)
{
    struct pair p;
    (void)state;
    pair_listen(&p);
    pair_connect(&p);      /* asserts the destination survived and connected */
    pair_close(&p);
    rdma_destroy_id(p.listener);
    rdma_destroy_event_channel(p.cch);
    rdma_destroy_event_channel(p.sch);
}

/* Events still queued for an id that is destroyed go with it: the
 * channel fd must not stay readable (a poll-then-rdma_get_cm_event loop
 * would block in rdma_get_cm_event with nothing to read). */
static void test_destroyed_id_leaves_channel_quiet(void **state)
{
    struct pair p;
    (void)state;
    pair_listen(&p);
    pair_connect(&p);
    assert_int_equal(rdma_disconnect(p.server), 0);
    struct pollfd pf = { .fd = p.cch->fd, .events = POLLIN };
    assert_int_equal(poll(&pf, 1, EV_MS), 1);      /* DISCONNECTED queued, unread */
    rdma_destroy_qp(p.client);
    rdma_destroy_id(p.client);
    p.client = NULL;
    assert_int_equal(poll(&pf, 1, 0), 0);
    expect_event(p.sch, RDMA_CM_EVENT_DISCONNECTED, NULL);
    expect_event(p.sch, RDMA_CM_EVENT_TIMEWAIT_EXIT, NULL);
    pair_close(&p);
    rdma_destroy_id(p.listener);
    rdma_destroy_event_channel(p.cch);
    rdma_destroy_event_channel(p.sch);
}

/* ---- rdma_destroy_qp vs an incoming disconnect ---- */

static struct rdma_cm_id *race_peer;            /* disconnects inside the window */
static struct rdma_event_channel *race_watch;   /* where DISCONNECTED shows up */

/* Interposes the device's ibv_destroy_qp (librdmacm calls it through the
 * PLT; the executable's definition comes first). */
int ibv_destroy_qp(struct ibv_qp *qp)
{
    static int (*real)(struct ibv_qp *);
    if (!real)
        real = (int (*)(struct ibv_qp *))dlvsym(RTLD_NEXT, "ibv_destroy_qp", "IBVERBS_1.1");
    int rc = real(qp);
    if (race_peer) {
        /* the QP is gone; the id may still name it: let the DREQ in now */
        struct rdma_cm_id *peer = race_peer;
        race_peer = NULL;
        rdma_disconnect(peer);
        struct pollfd pf = { .fd = race_watch->fd, .events = POLLIN };
        poll(&pf, 1, EV_MS);    /* the device thread handled the DREQ */
    }
    return rc;
}

static char stderr_path[] = "/tmp/sr_cm_fidelity.XXXXXX";

static void test_destroy_qp_vs_disconnect(void **state)
{
    struct pair p;
    (void)state;
    int saved = dup(2), tmp = mkstemp(stderr_path);
    assert_true(saved >= 0 && tmp >= 0);
    dup2(tmp, 2);               /* the device's log lines, to inspect */
    pair_listen(&p);
    for (int i = 0; i < RACE_ROUNDS; i++) {
        pair_connect(&p);
        race_peer = p.server;
        race_watch = p.cch;
        rdma_destroy_qp(p.client);
        assert_null(race_peer);  /* the interposer ran */
        assert_null(p.client->qp);
        expect_event(p.cch, RDMA_CM_EVENT_DISCONNECTED, NULL);
        expect_event(p.sch, RDMA_CM_EVENT_DISCONNECTED, NULL);
        /* the server's TIMEWAIT_EXIT (its QP existed at its disconnect) */
        for (int k = 0; k < 8 && (next_event(p.sch, 0, NULL) >= 0 ||
                                  next_event(p.cch, 0, NULL) >= 0); k++)
            ;
        pair_close(&p);
    }
    rdma_destroy_id(p.listener);
    rdma_destroy_event_channel(p.cch);
    rdma_destroy_event_channel(p.sch);
    fflush(stderr);
    dup2(saved, 2);
    char log[4096] = "";
    ssize_t n = pread(tmp, log, sizeof log - 1, 0);
    close(tmp);
    unlink(stderr_path);
    if (n > 0)
        fprintf(stderr, "device log:\n%s", log);
    assert_null(strstr(log, "parent process"));
    assert_null(strstr(log, "ibv_modify_qp"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_into_own_route),
        cmocka_unit_test(test_destroyed_id_leaves_channel_quiet),
        cmocka_unit_test(test_destroy_qp_vs_disconnect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
