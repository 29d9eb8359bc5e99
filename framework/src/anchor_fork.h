/* anchor_fork.h - upgraded anchored connections go back to TCP before
 * fork() and exec*() (anchor_fork.c, doc/fork.md). */
#ifndef ANCHOR_FORK_H
#define ANCHOR_FORK_H

/* Bound of one connection's release (the peer's answer), ms. */
#define ANCHOR_RELEASE_MS 2000

/* Before fork (exec = 0: every upgraded connection) or exec (exec = 1:
 * those that survive it, no FD_CLOEXEC). Not with framework locks held. */
void anchor_release_all(int exec);

#endif
