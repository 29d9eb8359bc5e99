/* wrap_fork.c - fork(): framework and module locks are held across the
 * fork so the child never inherits a lock taken by a thread that does not
 * exist there. vfork() and posix_spawn() are not wrapped: their child
 * shares or replaces our memory and only execs, and an exec'd program gets
 * a fresh framework through the inherited LD_PRELOAD. */
#include <unistd.h>

#include "fw.h"
#include "libc_api.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT pid_t fork(void)
{
    if (t_in_module)
        return LIBC(fork)();
    fw_fork_prepare();
    pid_t pid = LIBC(fork)();
    if (pid == 0)
        fw_fork_child();
    else
        fw_fork_parent();
    return pid;
}
