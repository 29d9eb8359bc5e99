/*
 * rs_wait.c - blocking inside the engine, shared by every thread blocked
 * on one socket (a blocking send in one thread and a blocking recv in
 * another, accept while another thread answers connection requests).
 *
 * Whoever reads the completion or CM channel consumes the event, so a
 * second thread sleeping in poll() on the same wait fd would never see it.
 * Instead, one blocked thread at a time (the poller) sleeps in poll() on
 * the wait fd plus a per-socket kick eventfd; the others sleep on
 * wake_cond. Every state change goes through rs_event() with the lock
 * held, which broadcasts wake_cond and kicks a sleeping poller, whichever
 * thread (or poll_events) did the work; threads sleeping in rpoll() on
 * the socket are kicked the same way (rpoll_sleepers). Waiters then
 * re-check their own condition. Bounded: nothing is woken without a state change or the wait
 * fd turning readable, and no timer runs.
 *
 * Locking: all the fields used here are in struct rsock, under its lock.
 */
#include "rs_sock.h"

#include "rs_intr.h"

#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define RS_KICKLESS_SLICE_MS 10   /* a poller without a kick fd re-checks this often */

int rs_wake_init(struct rsock *s)
{
    pthread_condattr_t a;
    if (pthread_condattr_init(&a))
        return -1;
    /* deadlines are CLOCK_MONOTONIC (rs_now_ms) */
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    int r = pthread_cond_init(&s->wake_cond, &a);
    pthread_condattr_destroy(&a);
    if (r) {
        errno = r;
        return -1;
    }
    /* made once the socket is known to be blocking (rs_kick_for_mode) or
     * at its first wait (rs_kick_ensure): an event loop that never blocks
     * inside the engine never pays a descriptor for it */
    s->kick_fd = -1;
    return 0;
}

/* The lowest descriptor number of the dispatcher's high range (the rule of
 * framework/src/core/fd_high.c: half the limit, 256..65536): a kick fd made in
 * the middle of an application's recv must not take a number the
 * application is about to get from socket() or sized its tables for. */
int rs_high_fd_base(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 256;
    rlim_t b = rl.rlim_cur == RLIM_INFINITY ? 65536 : rl.rlim_cur / 2;
    return b < 256 ? 256 : b > 65536 ? 65536 : (int)b;
}

/* The kick eventfd, made at the first need (lock held). Out of descriptors
 * (-1, EMFILE/ENFILE) the waits still work, in bounded slices
 * (RS_KICKLESS_SLICE_MS) instead of being kicked: a descriptor the process
 * cannot get never fails an established connection. */
int rs_kick_ensure(struct rsock *s)
{
    if (s->kick_fd >= 0)
        return 0;
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -1;
    int base = rs_high_fd_base();
    int high = fd < base ? fcntl(fd, F_DUPFD_CLOEXEC, base) : -1;
    if (high >= 0) {
        close(fd);
        fd = high;
    }
    s->kick_fd = fd;
    return 0;
}

/* After the socket's blocking mode was set (lock held, or not shared yet):
 * a blocking socket's calls wait inside the engine, so it gets its kick
 * fd at once and holds the same descriptors for its whole life, as the
 * application would expect of a socket; a nonblocking one (an event loop)
 * only if it ever waits. Out of descriptors here is not an error: the
 * first wait tries again (rs_kick_ensure). */
void rs_kick_for_mode(struct rsock *s)
{
    int err = errno;
    if (!s->nonblock)
        rs_kick_ensure(s);
    errno = err;
}

void rs_wake_destroy(struct rsock *s)
{
    if (s->kick_fd >= 0)
        close(s->kick_fd);
    s->kick_fd = -1;
    pthread_cond_destroy(&s->wake_cond);
}

/* Deadline for a blocking call: 0 = do not wait, -1 = forever. */
int64_t rs_deadline(const struct timeval *tv, int nonblock)
{
    if (nonblock)
        return 0;
    if (!tv || (tv->tv_sec == 0 && tv->tv_usec == 0))
        return -1;
    return rs_now_ms() + (int64_t)tv->tv_sec * 1000 + tv->tv_usec / 1000 + 1;
}

