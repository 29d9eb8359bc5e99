/* epoll_agg.c - epoll sets that contain module sockets (see epoll_agg.h). */
#include "epoll_agg.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "anchor.h"
#include "ep_arena.h"
#include "fd_high.h"
#include "fd_table.h"
#include "file.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"
#include "timeutil.h"

/* Serialises changes of the reg/set structure (link, unlink, set
 * creation and destruction). Lock order: g_ep_lock, then set->lock, then
 * file->reg_lock. Never held across a module call or a kernel wait. */
static pthread_mutex_t g_ep_lock = PTHREAD_MUTEX_INITIALIZER;

#define EV_ALWAYS (EPOLLERR | EPOLLHUP)
#define EV_FLAGS (EPOLLET | EPOLLONESHOT | EPOLLEXCLUSIVE | EPOLLWAKEUP)

void ev_wake_set(struct epset *s)
{
    uint64_t one = 1;
    (void)!LIBC(write)(s->wake_fd, &one, sizeof(one));
}

/* Marks f's registrations outside set `skip` as to-be-checked and wakes
 * the sets among them that have a blocked waiter or are watched (nested).
 * Lock order: a caller may hold an epset lock (taken before reg_lock). */
static void wake_sets_of(struct file *f, const struct epset *skip)
{
    if (__atomic_load_n(&f->regs, __ATOMIC_ACQUIRE) == NULL)
        return;
    pthread_mutex_lock(&f->reg_lock);
    for (struct ep_reg *r = f->regs; r != NULL; r = r->file_next) {
        if (r->set == skip)
            continue;
        __atomic_store_n(&r->candidate, 1, __ATOMIC_RELEASE);
        if (__atomic_load_n(&r->set->waiters, __ATOMIC_ACQUIRE) > 0 ||
            __atomic_load_n(&r->set->nested, __ATOMIC_RELAXED))
            ev_wake_set(r->set);
    }
    pthread_mutex_unlock(&f->reg_lock);
}

void ev_notify(void *cookie)
{
    struct file *f = cookie;
    if (f == NULL)
        return;
    wake_sets_of(f, NULL);
    if (__atomic_load_n(&g_poll_waiters, __ATOMIC_ACQUIRE) > 0)
        ev_poll_wake_file(f, 0);
}

void ev_polled(struct file *f, const struct epset *self, uint64_t gen)
{
    if (__atomic_exchange_n(&f->seen_gen, gen, __ATOMIC_ACQ_REL) == gen)
        return;
    wake_sets_of(f, self);
    if (__atomic_load_n(&g_poll_waiters, __ATOMIC_ACQUIRE) > 0)
        ev_poll_wake_file(f, 1);
}

/* ---- set creation ----------------------------------------------------- */

