/* tcpfirst.h - fork support: stream sockets routed to a module with an
 * adopt() op stay kernel TCP through listen/accept/connect and move to the
 * module at their first data call, in whichever process makes it
 * (doc/fork.md). */
#ifndef TCPFIRST_H
#define TCPFIRST_H

#include "file.h"

enum tf_role {
    TF_NONE = 0,
    TF_LISTENER,     /* kernel listener; accepted sockets become TF_PASSIVE */
    TF_ACTIVE,       /* connected by us, not moved yet */
    TF_PASSIVE,      /* accepted, not moved yet */
    TF_FAILED,       /* the move failed; data calls return defer_err */
};

/* Reads NSTACK_FORK_SUPPORT; called once by fw_start(). */
void tcpfirst_setup(void);
int tcpfirst_enabled(void);

/* In the routing decision (kf->lock held): 1 when kf, routed to module
 * stack st, stays on kernel TCP deferred to st. */
int tcpfirst_defer(struct file *kf, int st);
/* After a successful kernel listen()/connect() on f. */
void tcpfirst_set_role(struct file *f, enum tf_role role);
/* accept(): tracks the new kernel socket fd of listener lf; deferred
 * (passive) when lf is a TCP-first listener. 0 or -1/errno. */
int tcpfirst_track_accepted(int fd, struct file *lf, int nonblock);

/* A data call on a socket not moved yet. */
static inline int tcpfirst_pending(const struct file *f)
{
    return __builtin_expect(f->kind == FILE_KSOCK &&
                                __atomic_load_n(&f->defer_role, __ATOMIC_ACQUIRE) >= TF_ACTIVE, 0);
}

/* Moves the connection of fd to its module (write_first: a send triggered
 * it). Consumes the caller's reference to f and returns a referenced file
 * to run the call on (the module socket, or f kept on TCP), or NULL with
 * errno (EAGAIN: nonblocking and the peer has not spoken yet). */
struct file *tcpfirst_resolve(int fd, struct file *f, int write_first);

/* One-time log line when a module reports EOWNERDEAD (a socket inherited
 * across fork without fork support). */
void tcpfirst_note_inherited(const struct file *f);

#endif
