/* softrdma: the process's shared segment (QP receive sides, CQ rings, the
 * MR table) and the peers' segments mapped here. See sr_internal.h. */
#include "sr_internal.h"
#include "sr_sys.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#define SR_PAGE 4096ull

/* This epoch's segment; guarded by sr_seg_mu (taken after sr_lock). */
static pthread_mutex_t sr_seg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sr_seg_hdr *sr_seg_hdr_p;
static int sr_seg_fd_v = -1;
static unsigned sr_seg_epoch;
static uint64_t sr_seg_top;            /* bump pointer */
static uint64_t sr_seg_len;
/* Freed blocks (exact pages); local memory. A block is reused only after
 * SR_REUSE_MS: a peer may still be waiting for a dead QP block's lock (it
 * then finds generation 0 and leaves). The lock itself is never
 * re-initialised (sr_seg_take) and a new QP gets a new generation, so even
 * a later waiter leaves; the delay only keeps that case rare. It is short
 * because each freed block keeps its first page: under connection bursts
 * (1,000 at a time) a 2 s delay had every burst cut fresh blocks, and the
 * resident set grew by 4 KiB per block and burst (rsfw.rss_bursts).
 *
 * Warm blocks: the most recently freed blocks, up to SR_WARM_BYTES in all,
 * keep their pages (no hole punched) and are reused first and at once, so
 * one connection per request neither punches its QP block and CQ ring at
 * close nor faults fresh zero pages into them at the next set-up (3-4 %
 * and 5-7 % of each end's CPU). That is safe without the delay because the
 * delay never was what kept peers out: a peer's sender checks the block's
 * generation under its lock, and a poller the generation a completion
 * names. Nothing past a block's first page needs zeroes (receive and CQ
 * rings are written before they are read; every header field is in the
 * first page, which sr_seg_clear zeroes). Bounded: a burst's frees beyond
 * the budget are punched as before. */
#define SR_REUSE_MS 200
#define SR_WARM_BYTES (4ull << 20)
struct sr_free { uint64_t off, len, at; int warm; };
static struct sr_free *sr_frees;
static size_t sr_nfree, sr_free_cap;
static uint64_t sr_warm_bytes;         /* kept pages of warm frees */

static size_t sr_round(size_t n) { return (n + SR_PAGE - 1) & ~(SR_PAGE - 1); }

static int sr_seg_create(void)
{
    int fd = memfd_create("softrdma-segment", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    void *p = MAP_FAILED;
    uint64_t len = SR_SEG_SIZE;
    while (!ftruncate(fd, (off_t)len)) {
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
        if (p != MAP_FAILED || len / 8 < SR_SEG_MIN)
            break;
        len /= 8;       /* a limited address space (RLIMIT_AS) */
    }
    if (p == MAP_FAILED) {
        sr_sys_close(fd);
        return -1;
    }
    sr_seg_len = len;
    /* a forked child must not write the parent's queues (no fork support) */
    madvise(p, len, MADV_DONTFORK);
    sr_seg_hdr_p = p;
    sr_seg_hdr_p->magic = SR_SEG_MAGIC;
    sr_seg_hdr_p->pid = (int32_t)getpid();
    sr_seg_hdr_p->alive_ms = sr_now_ms();
    uint64_t t;
    if (getrandom(&t, sizeof t, GRND_NONBLOCK) != sizeof t) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        t = (uint64_t)ts.tv_nsec * 2654435761u ^ (uint64_t)getpid() << 32 ^ (uintptr_t)p;
    }
    sr_seg_hdr_p->token = t | 1;
    sr_seg_fd_v = sr_fd_internal(fd);
    sr_seg_top = sr_round(sizeof(struct sr_seg_hdr));
    sr_nfree = 0;
    sr_warm_bytes = 0;
    sr_seg_epoch = sr_epoch;
    return 0;
}

static struct sr_seg_hdr *sr_seg_locked(void)
{
    if (sr_seg_hdr_p && sr_seg_epoch == sr_epoch)
        return sr_seg_hdr_p;
    /* a forked child starts its own (the parent's is not mapped here) */
    sr_seg_hdr_p = NULL;
    sr_seg_fd_v = -1;
    if (sr_seg_create()) {
        sr_log("cannot create the shared segment: %s", strerror(errno));
        return NULL;
    }
    return sr_seg_hdr_p;
}

