/* softrdma: whether a stream closed now can be opened again later.
 *
 * Streams to a peer are reopened by the name of its NIC socket under the
 * fabric directory (sr_req_reopen). A process that changes its root after
 * a stream closed - rsync's daemon chroots each connection's child into
 * the module it serves - cannot reach that name any more from the thread
 * that chrooted, and its connection would break at the next request that
 * needs the stream.
 *
 * So the device thread has a root of its own (issue 8): it unshares its
 * filesystem context (unshare(CLONE_FS)) as it starts, so an application
 * thread's later chroot does not move it, and it reaches the fabric's
 * names for the process's life. A reopen that an application thread
 * cannot make any more (it changed its root) is left to the device thread
 * (sr_reach_defer, held as for a descriptor shortage and retried within
 * SR_FDWAIT_MS). By default (SOFTRDMA_IDLE_CLOSE=2) idle streams close in
 * every process whose device thread got its own root - root processes
 * included, which kept 2 descriptors per connection before. (It was not
 * the default at first: softrdma_stress_rping as root failed with ENOMEM
 * from ibv_post_send, its sends' answers unread while the peer's replies
 * came directly; ibv_poll_cq now reads them with the reply,
 * sr_req_catch_up, and the same failure had shown with streams kept open
 * too: doc/softrdma.md "Streams open only while used".)
 *
 * Where the device thread could not get its own root (unshare failed, one
 * line), and with SOFTRDMA_IDLE_CLOSE=1, the earlier rule decides: idle
 * streams close only where a chroot cannot cut them off - the process
 * cannot chroot (no CAP_SYS_CHROOT: unprivileged workers, the common case
 * of a server with many connections), and the fabric directory is still
 * the one it was (not chrooted away already). A process that may chroot
 * keeps its streams then, as before SOFTRDMA_IDLE_CLOSE existed. */
#include "sr_internal.h"
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <string.h>
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

/* The epoch whose device thread has a root of its own (0: none yet). */
static unsigned sr_reach_own_epoch;
static __thread int sr_reach_is_device;

void sr_reach_thread_start(unsigned epoch)
{
    sr_reach_is_device = 1;
    sr_fabric_same();                 /* the fabric as first seen, before any chroot */
    if (unshare(CLONE_FS) == 0)
        __atomic_store_n(&sr_reach_own_epoch, epoch, __ATOMIC_RELEASE);
    else
        sr_log("device thread: unshare(CLONE_FS): %s (a process that may chroot keeps its streams open)",
               strerror(errno));
}

static int sr_reach_by_device(void)
{
    unsigned e = __atomic_load_n(&sr_reach_own_epoch, __ATOMIC_ACQUIRE);
    return e != 0 && e == sr_epoch;
}

int sr_reach_defer(void)
{
    return !sr_reach_is_device && sr_reach_by_device() && !sr_fabric_same();
}

int sr_streams_may_close(void)
{
    if (sr_reach_by_device() && sr_knobs.idle_close >= 2)
        return 1;
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
