/* anchor_side.c - see anchor_side.h.
 *
 * f->side points at the newest side of the listener (release store, read
 * lock-free); older ones (given up at a fork, or a parent's inherited
 * copy) hang off ->prev and are freed with the file, so a reader that
 * loaded one never sees it freed. A side's state moves FRESH -> USED (the
 * first wait in its process) or FRESH -> HANDED (given up at a fork: its
 * module socket and pfd are closed) by CAS, so a side in use is never
 * given up and a given-up side is never used. pfd, a private epoll fd
 * over the kernel listener and the side's wait fd, stands in for the
 * listener in poll/select. The module socket is nonblocking: accept()
 * asks it first, then the kernel, and a blocking listener waits on pfd
 * between rounds. */
#include "anchor_side.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fd_high.h"
#include "fw.h"
#include "fw_pid.h"
#include "fw_log.h"
#include "libc_api.h"
#include "module_load.h"
#include "sig_track.h"
#include "sock.h"
#include "stats.h"
#include "timeutil.h"

/* How long a nonblocking accept woken by the side waits for the
 * connection's establishment (a few ms on softrdma). */
#define SIDE_SETTLE_MS 200
/* A process without the side tries to make its own at most this often. */
#define SIDE_RETRY_MS 1000

enum { SIDE_FRESH, SIDE_USED, SIDE_HANDED };

struct anchor_side {
    int st;
    nstack_sock *sock;
    int wfd;                  /* the module socket's wait fd */
    int pfd;                  /* epoll over the kernel listener and wfd */
    pid_t pid;                /* the process that made it */
    int state;                /* SIDE_*, CAS */
    int backlog;              /* the listener's, for a side made later */
    struct anchor_side *prev; /* older sides of the file (freed with it) */
    struct anchor_side *reg_next;   /* g_reg: the sides of this process */
    /* under the file's lock: this process's last try to make its own */
    pid_t retry_pid;
    int64_t retry_ns;
};

/* Every side made in this process (and, after a fork, the parent's
 * copies: pid tells them apart), for the fork hook. Guarded by g_reg_lock,
 * a leaf (nothing is taken under it but the module's close in the fork
 * hook), held across fork() so the child's list is whole. */
static pthread_mutex_t g_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct anchor_side *g_reg;

static const struct nstack_module *mod_of(const struct anchor_side *sd)
{
    return g_stacks[sd->st].mod;
}

static void reg_add(struct anchor_side *sd)
{
    pthread_mutex_lock(&g_reg_lock);
    sd->reg_next = g_reg;
    g_reg = sd;
    pthread_mutex_unlock(&g_reg_lock);
}

static void reg_remove(struct anchor_side *sd)
{
    pthread_mutex_lock(&g_reg_lock);
    for (struct anchor_side **p = &g_reg; *p != NULL; p = &(*p)->reg_next)
        if (*p == sd) {
            *p = sd->reg_next;
            break;
        }
    pthread_mutex_unlock(&g_reg_lock);
}

/* Closes the module socket and pfd (a child's close of an inherited
 * module socket closes only its own descriptors: doc/fork.md). */
static void side_shut(struct anchor_side *sd)
{
    MOD_ENTER();
    mod_of(sd)->close(sd->sock);
    MOD_LEAVE();
    if (sd->pfd >= 0)
        LIBC(close)(sd->pfd);
    sd->pfd = -1;
}

static void side_close(struct anchor_side *sd)
{
    if (__atomic_load_n(&sd->state, __ATOMIC_ACQUIRE) != SIDE_HANDED)
        side_shut(sd);
    free(sd);
}

/* The module listener on ss (the kernel listener's address); NULL when
 * it cannot be made (logged: plain rsockets clients cannot connect then;
 * EADDRINUSE quietly: another process's side, or a module on the
 * kernel's own ports such as shadow). */
