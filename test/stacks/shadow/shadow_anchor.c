/* shadow_anchor.c - TCP-anchored connections in the shadow module (module
 * ABI 1.2: anchor_hello, anchor; doc/module-interface.md).
 *
 * The agreement is the one a real module can use without a foreign byte
 * ever reaching a peer that does not run the framework: each end sends one
 * TCP urgent byte (MSG_OOB) as its hello. A receiver that does not ask for
 * urgent data never sees it in its stream (Linux skips it unless
 * SO_OOBINLINE). An end is upgraded once its hello went out and the peer's
 * arrived; it stays on TCP (NSTACK_EV_FALLBACK / ENOPROTOOPT) when in-band
 * bytes or the end of the stream arrive with no hello before them (the
 * peer's hello precedes everything it sends), or when nothing arrived
 * within SHADOW_ANCHOR_WAIT_MS (default 3000; a peer that waits for us to
 * speak first). Once upgraded the shadow carries the data over the same TCP
 * connection (it is a test module: what is checked is that the dispatcher
 * hands every call to it).
 *
 * SHADOW_ANCHOR (read at registration): unset/"on" - as above; "off" - the
 * module has no anchor ops (direct module sockets); "decline" - anchor()
 * fails with ENOPROTOOPT and no hello is sent; "fallback" - no hello is
 * sent and anchor() gives a socket that reports NSTACK_EV_FALLBACK at once. */
#include "shadow.h"
#include "shadow_sys.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>

#define SHADOW_HELLO ((char)0xA7)
#define SHADOW_WAIT_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET)

/* Set once at registration; read-only afterwards. */
int shadow_anchor_mode = SHADOW_ANCHOR_ON;
static int g_wait_ms = 3000;

void shadow_anchor_config(void)
{
    const char *v = getenv("SHADOW_ANCHOR");
    if (v != NULL && strcmp(v, "off") == 0)
        shadow_anchor_mode = SHADOW_ANCHOR_OFF;
    else if (v != NULL && strcmp(v, "decline") == 0)
        shadow_anchor_mode = SHADOW_ANCHOR_DECLINE;
    else if (v != NULL && strcmp(v, "fallback") == 0)
        shadow_anchor_mode = SHADOW_ANCHOR_FALLBACK;
    const char *w = getenv("SHADOW_ANCHOR_WAIT_MS");
    if (w != NULL && atoi(w) > 0)
        g_wait_ms = atoi(w);
}

