/*
 * rs_epcache.c - a closed connection's registered buffers, kept for the
 * next connection of the process.
 *
 * A connection registers three buffers (receive ring, send ring with its
 * control slots, target SGL and iomap table). Mapping, registering,
 * deregistering and unmapping them was about 6% of each end's CPU per
 * connection under one connection per request (ab against nginx). So
 * rs_endpoint_destroy, after the QP is gone, hands the three buffers with
 * their memory regions to this cache, and the next rs_endpoint_create of
 * the same sizes and protection domain takes them as they are.
 *
 * Why a reused region is safe: nothing reaches it through the old
 * connection any more. Its QP is destroyed before the buffers come here,
 * and a peer writes our memory only through a QP connected to ours (on
 * the software device the sender checks our QP block's generation under
 * its lock; on hardware the old peer QP is bound to our destroyed QP
 * number). The new connection advertises the same addresses and keys in
 * its own connection data, as any new registration would: the rsockets
 * wire format is unchanged. The receive ring is read only where the new
 * peer wrote, the send ring is ours; the target table, which is read to
 * learn what the peer wrote there, is cleared (as page_alloc_zeroed did).
 *
 * Limits: at most RS_EPC_MAX bundles (one client's or server's burst of
 * closes: ab -c 8 keeps 8 connections and as many closing); registered
 * memory counts against RLIMIT_MEMLOCK, so a process whose locked memory
 * is limited keeps none (the cache is emptied when a connection finds the
 * limit: rs_epc_take with limited set). Entries of another fork
 * generation are forgotten, never used nor deregistered: a child does not
 * own its parent's registrations (and the pages are MADV_DONTFORK).
 *
 * Locking: epc_lock guards epc[] and epc_limited. ibv_dereg_mr and
 * munmap run outside it (rs_epc_flush takes entries out first).
 */
#include "rs_sock.h"

#include <string.h>
#include <sys/mman.h>

#define RS_EPC_MAX 16

struct rs_epc_entry {
    struct ibv_pd *pd;          /* NULL: free slot */
    unsigned gen;               /* rs_fork_gen at put */
    uint32_t rbuf_size, sbuf_size;
    size_t target_len;
    uint8_t *rbuf, *sbuf, *target;
    struct ibv_mr *rmr, *smr, *tmr;
    size_t rbuf_map, sbuf_map, target_map;
};

static pthread_mutex_t epc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rs_epc_entry epc[RS_EPC_MAX];
static int epc_limited;                 /* the last connection found a memlock limit */
static unsigned long epc_hits;             /* atomic adds */

static void entry_release(struct rs_epc_entry *e)
{
    ibv_dereg_mr(e->rmr);
    ibv_dereg_mr(e->smr);
    ibv_dereg_mr(e->tmr);
    munmap(e->rbuf, e->rbuf_map);
    munmap(e->sbuf, e->sbuf_map);
    munmap(e->target, e->target_map);
}

/* Empties the cache: this generation's entries are released (outside the
 * lock), older ones forgotten. */
static void epc_flush(void)
{
    struct rs_epc_entry out[RS_EPC_MAX];
    int n = 0;
    unsigned gen = __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED);
    pthread_mutex_lock(&epc_lock);
    for (int i = 0; i < RS_EPC_MAX; i++) {
        if (epc[i].pd && epc[i].gen == gen)
            out[n++] = epc[i];
        epc[i].pd = NULL;
    }
    pthread_mutex_unlock(&epc_lock);
    for (int i = 0; i < n; i++)
        entry_release(&out[i]);
}

static int entry_fits(const struct rs_epc_entry *e, const struct rsock *s, unsigned gen)
{
    return e->pd == s->id->pd && e->gen == gen && e->rbuf_size == s->rbuf_size &&
           e->sbuf_size == s->sbuf_size && e->target_len == s->target_len;
}

int rs_epc_take(struct rsock *s, int limited)
{
    unsigned gen = __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED);
    struct rs_epc_entry got = { 0 };
    pthread_mutex_lock(&epc_lock);
    int was = epc_limited;
    epc_limited = limited;
    for (int i = 0; i < RS_EPC_MAX && !limited && !got.pd; i++) {
        if (epc[i].pd && epc[i].gen != gen)
            epc[i].pd = NULL;               /* a parent's: not ours */
        if (epc[i].pd && entry_fits(&epc[i], s, gen)) {
            got = epc[i];
            epc[i].pd = NULL;
        }
    }
    pthread_mutex_unlock(&epc_lock);
    if (limited && !was)
        epc_flush();
    if (!got.pd)
        return 0;
    s->rbuf = got.rbuf;     s->rmr = got.rmr;  s->rbuf_map = got.rbuf_map;
    s->sbuf = got.sbuf;     s->smr = got.smr;  s->sbuf_map = got.sbuf_map;
    s->target = got.target; s->tmr = got.tmr;  s->target_map = got.target_map;
    memset(s->target, 0, s->target_len);
    if (__atomic_fetch_add(&epc_hits, 1, __ATOMIC_RELAXED) == 0)
        rs_log(1, "endpoint cache: a closed connection's registered buffers serve a new one "
                  "(up to %d kept per process)", RS_EPC_MAX);
    return 1;
}

int rs_epc_put(struct rsock *s)
{
    if (!s->id || !s->id->pd || !s->rmr || !s->smr || !s->tmr || !s->rbuf || !s->sbuf || !s->target)
        return 0;
    unsigned gen = __atomic_load_n(&rs_fork_gen, __ATOMIC_RELAXED);
    if (s->fork_gen != gen)
        return 0;                           /* a parent's: never ours to keep */
    int kept = 0;
    pthread_mutex_lock(&epc_lock);
    for (int i = 0; i < RS_EPC_MAX && !kept && !epc_limited; i++) {
        if (epc[i].pd && epc[i].gen == gen)
            continue;
        epc[i] = (struct rs_epc_entry){
            .pd = s->id->pd, .gen = gen,
            .rbuf_size = s->rbuf_size, .sbuf_size = s->sbuf_size, .target_len = s->target_len,
            .rbuf = s->rbuf, .sbuf = s->sbuf, .target = s->target,
            .rmr = s->rmr, .smr = s->smr, .tmr = s->tmr,
            .rbuf_map = s->rbuf_map, .sbuf_map = s->sbuf_map, .target_map = s->target_map,
        };
        kept = 1;
    }
    pthread_mutex_unlock(&epc_lock);
    if (!kept)
        return 0;
    /* Poisoned while kept: should a kept table ever be handed out without
     * rs_epc_take's clear, a sender that outruns its new peer's first
     * advertisement meets an impossible key and fails loudly, instead of
     * writing to the old peer's buffer address by the old entry. */
    memset(s->target, 0xA5, s->target_len);
    s->rmr = s->smr = s->tmr = NULL;
    s->rbuf = s->sbuf = s->target = NULL;
    s->rbuf_map = s->sbuf_map = s->target_map = 0;
    return 1;
}
