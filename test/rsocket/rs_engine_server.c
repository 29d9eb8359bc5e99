/*
 * rs_engine_server.c - the server half of rs_engine_test: one accept
 * thread per listening address, one thread per connection playing the
 * scenario named in the request header (rs_engine_proto.h).
 */
#include "rs_engine_server.h"

#include "rs_engine_proto.h"
#include "rs_test_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Scenario failures seen so far; any thread adds, TP_EXIT reads. */
static atomic_int failures;
/* Connections accepted and not yet closed (atomic; TP_FDS reports it). */
static atomic_int live_conns;

static int expect_eof(struct tsock *t, const char *where)
{
    char c;
    ssize_t r = M->recv(t->s, &c, 1, 0);
    if (r != 0)
        return tu_failf("%s: expected EOF, got %zd (%s)", where, r, r < 0 ? "error" : "data");
    return 0;
}

static int play_data(struct tsock *t, const struct tp_hdr *h)
{
    if (tu_recv_pattern(t, h->n, h->seed, 1))
        return tu_fail("data: receive");
    if (tu_send_pattern(t, h->n, h->seed + 1, 1))
        return tu_fail("data: send");
    return expect_eof(t, "data");
}

static int play_peek(struct tsock *t, const struct tp_hdr *h)
{
    uint8_t buf[5000];
    char ack;
    tu_fill(buf, 1000, 0, h->seed);
    if (tu_send_all(t, buf, 1000))
        return tu_fail("peek: send 1000");
    if (tu_recv_all(t, &ack, 1))
        return tu_fail("peek: first ack");
    for (int k = 0; k < 5; k++) {
        tu_fill(buf, 1000, 1000 + 1000 * (uint64_t)k, h->seed);
        if (tu_send_all(t, buf, 1000))
            return tu_fail("peek: send 5 x 1000");
    }
    if (tu_recv_all(t, &ack, 1))
        return tu_fail("peek: second ack");
    return expect_eof(t, "peek");
}

static int play_shut_client(struct tsock *t, const struct tp_hdr *h)
{
    if (tu_recv_pattern(t, h->n, h->seed, 0))
        return tu_fail("shut-client: receive");
    if (expect_eof(t, "shut-client: after client SHUT_WR"))
        return -1;
    if (tu_send_pattern(t, h->n, h->seed + 1, 0))
        return tu_fail("shut-client: reply after peer SHUT_WR");
    return 0;
}

static int play_shut_server(struct tsock *t, const struct tp_hdr *h)
{
    if (tu_send_pattern(t, h->n, h->seed, 0))
        return tu_fail("shut-server: send");
    if (M->shutdown(t->s, SHUT_WR))
        return tu_fail("shut-server: shutdown SHUT_WR");
    if (M->send(t->s, "x", 1, MSG_NOSIGNAL) != -1 || errno != EPIPE)
        return tu_failf("shut-server: send after SHUT_WR must fail EPIPE");
    if (tu_recv_pattern(t, h->n, h->seed + 1, 0))
        return tu_fail("shut-server: receive after own SHUT_WR");
    return expect_eof(t, "shut-server");
}

static int play_close(struct tsock *t, const struct tp_hdr *h)
{
    if (tu_recv_pattern(t, h->n, h->seed, 1))
        return tu_fail("close-pending: receive everything the peer sent before close");
    return expect_eof(t, "close-pending");
}

static int play_echo(struct tsock *t, const struct tp_hdr *h)
{
    if (tu_recv_pattern(t, h->n, h->seed, 0))
        return tu_fail("echo: receive");
    if (tu_send_pattern(t, h->n, h->seed, 0))
        return tu_fail("echo: send");
    return expect_eof(t, "echo");
}

static int play_fds(struct tsock *t)
{
    uint64_t n[2] = { (uint64_t)tu_count_fds(), (uint64_t)atomic_load(&live_conns) };
    if (tu_send_all(t, n, sizeof(n)))
        return tu_fail("fds: send");
    return expect_eof(t, "fds");
}

/* The sink (misbehaving-peer tests): never read, only drive the engine
 * through poll_events until the connection ends, then report SO_ERROR. */
static int play_sink(struct tsock *t)
{
    int err = 0;
    socklen_t len = sizeof(err);
    uint32_t m = tu_wait_mask(t, EPOLLERR | EPOLLHUP, 120000);
    M->getsockopt(t->s, SOL_SOCKET, SO_ERROR, &err, &len);
    printf("sink: connection ended (mask 0x%x), SO_ERROR %d (%s)\n", m, err, strerror(err));
    return 0;
}

