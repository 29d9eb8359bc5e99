/* rdma_cm behaviour of the softrdma device between two processes on
 * loopback: disconnect by either side (DISCONNECTED then TIMEWAIT_EXIT on
 * both), a peer that dies or destroys its id, the RDMA TCP port space of
 * rdma_bind_addr, and many concurrent connects. The parent is the server
 * (cmocka asserts); a forked child is the client and reports through its
 * exit status (no asserts in the child: cmocka's longjmp must stay in the
 * parent). Built against Debian's librdmacm; run with
 * LD_LIBRARY_PATH=release/lib64/softrdma. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <rdma/rdma_cma.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_MS 30000
#define NTHREADS 16

enum client_mode { C_DISCONNECT, C_WAIT_DISCONNECT, C_DIE, C_DESTROY };

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Next event on ch within ms, acked; its type, or -1. *id_out gets its id. */
static int next_event(struct rdma_event_channel *ch, long ms, struct rdma_cm_id **id_out)
{
    struct pollfd pf = { .fd = ch->fd, .events = POLLIN };
    if (poll(&pf, 1, (int)ms) != 1)
        return -1;
    struct rdma_cm_event *e;
    if (rdma_get_cm_event(ch, &e))
        return -1;
    int type = e->event;
    if (id_out)
        *id_out = e->id;
    rdma_ack_cm_event(e);
    return type;
}

