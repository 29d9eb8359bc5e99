/* softrdma: the fabric directory, shared by every process of every user
 * on the machine, as /dev/infiniband is (rdma-core's udev rules make the
 * uverbs devices 0666).
 *
 * Permissions (whatever the creator's umask):
 *  - directories are 01777, like /tmp: anybody adds entries, only an
 *    entry's owner (or root) removes or replaces it, so no user can take
 *    over another's listener name, port claim or QP number;
 *  - sockets (a process's NIC, a listener) are 0666: connecting to a unix
 *    socket needs write permission on it;
 *  - the names lock file is 0666; symlinks carry no permissions.
 * A stale entry (its owner process died) of another user cannot be
 * removed under the sticky bit: callers treat such an entry as taken or
 * skip it, and it goes when its owner's next process or root reclaims it.
 * Trust model (doc/softrdma.md): across users, a peer reaches only memory
 * registered with remote access through a QP in the right state; the
 * device authenticates no one, as RoCE does not. */
#include "sr_internal.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#define SR_FABRIC_DIR_MODE 01777
#define SR_FABRIC_FILE_MODE 0666

/* The fabric directory is taken from the environment when the library is
 * loaded if it is set then: servers such as nginx clear their environment
 * after start-up, and a device that looked later would silently join the
 * default fabric instead of its peers'. If it was not set at load (a program
 * that sets it itself), it is read at first use. Written once (constructor,
 * or pthread_once), then read-only. */
static char sr_fabric[512];
static pthread_once_t sr_fabric_once = PTHREAD_ONCE_INIT;

static int sr_is_tmpfs(const char *path)
{
    struct statfs fs;
    return !statfs(path, &fs) && fs.f_type == TMPFS_MAGIC;
}

/* The default fabric lives in memory: every connection makes and removes
 * entries there (port claims, listener names), which costs a journalled
 * disk file system several times as much CPU. /run where it is a tmpfs
 * (systemd), else /dev/shm; /run if neither is one. Every process of the
 * machine decides alike, so they meet. */
static const char *sr_fabric_default(void)
{
    if (!sr_is_tmpfs("/run") && sr_is_tmpfs("/dev/shm"))
        return "/dev/shm/softrdma";
    return "/run/softrdma";
}

static void sr_fabric_read(void)
{
    const char *d = getenv("SOFTRDMA_FABRIC");
    snprintf(sr_fabric, sizeof sr_fabric, "%s", (d && *d) ? d : sr_fabric_default());
}

__attribute__((constructor)) static void sr_fabric_at_load(void)
{
    const char *d = getenv("SOFTRDMA_FABRIC");
    if (d && *d)
        pthread_once(&sr_fabric_once, sr_fabric_read);
}

const char *sr_fabric_dir(void)
{
    pthread_once(&sr_fabric_once, sr_fabric_read);
    return sr_fabric;
}

/* mkdir that leaves a directory it creates shared (the umask would not). */
static int sr_mkdir_shared(const char *path)
{
    if (!mkdir(path, SR_FABRIC_DIR_MODE))
        return chmod(path, SR_FABRIC_DIR_MODE) && errno != EPERM ? -1 : 0;
    return errno == EEXIST ? 0 : -1;
}

int sr_mkdir_p(const char *path)
{
    /* the directory or its parent exists nearly always: one mkdir then */
    if (!sr_mkdir_shared(path))
        return 0;
    if (errno != ENOENT)
        return -1;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (sr_mkdir_shared(tmp))
            return -1;
        *p = '/';
    }
    return sr_mkdir_shared(tmp);
}

void sr_fabric_share(const char *path)
{
    /* our own fresh socket or file: only EPERM (not ours) can fail, and
     * then its owner made it shared already */
    if (chmod(path, SR_FABRIC_FILE_MODE) && errno != EPERM)
        sr_log("cannot share %s with other users: %s", path, strerror(errno));
}
