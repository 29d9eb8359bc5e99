/* anchor.c - TCP-anchored connections (see anchor.h, doc/fork.md).
 *
 * Nothing here moves an fd: the app fd is the TCP socket from socket() to
 * close(). Anchoring only replaces the fd table entry (kernel candidate ->
 * anchored module file, sock_publish) and moves epoll registrations from
 * the TCP fd to the module's wait fd; the fallback (sock_fallback, sock.c)
 * does the reverse. */
#include "anchor.h"
#include "anchor_urgent.h"
#include "conn_stats.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "anchor_direct.h"
#include "anchor_fork.h"
#include "anchor_fd.h"
#include "anchor_ll.h"
#include "anchor_local.h"
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

static void anchor_at_exit(void);

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
    if (g_anchor_any) {
        atexit(anchor_at_exit);
        LOG_DBG("TCP-anchored connections on for the stacks whose module implements anchor()");
    }
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

void anchor_set_role(struct file *f, enum anchor_role role)
{
    if (f->kind != FILE_KSOCK || __atomic_load_n(&f->defer_stack, __ATOMIC_ACQUIRE) == 0)
        return;
    pthread_mutex_lock(&f->lock);
    if (!__atomic_load_n(&f->decided, __ATOMIC_ACQUIRE))
        __atomic_store_n(&f->defer_role, role, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&f->lock);
}

static int role_of(int ar_role)
{
    return ar_role == AR_ACTIVE ? NSTACK_ADOPT_ACTIVE : NSTACK_ADOPT_PASSIVE;
}

/* The module's hello on the established connection; remembers it went out. */
static void send_hello(int fd, struct file *f, int st, int ar_role)
{
    const struct nstack_module *m = g_stacks[st].mod;
    if (!MODULE_HAS_OP(m, anchor_hello))
        return;
    MOD_ENTER();
    int r = m->anchor_hello(fd, role_of(ar_role));
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
    if (nf == NULL)
        return -1;
    anchor_defer(nf, r.stack);
    nf->ll_code = r.ll;
    stats_add(r.stack, NSTAT_CONN_IN, 1);
    if (anchor_ll_accepted(fd, nf, r.stack)) {
        anchor_local_add(fd);             /* both ends here: no late switch */
        return 1;                         /* long-lived: a kernel socket for now */
    }
    send_hello(fd, nf, r.stack, AR_PASSIVE);
    __atomic_store_n(&nf->defer_role, AR_PASSIVE, __ATOMIC_RELEASE);
    anchor_local_add(fd);
    anchor_local_pair(fd, 1);
    return 1;
}

/* Marks candidate f a kernel socket for good. Caller holds f->lock. */
static void to_kernel(int fd, struct file *f)
{
    anchor_urgent_watch(f, fd, __atomic_load_n(&f->defer_stack, __ATOMIC_ACQUIRE));
    __atomic_store_n(&f->defer_role, AR_NONE, __ATOMIC_RELEASE);
    __atomic_store_n(&f->defer_anchor, 0, __ATOMIC_RELAXED);
    sock_mark_kernel(f, g_kernel_stack);
}

/* The connection stays on TCP: the module declined (ENOPROTOOPT), or no
 * module socket could be made (then the peer's module sees this end never
 * answer and falls back too). Caller holds f->lock. */
static void stay_on_tcp(int fd, struct file *f, int st, int err)
{
    to_kernel(fd, f);
    conn_stats_stay_tcp(fd, f, err);
    stats_add(st, NSTAT_ANCHOR_TCP, 1);
    if (err == ENOPROTOOPT)
        LOG_INF("fd %d: stays on TCP: %s declined the upgrade (peer does not run the framework)",
                fd, g_stacks[st].name);
    else
        LOG_WAR("fd %d: stays on TCP: %s: anchor() failed: %s", fd, g_stacks[st].name, strerror(err));
}

