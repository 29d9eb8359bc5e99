/* tcpfirst.c - fork support: TCP first, the module at the first data call.
 *
 * RDMA resources are not inherited by a fork child, so a connection that an
 * accept-then-fork server hands to its child must not be on RDMA yet. With
 * NSTACK_FORK_SUPPORT=1 a stream socket routed to a
 * module that implements adopt() stays a kernel TCP socket, marked with the
 * module and its role; its first send/recv in whichever process uses it
 * calls adopt(), which moves the connection with a handshake over TCP, and
 * the app fd then moves onto the module socket like at a routing decision
 * (dups, epoll registrations, O_NONBLOCK and FD_CLOEXEC follow). */
#include "tcpfirst.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "anchor.h"
#include "conn_stats.h"
#include "fd_table.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"
#include "module_load.h"
#include "sock.h"
#include "stats.h"

/* Written once in tcpfirst_setup() (under fw_start's pthread_once) before
 * any socket is routed; read-only afterwards. */
static int g_tf_on;

static int env_is_one(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && strcmp(v, "1") == 0;
}

/* RDMAV_FORK_SAFE=1 is not a switch here although librspreload reads it:
 * it is libibverbs' own fork-safety variable, which programs set for
 * ibv_fork_init()'s sake alone, and turning a wire-visible mode on from it
 * would make such a client unable to reach a server without fork support
 * (test rsfw.fork does exactly that). The module calls ibv_fork_init()
 * anyway. */
void tcpfirst_setup(void)
{
    g_tf_on = env_is_one("NSTACK_FORK_SUPPORT");
    if (!g_tf_on && env_is_one("RDMAV_FORK_SAFE"))
        LOG_DBG("RDMAV_FORK_SAFE=1 seen; TCP-first fork support needs NSTACK_FORK_SUPPORT=1");
    if (g_tf_on)
        LOG_DBG("fork support on: stream sockets of modules with adopt() start on TCP");
}

int tcpfirst_enabled(void)
{
    return g_tf_on;
}

int tcpfirst_defer(struct file *kf, int st)
{
    const struct nstack_module *m = g_stacks[st].mod;
    if (!g_tf_on || kf->type != SOCK_STREAM || m == NULL || !MODULE_HAS_OP(m, adopt))
        return 0;
    __atomic_store_n(&kf->defer_stack, st + 1, __ATOMIC_RELEASE);
    return 1;
}

void tcpfirst_set_role(struct file *f, enum tf_role role)
{
    if (f->kind != FILE_KSOCK || __atomic_load_n(&f->defer_stack, __ATOMIC_ACQUIRE) == 0)
        return;
    pthread_mutex_lock(&f->lock);
    if (!__atomic_load_n(&f->decided, __ATOMIC_ACQUIRE))
        __atomic_store_n(&f->defer_role, role, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&f->lock);
}

int tcpfirst_track_accepted(int fd, struct file *lf, int nonblock)
{
    int deferred = lf->kind == FILE_KSOCK && !__atomic_load_n(&lf->defer_anchor, __ATOMIC_ACQUIRE) &&
                   __atomic_load_n(&lf->defer_role, __ATOMIC_ACQUIRE) == TF_LISTENER;
    int type = lf->type | (nonblock ? SOCK_NONBLOCK : 0);
    if (sock_track_kernel(fd, lf->domain, type, lf->protocol, !deferred) < 0)
        return -1;
    if (deferred) {
        struct file *nf = fd_table_get(fd);   /* not visible to the app yet */
        __atomic_store_n(&nf->defer_stack, __atomic_load_n(&lf->defer_stack, __ATOMIC_RELAXED),
                         __ATOMIC_RELAXED);
        __atomic_store_n(&nf->defer_role, TF_PASSIVE, __ATOMIC_RELEASE);
    }
    return 0;
}

static struct file *fail_put(struct file *f, int err)
{
    file_put(f);
    errno = err;
    return NULL;
}

/* A receive moves the connection only once the peer has spoken (its
 * handshake bytes, or data when it does not speak the handshake): waits
 * as the app's own receive would, without holding any lock. 0 when
 * readable, else -1/errno (EAGAIN nonblocking, EINTR). */
static int wait_peer_spoke(int fd, int nonblock)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int r = LIBC(poll)(&p, 1, nonblock ? 0 : -1);
    if (r > 0)
        return 0;
    if (r == 0)
        errno = EAGAIN;
    return -1;
}

