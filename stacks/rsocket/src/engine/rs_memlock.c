/* rs_memlock.c - RDMA buffers under the locked-memory limit.
 *
 * Registered memory counts against RLIMIT_MEMLOCK unless the process has
 * CAP_IPC_LOCK (root has it; a server's workers that dropped privileges do
 * not). A non-root user's default limit is 8 MiB, and the engine's default
 * buffers (2 x 128 KiB per connection) would fit some thirty connections.
 * Where the device pages registered memory on demand (ODP: an HCA that
 * has it, the software device), nothing is pinned and nothing counts
 * against the limit: the buffers are registered with
 * IBV_ACCESS_ON_DEMAND at full size and the limit does not apply.
 * Otherwise, under a finite limit each connection's buffers are sized to fit
 * RS_MEMLOCK_CONNS connections in the limit (down to RS_MEMLOCK_MIN_BUF),
 * and the process says so once; when registering still fails, the
 * endpoint shrinks its buffers further (rs_endpoint.c) and at the end the
 * connection stays on TCP with the limit as its reason. */
#include "rs_sock.h"

#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RS_MEMLOCK_CONNS 128
#define RS_MEMLOCK_OVERHEAD 8192u     /* control slots + target table, rounded up */

/* Whether registered memory is limited for this process, and the limit. */
static int memlock_limited(rlim_t *limit)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) || rl.rlim_cur == RLIM_INFINITY)
        return 0;
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
    if (syscall(SYS_capget, &hdr, caps) == 0 &&
        (caps[CAP_TO_INDEX(CAP_IPC_LOCK)].effective & CAP_TO_MASK(CAP_IPC_LOCK)))
        return 0;
    *limit = rl.rlim_cur;
    return 1;
}

/* Whether ctx's device has on-demand paging for what a connection's
 * buffers serve (RC SEND, RECV and RDMA WRITE). Asked once per device
 * context (a process has one; a fork child a new one); odp_lock guards
 * the answer. */
static pthread_mutex_t odp_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ibv_context *odp_ctx;
static int odp_ok;

static int device_odp(struct ibv_context *ctx)
{
    const uint32_t need = IBV_ODP_SUPPORT_SEND | IBV_ODP_SUPPORT_RECV | IBV_ODP_SUPPORT_WRITE;
    pthread_mutex_lock(&odp_lock);
    if (ctx != odp_ctx) {
        struct ibv_device_attr_ex attr;
        odp_ok = ibv_query_device_ex(ctx, NULL, &attr) == 0 &&
                 (attr.odp_caps.general_caps & IBV_ODP_SUPPORT) &&
                 (attr.odp_caps.per_transport_caps.rc_odp_caps & need) == need;
        odp_ctx = ctx;
    }
    int ok = odp_ok;
    pthread_mutex_unlock(&odp_lock);
    return ok;
}

static int odp_fit(struct rsock *s, rlim_t limit)
{
    static int said;
    if (!s->id || !s->id->verbs || !device_odp(s->id->verbs))
        return 0;
    s->odp = 1;
    if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
        rs_log(1, "locked-memory limit %llu KiB (RLIMIT_MEMLOCK, no CAP_IPC_LOCK): RDMA buffers registered "
                  "on demand (the device's ODP), at full size", (unsigned long long)limit / 1024);
    return 1;
}

static uint32_t pow2_floor(uint32_t v)
{
    return v ? 1u << (31 - __builtin_clz(v)) : 0;
}

int rs_memlock_fit(struct rsock *s)
{
    static int said;
    rlim_t limit;
    if (!memlock_limited(&limit) || odp_fit(s, limit))
        return 0;
    uint64_t per_conn = limit / RS_MEMLOCK_CONNS;
    uint64_t each = per_conn > RS_MEMLOCK_OVERHEAD ? (per_conn - RS_MEMLOCK_OVERHEAD) / 2 : 0;
    uint32_t buf = pow2_floor(each > UINT32_MAX ? UINT32_MAX : (uint32_t)each);
    if (buf < RS_MEMLOCK_MIN_BUF)
        buf = RS_MEMLOCK_MIN_BUF;
    if (s->rbuf_size <= buf && s->sbuf_size <= buf)
        return 1;
    if (s->rbuf_size > buf)
        s->rbuf_size = buf;
    if (s->sbuf_size > buf)
        s->sbuf_size = buf;
    if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
        rs_log(2, "locked-memory limit %llu KiB (RLIMIT_MEMLOCK, no CAP_IPC_LOCK): RDMA buffers of %u KiB "
               "per direction; raise it (ulimit -l, LimitMEMLOCK=) for full-size buffers",
               (unsigned long long)limit / 1024, buf / 1024);
    return 1;
}

/* Large buffers make a bulk stream fast but are registered memory, which
 * real hardware pins for the connection's whole life: a server with
 * thousands of connections must not pin 2 MiB for each. So only
 * RS_ANCHOR_BUF_CONNS anchored sockets of a process hold RS_ANCHOR_BUF
 * buffers at a time (64 x 2 MiB = 128 MiB by default); the others get
 * rsockets' defaults, as without the tunable. Counted with atomics: taken
 * at the socket's creation, given back when it is freed. */
static unsigned g_big_bufs;

void rs_anchor_buf_take(struct rsock *s)
{
    if (!rs_tun.anchor_buf || s->big_buf)
        return;
    if (__atomic_add_fetch(&g_big_bufs, 1, __ATOMIC_RELAXED) > rs_tun.anchor_buf_conns) {
        __atomic_sub_fetch(&g_big_bufs, 1, __ATOMIC_RELAXED);
        return;
    }
    s->big_buf = 1;
    s->rbuf_size = s->sbuf_size = rs_tun.anchor_buf;
}

void rs_anchor_buf_give(struct rsock *s)
{
    if (s->big_buf) {
        s->big_buf = 0;
        __atomic_sub_fetch(&g_big_bufs, 1, __ATOMIC_RELAXED);
    }
}

void rs_memlock_refused(void)
{
    static int said;
    rlim_t limit;
    if (__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED) || !memlock_limited(&limit))
        return;
    rs_log(2, "memory registration refused at the locked-memory limit (RLIMIT_MEMLOCK %llu KiB): "
           "buffers shrink, then connections stay on TCP; raise it with ulimit -l or LimitMEMLOCK=",
           (unsigned long long)limit / 1024);
}