int anchor_attach(int fd, struct file *kf, int st, int role, int flags)
{
    const struct nstack_module *m = g_stacks[st].mod;
    int nb = __atomic_load_n(&kf->nonblock, __ATOMIC_RELAXED);
    int own;
    int kfd = anchor_fd_for_module(fd, kf, st, &own);
    if (kfd < 0)
        return -1;
    nstack_sock *s = NULL;
    MOD_ENTER();
    int wfd = m->anchor(kfd, role_of(role), flags | (nb ? NSTACK_ADOPT_NONBLOCK : 0), &s);
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
        if (own)
            LIBC(close)(kfd);
        errno = err;
        return -1;
    }
    nf->anchored = 1;
    nf->ops = file_ops_get(FOPS_ANCHORED);
    nf->anchor_fd = kfd;
    nf->anchor_fd_own = own;
    nf->wait_fd = wfd;
    nf->anchor_state = ANCHOR_UP;
    if (role == AR_ACTIVE)
        anchor_direct_keep_dest(nf, kf);   /* a refused connect connects on the module */
    sock_replay_opts(kf, nf);
    __atomic_store_n(&kf->defer_role, AR_NONE, __ATOMIC_RELEASE);
    sock_publish(fd, kf, nf);
    stats_add(st, NSTAT_ANCHORED, 1);
    LOG_DBG("fd %d: anchored on %s (wait fd %d)", fd, m->name, wfd);
    return 0;
}

/* Candidate f at fd stays on TCP without a handshake of this end's module:
 * the module takes the peer's urgent byte out of the stream (an
 * application with SO_OOBINLINE would read it: vsftpd's session read the
 * client's KICK before "USER") and tells the peer's module to stay on TCP.
 * 0, or -1 with errno. Caller holds f->lock. */
static int decline_peer(int fd, const struct file *f, int st, int role)
{
    const struct nstack_module *m = g_stacks[st].mod;
    if (!MODULE_HAS_OP(m, anchor_hello)) {
        errno = ENOSYS;
        return -1;
    }
    MOD_ENTER();
    int r = m->anchor_hello(fd, role_of(role) | NSTACK_ANCHOR_DECLINE |
                                    (f->hello_sent ? NSTACK_ANCHOR_HELLO_SENT : 0));
    int err = errno;
    MOD_LEAVE();
    errno = err;
    return r;
}

/* The module socket beside the TCP socket of candidate kf at fd; published
 * in the fd table on success. Caller holds kf->lock and a reference. */
static void anchor_locked(int fd, struct file *kf)
{
    int st = __atomic_load_n(&kf->defer_stack, __ATOMIC_ACQUIRE) - 1;
    int role = __atomic_load_n(&kf->defer_role, __ATOMIC_ACQUIRE);
    int late = role == AR_ACTIVE ? anchor_direct_late(fd, kf, st) : 0;
    if (late == 1)
        return;                         /* refused: the module connects directly */
    if (late == 2) {
        to_kernel(fd, kf);              /* the TCP connect failed: nothing to upgrade */
        return;
    }
    if (anchor_ll_first_use(fd, kf, st, role))
        return;                         /* the long-lived policy's TCP phase */
    if (anchor_attach(fd, kf, st, role, kf->hello_sent ? NSTACK_ANCHOR_HELLO_SENT : 0) < 0) {
        int err = errno;             /* e.g. no descriptor left for the module */
        decline_peer(fd, kf, st, role);
        stay_on_tcp(fd, kf, st, err);
    }
}

void anchor_now(int fd, struct file *f)
{
    pthread_mutex_lock(&f->lock);
    if (anchor_pending(f) && !f->decided && fd_table_get(fd) == f)
        anchor_locked(fd, f);
    pthread_mutex_unlock(&f->lock);
}

void anchor_stay_tcp(int fd, struct file *f)
{
    pthread_mutex_lock(&f->lock);
    if (anchor_pending(f) && !f->decided && fd_table_get(fd) == f)
        stay_on_tcp(fd, f, __atomic_load_n(&f->defer_stack, __ATOMIC_ACQUIRE) - 1, ENOPROTOOPT);
    pthread_mutex_unlock(&f->lock);
}

