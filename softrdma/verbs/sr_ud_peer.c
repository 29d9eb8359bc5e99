/* softrdma: where a UD destination QP lives, as this process reaches it.
 * A QP of this process is used in place; another process's QP is found
 * through its fabric entry $FABRIC/ud/<qpn> (see sr_ud.h), whose segment
 * and receive channel descriptors are taken with pidfd_getfd. The result
 * is cached per QPN and re-checked at every use: the UD block's magic and
 * QPN, the QP block's generation (a reset or destroyed QP is looked up
 * afresh) and, for another process, its device's time stamp (a process
 * that died or stopped is not written to, as the RC direct path decides).
 * A process of another user, which the kernel keeps us out of, is reached
 * through its device's UD socket (sr_ud_sock.c), looked up again every
 * SR_UD_RETRY_MS. Guarded by sr_lock. */
#include "sr_ud.h"
#include "sr_sys.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SR_UD_BUCKETS 256
/* a peer that refused us (another user): looked up again after this */
#define SR_UD_RETRY_MS 1000

static struct sr_ud_peer *sr_ud_tab[SR_UD_BUCKETS];
static unsigned sr_ud_tab_epoch;

/* 1 once other processes are reached only through their UD sockets:
 * SOFTRDMA_UD_DIRECT=0, or process_vm_writev refused after pidfd_getfd
 * was not (a policy - seccomp, an LSM - keeps this process out of
 * others'). -1 until read from the environment. */
static int sr_ud_no_direct = -1;

static int sr_ud_direct_off(void)
{
    if (sr_ud_no_direct < 0)
        sr_ud_no_direct = !sr_env_int("SOFTRDMA_UD_DIRECT", 1);
    return sr_ud_no_direct;
}

void sr_ud_direct_refused(void)
{
    if (sr_ud_no_direct > 0)
        return;
    sr_ud_no_direct = 1;
    sr_log("UD: process_vm_writev refused (%s); other processes' QPs are reached through "
           "their devices from now on", strerror(errno));
}

static void sr_ud_peer_release(struct sr_ud_peer *p)
{
    if (p->own_evfd && p->evfd >= 0)
        sr_sys_close(p->evfd);
    sr_peer_seg_put(p->seg);
    p->seg = NULL;
    p->evfd = -1;
    p->own_evfd = 0;
    p->ud = NULL;
    p->qp = NULL;
    p->sock[0] = 0;
}

void sr_ud_peers_forget(void)
{
    /* a forked child: the parent's mappings are not here (MADV_DONTFORK) */
    memset(sr_ud_tab, 0, sizeof sr_ud_tab);
    sr_ud_tab_epoch = sr_epoch;
}

static int sr_ud_inside(uint64_t size, uint64_t off, uint64_t len)
{
    return off >= sizeof(struct sr_seg_hdr) && off < size && len <= size - off;
}

/* Points p at the UD block at ud_off of a segment of `size` bytes at base;
 * -1 if the block is not a live UD QP numbered p->qpn. */
static int sr_ud_peer_bind(struct sr_ud_peer *p, char *base, uint64_t size, uint64_t ud_off)
{
    if (!sr_ud_inside(size, ud_off, sizeof(struct sr_shm_ud)))
        return -1;
    struct sr_shm_ud *u = (struct sr_shm_ud *)(base + ud_off);
    if (__atomic_load_n(&u->magic, __ATOMIC_ACQUIRE) != SR_UD_MAGIC || u->qpn != p->qpn ||
        (u->qp_off & 4095) || !sr_ud_inside(size, u->qp_off, sizeof(struct sr_shm_qp)))
        return -1;
    p->base = base;
    p->size = size;
    p->ud = u;
    p->qp_off = u->qp_off;
    p->qp = (struct sr_shm_qp *)(base + u->qp_off);
    p->gen = __atomic_load_n(&p->qp->gen, __ATOMIC_ACQUIRE);
    return p->gen ? 0 : -1;
}

int sr_ud_local(struct sr_ud_peer *p)
{
    struct sr_qp *q = sr_qp_find(p->qpn);
    if (!q || !q->ud)
        return -1;
    p->pid = (int32_t)getpid();
    p->evfd = sr_cq_evfd((struct sr_cq *)q->pub.recv_cq);
    return sr_ud_peer_bind(p, (char *)sr_seg(), sr_seg_size(), q->ud->off);
}

/* A descriptor of process pid (through its pidfd); -1 with errno. */
static int sr_ud_getfd(int pidfd, int fd)
{
    return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
}

static int sr_ud_remote_fds(struct sr_ud_peer *p, int segfd, int evfd, uint64_t ud_off)
{
    int pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
    if (pidfd < 0)
        return -1;
    int sfd = sr_ud_getfd(pidfd, segfd);
    int efd = sfd >= 0 && evfd >= 0 ? sr_ud_getfd(pidfd, evfd) : -1;
    int e = errno;
    sr_sys_close(pidfd);
    if (sfd < 0 || (evfd >= 0 && efd < 0)) {
        if (sfd >= 0)
            sr_sys_close(sfd);
        errno = e;
        return -1;
    }
    p->seg = sr_peer_seg_get(sfd);        /* takes sfd */
    p->evfd = efd >= 0 ? sr_fd_internal(efd) : -1;
    p->own_evfd = 1;
    errno = ESTALE;
    if (!p->seg || ((struct sr_seg_hdr *)p->seg->base)->pid != p->pid)
        return -1;
    return sr_ud_peer_bind(p, p->seg->base, p->seg->size, ud_off);
}