/* The socket's state changed (lock held): wake every thread blocked on it. */
void rs_event(struct rsock *s)
{
    s->gen++;
    if (s->cond_waiters)
        pthread_cond_broadcast(&s->wake_cond);
    if ((s->poller_asleep || s->rpoll_sleepers) && !s->kick_pending && s->kick_fd >= 0) {
        uint64_t one = 1;
        if (write(s->kick_fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
            s->kick_pending = 1;
    }
}

/*
 * Read the kick once nobody sleeps on it any more (lock held). Draining
 * while another thread still polls it could take its wake-up away: a
 * woken poll() that re-checks its fds and finds none ready sleeps again.
 */
void rs_kick_drain(struct rsock *s)
{
    if (!s->kick_pending || s->poller_asleep || s->rpoll_sleepers)
        return;
    uint64_t v;
    if (read(s->kick_fd, &v, sizeof(v)) < 0)
        v = 0;            /* nonblocking: nothing to drain */
    s->kick_pending = 0;
}

/* Milliseconds left until the deadline for poll(); -1 = forever. */
int rs_poll_timeout(int64_t deadline_ms)
{
    if (deadline_ms < 0)
        return -1;
    int64_t left = deadline_ms - rs_now_ms();
    if (left <= 0)
        return 0;
    return left > 1000000 ? 1000000 : (int)left;
}

/* Another thread polls the wait fd: sleep until any state change, until
 * that poller leaves (then this thread may poll), or the deadline. */
static int wait_on_cond(struct rsock *s, int64_t deadline_ms)
{
    uint64_t gen = s->gen;
    int r = 0;

    s->cond_waiters++;
    while (s->poller_busy && s->gen == gen && r == 0) {
        if (deadline_ms < 0) {
            r = pthread_cond_wait(&s->wake_cond, &s->lock);
        } else {
            struct timespec ts = { .tv_sec = deadline_ms / 1000,
                                   .tv_nsec = (deadline_ms % 1000) * 1000000L };
            r = pthread_cond_timedwait(&s->wake_cond, &s->lock, &ts);
        }
    }
    s->cond_waiters--;
    if (r == ETIMEDOUT) {
        errno = EAGAIN;
        return -1;
    }
    return 0;
}

/* The fds this poller sleeps on: a connected socket's sources themselves,
 * so the wake-up says which one has something (no read that fails with
 * EAGAIN), or the wait fd for other states; then the kick fd. */
static int poll_set(struct rsock *s, struct pollfd pfd[6])
{
    int n = 0;

    if (rs_sources_known(s)) {
        if (s->comp_chan)
            pfd[n++] = (struct pollfd){ .fd = s->comp_chan->fd, .events = POLLIN };
        if (s->cm_chan)
            pfd[n++] = (struct pollfd){ .fd = s->cm_chan->fd, .events = POLLIN };
        if (s->timer_fd >= 0)
            pfd[n++] = (struct pollfd){ .fd = s->timer_fd, .events = POLLIN };
        if (s->anchor_fd >= 0)
            pfd[n++] = (struct pollfd){ .fd = s->anchor_fd, .events = (short)s->anchor_ev };
    } else {
        pfd[n++] = (struct pollfd){ .fd = s->wait_fd, .events = POLLIN };
    }
    if (s->kick_fd >= 0)
        pfd[n++] = (struct pollfd){ .fd = s->kick_fd, .events = POLLIN };
    return n;
}

/* This thread is the poller: sleep in poll() with the lock dropped.
 * Returns the ready sources (RS_SRC_*), or -1 (errno set); *mark: the
 * signal mark taken before the sleep (rs_intr.h). */
static int wait_on_fd(struct rsock *s, int timeout, uint64_t *mark)
{
    struct pollfd pfd[6];
    if (rs_kick_ensure(s) && (timeout < 0 || timeout > RS_KICKLESS_SLICE_MS))
        timeout = RS_KICKLESS_SLICE_MS;
    int nfds = poll_set(s, pfd);
    int known = rs_sources_known(s);
    s->poller_busy = s->poller_asleep = 1;
    pthread_mutex_unlock(&s->lock);
    *mark = rs_intr_mark();
    int n = poll(pfd, (nfds_t)nfds, timeout);
    int saved = errno;
    pthread_mutex_lock(&s->lock);
    s->poller_asleep = 0;
    rs_kick_drain(s);
    s->poller_busy = 0;
    /* a thread still blocked may now take over the poll */
    if (s->cond_waiters)
        pthread_cond_broadcast(&s->wake_cond);
    errno = saved;
    if (n < 0)
        return -1;
    unsigned src = 0;
    for (int i = 0; i < nfds && known; i++)
        if (pfd[i].revents && pfd[i].fd != s->kick_fd)
            src |= rs_source_of(s, pfd[i].fd);
    /* The state may have changed while the lock was dropped (another
     * thread's call, a close): then what was polled is not the whole set. */
    return known && rs_sources_known(s) ? (int)src : (int)RS_SRC_ALL;
}

/*
 * rsockets' polling_time (RS_POLLING_TIME, default 10 us): a connected
 * socket's poller polls its CQ that long before it sleeps. In a request /
 * reply exchange the answer usually comes within a few microseconds, and
 * catching it here saves the sleep and the wake-up, which cost more than
 * the whole transfer (a wake-up across CPUs is the largest part of a
 * small message's latency). Bounded by the time, and skipped while the
 * spins keep missing (spin_misses): a socket that waits long each time
 * (an idle connection, a slow peer, a loaded machine where the peer needs
 * this CPU) stops burning it and sleeps at once; a hit restores it. The
 * lock stays held: this is the only thread allowed to poll (poller), and
 * other threads of the socket wait at most polling_time.
 */
#define RS_SPIN_MISSES_MAX 8
#define RS_SPIN_CHECK_EVERY 16     /* CQ polls between clock reads */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* A receiver fed without pause finds every wait's answer while it spins
 * and never sleeps in poll() on its other sources: the anchor (a peer's
 * request to return to TCP before it forks or execs, which it waits for
 * 2 s), CM events, the keepalive timer. So after a hit they are looked at
 * too, at most every RS_SPIN_SOURCES_NS (one epoll_wait, timeout 0). */
#define RS_SPIN_SOURCES_NS (2 * 1000000)

static void look_at_other_sources(struct rsock *s)
{
    int64_t t = rs_now_ns();
    if (t - s->spin_sources_ns < RS_SPIN_SOURCES_NS)
        return;
    s->spin_sources_ns = t;
    rs_progress(s, 0);
}

/* The spin adapts per socket, from polling_time up, by the rule the
 * dispatcher's follows per thread (nstack_spin.h). */
static int spin_before_sleep(struct rsock *s)
{
    uint32_t us = rs_tun.polling_time_us;
    nstack_spin_start(&s->spin_learn);
    if (us == 0 || s->state != RS_CONNECTED || !s->cq || s->fork_gen != rs_fork_gen)
        return 0;
    if (s->spin_misses >= RS_SPIN_MISSES_MAX) {
        if (++s->spin_skipped < 64)
            return 0;                 /* try again now and then */
        s->spin_skipped = 0;
    }
    uint64_t budget = nstack_spin_budget(&s->spin_learn, (uint64_t)us * 1000);
    int64_t start = rs_now_ns(), end = start + (int64_t)budget;
    do {
        for (int i = 0; i < RS_SPIN_CHECK_EVERY; i++) {
            if (rs_spin_cq(s)) {
                s->spin_misses = 0;
                nstack_spin_hit(&s->spin_learn, start, rs_now_ns());
                look_at_other_sources(s);
                return 1;
            }
            cpu_relax();
        }
    } while (rs_now_ns() < end);
    if (s->spin_misses < RS_SPIN_MISSES_MAX)
        s->spin_misses++;
    nstack_spin_missed(&s->spin_learn, start);
    return 0;
}

/* After the sleep that followed a spin that found nothing: src, the
 * sources that woke it (RS_SRC_*, -1 none). Only the CQ's news says how
 * long the peer takes; a timer or the anchor says nothing of it. */
static void spin_woke(struct rsock *s, int src)
{
    if (nstack_spin_woke(&s->spin_learn, src > 0 && (src & RS_SRC_CQ), rs_now_ns()))
        s->spin_misses = 0;
}

/*
 * Block until the socket's state may have changed or the deadline passes,
 * then do the pending work. The caller re-checks its condition. Returns 0,
 * or -1 with EAGAIN at the deadline (as a socket timeout does) or EINTR.
 * A signal handler interrupting the sleep ends the call with EINTR when the
 * call has a socket timeout (timed) or the signal's handler lacks
 * SA_RESTART, as the kernel does (signal(7); which signal it was: rs_intr.h);
 * otherwise it is a wake-up like any other and the caller, which consumed
 * nothing, waits again.
 */
int rs_wait_timed(struct rsock *s, int64_t deadline_ms, int timed)
{
    if (deadline_ms == 0 || (deadline_ms > 0 && deadline_ms <= rs_now_ms())) {
        errno = EAGAIN;
        return -1;
    }
    /* A CQ left unarmed for the dispatcher (rs_progress_lazy) is armed
     * before any sleep here; completions found meanwhile end the wait. */
    if (s->cq_lazy && rs_arm_cq(s))
        return 0;
    if (s->poller_busy)
        return wait_on_cond(s, deadline_ms);
    if (spin_before_sleep(s))
        return 0;
    uint64_t mark;
    int src = wait_on_fd(s, rs_poll_timeout(deadline_ms), &mark);
    spin_woke(s, src);
    if (src < 0 && errno == EINTR && rs_intr_restarts(mark, timed))
        src = RS_SRC_ALL;
    if (src < 0)
        return -1;
    if (rs_wait_serves_listeners(s))
        rs_lprog_run();
    rs_progress_sources(s, (unsigned)src, 0);
    return 0;
}

/* A wait whose deadline is the caller's socket timeout (-1: none). */
int rs_wait_locked(struct rsock *s, int64_t deadline_ms)
{
    return rs_wait_timed(s, deadline_ms, deadline_ms >= 0);
}