/* The epset of epoll file ef, created on first need. Caller holds g_ep_lock. */
static struct epset *set_of(struct file *ef, int epfd)
{
    if (ef->ep != NULL)
        return ef->ep;
    struct epset *s = ep_arena_alloc(sizeof(*s));
    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    s->wake_fd = fd_move_high(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (s->wake_fd < 0) {
        ep_arena_free(s);
        return NULL;
    }
    s->magic = EP_SET_MAGIC;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
    if (LIBC(epoll_ctl)(epfd, EPOLL_CTL_ADD, s->wake_fd, &ev) < 0) {
        int err = errno;
        LIBC(close)(s->wake_fd);
        ep_arena_free(s);
        errno = err;
        return NULL;
    }
    s->nested = __atomic_load_n(&ef->nested, __ATOMIC_RELAXED);
    __atomic_store_n(&ef->ep, s, __ATOMIC_SEQ_CST);     /* before raw_waiters is read */
    return s;
}

/* The file of an epoll fd; one is created for epoll fds the framework did
 * not see being created (inherited across exec). Returns a reference. */
static struct file *epoll_file(int epfd)
{
    struct file *ef = file_get(epfd);
    if (ef != NULL)
        return ef;
    ef = file_alloc(FILE_EPOLL);
    if (ef == NULL)
        return NULL;
    if (!fd_table_cas(epfd, NULL, ef)) {
        file_put(ef);
        return file_get(epfd);
    }
    file_hold(ef);       /* one for the table, one for the caller */
    return ef;
}

/* ---- registration list ------------------------------------------------ */

/* The registration of (fd, f) in s that the app sees (dormant: 0) or the
 * dormant one kept after its DEL (1). */
static struct ep_reg *find_reg_in(struct epset *s, int fd, struct file *f, int dormant)
{
    for (struct ep_reg *r = s->regs; r != NULL; r = r->set_next)
        if (r->fd == fd && r->file == f && r->dormant == dormant)
            return r;
    return NULL;
}

static struct ep_reg *find_reg(struct epset *s, int fd, struct file *f)
{
    return find_reg_in(s, fd, f, 0);
}

static void link_reg(struct epset *s, struct ep_reg *r)
{
    r->set_prev = s->tail;
    r->set_next = NULL;
    if (s->tail)
        s->tail->set_next = r;
    else
        s->regs = r;
    s->tail = r;
    __atomic_add_fetch(&s->n_regs, 1, __ATOMIC_RELEASE);
    if (__atomic_load_n(&s->nested, __ATOMIC_RELAXED))
        __atomic_store_n(&r->file->in_nested_set, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&r->file->reg_lock);
    r->file_next = r->file->regs;
    __atomic_store_n(&r->file->regs, r, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&r->file->reg_lock);
}

static void unlink_set(struct epset *s, struct ep_reg *r)
{
    if (r->set_prev)
        r->set_prev->set_next = r->set_next;
    else
        s->regs = r->set_next;
    if (r->set_next)
        r->set_next->set_prev = r->set_prev;
    else
        s->tail = r->set_prev;
}

/* Caller holds g_ep_lock and s->lock. */
static void unlink_reg(struct epset *s, struct ep_reg *r)
{
    unlink_set(s, r);
    __atomic_sub_fetch(&s->n_regs, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&r->file->reg_lock);
    for (struct ep_reg **pp = &r->file->regs; *pp != NULL; pp = &(*pp)->file_next) {
        if (*pp == r) {
            *pp = r->file_next;
            break;
        }
    }
    pthread_mutex_unlock(&r->file->reg_lock);
    if (r->own_kfd)
        LIBC(close)(r->kfd);
    ep_arena_free(r);
}

/* ---- epoll_ctl ---------------------------------------------------------- */

/* ADD that drops EPOLLEXCLUSIVE where the kernel refuses it: a wait fd
 * (or a multi-stack listener's app fd) may be an epoll fd, which cannot be
 * watched exclusively; exclusivity only saves wake-ups, so the app's
 * epoll_ctl must not fail for it. */
static int ctl_add_tolerant(int epfd, int fd, struct epoll_event *ev)
{
    int kr = LIBC(epoll_ctl)(epfd, EPOLL_CTL_ADD, fd, ev);
    if (kr < 0 && errno == EINVAL && (ev->events & EPOLLEXCLUSIVE)) {
        ev->events &= ~(uint32_t)EPOLLEXCLUSIVE;
        kr = LIBC(epoll_ctl)(epfd, EPOLL_CTL_ADD, fd, ev);
    }
    return kr;
}

/* The number the kernel set watches for a registration of f at app fd:
 * the app fd (a dup of the wait fd), or an anchored socket's wait fd - a
 * high dup of it when this set already watches it for another dup of the
 * app fd (one number, one registration). -1/errno. Caller holds s->lock. */
static int kernel_fd_for(struct epset *s, int fd, struct file *f, int *own)
{
    *own = 0;
    if (!f->anchored)
        return fd;
    for (struct ep_reg *r = s->regs; r != NULL; r = r->set_next) {
        if (r->file == f) {
            *own = 1;
            return fd_dup_high(f->wait_fd);
        }
    }
    return f->wait_fd;
}

/* The registration's kernel fd in the kernel epoll, tagged with r. */
static int kernel_add_reg(int epfd, struct ep_reg *r)
{
    struct epoll_event kev = { .events = EPOLLIN | (r->events & EPOLLEXCLUSIVE), .data.ptr = r };
    return ctl_add_tolerant(epfd, r->kfd, &kev);
}

/* The initial drain of reg_add: only for a watched (nested) set. Caller
 * holds s->lock. */
static void drain_if_nested(struct epset *s, struct file *f)
{
    /* A watched (nested) set: consume the wait fd's initial wake-up now
     * (the registration stays a candidate, so the next epoll_wait still
     * reports current readiness), so that an outer epoll watching this set
     * sees only new work. Any other set looks at the registration at its
     * next wait anyway (a candidate; its full pass if the wait fd is
     * readable): no module call here, and for an event loop that deletes
     * and adds a socket per request (redis-benchmark) no wait-fd check.
     * A set that becomes watched later is drained then
     * (drain_newly_nested). */
    if (!__atomic_load_n(&s->nested, __ATOMIC_RELAXED))
        return;
    uint64_t gen = 0;
    MOD_ENTER();
    (void)f->mod->poll_events(f->sock, &gen);
    MOD_LEAVE();
    ev_polled(f, s, gen);
}

/* Kept after a DEL (reg_del): an anchored socket's registration, whose
 * kernel side watches the module's own wait fd (never an app number that
 * could be closed and reused), so that the DEL and the next ADD of event
 * loops that delete and re-add a socket per request (hiredis' ae adapter
 * in redis-benchmark: two of each per GET) cost no epoll_ctl; adding an
 * epoll fd to an epoll set is the dearest of them (the kernel's loop and
 * path checks). */
static void make_dormant(struct ep_reg *r)
{
    r->dormant = 1;
    r->armed = 0;
    r->lt_ready = 0;
    __atomic_store_n(&r->candidate, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&r->fired, 0, __ATOMIC_RELEASE);
}

/* Deletes the kernel registration and frees r. Caller holds g_ep_lock
 * and s->lock. */
static void drop_reg(struct epset *s, struct ep_reg *r)
{
    (void)LIBC(epoll_ctl)(r->epfd, EPOLL_CTL_DEL, r->kfd, NULL);
    unlink_reg(s, r);
}

/* ADD of an fd whose dormant registration is still in the kernel set:
 * it becomes the app's again (a fired wait fd keeps its full check).
 * 0, or -1 when it cannot serve (EPOLLEXCLUSIVE differs: the kernel
 * registration carries it) and was dropped. */
static int revive(struct epset *s, struct ep_reg *r, const struct epoll_event *ev)
{
    if ((r->events ^ ev->events) & EPOLLEXCLUSIVE) {
        drop_reg(s, r);
        return -1;
    }
    r->events = ev->events;
    r->data = ev->data;
    r->armed = 1;
    r->force = 1;
    r->dormant = 0;
    __atomic_store_n(&r->candidate, 1, __ATOMIC_RELEASE);
    drain_if_nested(s, r->file);
    return 0;
}

static int reg_add(int epfd, struct epset *s, int fd, struct file *f, const struct epoll_event *ev)
{
    if ((ev->events & EPOLLEXCLUSIVE) && (ev->events & ~(uint32_t)(EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP |
                                                                  EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE))) {
        errno = EINVAL;       /* the kernel's rule for EPOLLEXCLUSIVE */
        return -1;
    }
    if (find_reg(s, fd, f) != NULL) {
        errno = EEXIST;
        return -1;
    }
    struct ep_reg *d = find_reg_in(s, fd, f, 1);
    if (d != NULL && revive(s, d, ev) == 0)
        return 0;
    struct ep_reg *r = ep_arena_alloc(sizeof(*r));
    if (r == NULL)
        return -1;
    r->set = s;
    r->file = f;
    r->fd = fd;
    r->epfd = epfd;
    r->events = ev->events;
    r->data = ev->data;
    r->armed = 1;
    r->force = 1;
    r->candidate = 1;
    r->magic = EP_REG_MAGIC;
    r->kfd = kernel_fd_for(s, fd, f, &r->own_kfd);
    if (r->kfd < 0 || kernel_add_reg(epfd, r) < 0) {
        int err = errno;
        if (r->own_kfd && r->kfd >= 0)
            LIBC(close)(r->kfd);
        ep_arena_free(r);
        errno = err;
        return -1;
    }
    link_reg(s, r);
    drain_if_nested(s, f);
    return 0;
}

static int reg_mod(struct epset *s, int fd, struct file *f, const struct epoll_event *ev)
{
    struct ep_reg *r = find_reg(s, fd, f);
    if (r == NULL) {
        errno = ENOENT;
        return -1;
    }
    if ((r->events & EPOLLEXCLUSIVE) || (ev->events & EPOLLEXCLUSIVE)) {
        errno = EINVAL;          /* as the kernel: EPOLLEXCLUSIVE cannot be modified */
        return -1;
    }
    r->events = ev->events;
    r->data = ev->data;
    r->armed = 1;
    r->force = 1;
    __atomic_store_n(&r->candidate, 1, __ATOMIC_RELEASE);
    return 0;
}

static int reg_del(struct epset *s, int fd, struct file *f)
{
    struct ep_reg *r = find_reg(s, fd, f);
    if (r == NULL) {
        errno = ENOENT;
        return -1;
    }
    if (f->anchored)
        make_dormant(r);
    else
        drop_reg(s, r);
    return 0;
}

void ev_drop_dormant(struct epset *s, int fd, struct file *f)
{
    pthread_mutex_lock(&g_ep_lock);
    pthread_mutex_lock(&s->lock);
    struct ep_reg *r = find_reg_in(s, fd, f, 1);
    if (r != NULL && __atomic_load_n(&r->fired, __ATOMIC_ACQUIRE))
        drop_reg(s, r);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&g_ep_lock);
}