static int sr_ud_remote(struct sr_ud_peer *p)
{
    char path[400], target[128];
    snprintf(path, sizeof path, "%s/ud/%u", sr_fabric_dir(), p->qpn);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n <= 0)
        return -1;
    target[n] = 0;
    int pid, segfd, evfd;
    unsigned long long off;
    char sock[64];
    if (sscanf(target, "ud1:%d:%d:%d:%llu:%63s", &pid, &segfd, &evfd, &off, sock) != 5 ||
        pid <= 0 || segfd < 0) {
        errno = EINVAL;
        return -1;
    }
    p->pid = pid;
    int e = EPERM;
    if (!sr_ud_direct_off()) {
        if (!sr_ud_remote_fds(p, segfd, evfd, off))
            return 0;
        e = errno;
        sr_ud_peer_release(p);
    }
    /* the kernel keeps us out (another user; no pidfd_getfd: ENOSYS) and
     * not because the entry is stale (ESRCH, EBADF, ESTALE): through its
     * device */
    if ((e == EPERM || e == EACCES || e == ENOSYS) && strcmp(sock, "-")) {
        snprintf(p->sock, sizeof p->sock, "%s/udnic/%s", sr_fabric_dir(), sock);
        return 0;
    }
    errno = e;
    return -1;
}

static struct sr_ud_peer *sr_ud_find(uint32_t qpn)
{
    if (sr_ud_tab_epoch != sr_epoch)
        sr_ud_peers_forget();
    struct sr_ud_peer *p = sr_ud_tab[qpn % SR_UD_BUCKETS];
    while (p && p->qpn != qpn)
        p = p->next;
    return p;
}

/* Still the QP we bound to, and its process still answering. */
static int sr_ud_peer_valid(const struct sr_ud_peer *p)
{
    if (!p->ud || __atomic_load_n(&p->ud->magic, __ATOMIC_ACQUIRE) != SR_UD_MAGIC ||
        __atomic_load_n(&p->qp->gen, __ATOMIC_ACQUIRE) != p->gen)
        return 0;
    if (!p->seg)
        return 1;
    if (sr_ud_no_direct > 0)
        return 0;       /* direct delivery refused since: through the socket */
    const struct sr_seg_hdr *h = (const struct sr_seg_hdr *)p->base;
    return (int64_t)(sr_now_ms() - __atomic_load_n(&h->alive_ms, __ATOMIC_RELAXED)) <= SR_ALIVE_MS;
}

/* Entries of destinations that are gone (QP reset or destroyed, process
 * dead) hold a peer channel's descriptor and a segment mapping until they
 * are looked up again; a sender that moved on to other peers would keep
 * them for ever. Lookups that miss sweep them out, at most every
 * SR_UD_SWEEP_MS. */
#define SR_UD_SWEEP_MS 100
static uint64_t sr_ud_swept_ms;

static void sr_ud_sweep(uint64_t now)
{
    if (now - sr_ud_swept_ms < SR_UD_SWEEP_MS)
        return;
    sr_ud_swept_ms = now;
    for (int b = 0; b < SR_UD_BUCKETS; b++)
        for (struct sr_ud_peer **pp = &sr_ud_tab[b]; *pp;) {
            struct sr_ud_peer *p = *pp;
            if (sr_ud_peer_valid(p) || p->retry_ms > now) {
                pp = &p->next;
                continue;
            }
            *pp = p->next;
            sr_ud_peer_release(p);
            free(p);
        }
    sr_ud_sock_sweep();
}

struct sr_ud_peer *sr_ud_peer_get(uint32_t qpn)
{
    struct sr_ud_peer *p = sr_ud_find(qpn);
    if (p && sr_ud_peer_valid(p))
        return p;
    uint64_t now = sr_now_ms();
    if (p && p->retry_ms > now)
        return p->sock[0] ? p : NULL;
    sr_ud_sweep(now);
    p = sr_ud_find(qpn);        /* gone if it was swept */
    if (!p) {
        if (!(p = calloc(1, sizeof *p)))
            return NULL;
        p->qpn = qpn;
        p->next = sr_ud_tab[qpn % SR_UD_BUCKETS];
        sr_ud_tab[qpn % SR_UD_BUCKETS] = p;
    }
    sr_ud_peer_release(p);
    p->retry_ms = 0;
    if (sr_ud_local(p) == 0)
        return p;
    sr_ud_peer_release(p);
    if (sr_ud_remote(p) == 0) {
        if (p->sock[0])
            p->retry_ms = now + SR_UD_RETRY_MS;
        return p;
    }
    if (errno == EPERM || errno == EACCES) {
        /* the kernel refuses us this process and it has no UD socket:
         * said once a second */
        sr_log("UD QP %u (pid %d): cannot reach it (%s); datagrams to it are dropped",
               qpn, p->pid, strerror(errno));
        p->retry_ms = now + SR_UD_RETRY_MS;
    }
    sr_ud_peer_release(p);
    return NULL;
}
