/* poll_agg.c - poll/ppoll/select/pselect over kernel fds and module sockets.
 *
 * A module socket is polled as POLLIN on its app fd (a dup of its wait fd);
 * its real readiness comes from poll_events(). One kernel ppoll per round,
 * plus this thread's wake eventfd so that fw->notify() from another thread
 * (which may have consumed the wait fd's edge) wakes us. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "anchor.h"
#include "anchor_urgent.h"
#include "anchor_side.h"
#include "busy_poll.h"
#include "connect_late.h"
#include "epoll_agg.h"
#include "fd_high.h"
#include "fd_table.h"
#include "file.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"
#include "poll_agg.h"
#include "sock.h"
#include "timeutil.h"

/* ---- waiters ---------------------------------------------------------- */

_Atomic int g_poll_waiters;
/* Wake fds of threads blocked in poll/select with module sockets, and
 * whether one was written since it was registered (only then does its
 * unregistration read it: a wait that nobody woke makes no read); guarded
 * by g_pw_lock (held only to add/remove/write, never across a wait). */
struct poll_waiter {
    int fd;
    int signalled;
    /* The module files this waiter polls (its poll_work's, read with
     * atomic loads: a look may replace an entry while it is registered),
     * NULL: woken for every socket's news (a waiter that also waits on a
     * listener's RDMA side, and the waits of anchor_ll.c and
     * multilisten.c). */
    struct file **files;
    nfds_t n;
};
static pthread_mutex_t g_pw_lock = PTHREAD_MUTEX_INITIALIZER;
static struct poll_waiter *g_pw_fds;
static int g_pw_n, g_pw_cap;
static __thread int t_wake_fd = -1;

/* Registers this thread's wake fd for the news of files[0..n) (NULL:
 * of every module socket); returns it. */