int ev_ctl_module(struct file *f, int epfd, int op, int fd, struct epoll_event *ev)
{
    if (op != EPOLL_CTL_DEL && ev == NULL) {
        errno = EFAULT;
        return -1;
    }
    if (epfd == fd) {
        errno = EINVAL;
        return -1;
    }
    struct file *ef = epoll_file(epfd);
    if (ef == NULL)
        return -1;
    if (ef->kind != FILE_EPOLL) {
        file_put(ef);
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&g_ep_lock);
    /* A thread may be blocked in this set's plain kernel wait, begun while
     * it had no module socket (raw_waiters, not in waiters); reg_add drains
     * the wait fd's wake-up, so only the set's own wake_fd makes it look. */
    int created = ef->ep == NULL;
    struct epset *s = set_of(ef, epfd);
    int r = -1;
    if (s != NULL) {
        pthread_mutex_lock(&s->lock);
        if (op == EPOLL_CTL_ADD)
            r = reg_add(epfd, s, fd, f, ev);
        else if (op == EPOLL_CTL_MOD)
            r = reg_mod(s, fd, f, ev);
        else if (op == EPOLL_CTL_DEL)
            r = reg_del(s, fd, f);
        else
            errno = EINVAL;
        pthread_mutex_unlock(&s->lock);
        /* A thread already blocked must look at the new registration. */
        if (r == 0 && op != EPOLL_CTL_DEL &&
            ((created && __atomic_load_n(&ef->raw_waiters, __ATOMIC_SEQ_CST) > 0) ||
             __atomic_load_n(&s->waiters, __ATOMIC_ACQUIRE) > 0 ||
             __atomic_load_n(&s->nested, __ATOMIC_RELAXED)))
            ev_wake_set(s);
    }
    pthread_mutex_unlock(&g_ep_lock);
    file_put(ef);
    return r;
}

