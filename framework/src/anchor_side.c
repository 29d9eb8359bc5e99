/* anchor_side.c - see anchor_side.h.
 *
 * The side is made once, at the first listen(), and fixed afterwards
 * (published with a release store, read lock-free); freed with the file.
 * pfd, a private epoll fd over the kernel listener and the side's wait fd,
 * stands in for the listener in poll/select. The module socket is
 * nonblocking: accept() asks it first, then the kernel, and a blocking
 * listener waits on pfd between rounds. */
#include "anchor_side.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nstack/nstack_sigrestart.h>

#include "fd_high.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"
#include "module_load.h"
#include "sock.h"
#include "stats.h"
#include "timeutil.h"

/* How long a nonblocking accept woken by the side waits for the
 * connection's establishment (a few ms on softrdma). */
#define SIDE_SETTLE_MS 200

struct anchor_side {
    int st;
    nstack_sock *sock;
    int wfd;                  /* the module socket's wait fd */
    int pfd;                  /* epoll over the kernel listener and wfd */
    pid_t pid;                /* the process that made it */
};

static const struct nstack_module *mod_of(const struct anchor_side *sd)
{
    return g_stacks[sd->st].mod;
}

static void side_close(struct anchor_side *sd)
{
    MOD_ENTER();
    mod_of(sd)->close(sd->sock);
    MOD_LEAVE();
    if (sd->pfd >= 0)
        LIBC(close)(sd->pfd);
    free(sd);
}

/* The module listener on the kernel listener's address; NULL when it
 * cannot be made (logged: plain rsockets clients cannot connect then). */
static struct anchor_side *side_open(int fd, const struct file *f, int st, int backlog)
{
    const struct nstack_module *m = g_stacks[st].mod;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct anchor_side *sd = calloc(1, sizeof(*sd));
    if (sd == NULL || LIBC(getsockname)(fd, (struct sockaddr *)&ss, &len) < 0) {
        free(sd);
        return NULL;
    }
    sd->st = st;
    sd->pid = getpid();
    sd->pfd = -1;
    MOD_ENTER();
    sd->wfd = m->socket(f->domain, SOCK_STREAM | SOCK_NONBLOCK, 0, &sd->sock);
    int r = sd->wfd < 0 ? -1 : m->bind(sd->sock, (struct sockaddr *)&ss, len);
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
    if (sd == NULL && err == EADDRINUSE)      /* a module on the kernel's own ports (shadow) */
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
    return sd;
}

void anchor_side_listen(int fd, struct file *f, int backlog)
{
    int st = __atomic_load_n(&f->defer_stack, __ATOMIC_ACQUIRE) - 1;
    if (st < 0 || !__atomic_load_n(&f->defer_anchor, __ATOMIC_ACQUIRE) || f->type != SOCK_STREAM)
        return;
    pthread_mutex_lock(&f->lock);
    struct anchor_side *sd = __atomic_load_n(&f->side, __ATOMIC_ACQUIRE);
    if (sd == NULL) {
        sd = side_open(fd, f, st, backlog);
        __atomic_store_n(&f->side, sd, __ATOMIC_RELEASE);
        if (sd != NULL)
            LOG_DBG("fd %d: %s listens beside the TCP listener (wait fd %d)", fd, g_stacks[st].name, sd->wfd);
    } else if (sd->pid == getpid()) {
        MOD_ENTER();
        (void)mod_of(sd)->listen(sd->sock, backlog);   /* a new backlog, as the kernel's */
        MOD_LEAVE();
    }
    pthread_mutex_unlock(&f->lock);
}

static struct anchor_side *usable(const struct file *f)
{
    struct anchor_side *sd = f != NULL && f->kind == FILE_KSOCK ? __atomic_load_n(&f->side, __ATOMIC_ACQUIRE) : NULL;
    return sd != NULL && sd->pid == getpid() ? sd : NULL;
}

int anchor_side_usable(const struct file *f)
{
    return usable(f) != NULL;
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
        if (LIBC(poll)(&p, 1, -1) < 0 &&
            !(errno == EINTR && nstack_intr_restarts(sock_rcv_timed(fd))))
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
    if (sd != NULL)
        side_close(sd);
}