static struct anchor_side *side_open(int fd, const struct file *f, int st, int backlog,
                                     const struct sockaddr_storage *ss, socklen_t len)
{
    const struct nstack_module *m = g_stacks[st].mod;
    struct anchor_side *sd = calloc(1, sizeof(*sd));
    if (sd == NULL)
        return NULL;
    sd->st = st;
    sd->backlog = backlog;
    sd->pid = fw_pid();
    sd->pfd = -1;
    MOD_ENTER();
    sd->wfd = m->socket(f->domain, SOCK_STREAM | SOCK_NONBLOCK, 0, &sd->sock);
    int r = sd->wfd < 0 ? -1 : m->bind(sd->sock, (const struct sockaddr *)ss, len);
    if (r == 0)
        r = m->listen(sd->sock, backlog);
    int err = errno;
    MOD_LEAVE();
    if (sd->wfd < 0) {
        free(sd);
        sd = NULL;
    } else if (r < 0) {
        side_close(sd);
        sd = NULL;
    }
    if (sd == NULL && err == EADDRINUSE)
        LOG_DBG("fd %d: no %s listener beside the TCP listener: %s", fd, m->name, strerror(err));
    else if (sd == NULL)
        LOG_WAR("fd %d: no %s listener beside the TCP listener (%s): plain rsockets clients cannot connect",
                fd, m->name, strerror(err));
    if (sd == NULL)
        return NULL;
    stats_add(st, NSTAT_SOCKETS, 1);    /* a socket on the module (nstack-stat shows the server there) */
    sd->pfd = fd_move_high(LIBC(epoll_create1)(EPOLL_CLOEXEC));
    struct epoll_event e = { .events = EPOLLIN };
    e.data.fd = fd;
    if (sd->pfd >= 0 && LIBC(epoll_ctl)(sd->pfd, EPOLL_CTL_ADD, fd, &e) == 0) {
        e.data.fd = sd->wfd;
        (void)LIBC(epoll_ctl)(sd->pfd, EPOLL_CTL_ADD, sd->wfd, &e);
    }
    reg_add(sd);
    LOG_DBG("fd %d: %s listens beside the TCP listener (wait fd %d)", fd, g_stacks[st].name, sd->wfd);
    return sd;
}

/* The stack of listener fd's side, or -1: its route's when that anchors;
 * for a wildcard listener the anchoring stack a local address routes to. */
static int side_stack(int fd, struct file *f, struct sockaddr_storage *ss, socklen_t *len)
{
    if (f->type != SOCK_STREAM || LIBC(getsockname)(fd, (struct sockaddr *)ss, len) < 0)
        return -1;
    int st = __atomic_load_n(&f->defer_stack, __ATOMIC_ACQUIRE) - 1;
    if (st >= 0)
        return __atomic_load_n(&f->defer_anchor, __ATOMIC_ACQUIRE) ? st : -1;
    if (!sock_addr_is_wild((struct sockaddr *)ss, *len))
        return -1;
    st = fw_wild_anchor_stack(f);
    if (st >= 0)
        LOG_DBG("fd %d: wildcard listener: %s clients come over rdma_cm too", fd, g_stacks[st].name);
    return st;
}

/* sd on top of the file's sides (f->lock held). */
static void side_push(struct file *f, struct anchor_side *sd)
{
    sd->prev = f->side;
    __atomic_store_n(&f->side, sd, __ATOMIC_RELEASE);
}

void anchor_side_listen(int fd, struct file *f, int backlog)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    pthread_mutex_lock(&f->lock);
    struct anchor_side *sd = __atomic_load_n(&f->side, __ATOMIC_ACQUIRE);
    if (sd == NULL) {
        int st = side_stack(fd, f, &ss, &len);
        sd = st >= 0 ? side_open(fd, f, st, backlog, &ss, len) : NULL;
        if (sd != NULL)
            side_push(f, sd);
    } else if (sd->pid == fw_pid() && __atomic_load_n(&sd->state, __ATOMIC_ACQUIRE) != SIDE_HANDED) {
        MOD_ENTER();
        (void)mod_of(sd)->listen(sd->sock, backlog);   /* a new backlog, as the kernel's */
        sd->backlog = backlog;
        MOD_LEAVE();
    }
    pthread_mutex_unlock(&f->lock);
}

