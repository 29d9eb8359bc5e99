/* anchor.c - TCP-anchored connections (see anchor.h, doc/fork.md).
 *
 * Nothing here moves an fd: the app fd is the TCP socket from socket() to
 * close(). Anchoring only replaces the fd table entry (kernel candidate ->
 * anchored module file, sock_publish) and moves epoll registrations from
 * the TCP fd to the module's wait fd; the fallback (sock_fallback, sock.c)
 * does the reverse. */
#include "anchor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "fd_high.h"
#include "fd_table.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"
#include "module_load.h"
#include "sock.h"
#include "stats.h"

/* Written once in anchor_setup() (under fw_start's pthread_once) before
 * any socket is routed; read-only afterwards. g_anchor_any: some loaded
 * stack can anchor, so accept() looks at the local address's route. */
static int g_anchor_off;
static int g_anchor_any;

static int stack_can_anchor(int st)
{
    const struct nstack_module *m = g_stacks[st].mod;
    return !g_stacks[st].is_kernel && m != NULL && MODULE_HAS_OP(m, anchor);
}

void anchor_setup(void)
{
    const char *v = getenv("NSTACK_ANCHOR");
    g_anchor_off = v != NULL && strcmp(v, "0") == 0;
    if (v != NULL && strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
        LOG_WAR("NSTACK_ANCHOR=%s: expected 0 or 1; TCP-anchored connections stay on", v);
    for (int i = 0; i < g_n_stacks && !g_anchor_off; i++)
        g_anchor_any |= stack_can_anchor(i);
    if (g_anchor_any)
        LOG_DBG("TCP-anchored connections on for the stacks whose module implements anchor()");
}

int anchor_applies(const struct file *f, int st, int anchor_off)
{
    return g_anchor_any && !anchor_off && f->type == SOCK_STREAM && stack_can_anchor(st);
}

void anchor_defer(struct file *kf, int st)
{
    __atomic_store_n(&kf->defer_anchor, 1, __ATOMIC_RELAXED);
    /* Counters of the connection (connect/accept) go to the module; the
     * kernel fast path never reads `stack` of an undecided socket. */
    __atomic_store_n(&kf->stack, st, __ATOMIC_RELAXED);
    __atomic_store_n(&kf->defer_stack, st + 1, __ATOMIC_RELEASE);
}

static int role_of(int tf_role)
{
    return tf_role == TF_ACTIVE ? NSTACK_ADOPT_ACTIVE : NSTACK_ADOPT_PASSIVE;
}

/* The module's hello on the established connection; remembers it went out. */
static void send_hello(int fd, struct file *f, int st, int tf_role)
{
    const struct nstack_module *m = g_stacks[st].mod;
    if (!MODULE_HAS_OP(m, anchor_hello))
        return;
    MOD_ENTER();
    int r = m->anchor_hello(fd, role_of(tf_role));
    int err = errno;
    MOD_LEAVE();
    if (r == 0)
        f->hello_sent = 1;
    else
        LOG_DBG("fd %d: %s: anchor_hello: %s (anchor() will send it)", fd, m->name, strerror(err));
}

int anchor_track_accepted(int fd, const struct file *lf, int nonblock)
{
    if (!g_anchor_any || lf->type != SOCK_STREAM)
        return 0;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (LIBC(getsockname)(fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    struct route r = fw_route_ex(lf, (const struct sockaddr *)&ss);
    if (!r.anchor)
        return 0;
    int type = lf->type | (nonblock ? SOCK_NONBLOCK : 0);
    if (sock_track_kernel(fd, lf->domain, type, lf->protocol, 0) < 0)
        return -1;
    struct file *nf = fd_table_get(fd);   /* not visible to the app yet */
    anchor_defer(nf, r.stack);
    send_hello(fd, nf, r.stack, TF_PASSIVE);
    __atomic_store_n(&nf->defer_role, TF_PASSIVE, __ATOMIC_RELEASE);
    stats_add(r.stack, NSTAT_CONN_IN, 1);
    return 1;
}

/* The connection stays on TCP: the module declined (ENOPROTOOPT), or no
 * module socket could be made (then the peer's module sees this end never
 * answer and falls back too). Caller holds f->lock. */
static void stay_on_tcp(int fd, struct file *f, int st, int err)
{
    __atomic_store_n(&f->defer_role, TF_NONE, __ATOMIC_RELEASE);
    __atomic_store_n(&f->defer_anchor, 0, __ATOMIC_RELAXED);
    sock_mark_kernel(f, g_kernel_stack);
    stats_add(st, NSTAT_ANCHOR_TCP, 1);
    if (err == ENOPROTOOPT)
        LOG_INF("fd %d: stays on TCP: %s declined the upgrade (peer does not run the framework)",
                fd, g_stacks[st].name);
    else
        LOG_WAR("fd %d: stays on TCP: %s: anchor() failed: %s", fd, g_stacks[st].name, strerror(err));
}

/* The module socket beside the TCP socket of candidate kf at fd; published
 * in the fd table on success. Caller holds kf->lock and a reference. */
static void anchor_locked(int fd, struct file *kf)
{
    int st = __atomic_load_n(&kf->defer_stack, __ATOMIC_ACQUIRE) - 1;
    int role = __atomic_load_n(&kf->defer_role, __ATOMIC_ACQUIRE);
    const struct nstack_module *m = g_stacks[st].mod;
    int nb = __atomic_load_n(&kf->nonblock, __ATOMIC_RELAXED);
    int flags = (nb ? NSTACK_ADOPT_NONBLOCK : 0) | (kf->hello_sent ? NSTACK_ANCHOR_HELLO_SENT : 0);
    int kfd = fd_dup_high(fd);          /* ours: the app may close or dup2 over fd */
    if (kfd < 0) {
        stay_on_tcp(fd, kf, st, errno);
        return;
    }
    nstack_sock *s = NULL;
    MOD_ENTER();
    int wfd = m->anchor(kfd, role_of(role), flags, &s);
    int err = errno;
    MOD_LEAVE();
    struct file *nf = wfd >= 0 ? sock_new_module(st, kf->domain, kf->type, kf->protocol, s, nb) : NULL;
    if (nf == NULL) {
        if (wfd >= 0) {
            MOD_ENTER();
            m->close(s);
            MOD_LEAVE();
            err = ENOMEM;
        }
        LIBC(close)(kfd);
        stay_on_tcp(fd, kf, st, err);
        return;
    }
    nf->anchored = 1;
    nf->anchor_fd = kfd;
    nf->wait_fd = wfd;
    nf->anchor_state = ANCHOR_UP;
    sock_replay_opts(kf, nf);
    __atomic_store_n(&kf->defer_role, TF_NONE, __ATOMIC_RELEASE);
    sock_publish(fd, kf, nf);
    stats_add(st, NSTAT_ANCHORED, 1);
    LOG_DBG("fd %d: anchored on %s (wait fd %d)", fd, m->name, wfd);
}

/* Anchors f if it is still a candidate at fd. */
static void anchor_now(int fd, struct file *f)
{
    pthread_mutex_lock(&f->lock);
    if (anchor_pending(f) && !f->decided && fd_table_get(fd) == f)
        anchor_locked(fd, f);
    pthread_mutex_unlock(&f->lock);
}

struct file *anchor_resolve(int fd, struct file *f)
{
    anchor_now(fd, f);
    struct file *now = file_get(fd);
    if (now == NULL)
        return f;
    file_put(f);
    return now;
}

void anchor_connected(int fd, struct file *f, int r)
{
    if (!anchor_pending(f))
        return;
    int st = __atomic_load_n(&f->defer_stack, __ATOMIC_ACQUIRE) - 1;
    if (r == 0)
        send_hello(fd, f, st, TF_ACTIVE);
    /* Registered in an epoll set before connect(): this process waits on
     * it, and an epoll_wait() on that set would not tell us. */
    pthread_mutex_lock(&f->lock);
    int registered = f->n_pregs > 0;
    pthread_mutex_unlock(&f->lock);
    if (registered)
        anchor_now(fd, f);
}

void anchor_close(int fd, struct file *f)
{
    int candidate = f->kind == FILE_KSOCK && __atomic_load_n(&f->defer_anchor, __ATOMIC_ACQUIRE);
    if (!file_is_anchored(f) && !candidate)
        return;
    if (__atomic_load_n(&f->ref, __ATOMIC_ACQUIRE) != 1)
        return;                       /* another fd number still holds it */
    if (f->fork_gen != __atomic_load_n(&g_fork_gen, __ATOMIC_RELAXED))
        return;                       /* another process may read the stream (accept-then-fork) */
    /* At the mark with nothing after it (a peek skips the urgent byte;
     * EAGAIN: no byte, 0: the peer's FIN): reading one byte consumes only
     * the urgent byte. (FIONREAD cannot tell: at the mark it says 0.) */
    int mark = 0;
    char b;
    if (LIBC(ioctl)(fd, SIOCATMARK, &mark) < 0 || !mark)
        return;
    int err = errno;
    ssize_t p = LIBC(recv)(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (p == 0 || (p < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
        (void)LIBC(recv)(fd, &b, 1, MSG_DONTWAIT);
    errno = err;
}
