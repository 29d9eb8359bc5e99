/* file.h - what an app fd refers to, shared by every dup of it.
 *
 * Files live in type-stable memory (a pool that is never returned to the
 * system), so a thread that loaded a pointer from the fd table may always
 * dereference it; file_get() then takes a reference only if the file is
 * still live and still in the table (the SLAB_TYPESAFE_BY_RCU pattern).
 * A file's socket/module fields are fixed once the file is published;
 * mutable routing state is guarded by `lock`. */
#ifndef FILE_H
#define FILE_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "file_ops.h"
#include "nstack/nstack_module.h"

enum file_kind {
    FILE_KSOCK = 1,    /* AF_INET/6 kernel socket (undecided, or on the kernel stack) */
    FILE_MSOCK,        /* a module socket; the app fd is a dup of its wait fd, or
                        * (anchored, anchor.c) the TCP socket the module sits beside */
    FILE_EPOLL,        /* an epoll set holding module registrations */
    FILE_MLISTEN,      /* a wildcard listener on several stacks (multilisten.c);
                        * the app fd is a private epoll fd over their wait fds */
};

#define FILE_MAX_OPTS 12
#define FILE_OPT_VAL_MAX 32

/* A setsockopt() made before the routing decision, replayed on the module. */
struct opt_rec {
    int level, name;
    socklen_t len;
    unsigned char val[FILE_OPT_VAL_MAX];
};

/* An epoll registration of a not-yet-routed socket, to re-create after the
 * socket moved to a module. */
struct pre_reg {
    int epfd;
    int fd;                     /* the fd number registered (fd or a dup) */
    struct epoll_event ev;
};

struct anchor_side;
struct ep_reg;
struct epset;
struct mlisten;

struct file {
    _Atomic int ref;            /* table entries + in-flight calls */
    int kind;                   /* enum file_kind; fixed while live */
    /* What the interposed calls do with this file (file_ops.h): its
     * kind's table, set before the file is published, fixed after. Read
     * it only holding a reference: a lock-free peek (fd_table_get) may
     * see a file being remade, with ops zeroed for a moment. */
    const struct file_ops *ops;
    /* Stack index for counters. Set before the file is published, or at
     * the routing decision (sock_mark_kernel, stay_on_tcp) with an atomic
     * store made before `decided` is released; the data path reads it
     * with atomic loads and no lock. */
    int stack;

    /* ---- sockets (KSOCK and MSOCK) ---- */
    int domain, type, protocol; /* type without SOCK_NONBLOCK/CLOEXEC */
    _Atomic int nonblock;       /* O_NONBLOCK as the app set it */

    /* Guards the routing fields below (decided, opts, pregs, bound_wild).
     * Held across the routing decision (which may block in a module's
     * connect); never taken on the data path. */
    pthread_mutex_t lock;
    _Atomic int decided;        /* KSOCK: 1 once the kernel stack was chosen */
    int bound_wild;             /* KSOCK bound to a wildcard address */
    int n_opts;
    struct opt_rec opts[FILE_MAX_OPTS];
    int n_pregs, cap_pregs;
    struct pre_reg *pregs;

    /* ---- MSOCK ---- */
    const struct nstack_module *mod;
    nstack_sock *sock;
    /* Registrations of this socket in epoll sets. Guarded by reg_lock,
     * which is only held for list walks (never across a module call or a
     * blocking syscall); lock order: epset->lock, then reg_lock. */
    pthread_mutex_t reg_lock;
    struct ep_reg *regs;
    /* 1 once a registration of this socket is in a watched (nested) set:
     * its reads then re-check that set's readiness. Never cleared. */
    _Atomic int in_nested_set;
    /* The module's gen as the dispatcher's last poll_events call on this
     * socket returned it: a call that sees it move may have consumed the
     * wake-up another waiter sleeps on (ev_polled). Atomic, no lock. */
    _Atomic uint64_t seen_gen;
    /* When poll/select last made the module's full look at this socket
     * (CLOCK_MONOTONIC ns): the first look of a call is a recheck until
     * POLL_FULL_EVERY_NS passed (poll_agg.c). Atomic, no lock. */
    _Atomic int64_t poll_full_ns;
    /* TCP-anchored socket (anchor.c; 0/-1 otherwise). anchor_fd is the
     * TCP socket handed to the module as kfd: the app's own number while
     * anchor_fd_own is 0 (module ABI 1.5, anchor_fd.h), else the
     * dispatcher's high dup, closed with the file; it moves from the
     * former to the latter once (under `lock`, anchor_fd_own stored last,
     * atomic) and is fixed afterwards. wait_fd is the module's wait fd,
     * which the event layer registers in place of the app fd.
     * anchor_state: enum anchor_state, ANCHOR_UP until sock_fallback()
     * CASes it to DOWN. */
    int anchored;
    int anchor_direct;          /* anchored beside a refused TCP connect (anchor_direct.c) */
    int anchor_fd;
    _Atomic int anchor_fd_own;
    int wait_fd;
    _Atomic int anchor_state;
    /* 1 once anchor_release() returned the upgraded connection to TCP
     * before a fork/exec (anchor_fork.c); its fallback is then no sign of
     * a peer without the framework. Written before the fork, then read. */
    int downgraded;
    /* Late connect fallback (connect_late.c): fb_state is enum fb_state,
     * FB_PENDING from before the module's nonblocking connect until it is
     * known to have succeeded or failed (left by CAS; the move itself runs
     * under `lock`). fb_stack and fb_dest are written before the module's
     * connect and read-only afterwards; the options to replay are kept in
     * opts/n_opts (copied from the kernel socket). fb_err: the module's
     * error of a declined fallback, handed out once by SO_ERROR. */
    _Atomic int fb_state;
    int fb_stack;
    socklen_t fb_dest_len;
    struct sockaddr_storage fb_dest;
    _Atomic int fb_err;

