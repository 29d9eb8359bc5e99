/* shadow_ops.c - socket operations of the shadow module: each one is the
 * same operation on the private kernel socket, made with a raw syscall. */
#include "shadow.h"
#include "shadow_sys.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

/* Every event of kfd, edge-triggered: an edge is "something happened". */
#define SHADOW_WAIT_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET)
#define SHADOW_POLL_EVENTS (POLLIN | POLLOUT | POLLRDHUP | POLLPRI)

/* Wraps an open kernel socket; returns the wait fd, or -1/errno (kfd is
 * closed on failure). */
static int shadow_wrap(int kfd, nstack_sock **out)
{
    nstack_sock *s = calloc(1, sizeof(*s));
    int wfd = s ? sys_epoll_create1(EPOLL_CLOEXEC) : -1;
    if (!s)
        errno = ENOMEM;
    if (wfd >= 0) {
        struct epoll_event ev = { .events = SHADOW_WAIT_EVENTS };
        if (sys_epoll_ctl(wfd, EPOLL_CTL_ADD, kfd, &ev) == 0) {
            s->kfd = kfd;
            s->wfd = wfd;
            *out = s;
            shadow_count_socket();
            return wfd;
        }
    }
    int err = errno;
    if (wfd >= 0)
        sys_close(wfd);
    sys_close(kfd);
    free(s);
    errno = err;
    return -1;
}

