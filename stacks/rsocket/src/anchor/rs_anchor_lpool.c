/*
 * rs_anchor_lpool.c - idle anchor listeners kept for the next handshake.
 *
 * The passive end of an anchored connection offers the port of an RDMA
 * listener of its own that accepts exactly one request, straight into its
 * socket (rs_anchor.c, rs_accept.c accept_into). Making that listener is
 * the most expensive step of a connection's set-up on the software device
 * (rdma_bind_addr and rdma_listen claim a port and a listener name in the
 * fabric directory: mkdir, symlink, bind of an AF_UNIX socket, a fabric-
 * wide flock; then all of it undone), and about a quarter of a server's
 * system calls per connection. So a listener whose one connection was
 * accepted goes back to a small per-process pool (one whose handshake
 * failed is closed: a late request may still be on its way), keyed by its address,
 * and the next passive handshake on that address takes it: same port, one
 * connection at a time, so the pairing rule (the one request it accepts
 * comes from the TCP peer's address) and the wire messages are unchanged.
 *
 * While pooled a listener's adopt_into is `idle`, a socket that is never
 * in RS_INIT, so a stray request (a peer that gave up and connected late)
 * is rejected, never accepted into a socket that does not exist any more;
 * before reuse its pending events are answered that way.
 *
 * Locking: pool_lock guards the list. It is never held together with a
 * socket lock: a listener is taken off the list, then locked. Listener
 * lock -> a socket's lock is the engine's order (accept_into); `idle`
 * is locked only inside a listener's lock, like any adopt_into.
 * fork: entries belong to the fork generation that pooled them; a child
 * frees the parent's (closing only its own descriptors, rs_free, without
 * taking their locks) instead of using them, and re-initialises the lock.
 */
#include "rs_anchor.h"
#include "rs_sock.h"

#include <netinet/in.h>
#include <pthread.h>
#include <string.h>

#define RS_LPOOL_MAX 8              /* idle listeners kept per process */

struct lpool_ent {
    struct rsock *l;
    struct sockaddr_storage addr;   /* its bound address, port cleared */
    unsigned gen;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lpool_ent pool[RS_LPOOL_MAX];   /* pool_lock */
static int pool_n;                            /* pool_lock */

/* The adopt_into of a pooled listener: never RS_INIT, so rejected. */
static struct rsock idle = { .lock = PTHREAD_MUTEX_INITIALIZER, .state = RS_ERROR };

/* A listener's bound address (listener lock held). */
static int bound_addr(const struct rsock *l, struct sockaddr_storage *ss)
{
    const struct sockaddr *sa = l->id ? rdma_get_local_addr(l->id) : NULL;
    if (!sa || sa->sa_family != l->domain)
        return -1;
    memcpy(ss, sa, sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in));
    return 0;
}

static int same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET6)
        return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                       &((const struct sockaddr_in6 *)b)->sin6_addr, 16);
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)b)->sin_addr.s_addr;
}

/* Entries of another fork generation, taken out (pool_lock held); the
 * caller closes them with the lock dropped. */
static int take_stale_locked(unsigned gen, struct rsock **out)
{
    int n = 0;
    for (int i = 0; i < pool_n;) {
        if (pool[i].gen == gen) {
            i++;
            continue;
        }
        out[n++] = pool[i].l;
        pool[i] = pool[--pool_n];
    }
    return n;
}

/* A parent's pooled listeners in a fork child: only this process's
 * descriptors of them go (rs_free of a socket of another generation), and
 * without their locks, which a thread of the parent may have held at the
 * fork. Pooled listeners count as parked (rs_count_parked): back first. */
static void free_stale(struct rsock **ls, int n)
{
    for (int i = 0; i < n; i++) {
        rs_count_parked(1);
        rs_free(ls[i]);
    }
}

/* A pooled listener on `local`'s address (its port ignored) made ready to
 * accept into s, with its port in *port; NULL when there is none. */
struct rsock *rs_anc_lpool_take(const struct sockaddr_storage *local, struct rsock *s,
                                uint16_t *port)
{
    unsigned gen = __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED);
    struct rsock *stale[RS_LPOOL_MAX], *l = NULL;
    pthread_mutex_lock(&pool_lock);
    int ns = take_stale_locked(gen, stale);
    for (int i = 0; i < pool_n && !l; i++) {
        if (!same_host(&pool[i].addr, local))
            continue;
        l = pool[i].l;
        pool[i] = pool[--pool_n];
    }
    pthread_mutex_unlock(&pool_lock);
    free_stale(stale, ns);
    if (!l)
        return NULL;
    rs_count_parked(1);
    struct sockaddr_storage ss;
    pthread_mutex_lock(&l->lock);
    rs_conn_process_cm(l);                   /* strays: rejected (idle) */
    int ok = l->state == RS_LISTENING && l->rd_open && !l->accept_err && bound_addr(l, &ss) == 0;
    if (ok)
        l->adopt_into = s;
    pthread_mutex_unlock(&l->lock);
    if (!ok) {
        rs_e_close(l);
        return NULL;
    }
    *port = rs_anc_get_port(&ss);
    return l;
}

/* A listener whose handshake ended (no socket lock held): back to the pool
 * when its one request was accepted (used), it is still listening and
 * there is room, else closed. */
void rs_anc_lpool_put(struct rsock *l, int used)
{
    struct sockaddr_storage ss;
    unsigned gen = __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED);
    pthread_mutex_lock(&l->lock);
    int ok = used && l->fork_gen == gen && l->state == RS_LISTENING && l->rd_open && !l->accept_err &&
             bound_addr(l, &ss) == 0;
    l->adopt_into = &idle;
    pthread_mutex_unlock(&l->lock);
    struct rsock *stale[RS_LPOOL_MAX];
    pthread_mutex_lock(&pool_lock);
    int ns = take_stale_locked(gen, stale);
    if (ok && pool_n < RS_LPOOL_MAX) {
        rs_anc_set_port(&ss, 0);
        pool[pool_n++] = (struct lpool_ent){ .l = l, .addr = ss, .gen = gen };
        rs_count_parked(-1);
        l = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    free_stale(stale, ns);
    if (l)
        rs_e_close(l);
}

void rs_anc_lpool_fork_child(void)
{
    pthread_mutex_init(&pool_lock, NULL);
}
