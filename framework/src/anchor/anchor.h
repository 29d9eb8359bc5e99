/* anchor.h - TCP-anchored connections (doc/fork.md, module ABI 1.2).
 *
 * A stream socket routed to a module that implements anchor() stays the
 * kernel TCP socket for its whole life: the app fd is never moved. The
 * connection is a *candidate* (an undecided kernel socket, deferred to the
 * module, role active or passive) from connect()/accept() until its first
 * use in the process that uses it (a data call, shutdown, epoll_ctl ADD/MOD,
 * poll/select, SO_ERROR, FIONREAD). Then anchor() gives a module socket
 * that lives beside the TCP socket: the fd table entry becomes a module
 * file (FILE_MSOCK, `anchored`) whose data calls go to the module and whose
 * readiness comes from the module's wait fd; the app fd keeps answering
 * getsockname/getpeername/fstat as the TCP socket. When the peer does not
 * run the framework the module says so (NSTACK_EV_FALLBACK, ENOPROTOOPT)
 * and sock_fallback() (sock.c) puts the connection back on TCP for good. */
#ifndef ANCHOR_H
#define ANCHOR_H

#include <sys/socket.h>

#include "fd_table.h"
#include "file.h"
#include "fw.h"

/* The role of a candidate (file.h: defer_role), set once its kernel
 * listen()/connect()/accept() succeeded. */
enum anchor_role {
    AR_NONE = 0,
    AR_LISTENER,     /* kernel listener; accepted sockets become AR_PASSIVE */
    AR_ACTIVE,       /* connected by us, not anchored yet */
    AR_PASSIVE,      /* accepted, not anchored yet */
};

enum anchor_state {
    ANCHOR_NONE = 0,
    ANCHOR_UP,       /* the module socket carries the connection (or is upgrading) */
    ANCHOR_DOWN,     /* sock_fallback() ran: the connection is on TCP for good */
};

/* Reads NSTACK_ANCHOR and notes which stacks can anchor; called once by
 * fw_start() after the stacks are loaded. */
void anchor_setup(void);

/* 1 when a socket like f (stream) routed to stack st by a rule whose
 * "anchor" is not false is anchored rather than given a module socket. */
int anchor_applies(const struct file *f, int st, int anchor_off);

/* In the routing decision (kf->lock held): kf stays a kernel socket,
 * deferred to module st; connect()/listen() set its role (anchor_set_role). */
void anchor_defer(struct file *kf, int st);

/* After a successful kernel listen()/connect() on f: its role, when f was
 * deferred to a module and is still undecided. */
void anchor_set_role(struct file *f, enum anchor_role role);

/* accept() returned fd on listener lf: when the route of fd's local
 * address anchors, tracks fd as a passive candidate, sends the hello and
 * counts the connection; returns 1. 0: not anchored (nothing done), -1:
 * could not track (errno). */
int anchor_track_accepted(int fd, const struct file *lf, int nonblock);

/* connect() on candidate f returned r (0 or -1/EINPROGRESS): a finished
 * connect sends the hello; a socket already registered in an epoll set
 * (its use in this process has begun) is anchored at once. */
void anchor_connected(int fd, struct file *f, int r);

/* A candidate not anchored yet. Lock-free. */
static inline int anchor_pending(const struct file *f)
{
    if (f->kind != FILE_KSOCK || !__atomic_load_n(&f->defer_anchor, __ATOMIC_ACQUIRE))
        return 0;
    int role = __atomic_load_n(&f->defer_role, __ATOMIC_ACQUIRE);
    return role == AR_ACTIVE || role == AR_PASSIVE;
}

/* Whether f's bytes must go through the interposed data calls: a module
 * socket, a socket not decided yet, a candidate before its first use, or
 * a connection in the long-lived policy's TCP phase (whose bytes both ends
 * count). Calls that move bytes by themselves inside libc or the kernel
 * (splice, stdio, dprintf) are then made of the interposed ones
 * (wrap_splice.c, wrap_stdio.c). */
static inline int anchor_bytes_interposed(const struct file *f)
{
    int kind = __atomic_load_n(&f->kind, __ATOMIC_RELAXED);
    return kind == FILE_MSOCK ||
           (kind == FILE_KSOCK && (!__atomic_load_n(&f->decided, __ATOMIC_ACQUIRE) || anchor_pending(f) ||
                                   __atomic_load_n(&f->ll_limit, __ATOMIC_RELAXED) != 0));
}

