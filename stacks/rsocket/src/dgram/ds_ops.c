/*
 * ds_ops.c - datagram rsockets: creation, names, options, readiness,
 * close. The sockets live in one arena mapped at the first of them, so
 * the module tells a datagram socket from a stream socket with a range
 * check (ds_is) and the stream engine's structures stay untouched.
 */
#include "ds_sock.h"
#include "rs_sock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define DS_ARENA_MAX 16384      /* datagram sockets per process */

uint8_t *ds_arena_lo, *ds_arena_hi;
/* arena free list; guarded by arena_lock */
static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dsock *arena;
static uint32_t arena_used;
static uint32_t *arena_free, arena_nfree;

static struct dsock *arena_get(void)
{
    struct dsock *d = NULL;
    pthread_mutex_lock(&arena_lock);
    if (!arena) {
        void *p = mmap(NULL, sizeof(struct dsock) * DS_ARENA_MAX, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        arena_free = calloc(DS_ARENA_MAX, sizeof(uint32_t));
        if (p != MAP_FAILED && arena_free) {
            arena = p;
            __atomic_store_n(&ds_arena_hi, (uint8_t *)(arena + DS_ARENA_MAX), __ATOMIC_RELEASE);
            __atomic_store_n(&ds_arena_lo, (uint8_t *)arena, __ATOMIC_RELEASE);
        }
    }
    if (arena && arena_nfree)
        d = &arena[arena_free[--arena_nfree]];
    else if (arena && arena_used < DS_ARENA_MAX)
        d = &arena[arena_used++];
    pthread_mutex_unlock(&arena_lock);
    if (d)
        memset(d, 0, sizeof(*d));
    else
        errno = ENOBUFS;
    return d;
}

static void arena_put(struct dsock *d)
{
    pthread_mutex_lock(&arena_lock);
    arena_free[arena_nfree++] = (uint32_t)(d - arena);
    pthread_mutex_unlock(&arena_lock);
}

/* tag: DS_SRC_UDP or DS_SRC_CM (a QP's channel carries the QP pointer) */
static int add_wait(struct dsock *d, int fd, uint64_t tag)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };
    return epoll_ctl(d->wait_fd, EPOLL_CTL_ADD, fd, &ev);
}

