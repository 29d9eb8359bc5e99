/* softrdma: whether a stream closed now can be opened again later.
 *
 * Streams to a peer are reopened by the name of its NIC socket under the
 * fabric directory (sr_req_reopen). A process that changes its root after
 * a stream closed - rsync's daemon chroots each connection's child into
 * the module it serves - cannot reach that name any more, and its
 * connection would break at the next request that needs the stream. So
 * idle streams close only where that cannot happen: the process cannot
 * chroot (no CAP_SYS_CHROOT: unprivileged workers, the common case of a
 * server with many connections), and the fabric directory is still the
 * one it was (not chrooted away already). A process that may chroot keeps
 * its streams, as before SOFTRDMA_IDLE_CLOSE existed. */
#include "sr_internal.h"
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SR_REACH_RECHECK_MS 1000    /* capabilities and root change rarely */

int sr_has_cap(int cap)
{
    struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d))
        return 0;
    return (d[cap / 32].effective >> (cap % 32)) & 1;
}

/* The fabric directory as first seen (dev, ino); 0/0: not yet. Written
 * once by the first caller, compared by later ones (atomics: any thread). */
static dev_t sr_reach_dev;
static ino_t sr_reach_ino;
static int sr_reach_known;

static int sr_fabric_same(void)
{
    struct stat st;
    if (stat(sr_fabric_dir(), &st))
        return 0;
    if (!__atomic_load_n(&sr_reach_known, __ATOMIC_ACQUIRE)) {
        sr_reach_dev = st.st_dev;
        sr_reach_ino = st.st_ino;
        __atomic_store_n(&sr_reach_known, 1, __ATOMIC_RELEASE);
    }
    return st.st_dev == sr_reach_dev && st.st_ino == sr_reach_ino;
}

int sr_streams_may_close(void)
{
    static int64_t next_ms;
    static int verdict;
    int64_t now = (int64_t)sr_now_ms();
    if (now < __atomic_load_n(&next_ms, __ATOMIC_RELAXED))
        return __atomic_load_n(&verdict, __ATOMIC_RELAXED);
    int v = !sr_has_cap(CAP_SYS_CHROOT) && sr_fabric_same();
    __atomic_store_n(&verdict, v, __ATOMIC_RELAXED);
    __atomic_store_n(&next_ms, now + SR_REACH_RECHECK_MS, __ATOMIC_RELAXED);
    return v;
}
