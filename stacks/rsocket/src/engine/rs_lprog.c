/*
 * rs_lprog.c - passive-side progress without a thread.
 *
 * A kernel TCP listener completes handshakes into its backlog while the
 * application does something else; an rsocket listener only answers a
 * CONNECT_REQUEST when someone reads its CM channel. So that a program
 * blocked on *any* rsocket of the process (a blocking connect to its own
 * listener, a nonblocking connect waited on with epoll) still completes
 * incoming connections, the process keeps one "listener progress" epoll fd
 * holding every listener's CM channel fd. That fd is part of every
 * connecting socket's wait fd, so such a wait wakes when a request
 * arrives, and rs_lprog_run() (called after the waits and poll_events of
 * connecting sockets and listeners: rs_wait_serves_listeners) answers it:
 * bounded work, no periodic wake-up.
 *
 * Only sockets that are connecting carry the fd in their wait fd (added
 * by rs_conn_start, removed once the connect has an outcome): the kernel
 * caps the wake-up paths from one file through nested epolls (about 100
 * at the depth listener fd -> this fd -> wait fd -> application epoll),
 * and a server with every accepted socket in its epoll would hit that
 * cap (epoll_ctl EINVAL past 100 connections).
 *
 * Locking: lp_lock guards lp_fd (written once per process, read atomically), lp_count and each rsock.lp_registered.
 * Order: a socket's own lock may be held when taking lp_lock; listeners
 * are then only try-locked (never waited for), so no cycle exists. A
 * listener is unregistered before it is freed, under lp_lock, so a pointer
 * found in lp_fd is valid while lp_lock is held.
 */
#include "rs_sock.h"

#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <unistd.h>

#define RS_LPROG_BATCH 16   /* listeners served per call (bounded work) */

static pthread_mutex_t lp_lock = PTHREAD_MUTEX_INITIALIZER;
static int lp_fd = -1;        /* epoll over the listeners' CM channel fds */
static int lp_count;          /* listeners registered; read unlocked as a hint */
static pid_t lp_owner;        /* process the three above belong to */

/* The fd is created at the first socket and kept for the process. */
static int lp_fd_get_locked(void)
{
    if (lp_fd < 0) {
        __atomic_store_n(&lp_fd, epoll_create1(EPOLL_CLOEXEC), __ATOMIC_RELEASE);
        lp_owner = getpid();
    }
    return lp_fd;
}

/* Socket lock held; lp_lock only taken to create the fd. */
int rs_lprog_add_to_wait_fd(struct rsock *s)
{
    if (s->lp_in_wait)
        return 0;
    int fd = __atomic_load_n(&lp_fd, __ATOMIC_ACQUIRE);
    if (fd < 0) {
        pthread_mutex_lock(&lp_lock);
        fd = lp_fd_get_locked();
        pthread_mutex_unlock(&lp_lock);
    }
    if (fd < 0 || rs_wait_fd_add(s, fd))
        return -1;
    __atomic_store_n(&s->lp_in_wait, 1, __ATOMIC_RELAXED);   /* read unlocked: rs_sock.h */
    return 0;
}

/* Socket lock held. A fork child's fresh fd was never in an inherited
 * wait fd, so only the fd recorded when it was added is removed. */
void rs_lprog_del_from_wait_fd(struct rsock *s)
{
    int fd = __atomic_load_n(&lp_fd, __ATOMIC_ACQUIRE);
    if (!s->lp_in_wait)
        return;
    __atomic_store_n(&s->lp_in_wait, 0, __ATOMIC_RELAXED);
    if (fd >= 0)
        epoll_ctl(s->wait_fd, EPOLL_CTL_DEL, fd, NULL);
}

int rs_lprog_register(struct rsock *s)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
    int r = 0;

    pthread_mutex_lock(&lp_lock);
    if (!s->lp_registered) {
        int fd = lp_fd_get_locked();
        r = fd < 0 ? -1 : epoll_ctl(fd, EPOLL_CTL_ADD, s->cm_chan->fd, &ev);
        if (r == 0) {
            s->lp_registered = 1;
            __atomic_add_fetch(&lp_count, 1, __ATOMIC_RELAXED);
        }
    }
    pthread_mutex_unlock(&lp_lock);
    return r;
}

void rs_lprog_unregister(struct rsock *s)
{
    /* An inherited listener (fork child) was never in this process's fd. */
    if (s->fork_gen != __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&lp_lock);
    if (s->lp_registered) {
        epoll_ctl(lp_fd, EPOLL_CTL_DEL, s->cm_chan->fd, NULL);
        s->lp_registered = 0;
        __atomic_sub_fetch(&lp_count, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&lp_lock);
}

/* Answer one listener's pending requests unless another thread is working
 * on it right now (then that thread does it; lp_fd stays readable until
 * the events are read, so nothing is lost). */
static void serve_listener(struct rsock *l)
{
    if (pthread_mutex_trylock(&l->lock))
        return;
    uint64_t before = l->gen;
    if (l->fork_gen == __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED))
        rs_conn_process_cm(l);
    void *cookie = l->gen != before ? l->cookie : NULL;
    pthread_mutex_unlock(&l->lock);
    /* The application may sleep on the listener in the dispatcher. */
    if (cookie && rs_notify_fn)
        rs_notify_fn(cookie);
}

void rs_lprog_run(void)
{
    struct epoll_event ev[RS_LPROG_BATCH];

    if (__atomic_load_n(&lp_count, __ATOMIC_RELAXED) == 0)
        return;
    pthread_mutex_lock(&lp_lock);
    int n = lp_fd < 0 ? 0 : epoll_wait(lp_fd, ev, RS_LPROG_BATCH, 0);
    for (int i = 0; i < n; i++)
        serve_listener(ev[i].data.ptr);
    pthread_mutex_unlock(&lp_lock);
}

/* fork child: the parent's listeners are not ours. A fresh fd keeps the
 * child from reading (and answering) the parent's connection requests;
 * the old one is left open, since inherited wait fds still contain it.
 * Called from more than one fork hook: the pid makes it run once. */
void rs_lprog_fork_child(void)
{
    if (lp_owner == getpid())
        return;
    lp_owner = getpid();
    pthread_mutex_init(&lp_lock, NULL);
    lp_fd = -1;
    lp_count = 0;
}