static int init_fds(struct dsock *d)
{
    d->udp_fd = socket(d->domain, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    d->wait_fd = epoll_create1(EPOLL_CLOEXEC);
    d->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    d->cm = rdma_create_event_channel();
    if (d->udp_fd < 0 || d->wait_fd < 0 || d->kick_fd < 0 || !d->cm)
        return -1;
    int fl = fcntl(d->cm->fd, F_GETFL);
    if (fl < 0 || fcntl(d->cm->fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return add_wait(d, d->udp_fd, DS_SRC_UDP) || add_wait(d, d->cm->fd, DS_SRC_CM) ? -1 : 0;
}

static int init_queues(struct dsock *d)
{
    d->rx_cap = 2 * d->rq_size + DS_UDP_SLOTS;
    d->rx = calloc(d->rx_cap, sizeof(*d->rx));
    d->udp_pool = malloc((size_t)DS_UDP_SLOTS * DS_SLOT);
    if (!d->rx || !d->udp_pool)
        return -1;
    for (uint32_t i = 0; i < DS_UDP_SLOTS; i++)
        d->udp_free[d->udp_nfree++] = i;
    return 0;
}

static void free_fds(struct dsock *d)
{
    if (d->cm)
        rdma_destroy_event_channel(d->cm);
    for (int *fd = &d->udp_fd; fd; fd = fd == &d->udp_fd ? &d->wait_fd
                                         : fd == &d->wait_fd ? &d->kick_fd : NULL)
        if (*fd >= 0)
            close(*fd);
}

int ds_usable(const struct dsock *d)
{
    if (d->fork_gen == __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED))
        return 0;
    errno = EOWNERDEAD;
    return -1;
}

/* In a fork child the verbs objects belong to the parent's device
 * context: only our own descriptors and memory are released there (the
 * QP and destination records are left, as the stream engine does). */
static void ds_free(struct dsock *d)
{
    if (ds_usable(d) == 0) {
        ds_dest_free_all(d);             /* AHs before the PDs they live in */
        while (d->qps) {
            struct ds_qp *q = d->qps;
            d->qps = q->next;
            ds_qp_destroy(q);
        }
    } else {
        d->cm = NULL;
    }
    free_fds(d);
    free(d->rx);
    free(d->udp_pool);
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
    arena_put(d);
}

int ds_socket(int domain, int type, int protocol, struct dsock **out)
{
    rs_global_init_once();               /* tunables, fork generation */
    if (domain != AF_INET && domain != AF_INET6) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    if ((type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != SOCK_DGRAM ||
        (protocol != 0 && protocol != IPPROTO_UDP)) {
        errno = EPROTONOSUPPORT;
        return -1;
    }
    struct dsock *d = arena_get();
    if (!d)
        return -1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&d->lock, NULL);
    d->domain = domain;
    d->nonblock = !!(type & SOCK_NONBLOCK);
    d->fork_gen = __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED);
    d->udp_fd = d->wait_fd = d->kick_fd = -1;
    d->rq_size = DS_RQ_DEFAULT;
    d->sq_size = DS_SQ_DEFAULT;
    if (init_fds(d) || init_queues(d)) {
        int e = errno ? errno : ENOMEM;
        ds_free(d);
        errno = e;
        return -1;
    }
    *out = d;
    return d->wait_fd;
}

static socklen_t fam_len(int domain)
{
    return domain == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

int ds_bind(struct dsock *d, const struct sockaddr *a, socklen_t l)
{
    pthread_mutex_lock(&d->lock);
    int r = bind(d->udp_fd, a, l);
    if (r == 0)
        d->bound = 1;
    int e = errno;
    pthread_mutex_unlock(&d->lock);
    errno = e;
    return r;
}

int ds_connect(struct dsock *d, const struct sockaddr *a, socklen_t l)
{
    if (ds_usable(d))
        return -1;
    if (!a || l < sizeof(sa_family_t)) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&d->lock);
    int r = connect(d->udp_fd, a, l);
    int e = errno;
    if (r == 0 && a->sa_family == AF_UNSPEC) {
        d->connected = 0;                /* dissolves the association, as UDP does */
        d->conn_dest = NULL;
    } else if (r == 0) {
        d->bound = 1;
        memset(&d->peer, 0, sizeof(d->peer));
        memcpy(&d->peer, a, fam_len(d->domain) < l ? fam_len(d->domain) : l);
        d->connected = 1;
        d->conn_dest = ds_dest_get(d, a);   /* NULL: resolved at the first send */
    }
    pthread_mutex_unlock(&d->lock);
    errno = e;
    return r;
}

int ds_close(struct dsock *d)
{
    if (ds_usable(d)) {
        ds_free(d);
        return 0;
    }
    pthread_mutex_lock(&d->lock);
    /* sends posted but not completed: give them a bounded moment */
    int64_t until = rs_now_ms() + 100;
    for (struct ds_qp *q = d->qps; q; q = q->next)
        while (q->nfree < q->sq && rs_now_ms() < until)
            ds_progress(d);
    pthread_mutex_unlock(&d->lock);
    ds_free(d);
    return 0;
}

int ds_name(struct dsock *d, int peer, struct sockaddr *a, socklen_t *l)
{
    return peer ? getpeername(d->udp_fd, a, l) : getsockname(d->udp_fd, a, l);
}

static int int_opt(const void *v, socklen_t l, int *out)
{
    if (!v || l < sizeof(int)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(out, v, sizeof(int));
    return 0;
}

static uint32_t slots_for(int bytes)
{
    long n = (long)bytes * 2 / DS_SLOT;     /* doubled, as the kernel and librdmacm store it */
    return n < 16 ? 16 : n > 4096 ? 4096 : (uint32_t)n;
}

/* Receive slots before the first QP exists (nothing is queued yet: the
 * first datagram makes the first QP): the ring grows with them. Lock held. */
static void resize_rx(struct dsock *d, uint32_t rq)
{
    uint32_t cap = 2 * rq + DS_UDP_SLOTS;
    struct ds_rx *rx = cap > d->rx_cap ? realloc(d->rx, cap * sizeof(*rx)) : d->rx;
    if (!rx)
        return;                          /* keeps the old size */
    d->rx = rx;
    d->rx_cap = cap > d->rx_cap ? cap : d->rx_cap;
    d->rx_head = 0;
    d->rq_size = rq;
}

int ds_setsockopt(struct dsock *d, int level, int name, const void *v, socklen_t l)
{
    int val;
    if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
        if (!v || l < sizeof(struct timeval)) {
            errno = EINVAL;
            return -1;
        }
        pthread_mutex_lock(&d->lock);
        memcpy(name == SO_RCVTIMEO ? &d->rcvtimeo : &d->sndtimeo, v, sizeof(struct timeval));
        pthread_mutex_unlock(&d->lock);
        return 0;
    }
    if (setsockopt(d->udp_fd, level, name, v, l))
        return -1;
    if (level == SOL_SOCKET && (name == SO_RCVBUF || name == SO_SNDBUF) &&
        int_opt(v, l, &val) == 0) {
        pthread_mutex_lock(&d->lock);
        if (!d->qps && name == SO_RCVBUF)
            resize_rx(d, slots_for(val));   /* only before the first QP */
        else if (!d->qps && name == SO_SNDBUF)
            d->sq_size = slots_for(val);
        pthread_mutex_unlock(&d->lock);
    }
    return 0;
}

int ds_getsockopt(struct dsock *d, int level, int name, void *v, socklen_t *l)
{
    if (level == SOL_SOCKET && (name == SO_RCVBUF || name == SO_SNDBUF)) {
        if (!v || !l || *l < sizeof(int)) {
            errno = EINVAL;
            return -1;
        }
        pthread_mutex_lock(&d->lock);
        int val = (int)((name == SO_RCVBUF ? d->rq_size : d->sq_size) * DS_SLOT);
        pthread_mutex_unlock(&d->lock);
        memcpy(v, &val, sizeof(val));
        *l = sizeof(int);
        return 0;
    }
    if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
        if (!v || !l || *l < sizeof(struct timeval)) {
            errno = EINVAL;
            return -1;
        }
        memcpy(v, name == SO_RCVTIMEO ? &d->rcvtimeo : &d->sndtimeo, sizeof(struct timeval));
        *l = sizeof(struct timeval);
        return 0;
    }
    return getsockopt(d->udp_fd, level, name, v, l);
}