/* Whether a registration of set s may still have something to report.
 * Caller holds s->lock. */
static int set_has_pending(struct epset *s)
{
    for (struct ep_reg *r = s->regs; r != NULL; r = r->set_next)
        if (!r->dormant && (r->lt_ready || __atomic_load_n(&r->candidate, __ATOMIC_ACQUIRE)))
            return 1;
    return 0;
}

void ev_recheck_nested(struct file *f)
{
    pthread_mutex_lock(&g_ep_lock);
    for (struct ep_reg *r = f->regs; r != NULL; r = r->file_next) {
        struct epset *s = r->set;
        if (!__atomic_load_n(&s->nested, __ATOMIC_RELAXED) || !r->lt_ready)
            continue;
        pthread_mutex_lock(&s->lock);
        uint64_t gen = r->last_gen;
        MOD_ENTER();
        uint32_t mask = f->mod->poll_events(f->sock, &gen);
        MOD_LEAVE();
        ev_polled(f, s, gen);
        if (gen != r->last_gen)
            __atomic_store_n(&r->candidate, 1, __ATOMIC_RELEASE);   /* new work: the next wait looks */
        if ((mask & ((r->events & ~EV_FLAGS) | EV_ALWAYS)) == 0)
            r->lt_ready = 0;
        if (!set_has_pending(s)) {
            uint64_t v;
            (void)!LIBC(read)(s->wake_fd, &v, sizeof(v));
        }
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&g_ep_lock);
}