/* The peer does not speak the handshake and nothing was consumed: the
 * connection stays a kernel TCP socket for good. */
static void stay_on_tcp(int fd, struct file *f, int st)
{
    __atomic_store_n(&f->defer_role, TF_NONE, __ATOMIC_RELEASE);
    __atomic_store_n(&f->defer_stack, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&f->stack, g_kernel_stack, __ATOMIC_RELAXED);   /* read unlocked: file.h */
    __atomic_store_n(&f->decided, 1, __ATOMIC_RELEASE);
    stats_add(g_kernel_stack, NSTAT_SOCKETS, 1);
    conn_stats_stay_tcp(fd, f, ENOPROTOOPT);   /* its record: stayed on TCP, the peer's reason */
    LOG_INF("fd %d: the peer does not speak the %s fork handshake; the connection stays on TCP",
            fd, g_stacks[st].name);
}

/* Calls the module's adopt() and publishes the result; f->lock held. */
static int adopt_locked(int fd, struct file *f, int write_first)
{
    int st = __atomic_load_n(&f->defer_stack, __ATOMIC_ACQUIRE) - 1;
    int role = __atomic_load_n(&f->defer_role, __ATOMIC_ACQUIRE);
    const struct nstack_module *m = g_stacks[st].mod;
    int flags = (__atomic_load_n(&f->nonblock, __ATOMIC_RELAXED) ? NSTACK_ADOPT_NONBLOCK : 0) |
                (write_first ? NSTACK_ADOPT_WRITE_FIRST : 0);
    nstack_sock *s = NULL;
    MOD_ENTER();
    int wfd = m->adopt(fd, role == TF_ACTIVE ? NSTACK_ADOPT_ACTIVE : NSTACK_ADOPT_PASSIVE, flags, &s);
    int err = errno;
    MOD_LEAVE();
    if (wfd >= 0 && sock_adopted(fd, f, st, s, wfd) == 0) {
        LOG_DBG("fd %d: TCP connection moved to stack %s", fd, g_stacks[st].name);
        return 0;
    }
    if (wfd >= 0)
        err = errno;
    if (err == ENOPROTOOPT) {
        stay_on_tcp(fd, f, st);
        return 0;
    }
    if (err != EAGAIN) {
        LOG_WAR("fd %d: moving the TCP connection to %s failed: %s; the socket is unusable",
                fd, g_stacks[st].name, strerror(err));
        f->defer_err = err;
        __atomic_store_n(&f->defer_role, TF_FAILED, __ATOMIC_RELEASE);
        conn_stats_failed(fd, f, err);
    }
    errno = err;
    return -1;
}

struct file *tcpfirst_resolve(int fd, struct file *f, int write_first)
{
    if (anchor_pending(f))
        return anchor_resolve(fd, f);   /* TCP-anchored: nothing is moved */
    int role = __atomic_load_n(&f->defer_role, __ATOMIC_ACQUIRE);
    if (role == TF_FAILED)
        return fail_put(f, f->defer_err);
    if (!write_first && wait_peer_spoke(fd, __atomic_load_n(&f->nonblock, __ATOMIC_RELAXED)) < 0)
        return fail_put(f, errno);
    pthread_mutex_lock(&f->lock);
    int r = 0;
    role = __atomic_load_n(&f->defer_role, __ATOMIC_ACQUIRE);
    if (role == TF_FAILED) {
        errno = f->defer_err;
        r = -1;
    } else if ((role == TF_ACTIVE || role == TF_PASSIVE) && fd_table_get(fd) == f) {
        r = adopt_locked(fd, f, write_first);
    }
    int err = errno;
    pthread_mutex_unlock(&f->lock);
    if (r < 0)
        return fail_put(f, err);
    struct file *now = file_get(fd);   /* the module socket, or f on TCP */
    file_put(f);
    if (now == NULL)
        errno = EBADF;
    return now;
}

void tcpfirst_note_inherited(const struct file *f)
{
    static _Atomic int said;
    if (__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED) == 0)
        LOG_WAR("%s: a socket inherited across fork() is not usable in the child (EOWNERDEAD); "
                "set NSTACK_FORK_SUPPORT=1 on both ends for accept-then-fork servers",
                f->mod ? f->mod->name : "module");
}
