/* Tests of the softrdma device's direct data path and resource rules:
 * work requests delivered by the sender's own thread (counted by the
 * device's sr_stats), completion channels signalled only when armed, a
 * peer's deregistered region untouched once ibv_dereg_mr returned,
 * RLIMIT_MEMLOCK, descriptors per QP and channel, no CQ leaked with an
 * event left in its channel. Separate runs (argv[1]): `start_fail` (a
 * device that cannot start leaks no descriptor), `cross_uid` (a peer
 * running as nobody) and `small_as` (RLIMIT_AS 3 GiB: a smaller shared
 * segment) and `fd_bound` (descriptors of 100 connected QPs on one
 * channel). Built against Debian's libibverbs; run with
 * LD_LIBRARY_PATH=release/lib64/softrdma. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <linux/capability.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "sr_test_pair.h"

static const int ALL = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;

/* The device's counters of WRs delivered directly and by stream. */
static void stats(uint64_t *direct, uint64_t *stream)
{
    void (*f)(uint64_t *, uint64_t *) = (void (*)(uint64_t *, uint64_t *))dlsym(RTLD_DEFAULT, "sr_stats");
    assert_non_null(f);     /* the softrdma device is the libibverbs loaded */
    f(direct, stream);
}

/* On a failure: what the descriptors are. */
static void list_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char p[300], t[300];
        snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(p, t, sizeof t - 1);
        t[n > 0 ? n : 0] = 0;
        printf("  fd %s -> %s\n", e->d_name, t);
    }
    if (d)
        closedir(d);
}

static void wait_child(pid_t pid, int want_status)
{
    int st = 0;
    long end = now_ms() + 30000;
    pid_t r;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0 && now_ms() < end)
        usleep(1000);
    if (r == 0)
        kill(pid, SIGKILL);
    assert_int_equal(r, pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), want_status);
}

/* SEND, WRITE, WRITE_WITH_IMM and READ between two QPs all go directly
 * (no stream request), with the data and completions as before. */
