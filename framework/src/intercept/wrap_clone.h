/* wrap_clone.h - raw clone system calls that are forks (wrap_clone.c). */
#ifndef NSTACK_WRAP_CLONE_H
#define NSTACK_WRAP_CLONE_H

/* Whether clone(flags, stack, ...) is a fork into new namespaces that
 * fork() plus unshare() can make. */
int wrap_clone_fork_like(unsigned long flags, unsigned long stack);
/* Makes it that way: the child's pid, 0 in the child, -1 with errno. */
long wrap_clone_as_fork(unsigned long flags);

#endif
