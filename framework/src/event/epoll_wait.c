/* epoll_wait.c - waiting on a set that holds module sockets.
 *
 * 1. collect registrations known or suspected to be ready (candidates:
 *    notified, wait fd fired, newly added/modified, or level-triggered and
 *    ready last time) by asking the module (poll_events, non-blocking);
 * 2. one kernel epoll_pwait (timeout 0 if step 1 found something), which
 *    also returns the app's kernel fds with its own data untouched;
 * 3. drop the framework's tagged entries (marking those regs candidates),
 *    and if nothing real was found, re-check and loop until the deadline. */
#include <errno.h>
#include <string.h>

#include "busy_poll.h"
#include "connect_late.h"
#include "ep_arena.h"
#include "epoll_agg.h"
#include "fd_table.h"
#include "file.h"
#include "fw.h"
#include "libc_api.h"
#include "sock.h"
#include "timeutil.h"

#define EV_INTEREST (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLRDNORM | EPOLLRDBAND | \
                     EPOLLWRNORM | EPOLLWRBAND | EPOLLMSG)

/* Asks the module and applies LT/ET/ONESHOT; returns the events to report
 * (0: nothing). full: the wait fd fired, so the module's poll_events
 * drains it; otherwise (a level-triggered re-check, a new or modified
 * registration, a notify) its poll_recheck, which need not ask the wait
 * fd's sources: one that has work keeps the wait fd readable, and this
 * set's next kernel wait reports it (module-interface.md, Readiness).
 * *due: a pending connect fallback failed on the module
 * (connect_late.h), to be run once the set lock is dropped. Caller holds
 * set->lock. */
/* Whether the module may leave r's socket's wake-up disarmed until this
 * set sleeps (module ABI 1.5 poll_lazy/arm): nothing but this thread's
 * own coming sleep can wait on it - its one registration, in a set no
 * other epoll or poll watches, with no other thread in this set's wait
 * (one entering later counts itself before it takes the set lock, and so
 * arms what this pass left disarmed before it sleeps) and none in
 * poll/select. The module arms before its own blocking waits. A second
 * registration raced in by another thread gets the module's arming pass
 * at its first check, and this set arms before its next sleep. Caller
 * holds set->lock and counts in waiters. */
static int may_stay_unarmed(const struct ep_reg *r)
{
    const struct file *f = r->file;
    return f->mod->poll_lazy != NULL && f->mod->arm != NULL &&
           !__atomic_load_n(&r->set->nested, __ATOMIC_RELAXED) &&
           __atomic_load_n(&r->set->waiters, __ATOMIC_ACQUIRE) <= 1 &&
           __atomic_load_n(&f->regs, __ATOMIC_ACQUIRE) == r && r->file_next == NULL &&
           __atomic_load_n(&g_poll_waiters, __ATOMIC_ACQUIRE) == 0;
}

static uint32_t module_mask(struct ep_reg *r, int full, uint64_t *gen)
{
    struct file *f = r->file;
    uint32_t mask;
    MOD_ENTER();
    if (may_stay_unarmed(r))
        mask = f->mod->poll_lazy(f->sock, gen, full);
    else
        mask = full ? f->mod->poll_events(f->sock, gen) : f->mod->poll_recheck(f->sock, gen);
    MOD_LEAVE();
    r->unarmed = (mask & NSTACK_EV_UNARMED) != 0;
    return mask & ~NSTACK_EV_UNARMED;
}

static uint32_t reg_check(struct ep_reg *r, int full, int *due)
{
    uint64_t gen = r->last_gen;
    struct file *f = r->file;
    uint32_t mask = module_mask(r, full, &gen);
    ev_polled(f, r->set, gen);
    if (fb_is_pending(f))
        mask = fb_filter(f, mask, due);
    if (mask & NSTACK_EV_FALLBACK) {
        /* An anchored connection stays on TCP: sock_fallback (run once the
         * set lock is dropped) registers the TCP fd, whose readiness the
         * kernel then reports. */
        *due = 1;
        return 0;
    }
    if (!r->armed)
        return 0;
    uint32_t real = mask & ((r->events & EV_INTEREST) | EPOLLERR | EPOLLHUP);
    int is_new = gen != r->last_gen || r->force;
    r->last_gen = gen;
    r->force = 0;
    int edge = (r->events & (EPOLLET | EPOLLONESHOT)) != 0;
    r->lt_ready = !edge && real != 0;
    if (real == 0 || (edge && !is_new))
        return 0;
    if (r->events & EPOLLONESHOT)
        r->armed = 0;
    return real;
}

