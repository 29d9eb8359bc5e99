/* wrap_rlimit.c - setrlimit()/prlimit() of RLIMIT_NPROC.
 * Lowering RLIMIT_NPROC also caps the threads an unprivileged process may
 * start (Linux counts threads as tasks of the user). haproxy sets it to 0
 * after it dropped privileges, unless "insecure-fork-wanted", so that an
 * exploited process cannot fork; a device thread that the rsocket stack
 * starts lazily in the daemon child (softrdma's, at the first RDMA socket)
 * could then never start, and every connection failed or stayed on TCP.
 * So before the limit is lowered the module stacks are started
 * (fw_warm.c); the call itself is libc's, unchanged. Other resources, and
 * a raise, pass straight through. */
#include <sys/resource.h>
#include <sys/types.h>

#include "fw.h"
#include "fw_warm.h"
#include "libc_api.h"

#define EXPORT __attribute__((visibility("default")))

_Static_assert(sizeof(struct rlimit) == sizeof(struct rlimit64),
               "setrlimit64/prlimit64 forward to the plain calls on LP64 only");

/* A new soft limit below the current one (or the current unreadable). */
static void warm_if_lowered(int resource, const struct rlimit *rl)
{
    if (t_in_module || resource != RLIMIT_NPROC || rl == NULL)
        return;
    struct rlimit cur;
    if (LIBC(prlimit)(0, RLIMIT_NPROC, NULL, &cur) == 0 && rl->rlim_cur >= cur.rlim_cur)
        return;
    fw_warm_stacks("setrlimit(RLIMIT_NPROC) lowered");
}

EXPORT int setrlimit(__rlimit_resource_t resource, const struct rlimit *rl)
{
    warm_if_lowered((int)resource, rl);
    return LIBC(setrlimit)(resource, rl);
}

EXPORT int setrlimit64(__rlimit_resource_t resource, const struct rlimit64 *rl)
{
    return setrlimit(resource, (const struct rlimit *)rl);
}

/* Only the calling process's own limit concerns its threads. */
EXPORT int prlimit(pid_t pid, __rlimit_resource_t resource, const struct rlimit *rl,
                   struct rlimit *old)
{
    if (pid == 0 || pid == getpid())
        warm_if_lowered((int)resource, rl);
    return LIBC(prlimit)(pid, resource, rl, old);
}

EXPORT int prlimit64(pid_t pid, __rlimit_resource_t resource, const struct rlimit64 *rl,
                     struct rlimit64 *old)
{
    return prlimit(pid, resource, (const struct rlimit *)rl, (struct rlimit *)old);
}