struct file *anchor_resolve(int fd, struct file *f)
{
    anchor_now(fd, f);
    anchor_local_pair(fd, 0);
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
    if (r == 0 && f->ll_code > 0 && anchor_ll_connected(fd, f, st)) {
        anchor_local_add(fd);
        return;                           /* long-lived: a kernel socket for now */
    }
    if (r == 0)
        send_hello(fd, f, st, AR_ACTIVE);
    anchor_local_add(fd);
    /* Registered in an epoll set before connect(): this process waits on
     * it, and an epoll_wait() on that set would not tell us. */
    pthread_mutex_lock(&f->lock);
    int registered = f->n_pregs > 0;
    pthread_mutex_unlock(&f->lock);
    if (registered) {
        anchor_now(fd, f);
        anchor_local_pair(fd, 0);
    }
}

/* A candidate or anchored connection made in this process since its
 * last fork (no other process may read its stream). */
static int drain_allowed(const struct file *f)
{
    int candidate = f->kind == FILE_KSOCK &&
                    (__atomic_load_n(&f->defer_anchor, __ATOMIC_ACQUIRE) || f->ll_code > 0);
    return (file_is_anchored(f) || candidate) && !__atomic_load_n(&f->passed, __ATOMIC_RELAXED) &&
           f->fork_gen == __atomic_load_n(&g_fork_gen, __ATOMIC_RELAXED);
}

/* Candidate f at fd is handed to another process (SCM_RIGHTS) or to
 * glibc's stdio (anchor_stdio.c) before its first use here. The receiver
 * knows nothing of the handshake (its role and hello travel only within a
 * process and across exec) and uses it as a plain TCP socket, and this
 * process may use it too: it stays on TCP, and the module tells the peer's
 * module so at once (NSTACK_ANCHOR_DECLINE), which would otherwise wait
 * for a handshake that never comes - RS_ANCHOR_TIMEOUT_MS and ETIMEDOUT
 * when it had committed. */
void anchor_decline_pending(int fd, const char *why)
{
    struct file *f = file_get(fd);
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->lock);
    if (anchor_pending(f) && !f->decided && fd_table_get(fd) == f) {
        int st = __atomic_load_n(&f->defer_stack, __ATOMIC_ACQUIRE) - 1;
        int r = decline_peer(fd, f, st, __atomic_load_n(&f->defer_role, __ATOMIC_ACQUIRE));
        int err = errno;
        to_kernel(fd, f);
        conn_stats_stay_tcp(fd, f, ENOPROTOOPT);
        stats_add(st, NSTAT_ANCHOR_TCP, 1);
        LOG_INF("fd %d: %s before its first use: stays on TCP (%s)", fd, why,
                r == 0 ? "the peer was told" : strerror(err));
    }
    pthread_mutex_unlock(&f->lock);
    file_put(f);
}

int anchor_note_passed(const struct msghdr *msg)
{
    int left = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const int *fds = (const int *)CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            struct file *f = fd_table_get(fds[i]);
            if (f == NULL)
                continue;
            __atomic_store_n(&f->passed, 1, __ATOMIC_RELAXED);
            if (anchor_pending(f))
                anchor_decline_pending(fds[i], "passed to another process");
            else if (file_is_anchored(f))
                left += anchor_release_passed(fds[i]);
        }
    }
    if (left) {
        errno = EBUSY;
        return -1;
    }
    return 0;
}