static void test_direct_path_used(void **st)
{
    (void)st;
    struct pair *p = pair_new(64, 1, 7, ALL);
    struct ibv_wc wc;
    uint64_t d0, s0, d1, s1;
    /* the attach offer comes on the stream: until it is read, WRs go by
     * stream; then they go directly */
    int direct = 0;
    for (int i = 0; i < 1000 && !direct; i++) {
        stats(&d0, &s0);
        send_verified(p, 1, 100, 3);
        assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
        stats(&d1, &s1);
        direct = d1 > d0;
    }
    assert_true(direct);
    stats(&d0, &s0);
    uint64_t rb = (uintptr_t)p->b.buf;
    fill(p->a.buf, 4096, 11);
    assert_int_equal(post_send(&p->a, IBV_WR_RDMA_WRITE, 3, 0, 4096, 0, rb + 8192, p->b.mr->rkey,
                               p->a.mr->lkey), 0);
    assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
    assert_memory_equal(p->b.buf + 8192, p->a.buf, 4096);
    post_recv(&p->b, 4, 1, 0, 0);
    assert_int_equal(post_send(&p->a, IBV_WR_RDMA_WRITE_WITH_IMM, 4, 0, 64, 0, rb + 100,
                               p->b.mr->rkey, p->a.mr->lkey), 0);
    assert_int_equal(poll_n(p->b.rcq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.opcode, IBV_WC_RECV_RDMA_WITH_IMM);
    assert_int_equal(wc.byte_len, 64);
    assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
    fill(p->b.buf + 16384, 2048, 5);
    assert_int_equal(post_send(&p->a, IBV_WR_RDMA_READ, 5, 30000, 2048, 0, rb + 16384,
                               p->b.mr->rkey, p->a.mr->lkey), 0);
    assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
    assert_int_equal(wc.opcode, IBV_WC_RDMA_READ);
    assert_memory_equal(p->a.buf + 30000, p->b.buf + 16384, 2048);
    stats(&d1, &s1);
    assert_int_equal(d1 - d0, 3);
    assert_int_equal(s1 - s0, 0);
    pair_free(p);
}

static int readable(int fd)
{
    struct pollfd pf = { .fd = fd, .events = POLLIN };
    return poll(&pf, 1, 0) == 1;
}

/* The receiver's channel (a peer pushes into its CQ) turns readable only
 * after ibv_req_notify_cq, once per arming. */
static void test_channel_only_when_armed(void **st)
{
    (void)st;
    struct pair *p = pair_open();
    struct ibv_comp_channel *ch = ibv_create_comp_channel(p->ctx);
    assert_non_null(ch);
    side_init(p, &p->a, 64, 1, ALL);
    side_init_chs(p, &p->b, 64, 1, ALL, NULL, ch);
    qp_connect(p->a.qp, p->b.qp->qp_num, 7);
    qp_connect(p->b.qp, p->a.qp->qp_num, 7);
    struct ibv_wc wc;
    for (int round = 0; round < 3; round++) {
        post_recv(&p->b, 1, 1, 0, 64);
        assert_int_equal(post_send(&p->a, IBV_WR_SEND, 1, 0, 64, 0, 0, 0, p->a.mr->lkey), 0);
        assert_int_equal(poll_n(p->b.rcq, &wc, 1, DEADLINE_MS), 1);
        assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
        assert_false(readable(ch->fd));         /* not armed: no event */
        assert_int_equal(ibv_req_notify_cq(p->b.rcq, 0), 0);
        post_recv(&p->b, 2, 1, 0, 64);
        assert_int_equal(post_send(&p->a, IBV_WR_SEND, 2, 0, 64, 0, 0, 0, p->a.mr->lkey), 0);
        struct pollfd pf = { .fd = ch->fd, .events = POLLIN };
        assert_int_equal(poll(&pf, 1, DEADLINE_MS), 1);
        struct ibv_cq *cq;
        void *ctx;
        assert_int_equal(ibv_get_cq_event(ch, &cq, &ctx), 0);
        assert_ptr_equal(cq, p->b.rcq);
        ibv_ack_cq_events(cq, 1);
        assert_false(readable(ch->fd));         /* one event per arming */
        assert_int_equal(poll_n(p->b.rcq, &wc, 1, DEADLINE_MS), 1);
        assert_int_equal(wc.wr_id, 2);
        assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
    }
    side_free(&p->a);
    side_free(&p->b);
    assert_int_equal(ibv_destroy_comp_channel(ch), 0);
    ibv_dealloc_pd(p->pd);
    ibv_close_device(p->ctx);
    free(p);
}

/* A CQ destroyed while its channel still holds its event is freed at once
 * (the event is dropped), also when the channel is destroyed next without
 * reading it: heap in use does not grow over hundreds of rounds (the old
 * device kept each such CQ until its event was read: forever here). */
static void leak_round(struct pair *p)
{
    struct ibv_comp_channel *ch = ibv_create_comp_channel(p->ctx);
    assert_non_null(ch);
    struct ibv_cq *cq = ibv_create_cq(p->ctx, 4, NULL, ch, 0);
    assert_non_null(cq);
    struct ibv_qp_init_attr a = { .send_cq = cq, .recv_cq = cq, .qp_type = IBV_QPT_RC,
        .sq_sig_all = 1, .cap = { .max_send_wr = 2, .max_recv_wr = 1, .max_send_sge = 1,
                                  .max_recv_sge = 1 } };
    struct ibv_qp *qp = ibv_create_qp(p->pd, &a);
    assert_non_null(qp);
    qp_connect(qp, p->b.qp->qp_num, 7);
    assert_int_equal(ibv_req_notify_cq(cq, 0), 0);
    struct ibv_sge g = { (uintptr_t)p->a.buf, 16, p->a.mr->lkey };
    struct ibv_send_wr wr = { .sg_list = &g, .num_sge = 1, .opcode = IBV_WR_RDMA_WRITE }, *bad;
    wr.wr.rdma.remote_addr = (uintptr_t)p->b.buf;
    wr.wr.rdma.rkey = p->b.mr->rkey;
    assert_int_equal(ibv_post_send(qp, &wr, &bad), 0);
    struct pollfd pf = { .fd = ch->fd, .events = POLLIN };
    assert_int_equal(poll(&pf, 1, DEADLINE_MS), 1);
    assert_int_equal(ibv_destroy_qp(qp), 0);
    assert_int_equal(ibv_destroy_cq(cq), 0);
    assert_int_equal(ibv_destroy_comp_channel(ch), 0);
}

static void test_cq_with_event_not_leaked(void **st)
{
    (void)st;
    struct pair *p = pair_new(64, 1, 7, ALL);
    for (int i = 0; i < 20; i++)
        leak_round(p);
    /* The device's deferred-free list may grow in some window (doubling,
     * rarely); a leak grows every window: the smallest growth counts. */
    size_t least = SIZE_MAX;
    for (int w = 0; w < 6; w++) {
        size_t before = mallinfo2().uordblks;
        for (int i = 0; i < 100; i++)
            leak_round(p);
        size_t after = mallinfo2().uordblks;
        size_t grew = after > before ? after - before : 0;
        printf("heap in use: %zu -> %zu bytes over 100 rounds\n", before, after);
        if (grew < least)
            least = grew;
    }
    assert_true(least < 100 * 48);
    pair_free(p);
}

/* Descriptors: a completion channel is one fd (an eventfd), a CQ and an
 * unconnected QP none; a connected QP costs 2 (its stream to the peer and
 * the peer's end of it; here both ends are in this process). */
static void test_fd_counts(void **st)
{
    (void)st;
    /* process-wide fds exist, and the pair's streams are accepted (the
     * device thread accepts asynchronously): data went both ways */
    struct pair *warm = pair_new(64, 1, 7, ALL);
    struct ibv_wc wc;
    send_verified(warm, 1, 64, 1);
    struct pair rev = *warm;
    rev.a = warm->b;
    rev.b = warm->a;
    send_verified(&rev, 2, 64, 2);
    int n0 = count_fds();
    struct ibv_comp_channel *ch = ibv_create_comp_channel(warm->ctx);
    assert_non_null(ch);
    assert_int_equal(count_fds(), n0 + 1);
    struct ibv_cq *cq = ibv_create_cq(warm->ctx, 16, NULL, ch, 0);
    assert_non_null(cq);
    assert_int_equal(count_fds(), n0 + 1);
    struct pair *p = pair_open();
    side_init(p, &p->a, 64, 1, ALL);
    side_init(p, &p->b, 64, 1, ALL);
    int n1 = count_fds();
    assert_true(n1 <= n0 + 1 + 1);  /* a second context may hold one */
    qp_connect(p->a.qp, p->b.qp->qp_num, 7);
    qp_connect(p->b.qp, p->a.qp->qp_num, 7);
    post_recv(&p->b, 1, 1, 0, 64);
    post_recv(&p->a, 1, 1, 0, 64);
    assert_int_equal(post_send(&p->a, IBV_WR_SEND, 1, 0, 64, 0, 0, 0, p->a.mr->lkey), 0);
    assert_int_equal(post_send(&p->b, IBV_WR_SEND, 1, 0, 64, 0, 0, 0, p->b.mr->lkey), 0);
    assert_int_equal(poll_n(p->a.rcq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(poll_n(p->b.rcq, &wc, 1, DEADLINE_MS), 1);
    /* the streams close once idle (both ends, the peer's on its device
     * thread): settle. Connected QPs whose traffic goes directly hold no
     * descriptor (they held 4: two stream ends each) */
    long end = now_ms() + DEADLINE_MS;
    while (count_fds() - n1 != 0 && now_ms() < end)
        usleep(1000);
    printf("fds: channel 1, CQ 0, two connected QPs %d\n", count_fds() - n1);
    if (count_fds() - n1 != 0)
        list_fds();
    assert_int_equal(count_fds() - n1, 0);
    pair_free(p);
    ibv_destroy_cq(cq);
    ibv_destroy_comp_channel(ch);
    pair_free(warm);
}

/* Descriptors per connected QP: 100 QPs (50 pairs in this process). An
 * idle QP holds no stream end (its stream closes once nothing is on it;
 * each used to hold two: its requester stream and the peer's accepted
 * end); the peers' channel eventfds that the direct path signals
 * are held in one bounded cache per process (FDB_CACHE, the device's
 * SR_PEERCH_SLOTS), plus one pidfd per peer process once the cache has
 * had to fetch (this process is its own peer here), not one per QP (it
 * was: 3 per QP). Run with every receive CQ on one channel, and with a channel
 * per QP as rsockets make them; every wake-up reaches the right CQ, most
 * of them through descriptors the cache fetched again. */
#define FDB_PAIRS 50
#define FDB_CACHE 32
static void fdb_wake(struct side *from, struct side *to, struct ibv_comp_channel *ch, uint64_t id)
{
    struct ibv_wc wc;
    assert_int_equal(ibv_req_notify_cq(to->rcq, 0), 0);
    post_recv(to, id, 1, 0, 64);
    fill(from->buf, 64, (unsigned)id);
    assert_int_equal(post_send(from, IBV_WR_SEND, id, 0, 64, 0, 0, 0, from->mr->lkey), 0);
    struct pollfd pf = { .fd = ch->fd, .events = POLLIN };
    assert_int_equal(poll(&pf, 1, DEADLINE_MS), 1);
    struct ibv_cq *cq;
    void *ctx;
    assert_int_equal(ibv_get_cq_event(ch, &cq, &ctx), 0);
    assert_ptr_equal(cq, to->rcq);
    ibv_ack_cq_events(cq, 1);
    assert_int_equal(poll_n(to->rcq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
    assert_int_equal(wc.wr_id, id);
    assert_memory_equal(to->buf, from->buf, 64);
    assert_int_equal(poll_n(from->scq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
}

/* Waits (deadline) for the fd count to reach at most want; returns it. */
static int fds_settle(int want)
{
    long end = now_ms() + DEADLINE_MS;
    while (count_fds() > want && now_ms() < end)
        usleep(1000);
    return count_fds();
}

static void fdb_run(struct pair *warm, int nch)
{
    static struct pair ps[FDB_PAIRS];
    static struct ibv_comp_channel *chs[2 * FDB_PAIRS];
    for (int i = 0; i < nch; i++)
        assert_non_null(chs[i] = ibv_create_comp_channel(warm->ctx));
    int n0 = count_fds();
    for (int i = 0; i < FDB_PAIRS; i++) {
        ps[i].ctx = warm->ctx;
        ps[i].pd = warm->pd;
        side_init_chs(&ps[i], &ps[i].a, 16, 1, ALL, NULL, chs[(2 * i) % nch]);
        side_init_chs(&ps[i], &ps[i].b, 16, 1, ALL, NULL, chs[(2 * i + 1) % nch]);
        qp_connect(ps[i].a.qp, ps[i].b.qp->qp_num, 7);
        qp_connect(ps[i].b.qp, ps[i].a.qp->qp_num, 7);
    }
    uint64_t d0 = 0, s0, d1, s1;
    /* round 0 may find the attach offers still on their way; round 1
     * goes directly, every SEND: the cached or fetched eventfd wakes the
     * channel (a descriptor that cannot be had sends it by stream) */
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            stats(&d0, &s0);
        for (int i = 0; i < FDB_PAIRS; i++) {
            fdb_wake(&ps[i].a, &ps[i].b, chs[(2 * i + 1) % nch], (uint64_t)(10 + round));
            fdb_wake(&ps[i].b, &ps[i].a, chs[(2 * i) % nch], (uint64_t)(20 + round));
        }
    }
    stats(&d1, &s1);
    assert_int_equal(d1 - d0, 2 * FDB_PAIRS);
    /* + 1: the peer process's pidfd, opened once the cache must fetch */
    int nqp = 2 * FDB_PAIRS, cached = nch < FDB_CACHE ? nch : FDB_CACHE;
    int bound = cached + (nch > FDB_CACHE);     /* streams: closed once idle */
    int used = fds_settle(n0 + bound) - n0;
    printf("fds: %d connected QPs on %d channel(s) hold %d descriptors (%.2f per QP; "
           "bound %d: no stream end + %d cached peer channels + %d pidfd)\n", nqp, nch,
           used, (double)used / nqp, bound, cached, nch > FDB_CACHE);
    if (used > bound)
        list_fds();
    assert_true(used <= bound);
    for (int i = 0; i < FDB_PAIRS; i++) {
        side_free(&ps[i].a);
        side_free(&ps[i].b);
    }
    /* the streams went; the cache keeps at most its slots (and the
     * pidfd) while the peer process is still attached (the warm pair) */
    assert_true(fds_settle(n0 + cached + (nch > FDB_CACHE)) <= n0 + cached + (nch > FDB_CACHE));
    for (int i = 0; i < nch; i++)
        assert_int_equal(ibv_destroy_comp_channel(chs[i]), 0);
}

static void test_fds_per_qp_bound(void **st)
{
    (void)st;
    /* the device's own fds; both streams of a pair accepted (data went
     * both ways: no accept or descriptor move is still on its way) */
    struct pair *warm = pair_new(64, 1, 7, ALL);
    send_verified(warm, 1, 64, 1);
    struct pair rev = *warm;
    rev.a = warm->b;
    rev.b = warm->a;
    send_verified(&rev, 2, 64, 2);
    fdb_run(warm, 1);
    fdb_run(warm, 2 * FDB_PAIRS);
    pair_free(warm);
}

/* Takes every descriptor below a soft limit of 64 (the device's own stay
 * above it); returns how many, *old the limit to give back. */
static int exhaust_fds(int fds[64], struct rlimit *old)
{
    assert_int_equal(getrlimit(RLIMIT_NOFILE, old), 0);
    struct rlimit tight = *old;
    tight.rlim_cur = 64;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
    int n = 0;
    while (n < 64 && (fds[n] = dup(0)) >= 0)
        n++;
    return n;
}

static void restore_fds(int fds[64], int n, const struct rlimit *old)
{
    while (n > 0)
        close(fds[--n]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, old), 0);
}

/* With no descriptor left, ibv_create_comp_channel fails with EMFILE (it
 * used to say ENOMEM, sending people after memory). */
static void test_channel_emfile(void **st)
{
    (void)st;
    struct pair *p = pair_open();
    struct rlimit old;
    int fds[64], n = exhaust_fds(fds, &old);
    errno = 0;
    struct ibv_comp_channel *ch = ibv_create_comp_channel(p->ctx);
    int e = errno;
    restore_fds(fds, n, &old);
    assert_null(ch);
    assert_int_equal(e, EMFILE);
    ibv_dealloc_pd(p->pd);
    ibv_close_device(p->ctx);
    free(p);
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* At the descriptor limit: ibv_modify_qp to RTR, which opens the QP's
 * stream, fails with EMFILE and one line, and the QP stays in INIT (it
 * used to go to RTR silently, its sends then ending in RETRY_EXC_ERR).
 * With one descriptor free it succeeds; the responder side (this process
 * too) then cannot accept the stream: its device thread backs off instead
 * of spinning on the readable listener (it used to burn a CPU), the send
 * waits, and is delivered intact once descriptors are back. */
static void test_qp_emfile(void **st)
{
    (void)st;
    struct pair *p = pair_open();
    side_init(p, &p->a, 64, 1, ALL);
    side_init(p, &p->b, 64, 1, ALL);
    union ibv_gid gid;
    assert_int_equal(ibv_query_gid(p->ctx, 1, 0, &gid), 0);
    qp_to_init(p->a.qp);
    qp_connect_gid(p->b.qp, p->a.qp->qp_num, 7, &gid);
    struct rlimit old;
    int fds[64], n = exhaust_fds(fds, &old);
    errno = 0;
    int rc = qp_to_rtr(p->a.qp, p->b.qp->qp_num, &gid);
    struct ibv_qp_attr qa;
    struct ibv_qp_init_attr qi;
    assert_int_equal(ibv_query_qp(p->a.qp, &qa, IBV_QP_STATE, &qi), 0);
    close(fds[--n]);                    /* one for the stream */
    int rc2 = qp_to_rtr(p->a.qp, p->b.qp->qp_num, &gid);
    if (rc != EMFILE || qa.qp_state != IBV_QPS_INIT || rc2 != 0) {
        restore_fds(fds, n, &old);
        fail_msg("RTR at EMFILE: %d (state %d), then %d", rc, qa.qp_state, rc2);
    }
    qp_to_rts(p->a.qp, 7);
    post_recv(&p->b, 1, 1, 0, 4096);
    fill(p->a.buf, 4096, 31);
    assert_int_equal(post_send(&p->a, IBV_WR_SEND, 1, 0, 4096, 0, 0, 0, p->a.mr->lkey), 0);
    /* a measuring window, not a synchronisation: a device thread spinning
     * on the unaccepted stream would take most of it */
    double c0 = cpu_seconds();
    usleep(300 * 1000);
    double busy = cpu_seconds() - c0;
    struct ibv_wc wc;
    int early = ibv_poll_cq(p->b.rcq, 1, &wc);
    restore_fds(fds, n, &old);
    printf("EMFILE: device CPU while the stream waited %.0f ms of 300\n", busy * 1000);
    assert_true(busy < 0.05);
    assert_int_equal(early, 0);         /* held: nobody could take it */
    expect_delivered(p, 4096);
    pair_free(p);
}

/* Sockets this process holds (the device's NIC listener, QP streams). */
static int count_sockets(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d))) {
        char p[300], l[64];
        snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
        ssize_t k = readlink(p, l, sizeof l - 1);
        n += k > 7 && !memcmp(l, "socket:", 7);
    }
    closedir(d);
    return n;
}

/* Connected by hand; RTS with the given local ACK timeout and retry_cnt
 * (qp_to_rts leaves timeout 0: retry forever). */
static void qp_rts_budget(struct ibv_qp *qp, uint32_t dest, uint8_t timeout, uint8_t retry_cnt)
{
    assert_int_equal(qp_to_rtr(qp, dest, NULL), 0);
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_RTS, .rnr_retry = 7, .timeout = timeout,
                             .retry_cnt = retry_cnt };
    assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
                                   IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC), 0);
}