static struct sockaddr_in lo_addr(uint16_t port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

static struct ibv_qp_init_attr qp_attr(void)
{
    struct ibv_qp_init_attr a = { .qp_type = IBV_QPT_RC,
        .cap = { .max_send_wr = 4, .max_recv_wr = 4, .max_send_sge = 1, .max_recv_sge = 1 } };
    return a;
}

/* Client side: connects an id with a QP; returns it or NULL. */
static struct rdma_cm_id *client_connect(struct rdma_event_channel *ch, uint16_t port)
{
    struct rdma_cm_id *id;
    struct sockaddr_in dst = lo_addr(port);
    if (rdma_create_id(ch, &id, NULL, RDMA_PS_TCP) ||
        rdma_resolve_addr(id, NULL, (struct sockaddr *)&dst, 2000) ||
        next_event(ch, DEADLINE_MS, NULL) != RDMA_CM_EVENT_ADDR_RESOLVED ||
        rdma_resolve_route(id, 2000) ||
        next_event(ch, DEADLINE_MS, NULL) != RDMA_CM_EVENT_ROUTE_RESOLVED)
        return NULL;
    struct ibv_qp_init_attr a = qp_attr();
    struct rdma_conn_param p = { .rnr_retry_count = 7, .retry_count = 7 };
    if (rdma_create_qp(id, NULL, &a) || rdma_connect(id, &p) ||
        next_event(ch, DEADLINE_MS, NULL) != RDMA_CM_EVENT_ESTABLISHED)
        return NULL;
    return id;
}

/* The child: one connection, then the mode's ending. Exit status 0 = ok. */
static int client_main(uint16_t port, enum client_mode mode, int hold_fd)
{
    struct rdma_event_channel *ch = rdma_create_event_channel();
    struct rdma_cm_id *id = ch ? client_connect(ch, port) : NULL;
    if (!id)
        return 1;
    switch (mode) {
    case C_DISCONNECT:
        if (rdma_disconnect(id))
            return 2;
        break;
    case C_WAIT_DISCONNECT:
        break;
    case C_DIE:
        kill(getpid(), SIGKILL);
        return 3;
    case C_DESTROY: {
        rdma_destroy_qp(id);
        rdma_destroy_id(id);
        char b;     /* stay alive until the parent saw DISCONNECTED */
        return read(hold_fd, &b, 1) == 1 ? 0 : 4;
    }
    }
    if (next_event(ch, DEADLINE_MS, NULL) != RDMA_CM_EVENT_DISCONNECTED)
        return 5;
    if (next_event(ch, DEADLINE_MS, NULL) != RDMA_CM_EVENT_TIMEWAIT_EXIT)
        return 6;
    rdma_destroy_qp(id);
    rdma_destroy_id(id);
    rdma_destroy_event_channel(ch);
    return 0;
}

struct server {
    struct rdma_event_channel *ch;
    struct rdma_cm_id *listen;
    uint16_t port;
};

/* Listens on 127.0.0.1 with port 0: the port space picks one. */
static void server_listen(struct server *s)
{
    s->ch = rdma_create_event_channel();
    assert_non_null(s->ch);
    assert_int_equal(rdma_create_id(s->ch, &s->listen, NULL, RDMA_PS_TCP), 0);
    struct sockaddr_in sa = lo_addr(0);
    assert_int_equal(rdma_bind_addr(s->listen, (struct sockaddr *)&sa), 0);
    s->port = ntohs(rdma_get_src_port(s->listen));
    assert_true(s->port != 0);
    assert_int_equal(rdma_listen(s->listen, 64), 0);
}

/* Takes one connect request and accepts it with a QP; returns the id. */
static struct rdma_cm_id *server_accept_one(struct server *s)
{
    struct rdma_cm_id *id = NULL;
    assert_int_equal(next_event(s->ch, DEADLINE_MS, &id), RDMA_CM_EVENT_CONNECT_REQUEST);
    struct ibv_qp_init_attr a = qp_attr();
    assert_int_equal(rdma_create_qp(id, NULL, &a), 0);
    struct rdma_conn_param p = { .rnr_retry_count = 7 };
    assert_int_equal(rdma_accept(id, &p), 0);
    return id;
}

static void server_close(struct server *s)
{
    rdma_destroy_id(s->listen);
    rdma_destroy_event_channel(s->ch);
}

static void expect_child_ok(pid_t pid, int want_signal)
{
    int status;
    long end = now_ms() + DEADLINE_MS;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < end)
        usleep(10000);
    if (r != pid)
        kill(pid, SIGKILL);
    assert_int_equal(r, pid);
    if (want_signal) {
        assert_true(WIFSIGNALED(status));
        return;
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Server side of one connection whose client ends it by mode. */
static void run_disconnect_case(enum client_mode mode)
{
    struct server s;
    int hold[2];
    assert_int_equal(pipe(hold), 0);
    server_listen(&s);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(hold[1]);
        _exit(client_main(s.port, mode, hold[0]));
    }
    close(hold[0]);
    struct rdma_cm_id *id = server_accept_one(&s);
    assert_int_equal(next_event(s.ch, DEADLINE_MS, NULL), RDMA_CM_EVENT_ESTABLISHED);
    if (mode == C_WAIT_DISCONNECT)
        assert_int_equal(rdma_disconnect(id), 0);
    assert_int_equal(next_event(s.ch, DEADLINE_MS, NULL), RDMA_CM_EVENT_DISCONNECTED);
    assert_int_equal(next_event(s.ch, DEADLINE_MS, NULL), RDMA_CM_EVENT_TIMEWAIT_EXIT);
    if (mode == C_DESTROY)      /* the only child still reading the pipe */
        assert_int_equal(write(hold[1], "x", 1), 1);
    close(hold[1]);
    expect_child_ok(pid, mode == C_DIE);
    rdma_destroy_qp(id);
    rdma_destroy_id(id);
    server_close(&s);
}

static void test_client_disconnects(void **st) { (void)st; run_disconnect_case(C_DISCONNECT); }
static void test_server_disconnects(void **st) { (void)st; run_disconnect_case(C_WAIT_DISCONNECT); }
static void test_client_dies(void **st) { (void)st; run_disconnect_case(C_DIE); }
static void test_client_destroys_id(void **st) { (void)st; run_disconnect_case(C_DESTROY); }

static int bind_port(struct rdma_cm_id *id, uint32_t ip, uint16_t port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    sa.sin_addr.s_addr = htonl(ip);
    return rdma_bind_addr(id, (struct sockaddr *)&sa);
}

/* A kernel TCP listener on an ephemeral loopback port, held open: its port
 * number is then known to be free of other kernel sockets for the test. */
static int kernel_tcp_listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = lo_addr(0);
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 1) ||
        getsockname(fd, (struct sockaddr *)&sa, &len)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