static void drain_hello(int fd)
{
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

/* A candidate about to be closed: the peer's hello may still be on its
 * way, and the kernel answers bytes that arrive for a closed socket (or
 * lie unread in it) with a reset - a client that connects and exits would
 * reset a server that should read EOF. Our FIN first, when nothing of
 * the application's is unread and no abortive close is asked for, makes
 * the peer read EOF before any such reset (tcp_recvmsg reports a received
 * FIN before a later error). */
static void fin_first(int fd)
{
    int err = errno;
    char b;
    struct linger lg = { 0 };
    socklen_t l = sizeof(lg);
    ssize_t p = LIBC(recv)(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (p < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
        LIBC(getsockopt)(fd, SOL_SOCKET, SO_LINGER, &lg, &l) == 0 && !(lg.l_onoff && lg.l_linger == 0))
        (void)LIBC(shutdown)(fd, SHUT_WR);
    errno = err;
}

static void close_quietly(int fd, const struct file *f)
{
    if (!drain_allowed(f))
        return;
    drain_hello(fd);
    if (f->kind == FILE_KSOCK)           /* a candidate: no handshake done */
        fin_first(fd);
}

void anchor_close(int fd, struct file *f)
{
    if (__atomic_load_n(&f->ref, __ATOMIC_ACQUIRE) == 1)   /* its last number here */
        close_quietly(fd, f);
}

/* A connection that stayed on TCP after the handshake began: the peer's
 * module may have sent an urgent byte this end never read (its hello or
 * NOPE, arriving after this end gave up waiting), and the close of an
 * application that only sends (curl's FTP upload) would reset the
 * connection, discarding what was not sent yet. Drained at every close
 * and in every process that has it: the peer's module sends nothing
 * urgent after it fell back, and a byte of the peer's application
 * arriving within the microseconds between the look and the read (the
 * one case where the read takes a byte) is the price. */
void anchor_close_tcp(int fd)
{
    drain_hello(fd);
}

static void drain_at_exit(int fd, struct file *f, void *arg)
{
    (void)arg;
    if (!f->urgent_maybe)
        close_quietly(fd, f);
    else if (!FW_CONFINED())
        drain_hello(fd);
}

/* exit() closes every fd without close(): the same drain for each. */
static void anchor_at_exit(void)
{
    fd_table_each(0, -1, drain_at_exit, NULL);
}

/* ---- exec: candidates the new image inherits -------------------------------
 * NSTACK_ANCHOR_INHERIT=<stack>:<a|p>:<hello 0|1>:<fd>[,<fd>...][;...]
 * one group per connection (its fd numbers in the new image). */

#define ANCHOR_ENV "NSTACK_ANCHOR_INHERIT"
#define INHERIT_MAX 64

struct inherit_list {
    int n;
    anchor_fdmap_fn *map;           /* NULL: exec's rule */
    void *map_arg;
    struct { const struct file *f; int fd; } e[INHERIT_MAX];
};

static void collect_inherited(int fd, struct file *f, void *arg)
{
    struct inherit_list *l = arg;
    if (l->n == INHERIT_MAX || !anchor_pending(f))
        return;
    int to[8], n = 1;
    if (l->map != NULL) {
        n = l->map(fd, to, 8, l->map_arg);
    } else {
        int fl = LIBC(fcntl)(fd, F_GETFD);
        if (fl < 0 || (fl & FD_CLOEXEC))
            return;
        to[0] = fd;
    }
    for (int i = 0; i < n && l->n < INHERIT_MAX; i++) {
        l->e[l->n].f = f;
        l->e[l->n++].fd = to[i];
    }
}

/* The variable's value for l; 0, or -1 when it does not fit. */
static int inherit_text(const struct inherit_list *l, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < l->n; i++) {
        const struct file *f = l->e[i].f;
        int first = 1;
        for (int j = 0; j < i && first; j++)
            first = l->e[j].f != f;
        if (!first)
            continue;               /* a later fd of a group already written */
        int st = __atomic_load_n(&f->defer_stack, __ATOMIC_ACQUIRE) - 1;
        int role = __atomic_load_n(&f->defer_role, __ATOMIC_ACQUIRE);
        int w = snprintf(out + len, cap - len, "%s%s:%c:%d:", len ? ";" : "", g_stacks[st].name,
                         role == AR_ACTIVE ? 'a' : 'p', f->hello_sent);
        for (int j = i; j < l->n && w >= 0 && len + (size_t)w < cap; j++)
            if (l->e[j].f == f)
                w += snprintf(out + len + w, cap - len - w, "%s%d", j == i ? "" : ",", l->e[j].fd);
        if (w < 0 || len + (size_t)w >= cap)
            return -1;
        len += (size_t)w;
    }
    return 0;
}

char **anchor_exec_env(char *const envp[])
{
    return anchor_exec_env_map(envp, NULL, NULL);
}

char **anchor_exec_env_map(char *const envp[], anchor_fdmap_fn *map, void *arg)
{
    if (!g_anchor_any || envp == NULL)
        return NULL;
    struct inherit_list l = { .n = 0, .map = map, .map_arg = arg };
    fd_table_each(0, -1, collect_inherited, &l);
    char text[2048];
    if (l.n == 0 || inherit_text(&l, text, sizeof(text)) < 0)
        return NULL;
    size_t n = 0;
    while (envp[n] != NULL)
        n++;
    size_t tlen = strlen(ANCHOR_ENV) + 1 + strlen(text) + 1;
    char **env = malloc((n + 2) * sizeof(*env) + tlen);
    if (env == NULL)
        return NULL;
    char *var = (char *)(env + n + 2);
    snprintf(var, tlen, "%s=%s", ANCHOR_ENV, text);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(envp[i], ANCHOR_ENV "=", sizeof(ANCHOR_ENV)) != 0)
            env[k++] = envp[i];
    env[k++] = var;
    env[k] = NULL;
    return env;
}