/* A connected QP's stream closes once idle (both ends); a request the
 * fast path cannot carry (no receive posted: RNR) opens it again. At the
 * descriptor limit that reopen waits and the device thread retries it:
 * the receive posted meanwhile takes the SEND, intact, by the direct
 * path. With a short retry budget (timeout 17, retry_cnt 1: 1.07 s) and no
 * receive, the SEND fails with RETRY_EXC_ERR once the budget is spent,
 * the QP in ERR, never before the limit is hit. */
static void test_reopen_emfile(void **st)
{
    (void)st;
    int socks0 = count_sockets();
    struct pair *p = pair_open();
    side_init(p, &p->a, 64, 1, ALL);
    side_init(p, &p->b, 64, 1, ALL);
    qp_to_init(p->a.qp);
    qp_to_init(p->b.qp);
    qp_rts_budget(p->b.qp, p->a.qp->qp_num, 0, 7);
    qp_rts_budget(p->a.qp, p->b.qp->qp_num, 17, 1);
    send_verified(p, 1, 64, 5);
    struct ibv_wc wc;
    assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
    long end = now_ms() + DEADLINE_MS;
    while (count_sockets() > socks0 && now_ms() < end)
        usleep(1000);
    assert_int_equal(count_sockets(), socks0);      /* both streams closed */

    struct rlimit old;
    int fds[64], n = exhaust_fds(fds, &old);
    fill(p->a.buf, 64, 6);
    assert_int_equal(post_send(&p->a, IBV_WR_SEND, 2, 0, 64, 0, 0, 0, p->a.mr->lkey), 0);
    int early = ibv_poll_cq(p->a.scq, 1, &wc);
    post_recv(&p->b, 2, 1, 0, 64);
    int got = poll_n(p->b.rcq, &wc, 1, DEADLINE_MS);
    int st_b = wc.status;
    int got_a = poll_n(p->a.scq, &wc, 1, DEADLINE_MS);
    int st_a = wc.status;
    /* no receive this time: the budget runs out at the limit */
    fill(p->a.buf, 64, 7);
    assert_int_equal(post_send(&p->a, IBV_WR_SEND, 3, 0, 64, 0, 0, 0, p->a.mr->lkey), 0);
    int got_err = poll_n(p->a.scq, &wc, 1, DEADLINE_MS);
    struct ibv_qp_attr qa;
    struct ibv_qp_init_attr qi;
    assert_int_equal(ibv_query_qp(p->a.qp, &qa, IBV_QP_STATE, &qi), 0);
    restore_fds(fds, n, &old);
    assert_int_equal(early, 0);
    assert_int_equal(got, 1);
    assert_int_equal(st_b, IBV_WC_SUCCESS);
    assert_int_equal(got_a, 1);
    assert_int_equal(st_a, IBV_WC_SUCCESS);
    assert_int_equal(got_err, 1);
    assert_int_equal(wc.status, IBV_WC_RETRY_EXC_ERR);
    assert_int_equal(wc.wr_id, 3);
    assert_int_equal(qa.qp_state, IBV_QPS_ERR);
    char want[64];
    fill(want, 64, 6);
    assert_memory_equal(p->b.buf, want, 64);
    pair_free(p);
}