struct sr_seg_hdr *sr_seg(void)
{
    pthread_mutex_lock(&sr_seg_mu);
    struct sr_seg_hdr *h = sr_seg_locked();
    pthread_mutex_unlock(&sr_seg_mu);
    return h;
}

int sr_seg_fd(void)
{
    return sr_seg() ? sr_seg_fd_v : -1;
}

uint64_t sr_seg_size(void)
{
    return sr_seg() ? sr_seg_len : 0;
}

/* Every block starts with its robust lock (struct sr_shm_qp and struct
 * sr_shm_cq both do). The lock is initialised once, when the block is
 * first cut from the segment, and its bytes are never zeroed or
 * initialised again for the segment's life: a peer's sender may be waiting
 * for it when we free the block and take it right after our unlock. Had
 * its bytes changed under it (the hole punched, pthread_mutex_init at
 * reuse), its unlock would fail (owner no longer its tid) or take the
 * non-robust path, leaving the mutex on that thread's robust list; once
 * the peer unmapped our segment, its next robust lock wrote through the
 * list head into unmapped memory (the rsbug.api.stress SIGSEGV in
 * sr_shm_cq_add). */
#define SR_LOCK_BYTES sizeof(pthread_mutex_t)

/* Removes free entry i and returns its offset. */
static uint64_t sr_free_take(size_t i)
{
    uint64_t off = sr_frees[i].off;
    if (sr_frees[i].warm)
        sr_warm_bytes -= sr_frees[i].len;
    sr_frees[i] = sr_frees[--sr_nfree];
    return off;
}

static uint64_t sr_seg_take(size_t len)
{
    uint64_t now = sr_now_ms();
    size_t cold = SIZE_MAX;
    /* the newest warm block of the size (its pages the likeliest cached),
     * else a punched one old enough */
    for (size_t i = sr_nfree; i-- > 0;) {
        if (sr_frees[i].len != len)
            continue;
        if (sr_frees[i].warm)
            return sr_free_take(i);  /* lock kept, first page zeroed */
        if (cold == SIZE_MAX && now - sr_frees[i].at >= SR_REUSE_MS)
            cold = i;
    }
    if (cold != SIZE_MAX)
        return sr_free_take(cold);   /* lock kept, the rest zeroed by sr_seg_free */
    if (sr_seg_top + len > sr_seg_len) {
        errno = ENOMEM;
        return 0;
    }
    uint64_t off = sr_seg_top;
    sr_seg_top += len;
    sr_shm_lock_init((pthread_mutex_t *)((char *)sr_seg_hdr_p + off));
    return off;
}

uint64_t sr_seg_alloc(size_t len)
{
    uint64_t off = 0;
    pthread_mutex_lock(&sr_seg_mu);
    if (sr_seg_locked())
        off = sr_seg_take(sr_round(len));
    pthread_mutex_unlock(&sr_seg_mu);
    return off;
}

/* Zeroes the first page of the block but its lock, under the lock (a
 * peer's sender that takes it next finds generation 0 and leaves), then,
 * unless the block stays warm, gives the pages after the first back
 * (punched: they read as zeroes). */
static void sr_seg_clear(uint64_t off, size_t len, int warm)
{
    char *b = (char *)sr_seg_hdr_p + off;
    pthread_mutex_t *m = (pthread_mutex_t *)b;
    sr_shm_lock(m);
    memset(b + SR_LOCK_BYTES, 0, SR_PAGE - SR_LOCK_BYTES);
    pthread_mutex_unlock(m);
    if (len > SR_PAGE && !warm)
        fallocate(sr_seg_fd_v, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)(off + SR_PAGE), (off_t)(len - SR_PAGE));
}

