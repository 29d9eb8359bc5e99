/* anchor_fork.h - upgraded anchored connections go back to TCP before
 * fork() and exec*() (anchor_fork.c, doc/fork.md). */
#ifndef ANCHOR_FORK_H
#define ANCHOR_FORK_H

/* Bound of one connection's release (the peer's answer), ms. */
#define ANCHOR_RELEASE_MS 2000

/* Before fork (exec = 0: every upgraded connection) or exec (exec = 1:
 * those that survive it, no FD_CLOEXEC). Not with framework locks held. */
void anchor_release_all(int exec);

struct file;
/* sock_fallback: whether anchored f falls back because it was returned to
 * TCP (here, or by the peer's release), not because the peer does not run
 * the framework. */
int anchor_released(struct file *f);

#endif