static int stack_by_name(const char *name)
{
    for (int i = 0; i < g_n_stacks; i++)
        if (strcmp(g_stacks[i].name, name) == 0 && stack_can_anchor(i) && fw_stack_ready(i) == 0)
            return i;
    return -1;
}

/* One inherited connection: fds (comma-separated) become one candidate
 * file, if they still are one TCP socket. */
static void inherit_group(const char *name, char role, int hello, char *fds)
{
    int st = stack_by_name(name), fd0 = -1, domain = 0, type = 0;
    socklen_t l = sizeof(int);
    struct stat s0;
    char *save = NULL;
    struct file *f = NULL;
    for (char *t = strtok_r(fds, ",", &save); t != NULL && st >= 0; t = strtok_r(NULL, ",", &save)) {
        int fd = atoi(t);
        struct stat sk;
        if (f == NULL) {
            if (LIBC(getsockopt)(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) < 0 ||
                LIBC(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0 || type != SOCK_STREAM ||
                (domain != AF_INET && domain != AF_INET6) || fstat(fd, &s0) < 0)
                return;
            int nb = (LIBC(fcntl)(fd, F_GETFL) & O_NONBLOCK) ? SOCK_NONBLOCK : 0;
            if (sock_track_kernel(fd, domain, SOCK_STREAM | nb, 0, 0) < 0)
                return;
            if ((f = fd_table_get(fd)) == NULL)
                return;
            fd0 = fd;
            anchor_defer(f, st);
            f->hello_sent = hello;
            __atomic_store_n(&f->defer_role, role == 'a' ? AR_ACTIVE : AR_PASSIVE, __ATOMIC_RELEASE);
            conn_stats_inherited(fd, role == 'p');
            /* the process that exec'd or spawned us may hold it too (a
             * helper run by system()): our close or exit must not read
             * its hello or send a FIN */
            __atomic_store_n(&f->passed, 1, __ATOMIC_RELAXED);
        } else if (fstat(fd, &sk) == 0 && sk.st_ino == s0.st_ino && sk.st_dev == s0.st_dev) {
            struct file *old = fd_table_take(fd);
            if (old != NULL)
                file_put(old);
            file_hold(f);
            if (fd_table_set(fd, f) < 0)
                file_put(f);
        }
    }
    if (f != NULL)
        LOG_DBG("fd %d: an inherited %s connection, anchored at its first use", fd0, name);
}

/* Load time: the candidates the program that exec'd us handed over. The
 * variable is removed so that our own children do not see stale numbers;
 * exec*() names what is still a candidate then. */
__attribute__((constructor(102))) static void anchor_inherit(void)
{
    const char *v = getenv(ANCHOR_ENV);
    if (v == NULL || v[0] == '\0')
        return;
    char buf[2048];
    snprintf(buf, sizeof(buf), "%s", v);
    unsetenv(ANCHOR_ENV);
    fw_start();
    char *save = NULL;
    for (char *g = strtok_r(buf, ";", &save); g != NULL; g = strtok_r(NULL, ";", &save)) {
        char name[FW_NAME_MAX], role = 0, fds[512];
        int hello = 0;
        if (sscanf(g, "%63[^:]:%c:%d:%511s", name, &role, &hello, fds) == 4 && (role == 'a' || role == 'p'))
            inherit_group(name, role, hello != 0, fds);
        else
            LOG_WAR("%s: \"%s\": not <stack>:<a|p>:<0|1>:<fds>; ignored", ANCHOR_ENV, g);
    }
}