/* RLIMIT_MEMLOCK as the kernel applies it: without CAP_IPC_LOCK,
 * registering past the limit fails with ENOMEM; deregistering gives the
 * room back. In a child: it drops the capability. */
static int memlock_child(void)
{
    struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d))
        return 10;
    d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
    if (syscall(SYS_capset, &h, d))
        return 11;
    struct rlimit rl = { 64 << 10, 64 << 10 };
    if (setrlimit(RLIMIT_MEMLOCK, &rl))
        return 12;
    struct ibv_device **l = ibv_get_device_list(NULL);
    struct ibv_context *ctx = l && l[0] ? ibv_open_device(l[0]) : NULL;
    struct ibv_pd *pd = ctx ? ibv_alloc_pd(ctx) : NULL;
    char *buf = aligned_alloc(4096, 256 << 10);
    if (!pd || !buf)
        return 13;
    struct ibv_mr *a = ibv_reg_mr(pd, buf, 32 << 10, IBV_ACCESS_LOCAL_WRITE);
    if (!a)
        return 14;
    errno = 0;
    struct ibv_mr *b = ibv_reg_mr(pd, buf + (64 << 10), 64 << 10, IBV_ACCESS_LOCAL_WRITE);
    if (b || errno != ENOMEM)
        return 15;
    if (ibv_dereg_mr(a))
        return 16;
    b = ibv_reg_mr(pd, buf + (64 << 10), 64 << 10, IBV_ACCESS_LOCAL_WRITE);
    if (!b)
        return 17;
    /* on-demand paging is offered (SEND, RECV, WRITE, READ on RC), and
     * such a region pins nothing: four times the limit registers */
    struct ibv_device_attr_ex ax;
    const uint32_t rc = IBV_ODP_SUPPORT_SEND | IBV_ODP_SUPPORT_RECV | IBV_ODP_SUPPORT_WRITE | IBV_ODP_SUPPORT_READ;
    if (ibv_query_device_ex(ctx, NULL, &ax) || !(ax.odp_caps.general_caps & IBV_ODP_SUPPORT) ||
        (ax.odp_caps.per_transport_caps.rc_odp_caps & rc) != rc)
        return 18;
    if (!ibv_reg_mr(pd, buf, 256 << 10, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_ON_DEMAND))
        return 19;
    return 0;
}

/* SOFTRDMA_ODP=0, a NIC without on-demand paging: not offered, and a
 * registration that asks for it fails with EOPNOTSUPP. */