static void test_bind_port_space(void **st)
{
    (void)st;
    struct rdma_cm_id *a, *b, *c, *d, *e;
    assert_int_equal(rdma_create_id(NULL, &a, NULL, RDMA_PS_TCP), 0);
    assert_int_equal(rdma_create_id(NULL, &b, NULL, RDMA_PS_TCP), 0);
    assert_int_equal(rdma_create_id(NULL, &c, NULL, RDMA_PS_TCP), 0);
    assert_int_equal(rdma_create_id(NULL, &d, NULL, RDMA_PS_TCP), 0);
    assert_int_equal(rdma_create_id(NULL, &e, NULL, RDMA_PS_TCP), 0);
    /* port 0 picks a free RDMA port, visible at once */
    assert_int_equal(bind_port(e, INADDR_LOOPBACK, 0), 0);
    assert_true(ntohs(rdma_get_src_port(e)) != 0);
    /* the RDMA port space is separate from the kernel's: a port held by a
     * kernel TCP listener can still be bound over RDMA */
    uint16_t port = 0;
    int k = kernel_tcp_listener(&port);
    assert_true(k >= 0);
    assert_int_equal(bind_port(a, INADDR_LOOPBACK, port), 0);
    assert_int_equal(ntohs(rdma_get_src_port(a)), port);
    close(k);
    errno = 0;
    assert_int_equal(bind_port(b, INADDR_LOOPBACK, port), -1);
    assert_int_equal(errno, EADDRINUSE);
    assert_int_equal(bind_port(c, INADDR_ANY, port), -1);
    assert_int_equal(errno, EADDRINUSE);
    /* another process sees the claim too */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rdma_cm_id *x;
        if (rdma_create_id(NULL, &x, NULL, RDMA_PS_TCP))
            _exit(1);
        _exit(bind_port(x, INADDR_LOOPBACK, port) == -1 && errno == EADDRINUSE ? 0 : 2);
    }
    expect_child_ok(pid, 0);
    int one = 1;
    assert_int_equal(rdma_set_option(d, RDMA_OPTION_ID, RDMA_OPTION_ID_REUSEADDR, &one, sizeof one), 0);
    assert_int_equal(bind_port(d, INADDR_LOOPBACK, port), 0);
    /* released when the owner goes away */
    assert_int_equal(rdma_destroy_id(a), 0);
    assert_int_equal(bind_port(b, INADDR_LOOPBACK, port), 0);
    assert_int_equal(ntohs(rdma_get_src_port(b)), port);
    rdma_destroy_id(b);
    rdma_destroy_id(c);
    rdma_destroy_id(d);
    rdma_destroy_id(e);
}

/* Port 0 picks: many processes bind port 0 and listen on one host at the
 * same time (half of the ids with REUSEADDR, as the rsocket module sets it
 * for SO_REUSEADDR sockets); every bind and listen succeeds and no two
 * listeners share a port. REUSEADDR ids used to take a random port without
 * looking, and a live listener already there made listen fail with
 * EADDRINUSE (rsfw.sem_threads). */
#define P0_PROCS 16
#define P0_IDS 32

static int port0_child(int go_fd, int ports_fd, int release_fd)
{
    struct rdma_cm_id *ids[P0_IDS];
    uint16_t ports[P0_IDS];
    char c;
    if (read(go_fd, &c, 1) != 0)    /* EOF: everyone starts together */
        return 1;
    for (int i = 0; i < P0_IDS; i++) {
        int one = 1;
        if (rdma_create_id(NULL, &ids[i], NULL, RDMA_PS_TCP))
            return 2;
        if (i % 2 && rdma_set_option(ids[i], RDMA_OPTION_ID, RDMA_OPTION_ID_REUSEADDR, &one, sizeof one))
            return 3;
        if (bind_port(ids[i], INADDR_LOOPBACK, 0))
            return 4;
        if (rdma_listen(ids[i], 64)) {
            fprintf(stderr, "port0 child: rdma_listen on port %u: %s\n",
                    ntohs(rdma_get_src_port(ids[i])), strerror(errno));
            return 5;
        }
        ports[i] = ntohs(rdma_get_src_port(ids[i]));
    }
    if (write(ports_fd, ports, sizeof ports) != sizeof ports)
        return 6;
    while (read(release_fd, &c, 1) > 0)     /* listeners stay until EOF */
        continue;
    for (int i = 0; i < P0_IDS; i++)
        rdma_destroy_id(ids[i]);
    return 0;
}

