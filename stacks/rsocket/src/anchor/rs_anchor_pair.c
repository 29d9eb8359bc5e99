/*
 * rs_anchor_pair.c - both ends of one anchored connection in this process.
 *
 * Each end's handshake runs when that end is used (a call, poll_events).
 * When both ends live in one process, a thread that waits on one end (a
 * blocking send, a poll on the client only) must also drive the other:
 * the active waits for the passive's OFFER, which the passive writes only
 * when its own machine runs. So the ends find each other (the registry of
 * upgrading sockets: one end's local address is the other's peer), and
 * while a pair upgrades, the TCP sockets, timers and rdma_cm channels of
 * its handshakes are mirrored into one process-wide epoll fd (pr_fd) that
 * sits in the wait fd of every paired socket. A wait on either end then
 * wakes on the other's step, and rs_anc_pair_run() steps every ready end
 * (try-locked, never waited for). pr_fd holds only raw fds, never a wait
 * fd, so no epoll loop can form; sockets that are not paired never touch
 * it (the kernel caps nested wake-up paths, see rs_lprog.c).
 *
 * Locking: pr_lock guards the registry (the links' list fields, `paired`)
 * and is taken with a socket lock held (leaf, never held while waiting).
 * run_lock serialises pr_fd's readers with the closing of a paired socket:
 * rs_anc_pair_close() takes it (no socket lock held) before the socket is
 * freed, so a pointer read from pr_fd stays valid while run_lock is held.
 * The mirror slots of a link are guarded by its socket's lock.
 */
#include "rs_anchor.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define RS_PAIR_BATCH 16

static pthread_mutex_t pr_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rs_anc_link *pr_head;
static int pr_fd = -1;            /* written once (under pr_lock), read atomically */
static pid_t pr_owner;

static int same(const struct sockaddr_storage *a, socklen_t al, const struct sockaddr_storage *b, socklen_t bl)
{
    return al == bl && memcmp(a, b, al) == 0;
}

/* The process's fd, made at the first pair; a fork child makes its own. */
static int pr_fd_get_locked(void)
{
    static int atfork_done;
    if (!atfork_done)
        atfork_done = pthread_atfork(NULL, NULL, rs_anc_pair_fork_child) == 0;
    if (pr_fd < 0 || pr_owner != getpid()) {
        pr_head = NULL;             /* the parent's sockets are not ours */
        __atomic_store_n(&pr_fd, epoll_create1(EPOLL_CLOEXEC), __ATOMIC_RELEASE);
        pr_owner = getpid();
    }
    return pr_fd;
}

/* Lock held. Adds l to the registry; when its other end is there, both
 * become paired (the other end mirrors at its next step: it is woken). */
void rs_anc_pair_join(struct rsock *s, struct rs_anc_link *l, int kfd)
{
    struct rs_anc_link *o = NULL;
    l->s = s;
    for (int i = 0; i < 4; i++)
        l->mfd[i] = -1;
    l->llen = l->plen = sizeof(l->local);
    if (rs_anc_addr(kfd, 0, &l->local, &l->llen) || rs_anc_addr(kfd, 1, &l->peer, &l->plen))
        return;
    pthread_mutex_lock(&pr_lock);
    if (pr_fd_get_locked() < 0) {
        pthread_mutex_unlock(&pr_lock);
        return;
    }
    for (o = pr_head; o && !(same(&o->local, o->llen, &l->peer, l->plen) &&
                             same(&o->peer, o->plen, &l->local, l->llen)); o = o->next)
        ;
    l->next = pr_head;
    l->prev = NULL;
    if (pr_head)
        pr_head->prev = l;
    pr_head = l;
    l->in_reg = 1;
    if (o) {
        __atomic_store_n(&l->paired, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&o->paired, 1, __ATOMIC_RELAXED);
        /* mirrored now, so that a wait on this end drives it; a thread
         * that holds it mirrors at the end of its step */
        if (pthread_mutex_trylock(&o->s->lock) == 0) {
            rs_anchor_mirror(o->s);
            rs_event(o->s);
            pthread_mutex_unlock(&o->s->lock);
        }
    }
    pthread_mutex_unlock(&pr_lock);
    if (o)
        rs_log(1, "anchor: both ends of the connection are in this process: their handshakes run together");
}

