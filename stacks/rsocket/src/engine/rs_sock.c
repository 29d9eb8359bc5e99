/*
 * rs_sock.c - socket object lifetime, the wait fd, blocking waits with a
 * fork detection and logging (blocking waits: rs_wait.c).
 */
#include "rs_anchor.h"
#include "rs_sock.h"
#include "rs_down.h"

#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* Written only in the atfork child handler (single-threaded then). */
unsigned rs_fork_gen;

/* Set once by the module's register(); NULL when used as plain rsockets. */
void (*rs_notify_fn)(void *cookie);

void rs_fork_child_reset(void)
{
    __atomic_add_fetch(&rs_fork_gen, 1, __ATOMIC_RELAXED);
    rs_lprog_fork_child();
    rs_anc_fork_child();
    rs_cms_fork_child();
    rs_anc_lpool_fork_child();
}

/* Set by rs_module.c; stderr otherwise (warnings and errors only). */
void (*rs_log_sink)(int level, const char *line);

void rs_log(int level, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (rs_log_sink)
        rs_log_sink(level, line);
    else if (level >= 2)
        fprintf(stderr, "rsocket: %s\n", line);
}

int64_t rs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t rs_now_ms(void)
{
    return rs_now_ns() / 1000000;
}

int rs_wait_fd_add(struct rsock *s, int fd)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
    return epoll_ctl(s->wait_fd, EPOLL_CTL_ADD, fd, &ev);
}

/*
 * Heap given back after bursts of closes. A connection's buffers are
 * mapped (rs_endpoint.c) and unmapped at close, but its smaller pieces
 * (here and in the device library) come from the heap, which glibc keeps:
 * after 1,000 connections closed, over 100 MB stayed resident. Trim once
 * the live sockets fell to half their peak since the last trim and at
 * least RS_TRIM_BATCH were freed (a burst costs a few trims), and at a
 * close that leaves at most RS_TRIM_IDLE_LIVE (the end of a burst; a small
 * heap trims in microseconds) once RS_TRIM_IDLE_FREES were freed since the
 * last trim. Not at every such close: a server under one connection per
 * request (nginx under ab -c 8) is at that level every other close, and
 * each trim gave back the heap top that the next connection's QP queues
 * and sockets faulted in again (trim and faults: 3-4% of its CPU per
 * connection). At most RS_TRIM_IDLE_FREES sockets' pieces stay until the
 * next trim (the software device's thread also trims after 200 ms without
 * frees). Atomics only (any thread closes).
 */
#define RS_TRIM_BATCH 64
#define RS_TRIM_IDLE_LIVE 4
#define RS_TRIM_IDLE_FREES 32
static long rs_live, rs_live_peak, rs_freed_since_trim;