static void test_port0_listeners_concurrent(void **st)
{
    (void)st;
    int go[2], ports[2], release[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ports), 0);
    assert_int_equal(pipe(release), 0);
    pid_t pids[P0_PROCS];
    for (int p = 0; p < P0_PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            close(go[1]);
            close(ports[0]);
            close(release[1]);
            _exit(port0_child(go[0], ports[1], release[0]));
        }
    }
    close(go[0]);
    close(ports[1]);
    close(release[0]);
    close(go[1]);       /* go */
    static uint16_t all[P0_PROCS * P0_IDS];
    size_t got = 0;
    long deadline = now_ms() + DEADLINE_MS;
    while (got < sizeof all && now_ms() < deadline) {
        struct pollfd pf = { .fd = ports[0], .events = POLLIN };
        if (poll(&pf, 1, 1000) <= 0)
            continue;
        ssize_t n = read(ports[0], (char *)all + got, sizeof all - got);
        if (n <= 0)
            break;      /* every child gone: one failed */
        got += (size_t)n;
    }
    close(release[1]);
    for (int p = 0; p < P0_PROCS; p++)
        expect_child_ok(pids[p], 0);
    close(ports[0]);
    assert_int_equal(got, sizeof all);
    for (size_t i = 0; i < P0_PROCS * P0_IDS; i++) {
        assert_true(all[i] >= 32768 && all[i] <= 60999);
        for (size_t j = 0; j < i; j++)
            if (all[i] == all[j])
                fail_msg("two port-0 listeners got port %u", all[i]);
    }
}

struct conn_thread { uint16_t port; int ok; };

static void *connect_thread(void *arg)
{
    struct conn_thread *t = arg;
    struct rdma_event_channel *ch = rdma_create_event_channel();
    struct rdma_cm_id *id = ch ? client_connect(ch, t->port) : NULL;
    if (!id)
        return NULL;
    t->ok = !rdma_disconnect(id) &&
            next_event(ch, DEADLINE_MS, NULL) == RDMA_CM_EVENT_DISCONNECTED;
    rdma_destroy_qp(id);
    rdma_destroy_id(id);
    rdma_destroy_event_channel(ch);
    return NULL;
}

static int client_many(uint16_t port)
{
    pthread_t th[NTHREADS];
    struct conn_thread t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        t[i] = (struct conn_thread){ .port = port };
        if (pthread_create(&th[i], NULL, connect_thread, &t[i]))
            return 1;
    }
    int bad = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        bad += !t[i].ok;
    }
    return bad ? 10 + bad : 0;
}

/* Many threads of one process connect at once; every one is accepted,
 * established and disconnected, and nothing hangs. */
static void test_concurrent_connects(void **st)
{
    (void)st;
    struct server s;
    server_listen(&s);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(client_many(s.port));
    struct rdma_cm_id *ids[NTHREADS];
    int nreq = 0, nest = 0, ndisc = 0;
    long end = now_ms() + 4 * DEADLINE_MS;
    while (ndisc < NTHREADS && now_ms() < end) {
        struct rdma_cm_id *id;
        int type = next_event(s.ch, end - now_ms(), &id);
        if (type < 0)
            break;
        if (type == RDMA_CM_EVENT_CONNECT_REQUEST) {
            assert_true(nreq < NTHREADS);
            struct ibv_qp_init_attr a = qp_attr();
            assert_int_equal(rdma_create_qp(id, NULL, &a), 0);
            struct rdma_conn_param p = { .rnr_retry_count = 7 };
            assert_int_equal(rdma_accept(id, &p), 0);
            ids[nreq++] = id;
        }
        nest += type == RDMA_CM_EVENT_ESTABLISHED;
        ndisc += type == RDMA_CM_EVENT_DISCONNECTED;
    }
    assert_int_equal(nreq, NTHREADS);
    assert_int_equal(nest, NTHREADS);
    assert_int_equal(ndisc, NTHREADS);
    expect_child_ok(pid, 0);
    for (int i = 0; i < nreq; i++) {
        rdma_destroy_qp(ids[i]);
        rdma_destroy_id(ids[i]);
    }
    server_close(&s);
}

