/* multilisten.c - a wildcard listener served by several stacks.
 *
 * A server listening on 0.0.0.0 / :: must be reachable by kernel clients
 * and by clients of every module that serves one of this host's addresses.
 * The kernel socket keeps listening (moved to a private fd, `kfd`); each
 * extra stack gets its own listener on the same address and port. The app
 * fd becomes a private epoll fd holding kfd, every module listener's wait
 * fd and `pend_efd`, so poll/epoll/select on it mean "a connection is
 * pending on some stack" at the cost of one kernel wait.
 *
 * Module wait fds are edge-like (drained by poll_events), so a module
 * listener that still has a connection queued after an accept would leave
 * the app fd silent: `pend_efd` is kept signalled while any module listener
 * reports EPOLLIN after an accept attempt, and drained when none does.
 */
#include "multilisten.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "anchor.h"
#include "epoll_agg.h"
#include "fd_high.h"
#include "fd_table.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"
#include "migrate.h"
#include "module_ops.h"
#include "sig_track.h"
#include "sock.h"
#include "stats.h"

struct ml_member {
    int stack;
    nstack_sock *sock;          /* module listener; NULL for the kernel */
};

struct mlisten {
    int epfd;                   /* private ref to the app fd's epoll instance */
    int kfd;                    /* the kernel listening socket */
    int pend_efd;               /* signalled: a module listener has a backlog */
    /* Serialises accept attempts and the pend_efd update that follows, so
     * a thread that saw "nothing pending" cannot drain the signal another
     * thread just set. Never held across a blocking wait. */
    pthread_mutex_t lock;
    unsigned next;              /* round-robin start (under lock) */
    int n;
    struct ml_member m[FW_MAX_STACKS];
};