static int no_odp_child(void)
{
    setenv("SOFTRDMA_ODP", "0", 1);
    struct ibv_device **l = ibv_get_device_list(NULL);
    struct ibv_context *ctx = l && l[0] ? ibv_open_device(l[0]) : NULL;
    struct ibv_pd *pd = ctx ? ibv_alloc_pd(ctx) : NULL;
    static char buf[8192] __attribute__((aligned(4096)));
    struct ibv_device_attr_ex ax;
    if (!pd || ibv_query_device_ex(ctx, NULL, &ax))
        return 20;
    if (ax.odp_caps.general_caps || ax.odp_caps.per_transport_caps.rc_odp_caps)
        return 21;
    errno = 0;
    if (ibv_reg_mr(pd, buf, sizeof buf, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_ON_DEMAND) || errno != EOPNOTSUPP)
        return 22;
    return ibv_reg_mr(pd, buf, sizeof buf, IBV_ACCESS_LOCAL_WRITE) ? 0 : 23;
}

static void test_memlock_limit(void **st)
{
    (void)st;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(memlock_child());
    wait_child(pid, 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(no_odp_child());
    wait_child(pid, 0);
}

/* ---- a peer in another process ---- */

struct peer_info { uint32_t qpn, rkey; uint64_t addr; };

/* The child's half: a device of its own, one side; info exchanged over the
 * pipes (to_parent[1], to_child[0]); returns the parent's info. */
static struct peer_info child_side(struct pair **pp, int wfd, int rfd)
{
    struct pair *p = pair_open();
    side_init(p, &p->a, 64, 1, ALL);
    struct peer_info mine = { p->a.qp->qp_num, p->a.mr->rkey, (uintptr_t)p->a.buf }, theirs;
    if (write(wfd, &mine, sizeof mine) != sizeof mine || read(rfd, &theirs, sizeof theirs) != sizeof theirs)
        _exit(20);
    qp_connect(p->a.qp, theirs.qpn, 7);
    *pp = p;
    return theirs;
}

static struct peer_info parent_side(struct side *s, int wfd, int rfd)
{
    struct peer_info mine = { s->qp->qp_num, s->mr->rkey, (uintptr_t)s->buf }, theirs;
    assert_int_equal(read(rfd, &theirs, sizeof theirs), sizeof theirs);
    assert_int_equal(write(wfd, &mine, sizeof mine), sizeof mine);
    qp_connect(s->qp, theirs.qpn, 7);
    return theirs;
}

/* The writer: 64 KiB RDMA WRITEs of 0xAA into the parent's region until
 * one fails; says "going" after 20. Exit 0 if it ended in REM_ACCESS_ERR. */
static int dereg_writer(int wfd, int rfd)
{
    struct pair *p;
    struct peer_info t = child_side(&p, wfd, rfd);
    memset(p->a.buf, 0xAA, BUF);
    struct ibv_wc wc;
    for (int i = 0; i < 200000; i++) {
        if (post_send(&p->a, IBV_WR_RDMA_WRITE, 1, 0, BUF, 0, t.addr, t.rkey, p->a.mr->lkey))
            return 21;
        if (poll_n(p->a.scq, &wc, 1, DEADLINE_MS) != 1)
            return 22;
        if (wc.status != IBV_WC_SUCCESS)
            return wc.status == IBV_WC_REM_ACCESS_ERR ? 0 : 23;
        if (i == 20 && write(wfd, "g", 1) != 1)
            return 24;
    }
    return 25;
}

/* A side in this process and a peer process running child(wfd, rfd) with
 * pipes to it (up: child to us, down: us to child). */
struct forked { struct pair *p; pid_t pid; int up[2], down[2]; };

static void forked_start(struct forked *f, int cqe, int (*child)(int wfd, int rfd))
{
    assert_int_equal(pipe(f->up), 0);
    assert_int_equal(pipe(f->down), 0);
    f->p = pair_open();
    side_init(f->p, &f->p->a, cqe, 1, ALL);
    fflush(stdout);
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0)
        _exit(child(f->up[1], f->down[0]));
}

/* The child exits 0; everything goes. */
static void forked_end(struct forked *f)
{
    wait_child(f->pid, 0);
    side_free(&f->p->a);
    ibv_dealloc_pd(f->p->pd);
    ibv_close_device(f->p->ctx);
    free(f->p);
    close(f->up[0]); close(f->up[1]); close(f->down[0]); close(f->down[1]);
}

/* The peer of test_first_send_waits: its receive posted, it says so and
 * is stopped by the parent; then the SEND must land intact. */
static int offer_child(int wfd, int rfd)
{
    struct pair *p;
    child_side(&p, wfd, rfd);
    post_recv(&p->a, 7, 1, 0, 64);
    if (write(wfd, "r", 1) != 1)
        return 40;
    struct ibv_wc wc;
    if (poll_n(p->a.rcq, &wc, 1, DEADLINE_MS) != 1 || wc.status != IBV_WC_SUCCESS || wc.byte_len != 64)
        return 41;
    char want[64];
    fill(want, sizeof want, 9);
    return memcmp(p->a.buf, want, sizeof want) ? 42 : 0;
}

/* An inline SEND posted right after RTS, before the peer's attach offer
 * can have been read (the peer process is stopped, so its device cannot
 * answer the new stream yet), waits for the offer and then goes directly:
 * it used to go the stream's way (the peer's device delivering it and
 * sending an ACK). Nothing completes while the peer is stopped. */