/* The passive side takes the request but neither accepts nor rejects and
 * stays alive: the active side gets UNREACHABLE with status -ETIMEDOUT
 * after the connect timeout (SOFTRDMA_CM_TIMEOUT_MS, set by main for this
 * test), never a hang. Run alone: `sr_cm_test connect_timeout`. */
static void test_connect_timeout(void **st)
{
    (void)st;
    struct server s;
    server_listen(&s);
    struct rdma_event_channel *ch = rdma_create_event_channel();
    assert_non_null(ch);
    struct rdma_cm_id *id;
    struct sockaddr_in dst = lo_addr(s.port);
    assert_int_equal(rdma_create_id(ch, &id, NULL, RDMA_PS_TCP), 0);
    assert_int_equal(rdma_resolve_addr(id, NULL, (struct sockaddr *)&dst, 2000), 0);
    assert_int_equal(next_event(ch, DEADLINE_MS, NULL), RDMA_CM_EVENT_ADDR_RESOLVED);
    assert_int_equal(rdma_resolve_route(id, 2000), 0);
    assert_int_equal(next_event(ch, DEADLINE_MS, NULL), RDMA_CM_EVENT_ROUTE_RESOLVED);
    struct ibv_qp_init_attr a = qp_attr();
    struct rdma_conn_param p = { .rnr_retry_count = 7, .retry_count = 7 };
    assert_int_equal(rdma_create_qp(id, NULL, &a), 0);
    long start = now_ms();
    assert_int_equal(rdma_connect(id, &p), 0);
    struct rdma_cm_id *req = NULL;
    assert_int_equal(next_event(s.ch, DEADLINE_MS, &req), RDMA_CM_EVENT_CONNECT_REQUEST);
    struct pollfd pf = { .fd = ch->fd, .events = POLLIN };
    assert_int_equal(poll(&pf, 1, DEADLINE_MS), 1);
    struct rdma_cm_event *e;
    assert_int_equal(rdma_get_cm_event(ch, &e), 0);
    assert_int_equal(e->event, RDMA_CM_EVENT_UNREACHABLE);
    assert_int_equal(e->status, -ETIMEDOUT);
    assert_ptr_equal(e->id, id);
    rdma_ack_cm_event(e);
    /* not before the configured time (a timer never fires early) */
    assert_true(now_ms() - start >= atoi(getenv("SOFTRDMA_CM_TIMEOUT_MS")));
    rdma_destroy_qp(id);
    assert_int_equal(rdma_destroy_id(id), 0);
    rdma_destroy_id(req);
    rdma_destroy_event_channel(ch);
    server_close(&s);
}

/* An active id without a QP that got the REP (CONNECT_RESPONSE) but has
 * not finished the handshake yet; *req is the server's accepted id. */
static struct rdma_cm_id *client_responded(struct server *s, struct rdma_event_channel *ch,
                                           struct rdma_cm_id **req)
{
    struct rdma_cm_id *id;
    struct sockaddr_in dst = lo_addr(s->port);
    assert_int_equal(rdma_create_id(ch, &id, NULL, RDMA_PS_TCP), 0);
    assert_int_equal(rdma_resolve_addr(id, NULL, (struct sockaddr *)&dst, 2000), 0);
    assert_int_equal(next_event(ch, DEADLINE_MS, NULL), RDMA_CM_EVENT_ADDR_RESOLVED);
    assert_int_equal(rdma_resolve_route(id, 2000), 0);
    assert_int_equal(next_event(ch, DEADLINE_MS, NULL), RDMA_CM_EVENT_ROUTE_RESOLVED);
    struct rdma_conn_param p = { .rnr_retry_count = 7, .retry_count = 7, .qp_num = 1234 };
    assert_int_equal(rdma_connect(id, &p), 0);
    *req = server_accept_one(s);
    assert_int_equal(next_event(ch, DEADLINE_MS, NULL), RDMA_CM_EVENT_CONNECT_RESPONSE);
    return id;
}