static void rs_count_alloc(void)
{
    long live = __atomic_add_fetch(&rs_live, 1, __ATOMIC_RELAXED);
    long peak = __atomic_load_n(&rs_live_peak, __ATOMIC_RELAXED);
    while (live > peak &&
           !__atomic_compare_exchange_n(&rs_live_peak, &peak, live, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

/* A socket parked out of use (a pooled anchor listener: -1) or back in
 * use (+1): the trim rule above counts the sockets in use, so a few idle
 * listeners kept for the next handshake do not hold the heap. */
void rs_count_parked(int delta)
{
    __atomic_add_fetch(&rs_live, delta, __ATOMIC_RELAXED);
}

static void rs_count_free(void)
{
    long live = __atomic_sub_fetch(&rs_live, 1, __ATOMIC_RELAXED);
    long freed = __atomic_add_fetch(&rs_freed_since_trim, 1, __ATOMIC_RELAXED);
    int halved = freed >= RS_TRIM_BATCH &&
                 live <= __atomic_load_n(&rs_live_peak, __ATOMIC_RELAXED) / 2;
    /* and whenever almost nothing is left (a listener, a connection): the
     * end of a burst; a trim of a small heap costs microseconds */
    if (!halved && (live > RS_TRIM_IDLE_LIVE || freed < RS_TRIM_IDLE_FREES))
        return;
    if (!__atomic_compare_exchange_n(&rs_freed_since_trim, &freed, 0, 0, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED))
        return;                  /* another thread trims */
    __atomic_store_n(&rs_live_peak, live, __ATOMIC_RELAXED);
    malloc_trim(0);
}

struct rsock *rs_alloc(int domain, const struct rsock *inherit)
{
    struct rsock *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    if (rs_wake_init(s)) {
        int err = errno;          /* EMFILE/ENFILE from eventfd stay that */
        pthread_mutex_destroy(&s->lock);
        free(s);
        errno = err;
        return NULL;
    }
    static uint64_t serial_next;   /* atomic add only */
    s->serial = __atomic_add_fetch(&serial_next, 1, __ATOMIC_RELAXED);
    s->domain = domain;
    s->fork_gen = __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED);
    s->timer_fd = -1;
    s->anchor_fd = -1;
    s->afonly = -1;
    s->rd_open = s->wr_open = 1;
    rs_count_alloc();            /* undone by rs_free, also on the failure below */
    s->wait_fd = epoll_create1(EPOLL_CLOEXEC);
    if (s->wait_fd < 0) {
        int err = errno;
        rs_wake_destroy(s);
        pthread_mutex_destroy(&s->lock);
        free(s);
        __atomic_sub_fetch(&rs_live, 1, __ATOMIC_RELAXED);
        errno = err;
        return NULL;
    }
    if (inherit) {
        s->sq_size = inherit->sq_size;
        s->rq_size = inherit->rq_size;
        s->sq_inline = inherit->sq_inline;
        s->rbuf_size = inherit->rbuf_size;
        s->sbuf_size = inherit->sbuf_size;
        s->target_iomap_size = inherit->target_iomap_size;
        s->nodelay = inherit->nodelay;
        s->keepalive = inherit->keepalive;
        s->keepidle_s = inherit->keepidle_s;
        s->keepintvl_s = inherit->keepintvl_s;     /* as an accepted TCP socket */
        s->keepcnt = inherit->keepcnt;
        s->user_timeout_ms = inherit->user_timeout_ms;
        s->linger = inherit->linger;
    } else {
        s->sq_size = (uint16_t)rs_tun.sqsize_default;
        s->rq_size = (uint16_t)rs_tun.rqsize_default;
        s->sq_inline = rs_tun.inline_default;
        s->rbuf_size = rs_tun.mem_default;
        s->sbuf_size = rs_tun.wmem_default;
        s->target_iomap_size = (uint16_t)rs_tun.iomap_size;
    }
    return s;
}

/* Release everything. In a fork child the verbs objects belong to the
 * parent's device context: only our own descriptors are closed. */
void rs_free(struct rsock *s)
{
    int owner = s->fork_gen == __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED);

    rs_anchor_free(s);           /* its listener first: it may point at s */
    free(s->early);
    rs_anchor_buf_give(s);
    rs_down_free(s);
    if (owner) {
        rs_endpoint_destroy(s);
        rs_iomap_free(s);
        rs_cms_destroy_id(s);
        if (s->cm_chan)
            rdma_destroy_event_channel(s->cm_chan);
        free(s->rmsg);
    }
    if (s->timer_fd >= 0)
        close(s->timer_fd);
    if (s->wait_fd >= 0)
        close(s->wait_fd);
    rs_wake_destroy(s);
    pthread_mutex_destroy(&s->lock);
    free(s);
    rs_count_free();
}

/* Every operation starts here: an inherited socket in a fork child fails
 * cleanly instead of touching the parent's queue pairs. */
int rs_check_usable(struct rsock *s)
{
    if (s->fork_gen != __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED)) {
        errno = EOWNERDEAD;
        return -1;
    }
    return 0;
}

void rs_set_error(struct rsock *s, int err, const char *why)
{
    if (why)
        rs_log(3, "connection closed: %s", why);
    if (!s->err)
        s->err = err;
    if (s->state == RS_CONNECTED || s->state == RS_DISCONNECTED ||
        s->state == RS_ACCEPTING) {
        rs_ctrl_farewell(s);          /* before the state: it needs a usable QP */
        rs_set_state(s, RS_ERROR);
        if (s->id && s->id->qp) {
            struct ibv_qp_attr attr = { .qp_state = IBV_QPS_ERR };
            ibv_modify_qp(s->id->qp, &attr, IBV_QP_STATE);
        }
        if (s->id)
            rdma_disconnect(s->id);
    } else if (s->state < RS_CONNECTED && s->state >= RS_RESOLVING_ADDR) {
        rs_set_state(s, RS_CONNECT_ERROR);
    }
    rs_event(s);
}