static void test_first_send_waits(void **st)
{
    (void)st;
    struct forked f;
    forked_start(&f, 64, offer_child);
    struct pair *p = f.p;
    pid_t pid = f.pid;
    int *up = f.up, *down = f.down;
    struct peer_info mine = { p->a.qp->qp_num, p->a.mr->rkey, (uintptr_t)p->a.buf }, theirs;
    char c;
    assert_int_equal(read(up[0], &theirs, sizeof theirs), sizeof theirs);
    assert_int_equal(write(down[1], &mine, sizeof mine), sizeof mine);
    assert_int_equal(read(up[0], &c, 1), 1);           /* its receive is posted */
    assert_int_equal(kill(pid, SIGSTOP), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
    assert_true(WIFSTOPPED(status));
    qp_connect(p->a.qp, theirs.qpn, 7);
    uint64_t d0, s0, d1, s1;
    stats(&d0, &s0);
    fill(p->a.buf, 64, 9);
    assert_int_equal(post_send(&p->a, IBV_WR_SEND, 1, 0, 64, IBV_SEND_INLINE, 0, 0, p->a.mr->lkey), 0);
    memset(p->a.buf, 0, 64);        /* inline: the device has its copy */
    struct ibv_wc wc;
    assert_int_equal(poll_n(p->a.scq, &wc, 1, 50), 0);
    assert_int_equal(kill(pid, SIGCONT), 0);
    assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
    stats(&d1, &s1);
    assert_int_equal(d1 - d0, 1);
    assert_int_equal(s1 - s0, 0);
    forked_end(&f);
}

/* ibv_dereg_mr returns only when nothing can land in the region any more:
 * a peer process writing into it without pause finds its key gone (its
 * WRITE fails with REM_ACCESS_ERR) and nothing it wrote appears in the
 * memory after ibv_dereg_mr returned. */
static void test_dereg_stops_peer_writes(void **st)
{
    (void)st;
    int up[2], down[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(dereg_writer(up[1], down[0]));
    struct pair *p = pair_open();
    side_init(p, &p->a, 64, 1, ALL);
    parent_side(&p->a, down[1], up[0]);
    char c;
    assert_int_equal(read(up[0], &c, 1), 1);     /* the writer is busy */
    assert_int_equal(ibv_dereg_mr(p->a.mr), 0);
    memset(p->a.buf, 0x55, BUF);
    wait_child(pid, 0);
    for (size_t i = 0; i < BUF; i++)
        if (p->a.buf[i] != 0x55)
            fail_msg("byte %zu changed after ibv_dereg_mr returned", i);
    p->a.mr = ibv_reg_mr(p->pd, p->a.buf, BUF, ALL);  /* for side_free */
    side_free(&p->a);
    ibv_dealloc_pd(p->pd);
    ibv_close_device(p->ctx);
    free(p);
    close(up[0]); close(up[1]); close(down[0]); close(down[1]);
}

/* ---- the reply overtakes the answer ---- */

#define REPLY_ROUNDS 80         /* more than the send queue's 64 slots */

/* The peer of test_reply_after_stream_answer: one warm-up SEND (so that
 * its replies go directly), then each round: once the parent says its
 * SEND is posted, a receive for it, the SEND checked, and a reply. */
static int reply_child(int wfd, int rfd)
{
    struct pair *p;
    child_side(&p, wfd, rfd);
    struct ibv_wc wc;
    if (post_send(&p->a, IBV_WR_SEND, 1, 0, 8, 0, 0, 0, p->a.mr->lkey) ||
        poll_n(p->a.scq, &wc, 1, DEADLINE_MS) != 1 || wc.status != IBV_WC_SUCCESS)
        return 50;
    for (int r = 0; r < REPLY_ROUNDS; r++) {
        char c;
        if (read(rfd, &c, 1) != 1)
            return 51;
        post_recv(&p->a, 1000 + r, 1, 4096, 64);
        if (poll_n(p->a.rcq, &wc, 1, DEADLINE_MS) != 1 || wc.status != IBV_WC_SUCCESS || wc.byte_len != 32)
            return 52;
        char want[32];
        fill(want, sizeof want, (unsigned)r);
        if (memcmp(p->a.buf + 4096, want, sizeof want))
            return 53;
        fill(p->a.buf, 16, 100u + (unsigned)r);
        if (post_send(&p->a, IBV_WR_SEND, 2000 + r, 0, 16, 0, 0, 0, p->a.mr->lkey) ||
            poll_n(p->a.scq, &wc, 1, DEADLINE_MS) != 1 || wc.status != IBV_WC_SUCCESS)
            return 54;
    }
    return 0;
}

static void device_pause(int on)
{
    void (*f)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "sr_test_device_pause");
    assert_non_null(f);
    f(on);
}

/* A SEND that goes the stream's way (the peer has no receive posted: RNR,
 * held by the peer's device; after an idle close on a reopened stream)
 * completes when its ACK is read from the stream, while the peer's reply
 * to it comes directly into our CQ. With this process's device thread not
 * running (paused, as the scheduler left it on a loaded host), rping went
 * on at each reply and never found its sends' completions: its send queue
 * filled up, ENOMEM from ibv_post_send (softrdma_stress_rping). The send's
 * completion must be there when the reply is polled, as on hardware, and
 * so more rounds than the send queue's slots pass. */
static void test_reply_after_stream_answer(void **st)
{
    (void)st;
    struct forked f;
    forked_start(&f, 256, reply_child);
    struct pair *p = f.p;
    parent_side(&p->a, f.down[1], f.up[0]);
    struct ibv_wc wc;
    post_recv(&p->a, 1, 1, 8192, 64);
    assert_int_equal(poll_n(p->a.rcq, &wc, 1, DEADLINE_MS), 1);     /* the warm-up */
    assert_int_equal(wc.status, IBV_WC_SUCCESS);
    uint64_t d0, s0, d1, s1;
    stats(&d0, &s0);
    device_pause(1);
    for (int r = 0; r < REPLY_ROUNDS; r++) {
        post_recv(&p->a, 3000 + r, 1, 8192, 64);
        fill(p->a.buf, 32, (unsigned)r);
        int rc = post_send(&p->a, IBV_WR_SEND, 4000 + r, 0, 32, 0, 0, 0, p->a.mr->lkey);
        if (rc)
            fail_msg("round %d: ibv_post_send: %s", r, strerror(rc));
        assert_int_equal(write(f.down[1], "s", 1), 1);
        assert_int_equal(poll_n(p->a.rcq, &wc, 1, DEADLINE_MS), 1);
        assert_int_equal(wc.status, IBV_WC_SUCCESS);
        assert_int_equal(wc.wr_id, 3000 + r);
        char want[16];
        fill(want, sizeof want, 100u + (unsigned)r);
        assert_memory_equal(p->a.buf + 8192, want, sizeof want);
        /* the reply was polled: the send's completion is there */
        if (ibv_poll_cq(p->a.scq, 1, &wc) != 1)
            fail_msg("round %d: the reply came, its send's completion did not", r);
        assert_int_equal(wc.status, IBV_WC_SUCCESS);
        assert_int_equal(wc.wr_id, 4000 + r);
    }
    device_pause(0);
    stats(&d1, &s1);
    assert_true(s1 - s0 >= REPLY_ROUNDS);       /* every SEND went the stream's way */
    forked_end(&f);
}

/* ---- separate runs ---- */

/* A device that cannot start (fabric directory impossible) fails each call
 * and leaves no descriptor behind (it used to leak an epoll fd each time). */
static int run_start_fail(void)
{
    struct ibv_device **l = ibv_get_device_list(NULL);
    if (!l || !l[0]) {
        fprintf(stderr, "start_fail: no device\n");
        return 1;
    }
    int n0 = count_fds();
    for (int i = 0; i < 20; i++)
        if (ibv_open_device(l[0])) {
            fprintf(stderr, "start_fail: ibv_open_device succeeded on an impossible fabric\n");
            return 1;
        }
    int n1 = count_fds();
    ibv_free_device_list(l);
    printf("start_fail: fds %d -> %d after 20 failed starts\n", n0, n1);
    return n1 == n0 ? 0 : 1;
}

enum { CROSS_INLINE_ROUNDS = 64, CROSS_INLINE_LEN = 16384 };

static void staged(uint64_t *sends, uint64_t *bytes)
{
    void (*f)(uint64_t *, uint64_t *) = (void (*)(uint64_t *, uint64_t *))dlsym(RTLD_DEFAULT, "sr_stats_staged");
    *sends = *bytes = 0;
    if (f)
        f(sends, bytes);
    else
        *sends = UINT64_MAX / 2;    /* not the softrdma device: the check fails */
}

/* The child: drops to nobody, then SENDs a pattern and receives one, then
 * inline SENDs that go by stream. */
static int cross_uid_child(int wfd, int rfd)
{
    if (setgid(65534) || setuid(65534))
        return 30;
    struct pair *p;
    child_side(&p, wfd, rfd);
    struct ibv_wc wc;
    post_recv(&p->a, 7, 1, 4096, 4096);
    fill(p->a.buf, 4096, 21);
    if (post_send(&p->a, IBV_WR_SEND, 8, 0, 4096, 0, 0, 0, p->a.mr->lkey))
        return 31;
    if (poll_n(p->a.scq, &wc, 1, DEADLINE_MS) != 1 || wc.status != IBV_WC_SUCCESS)
        return 32;
    if (poll_n(p->a.rcq, &wc, 1, DEADLINE_MS) != 1 || wc.status != IBV_WC_SUCCESS)
        return 33;
    char want[4096];
    fill(want, sizeof want, 22);
    if (memcmp(p->a.buf + 4096, want, sizeof want))
        return 34;
    /* Inline sends to root's process go the stream's way (the kernel
     * refuses process_vm_writev to another user): each is written onto
     * the stream inside ibv_post_send, from this buffer, which is
     * scribbled over as soon as the post returns. None is staged while
     * the stream has room (a few may be, should the stream close while
     * idle between two of them). */
    uint64_t st0, stb, st1;
    staged(&st0, &stb);
    for (unsigned r = 0; r < CROSS_INLINE_ROUNDS; r++) {
        fill(p->a.buf, CROSS_INLINE_LEN, 100 + r);
        if (post_send(&p->a, IBV_WR_SEND, 100 + r, 0, CROSS_INLINE_LEN, IBV_SEND_INLINE, 0, 0, 0))
            return 35;
        memset(p->a.buf, 0xEE, CROSS_INLINE_LEN);
        if (poll_n(p->a.scq, &wc, 1, DEADLINE_MS) != 1 || wc.status != IBV_WC_SUCCESS)
            return 36;
    }
    staged(&st1, &stb);
    printf("cross_uid: %u inline sends of %u bytes by stream, %llu staged by the device\n",
           CROSS_INLINE_ROUNDS, CROSS_INLINE_LEN, (unsigned long long)(st1 - st0));
    if (st1 - st0 > CROSS_INLINE_ROUNDS / 8)
        return 37;
    uint64_t d, s;
    stats(&d, &s);
    printf("cross_uid: uid %d side: %llu direct, %llu by stream\n", (int)getuid(),
           (unsigned long long)d, (unsigned long long)s);
    fflush(stdout);
    return 0;
}

/* Root and a process that dropped to nobody, on one fabric whose
 * directories allow both (the default fabric's permissions are set up by
 * the device's CM side): both directions deliver, verified. */
static int run_cross_uid(void)
{
    const char *fab = getenv("SOFTRDMA_FABRIC");
    char path[600];
    if (!fab) {
        fprintf(stderr, "cross_uid: SOFTRDMA_FABRIC not set\n");
        return 1;
    }
    umask(0);   /* this process's NIC socket: connectable by nobody */
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", fab, i ? "qp" : "nic");
        mkdir(fab, 01777);
        mkdir(path, 01777);
        chmod(fab, 01777);
        chmod(path, 01777);
    }
    int up[2], down[2];
    if (pipe(up) || pipe(down))
        return 1;
    struct pair *p = pair_open();
    side_init(p, &p->a, 64, 1, ALL);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(cross_uid_child(up[1], down[0]));
    parent_side(&p->a, down[1], up[0]);
    struct ibv_wc wc;
    post_recv(&p->a, 1, 1, 4096, 4096);
    if (poll_n(p->a.rcq, &wc, 1, DEADLINE_MS) != 1 || wc.status != IBV_WC_SUCCESS) {
        fprintf(stderr, "cross_uid: nothing received from nobody's process\n");
        kill(pid, SIGKILL);
        return 1;
    }
    char want[4096];
    fill(want, sizeof want, 21);
    if (memcmp(p->a.buf + 4096, want, sizeof want)) {
        fprintf(stderr, "cross_uid: wrong data from nobody's process\n");
        return 1;
    }
    fill(p->a.buf, 4096, 22);
    if (post_send(&p->a, IBV_WR_SEND, 2, 0, 4096, 0, 0, 0, p->a.mr->lkey) ||
        poll_n(p->a.scq, &wc, 1, DEADLINE_MS) != 1 || wc.status != IBV_WC_SUCCESS) {
        fprintf(stderr, "cross_uid: send to nobody's process failed\n");
        return 1;
    }
    for (unsigned r = 0; r < CROSS_INLINE_ROUNDS; r++) {
        char want_r[CROSS_INLINE_LEN];
        post_recv(&p->a, 200 + r, 1, 16384, CROSS_INLINE_LEN);
        if (poll_n(p->a.rcq, &wc, 1, DEADLINE_MS) != 1 || wc.status != IBV_WC_SUCCESS ||
            wc.byte_len != CROSS_INLINE_LEN) {
            fprintf(stderr, "cross_uid: inline send %u from nobody's process not received\n", r);
            kill(pid, SIGKILL);
            return 1;
        }
        fill(want_r, sizeof want_r, 100 + r);
        if (memcmp(p->a.buf + 16384, want_r, sizeof want_r)) {
            fprintf(stderr, "cross_uid: inline send %u: not the data at its post\n", r);
            kill(pid, SIGKILL);
            return 1;
        }
    }
    int stt;
    waitpid(pid, &stt, 0);
    if (!WIFEXITED(stt) || WEXITSTATUS(stt)) {
        fprintf(stderr, "cross_uid: nobody's side failed (status 0x%x)\n", stt);
        return 1;
    }
    side_free(&p->a);
    ibv_dealloc_pd(p->pd);
    ibv_close_device(p->ctx);
    free(p);
    printf("cross_uid: PASS\n");
    return 0;
}