/* Moves r to the tail so a busy socket cannot starve the others when the
 * caller's array is small. Caller holds set->lock. */
static void rotate_to_tail(struct epset *s, struct ep_reg *r)
{
    if (s->tail == r)
        return;
    if (r->set_prev)
        r->set_prev->set_next = r->set_next;
    else
        s->regs = r->set_next;
    r->set_next->set_prev = r->set_prev;
    r->set_prev = s->tail;
    r->set_next = NULL;
    s->tail->set_next = r;
    s->tail = r;
}

/* Sockets whose late connect fallback is due, collected under the set
 * lock and run after it (fb_run takes g_ep_lock, which comes first). */
#define DUE_MAX 8
struct due_list {
    struct file *f[DUE_MAX];
    int n;
    /* dormant registrations whose wait fd fired (ev_drop_dormant) */
    struct file *stale_f[DUE_MAX];
    int stale_fd[DUE_MAX];
    int n_stale;
};

/* Keeps a reference to f for run_due; when the list is full, r stays a
 * candidate and the set's wake fd makes the next round come at once. */
static void note_due(struct due_list *d, struct ep_reg *r)
{
    if (d->n == DUE_MAX) {
        __atomic_store_n(&r->candidate, 1, __ATOMIC_RELEASE);
        ev_wake_set(r->set);
        return;
    }
    if (!file_tryhold(r->file))
        return;             /* a close in another thread is releasing it */
    d->f[d->n++] = r->file;
}

/* A dormant registration (deleted by the app, kept for a re-ADD) is
 * never reported; if its wait fd fired, it is dropped after the set lock
 * (ev_drop_dormant takes g_ep_lock, which comes first), so the kernel
 * does not keep waking this set for a socket the app does not watch.
 * When the list is full it stays fired for a later round. */
static void note_dormant(struct due_list *d, struct ep_reg *r)
{
    if (!__atomic_load_n(&r->fired, __ATOMIC_ACQUIRE) || d->n_stale == DUE_MAX ||
        !file_tryhold(r->file))
        return;
    d->stale_f[d->n_stale] = r->file;
    d->stale_fd[d->n_stale++] = r->fd;
}

static void run_due(struct epset *s, struct due_list *d)
{
    for (int i = 0; i < d->n_stale; i++) {
        ev_drop_dormant(s, d->stale_fd[i], d->stale_f[i]);
        file_put(d->stale_f[i]);
    }
    d->n_stale = 0;
    for (int i = 0; i < d->n; i++) {
        if (d->f[i]->anchored)
            sock_fallback(d->f[i]);
        else
            (void)fb_run(d->f[i], -1);
        file_put(d->f[i]);
    }
    d->n = 0;
}

/* all: look at every registration with a busy-poll budget (a spin before
 * the set sleeps: r->spin), not only the candidates. */
static int collect_locked(struct epset *s, struct epoll_event *out, int max, struct due_list *due, int all)
{
    int n = 0;
    struct ep_reg *reported[64];
    int n_rep = 0;
    for (struct ep_reg *r = s->regs; r != NULL && n < max; r = r->set_next) {
        if (all && !r->spin)
            continue;       /* its look is not cheap: the kernel wait's */
        int cand = __atomic_exchange_n(&r->candidate, 0, __ATOMIC_ACQ_REL);
        if (r->dormant) {
            if (cand)
                note_dormant(due, r);
            continue;
        }
        /* a disarmed socket raises no wake-up: it is looked at (its CQ
         * polled) at every wait until the set sleeps and arms it */
        if (!cand && !r->lt_ready && !r->unarmed && !all)
            continue;
        int full = __atomic_exchange_n(&r->fired, 0, __ATOMIC_ACQ_REL);
        int is_due = 0;
        uint32_t ev = reg_check(r, full, &is_due);
        if (is_due)
            note_due(due, r);
        if (ev == 0)
            continue;
        out[n].events = ev;
        out[n].data = r->data;
        n++;
        if (n_rep < 64)
            reported[n_rep++] = r;
    }
    for (int i = 0; i < n_rep; i++)
        rotate_to_tail(s, reported[i]);
    return n;
}

/* Step 1: the module registrations that are ready now. */
static int collect(struct epset *s, struct epoll_event *out, int max, int all)
{
    struct due_list due = { .n = 0, .n_stale = 0 };
    pthread_mutex_lock(&s->lock);
    int n = collect_locked(s, out, max, &due, all);
    pthread_mutex_unlock(&s->lock);
    run_due(s, &due);
    return n;
}