/* The first wait of this process on its side: FRESH -> USED. 1 when sd
 * is (now) in use, 0 when it was given up at a fork. */
static int claim(struct anchor_side *sd)
{
    int s = SIDE_FRESH;
    return __atomic_compare_exchange_n(&sd->state, &s, SIDE_USED, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) ||
           s == SIDE_USED;
}

/* This process's own side for listener fd when it may make one now (the
 * newest side is another process's or given up); NULL otherwise. */
static struct anchor_side *side_remake(int fd, struct file *f)
{
    struct anchor_side *made = NULL;
    pthread_mutex_lock(&f->lock);
    struct anchor_side *sd = __atomic_load_n(&f->side, __ATOMIC_ACQUIRE);
    pid_t me = fw_pid();
    int64_t now = now_ns();
    if (sd != NULL && sd->pid == me && __atomic_load_n(&sd->state, __ATOMIC_ACQUIRE) != SIDE_HANDED) {
        made = claim(sd) ? sd : NULL;               /* another thread made it meanwhile */
    } else if (sd != NULL && (sd->retry_pid != me || now - sd->retry_ns >= (int64_t)SIDE_RETRY_MS * 1000000)) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        sd->retry_pid = me;
        sd->retry_ns = now;
        if (LIBC(getsockname)(fd, (struct sockaddr *)&ss, &len) == 0)
            made = side_open(fd, f, sd->st, sd->backlog, &ss, len);
        if (made != NULL) {
            made->state = SIDE_USED;
            side_push(f, made);
            LOG_INF("fd %d: this process now takes %s clients of the listener over rdma_cm", fd,
                    g_stacks[made->st].name);
        }
    }
    pthread_mutex_unlock(&f->lock);
    return made;
}

static struct anchor_side *usable(const struct file *f)
{
    struct anchor_side *sd = f != NULL && f->kind == FILE_KSOCK ? __atomic_load_n(&f->side, __ATOMIC_ACQUIRE) : NULL;
    if (sd == NULL || sd->pid != fw_pid())
        return NULL;
    int s = __atomic_load_n(&sd->state, __ATOMIC_ACQUIRE);
    return s == SIDE_USED ? sd : NULL;
}

int anchor_side_held(const struct file *f)
{
    return usable(f) != NULL;
}

int anchor_side_usable(int fd, const struct file *f)
{
    struct anchor_side *sd = f != NULL && f->kind == FILE_KSOCK ? __atomic_load_n(&f->side, __ATOMIC_ACQUIRE) : NULL;
    if (sd == NULL)
        return 0;
    if (sd->pid == fw_pid() && claim(sd))
        return 1;
    /* the file's lock and sides are mutable state of a const file */
    return side_remake(fd, (struct file *)f) != NULL;
}

