/* multilisten.h - one wildcard listening socket served by several stacks
 * (doc/framework.md, "Listeners on several stacks"). */
#ifndef MULTILISTEN_H
#define MULTILISTEN_H

#include <sys/socket.h>

#include "file.h"

/* listen() on undecided stream socket kf at fd, bound to a wildcard address
 * or not bound at all. Returns 1 when the listener was set up on several
 * stacks (*ret: 0 or -1/errno as listen() returns), 0 when only one stack
 * serves it (the caller decides as for any listener). Caller holds a
 * reference to kf. */
int ml_listen(int fd, struct file *kf, int backlog, int *ret);

/* accept/accept4 on a multi-stack listener: each stack tried without
 * blocking, round-robin; blocks (unless O_NONBLOCK) until one has a
 * connection. The accepted socket belongs to the stack it came from. */
int ml_accept(struct file *f, struct sockaddr *addr, socklen_t *len, int flags);

/* Calls applied to every stack (the kernel's result is returned). */
int ml_setsockopt(struct file *f, int level, int name, const void *val, socklen_t len);
int ml_shutdown(struct file *f, int how);
int ml_relisten(struct file *f, int backlog);
/* The kernel listening socket, for getsockname/getsockopt/ioctl. */
int ml_kernel_fd(const struct file *f);
/* In a fork child: every multi-stack listener's accept lock is made free
 * again (the thread that held it does not exist there). */
void ml_fork_child(void);
/* Last reference gone: closes every stack's listener. */
void ml_release(struct file *f);

#endif