static void drain_wake(struct epset *s)
{
    uint64_t v;
    (void)!LIBC(read)(s->wake_fd, &v, sizeof(v));
}

/* Removes the framework's entries from evs[from..from+k); returns how many
 * app entries remain (compacted to evs[from..]). Sets *tagged when a module
 * wait fd fired. */
static int filter_kernel(struct epset *s, struct epoll_event *evs, int from, int k, int *tagged)
{
    int m = from;
    for (int i = from; i < from + k; i++) {
        uint64_t p = evs[i].data.u64;
        if (ep_arena_contains(p)) {
            uint64_t magic = __atomic_load_n((uint64_t *)(uintptr_t)p, __ATOMIC_ACQUIRE);
            if (magic == EP_REG_MAGIC) {
                __atomic_store_n(&((struct ep_reg *)(uintptr_t)p)->fired, 1, __ATOMIC_RELEASE);
                __atomic_store_n(&((struct ep_reg *)(uintptr_t)p)->candidate, 1, __ATOMIC_RELEASE);
                *tagged = 1;
            } else if (magic == EP_SET_MAGIC) {
                drain_wake((struct epset *)(uintptr_t)p);
                *tagged = 1;
            }
            continue;       /* a stale (DEAD) record is dropped too */
        }
        evs[m++] = evs[i];
    }
    (void)s;
    return m - from;
}

/* A set that is itself watched (an epoll fd inside another set, or in
 * poll/select) must stay readable while it holds module registrations that
 * are ready, as the kernel keeps a level-triggered inner set readable.
 * Module wait fds are edge-like (poll_events re-arms them), so after a wait
 * the set's wake eventfd is left signalled while any registration is
 * level-triggered and still ready, or still a candidate not looked at yet.
 * Costs one write only for watched sets with ready module sockets. */
static void keep_nested_signal(struct epset *s)
{
    if (!__atomic_load_n(&s->nested, __ATOMIC_RELAXED))
        return;
    int pending = 0;
    pthread_mutex_lock(&s->lock);
    for (struct ep_reg *r = s->regs; r != NULL && !pending; r = r->set_next)
        pending = !r->dormant && (r->lt_ready || __atomic_load_n(&r->candidate, __ATOMIC_ACQUIRE));
    pthread_mutex_unlock(&s->lock);
    if (pending)
        ev_wake_set(s);
}

/* Before the set sleeps: the wake-ups its lazy passes left disarmed are
 * armed again (the module looks once more after arming); 1 when one of
 * them found news, whose registration is then a candidate. Until then a
 * disarmed registration is looked at by every collect (a loop that never
 * sleeps still sees data that came meanwhile). Its waiters count is up
 * already, so a thread that takes a wake-up from here on notifies. */
