/* anchor_local.c - pairs the two ends of a connection made inside this
 * process (see anchor_local.h).
 *
 * A fixed ring of the last LOCAL_MAX connections made or accepted: fd
 * number, local address and the fork generation that made it (a fork
 * makes every entry stale: which process keeps which end is not known).
 * Entries are never removed on close: a lookup checks that the fd still
 * holds a candidate or anchored socket with that local address and the
 * other end as its peer, so a stale or reused entry never pairs anything.
 * A ring that wrapped forgets the oldest: such a pair is then upgraded
 * end by end at first use, as across processes.
 *
 * Locking: l_lock guards the ring; it is a leaf (nothing else is taken
 * while it is held), the fds found are checked and anchored after it is
 * dropped. */
#include "anchor_local.h"

#include <poll.h>
#include <pthread.h>
#include <string.h>

#include "anchor.h"
#include "epoll_agg.h"
#include "fw.h"
#include "libc_api.h"
#include "timeutil.h"

#define LOCAL_MAX 64
/* How long accept() lets the two handshakes of a pair run to the end (a
 * few ms on softrdma). Past it they go on at the ends' first uses. */
#define LOCAL_SETTLE_MS 2000
#define LOCAL_QUIET_MS 5

struct local_conn {
    int fd;
    unsigned gen;
    socklen_t len;
    struct sockaddr_storage addr;
};

static pthread_mutex_t l_lock = PTHREAD_MUTEX_INITIALIZER;
static struct local_conn l_ring[LOCAL_MAX];
static unsigned l_next;
static _Atomic unsigned l_gen_seen;   /* fork generation + 1 of the last entry */

void anchor_local_add(int fd)
{
    struct local_conn e = { .fd = fd, .gen = __atomic_load_n(&g_fork_gen, __ATOMIC_RELAXED) };
    e.len = sizeof(e.addr);
    if (LIBC(getsockname)(fd, (struct sockaddr *)&e.addr, &e.len) < 0)
        return;
    pthread_mutex_lock(&l_lock);
    l_ring[l_next++ % LOCAL_MAX] = e;
    pthread_mutex_unlock(&l_lock);
    __atomic_store_n(&l_gen_seen, e.gen + 1, __ATOMIC_RELAXED);
}