int ds_set_nonblock(struct dsock *d, int on)
{
    pthread_mutex_lock(&d->lock);
    d->nonblock = !!on;
    pthread_mutex_unlock(&d->lock);
    return 0;
}

int ds_ioctl(struct dsock *d, unsigned long req, void *arg)
{
    if (req != FIONREAD) {
        errno = ENOTTY;
        return -1;
    }
    if (!arg) {
        errno = EFAULT;
        return -1;
    }
    if (ds_usable(d))
        return -1;
    pthread_mutex_lock(&d->lock);
    ds_progress(d);
    /* the size of the next datagram, as Linux UDP answers */
    *(int *)arg = d->rx_len ? (int)d->rx[d->rx_head].len : 0;
    pthread_mutex_unlock(&d->lock);
    return 0;
}

uint32_t ds_poll_events(struct dsock *d, uint64_t *gen)
{
    if (ds_usable(d)) {
        *gen = d->gen;
        return EPOLLERR;
    }
    pthread_mutex_lock(&d->lock);
    ds_progress(d);
    uint32_t m = 0;
    if (d->rx_len)
        m |= EPOLLIN;
    int can_send = 1;                     /* the UDP path always can */
    for (struct ds_qp *q = d->qps; q; q = q->next)
        can_send &= q->nfree > 0;
    if (can_send)
        m |= EPOLLOUT;
    if (d->err)
        m |= EPOLLERR;
    *gen = d->gen;
    d->gen_told = d->gen;
    pthread_mutex_unlock(&d->lock);
    return m;
}

void ds_set_cookie(struct dsock *d, void *cookie)
{
    pthread_mutex_lock(&d->lock);
    d->cookie = cookie;
    pthread_mutex_unlock(&d->lock);
}