void sr_seg_free(uint64_t off, size_t len)
{
    if (!off)
        return;
    len = sr_round(len);
    pthread_mutex_lock(&sr_seg_mu);
    if (sr_seg_hdr_p && sr_seg_epoch == sr_epoch) {
        if (sr_nfree == sr_free_cap) {
            size_t cap = sr_free_cap ? 2 * sr_free_cap : 64;
            struct sr_free *f = realloc(sr_frees, cap * sizeof *f);
            if (f) {
                sr_frees = f;
                sr_free_cap = cap;
            }
        }
        /* a block not listed (no memory for the list) is never reused:
         * its pages go back whatever the budget */
        int listed = sr_nfree < sr_free_cap;
        int warm = listed && sr_warm_bytes + len <= SR_WARM_BYTES;
        sr_seg_clear(off, len, warm);
        if (warm)
            sr_warm_bytes += len;
        if (listed)
            sr_frees[sr_nfree++] = (struct sr_free){ off, len, sr_now_ms(), warm };
    }
    pthread_mutex_unlock(&sr_seg_mu);
}

void sr_shm_lock_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
}

/* Holders keep these locks for a few hundred nanoseconds (a ring entry, a
 * flag, a WQE), often in another process on the other CPU: a short spin on
 * trylock spares the waiter a futex sleep and the holder the futex wake on
 * its unlock, both dearer than the wait itself. A receiver polling its CQ
 * meets the sender pushing into it on every message. Bounded: a holder
 * that was preempted is waited for in the kernel. */
#define SR_LOCK_SPINS 64

void sr_shm_lock(pthread_mutex_t *m)
{
    int r = EBUSY;
    for (int i = 0; i < SR_LOCK_SPINS && r == EBUSY; i++) {
        r = pthread_mutex_trylock(m);
        if (r == EBUSY) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
    }
    if (r != 0 && r != EOWNERDEAD)      /* still busy after the spins */
        r = pthread_mutex_lock(m);
    if (r == EOWNERDEAD)
        pthread_mutex_consistent(m);
}

/* Set once a robust unlock failed (the mutex's bytes changed under its
 * holder): that mutex may be left on the thread's robust list, so from
 * then on no peer segment is unmapped in this process (address space is
 * cheaper than a write through the list into unmapped memory). Atomic. */
static int sr_shm_keep_maps;

void sr_shm_unlock(pthread_mutex_t *m)
{
    int rc = pthread_mutex_unlock(m);
    if (rc && !__atomic_exchange_n(&sr_shm_keep_maps, 1, __ATOMIC_RELAXED))
        sr_log("shared lock %p: unlock failed (%s); peers' segments stay mapped",
               (void *)m, strerror(rc));
}

/* ---- peers' segments ---- */
static struct sr_peer_seg *sr_peers;   /* guarded by sr_lock */

/* A peer's segment that no QP uses any more stays mapped (idle) for up to
 * SR_PEER_IDLE_MS, at most SR_PEER_IDLE_MAX of them: a process that
 * connects to the same peer again and again (one connection per request)
 * otherwise mapped and unmapped the peer's whole reservation and
 * re-faulted its pages per connection (5% of each side's CPU). Only a
 * segment that never had more than SR_PEER_IDLE_PEAK of our QPs at once
 * is kept: the pages of it we touched count in our resident set (and keep
 * the peer's memory alive if it exits), which for a few QPs is little,
 * but for a burst of 1,000 is megabytes (rsfw.rss_bursts). An idle
 * segment holds no descriptor. A dead peer's idle segment is let go by
 * the age limit at the next get or put, by the count limit, or at exit.
 * Guarded by sr_lock, as sr_peers. */
#define SR_PEER_IDLE_MAX 8
#define SR_PEER_IDLE_MS 2000
#define SR_PEER_IDLE_PEAK 16