/* A set that has just become watched: consume its module wait fds'
 * pending wake-ups, which reg_add leaves in an unwatched set, so that
 * the outer epoll (or poll) sees only new work; the registrations stay
 * candidates and still report their current readiness. Caller holds
 * g_ep_lock. */
static void drain_newly_nested(struct epset *s)
{
    pthread_mutex_lock(&s->lock);
    for (struct ep_reg *r = s->regs; r != NULL; r = r->set_next) {
        uint64_t gen = 0;
        MOD_ENTER();
        (void)r->file->mod->poll_events(r->file->sock, &gen);
        MOD_LEAVE();
        ev_polled(r->file, s, gen);
    }
    pthread_mutex_unlock(&s->lock);
}

void ev_mark_nested(struct file *ef)
{
    pthread_mutex_lock(&g_ep_lock);
    __atomic_store_n(&ef->nested, 1, __ATOMIC_RELAXED);
    if (ef->ep != NULL) {
        int was = __atomic_exchange_n(&ef->ep->nested, 1, __ATOMIC_RELAXED);
        for (struct ep_reg *r = ef->ep->regs; r != NULL; r = r->set_next)
            __atomic_store_n(&r->file->in_nested_set, 1, __ATOMIC_RELAXED);
        if (!was)
            drain_newly_nested(ef->ep);
    }
    pthread_mutex_unlock(&g_ep_lock);
}

/* Remembers registrations of a socket whose stack is not decided yet. */
static void note_pre_reg(struct file *f, int epfd, int fd, int op, const struct epoll_event *ev)
{
    pthread_mutex_lock(&f->lock);
    if (!f->decided || __atomic_load_n(&f->ll_limit, __ATOMIC_RELAXED)) {   /* or a long-lived TCP phase */
        int i = 0;
        while (i < f->n_pregs && (f->pregs[i].epfd != epfd || f->pregs[i].fd != fd))
            i++;
        if (op == EPOLL_CTL_DEL && i < f->n_pregs) {
            f->pregs[i] = f->pregs[--f->n_pregs];
        } else if (op == EPOLL_CTL_MOD && i < f->n_pregs) {
            f->pregs[i].ev = *ev;
        } else if (op == EPOLL_CTL_ADD) {
            if (f->n_pregs == f->cap_pregs) {
                int cap = f->cap_pregs ? f->cap_pregs * 2 : 4;
                struct pre_reg *p = realloc(f->pregs, (size_t)cap * sizeof(*p));
                if (p != NULL) {
                    f->pregs = p;
                    f->cap_pregs = cap;
                }
            }
            if (f->n_pregs < f->cap_pregs)
                f->pregs[f->n_pregs++] = (struct pre_reg){ .epfd = epfd, .fd = fd, .ev = *ev };
            else
                LOG_WAR("epoll_ctl(%d, ADD): out of memory; this registration will not follow a move to a module", epfd);
        }
    }
    pthread_mutex_unlock(&f->lock);
}

int ev_ctl_kernel_socket(struct file *f, int epfd, int op, int fd, struct epoll_event *ev)
{
    int r = LIBC(epoll_ctl)(epfd, op, fd, ev);
    if (r == 0 && (!__atomic_load_n(&f->decided, __ATOMIC_ACQUIRE) || __atomic_load_n(&f->ll_limit, __ATOMIC_RELAXED))) {
        int saved = errno;
        note_pre_reg(f, epfd, fd, op, ev);
        errno = saved;
    }
    return r;
}

int ev_ctl_listener(struct file *f, int epfd, int op, int fd, struct epoll_event *ev)
{
    (void)f;
    if (op != EPOLL_CTL_ADD || ev == NULL)
        return LIBC(epoll_ctl)(epfd, op, fd, ev);
    struct epoll_event kev = *ev;
    return ctl_add_tolerant(epfd, fd, &kev);
}

int ev_ctl_set(struct file *f, int epfd, int op, int fd, struct epoll_event *ev)
{
    int r = LIBC(epoll_ctl)(epfd, op, fd, ev);
    if (r == 0 && op == EPOLL_CTL_ADD) {
        int saved = errno;
        ev_mark_nested(f);
        errno = saved;
    }
    return r;
}

/* What a registration of fd does is its file's kind's (f->ops->ep_ctl:
 * the ev_ctl_* above, or the kernel's epoll_ctl). */
