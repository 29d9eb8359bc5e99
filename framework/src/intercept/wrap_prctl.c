/* wrap_prctl.c - prctl(PR_SET_SECCOMP / PR_SET_NO_NEW_PRIVS).
 * A process that confines itself with a seccomp filter (OpenSSH's preauth
 * child: read/write/poll and a few more, anything else kills it with
 * SIGSYS; libseccomp's programs set no_new_privs first) can no longer make
 * the calls the dispatcher makes at exit on its own behalf. Before the
 * filter is in place the dispatcher does those now (stats_confine: the
 * counters segment's name); the call itself is the system call, as
 * glibc's prctl makes it (no dlsym lookup: the sanitizers' runtimes call
 * prctl while they start, before any lookup may run). */
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fw.h"
#include "raw_syscall.h"
#include "stats.h"

#define EXPORT __attribute__((visibility("default")))
/* Also called by the sanitizers' runtimes before they are set up: nothing
 * instrumented may run on that path. */
#define EARLY __attribute__((no_sanitize("address", "undefined", "thread")))

EXPORT EARLY int prctl(int option, ...)
{
    va_list ap;
    va_start(ap, option);
    /* prctl takes up to four more unsigned longs (as glibc's own wrapper
     * reads them) */
    unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long);
    unsigned long a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
    va_end(ap);
    if ((option == PR_SET_SECCOMP || (option == PR_SET_NO_NEW_PRIVS && a2 == 1)) && !t_in_module)
        stats_confine();
    if (option == PR_SET_SECCOMP && !t_in_module)
        __atomic_store_n(&g_fw_confined, 1, __ATOMIC_RELAXED);
    return (int)raw_syscall5(SYS_prctl, option, (long)a2, (long)a3, (long)a4, (long)a5);
}