void anchor_side_fork_prepare(void)
{
    pthread_mutex_lock(&g_reg_lock);
    pid_t me = fw_pid();
    for (struct anchor_side *sd = g_reg; sd != NULL; sd = sd->reg_next) {
        int s = SIDE_FRESH;
        if (sd->pid != me ||
            !__atomic_compare_exchange_n(&sd->state, &s, SIDE_HANDED, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            continue;
        side_shut(sd);      /* the port's rdma_cm listener is free for the child */
        LOG_DBG("fork: the %s listener beside a TCP listener goes to the process that waits on it",
                mod_of(sd)->name);
    }
    pthread_mutex_unlock(&g_reg_lock);
}

void anchor_side_fork_lock(void)
{
    pthread_mutex_lock(&g_reg_lock);
}

void anchor_side_fork_unlock(void)
{
    /* in the child the forking thread, its only thread, took it */
    pthread_mutex_unlock(&g_reg_lock);
}

/* One round: the module's connection, else the kernel's (nonblocking). */
static int accept_round(int fd, struct file *f, struct anchor_side *sd, struct sockaddr *addr,
                        socklen_t *len, int flags)
{
    int r = sock_accept_module(sd->st, f, sd->sock, addr, len, flags & (SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
        return r;
    int fl = LIBC(fcntl)(fd, F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK))
        return LIBC(accept4)(fd, addr, len, flags);
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (LIBC(poll)(&p, 1, 0) != 1)
        return -2;                  /* nothing yet: wait */
    return LIBC(accept4)(fd, addr, len, flags);
}

/* The side's wait fd is readable: a connection request (or its
 * establishment) waits to be processed by the module. */
static int side_active(const struct anchor_side *sd)
{
    struct pollfd p = { .fd = sd->wfd, .events = POLLIN };
    return LIBC(poll)(&p, 1, 0) == 1;
}

int anchor_side_accept(int fd, struct file *f, struct sockaddr *addr, socklen_t *len, int flags)
{
    struct anchor_side *sd = usable(f);
    /* A nonblocking listener woken by the side (its wait fd is registered
     * raw in the app's epoll sets: readable on the connection request,
     * before the connection is established) waits for that connection,
     * bounded, rather than answer EAGAIN to a wake-up that promised one. */
    int64_t settle = side_active(sd) ? now_ns() + (int64_t)SIDE_SETTLE_MS * 1000000 : -1;
    for (;;) {
        int r = accept_round(fd, f, sd, addr, len, flags);
        if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK) && settle >= 0 && !deadline_passed(settle)) {
            struct pollfd p = { .fd = sd->wfd, .events = POLLIN };
            (void)LIBC(poll)(&p, 1, ms_left(settle));
            continue;
        }
        if (r != -2)
            return r;
        struct pollfd p = { .fd = sd->pfd, .events = POLLIN };
        uint64_t mark = sig_mark();
        if (LIBC(poll)(&p, 1, -1) < 0 &&
            !(errno == EINTR && sig_restarts(mark, sock_rcv_timed(fd))))
            return -1;                  /* EINTR without SA_RESTART, as a blocking accept */
    }
}

void anchor_side_epoll_ctl(int epfd, int op, const struct file *f, const struct epoll_event *ev)
{
    struct anchor_side *sd = usable(f);
    if (sd == NULL)
        return;
    struct epoll_event e = { 0 };
    if (ev != NULL) {
        e = *ev;
        e.events &= ~(uint32_t)EPOLLEXCLUSIVE;   /* not allowed on an epoll fd */
    }
    if (LIBC(epoll_ctl)(epfd, op, sd->wfd, ev != NULL ? &e : NULL) < 0 && errno != EEXIST && errno != ENOENT)
        LOG_DBG("epoll fd %d: the side listener's wait fd %d: %s", epfd, sd->wfd, strerror(errno));
}

int anchor_side_poll_fd(const struct file *f)
{
    struct anchor_side *sd = usable(f);
    return sd != NULL && sd->pfd >= 0 ? sd->pfd : -1;
}

short anchor_side_revents(int fd, const struct file *f, short events)
{
    struct pollfd p = { .fd = fd, .events = events };
    short rev = LIBC(poll)(&p, 1, 0) == 1 ? p.revents : 0;
    struct anchor_side *sd = usable(f);
    if (sd != NULL && (events & POLLIN) && !(rev & POLLIN)) {
        uint64_t gen = 0;
        MOD_ENTER();
        uint32_t m = mod_of(sd)->poll_events(sd->sock, &gen);
        MOD_LEAVE();
        rev |= (short)(m & POLLIN);
    }
    return rev;
}

void anchor_side_release(struct file *f)
{
    struct anchor_side *sd = f->side;
    f->side = NULL;
    while (sd != NULL) {
        struct anchor_side *prev = sd->prev;
        reg_remove(sd);
        side_close(sd);
        sd = prev;
    }
}