/* The same for the number fd (one table look-up; not inside a module call). */
static inline int fd_bytes_interposed(int fd)
{
    struct file *f;
    return !t_in_module && (f = fd_table_get(fd)) != NULL && anchor_bytes_interposed(f);
}

/* Anchors candidate f at fd (first use in this process). Consumes the
 * caller's reference to f and returns a referenced file for the call: the
 * anchored module socket, or a kernel socket when the connection stays on
 * TCP. Never NULL (f itself when fd was closed meanwhile). */
struct file *anchor_resolve(int fd, struct file *f);

/* Anchors f if it is still a candidate at fd (the caller holds a
 * reference; the fd table then holds the anchored file). */
void anchor_now(int fd, struct file *f);

/* Candidate f at fd stays on TCP without asking its module (its other end
 * is in this process and stays on TCP). */
void anchor_stay_tcp(int fd, struct file *f);

/* The module socket beside the TCP socket of kf (candidate, or a
 * long-lived connection in its TCP phase) at fd, published in the fd
 * table: anchor() with flags (NONBLOCK added from kf). Caller holds
 * kf->lock and a reference; 0, or -1/errno with kf left as it was. */
int anchor_attach(int fd, struct file *kf, int st, int role, int flags);

/* Resolves f when it is a pending candidate (see anchor_resolve). */
static inline struct file *anchor_use(int fd, struct file *f)
{
    return __builtin_expect(anchor_pending(f), 0) ? anchor_resolve(fd, f) : f;
}

/* close() of the last fd of f in this process, before the kernel close:
 * a lone urgent byte (a peer's hello) left unread at the head of the
 * receive queue would make the kernel answer the close with a reset
 * instead of a FIN; it is read here. Not for a socket made before this
 * process forked (an accept-then-fork parent: its child reads the stream,
 * and a byte arriving between the check and the read would be lost).
 * exit() gets the same for every such fd (atexit). */
void anchor_close(int fd, struct file *f);

/* exec*(): when candidates not anchored yet survive the exec (no
 * FD_CLOEXEC), a malloc'd copy of envp that names them in
 * NSTACK_ANCHOR_INHERIT (read by the new image at load time, which
 * tracks them as candidates again); NULL when there are none. */
char **anchor_exec_env(char *const envp[]);

/* Where this process's fd lands in a new image that a posix_spawn file
 * action list rearranges (wrap_spawn.c): its numbers there in out (at
 * most max); 0 when it does not survive. */
typedef int anchor_fdmap_fn(int fd, int *out, int max, void *arg);
/* anchor_exec_env with the candidates' numbers from map (NULL: exec's
 * rule, the same number unless FD_CLOEXEC). */
char **anchor_exec_env_map(char *const envp[], anchor_fdmap_fn *map, void *arg);

/* sendmsg() with SCM_RIGHTS, before the real call: the sockets it passes
 * may be read by another process from now on (no quiet close for them),
 * candidates among them stay on TCP, declined to the peer's module
 * (NSTACK_ANCHOR_DECLINE; also when the sendmsg then fails), and upgraded
 * ones go back to TCP first (anchor_release_passed). -1/EBUSY when one
 * still holds bytes RDMA delivered and nobody read: the sendmsg fails. */
int anchor_note_passed(const struct msghdr *msg);

/* Candidate fd leaves the handshake before its first use here (why: what
 * happened to it, for the log): it stays on TCP, and the peer's module is
 * told (NSTACK_ANCHOR_DECLINE). */
void anchor_decline_pending(int fd, const char *why);

/* fd is given to glibc's stdio (fdopen), whose own reads and writes the
 * dispatcher cannot see (anchor_stdio.c): a candidate stays on TCP, an
 * upgraded connection goes back to it. -1/EBUSY when reads is set and
 * bytes RDMA delivered are still unread (stdio would read past them). */
int anchor_note_stdio(int fd, int reads);

/* close() of fd, a TCP connection whose handshake left it on TCP
 * (file.urgent_maybe): passes a lone urgent byte of the peer's module
 * (exit() too). */
void anchor_close_tcp(int fd);

#endif