static int play(struct tsock *t)
{
    uint8_t raw[TP_HDR_LEN];
    struct tp_hdr h;
    if (tu_recv_all(t, raw, sizeof(raw)))
        return tu_fail("receive request header");
    tp_decode(raw, &h);
    switch (h.op) {
    case TP_DATA: return play_data(t, &h);
    case TP_PEEK: return play_peek(t, &h);
    case TP_SHUT_CLIENT: return play_shut_client(t, &h);
    case TP_SHUT_SERVER: return play_shut_server(t, &h);
    case TP_CLOSE: return play_close(t, &h);
    case TP_ECHO: return play_echo(t, &h);
    case TP_FDS: return play_fds(t);
    case TP_EXIT:
        printf(atomic_load(&failures) ? "SERVER FAILED\n" : "SERVER OK\n");
        fflush(stdout);
        _exit(atomic_load(&failures) ? 1 : 0);
    default:
        return tu_failf("unknown request op 0x%02x", h.op);
    }
}

struct conn_job {
    struct tsock t;
    int sink;
};

static void *conn_thread(void *arg)
{
    struct conn_job *j = arg;
    struct tsock *t = &j->t;
    if (j->sink ? play_sink(t) : play(t))
        atomic_fetch_add(&failures, 1);
    M->close(t->s);
    atomic_fetch_sub(&live_conns, 1);
    free(j);
    return NULL;
}

struct listener {
    struct tsock l;
    int sink;
};

static void *accept_thread(void *arg)
{
    struct listener *ls = arg;
    for (;;) {
        struct conn_job *j = calloc(1, sizeof(*j));
        pthread_t th;
        if (!j)
            abort();
        j->sink = ls->sink;
        j->t.fd = M->accept(ls->l.s, NULL, NULL, 0, &j->t.s);
        if (j->t.fd < 0) {
            tu_fail("accept");
            atomic_fetch_add(&failures, 1);
            free(j);
            continue;
        }
        atomic_fetch_add(&live_conns, 1);
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, 256 * 1024);
        if (pthread_create(&th, &at, conn_thread, j))
            abort();
        pthread_attr_destroy(&at);
    }
    return NULL;
}

static int listen_on(const char *ip, int port, struct tsock *l)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;
    if (tu_parse_addr(ip, port, &ss, &len))
        return -1;
    l->fd = M->socket(ss.ss_family, SOCK_STREAM, 0, &l->s);
    if (l->fd < 0)
        return tu_fail("listener socket");
    M->setsockopt(l->s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (M->bind(l->s, (struct sockaddr *)&ss, len))
        return tu_fail("bind");
    if (M->listen(l->s, 1024))
        return tu_fail("listen");
    return 0;
}

int run_server(char **ips, int n_ips, int port, int with_sink)
{
    static struct listener ls[8];
    pthread_t th;
    int n = 0;
    if (n_ips > 4)
        return tu_failf("at most 4 listening addresses");
    for (int i = 0; i < n_ips; i++) {
        if (listen_on(ips[i], port, &ls[n++].l))
            return -1;
        if (with_sink) {
            ls[n].sink = 1;
            if (listen_on(ips[i], port + 1, &ls[n++].l))
                return -1;
        }
    }
    for (int i = 0; i < n; i++)
        if (pthread_create(&th, NULL, accept_thread, &ls[i]))
            return tu_fail("pthread_create");
    printf("LISTENING\n");
    fflush(stdout);
    pause();                       /* TP_EXIT ends the process */
    return 0;
}

/* The peer of the survival tests: send 100 bytes, then wait for ever (until
 * the test kills or stops this process). */
int run_idle(const char *ip, int port)
{
    struct tsock l, t;
    uint8_t buf[100];
    if (listen_on(ip, port, &l))
        return -1;
    printf("LISTENING\n");
    fflush(stdout);
    t.fd = M->accept(l.s, NULL, NULL, 0, &t.s);
    if (t.fd < 0)
        return tu_fail("accept");
    tu_fill(buf, sizeof(buf), 0, 77);
    if (tu_send_all(&t, buf, sizeof(buf)))
        return tu_fail("idle: send");
    printf("IDLE %d\n", (int)getpid());
    fflush(stdout);
    M->recv(t.s, buf, 1, 0);
    return 0;
}
