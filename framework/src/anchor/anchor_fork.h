/* anchor_fork.h - upgraded anchored connections go back to TCP before
 * fork() and exec*() (anchor_fork.c, doc/fork.md). */
#ifndef ANCHOR_FORK_H
#define ANCHOR_FORK_H

/* Bound of one connection's release (the peer's answer), ms. */
#define ANCHOR_RELEASE_MS 2000

#include "anchor.h"

/* Before fork (exec = 0: every upgraded connection) or exec (exec = 1:
 * those that survive it, no FD_CLOEXEC). Not with framework locks held.
 * Returns how many of them still hold bytes RDMA delivered that nobody
 * read (a new image cannot get those: the exec wrappers fail, EBUSY). */
int anchor_release_all(int exec);
/* The same for a spawn: map says which fds the new image gets. */
int anchor_release_map(int exec, anchor_fdmap_fn *map, void *arg);

/* sendmsg() hands fd to another process in SCM_RIGHTS (before the real
 * call): an upgraded connection there goes back to TCP first, as before a
 * fork, since the receiver gets the TCP socket (dovecot's login process
 * to its mail process). 1 when bytes RDMA delivered are still unread: they
 * cannot follow, and the caller fails the sendmsg with EBUSY. */
int anchor_release_passed(int fd);
/* The same before fd is given to glibc's stdio (anchor_stdio.c). */
int anchor_release_stdio(int fd);

struct file;
/* sock_fallback: whether anchored f falls back because it was returned to
 * TCP (here, or by the peer's release), not because the peer does not run
 * the framework. */
int anchor_released(struct file *f);

#endif
