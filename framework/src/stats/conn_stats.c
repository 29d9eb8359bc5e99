/* conn_stats.c - per-connection records: what carries each connection and,
 * when it is not accelerated, why (include/nstack/nstack_stats.h).
 *
 * Records live in the shared stats segment. Claiming is a CAS on in_use;
 * the descriptive fields are written under the record's sequence counter
 * (rec_begin/rec_end); traffic counters are relaxed adds (conn_stats.h).
 * Nothing here runs on the data path except conn_stats_upgraded(), once
 * per anchored connection. The exit report's tally: conn_report.c. */
#include "conn_stats.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "anchor.h"
#include "fd_table.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"
#include "sock.h"
#include "nstack_config.h"

/* ---- record claim and publication ------------------------------------- */

static struct nstat_conn *rec_claim(struct nstat_shm *s, int *idx)
{
    static _Atomic unsigned hint;   /* where the next scan starts: spreads claims */
    unsigned start = __atomic_fetch_add(&hint, 1, __ATOMIC_RELAXED);
    for (unsigned k = 0; k < NSTAT_CONNS; k++) {
        unsigned i = (start + k) % NSTAT_CONNS;
        uint32_t zero = 0;
        if (__atomic_compare_exchange_n(&s->conns[i].in_use, &zero, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            *idx = (int)i + 1;
            __atomic_fetch_add(&s->conn_recorded, 1, __ATOMIC_RELAXED);
            return &s->conns[i];
        }
    }
    __atomic_fetch_add(&s->conn_overflow, 1, __ATOMIC_RELAXED);
    return NULL;
}

/* Makes seq odd. Writers of one record are slow-path calls on one
 * connection; a second one waits for the first (bounded: a writer holds it
 * for a few stores; after the bound the fields are written anyway, and a
 * reader may see that record torn once). */
static void rec_begin(struct nstat_conn *c)
{
    for (int tries = 0; tries < 1000000; tries++) {
        uint32_t q = __atomic_load_n(&c->seq, __ATOMIC_RELAXED);
        if (!(q & 1) && __atomic_compare_exchange_n(&c->seq, &q, q + 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            break;
    }
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static void rec_end(struct nstat_conn *c)
{
    uint32_t q = __atomic_load_n(&c->seq, __ATOMIC_RELAXED);
    __atomic_store_n(&c->seq, (q + 1) | 0, __ATOMIC_RELEASE);
}

static struct nstat_conn *rec_of(const struct file *f)
{
    int i = __atomic_load_n(&f->conn_slot, __ATOMIC_ACQUIRE);
    struct nstat_shm *s = g_stat_shm;
    return i > 0 && i <= NSTAT_CONNS && s != NULL ? &s->conns[i - 1] : NULL;
}

/* ---- what the route says ------------------------------------------------ */

struct route_view {
    int stack;          /* the stack the rule names (-1 none) */
    int index;
    int reason;         /* why that route does not accelerate, NSTAT_R_NONE if it does */
    char rule[NSTAT_RULE];
};

static int stack_carries(int st, const struct file *f)
{
    uint32_t need = (f->domain == AF_INET6 ? NSTACK_CAP_INET6 : NSTACK_CAP_INET) |
                    (f->type == SOCK_DGRAM ? NSTACK_CAP_DGRAM : NSTACK_CAP_STREAM);
    return (g_stacks[st].mod->caps & need) == need;
}

static void route_view(const struct file *f, const struct sockaddr *key, struct route_view *v)
{
    v->stack = -1;
    v->index = -1;
    v->reason = NSTAT_R_NO_ROUTE;
    snprintf(v->rule, sizeof(v->rule), "no configuration");
    const struct nstack_config *cfg = fw_config();
    if (cfg == NULL) {
        v->reason = fw_is_started() ? NSTAT_R_CONFIG : NSTAT_R_NO_ROUTE;
        return;
    }
    struct nstack_route_result res;
    nstack_route_lookup(cfg, key, f->type, &res);
    snprintf(v->rule, sizeof(v->rule), "%.*s", NSTAT_RULE - 1, res.rule_text);
    v->index = res.index;
    if (res.module < 0 || res.module >= g_n_stacks)
        return;
    v->stack = res.module;
    if (g_stacks[res.module].is_kernel)
        v->reason = res.rule == NSTACK_RULE_DEFAULT ? NSTAT_R_NO_ROUTE : NSTAT_R_ROUTE_KERNEL;
    else if (fw_stack_ready(res.module) < 0)
        v->reason = NSTAT_R_NO_DEVICE;
    else if (!stack_carries(res.module, f))
        v->reason = NSTAT_R_TYPE;
    else
        v->reason = NSTAT_R_NONE;
}

/* ---- filling a record --------------------------------------------------- */

static void put_addr(const struct sockaddr_storage *ss, uint8_t a[16], uint16_t *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        memcpy(a, &in->sin_addr, 4);
        *port = ntohs(in->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        memcpy(a, &in6->sin6_addr, 16);
        *port = ntohs(in6->sin6_port);
    }
}

/* State of the file now at fd's place in the table. */
static int state_of(const struct file *f)
{
    if (f->kind == FILE_MSOCK) {
        if (!f->anchored || f->anchor_direct)   /* anchor_direct: the TCP connect was refused */
            return NSTAT_ST_DIRECT;
        return __atomic_load_n(&f->anchor_state, __ATOMIC_ACQUIRE) == ANCHOR_UP ? NSTAT_ST_UPGRADING
                                                                                : NSTAT_ST_STAYED_TCP;
    }
    if (__atomic_load_n(&f->defer_anchor, __ATOMIC_ACQUIRE) || __atomic_load_n(&f->defer_stack, __ATOMIC_ACQUIRE))
        return NSTAT_ST_PENDING;
    if (__atomic_load_n(&f->ll_limit, __ATOMIC_RELAXED))
        return NSTAT_ST_TCP_PHASE;   /* long-lived policy (anchor_ll.c) */
    return NSTAT_ST_KERNEL;
}

/* The reason a connection in `state` is where it is, given its route. */
static int reason_of(int state, const struct route_view *v, int inbound)
{
    if (state != NSTAT_ST_KERNEL && state != NSTAT_ST_STAYED_TCP)
        return NSTAT_R_NONE;
    if (v->reason != NSTAT_R_NONE)
        return v->reason;
    /* the route names a usable module, yet the kernel carries it */
    return inbound ? NSTAT_R_PEER : NSTAT_R_CONNECT_FB;
}

static void fill_record(struct nstat_conn *c, int fd, const struct file *f, const struct route_view *v,
                        const struct sockaddr_storage *local, const struct sockaddr_storage *peer, int inbound)
{
    rec_begin(c);
    c->fd = fd;
    c->stack = f->stack;
    c->route_stack = v->stack;
    c->route_index = v->index;
    c->state = (uint8_t)state_of(f);
    c->reason = (uint8_t)reason_of(c->state, v, inbound);
    c->family = (uint8_t)f->domain;
    c->type = (uint8_t)f->type;
    c->inbound = (uint8_t)inbound;
    c->err = 0;
    memset(c->laddr, 0, sizeof(c->laddr));
    memset(c->raddr, 0, sizeof(c->raddr));
    c->lport = c->rport = 0;
    put_addr(local, c->laddr, &c->lport);
    put_addr(peer, c->raddr, &c->rport);
    snprintf(c->rule, sizeof(c->rule), "%s", v->rule);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->opened_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    for (int p = 0; p < NSTAT_PATHS; p++) {
        __atomic_store_n(&c->path[p].tx_bytes, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&c->path[p].rx_bytes, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&c->path[p].tx_msgs, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&c->path[p].rx_msgs, 0, __ATOMIC_RELAXED);
    }
    int state = c->state, reason = c->reason;
    rec_end(c);
    conn_report_add(state, reason, v->rule);
}

/* Records the connection at fd (key: the address its route is looked up by). */
static void record(int fd, const struct sockaddr_storage *local, const struct sockaddr_storage *peer,
                   const struct sockaddr *key, int inbound)
{
    struct nstat_shm *s = g_stat_shm;
    struct file *f;
    if (s == NULL || (f = file_get(fd)) == NULL)
        return;
    if (f->kind == FILE_KSOCK || f->kind == FILE_MSOCK) {
        struct route_view v;
        route_view(f, key, &v);
        int idx = __atomic_load_n(&f->conn_slot, __ATOMIC_ACQUIRE);
        struct nstat_conn *c = idx > 0 ? &s->conns[idx - 1] : rec_claim(s, &idx);
        if (c != NULL) {
            fill_record(c, fd, f, &v, local, peer, inbound);
            __atomic_store_n(&f->conn_slot, idx, __ATOMIC_RELEASE);
        }
    }
    file_put(f);
}

/* The local address of connection f at fd: its TCP socket's, or its
 * module socket's when it has no TCP connection (a direct module socket,
 * or an anchored connect the TCP side refused: anchor_direct.c). */
static int local_addr(int fd, struct file *f, struct sockaddr_storage *ss)
{
    socklen_t len = sizeof(*ss);
    if (f != NULL && f->kind == FILE_MSOCK && (!f->anchored || f->anchor_direct))
        return MCALL(f, getsockname, (struct sockaddr *)ss, &len);
    return fd >= 0 ? LIBC(getsockname)(fd, (struct sockaddr *)ss, &len) : -1;
}

void conn_stats_connect(int fd, const struct sockaddr *dest, int r)
{
    if (r < 0 && errno != EINPROGRESS)
        return;
    int err = errno;
    struct sockaddr_storage local = { 0 }, peer = { 0 };
    (void)local_addr(fd, fd_table_get(fd), &local);
    memcpy(&peer, dest, dest->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    record(fd, &local, &peer, dest, 0);
    errno = err;
}

/* A connection whose addresses the socket itself tells (an accepted one,
 * or one inherited across exec); routed by its local address when
 * inbound, by its peer's otherwise. Kept short: it runs right after
 * accept(), while the peer's module may be mid-handshake. */
static void track(int fd, int inbound)
{
    int err = errno;
    struct sockaddr_storage local = { 0 }, peer = { 0 };
    socklen_t len = sizeof(local), plen = sizeof(peer);
    struct file *f = fd_table_get(fd);
    int direct = f != NULL && file_is_direct_msock(f);   /* its fd is a wait fd: ask the module */
    int r = direct ? getsockname(fd, (struct sockaddr *)&local, &len)
                   : LIBC(getsockname)(fd, (struct sockaddr *)&local, &len);
    if (r == 0) {
        if (direct)
            (void)getpeername(fd, (struct sockaddr *)&peer, &plen);
        else
            (void)LIBC(getpeername)(fd, (struct sockaddr *)&peer, &plen);
        record(fd, &local, &peer, (const struct sockaddr *)(inbound ? &local : &peer), inbound);
    }
    errno = err;
}

void conn_stats_accept(int fd)
{
    /* Every accepted connection, an anchored candidate too (after its
     * hello went out in anchor_track_accepted): one never used still has a
     * record, so accepts and records add up (state anchored-pending, and
     * "closed before first use" once it is closed unused). */
    track(fd, 1);
}

void conn_stats_inherited(int fd, int inbound)
{
    track(fd, inbound);
}

/* ---- transitions -------------------------------------------------------- */

static void set_state(struct nstat_conn *c, int state, int reason, int err)
{
    rec_begin(c);
    c->state = (uint8_t)state;
    c->reason = (uint8_t)reason;
    c->err = err;
    rec_end(c);
}

void conn_stats_move(int fd, struct file *from, struct file *to)
{
    int idx = __atomic_exchange_n(&from->conn_slot, 0, __ATOMIC_ACQ_REL);
    if (idx == 0) {
        /* not recorded yet: an accepted anchored candidate at its first use
         * (connected ones were recorded by connect()) */
        if (to->anchored)
            track(fd, 1);
        return;
    }
    __atomic_store_n(&to->conn_slot, idx, __ATOMIC_RELEASE);
    struct nstat_conn *c = rec_of(to);
    struct sockaddr_storage local = { 0 };
    int moved_addr = to->anchor_direct && local_addr(-1, to, &local) == 0;   /* the refused TCP socket had none */
    rec_begin(c);
    c->stack = to->stack;
    c->state = (uint8_t)state_of(to);
    if (moved_addr)
        put_addr(&local, c->laddr, &c->lport);
    rec_end(c);
}

static int reason_of_errno(int err)
{
    switch (err) {
    case ENOPROTOOPT:
        return NSTAT_R_PEER;
    case EMFILE:
    case ENFILE:
        return NSTAT_R_FD_LIMIT;
    case ENOMEM:
        return NSTAT_R_MEMLOCK;   /* memory registration is what fails first under RLIMIT_MEMLOCK */
    case ENODEV:
    case ENXIO:
        return NSTAT_R_NO_DEVICE;
    case EADDRNOTAVAIL:
        return NSTAT_R_NOT_RDMA_ADDR;
    case EOWNERDEAD:
        return NSTAT_R_FORK;
    case EREMOTEIO:
        return NSTAT_R_MODULE_ERR;   /* the peer's module could not make its side */
    case 0:
        return NSTAT_R_PEER;     /* the module stayed on TCP by the protocol: no framework there */
    default:
        return NSTAT_R_MODULE_ERR;
    }
}

/* The connection's end state (stayed on TCP, failed) and why, counted in
 * the exit report; stack < 0 keeps the record's stack. */
static void settle(struct nstat_conn *c, int stack, int state, int reason, int err)
{
    if (c == NULL)
        return;
    char rule[NSTAT_RULE];
    rec_begin(c);
    if (stack >= 0)
        c->stack = stack;
    c->state = (uint8_t)state;
    c->reason = (uint8_t)reason;
    c->err = err;
    memcpy(rule, c->rule, sizeof(rule));
    rec_end(c);
    rule[NSTAT_RULE - 1] = '\0';
    conn_report_add(state, reason, rule);
}

void conn_stats_stay_tcp(int fd, struct file *f, int err)
{
    if (__atomic_load_n(&f->conn_slot, __ATOMIC_ACQUIRE) == 0)
        track(fd, 1);           /* an accepted candidate, not recorded yet */
    settle(rec_of(f), g_kernel_stack, NSTAT_ST_STAYED_TCP, reason_of_errno(err), err);
}

void conn_stats_tcp_phase(int fd, struct file *f, int inbound)
{
    if (__atomic_load_n(&f->conn_slot, __ATOMIC_ACQUIRE) == 0)
        track(fd, inbound);
    struct nstat_conn *c = rec_of(f);
    if (c == NULL)
        return;
    rec_begin(c);
    c->stack = g_kernel_stack;
    c->state = NSTAT_ST_TCP_PHASE;
    c->reason = NSTAT_R_NONE;
    rec_end(c);
}

/* Why module file f stayed on TCP, as its module tells (ABI 1.3
 * NSTACK_SO_FALLBACK_ERRNO): 0 the peer runs no framework; a module
 * without the option says nothing, which means the same. */
static int fallback_errno(struct file *f)
{
    int e = 0, saved = errno;
    socklen_t l = sizeof(e);
    if (f->kind != FILE_MSOCK ||
        MCALL(f, getsockopt, NSTACK_SOL_MODULE, NSTACK_SO_FALLBACK_ERRNO, &e, &l) < 0 || l != sizeof(e))
        e = 0;
    errno = saved;
    return e;
}

void conn_stats_fallback(struct file *from, struct file *to, int released)
{
    int err = released ? EOWNERDEAD : fallback_errno(from);
    if (to != NULL)
        conn_stats_move(-1, from, to);
    settle(rec_of(to != NULL ? to : from), g_kernel_stack, NSTAT_ST_STAYED_TCP, reason_of_errno(err),
           err == 0 ? ENOPROTOOPT : err == EOWNERDEAD ? 0 : err);
}

void conn_stats_upgraded(struct nstat_conn *c)
{
    uint8_t up = NSTAT_ST_UPGRADING;
    rec_begin(c);
    __atomic_compare_exchange_n(&c->state, &up, NSTAT_ST_UPGRADED, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    rec_end(c);
}

/* Whether any data call moved bytes on the connection. */
static int moved(const struct nstat_conn *c)
{
    for (int p = 0; p < NSTAT_PATHS; p++)
        if (__atomic_load_n(&c->path[p].tx_msgs, __ATOMIC_RELAXED) ||
            __atomic_load_n(&c->path[p].rx_msgs, __ATOMIC_RELAXED))
            return 1;
    return 0;
}

/* A record's last word, at close or exit: a candidate never used says so
 * (and is counted in the report); one whose bytes went mostly over the
 * kernel on a module's route is named in the report. */
static void rec_finish(struct nstat_conn *c)
{
    struct nstat_conn copy;
    rec_begin(c);
    if (c->state == NSTAT_ST_PENDING && c->reason == NSTAT_R_NONE && !moved(c))
        c->reason = NSTAT_R_UNUSED;
    memcpy(&copy, c, sizeof(copy));
    rec_end(c);
    copy.rule[NSTAT_RULE - 1] = '\0';
    if (copy.reason == NSTAT_R_UNUSED)
        conn_report_add(copy.state, copy.reason, copy.rule);
    conn_report_conn(&copy);
}

void conn_stats_release(struct file *f)
{
    struct nstat_conn *c = rec_of(f);
    if (c == NULL)
        return;
    __atomic_store_n(&f->conn_slot, 0, __ATOMIC_RELAXED);
    rec_finish(c);
    set_state(c, NSTAT_ST_FREE, NSTAT_R_NONE, 0);
    __atomic_store_n(&c->in_use, 0, __ATOMIC_RELEASE);
}

void conn_stats_finish_all(void)
{
    struct nstat_shm *s = g_stat_shm;
    if (s == NULL)
        return;
    for (int i = 0; i < NSTAT_CONNS; i++)
        if (__atomic_load_n(&s->conns[i].in_use, __ATOMIC_ACQUIRE) && s->conns[i].state != NSTAT_ST_FREE)
            rec_finish(&s->conns[i]);
}

/* ---- fork --------------------------------------------------------------- */

void conn_stats_fork_child(const struct nstat_shm *old, struct nstat_shm *now)
{
    /* Same indices, so the files' conn_slot stay valid. Module resources
     * are not inherited: a module connection is unusable in the child. */
    now->conn_overflow = old->conn_overflow;
    now->conn_recorded = old->conn_recorded;
    for (int i = 0; i < NSTAT_CONNS; i++) {
        if (!old->conns[i].in_use)
            continue;           /* only used records: the new segment's pages stay unallocated */
        struct nstat_conn *c = &now->conns[i];
        memcpy(c, &old->conns[i], sizeof(*c));
        c->seq &= ~1u;          /* a writer interrupted by fork() is gone */
        if (c->state == NSTAT_ST_DIRECT || c->state == NSTAT_ST_UPGRADED || c->state == NSTAT_ST_UPGRADING) {
            c->reason = NSTAT_R_FORK;
            c->err = EOWNERDEAD;
        }
    }
    conn_report_fork_child();
}