static void sr_peer_seg_free(struct sr_peer_seg *p)
{
    for (struct sr_peer_seg **pp = &sr_peers; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    sr_peer_ch_forget(p);
    if (p->pidfd >= 0)
        sr_sys_close(p->pidfd);
    if (!__atomic_load_n(&sr_shm_keep_maps, __ATOMIC_RELAXED))
        munmap(p->base, p->size);
    free(p);
}

/* Unmaps idle segments older than max_age_ms, then the oldest ones
 * beyond keep. */
static void sr_peer_segs_trim(uint64_t max_age_ms, unsigned keep)
{
    uint64_t now = sr_now_ms();
    for (;;) {
        struct sr_peer_seg *oldest = NULL;
        unsigned idle = 0;
        for (struct sr_peer_seg *p = sr_peers; p; p = p->next) {
            if (p->refs > 0)
                continue;
            if (now - p->idle_at >= max_age_ms) {
                oldest = p;
                idle = keep + 1;        /* goes now, whatever the count */
                break;
            }
            idle++;
            if (!oldest || p->idle_at < oldest->idle_at)
                oldest = p;
        }
        if (idle <= keep)
            return;
        sr_peer_seg_free(oldest);
    }
}

void sr_peer_segs_drop_idle(void) { sr_peer_segs_trim(0, 0); }

struct sr_peer_seg *sr_peer_seg_get(int fd)
{
    sr_peer_segs_trim(SR_PEER_IDLE_MS, SR_PEER_IDLE_MAX);
    struct stat st;
    if (fstat(fd, &st) || (uint64_t)st.st_size < SR_SEG_MIN || (uint64_t)st.st_size > SR_SEG_SIZE)
        goto bad;
    for (struct sr_peer_seg *p = sr_peers; p; p = p->next)
        if (p->dev == st.st_dev && p->ino == st.st_ino) {
            if (++p->refs > p->peak)
                p->peak = p->refs;
            sr_sys_close(fd);
            return p;
        }
    struct sr_peer_seg *p = calloc(1, sizeof *p);
    uint64_t len = (uint64_t)st.st_size;
    void *base = p ? mmap(NULL, len, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_NORESERVE, fd, 0) : MAP_FAILED;
    if (base == MAP_FAILED) {
        free(p);
        goto bad;
    }
    madvise(base, len, MADV_DONTFORK);
    sr_sys_close(fd);
    p->dev = st.st_dev;
    p->ino = st.st_ino;
    p->base = base;
    p->size = len;
    p->refs = p->peak = 1;
    p->pidfd = -1;
    p->next = sr_peers;
    sr_peers = p;
    if (((struct sr_seg_hdr *)base)->magic != SR_SEG_MAGIC) {
        sr_peer_seg_free(p);
        return NULL;
    }
    return p;
bad:
    sr_sys_close(fd);
    return NULL;
}

struct sr_peer_seg *sr_peer_seg_of_pid(int32_t pid)
{
    sr_peer_segs_trim(SR_PEER_IDLE_MS, SR_PEER_IDLE_MAX);
    for (struct sr_peer_seg *p = sr_peers; p; p = p->next)
        if (__atomic_load_n(&((struct sr_seg_hdr *)p->base)->pid, __ATOMIC_RELAXED) == pid) {
            if (++p->refs > p->peak)
                p->peak = p->refs;
            return p;
        }
    return NULL;
}

void sr_peer_seg_put(struct sr_peer_seg *p)
{
    if (!p || --p->refs > 0)
        return;
    if (p->peak > SR_PEER_IDLE_PEAK) {
        sr_peer_seg_free(p);
        return;
    }
    /* an idle segment holds no descriptor: its channels' eventfds and
     * pidfd go now (rsockets make a channel per connection, so a kept
     * eventfd would seldom be met again; rsocket_robust counts them) */
    sr_peer_ch_forget(p);
    if (p->pidfd >= 0)
        sr_sys_close(p->pidfd);
    p->pidfd = -1;
    p->idle_at = sr_now_ms();
    sr_peer_segs_trim(SR_PEER_IDLE_MS, SR_PEER_IDLE_MAX);
}

/* In a forked child: the parent's segment and its peers' are not mapped
 * here (MADV_DONTFORK); the child makes its own on first use. */
void sr_shm_forget(void)
{
    pthread_mutex_init(&sr_seg_mu, NULL);
    sr_seg_hdr_p = NULL;
    if (sr_seg_fd_v >= 0)
        sr_sys_close(sr_seg_fd_v);
    sr_seg_fd_v = -1;
    sr_peers = NULL;                /* their mappings are gone: not freed */
}