static int same_addr(const struct sockaddr_storage *a, socklen_t alen,
                     const struct sockaddr_storage *b, socklen_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* The fds of this generation recorded with local address addr. */
static int find(const struct sockaddr_storage *addr, socklen_t len, int out[], int cap)
{
    unsigned gen = __atomic_load_n(&g_fork_gen, __ATOMIC_RELAXED);
    int n = 0;
    pthread_mutex_lock(&l_lock);
    for (int i = 0; i < LOCAL_MAX && n < cap; i++)
        if (l_ring[i].gen == gen && l_ring[i].len != 0 && same_addr(&l_ring[i].addr, l_ring[i].len, addr, len))
            out[n++] = l_ring[i].fd;
    pthread_mutex_unlock(&l_lock);
    return n;
}

/* fd still is the end of the connection whose ends are (local, peer):
 * its local address is local and its peer peer. */
static int is_end(int fd, const struct sockaddr_storage *local, socklen_t llen,
                         const struct sockaddr_storage *peer, socklen_t plen)
{
    struct sockaddr_storage a;
    socklen_t alen = sizeof(a);
    if (LIBC(getsockname)(fd, (struct sockaddr *)&a, &alen) < 0 || !same_addr(&a, alen, local, llen))
        return 0;
    alen = sizeof(a);
    return LIBC(getpeername)(fd, (struct sockaddr *)&a, &alen) == 0 && same_addr(&a, alen, peer, plen);
}

/* Whether fd's handshake ended (any answer of poll_events but "still
 * upgrading", or fd not anchored); else 0 with its wait fd in *wfd. */
static int settled(int fd, int *wfd)
{
    struct file *f = file_get(fd);
    if (f == NULL)
        return 1;
    int done = 1;
    if (file_is_anchored(f)) {
        uint64_t gen = 0;
        MOD_ENTER();
        uint32_t m = f->mod->poll_events(f->sock, &gen);
        MOD_LEAVE();
        ev_polled(f, NULL, gen);
        done = m != 0;
        *wfd = f->wait_fd;
    }
    file_put(f);
    return done;
}

/* Both ends are in this process, so this thread may be the only one that
 * ever runs their handshakes before using either: run them to the end
 * now, bounded, so that the pair behaves as a kernel pair at once (e.g.
 * writable right after accept). A fallback is left for the first use to
 * apply (poll_events keeps saying it). */
static void settle(int afd, int pfd)
{
    int64_t deadline = now_ns() + (int64_t)LOCAL_SETTLE_MS * 1000000;
    for (int round = 0; round < 10000; round++) {
        struct pollfd p[2] = { { .fd = -1, .events = POLLIN }, { .fd = -1, .events = POLLIN } };
        int da = settled(afd, &p[0].fd), dp = settled(pfd, &p[1].fd);
        int left = ms_left(deadline);
        if (left == 0)
            return;
        /* Both ends up: the connection's own first messages (credits)
         * may still be on the way; taken here while they come, so that a
         * set the app registers next does not wake for them (QUIET_MS of
         * silence ends it). */
        int quiet = da && dp;
        int n = LIBC(poll)(p, 2, quiet ? LOCAL_QUIET_MS : (left > 50 ? 50 : left));
        if (quiet && n == 0)
            return;
    }
}

int anchor_local_other_end(int fd)
{
    if (__atomic_load_n(&l_gen_seen, __ATOMIC_RELAXED) != __atomic_load_n(&g_fork_gen, __ATOMIC_RELAXED) + 1)
        return 0;
    struct sockaddr_storage peer, local;
    socklen_t plen = sizeof(peer), llen = sizeof(local);
    int fds[4];
    if (LIBC(getpeername)(fd, (struct sockaddr *)&peer, &plen) < 0 ||
        LIBC(getsockname)(fd, (struct sockaddr *)&local, &llen) < 0)
        return 0;
    int n = find(&peer, plen, fds, 4);
    for (int i = 0; i < n; i++)
        if (fds[i] != fd && is_end(fds[i], &peer, plen, &local, llen))
            return 1;
    return 0;
}

void anchor_local_pair(int fd, int at_accept)
{
    /* fast path: no connection recorded since the last fork */
    if (__atomic_load_n(&l_gen_seen, __ATOMIC_RELAXED) != __atomic_load_n(&g_fork_gen, __ATOMIC_RELAXED) + 1)
        return;
    struct sockaddr_storage peer, local;
    socklen_t plen = sizeof(peer), llen = sizeof(local);
    int fds[4];
    if (LIBC(getpeername)(fd, (struct sockaddr *)&peer, &plen) < 0 ||
        LIBC(getsockname)(fd, (struct sockaddr *)&local, &llen) < 0)
        return;
    int n = find(&peer, plen, fds, 4), ofd = -1;
    for (int i = 0; i < n && ofd < 0; i++) {
        struct file *of = file_get(fds[i]);
        if (of == NULL)
            continue;
        /* at accept, only an end that began upgrading: a candidate may
         * still go to another process (accept-then-fork) */
        int eligible = file_is_anchored(of) || (!at_accept && anchor_pending(of));
        if (eligible && is_end(fds[i], &peer, plen, &local, llen)) {
            ofd = fds[i];
            anchor_now(ofd, of);      /* no-op when it is anchored already */
        }
        file_put(of);
    }
    if (ofd < 0)
        return;
    struct file *f = file_get(fd);
    if (f != NULL) {
        /* The other end stayed on TCP (e.g. out of descriptors): this end
         * must too, or it would commit to an offer that never comes. */
        struct file *of = file_get(ofd);
        int other_on_tcp = of != NULL && !file_is_anchored(of);
        if (of != NULL)
            file_put(of);
        if (other_on_tcp)
            anchor_stay_tcp(fd, f);
        else
            anchor_now(fd, f);        /* at accept: the new end */
        file_put(f);
    }
    settle(ofd, fd);
}