static int arm_unarmed(struct epset *s)
{
    int news = 0;
    pthread_mutex_lock(&s->lock);
    for (struct ep_reg *r = s->regs; r != NULL; r = r->set_next) {
        if (!r->unarmed || r->dormant)
            continue;
        r->unarmed = 0;
        MOD_ENTER();
        int got = r->file->mod->arm(r->file->sock);
        MOD_LEAVE();
        if (got > 0) {
            __atomic_store_n(&r->candidate, 1, __ATOMIC_RELEASE);
            news = 1;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return news;
}

/* The busy-poll budget of a set: the largest of its module sockets'
 * (busy_poll.h), each registration marked with whether it has one; 0 for
 * a set too large to look at every time. */
static uint64_t set_budget(struct epset *s)
{
    if (__atomic_load_n(&s->n_regs, __ATOMIC_ACQUIRE) > BUSY_POLL_MAX_SOCKS)
        return 0;
    uint64_t budget = 0;
    pthread_mutex_lock(&s->lock);
    for (struct ep_reg *r = s->regs; r != NULL; r = r->set_next) {
        uint64_t b = r->dormant ? 0 : busy_poll_budget(r->file);
        r->spin = b > 0;
        budget = b > budget ? b : budget;
    }
    pthread_mutex_unlock(&s->lock);
    return budget;
}

struct spin_look {
    struct epset *s;
    struct epoll_event *evs;
    int max;
};

static int spin_look(void *ctx)
{
    struct spin_look *l = ctx;
    return collect(l->s, l->evs, l->max, 1);
}

/* Nothing was ready: look at every registration for the set's budget
 * before the kernel sleep. Lazily armed sockets stay disarmed meanwhile,
 * so a peer's message that lands during the spin costs neither end a
 * wake-up. */
static int spin(struct epset *s, struct epoll_event *evs, int max, int64_t deadline)
{
    struct spin_look l = { s, evs, max };
    return busy_poll_run(set_budget(s), deadline, spin_look, &l);
}

static int wait_loop(int epfd, struct epset *s, struct epoll_event *evs, int max, int64_t deadline,
                     const sigset_t *sigmask)
{
    for (;;) {
        __atomic_add_fetch(&s->waiters, 1, __ATOMIC_ACQ_REL);
        int n = collect(s, evs, max, 0);
        if (n == 0 && ms_left(deadline) != 0 && (n = spin(s, evs, max, deadline)) == BUSY_POLL_INTR) {
            __atomic_sub_fetch(&s->waiters, 1, __ATOMIC_ACQ_REL);
            errno = EINTR;
            return -1;
        }
        if (n == 0 && ms_left(deadline) != 0 && arm_unarmed(s))
            n = collect(s, evs, max, 0);
        int tmo = n > 0 ? 0 : ms_left(deadline);
        int k = n < max ? LIBC(epoll_pwait)(epfd, evs + n, max - n, tmo, sigmask) : 0;
        int err = errno;
        __atomic_sub_fetch(&s->waiters, 1, __ATOMIC_ACQ_REL);
        if (k < 0) {
            busy_poll_woke(0);
            if (n > 0)
                return n;
            errno = err;
            return -1;
        }
        int tagged = 0;
        n += filter_kernel(s, evs, n, k, &tagged);
        busy_poll_woke(tagged);         /* learn only from module sockets' news */
        if (n == 0 && tagged)
            n = collect(s, evs, max, 0);
        if (n > 0 || deadline_passed(deadline) || tmo == 0)
            return n;
    }
}

/* A kernel wait on a set that became a module set meanwhile (another
 * thread registered a module socket): the framework's tagged entries must
 * not reach the app. If nothing else is left, wait on as a module set (the
 * time already spent is not subtracted: never shorter than asked). */
static int finish_raw_wait(int epfd, struct epset *s, struct epoll_event *evs, int max, int k,
                           const struct timespec *timeout, const sigset_t *sigmask)
{
    int tagged = 0;
    k = filter_kernel(s, evs, 0, k, &tagged);
    if (k == 0)
        k = wait_loop(epfd, s, evs, max, deadline_of(timeout), sigmask);
    return k;
}

int ev_epoll_wait(int epfd, struct epoll_event *evs, int max, const struct timespec *timeout,
                  const sigset_t *sigmask)
{
    struct file *ef = file_get(epfd);
    struct epset *s = ef && ef->kind == FILE_EPOLL ? __atomic_load_n(&ef->ep, __ATOMIC_ACQUIRE) : NULL;
    if (s == NULL || max <= 0 || evs == NULL) {
        /* No module socket was ever registered here: exactly the kernel call. */
        int k = timeout == NULL ? LIBC(epoll_pwait)(epfd, evs, max, -1, sigmask)
                                : LIBC(epoll_pwait2)(epfd, evs, max, timeout, sigmask);
        if (k > 0 && ef != NULL && ef->kind == FILE_EPOLL)
            s = __atomic_load_n(&ef->ep, __ATOMIC_ACQUIRE);
        if (s == NULL)
            return file_put_ret(ef, k);
        return file_put_ret(ef, finish_raw_wait(epfd, s, evs, max, k, timeout, sigmask));
    }
    int64_t deadline = deadline_of(timeout);
    int n = wait_loop(epfd, s, evs, max, deadline, sigmask);
    int err = errno;
    keep_nested_signal(s);
    errno = err;
    return file_put_ret(ef, n);
}

int ev_after_raw_wait(int epfd, struct epoll_event *evs, int max, int k, const struct timespec *timeout,
                      const sigset_t *sigmask)
{
    if (k <= 0)
        return k;
    struct file *ef = fd_table_get(epfd);
    if (ef == NULL || ef->kind != FILE_EPOLL || __atomic_load_n(&ef->ep, __ATOMIC_ACQUIRE) == NULL)
        return k;                     /* the usual case: one load, nothing to filter */
    if ((ef = file_get(epfd)) == NULL)
        return k;
    struct epset *s = __atomic_load_n(&ef->ep, __ATOMIC_ACQUIRE);
    if (s != NULL && ef->kind == FILE_EPOLL)
        k = finish_raw_wait(epfd, s, evs, max, k, timeout, sigmask);
    return file_put_ret(ef, k);
}