static void expect_qp_state(struct rdma_cm_id *id, enum ibv_qp_state want)
{
    struct ibv_qp_attr a;
    struct ibv_qp_init_attr ia;
    assert_int_equal(ibv_query_qp(id->qp, &a, IBV_QP_STATE, &ia), 0);
    assert_int_equal(a.qp_state, want);
}

/* The active side never sends the RTU (no rdma_establish): the passive
 * side gets UNREACHABLE with -ETIMEDOUT after SOFTRDMA_CM_TIMEOUT_MS
 * (kernel: IB_CM_REP_ERROR), its QP in ERR, and the active side sees the
 * connection go (CONNECT_ERROR). Run with `sr_cm_test connect_timeout`. */
static void test_accept_rtu_timeout(void **st)
{
    (void)st;
    struct server s;
    server_listen(&s);
    struct rdma_event_channel *ch = rdma_create_event_channel();
    assert_non_null(ch);
    long start = now_ms();     /* before the REP: the timer starts with it */
    struct rdma_cm_id *req, *id = client_responded(&s, ch, &req);
    struct rdma_cm_event *e;
    struct pollfd pf = { .fd = s.ch->fd, .events = POLLIN };
    assert_int_equal(poll(&pf, 1, DEADLINE_MS), 1);
    assert_int_equal(rdma_get_cm_event(s.ch, &e), 0);
    assert_int_equal(e->event, RDMA_CM_EVENT_UNREACHABLE);
    assert_int_equal(e->status, -ETIMEDOUT);
    assert_ptr_equal(e->id, req);
    rdma_ack_cm_event(e);
    assert_true(now_ms() - start >= atoi(getenv("SOFTRDMA_CM_TIMEOUT_MS")));
    expect_qp_state(req, IBV_QPS_ERR);
    assert_int_equal(next_event(ch, DEADLINE_MS, NULL), RDMA_CM_EVENT_CONNECT_ERROR);
    /* too late to finish the handshake */
    assert_int_equal(rdma_establish(id), -1);
    rdma_destroy_id(id);
    rdma_destroy_qp(req);
    assert_int_equal(rdma_destroy_id(req), 0);
    rdma_destroy_event_channel(ch);
    server_close(&s);
}

/* The active side turns the REP down (rdma_reject after CONNECT_RESPONSE):
 * the passive side gets REJECTED (consumer reason 28) with the private
 * data, and its QP goes to ERR. */
static void test_active_rejects_rep(void **st)
{
    (void)st;
    struct server s;
    server_listen(&s);
    struct rdma_event_channel *ch = rdma_create_event_channel();
    assert_non_null(ch);
    struct rdma_cm_id *req, *id = client_responded(&s, ch, &req);
    assert_int_equal(rdma_reject(id, "nope", 5), 0);
    struct rdma_cm_event *e;
    struct pollfd pf = { .fd = s.ch->fd, .events = POLLIN };
    assert_int_equal(poll(&pf, 1, DEADLINE_MS), 1);
    assert_int_equal(rdma_get_cm_event(s.ch, &e), 0);
    assert_int_equal(e->event, RDMA_CM_EVENT_REJECTED);
    assert_int_equal(e->status, 28);
    assert_ptr_equal(e->id, req);
    assert_true(e->param.conn.private_data_len >= 5);
    assert_memory_equal(e->param.conn.private_data, "nope", 5);
    rdma_ack_cm_event(e);
    expect_qp_state(req, IBV_QPS_ERR);
    rdma_destroy_id(id);
    rdma_destroy_qp(req);
    assert_int_equal(rdma_destroy_id(req), 0);
    rdma_destroy_event_channel(ch);
    server_close(&s);
}

/* rping's teardown: its CM thread loops on rdma_get_cm_event and exits the
 * process on any error, while main destroys the id and the channel. That
 * thread coming back after the destroy must wait like a kernel reader
 * blocked in read(), not fail (the stress test's rping exited 255). */
