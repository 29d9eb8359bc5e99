/* anchor_fork.h - upgraded anchored connections go back to TCP before
 * fork() and exec*() (anchor_fork.c, doc/fork.md). */
#ifndef ANCHOR_FORK_H
#define ANCHOR_FORK_H

/* Bound of the releases of one exec, pass or fdopen (the peers' answers),
 * ms. A fork's is shorter: its child seldom uses what its parent held
 * (redis's BGSAVE child never does), and a peer that the child talks to
 * is active and answers at once; an idle peer (a pooled client between
 * requests) answers only at its next call, so the wait for it is a stall
 * of the forking server. Each release of a fork or exec first waits
 * ANCHOR_RELEASE_FIRST_MS alone. */
#define ANCHOR_RELEASE_MS 2000
#define ANCHOR_RELEASE_FORK_MS 1000
#define ANCHOR_RELEASE_FIRST_MS 2

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
