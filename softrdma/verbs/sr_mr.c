/* softrdma: protection domains and memory regions (keys, access checks). */
#include "sr_internal.h"
#include <errno.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Key table: key = generation << 16 | slot. Guarded by sr_lock. */
static struct sr_mr *sr_mrs[SR_MAX_MR];
static uint16_t sr_mr_gen[SR_MAX_MR];
static unsigned sr_mr_hint = 1;
static uint32_t sr_pd_handle;

SR_API struct ibv_pd *ibv_alloc_pd(struct ibv_context *ctx)
{
    struct sr_pd *pd = calloc(1, sizeof *pd);
    if (!pd) {
        errno = ENOMEM;
        return NULL;
    }
    pd->pub.context = ctx;
    pd->epoch = sr_epoch;
    pthread_mutex_lock(&sr_lock);
    pd->pub.handle = ++sr_pd_handle;
    pthread_mutex_unlock(&sr_lock);
    return &pd->pub;
}

SR_API int ibv_dealloc_pd(struct ibv_pd *pub)
{
    struct sr_pd *pd = (struct sr_pd *)pub;
    if (sr_stale(pd->epoch, "ibv_dealloc_pd"))
        return EPERM;
    pthread_mutex_lock(&sr_lock);
    int users = pd->users;
    pthread_mutex_unlock(&sr_lock);
    if (users) {
        sr_log("ibv_dealloc_pd: %d MR(s)/QP(s) still use the PD", users);
        return EBUSY;
    }
    free(pd);
    return 0;
}

/* Bytes of pages registered (each MR's pages counted, as the kernel
 * counts pinned pages); guarded by sr_lock. */
static size_t sr_pinned;
static unsigned sr_pinned_epoch = 1;   /* a forked child starts at 0, as its mm does */

/* As the kernel's ib_umem_get: past RLIMIT_MEMLOCK, registering fails with
 * ENOMEM unless the process has CAP_IPC_LOCK. Returns the pinned size. */
static size_t sr_mr_pin(const void *addr, size_t length, int *err)
{
    uintptr_t a = (uintptr_t)addr, page = 4096;
    size_t bytes = length ? ((a + length + page - 1) & ~(page - 1)) - (a & ~(page - 1)) : 0;
    struct rlimit rl;
    *err = 0;
    if (sr_pinned_epoch != sr_epoch) {
        sr_pinned_epoch = sr_epoch;
        sr_pinned = 0;
    }
    if (bytes && !getrlimit(RLIMIT_MEMLOCK, &rl) && rl.rlim_cur != RLIM_INFINITY &&
        sr_pinned + bytes > rl.rlim_cur && !sr_has_cap(CAP_IPC_LOCK)) {
        static int said;         /* once per process, as a limit is (sr_lock held) */
        if (!said++)
            sr_log("ibv_reg_mr: %zu bytes would exceed RLIMIT_MEMLOCK (%llu bytes, %zu registered); "
                   "further refusals are not logged", length, (unsigned long long)rl.rlim_cur, sr_pinned);
        *err = ENOMEM;
        return 0;
    }
    sr_pinned += bytes;
    return bytes;
}

static int sr_mr_slot(void)
{
    for (unsigned i = 0; i < SR_MAX_MR - 1; i++) {
        unsigned s = 1 + (sr_mr_hint + i) % (SR_MAX_MR - 1);
        if (!sr_mrs[s]) {
            sr_mr_hint = s;
            return (int)s;
        }
    }
    return -1;
}