int shadow_anchor_hello(int kfd, int role)
{
    /* no decline (NSTACK_ANCHOR_DECLINE) in the shadow's protocol */
    if (role != NSTACK_ADOPT_ACTIVE && role != NSTACK_ADOPT_PASSIVE) {
        errno = EINVAL;
        return -1;
    }
    if (shadow_anchor_mode != SHADOW_ANCHOR_ON) {
        errno = EOPNOTSUPP;
        return -1;
    }
    char h = SHADOW_HELLO;
    return sys_sendto(kfd, &h, 1, MSG_OOB | MSG_DONTWAIT | MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* The module's own fds of an anchored socket live high, as the
 * dispatcher's do (fd_high.h): the app's range holds only its sockets, so
 * an fd number it closed stays closed until it opens something itself. */
static int fd_high(int fd)
{
    struct rlimit rl;
    long base = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (long)rl.rlim_cur / 2 : 256;
    if (fd < 0 || base < 256 || fd >= base)
        return fd;
    int h = sys_fcntl(fd, F_DUPFD_CLOEXEC, base);
    if (h < 0)
        return fd;
    sys_close(fd);
    return h;
}

/* The deadline of the agreement as a timer in the wait fd. */
static int arm_deadline(nstack_sock *s)
{
    s->tfd = fd_high((int)syscall(SYS_timerfd_create, CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (s->tfd < 0)
        return -1;
    struct itimerspec its = { .it_value = { g_wait_ms / 1000, (long)(g_wait_ms % 1000) * 1000000 } };
    struct epoll_event ev = { .events = EPOLLIN };
    if (syscall(SYS_timerfd_settime, s->tfd, 0, &its, NULL) < 0 ||
        sys_epoll_ctl(s->wfd, EPOLL_CTL_ADD, s->tfd, &ev) < 0)
        return -1;
    return 0;
}

static int timer_expired(nstack_sock *s)
{
    uint64_t n = 0;
    return s->tfd >= 0 && syscall(SYS_read, s->tfd, &n, sizeof(n)) == (long)sizeof(n) && n > 0;
}

int shadow_anchor(int kfd, int role, int flags, nstack_sock **out)
{
    (void)role;
    if (shadow_anchor_mode == SHADOW_ANCHOR_DECLINE) {
        errno = ENOPROTOOPT;
        return -1;
    }
    nstack_sock *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        errno = ENOMEM;
        return -1;
    }
    s->kfd = kfd;
    s->tfd = -1;
    s->anchor = 1;
    s->nonblock = (flags & NSTACK_ADOPT_NONBLOCK) != 0;
    s->hello_out = (flags & NSTACK_ANCHOR_HELLO_SENT) != 0;
    s->astate = shadow_anchor_mode == SHADOW_ANCHOR_FALLBACK ? SHADOW_AS_FALLBACK : SHADOW_AS_UPGRADING;
    s->wfd = fd_high(sys_epoll_create1(EPOLL_CLOEXEC));
    struct epoll_event ev = { .events = SHADOW_WAIT_EVENTS };
    if (s->wfd < 0 || sys_epoll_ctl(s->wfd, EPOLL_CTL_ADD, kfd, &ev) < 0 || arm_deadline(s) < 0) {
        int err = errno;
        if (s->wfd >= 0)
            sys_close(s->wfd);
        if (s->tfd >= 0)
            sys_close(s->tfd);
        free(s);
        errno = err;
        return -1;
    }
    shadow_count_socket();
    shadow_anchor_step(s);
    *out = s;
    return s->wfd;
}

/* In-band bytes or the end of the stream ahead of us (the peer's urgent
 * byte, read or not, is skipped by the peek). */
static int inband_ahead(nstack_sock *s)
{
    char c;
    ssize_t r = sys_recvfrom(s->kfd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

/* The agreement ends: the deadline must not wake anyone later. */
static void settle(nstack_sock *s, int state)
{
    s->astate = state;
    if (s->tfd >= 0) {
        (void)sys_epoll_ctl(s->wfd, EPOLL_CTL_DEL, s->tfd, NULL);
        sys_close(s->tfd);      /* one fd less for the connection's life */
        s->tfd = -1;
    }
    atomic_fetch_add_explicit(&s->gen, 1, memory_order_relaxed);
}

void shadow_anchor_step(nstack_sock *s)
{
    if (s->astate != SHADOW_AS_UPGRADING)
        return;
    /* A failed or unfinished connect: nothing may touch the socket (a
     * send or recv would consume the error the app reads with SO_ERROR). */
    struct pollfd p = { .fd = s->kfd, .events = POLLOUT };
    if (sys_ppoll0(&p, 1) < 0 || (p.revents & (POLLERR | POLLHUP))) {
        settle(s, SHADOW_AS_FALLBACK);
        return;
    }
    if (!(p.revents & POLLOUT))
        return;                /* still connecting: the wait fd fires when it ends */
    if (!s->hello_out) {
        char h = SHADOW_HELLO;
        s->hello_out = sys_sendto(s->kfd, &h, 1, MSG_OOB | MSG_DONTWAIT | MSG_NOSIGNAL) == 1;
    }
    /* Peek first: the peer's hello precedes its bytes, so when bytes are
     * there its hello has arrived too and the OOB read below sees it. */
    int ahead = inband_ahead(s);
    char b;
    if (!s->peer_hello && sys_recvfrom(s->kfd, &b, 1, MSG_OOB | MSG_DONTWAIT) == 1 && b == SHADOW_HELLO)
        s->peer_hello = 1;
    if (s->peer_hello && s->hello_out)
        settle(s, SHADOW_AS_UP);
    else if (!s->peer_hello && (ahead || timer_expired(s)))
        settle(s, SHADOW_AS_FALLBACK);
}

int shadow_anchor_gate(nstack_sock *s, int flags)
{
    for (int rounds = 0; rounds < 100000; rounds++) {
        shadow_anchor_step(s);
        if (s->astate == SHADOW_AS_UP)
            return 0;
        if (s->astate == SHADOW_AS_FALLBACK) {
            errno = ENOPROTOOPT;
            return -1;
        }
        if (s->nonblock || (flags & MSG_DONTWAIT)) {
            errno = EAGAIN;
            return -1;
        }
        /* Blocking: wait for progress (the deadline timer is in the wait
         * fd, so this ends), then tell waiters we drained a wake-up. */
        struct pollfd p = { .fd = s->wfd, .events = POLLIN };
        (void)syscall(SYS_ppoll, &p, 1, NULL, NULL, _NSIG / 8);
        struct epoll_event evs[4];
        (void)sys_epoll_drain(s->wfd, evs, 4);
        if (shadow_fw != NULL && shadow_fw->notify != NULL && s->cookie != NULL)
            shadow_fw->notify(s->cookie);
    }
    errno = ETIMEDOUT;
    return -1;
}

uint32_t shadow_anchor_events(nstack_sock *s, uint32_t mask)
{
    if (s->astate == SHADOW_AS_FALLBACK)
        return NSTACK_EV_FALLBACK;
    if (s->astate != SHADOW_AS_UP)
        return 0;              /* upgrading: no readiness; the wait fd fires on progress */
    /* The peer's urgent byte may still sit in the queue, which the kernel
     * counts as readable although a read skips it. */
    if ((mask & EPOLLIN) && !(mask & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !inband_ahead(s))
        mask &= ~(uint32_t)EPOLLIN;
    return mask & ~(uint32_t)EPOLLPRI;
}

int shadow_anchor_inq(nstack_sock *s, int *avail)
{
    int mark = 0;
    if (sys_ioctl(s->kfd, SIOCATMARK, &mark) < 0)
        return -1;
    if (!mark)
        return sys_ioctl(s->kfd, FIONREAD, avail);
    /* At the peer's urgent byte the kernel's FIONREAD says 0 whatever
     * follows it; a truncating peek counts what a read would return. */
    ssize_t n = sys_recvfrom(s->kfd, NULL, 1 << 30, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    *avail = n > 0 ? (int)n : 0;
    return 0;
}