static int wait_register(struct file **files, nfds_t n)
{
    if (t_wake_fd < 0)
        t_wake_fd = fd_move_high(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (t_wake_fd < 0)
        return -1;
    pthread_mutex_lock(&g_pw_lock);
    if (g_pw_n == g_pw_cap) {
        int cap = g_pw_cap ? g_pw_cap * 2 : 16;
        struct poll_waiter *p = realloc(g_pw_fds, (size_t)cap * sizeof(*p));
        if (p == NULL) {
            pthread_mutex_unlock(&g_pw_lock);
            return -1;
        }
        g_pw_fds = p;
        g_pw_cap = cap;
    }
    g_pw_fds[g_pw_n++] = (struct poll_waiter){ .fd = t_wake_fd, .signalled = 0, .files = files, .n = n };
    __atomic_add_fetch(&g_poll_waiters, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_unlock(&g_pw_lock);
    return t_wake_fd;
}

int ev_poll_wait_register(void)
{
    return wait_register(NULL, 0);
}

void ev_poll_wait_unregister(int wake_fd)
{
    int signalled = 1;       /* not found: read it, to be sure */
    pthread_mutex_lock(&g_pw_lock);
    for (int i = 0; i < g_pw_n; i++) {
        if (g_pw_fds[i].fd == wake_fd) {
            signalled = g_pw_fds[i].signalled;
            g_pw_fds[i] = g_pw_fds[--g_pw_n];
            __atomic_sub_fetch(&g_poll_waiters, 1, __ATOMIC_ACQ_REL);
            break;
        }
    }
    pthread_mutex_unlock(&g_pw_lock);
    uint64_t v;
    if (signalled)
        (void)!LIBC(read)(wake_fd, &v, sizeof(v));
}

static void wake_waiter(struct poll_waiter *w)
{
    uint64_t one = 1;
    (void)!LIBC(write)(w->fd, &one, sizeof(one));
    w->signalled = 1;
}

void ev_poll_wake_all(void)
{
    pthread_mutex_lock(&g_pw_lock);
    for (int i = 0; i < g_pw_n; i++)
        wake_waiter(&g_pw_fds[i]);
    pthread_mutex_unlock(&g_pw_lock);
}

/* Whether w polls f (a waiter without a list polls everything). */
static int polls_file(const struct poll_waiter *w, const struct file *f)
{
    if (w->files == NULL)
        return 1;
    for (nfds_t i = 0; i < w->n; i++)
        if (__atomic_load_n(&w->files[i], __ATOMIC_RELAXED) == f)
            return 1;
    return 0;
}

/* f's news wakes the threads that poll it, not every poll waiter: a
 * thread-per-connection server (varnish's workers, each in poll() on its
 * own connection) otherwise woke all of them for each message. */
void ev_poll_wake_file(const struct file *f, int others_only)
{
    pthread_mutex_lock(&g_pw_lock);
    for (int i = 0; i < g_pw_n; i++)
        if (!(others_only && g_pw_fds[i].fd == t_wake_fd) && polls_file(&g_pw_fds[i], f))
            wake_waiter(&g_pw_fds[i]);
    pthread_mutex_unlock(&g_pw_lock);
}

void poll_fork_prepare(void) { pthread_mutex_lock(&g_pw_lock); }
void poll_fork_parent(void) { pthread_mutex_unlock(&g_pw_lock); }

void poll_fork_child(void)
{
    pthread_mutex_unlock(&g_pw_lock);   /* taken by this thread in poll_fork_prepare */
    g_pw_n = 0;
    g_poll_waiters = 0;
    /* The eventfd is shared with the parent after fork; get our own. */
    if (t_wake_fd >= 0)
        LIBC(close)(t_wake_fd);
    t_wake_fd = -1;
}

/* ---- poll -------------------------------------------------------------- */

int poll_needs_agg(const struct pollfd *fds, nfds_t n)
{
    for (nfds_t i = 0; i < n; i++) {
        struct file *f = fds[i].fd >= 0 ? fd_table_get(fds[i].fd) : NULL;
        if (f == NULL)
            continue;
        if (f->kind == FILE_MSOCK || anchor_pending(f) || anchor_side_usable(fds[i].fd, f) ||
            (f->urgent_maybe && (fds[i].events & POLLPRI) && !FW_CONFINED()))
            return 1;
        if (f->kind == FILE_EPOLL && __atomic_load_n(&f->ep, __ATOMIC_ACQUIRE) != NULL)
            ev_mark_nested(f);
    }
    return 0;
}

/* Whether a look of poll/select may leave f's wake-up disarmed (module
 * ABI 1.5 poll_lazy/arm) until this thread sleeps: not while f is in an
 * epoll set, whose sleepers arm only what their own looks left disarmed.
 * Every poll/select sleeper arms its sockets right before its kernel wait
 * (arm_lazy), the engine arms before its own blocking waits, and a look
 * that takes the event another poll sleeps on moves gen and so wakes it
 * (ev_polled). */
static int may_stay_unarmed(const struct file *f)
{
    return f->mod->poll_lazy != NULL && f->mod->arm != NULL &&
           __atomic_load_n(&f->regs, __ATOMIC_ACQUIRE) == NULL;
}

/* How a look asks the module: LOOK_DUE is the first look of a call, full
 * when POLL_FULL_EVERY_NS passed since the last full one. A call that
 * finds a socket ready at its first look makes no kernel wait (when every
 * fd is a module socket), so a full look per call - one epoll_wait on the
 * wait fd's sources for rsocket - would cost a request/reply loop a
 * system call per message; a source with news keeps the wait fd readable
 * meanwhile and is read by the next full look or the next kernel wait. */
#define LOOK_RECHECK 0
#define LOOK_FULL 1
#define LOOK_DUE 2
#define LOOK_ARMED 3     /* a recheck that must leave the wake-up armed */
#define POLL_FULL_EVERY_NS (2 * 1000000)

static int full_look_due(struct file *f)
{
    int64_t t = now_ns();
    if (t - __atomic_load_n(&f->poll_full_ns, __ATOMIC_RELAXED) < POLL_FULL_EVERY_NS)
        return LOOK_RECHECK;
    return LOOK_FULL;
}

/* The module's answer for f (how: LOOK_*): its poll_events (full), else
 * its poll_recheck, or poll_lazy where allowed; *unarmed set when the
 * module left the wake-up disarmed. */
static uint32_t module_look(struct file *f, int how, int *unarmed)
{
    uint64_t gen = 0;
    uint32_t m;
    int lazy = how != LOOK_ARMED && may_stay_unarmed(f);
    int full = (how == LOOK_DUE ? full_look_due(f) : how) == LOOK_FULL;
    if (full)
        __atomic_store_n(&f->poll_full_ns, now_ns(), __ATOMIC_RELAXED);
    MOD_ENTER();
    if (lazy)
        m = f->mod->poll_lazy(f->sock, &gen, full);
    else
        m = full ? f->mod->poll_events(f->sock, &gen) : f->mod->poll_recheck(f->sock, &gen);
    MOD_LEAVE();
    if (m & NSTACK_EV_UNARMED)
        *unarmed = 1;
    ev_polled(f, NULL, gen);
    return m & ~NSTACK_EV_UNARMED;
}

/* The module socket's revents. *moved: a pending connect failed on the
 * module and the fd now holds a kernel socket (connect_late.h): the caller
 * polls it as a kernel fd from now on. how: see module_look - a full look
 * after the kernel reported the wait fd, or the first look of a call
 * when one is due (full_look_due); the others recheck: a source that got
 * work since the last full look keeps the wait fd readable, so the kernel
 * wait that follows returns at once and the full look comes then. */
static short module_revents(struct file *f, short events, int how, int *unarmed, int *moved)
{
    uint32_t m = module_look(f, how, unarmed);
    if (m & NSTACK_EV_FALLBACK) {
        sock_fallback(f);           /* on TCP for good: polled as a kernel fd from now on */
        *moved = 1;
        return 0;
    }
    if (fb_is_pending(f)) {
        int due = 0;
        uint32_t shown = fb_filter(f, m, &due);
        if (due && fb_run(f, -1) == 1) {
            *moved = 1;
            return 0;
        }
        m = due ? m : shown;        /* declined: the module's error is reported */
    }
    return (short)(m & ((uint32_t)(uint16_t)events | POLLERR | POLLHUP));
}

struct poll_work {
    struct pollfd *shadow;
    struct file **files;
    int unarmed;            /* a look left a socket's wake-up disarmed */
};

static int work_alloc(struct poll_work *w, nfds_t n, struct pollfd *sbuf, struct file **fbuf, nfds_t cap)
{
    w->unarmed = 0;
    if (n + 1 <= cap) {
        w->shadow = sbuf;
        w->files = fbuf;
        return 0;
    }
    w->shadow = malloc((n + 1) * sizeof(*w->shadow));
    w->files = malloc(n * sizeof(*w->files));
    if (w->shadow == NULL || w->files == NULL) {
        free(w->shadow);
        free(w->files);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* fds[i] is no longer a module socket (late connect fallback). */
static void forget_module(struct poll_work *w, nfds_t i)
{
    file_put(w->files[i]);
    __atomic_store_n(&w->files[i], NULL, __ATOMIC_RELAXED);    /* read by polls_file */
}

/* fds[i].revents of module socket i, asked of the module (how: LOOK_*,
 * see module_look). */
static void ask_module_how(struct pollfd *fds, struct poll_work *w, nfds_t i, int how)
{
    int moved = 0;
    fds[i].revents = module_revents(w->files[i], fds[i].events, how, &w->unarmed, &moved);
    if (!moved)
        return;
    forget_module(w, i);
    /* a refused connect whose module connects directly (anchor_direct.h):
     * polled as that module socket from the next round on */
    struct file *nf = file_get(fds[i].fd);
    if (nf != NULL && nf->kind == FILE_MSOCK)
        __atomic_store_n(&w->files[i], nf, __ATOMIC_RELAXED);
    else if (nf != NULL)
        file_put(nf);
}

/* After the kernel reported its wait fd: the full look. */
static void ask_module(struct pollfd *fds, struct poll_work *w, nfds_t i)
{
    ask_module_how(fds, w, i, LOOK_FULL);
}

/* A kernel listener with an rdma_cm listener beside it (anchor_side.h):
 * its revents now, and its shadow waits on both. Returns 1 if ready. */
static int side_prepare(struct pollfd *fds, struct poll_work *w, nfds_t i)
{
    struct file *f = fds[i].fd >= 0 ? fd_table_get(fds[i].fd) : NULL;
    int pfd = f != NULL ? anchor_side_poll_fd(f) : -1;
    if (pfd < 0)
        return 0;
    fds[i].revents = anchor_side_revents(fds[i].fd, f, fds[i].events);
    w->shadow[i].fd = pfd;
    w->shadow[i].events = POLLIN;
    return fds[i].revents != 0;
}

/* Before the kernel wait: module readiness, and the shadow array (module
 * fds as POLLIN on their wait fd). Returns how many module fds are ready.
 * how: LOOK_* (the first look of a call is LOOK_DUE, a second one a
 * recheck). */
static int poll_prepare(struct pollfd *fds, nfds_t n, struct poll_work *w, int how)
{
    int ready = 0;
    for (nfds_t i = 0; i < n; i++) {
        fds[i].revents = 0;
        if (w->files[i] != NULL)
            ask_module_how(fds, w, i, how);
        w->shadow[i] = fds[i];
        if (w->files[i] == NULL)
            ready += side_prepare(fds, w, i);
        if (w->files[i] != NULL) {
            ready += fds[i].revents != 0;
            w->shadow[i].events = POLLIN;
            if (w->files[i]->anchored)
                w->shadow[i].fd = w->files[i]->wait_fd;   /* the app fd is the TCP socket */
        }
    }
    return ready;
}

/* A listener's rdma_cm side is in the round (its module socket is not in
 * w->files: such a waiter is woken for every socket's news). */
static int waits_on_side(const struct pollfd *fds, nfds_t n, const struct poll_work *w)
{
    for (nfds_t i = 0; i < n; i++)
        if (w->files[i] == NULL && w->shadow[i].fd != fds[i].fd)
            return 1;
    return 0;
}

/* A module socket, or a listener's rdma_cm side, is still in the round. */
static int waits_on_module(const struct pollfd *fds, nfds_t n, const struct poll_work *w)
{
    for (nfds_t i = 0; i < n; i++)
        if (w->files[i] != NULL || w->shadow[i].fd != fds[i].fd)
            return 1;
    return 0;
}

struct spin_look {
    struct pollfd *fds;
    struct poll_work *w;
    nfds_t idx[BUSY_POLL_MAX_SOCKS];    /* the module fds with a budget */
    int n;
};

/* One busy-poll look: those module sockets' revents, rechecked; -1 when
 * one of them went to TCP meanwhile (its shadow entry must be made anew). */
static int spin_look(void *ctx)
{
    struct spin_look *l = ctx;
    int ready = 0;
    for (int k = 0; k < l->n; k++) {
        nfds_t i = l->idx[k];
        struct file *f = l->w->files[i];
        if (f == NULL)
            continue;
        ask_module_how(l->fds, l->w, i, LOOK_RECHECK);
        if (l->w->files[i] != f)
            return -1;
        ready += l->fds[i].revents != 0;
    }
    return ready;
}

/* Nothing was ready: look at the module sockets that have a budget, for
 * the largest of them, before the kernel sleep (busy_poll.h). Not for a
 * large array: every look asks each of them. Returns the ready count, -1
 * (see spin_look) or BUSY_POLL_INTR. */
static int spin(struct pollfd *fds, nfds_t n, struct poll_work *w, int64_t deadline)
{
    struct spin_look l = { .fds = fds, .w = w, .n = 0 };
    uint64_t budget = 0;
    for (nfds_t i = 0; i < n; i++) {
        uint64_t b = w->files[i] != NULL ? busy_poll_budget(w->files[i]) : 0;
        if (b == 0)
            continue;
        if (l.n == BUSY_POLL_MAX_SOCKS)
            return 0;
        l.idx[l.n++] = i;
        budget = b > budget ? b : budget;
    }
    return busy_poll_run(budget, deadline, spin_look, &l);
}

/* Before the kernel wait: the sockets whose wake-up a look left disarmed
 * are armed (the module looks once more after arming: 1 when it found
 * news, then they are looked at again). Returns how many are ready. */
static int arm_lazy(struct pollfd *fds, nfds_t n, struct poll_work *w)
{
    int ready = 0;
    w->unarmed = 0;
    for (nfds_t i = 0; i < n; i++) {
        struct file *f = w->files[i];
        if (f == NULL || !may_stay_unarmed(f))
            continue;
        MOD_ENTER();
        int news = f->mod->arm(f->sock);
        MOD_LEAVE();
        if (news > 0) {
            ask_module_how(fds, w, i, LOOK_ARMED);
            ready += w->files[i] != NULL && fds[i].revents != 0;
        }
    }
    return ready;
}

/* Every fd polled is a module socket (negative ones are ignored). */
static int only_modules(const struct pollfd *fds, nfds_t n, const struct poll_work *w)
{
    for (nfds_t i = 0; i < n; i++)
        if (fds[i].fd >= 0 && w->files[i] == NULL)
            return 0;
    return 1;
}

/* A kernel fd's revents: urgent data that is a late byte of the peer's
 * module (anchor_stale_urgent) is taken out, not reported. */
static short kernel_revents(int fd, short kr)
{
    if (!(kr & POLLPRI) || FW_CONFINED())
        return kr;
    struct file *f = fd_table_get(fd);
    if (f != NULL && f->urgent_maybe && anchor_stale_urgent(fd, f))
        kr &= (short)~POLLPRI;
    return kr;
}

/* One round: module readiness first, then one kernel ppoll. Returns the
 * number of fds with revents, or -1. */
static int poll_round(struct pollfd *fds, nfds_t n, struct poll_work *w, int64_t deadline,
                      const sigset_t *sigmask, int *timed_out)
{
    /* The wake fd matters only to a round that waits on a module fd: one
     * with ready module fds or a zero timeout polls with timeout 0, one
     * whose module fds all went back to TCP waits on kernel fds only, and
     * neither makes one (a fork child in a sandbox that allows poll() but
     * no new fd - OpenSSH's preauth child polling a connection whose RDMA
     * bytes it still reads after the release - must not need an eventfd).
     * Registered before the second look, so a notify in between is not
     * lost. */
    int wake = -1;
    int ready = poll_prepare(fds, n, w, LOOK_DUE);
    if (!ready && ms_left(deadline) != 0 && waits_on_module(fds, n, w)) {
        wake = wait_register(waits_on_side(fds, n, w) ? NULL : w->files, n);
        ready = poll_prepare(fds, n, w, LOOK_RECHECK);
        if (!ready && (ready = spin(fds, n, w, deadline)) == BUSY_POLL_INTR) {
            ev_poll_wait_unregister(wake);
            errno = EINTR;            /* a handler ran: as the kernel's poll */
            return -1;
        }
        if (ready < 0)
            ready = poll_prepare(fds, n, w, LOOK_FULL);   /* one went to TCP meanwhile */
        if (!ready && w->unarmed)
            ready = arm_lazy(fds, n, w);
    }
    if (ready && sigmask == NULL && only_modules(fds, n, w)) {
        /* nothing a kernel wait could add: every fd is a module socket
         * whose readiness was just asked (a source with news keeps its
         * wait fd readable for the next full look or kernel wait) */
        if (wake >= 0)
            ev_poll_wait_unregister(wake);
        *timed_out = 1;
        return ready;
    }
    w->shadow[n] = (struct pollfd){ .fd = wake, .events = POLLIN };
    int tmo = ready ? 0 : ms_left(deadline);
    struct timespec ts = { tmo / 1000, (long)(tmo % 1000) * 1000000 };
    /* no wake fd: exactly the application's fds (poll() fails EINVAL past
     * RLIMIT_NOFILE entries; OpenSSH's sandboxed child lowers it to its
     * count) */
    int k = LIBC(ppoll)(w->shadow, wake >= 0 ? n + 1 : n, tmo < 0 ? NULL : &ts, sigmask);
    int err = errno;
    if (wake >= 0)
        ev_poll_wait_unregister(wake);
    *timed_out = tmo == 0;
    if (k < 0) {
        busy_poll_woke(0);
        errno = err;
        return ready ? ready : -1;
    }
    /* the spin learns from module sockets' news only (busy_poll.h) */
    int module_news = wake >= 0 && w->shadow[n].revents != 0;
    int total = 0;
    for (nfds_t i = 0; i < n; i++) {
        short kr = w->shadow[i].revents;
        module_news |= w->files[i] != NULL && kr != 0;
        if (w->files[i] == NULL && w->shadow[i].fd != fds[i].fd && kr != 0)
            fds[i].revents = anchor_side_revents(fds[i].fd, fd_table_get(fds[i].fd), fds[i].events);
        else if (w->files[i] == NULL && w->shadow[i].fd == fds[i].fd)
            fds[i].revents = kernel_revents(fds[i].fd, kr);
        else if (kr & POLLNVAL)
            fds[i].revents = POLLNVAL;
        else if (fds[i].revents == 0 && kr != 0)
            ask_module(fds, w, i);
        total += fds[i].revents != 0;
    }
    busy_poll_woke(module_news);
    return total;
}

int ev_poll(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *sigmask)
{
    struct pollfd sbuf[65];
    struct file *fbuf[65];
    struct poll_work w;
    if (work_alloc(&w, n, sbuf, fbuf, 65) < 0)
        return -1;
    for (nfds_t i = 0; i < n; i++) {
        struct file *f = fds[i].fd >= 0 ? file_get(fds[i].fd) : NULL;
        if (f != NULL)
            f = anchor_use(fds[i].fd, f);   /* polling it is using it */
        if (f != NULL && f->kind != FILE_MSOCK) {
            file_put(f);
            f = NULL;
        }
        w.files[i] = f;
    }
    int64_t deadline = deadline_of(timeout);
    int r;
    for (;;) {
        int timed_out = 0;
        r = poll_round(fds, n, &w, deadline, sigmask, &timed_out);
        if (r != 0 || timed_out || deadline_passed(deadline))
            break;
    }
    int err = errno;
    for (nfds_t i = 0; i < n; i++)
        if (w.files[i] != NULL)
            file_put(w.files[i]);
    if (w.shadow != sbuf) {
        free(w.shadow);
        free(w.files);
    }
    errno = err;
    return r;
}

/* ---- select ------------------------------------------------------------- */

static int fdset_has(const fd_set *s, int fd)
{
    return s != NULL && (s->fds_bits[fd / NFDBITS] & ((__fd_mask)1 << (fd % NFDBITS))) != 0;
}

static void fdset_put(fd_set *s, int fd)
{
    s->fds_bits[fd / NFDBITS] |= (__fd_mask)1 << (fd % NFDBITS);
}

int select_needs_agg(int nfds, const fd_set *r, const fd_set *w, const fd_set *e)
{
    for (int fd = 0; fd < nfds; fd++) {
        if (!fdset_has(r, fd) && !fdset_has(w, fd) && !fdset_has(e, fd))
            continue;
        struct file *f = fd_table_get(fd);
        if (f != NULL && (f->kind == FILE_MSOCK || anchor_pending(f) || anchor_side_usable(fd, f) ||
                          (f->urgent_maybe && fdset_has(e, fd) && !FW_CONFINED())))
            return 1;
        if (f != NULL && f->kind == FILE_EPOLL && __atomic_load_n(&f->ep, __ATOMIC_ACQUIRE) != NULL)
            ev_mark_nested(f);
    }
    return 0;
}

static void clear_sets(int nfds, fd_set *r, fd_set *w, fd_set *e)
{
    size_t bytes = ((size_t)nfds + NFDBITS - 1) / NFDBITS * sizeof(__fd_mask);
    if (r) memset(r, 0, bytes);
    if (w) memset(w, 0, bytes);
    if (e) memset(e, 0, bytes);
}

/* The pollfd array for select's sets: one entry per fd in any set. */
static struct pollfd *select_to_poll(int nfds, const fd_set *r, const fd_set *w, const fd_set *e, nfds_t *n)
{
    *n = 0;
    for (int fd = 0; fd < nfds; fd++)
        *n += fdset_has(r, fd) || fdset_has(w, fd) || fdset_has(e, fd);
    struct pollfd *p = calloc(*n ? *n : 1, sizeof(*p));
    if (p == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    nfds_t i = 0;
    for (int fd = 0; fd < nfds; fd++) {
        short ev = (short)((fdset_has(r, fd) ? POLLIN : 0) | (fdset_has(w, fd) ? POLLOUT : 0) |
                           (fdset_has(e, fd) ? POLLPRI : 0));
        if (ev)
            p[i++] = (struct pollfd){ .fd = fd, .events = ev };
    }
    return p;
}

/* Rebuilds the caller's sets from the poll results; returns select's count. */
static int poll_to_select(const struct pollfd *p, nfds_t n, int nfds, fd_set *r, fd_set *w, fd_set *e)
{
    fd_set *sets[3] = { r, w, e };
    int count = 0;
    short masks[3] = { POLLIN | POLLHUP | POLLERR, POLLOUT | POLLERR, POLLPRI };
    short asked[3] = { POLLIN, POLLOUT, POLLPRI };
    clear_sets(nfds, r, w, e);
    for (nfds_t i = 0; i < n; i++)
        for (int s = 0; s < 3; s++)
            if (sets[s] && (p[i].events & asked[s]) && (p[i].revents & masks[s])) {
                fdset_put(sets[s], p[i].fd);
                count++;
            }
    return count;
}

int ev_select(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *timeout,
              const sigset_t *sigmask)
{
    nfds_t n;
    struct pollfd *p = select_to_poll(nfds, r, w, e, &n);
    if (p == NULL)
        return -1;
    int k = ev_poll(p, n, timeout, sigmask);
    for (nfds_t i = 0; k >= 0 && i < n; i++) {
        if (p[i].revents & POLLNVAL) {
            errno = EBADF;
            k = -1;
        }
    }
    if (k >= 0)
        k = poll_to_select(p, n, nfds, r, w, e);
    int err = errno;
    free(p);
    errno = err;
    return k;
}