SR_API struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t length,
                                       uint64_t iova, unsigned int access)
{
    (void)iova;
    if (!pd || sr_stale(((struct sr_pd *)pd)->epoch, "ibv_reg_mr"))
        return NULL;
    if ((access & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)) &&
        !(access & IBV_ACCESS_LOCAL_WRITE)) {
        sr_log("ibv_reg_mr: remote write/atomic access needs IBV_ACCESS_LOCAL_WRITE");
        errno = EINVAL;
        return NULL;
    }
    if ((access & IBV_ACCESS_ON_DEMAND) && !sr_knobs.odp) {
        sr_log("ibv_reg_mr: IBV_ACCESS_ON_DEMAND, but on-demand paging is off (SOFTRDMA_ODP=0)");
        errno = EOPNOTSUPP;
        return NULL;
    }
    if (!addr && length) {
        sr_log("ibv_reg_mr: NULL address with length %zu", length);
        errno = EINVAL;
        return NULL;
    }
    struct sr_mr *mr = calloc(1, sizeof *mr);
    if (!mr) {
        errno = ENOMEM;
        return NULL;
    }
    struct sr_seg_hdr *seg = sr_seg();
    if (!seg) {
        free(mr);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&sr_lock);
    int err = 0;
    /* an on-demand region pins nothing: not counted (sr_device.c) */
    mr->pinned = (access & IBV_ACCESS_ON_DEMAND) ? 0 : sr_mr_pin(addr, length, &err);
    if (err) {
        pthread_mutex_unlock(&sr_lock);
        free(mr);
        errno = err;
        return NULL;
    }
    int s = sr_mr_slot();
    if (s < 0) {
        sr_pinned -= mr->pinned;
        pthread_mutex_unlock(&sr_lock);
        free(mr);
        sr_log("ibv_reg_mr: all %d memory regions in use", SR_MAX_MR - 1);
        errno = ENOMEM;
        return NULL;
    }
    sr_mr_gen[s]++;
    mr->pub.context = pd->context;
    mr->pub.pd = pd;
    mr->pub.addr = addr;
    mr->pub.length = length;
    mr->pub.handle = (uint32_t)s;
    mr->pub.lkey = mr->pub.rkey = (uint32_t)sr_mr_gen[s] << 16 | (uint32_t)s;
    mr->access = (int)access;
    mr->epoch = sr_epoch;
    sr_mrs[s] = mr;
    /* for peers' senders: the key is written last */
    struct sr_shm_mr *e = &seg->mrs[s];
    e->pd = pd->handle;
    e->access = access;
    e->addr = (uintptr_t)addr;
    e->len = length;
    __atomic_store_n(&e->key, mr->pub.lkey, __ATOMIC_RELEASE);
    ((struct sr_pd *)pd)->users++;
    pthread_mutex_unlock(&sr_lock);
    return &mr->pub;
}

#undef ibv_reg_mr
SR_API struct ibv_mr *ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t length, int access)
{
    return ibv_reg_mr_iova2(pd, addr, length, (uintptr_t)addr, (unsigned)access);
}

#undef ibv_reg_mr_iova
SR_API struct ibv_mr *ibv_reg_mr_iova(struct ibv_pd *pd, void *addr, size_t length,
                                      uint64_t iova, int access)
{
    return ibv_reg_mr_iova2(pd, addr, length, iova, (unsigned)access);
}

SR_API int ibv_dereg_mr(struct ibv_mr *pub)
{
    struct sr_mr *mr = (struct sr_mr *)pub;
    if (sr_stale(mr->epoch, "ibv_dereg_mr"))
        return EPERM;
    pthread_mutex_lock(&sr_lock);
    sr_mrs[pub->handle] = NULL;
    /* Peers' senders check the key and move data under one of our QP
     * blocks' locks: once the key is gone and each lock has been free
     * once, nothing can land in the region any more. */
    struct sr_seg_hdr *seg = sr_seg();
    if (seg)
        __atomic_store_n(&seg->mrs[pub->handle].key, 0, __ATOMIC_SEQ_CST);
    sr_qp_quiesce();
    if (sr_pinned_epoch == sr_epoch)
        sr_pinned -= mr->pinned;
    ((struct sr_pd *)pub->pd)->users--;
    pthread_mutex_unlock(&sr_lock);
    free(mr);
    return 0;
}

SR_API int ibv_rereg_mr(struct ibv_mr *mr, int flags, struct ibv_pd *pd, void *addr,
                        size_t length, int access)
{
    (void)mr; (void)flags; (void)pd; (void)addr; (void)length; (void)access;
    sr_log("ibv_rereg_mr: not supported by softrdma");
    errno = EOPNOTSUPP;
    return -1;
}

/* Local access always includes read; remote access must be granted. */
struct sr_mr *sr_mr_check(struct ibv_pd *pd, uint32_t key, uint64_t addr,
                          uint64_t len, int access)
{
    unsigned s = key & 0xffff;
    struct sr_mr *mr = sr_mrs[s];
    if (!mr || mr->pub.lkey != key || (pd && mr->pub.pd != pd))
        return NULL;
    if ((mr->access & access) != access)
        return NULL;
    uint64_t base = (uintptr_t)mr->pub.addr;
    if (len == 0)
        return mr;
    if (addr < base || addr + len < addr || addr + len > base + mr->pub.length)
        return NULL;
    return mr;
}

int sr_shm_mr_ok(const struct sr_seg_hdr *h, uint32_t pd, uint32_t key, uint64_t addr,
                 uint64_t len, unsigned access)
{
    const struct sr_shm_mr *m = &h->mrs[key & 0xffff];
    if (!key || __atomic_load_n(&m->key, __ATOMIC_ACQUIRE) != key)
        return 0;
    if (m->pd != pd || (m->access & access) != access)
        return 0;
    if (!len)
        return 1;
    return addr >= m->addr && addr + len >= addr && addr + len <= m->addr + m->len;
}