    /* ---- TCP-anchored candidates (anchor.c); KSOCK only ----
     * defer_stack: index + 1 of the module that will carry the connection
     * (0: not deferred); defer_role: enum anchor_role. Written under `lock`
     * while the socket is undecided, read with atomics on the data path. */
    _Atomic int defer_stack;
    _Atomic int defer_role;
    /* 1: the deferred connection is anchored (anchor.c) once used;
     * hello_sent: anchor_hello() went out for it (in the process
     * that accepted/connected it; a fork child inherits the mark).
     * Written before defer_role is released. */
    _Atomic int defer_anchor;
    int hello_sent;
    /* Stayed on (or went back to) TCP after the anchor handshake began:
     * index + 1 of the module whose peer may still send an urgent byte
     * (poll() hides it, close() passes it: anchor_stale_urgent,
     * anchor_close_tcp), else 0. Set under `lock` or before publishing. */
    int urgent_maybe;
    /* ... and the application set SO_OOBINLINE: a late urgent byte would
     * arrive inline, so every read looks at the mark first (wrap_io.c).
     * Relaxed atomics (setsockopt on another thread). */
    _Atomic int urgent_inline;
    /* 1 once its number went to another process in SCM_RIGHTS: its stream
     * may be read there too (anchor.c leaves it alone at close/exit) */
    _Atomic int passed;

    /* ---- the long-lived policy (anchor_ll.c); KSOCK in its TCP phase ----
     * ll_code: the route's "upgrade_after_bytes" as log2 + 1 (0: none),
     * set with defer_anchor. ll_limit: bytes (both directions) after which
     * the connection moves to its module, 0 when not in the TCP phase;
     * written under `lock` before the file is published or before
     * ll_gate is cleared, read by the data path with relaxed loads.
     * ll_bytes: the data path's relaxed adds. ll_gate: the active has not
     * seen the passive's answer yet: its reads look for it first. */
    int ll_code;
    int ll_role;
    int ll_stack;
    uint64_t ll_limit;
    _Atomic uint64_t ll_bytes;
    _Atomic int ll_gate;
    /* Data calls of this file inside a kernel call now (TCP phase only),
     * and 1 while the switch runs: a call that sees it takes the slow
     * path, and the switch starts only when no other call is inside (a
     * call inside could pass a mark, or land bytes after one). */
    _Atomic int ll_inflight;
    _Atomic int ll_switching;
    /* Bytes of sends inside the kernel now (TCP phase): the peer may read
     * and count them before the send returns and counts them here, so a
     * read that asks whether the peer's mark can be due adds them
     * (anchor_ll_seen). Added before the send, removed after its count. */
    _Atomic uint64_t ll_txq;

    /* KSOCK listener on an anchoring route: the module's listener beside
     * it (anchor_side.c); set once (release store), freed with the file. */
    struct anchor_side *side;

    /* ---- MLISTEN: fixed once published, freed with the file ---- */
    struct mlisten *ml;

    /* ---- EPOLL ---- */
    struct epset *ep;           /* created on the first module registration */
    _Atomic int nested;         /* this epoll fd is itself in an epoll set */
    /* Threads in the plain kernel wait of a set without module sockets
     * (wrap_event.c); whoever creates ep wakes them (epoll_agg.c). Both
     * sides use seq_cst: count-then-load ep against store-ep-then-load. */
    _Atomic int raw_waiters;

    /* g_fork_gen when the file was made: a socket made before this
     * process's last fork() may be read by another process too. */
    unsigned fork_gen;

    /* Index + 1 of this connection's record in the stats segment (0: none;
     * conn_stats.c). Set and moved with atomic stores on the slow path
     * (connect/accept, sock_publish, sock_fallback), read with a relaxed
     * load on the data path; the record is released with the file. */
    _Atomic int conn_slot;

    struct file *next_free;     /* pool free list */
};

/* Grows at every fork(), in parent and child (file.c). */
extern _Atomic unsigned g_fork_gen;

/* A module socket whose app fd is a dup of its wait fd (not anchored):
 * kernel calls on the app fd would reach the wait fd, not a socket. */
static inline int file_is_direct_msock(const struct file *f)
{
    return f->kind == FILE_MSOCK && !f->anchored;
}

/* A TCP-anchored module socket: the app fd is the TCP socket. */
static inline int file_is_anchored(const struct file *f)
{
    return f->kind == FILE_MSOCK && f->anchored;
}

/* A fresh file with ref = 1 (the caller's), or NULL/ENOMEM. */
struct file *file_alloc(int kind);
/* Reference to the file of fd, or NULL if fd is not tracked. */
struct file *file_get(int fd);
void file_hold(struct file *f);
/* A reference to f found through a registration rather than the fd
 * table (an epoll set's entry): 0 when its last reference is gone, i.e.
 * a close in another thread is releasing it (a hold then would release
 * it a second time). */
int file_tryhold(struct file *f);
/* Drops a reference; the last one releases what the file owns. */
void file_put(struct file *f);
/* Called by file_put for the last reference: the kind's release op
 * (file_ops.h), then file_free; keeps errno. */
void file_release(struct file *f);
/* Drops a call's reference to f (NULL: none) keeping errno; returns r. */
static inline ssize_t file_put_ret(struct file *f, ssize_t r)
{
    int err = errno;
    if (f != NULL)
        file_put(f);
    errno = err;
    return r;
}
/* Returns a file to the pool (after file_release). */
void file_free(struct file *f);
/* Re-initialises the pool lock in a fork child. */
void file_pool_fork_child(void);
void file_pool_lock(void);
void file_pool_unlock(void);

#endif