/* ---- a peer's exit handlers ---- */

/* The exiting child's side, for its exit handler. */
static struct pair *exit_pair;
static int exit_wfd, exit_rfd;

/* Runs inside exit(), registered before the device started, as an
 * application's handler that closes its connection gracefully (cat's close
 * of stdout): says so, waits until the parent has posted a SEND that finds
 * no receive (so it goes by a reopened stream), then posts the receive and
 * checks what arrives. Failing: _exit with a code of its own. */
static void exit_handler(void)
{
    char c;
    if (write(exit_wfd, "x", 1) != 1 || read(exit_rfd, &c, 1) != 1)
        _exit(40);
    post_recv(&exit_pair->a, 9, 1, 0, 64);
    struct ibv_wc wc;
    if (poll_n(exit_pair->a.rcq, &wc, 1, DEADLINE_MS) != 1 || wc.status != IBV_WC_SUCCESS)
        _exit(41);
    char want[64];
    fill(want, sizeof want, 31);
    if (memcmp(exit_pair->a.buf, want, sizeof want))
        _exit(42);
}

static int peer_exit_child(int wfd, int rfd)
{
    exit_wfd = wfd;
    exit_rfd = rfd;
    if (atexit(exit_handler))       /* before the device starts */
        return 43;
    child_side(&exit_pair, wfd, rfd);
    char c;
    if (read(rfd, &c, 1) != 1)      /* the parent's stream is closed */
        return 44;
    exit(0);
}

