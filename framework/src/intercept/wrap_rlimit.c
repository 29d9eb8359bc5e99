/* wrap_rlimit.c - setrlimit()/prlimit() of RLIMIT_NPROC.
 * Lowering RLIMIT_NPROC also caps the threads an unprivileged process may
 * start (Linux counts threads as tasks of the user). haproxy sets it to 0
 * after it dropped privileges, unless "insecure-fork-wanted", so that an
 * exploited process cannot fork; a device thread that the rsocket stack
 * starts lazily in the daemon child (softrdma's, at the first RDMA socket)
 * could then never start, and every connection failed or stayed on TCP.
 * So before the limit is lowered the module stacks are started
 * (fw_warm.c); the call itself is the system call libc makes for it
 * (prlimit64, as glibc's setrlimit/prlimit do), not libc's function looked
 * up with dlsym: the sanitizers' runtimes call setrlimit(RLIMIT_CORE)
 * while they start, before any lookup may run. Other resources, and a
 * raise, pass straight through. */
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "fw.h"
#include "fw_warm.h"
#include "raw_syscall.h"

#define EXPORT __attribute__((visibility("default")))
/* Called by the sanitizers' runtimes before they are set up (ASan's
 * setrlimit(RLIMIT_CORE) at init): nothing instrumented may run there. */
#define EARLY __attribute__((no_sanitize("address", "undefined", "thread")))

_Static_assert(sizeof(struct rlimit) == sizeof(struct rlimit64),
               "setrlimit64/prlimit64 forward to the plain calls on LP64 only");

EARLY static int sys_prlimit(pid_t pid, int resource, const struct rlimit *rl, struct rlimit *old)
{
    return (int)raw_syscall5(SYS_prlimit64, pid, resource, (long)rl, (long)old, 0);
}

/* RLIMIT_NPROC only (callers check): a new soft limit below the current
 * one, or the current unreadable. */
static void warm_if_lowered(const struct rlimit *rl)
{
    if (t_in_module || rl == NULL)
        return;
    struct rlimit cur;
    if (sys_prlimit(0, RLIMIT_NPROC, NULL, &cur) == 0 && rl->rlim_cur >= cur.rlim_cur)
        return;
    fw_warm_stacks("setrlimit(RLIMIT_NPROC) lowered");
}

EXPORT EARLY int setrlimit(__rlimit_resource_t resource, const struct rlimit *rl)
{
    if (resource == RLIMIT_NPROC)
        warm_if_lowered(rl);
    return sys_prlimit(0, (int)resource, rl, NULL);
}

EXPORT EARLY int setrlimit64(__rlimit_resource_t resource, const struct rlimit64 *rl)
{
    return setrlimit(resource, (const struct rlimit *)rl);
}

/* Only the calling process's own limit concerns its threads. */
EXPORT EARLY int prlimit(pid_t pid, __rlimit_resource_t resource, const struct rlimit *rl,
                         struct rlimit *old)
{
    if (resource == RLIMIT_NPROC && (pid == 0 || pid == getpid()))
        warm_if_lowered(rl);
    return sys_prlimit(pid, (int)resource, rl, old);
}

EXPORT EARLY int prlimit64(pid_t pid, __rlimit_resource_t resource, const struct rlimit64 *rl,
                           struct rlimit64 *old)
{
    return prlimit(pid, resource, (const struct rlimit *)rl, (struct rlimit *)old);
}
