/* anchor_fd.c - the TCP socket of an anchored connection at the app's own
 * number (see anchor_fd.h). */
#include "anchor_fd.h"

#include <errno.h>
#include <string.h>

#include "fd_high.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"
#include "module_load.h"
#include "sock.h"

int anchor_fd_for_module(int fd, const struct file *kf, int st, int *own)
{
    /* With the caller's reference and the table's only, fd is kf's one
     * number (sock_move_dups moves any other to the module file too). */
    if (MODULE_HAS_OP(g_stacks[st].mod, anchor_kfd) && __atomic_load_n(&kf->ref, __ATOMIC_ACQUIRE) <= 2) {
        *own = 0;
        return fd;
    }
    *own = 1;
    return fd_dup_high(fd);             /* ours: the app may close or dup2 over fd */
}

/* f->lock held: the module moves to a dup of ours. */
static int own_locked(struct file *f)
{
    if (__atomic_load_n(&f->anchor_fd_own, __ATOMIC_ACQUIRE))
        return 0;
    int h = fd_dup_high(f->anchor_fd);
    if (h < 0)
        return -1;
    if (MCALL(f, anchor_kfd, h) < 0) {
        int err = errno;
        LIBC(close)(h);
        errno = err;
        return -1;
    }
    f->anchor_fd = h;
    __atomic_store_n(&f->anchor_fd_own, 1, __ATOMIC_RELEASE);
    return 0;
}

static int at_app_number(const struct file *f)
{
    return f != NULL && f->kind == FILE_MSOCK && f->anchored &&
           !__atomic_load_n(&f->anchor_fd_own, __ATOMIC_ACQUIRE);
}

int anchor_fd_share(struct file *f)
{
    if (!at_app_number(f))
        return 0;
    pthread_mutex_lock(&f->lock);
    int r = own_locked(f);
    int err = errno;
    pthread_mutex_unlock(&f->lock);
    errno = err;
    return r;
}

void anchor_fd_replacing(int fd, struct file *f)
{
    /* the caller's reference (the table's) is not the last: f lives on */
    if (!at_app_number(f) || f->anchor_fd != fd || __atomic_load_n(&f->ref, __ATOMIC_ACQUIRE) <= 1)
        return;
    int err = errno;
    if (anchor_fd_share(f) < 0)
        LOG_WAR("fd %d: no descriptor to keep the anchored connection's TCP socket: %s "
                "(the connection fails when the number goes)", fd, strerror(errno));
    errno = err;
}

int anchor_fd_closing(int fd, struct file *f)
{
    /* Ours is the last reference: the module socket goes before the
     * number (close() drops it first). */
    if (!at_app_number(f) || f->anchor_fd != fd || __atomic_load_n(&f->ref, __ATOMIC_ACQUIRE) <= 1)
        return 0;
    int err = errno, keep = 0;
    pthread_mutex_lock(&f->lock);
    if (own_locked(f) < 0 && !__atomic_load_n(&f->anchor_fd_own, __ATOMIC_ACQUIRE)) {
        /* No descriptor for a dup: the number itself stays with the file
         * (closed with it); the app sees it closed. */
        __atomic_store_n(&f->anchor_fd_own, 1, __ATOMIC_RELEASE);
        keep = 1;
    }
    pthread_mutex_unlock(&f->lock);
    errno = err;
    return keep;
}
