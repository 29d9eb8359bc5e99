/* softrdma librdmacm: ephemeral port claims kept for this process's next
 * active id. Every rdma_resolve_addr without a source port claimed a
 * fresh random port in the fabric (names lock, a directory, a symlink, a
 * scan of the port's claims) and gave it back at rdma_destroy_id: 8% of
 * a client's CPU per connection when it connects once per request. A
 * released plain (not REUSEADDR) port-0 claim stays in the fabric, still
 * ours and live, for up to CM_POOL_MS, at most CM_POOL_MAX of them, and
 * the next port-0 claim of the same address, port space and network
 * namespace takes it over without touching the fabric. While pooled the
 * port is taken for everybody else, as a kernel TCP port in TIME_WAIT
 * (ephemeral ports only: a given port is never pooled). Aged entries are
 * removed at the next claim or release, all of them at exit; a forked
 * child never uses (nor removes) its parent's.
 * Locking: the pool is guarded by sr_lock, as every caller holds it. */
#include "cm_internal.h"
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CM_POOL_MAX 8
#define CM_POOL_MS 1000

struct cm_pooled {
    char path[sizeof ((struct cm_id *)0)->port_claim];   /* "" if free */
    char key[64];
    uint16_t port;
    int afonly;
    enum rdma_port_space ps;
    unsigned long ns;
    unsigned epoch;
    uint64_t at;
};
static struct cm_pooled cm_pool[CM_POOL_MAX];   /* guarded by sr_lock */

static uint64_t cm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void cm_pool_drop(struct cm_pooled *e)
{
    if (e->epoch == sr_epoch)        /* a parent's claim is the parent's */
        unlink(e->path);
    e->path[0] = 0;
}

static void cm_pool_age(void)
{
    uint64_t now = cm_now_ms();
    for (int i = 0; i < CM_POOL_MAX; i++)
        if (cm_pool[i].path[0] && (cm_pool[i].epoch != sr_epoch || now - cm_pool[i].at >= CM_POOL_MS))
            cm_pool_drop(&cm_pool[i]);
}

int cm_pool_put(const struct cm_id *id, const char *key, unsigned long ns, uint16_t port)
{
    cm_pool_age();
    struct cm_pooled *e = NULL;
    for (int i = 0; i < CM_POOL_MAX && !e; i++)
        if (!cm_pool[i].path[0])
            e = &cm_pool[i];
    if (!e || strlen(key) >= sizeof e->key)
        return -1;
    memcpy(e->path, id->port_claim, sizeof e->path);
    strcpy(e->key, key);
    e->port = port;
    e->afonly = id->afonly;
    e->ps = id->pub.ps;
    e->ns = ns;
    e->epoch = sr_epoch;
    e->at = cm_now_ms();
    return 0;
}

int cm_pool_take(struct cm_id *id, const char *key, unsigned long ns)
{
    cm_pool_age();
    for (int i = 0; i < CM_POOL_MAX; i++) {
        struct cm_pooled *e = &cm_pool[i];
        if (e->path[0] && e->ns == ns && e->afonly == id->afonly && e->ps == id->pub.ps &&
            !strcmp(e->key, key)) {
            memcpy(id->port_claim, e->path, sizeof id->port_claim);
            e->path[0] = 0;
            return e->port;
        }
    }
    return 0;
}

void cm_pool_exit(void)
{
    for (int i = 0; i < CM_POOL_MAX; i++)
        if (cm_pool[i].path[0])
            cm_pool_drop(&cm_pool[i]);
}
