/* wrap_fork.c - fork(): framework and module locks are held across the
 * fork so the child never inherits a lock taken by a thread that does not
 * exist there. vfork() becomes fork() (POSIX allows it): a vfork child
 * shares our memory, so a close() it made before exec would otherwise tear
 * down the parent's module sockets. posix_spawn() is not wrapped: glibc's
 * child runs only internal, non-interposed calls, then execs. An exec'd
 * program gets a fresh framework through the inherited LD_PRELOAD.
 * Connections upgraded to RDMA go back to TCP first (anchor_fork.c): the
 * child could not use their RDMA resources. A listener's rdma_cm side
 * listener that its process never waited on is given up for the process
 * that will (anchor_side.h). */
#include <unistd.h>

#include "anchor_fork.h"
#include "anchor_side.h"
#include "fw.h"
#include "libc_api.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT pid_t fork(void)
{
    if (t_in_module)
        return LIBC(fork)();
    /* before any framework lock is taken: it talks to peers, bounded */
    anchor_release_all(0);
    anchor_side_fork_prepare();     /* a master's rdma_cm side listener goes to its workers */
    fw_fork_prepare();
    anchor_side_fork_lock();
    pid_t pid = LIBC(fork)();
    anchor_side_fork_unlock();
    if (pid == 0)
        fw_fork_child();
    else
        fw_fork_parent();
    return pid;
}

EXPORT pid_t vfork(void)
{
    return fork();
}