static void unlink_locked(struct rs_anc_link *l)
{
    if (!l->in_reg)
        return;
    if (l->prev)
        l->prev->next = l->next;
    else if (pr_head == l)
        pr_head = l->next;
    if (l->next)
        l->next->prev = l->prev;
    l->next = l->prev = NULL;
    l->in_reg = 0;
}

/* Socket lock held: the mirror of the handshake's fds (fds[i] -1: none). */
void rs_anc_pair_sync(struct rsock *s, struct rs_anc_link *l, const int fds[4], const uint32_t evs[4])
{
    int fd = __atomic_load_n(&pr_fd, __ATOMIC_ACQUIRE);
    if (!__atomic_load_n(&l->paired, __ATOMIC_RELAXED) || fd < 0 || pr_owner != getpid())
        return;
    if (!l->pr_in_wait && rs_wait_fd_add(s, fd) == 0)
        l->pr_in_wait = 1;
    for (int i = 0; i < 4; i++) {
        if (l->mfd[i] == fds[i] && l->mev[i] == evs[i])
            continue;
        struct epoll_event e = { .events = evs[i], .data.ptr = l };
        if (l->mfd[i] >= 0 && l->mfd[i] == fds[i]) {
            epoll_ctl(fd, EPOLL_CTL_MOD, fds[i], &e);
        } else {
            if (l->mfd[i] >= 0)
                epoll_ctl(fd, EPOLL_CTL_DEL, l->mfd[i], NULL);
            if (fds[i] >= 0 && epoll_ctl(fd, EPOLL_CTL_ADD, fds[i], &e) != 0 && errno == EEXIST)
                epoll_ctl(fd, EPOLL_CTL_MOD, fds[i], &e);
        }
        l->mfd[i] = fds[i];
        l->mev[i] = evs[i];
    }
}

/* fork child: the parent's pairs are not ours (their links are left
 * alone: rs_anc_pair_leave skips a socket made before the fork). The old
 * fd stays open: inherited wait fds may contain it. */
void rs_anc_pair_fork_child(void)
{
    pthread_mutex_init(&pr_lock, NULL);
    pthread_mutex_init(&run_lock, NULL);
    pr_head = NULL;
    pr_fd = -1;
    pr_owner = getpid();
}

/* Socket lock held: the handshake ended; nothing of s stays in pr_fd. */
void rs_anc_pair_leave(struct rsock *s, struct rs_anc_link *l)
{
    if (s->fork_gen != __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED)) {
        l->in_reg = l->pr_in_wait = 0;       /* the parent's registry and fd */
        __atomic_store_n(&l->paired, 0, __ATOMIC_RELAXED);
        return;
    }
    static const int none[4] = { -1, -1, -1, -1 };
    static const uint32_t zero[4];
    rs_anc_pair_sync(s, l, none, zero);
    int fd = __atomic_load_n(&pr_fd, __ATOMIC_ACQUIRE);
    if (l->pr_in_wait && fd >= 0)
        epoll_ctl(s->wait_fd, EPOLL_CTL_DEL, fd, NULL);
    l->pr_in_wait = 0;
    pthread_mutex_lock(&pr_lock);
    unlink_locked(l);
    __atomic_store_n(&l->paired, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&pr_lock);
}

/* No lock held, before s is freed: no reader of pr_fd holds s after this. */
void rs_anc_pair_close(struct rsock *s, struct rs_anc_link *l)
{
    pthread_mutex_lock(&run_lock);
    pthread_mutex_lock(&s->lock);
    rs_anc_pair_leave(s, l);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&run_lock);
}

/* Steps every paired end that has something to do (no socket lock held). */
void rs_anc_pair_run(void)
{
    struct epoll_event ev[RS_PAIR_BATCH];
    int fd = __atomic_load_n(&pr_fd, __ATOMIC_ACQUIRE);
    if (fd < 0 || pr_owner != getpid() || pthread_mutex_trylock(&run_lock))
        return;                      /* another thread runs them now */
    int n = epoll_wait(fd, ev, RS_PAIR_BATCH, 0);
    for (int i = 0; i < n; i++) {
        struct rs_anc_link *l = ev[i].data.ptr;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = ev[j].data.ptr == l;
        if (!seen)
            rs_anchor_drive(l->s);
    }
    pthread_mutex_unlock(&run_lock);
}