int ev_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    struct file *f = file_get(fd);
    if (f == NULL)
        return LIBC(epoll_ctl)(epfd, op, fd, ev);
    if (op != EPOLL_CTL_DEL)
        f = anchor_use(fd, f);       /* waiting on it is using it */
    return file_put_ret(f, f->ops->ep_ctl(f, epfd, op, fd, ev));
}

void ev_follow_migration(struct file *f, const struct pre_reg *pregs, int n)
{
    for (int i = 0; i < n; i++) {
        struct epoll_event ev = pregs[i].ev;
        int fd = pregs[i].fd;
        if (fd_table_get(fd) != f)
            continue;           /* that number was closed or did not follow */
        /* An anchored socket's app fd is still the TCP socket the kernel
         * set watches: the set watches the wait fd instead from now on. */
        if (f->anchored)
            (void)LIBC(epoll_ctl)(pregs[i].epfd, EPOLL_CTL_DEL, fd, NULL);
        if (ev_ctl_module(f, pregs[i].epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            LOG_WAR("fd %d: cannot move its registration in epoll fd %d to the module socket: %s",
                    fd, pregs[i].epfd, strerror(errno));
    }
}

/* A disarmed one-shot registration stays disarmed on the new socket. */
static struct epoll_event app_event_of(const struct ep_reg *r)
{
    uint32_t events = r->armed ? r->events : (r->events & (EPOLLET | EPOLLONESHOT));
    return (struct epoll_event){ .events = events, .data = r->data };
}

int ev_take_regs(struct file *f, struct pre_reg **out)
{
    *out = NULL;
    pthread_mutex_lock(&g_ep_lock);
    int n = 0;
    for (struct ep_reg *r = f->regs; r != NULL; r = r->file_next)
        n += !r->dormant;
    struct pre_reg *p = n ? malloc((size_t)n * sizeof(*p)) : NULL;
    if (n && p == NULL) {
        pthread_mutex_unlock(&g_ep_lock);
        errno = ENOMEM;
        return -1;
    }
    for (int i = 0; f->regs != NULL;) {
        struct ep_reg *r = f->regs;
        struct epset *s = r->set;
        pthread_mutex_lock(&s->lock);
        if (!r->dormant)        /* a dormant one is not the app's: it ends here */
            p[i++] = (struct pre_reg){ .epfd = r->epfd, .fd = r->fd, .ev = app_event_of(r) };
        drop_reg(s, r);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&g_ep_lock);
    *out = p;
    return n;
}

void ev_force_report(struct file *f)
{
    pthread_mutex_lock(&g_ep_lock);
    for (struct ep_reg *r = f->regs; r != NULL; r = r->file_next) {
        pthread_mutex_lock(&r->set->lock);
        r->force = 1;
        __atomic_store_n(&r->fired, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&r->candidate, 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&r->set->lock);
        ev_wake_set(r->set);
    }
    pthread_mutex_unlock(&g_ep_lock);
    if (__atomic_load_n(&g_poll_waiters, __ATOMIC_ACQUIRE) > 0)
        ev_poll_wake_all();
}

/* ---- teardown ------------------------------------------------------------ */

void ev_socket_gone(struct file *f)
{
    if (__atomic_load_n(&f->regs, __ATOMIC_ACQUIRE) == NULL)
        return;
    pthread_mutex_lock(&g_ep_lock);
    while (f->regs != NULL) {
        struct ep_reg *r = f->regs;
        struct epset *s = r->set;
        pthread_mutex_lock(&s->lock);
        unlink_reg(s, r);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&g_ep_lock);
}

void ev_set_gone(struct file *ef)
{
    struct epset *s = ef->ep;
    if (s == NULL)
        return;
    pthread_mutex_lock(&g_ep_lock);
    pthread_mutex_lock(&s->lock);
    while (s->regs != NULL)
        unlink_reg(s, s->regs);
    pthread_mutex_unlock(&s->lock);
    ef->ep = NULL;
    pthread_mutex_unlock(&g_ep_lock);
    LIBC(close)(s->wake_fd);
    ep_arena_free(s);
}

void ev_fork_prepare(void)
{
    pthread_mutex_lock(&g_ep_lock);
}

void ev_fork_parent(void)
{
    pthread_mutex_unlock(&g_ep_lock);
}

void ev_fork_child(void)
{
    pthread_mutex_unlock(&g_ep_lock);   /* taken by this thread in ev_fork_prepare (file.c says why) */
}