int shadow_socket(int domain, int type, int protocol, nstack_sock **out)
{
    if ((type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != SOCK_STREAM) {
        errno = EPROTONOSUPPORT;   /* the shadow carries TCP only */
        return -1;
    }
    /* Private fd: never inherited by exec'd programs. */
    int kfd = sys_socket(domain, type | SOCK_CLOEXEC, protocol);
    return kfd < 0 ? -1 : shadow_wrap(kfd, out);
}

void shadow_set_cookie(nstack_sock *s, void *cookie) { s->cookie = cookie; }

/* The port of an inet address, or NULL. */
static in_port_t *port_of(struct sockaddr_storage *ss, socklen_t len)
{
    if (ss->ss_family == AF_INET && len >= sizeof(struct sockaddr_in))
        return &((struct sockaddr_in *)ss)->sin_port;
    if (ss->ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
        return &((struct sockaddr_in6 *)ss)->sin6_port;
    return NULL;
}

/* Copies addr into *ss with its port moved into (dir 1) or out of (dir -1)
 * the shadow port space; 1 when a port was moved. Port 0 stays 0. */
static int shift_port(struct sockaddr_storage *ss, const struct sockaddr *addr, socklen_t len, int dir)
{
    if (addr == NULL || len > sizeof(*ss))
        return 0;
    memcpy(ss, addr, len);
    in_port_t *p = port_of(ss, len);
    if (shadow_port_offset == 0 || p == NULL || *p == 0)
        return 0;
    *p = htons((in_port_t)(ntohs(*p) + dir * shadow_port_offset));
    return 1;
}

int shadow_bind(nstack_sock *s, const struct sockaddr *addr, socklen_t len)
{
    struct sockaddr_storage ss;
    if (!shift_port(&ss, addr, len, 1))
        return sys_bind(s->kfd, addr, len);
    int r = sys_bind(s->kfd, (struct sockaddr *)&ss, len);
    if (r == 0)
        s->local_shifted = 1;
    return r;
}

int shadow_listen(nstack_sock *s, int backlog) { return sys_listen(s->kfd, backlog); }

int shadow_accept(nstack_sock *s, struct sockaddr *addr, socklen_t *len, int flags,
                  nstack_sock **out)
{
    int kfd = sys_accept4(s->kfd, addr, len, (flags & SOCK_NONBLOCK) | SOCK_CLOEXEC);
    int wfd = kfd < 0 ? -1 : shadow_wrap(kfd, out);
    if (wfd >= 0)
        (*out)->local_shifted = s->local_shifted;   /* it shares the listener's port */
    return wfd;
}

int shadow_connect(nstack_sock *s, const struct sockaddr *addr, socklen_t len)
{
    struct sockaddr_storage ss;
    if (!shift_port(&ss, addr, len, 1))
        return sys_connect(s->kfd, addr, len);
    s->peer_shifted = 1;
    return sys_connect(s->kfd, (struct sockaddr *)&ss, len);
}

int shadow_shutdown(nstack_sock *s, int how) { return sys_shutdown(s->kfd, how); }

int shadow_close(nstack_sock *s)
{
    sys_close(s->wfd);
    int r = 0;
    if (s->anchor && s->tfd >= 0)
        sys_close(s->tfd);      /* kfd is the dispatcher's */
    else
        r = sys_close(s->kfd);
    free(s);
    return r;
}

/* An anchored socket carries data only once upgraded. */
#define ANCHOR_GATE(s, flags)                                                   \
    do {                                                                         \
        if ((s)->anchor && shadow_anchor_gate((s), (flags)) < 0)                 \
            return -1;                                                           \
    } while (0)

ssize_t shadow_send(nstack_sock *s, const void *buf, size_t len, int flags)
{
    ANCHOR_GATE(s, flags);
    ssize_t n = sys_sendto(s->kfd, buf, len, flags);
    if (n > 0)
        shadow_count_sent((size_t)n);
    return n;
}

ssize_t shadow_recv(nstack_sock *s, void *buf, size_t len, int flags)
{
    ANCHOR_GATE(s, flags);
    ssize_t n = sys_recvfrom(s->kfd, buf, len, flags);
    if (n > 0 && !(flags & MSG_PEEK))
        shadow_count_received((size_t)n);
    return n;
}

ssize_t shadow_sendmsg(nstack_sock *s, const struct msghdr *msg, int flags)
{
    ANCHOR_GATE(s, flags);
    ssize_t n = sys_sendmsg(s->kfd, msg, flags);
    if (n > 0)
        shadow_count_sent((size_t)n);
    return n;
}

ssize_t shadow_recvmsg(nstack_sock *s, struct msghdr *msg, int flags)
{
    ANCHOR_GATE(s, flags);
    ssize_t n = sys_recvmsg(s->kfd, msg, flags);
    if (n > 0 && !(flags & MSG_PEEK))
        shadow_count_received((size_t)n);
    return n;
}

/* A name the kernel reported, moved back out of the shadow port space. */
static void unshift_name(int shifted, struct sockaddr *addr, socklen_t len)
{
    struct sockaddr_storage ss;
    if (shifted && shift_port(&ss, addr, len, -1))
        memcpy(addr, &ss, len);
}

int shadow_getsockname(nstack_sock *s, struct sockaddr *addr, socklen_t *len)
{
    socklen_t cap = *len;
    int r = sys_getsockname(s->kfd, addr, len);
    if (r == 0)
        unshift_name(s->local_shifted, addr, *len < cap ? *len : cap);
    return r;
}

int shadow_getpeername(nstack_sock *s, struct sockaddr *addr, socklen_t *len)
{
    socklen_t cap = *len;
    int r = sys_getpeername(s->kfd, addr, len);
    if (r == 0)
        unshift_name(s->peer_shifted, addr, *len < cap ? *len : cap);
    return r;
}

int shadow_getsockopt(nstack_sock *s, int level, int name, void *val, socklen_t *len)
{
    return sys_getsockopt(s->kfd, level, name, val, len);
}

int shadow_setsockopt(nstack_sock *s, int level, int name, const void *val, socklen_t len)
{
    return sys_setsockopt(s->kfd, level, name, val, len);
}

int shadow_set_nonblock(nstack_sock *s, int on)
{
    s->nonblock = on;
    int fl = sys_fcntl(s->kfd, F_GETFL, 0);
    if (fl < 0)
        return -1;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return sys_fcntl(s->kfd, F_SETFL, fl);
}

int shadow_ioctl(nstack_sock *s, unsigned long request, void *arg)
{
    if (s->anchor && request == FIONREAD) {
        shadow_anchor_step(s);
        return shadow_anchor_inq(s, arg);
    }
    return sys_ioctl(s->kfd, request, arg);
}

/* Contract: drain the wait fd first (re-arm: any later event makes a new
 * edge), then compute the true mask, so no change falls between the two. */
uint32_t shadow_poll_events(nstack_sock *s, uint64_t *gen)
{
    struct epoll_event evs[4];
    if (sys_epoll_drain(s->wfd, evs, 4) > 0)
        atomic_fetch_add_explicit(&s->gen, 1, memory_order_relaxed);
    struct pollfd p = { .fd = s->kfd, .events = SHADOW_POLL_EVENTS };
    uint32_t mask = 0;
    if (sys_ppoll0(&p, 1) > 0)
        mask = (uint32_t)p.revents;   /* POLL* and EPOLL* bits are equal on Linux */
    mask &= EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLHUP | EPOLLERR;
    if (s->anchor) {
        shadow_anchor_step(s);
        mask = shadow_anchor_events(s, mask);
    }
    *gen = atomic_load_explicit(&s->gen, memory_order_relaxed);
    return mask;
}