struct event_thread {
    struct rdma_event_channel *ch;
    sem_t acked, go;
    pid_t tid;
    volatile int result;            /* 0 while it has not come back */
};

static void *event_thread_main(void *arg)
{
    struct event_thread *t = arg;
    struct rdma_cm_event *e;
    t->tid = gettid();
    if (rdma_get_cm_event(t->ch, &e)) {
        t->result = -1;
        return NULL;
    }
    rdma_ack_cm_event(e);
    sem_post(&t->acked);
    sem_wait(&t->go);               /* main destroys everything meanwhile */
    t->result = rdma_get_cm_event(t->ch, &e) ? errno : -2;
    return NULL;
}

/* The thread sleeps in the device's park (pause) rather than elsewhere. */
static int thread_parked(pid_t tid)
{
    char path[64], buf[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int ok = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
#ifdef SYS_pause
    return ok && atol(buf) == SYS_pause;
#else
    return ok && atol(buf) == SYS_ppoll;
#endif
}

static void test_event_thread_outlives_channel(void **st)
{
    (void)st;
    struct event_thread t = { .ch = rdma_create_event_channel() };
    assert_non_null(t.ch);
    sem_init(&t.acked, 0, 0);
    sem_init(&t.go, 0, 0);
    struct rdma_cm_id *id;
    struct sockaddr_in dst = lo_addr(7999);
    assert_int_equal(rdma_create_id(t.ch, &id, NULL, RDMA_PS_TCP), 0);
    assert_int_equal(rdma_resolve_addr(id, NULL, (struct sockaddr *)&dst, 2000), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, event_thread_main, &t), 0);
    pthread_detach(th);             /* it never returns once parked */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += DEADLINE_MS / 1000;
    assert_int_equal(sem_timedwait(&t.acked, &dl), 0);
    assert_int_equal(rdma_destroy_id(id), 0);
    rdma_destroy_event_channel(t.ch);
    sem_post(&t.go);
    long end = now_ms() + DEADLINE_MS;
    while (!thread_parked(t.tid) && t.result == 0 && now_ms() < end)
        usleep(1000);
    assert_int_equal(t.result, 0);
    assert_true(thread_parked(t.tid));
    /* any other caller gets a clear error instead */
    struct rdma_cm_event *e;
    errno = 0;
    assert_int_equal(rdma_get_cm_event(t.ch, &e), -1);
    assert_int_equal(errno, EBADF);
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/softrdma-cmtest.XXXXXX";
    /* hardware-exact work queue accounting; SOFTRDMA_STRICT_SQ=0 from
     * outside shows the lenient mode failing test_wq_slots_free_when_polled */
    setenv("SOFTRDMA_STRICT_SQ", "1", 0);
    /* the connect timeout runs alone: its short timeout would also apply
     * to the connects of the other tests */
    int timeout_only = argc > 1 && !strcmp(argv[1], "connect_timeout");
    if (timeout_only)
        setenv("SOFTRDMA_CM_TIMEOUT_MS", "1500", 1);
    signal(SIGPIPE, SIG_IGN);
    if (!getenv("SOFTRDMA_FABRIC")) {
        if (!mkdtemp(dir))
            return 1;
        setenv("SOFTRDMA_FABRIC", dir, 1);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_disconnects),
        cmocka_unit_test(test_server_disconnects),
        cmocka_unit_test(test_client_dies),
        cmocka_unit_test(test_client_destroys_id),
        cmocka_unit_test(test_bind_port_space),
        cmocka_unit_test(test_port0_listeners_concurrent),
        cmocka_unit_test(test_concurrent_connects),
        cmocka_unit_test(test_event_thread_outlives_channel),
        cmocka_unit_test(test_active_rejects_rep),
    };
    const struct CMUnitTest timeout_tests[] = {
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_accept_rtu_timeout),
    };
    int rc = timeout_only ? cmocka_run_group_tests(timeout_tests, NULL, NULL)
                          : cmocka_run_group_tests(tests, NULL, NULL);
    if (strcmp(dir, "/tmp/softrdma-cmtest.XXXXXX")) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    return rc;
}