/* A peer's QP stays usable while its process runs its exit handlers: its
 * NIC's name (through which a QP whose stream was closed while idle opens
 * it again) is removed only after them. It was removed by an atexit handler
 * registered at device start, which runs before the handlers registered
 * earlier: the parent's SEND found no name, failed with RETRY_EXC_ERR, and
 * the exiting side's graceful close came too late (one cause of
 * rsfw.sem_anchor accept_fork_exec's ECONNRESET instead of EOF). The child is
 * forked before this process starts a device (a forked child inherits its
 * parent's exit handlers, and with them the order). */
static int run_peer_exit(void)
{
    int up[2], down[2];
    if (pipe(up) || pipe(down))
        return 1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(peer_exit_child(up[1], down[0]));
    struct pair *p = pair_open();
    side_init(p, &p->a, 64, 1, ALL);
    int socks0 = count_sockets();
    parent_side(&p->a, down[1], up[0]);
    long end = now_ms() + DEADLINE_MS;
    while (count_sockets() > socks0 && now_ms() < end)
        usleep(1000);
    int closed = count_sockets() == socks0;     /* both streams closed once idle */
    char c;
    struct ibv_wc wc = { .status = IBV_WC_GENERAL_ERR };
    int ok = closed && write(down[1], "g", 1) == 1 && read(up[0], &c, 1) == 1;
    if (ok) {
        fill(p->a.buf, 64, 31);
        ok = post_send(&p->a, IBV_WR_SEND, 1, 0, 64, 0, 0, 0, p->a.mr->lkey) == 0 &&
             write(down[1], "s", 1) == 1 && poll_n(p->a.scq, &wc, 1, DEADLINE_MS) == 1;
    }
    int st = 0;
    end = now_ms() + 30000;
    pid_t r;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0 && now_ms() < end)
        usleep(1000);
    if (r == 0)
        kill(pid, SIGKILL);
    printf("peer_exit: streams closed %d, SEND status %s, child status 0x%x\n", closed,
           ibv_wc_status_str(wc.status), st);
    side_free(&p->a);
    ibv_dealloc_pd(p->pd);
    ibv_close_device(p->ctx);
    free(p);
    return ok && wc.status == IBV_WC_SUCCESS && r == pid && WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : 1;
}

/* The device keeps a destroyed QP's send queue arrays for the next QP of
 * the same shape (sr_qpq.c) and hands them out without zeroing: each
 * round's QPs must reuse the last round's (the device thread returns them
 * at its batch end) and carry SENDs and inline SENDs intact, more of them
 * than the queue holds (the ring wraps over the old round's entries). */
static void qpq_stats(uint64_t *kept, uint64_t *reused)
{
    void (*f)(uint64_t *, uint64_t *) =
        (void (*)(uint64_t *, uint64_t *))dlsym(RTLD_DEFAULT, "sr_qpq_stats");
    assert_non_null(f);
    f(kept, reused);
}

static void test_send_queue_reused(void **state)
{
    (void)state;
    for (unsigned round = 0; round < 6; round++) {
        uint64_t kept, reused0, reused1;
        qpq_stats(&kept, &reused0);
        struct pair *p = pair_new(16, 1, 7, ALL);
        qpq_stats(&kept, &reused1);
        if (round > 0)
            assert_int_equal(reused1 - reused0, 2);     /* both QPs from the kept blocks */
        for (unsigned i = 0; i < 40; i++) {
            struct ibv_wc wc;
            uint32_t len = i % 2 ? 48 : 3000;            /* inline and not */
            post_recv(&p->b, i, 1, 0, len);
            fill(p->a.buf, len, round * 100 + i);
            assert_int_equal(post_send(&p->a, IBV_WR_SEND, i, 0, len, i % 2 ? IBV_SEND_INLINE : 0, 0, 0,
                                       p->a.mr->lkey), 0);
            assert_int_equal(poll_n(p->b.rcq, &wc, 1, DEADLINE_MS), 1);
            assert_int_equal(wc.status, IBV_WC_SUCCESS);
            assert_int_equal(wc.byte_len, len);
            assert_memory_equal(p->b.buf, p->a.buf, len);
            assert_int_equal(poll_n(p->a.scq, &wc, 1, DEADLINE_MS), 1);
            assert_int_equal(wc.status, IBV_WC_SUCCESS);
            assert_int_equal(wc.wr_id, i);
        }
        pair_free(p);
        long end = now_ms() + DEADLINE_MS;     /* back at the device thread's batch end */
        do
            qpq_stats(&kept, &reused1);
        while (kept < 2 && now_ms() < end && !usleep(1000));
        assert_true(kept >= 2);
    }
}

int main(int argc, char **argv)
{
    /* QP streams closed while idle (the default, 2; set in case the
     * environment says otherwise): doc/softrdma.md "Streams open only
     * while used" */
    setenv("SOFTRDMA_IDLE_CLOSE", "2", 1);
    char dir[] = "/tmp/softrdma-fast.XXXXXX";
    if (argc > 1 && !strcmp(argv[1], "start_fail"))
        return run_start_fail();
    if (!getenv("SOFTRDMA_FABRIC") && mkdtemp(dir))
        setenv("SOFTRDMA_FABRIC", dir, 1);
    int rc;
    if (argc > 1 && !strcmp(argv[1], "cross_uid")) {
        rc = run_cross_uid();
    } else if (argc > 1 && !strcmp(argv[1], "peer_exit")) {
        rc = run_peer_exit();
    } else if (argc > 1 && !strcmp(argv[1], "fd_bound")) {
        const struct CMUnitTest tests[] = { cmocka_unit_test(test_fds_per_qp_bound) };
        rc = cmocka_run_group_tests(tests, NULL, NULL);
    } else if (argc > 1 && !strcmp(argv[1], "small_as")) {
        /* an address space too small for the default segment (8 GiB):
         * the device takes a smaller one, everything still works */
        struct rlimit rl = { 3ull << 30, 3ull << 30 };
        if (setrlimit(RLIMIT_AS, &rl))
            return 1;
        const struct CMUnitTest tests[] = { cmocka_unit_test(test_direct_path_used) };
        rc = cmocka_run_group_tests(tests, NULL, NULL);
    } else {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_fd_counts),     /* first: nothing closing yet */
            cmocka_unit_test(test_direct_path_used),
            cmocka_unit_test(test_channel_only_when_armed),
            cmocka_unit_test(test_cq_with_event_not_leaked),
            cmocka_unit_test(test_channel_emfile),
            cmocka_unit_test(test_qp_emfile),
            cmocka_unit_test(test_reopen_emfile),
            cmocka_unit_test(test_memlock_limit),
            cmocka_unit_test(test_dereg_stops_peer_writes),
            cmocka_unit_test(test_first_send_waits),
            cmocka_unit_test(test_send_queue_reused),
            cmocka_unit_test(test_reply_after_stream_answer),
        };
        rc = cmocka_run_group_tests(tests, NULL, NULL);
    }
    if (!strcmp(getenv("SOFTRDMA_FABRIC"), dir)) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd)) {}
    }
    return rc;
}