static struct mlisten *ml_new(void)
{
    struct mlisten *ml = calloc(1, sizeof(*ml));
    if (ml == NULL)
        return NULL;
    ml->kfd = -1;
    ml->epfd = fd_move_high(LIBC(epoll_create1)(EPOLL_CLOEXEC));
    ml->pend_efd = fd_move_high(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    struct epoll_event ev = { .events = EPOLLIN };
    if (ml->epfd < 0 || ml->pend_efd < 0 || LIBC(epoll_ctl)(ml->epfd, EPOLL_CTL_ADD, ml->pend_efd, &ev) < 0) {
        int err = errno;
        if (ml->epfd >= 0)
            LIBC(close)(ml->epfd);
        if (ml->pend_efd >= 0)
            LIBC(close)(ml->pend_efd);
        free(ml);
        errno = err;
        return NULL;
    }
    pthread_mutex_init(&ml->lock, NULL);
    return ml;
}

static void ml_free(struct mlisten *ml)
{
    for (int i = 0; i < ml->n; i++) {
        if (ml->m[i].sock == NULL)
            continue;
        MOD_ENTER();
        g_stacks[ml->m[i].stack].mod->close(ml->m[i].sock);
        MOD_LEAVE();
    }
    if (ml->kfd >= 0)
        LIBC(close)(ml->kfd);
    LIBC(close)(ml->pend_efd);
    LIBC(close)(ml->epfd);
    pthread_mutex_destroy(&ml->lock);
    free(ml);
}

/* The kernel member: kf's socket, listening, moved to a private
 * nonblocking fd (accept must never block in one stack while another has a
 * connection). */
static int ml_add_kernel(struct mlisten *ml, int fd, int backlog)
{
    if (LIBC(listen)(fd, backlog) < 0)
        return -1;
    ml->kfd = fd_dup_high(fd);
    int fl = ml->kfd < 0 ? -1 : LIBC(fcntl)(ml->kfd, F_GETFL);
    struct epoll_event ev = { .events = EPOLLIN };
    if (fl < 0 || LIBC(fcntl)(ml->kfd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        LIBC(epoll_ctl)(ml->epfd, EPOLL_CTL_ADD, ml->kfd, &ev) < 0)
        return -1;
    ml->m[ml->n++] = (struct ml_member){ .stack = g_kernel_stack };
    return 0;
}

/* The module listeners' cookie: nothing is registered on it, so notify()
 * finds no set to wake (the accept path re-checks by itself). */
static struct file g_ml_cookie;

/* One module listener on the same address and port; a failure only drops
 * that stack (the kernel keeps serving). */
static void ml_add_module(struct mlisten *ml, int fd, struct file *kf, int st,
                          const struct sockaddr *addr, socklen_t alen, int backlog)
{
    const struct nstack_module *m = g_stacks[st].mod;
    nstack_sock *s = NULL;
    const char *step = "socket";
    MOD_ENTER();
    int wfd = m->socket(kf->domain, kf->type | SOCK_NONBLOCK, kf->protocol, &s);
    if (wfd >= 0) {
        m->set_cookie(s, &g_ml_cookie);
        for (int i = 0; i < kf->n_opts; i++)
            (void)m->setsockopt(s, kf->opts[i].level, kf->opts[i].name, kf->opts[i].val, kf->opts[i].len);
        if (!MODULE_IMPLEMENTS(m, accept))
            step = "listen (not supported)", errno = EOPNOTSUPP;
        else if (m->bind(s, addr, alen) < 0)
            step = "bind";
        else if (m->listen(s, backlog) < 0)
            step = "listen";
        else
            step = NULL;
    }
    int err = errno;
    MOD_LEAVE();
    struct epoll_event ev = { .events = EPOLLIN };
    if (step == NULL && LIBC(epoll_ctl)(ml->epfd, EPOLL_CTL_ADD, wfd, &ev) < 0) {
        step = "epoll_ctl";
        err = errno;
    }
    if (step == NULL) {
        ml->m[ml->n++] = (struct ml_member){ .stack = st, .sock = s };
        stats_add(st, NSTAT_SOCKETS, 1);
        return;
    }
    LOG_WAR("fd %d: wildcard listener: %s: %s failed: %s; that stack does not serve it", fd,
            g_stacks[st].name, step, strerror(err));
    if (s != NULL) {
        MOD_ENTER();
        m->close(s);
        MOD_LEAVE();
    }
}

/* Registrations of the undecided socket in app epoll sets name the kernel
 * socket, which stays open (kfd): they are taken out before the app fd
 * becomes the epoll fd and put back for it afterwards. */
static void ml_pregs(const struct file *kf, int fd, int op)
{
    for (int i = 0; i < kf->n_pregs; i++) {
        if (kf->pregs[i].fd != fd)
            continue;
        struct epoll_event ev = kf->pregs[i].ev;
        (void)LIBC(epoll_ctl)(kf->pregs[i].epfd, op, fd, &ev);
    }
}

/* Publishes the listener: the app fd (and its dups) become the epoll fd. */
static int ml_publish(int fd, struct file *kf, struct mlisten *ml)
{
    struct file *nf = sock_file_like(FILE_MLISTEN, kf, g_kernel_stack);
    if (nf == NULL)
        return -1;
    nf->ml = ml;
    ml_pregs(kf, fd, EPOLL_CTL_DEL);
    if (fd_migrate_one(fd, ml->epfd) < 0) {
        int err = errno;
        ml_pregs(kf, fd, EPOLL_CTL_ADD);
        nf->ml = NULL;
        file_free(nf);
        errno = err;
        return -1;
    }
    ml_pregs(kf, fd, EPOLL_CTL_ADD);
    __atomic_store_n(&kf->decided, 1, __ATOMIC_RELEASE);
    fd_table_set(fd, nf);       /* the table takes nf's first reference */
    sock_move_dups(fd, kf, nf);
    file_put(kf);               /* the table's reference (the caller holds another) */
    return 0;
}

/* kfd shares the app fd's file status flags (a dup): a listener left on
 * the kernel alone gets its blocking mode back, or a blocking accept()
 * would fail with EAGAIN at once. */
static void ml_give_back_blocking(int fd, const struct file *kf)
{
    int fl = LIBC(fcntl)(fd, F_GETFL);
    if (fl >= 0 && !__atomic_load_n(&kf->nonblock, __ATOMIC_RELAXED))
        (void)LIBC(fcntl)(fd, F_SETFL, fl & ~O_NONBLOCK);
}

static int ml_build(int fd, struct file *kf, const int *stacks, int n, int backlog, int *ret)
{
    struct mlisten *ml = ml_new();
    if (ml == NULL || ml_add_kernel(ml, fd, backlog) < 0) {
        *ret = -1;              /* listen() itself failed: report it as the kernel did */
        if (ml != NULL) {
            int err = errno;
            ml_free(ml);
            ml_give_back_blocking(fd, kf);
            errno = err;
        }
        return 1;
    }
    struct sockaddr_storage ss;
    socklen_t alen = sizeof(ss);
    if (LIBC(getsockname)(ml->kfd, (struct sockaddr *)&ss, &alen) == 0)
        for (int i = 0; i < n; i++)
            if (!g_stacks[stacks[i]].is_kernel)
                ml_add_module(ml, fd, kf, stacks[i], (struct sockaddr *)&ss, alen, backlog);
    if (ml->n < 2 || ml_publish(fd, kf, ml) < 0) {
        ml_free(ml);            /* closes kfd; the app fd still holds the listening socket */
        ml_give_back_blocking(fd, kf);
        sock_mark_kernel(kf, g_kernel_stack);
        *ret = 0;
        return 1;
    }
    stats_add(g_kernel_stack, NSTAT_SOCKETS, 1);
    *ret = 0;
    return 1;
}

int ml_listen(int fd, struct file *kf, int backlog, int *ret)
{
    int stacks[FW_MAX_STACKS];
    fw_start();
    pthread_mutex_lock(&kf->lock);
    int handled = 0;
    if (!kf->decided && fd_table_get(fd) == kf && !__atomic_load_n(&kf->defer_stack, __ATOMIC_ACQUIRE)) {
        int n = fw_listen_stacks(kf, fd, stacks, FW_MAX_STACKS);
        /* The kernel socket already holds the port, so only a plan that
         * includes the kernel stack is built here. */
        int has_kernel = 0;
        for (int i = 0; i < n; i++)
            has_kernel |= g_stacks[stacks[i]].is_kernel;
        if (n > 1 && has_kernel)
            handled = ml_build(fd, kf, stacks, n, backlog, ret);
    }
    int err = errno;
    pthread_mutex_unlock(&kf->lock);
    errno = err;
    return handled;
}

/* ---- accept ------------------------------------------------------------- */

static int ml_accept_kernel(const struct file *f, struct mlisten *ml, struct sockaddr *addr,
                            socklen_t *len, int flags)
{
    int fd = LIBC(accept4)(ml->kfd, addr, len, flags);
    if (fd < 0)
        return -1;
    int anchored = anchor_track_accepted(fd, f, (flags & SOCK_NONBLOCK) != 0);
    if (anchored < 0 ||
        (!anchored && sock_track_kernel(fd, f->domain, f->type | (flags & SOCK_NONBLOCK), f->protocol, 1) < 0)) {
        int err = errno;
        LIBC(close)(fd);
        errno = err;
        return -1;
    }
    if (!anchored)
        stats_add(g_kernel_stack, NSTAT_CONN_IN, 1);
    return fd;
}

static uint32_t ml_module_events(const struct ml_member *mm)
{
    uint64_t gen;
    MOD_ENTER();
    uint32_t ev = g_stacks[mm->stack].mod->poll_events(mm->sock, &gen);
    MOD_LEAVE();
    return ev;
}

static int ml_accept_member(const struct file *f, struct mlisten *ml, const struct ml_member *mm,
                            struct sockaddr *addr, socklen_t *len, int flags)
{
    if (mm->sock == NULL)
        return ml_accept_kernel(f, ml, addr, len, flags);
    if (!(ml_module_events(mm) & EPOLLIN)) {
        errno = EAGAIN;
        return -1;
    }
    return sock_accept_module(mm->stack, f, mm->sock, addr, len, flags);
}

/* Keeps pend_efd signalled exactly while some module listener reports a
 * pending connection (its wait fd may already have been drained). */
static int ml_any_pending(const struct mlisten *ml)
{
    int pending = 0;
    for (int i = 0; i < ml->n && !pending; i++)
        pending = ml->m[i].sock != NULL && (ml_module_events(&ml->m[i]) & EPOLLIN);
    return pending;
}

static void ml_update_pending(struct mlisten *ml)
{
    uint64_t v = 1;
    if (ml_any_pending(ml))
        (void)LIBC(write)(ml->pend_efd, &v, sizeof(v));
    else
        (void)LIBC(read)(ml->pend_efd, &v, sizeof(v));
}

static int is_retry(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK || err == ECONNABORTED;
}

/* One round over the stacks, starting after the one that served last. */
static int ml_try_all(struct file *f, struct sockaddr *addr, socklen_t *len, int flags)
{
    struct mlisten *ml = f->ml;
    int r = -1, err = EAGAIN;
    pthread_mutex_lock(&ml->lock);
    for (int k = 0; k < ml->n && r < 0; k++) {
        unsigned i = (ml->next + (unsigned)k) % (unsigned)ml->n;
        r = ml_accept_member(f, ml, &ml->m[i], addr, len, flags);
        if (r >= 0)
            ml->next = i + 1;
        else if (!is_retry(errno)) {
            err = errno;
            break;
        }
    }
    ml_update_pending(ml);
    pthread_mutex_unlock(&ml->lock);
    if (r < 0)
        errno = err;
    return r;
}

/*
 * Blocking accept: sleep in the kernel until some stack stirs. Another
 * thread of this process may do a module listener's work (a connect to it
 * answers its requests) and so drain its wait fd: the module then notifies
 * the listeners' cookie, which wakes the registered poll waiters; this
 * thread is one from before its last look (ml_try_all once more) until it
 * wakes. Returns 0 to try again, -1 with errno.
 */
static int ml_sleep(struct file *f)
{
    int wake = ev_poll_wait_register();
    int r = 0;
    if (!ml_any_pending(f->ml)) {
        struct pollfd p[2] = { { .fd = f->ml->epfd, .events = POLLIN },
                               { .fd = wake, .events = POLLIN } };
        uint64_t mark = sig_mark();
        r = LIBC(poll)(p, wake >= 0 ? 2 : 1, -1) < 0 ? -1 : 0;
        if (r < 0 && errno == EINTR && sig_restarts(mark, sock_rcv_timed(f->ml->kfd)))
            r = 0;
    }
    int err = errno;
    if (wake >= 0)
        ev_poll_wait_unregister(wake);
    errno = err;
    return r;
}

int ml_accept(struct file *f, struct sockaddr *addr, socklen_t *len, int flags)
{
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) {
        errno = EINVAL;
        return -1;
    }
    for (;;) {
        int r = ml_try_all(f, addr, len, flags);
        if (r >= 0 || errno != EAGAIN || __atomic_load_n(&f->nonblock, __ATOMIC_RELAXED))
            return r;
        if (ml_sleep(f) < 0)
            return -1;
    }
}

/* ---- fork ---------------------------------------------------------------- */

static void reset_accept_lock(int fd, struct file *f, void *arg)
{
    (void)fd;
    (void)arg;
    if (f->kind == FILE_MLISTEN && f->ml != NULL)
        pthread_mutex_init(&f->ml->lock, NULL);
}

/* Another thread of the parent may have been inside an accept attempt (it
 * holds ml->lock across module calls, so the lock cannot simply be taken
 * in fork_prepare without ordering it before every framework lock). The
 * child has one thread: a listener it can reach has an fd, so walking the
 * fd table finds every lock that matters; `next` and pend_efd need no
 * repair (any value is valid; pend_efd is re-evaluated by the next accept). */
void ml_fork_child(void)
{
    fd_table_each(0, -1, reset_accept_lock, NULL);
}

/* ---- calls on every stack ----------------------------------------------- */

int ml_kernel_fd(const struct file *f)
{
    return f->ml->kfd;
}

/* Runs a module op on every module listener; their results are dropped
 * because the call answers with the kernel listener's result. */
#define ML_EACH_MODULE(f, op, ...)                                            \
    do {                                                                      \
        for (int i_ = 0; i_ < (f)->ml->n; i_++) {                             \
            const struct ml_member *mm_ = &(f)->ml->m[i_];                    \
            const struct nstack_module *m_ = g_stacks[mm_->stack].mod;        \
            if (mm_->sock == NULL || m_->op == NULL)                          \
                continue;                                                     \
            MOD_ENTER();                                                      \
            (void)m_->op(mm_->sock, __VA_ARGS__);                             \
            MOD_LEAVE();                                                      \
        }                                                                     \
    } while (0)

int ml_setsockopt(struct file *f, int level, int name, const void *val, socklen_t len)
{
    int r = LIBC(setsockopt)(f->ml->kfd, level, name, val, len);
    int err = errno;
    ML_EACH_MODULE(f, setsockopt, level, name, val, len);
    errno = err;
    return r;
}

int ml_shutdown(struct file *f, int how)
{
    int r = LIBC(shutdown)(f->ml->kfd, how);
    int err = errno;
    ML_EACH_MODULE(f, shutdown, how);
    errno = err;
    return r;
}

int ml_relisten(struct file *f, int backlog)
{
    int r = LIBC(listen)(f->ml->kfd, backlog);
    int err = errno;
    ML_EACH_MODULE(f, listen, backlog);
    errno = err;
    return r;
}

void ml_release(struct file *f)
{
    if (f->ml != NULL)
        ml_free(f->ml);
    f->ml = NULL;
}
