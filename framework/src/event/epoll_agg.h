/* epoll_agg.h - epoll over kernel fds and module sockets with one kernel wait.
 *
 * A module socket's app fd (a dup of its wait fd) sits in the app's kernel
 * epoll with data.ptr = its ep_reg; the set's wake eventfd sits there with
 * data.ptr = the epset. Both live in one reserved address range (the
 * arena) and start with a magic, so a returned data value is recognised by a
 * range check and never confused with the application's data. */
#ifndef EPOLL_AGG_H
#define EPOLL_AGG_H

#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <time.h>

#include "file.h"

struct file;

struct ep_reg {
    uint64_t magic;
    struct epset *set;
    struct file *file;          /* the module socket; valid while linked */
    int fd;                     /* app fd as registered */
    int epfd;                   /* the epoll fd it was registered through */
    /* The fd number in the kernel set: fd (a dup of the wait fd), or for an
     * anchored socket its wait fd, or a high dup of it (own_kfd: ours to
     * close) when another dup of the app fd registered the wait fd in this
     * set already. Fixed while linked. */
    int kfd;
    int own_kfd;
    uint32_t events;            /* app interest and flags */
    epoll_data_t data;          /* app data */
    /* The fields below are guarded by set->lock. */
    uint64_t last_gen;
    int armed;                  /* 0 after an EPOLLONESHOT report */
    int force;                  /* report current readiness once (ADD/MOD) */
    int lt_ready;               /* level-triggered and ready at last check */
    _Atomic int candidate;      /* set by notify / wait fd: check me */
    /* The kernel reported the wait fd readable (or a forced report): the
     * next check is the module's full poll_events; other checks are its
     * poll_recheck (module ABI 1.5). Set before candidate. */
    _Atomic int fired;
    /* The app deleted it (EPOLL_CTL_DEL) but the kernel registration of
     * the wait fd is kept for a later ADD of the same fd (anchored sockets,
     * whose wait fd the module owns): invisible to the app, never
     * reported; dropped for good if its wait fd fires meanwhile. Under
     * set->lock and g_ep_lock. */
    int dormant;
    /* The module's last lazy pass left the socket's wake-up disarmed
     * (NSTACK_EV_UNARMED, module ABI 1.5): arm() before this set sleeps.
     * Under set->lock. */
    int unarmed;
    /* Its module gave it a busy-poll budget when the set last computed
     * its own (module ABI 1.6; epoll_wait.c set_budget): a spinning wait
     * looks only at these. Under set->lock. */
    int spin;
    struct ep_reg *set_next, *set_prev;   /* set->regs, under set->lock + g_ep_lock */
    struct ep_reg *file_next;             /* file->regs, under file->reg_lock + g_ep_lock */
};

struct epset {
    uint64_t magic;
    /* Guards the reg list and reg check state; held while calling a
     * module's poll_events (non-blocking), never across a kernel wait. */
    pthread_mutex_t lock;
    struct ep_reg *regs, *tail;
    _Atomic int n_regs;
    int wake_fd;                /* eventfd, in the kernel epoll, tagged */
    _Atomic int waiters;        /* threads inside epoll_wait on this set */
    _Atomic int nested;         /* the epoll fd is itself watched (epoll/poll) */
};

/* fw->notify(): cookie is the module socket's struct file. */
void ev_notify(void *cookie);

/* Called after every poll_events() the dispatcher makes on module socket f
 * on behalf of set `self` (NULL: poll/select, or no set). When gen moved
 * since the dispatcher last saw it, the call may have drained the wait-fd
 * wake-up that a thread blocked in another set, or in poll/select, sleeps
 * on: those are marked and woken (the calling set and thread excepted).
 * Costs one atomic exchange when gen did not move. */
void ev_polled(struct file *f, const struct epset *self, uint64_t gen);

/* The epoll wrappers' work; `f` is the epoll fd's file (may have ep NULL). */
int ev_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int ev_epoll_wait(int epfd, struct epoll_event *evs, int max, const struct timespec *timeout,
                  const sigset_t *sigmask);
/* After a plain kernel wait on a set that had no module sockets: if another
 * thread registered one meanwhile, drops the framework's tagged entries
 * from the k results (waiting on if none is left). Returns the count. */
int ev_after_raw_wait(int epfd, struct epoll_event *evs, int max, int k, const struct timespec *timeout,
                      const sigset_t *sigmask);
/* A dormant registration of (fd, f) in set s whose wait fd fired: its
 * kernel registration is deleted and it is freed (epoll_wait, after it
 * dropped the set lock). */
void ev_drop_dormant(struct epset *s, int fd, struct file *f);
/* Unlink and free every registration of a module socket (its close). */
void ev_socket_gone(struct file *f);
/* Free an epoll set (its last epoll fd closed). */
void ev_set_gone(struct file *f);
/* Re-register the pre-decision epoll registrations of a socket that moved
 * to a module (fd now holds the module's wait fd). */
void ev_follow_migration(struct file *f, const struct pre_reg *pregs, int n);
/* A module socket leaves for the kernel (connect_late.c): every
 * registration of f is removed from its kernel epoll and unlinked; *out
 * gets a malloc'd copy (epoll fd, fd, the app's event) to re-create on the
 * new socket. Returns the count, or -1/ENOMEM (nothing removed). */
int ev_take_regs(struct file *f, struct pre_reg **out);
/* Every registration of f reports its current readiness at the next look
 * (also edge-triggered ones), and their sets are woken. */
void ev_force_report(struct file *f);
/* The epoll fd ef is watched by another epoll set or by poll/select. */
void ev_mark_nested(struct file *ef);

/* epoll_ctl(epfd, op, fd, ev) of f at fd, by kind (the ep_ctl op,
 * file_ops.h); -1/errno as epoll_ctl.
 * A module socket: the set watches its wait fd and keeps a registration
 * (ep_reg) that asks the module for readiness. */
int ev_ctl_module(struct file *f, int epfd, int op, int fd, struct epoll_event *ev);
/* A kernel socket: the kernel's; one not decided yet (or in the
 * long-lived policy's TCP phase) remembers the registration, to re-create
 * it on the module socket it may move to. */
int ev_ctl_kernel_socket(struct file *f, int epfd, int op, int fd, struct epoll_event *ev);
/* A multi-stack listener: its app fd is an epoll fd, which the kernel
 * refuses to watch with EPOLLEXCLUSIVE (dropped then). */
int ev_ctl_listener(struct file *f, int epfd, int op, int fd, struct epoll_event *ev);
/* An epoll set added to another set: it is nested from now on. */
int ev_ctl_set(struct file *f, int epfd, int op, int fd, struct epoll_event *ev);
void ev_wake_set(struct epset *s);
/* After a read on a module socket whose registrations are in a watched
 * set: a level-triggered registration that is no longer ready stops
 * keeping that set's wake eventfd signalled (see keep_nested_signal). */
void ev_recheck_nested(struct file *f);
/* Locks for fork. */
void ev_fork_prepare(void);
void ev_fork_parent(void);
void ev_fork_child(void);
/* For poll/select: process-wide waiters and their wake-up. */
extern _Atomic int g_poll_waiters;
void ev_poll_wake_all(void);
/* Wakes the threads in poll/select that poll f (others_only: not the
 * calling thread, which is about to look). */
void ev_poll_wake_file(const struct file *f, int others_only);
int ev_poll_wait_register(void);   /* returns this thread's wake eventfd */
void ev_poll_wait_unregister(int wake_fd);

#endif
