/* sock.c - routing decision and the move of an app fd onto a module socket. */
#include "sock.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "anchor.h"
#include "anchor_urgent.h"
#include "anchor_direct.h"
#include "anchor_fork.h"
#include "anchor_side.h"
#include "conn_stats.h"
#include "epoll_agg.h"
#include "fd_table.h"
#include "fw.h"
#include "fw_log.h"
#include "module_ops.h"
#include "libc_api.h"
#include "migrate.h"
#include "multilisten.h"
#include "stats.h"

int sock_track_kernel(int fd, int domain, int type, int protocol, int decided)
{
    struct file *f = file_alloc(FILE_KSOCK);
    if (f == NULL)
        return -1;
    f->domain = domain;
    f->type = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    f->protocol = protocol;
    f->nonblock = (type & SOCK_NONBLOCK) != 0;
    f->stack = g_kernel_stack;
    f->decided = decided;
    struct file *old = fd_table_take(fd);   /* a stale entry of a closed-behind-our-back fd */
    if (old != NULL)
        file_put(old);
    if (fd_table_set(fd, f) < 0) {
        file_put(f);
        return -1;
    }
    if (decided)
        stats_add(f->stack, NSTAT_SOCKETS, 1);
    return 0;
}

/* fds found not to be an inherited TCP listener (an AF_UNIX listener, most
 * often, which the table never tracks): accept() on them asks no more
 * system calls. One bit per fd below ADOPT_NOT_MAX; set here, cleared by
 * close() (sock_adopt_forget). Relaxed atomics: a stale bit (a number
 * reused without close(), e.g. by dup2) costs only the acceleration of
 * that listener's connections, never a wrong answer. */
#define ADOPT_NOT_MAX 65536
static _Atomic uint64_t g_adopt_not[ADOPT_NOT_MAX / 64];

static int adopt_known_not(int fd)
{
    return fd >= 0 && fd < ADOPT_NOT_MAX &&
           (__atomic_load_n(&g_adopt_not[fd / 64], __ATOMIC_RELAXED) >> (fd % 64)) & 1;
}

static void adopt_mark_not(int fd)
{
    if (fd >= 0 && fd < ADOPT_NOT_MAX)
        __atomic_fetch_or(&g_adopt_not[fd / 64], (uint64_t)1 << (fd % 64), __ATOMIC_RELAXED);
}

void sock_adopt_forget(int fd)
{
    if (adopt_known_not(fd))
        __atomic_fetch_and(&g_adopt_not[fd / 64], ~((uint64_t)1 << (fd % 64)), __ATOMIC_RELAXED);
}

struct file *sock_adopt_listener(int fd)
{
    if (adopt_known_not(fd))
        return NULL;
    int acc = 0, type = 0, dom = 0, proto = 0;
    socklen_t l = sizeof(int);
    int saved = errno;
    errno = 0;
    /* the domain first: an AF_UNIX listener is the common untracked one */
    int ok = LIBC(getsockopt)(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) == 0 &&
             (dom == AF_INET || dom == AF_INET6) &&
             LIBC(getsockopt)(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) == 0 && acc &&
             LIBC(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0 && type == SOCK_STREAM &&
             LIBC(getsockopt)(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) == 0;
    if (!ok && errno != EBADF)      /* an open fd that is not one (EBADF: none yet) */
        adopt_mark_not(fd);
    int fl = ok ? LIBC(fcntl)(fd, F_GETFL) : -1;
    if (fl >= 0)
        fw_start();      /* the image may make no socket of its own: routes are read now */
    errno = saved;
    if (fl < 0 || sock_track_kernel(fd, dom, type | ((fl & O_NONBLOCK) ? SOCK_NONBLOCK : 0), proto, 1) < 0)
        return NULL;
    LOG_DBG("fd %d: a TCP listener this image did not make (inherited): its connections are routed from now on",
            fd);
    return file_get(fd);
}

struct file *sock_new_module(int stack, int domain, int type, int protocol, nstack_sock *s, int nonblock)
{
    struct file *nf = file_alloc(FILE_MSOCK);
    if (nf == NULL)
        return NULL;
    nf->domain = domain;
    nf->type = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    nf->protocol = protocol;
    nf->nonblock = nonblock;
    nf->stack = stack;
    nf->mod = g_stacks[stack].mod;
    nf->sock = s;
    nf->decided = 1;
    MOD_ENTER();
    nf->mod->set_cookie(s, nf);
    MOD_LEAVE();
    stats_add(stack, NSTAT_SOCKETS, 1);
    return nf;
}

int sock_addr_is_wild(const struct sockaddr *a, socklen_t len)
{
    if (a->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (a->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
    return 0;
}

void sock_log_opt(struct file *f, int level, int name, const void *val, socklen_t len)
{
    if (val == NULL || len > FILE_OPT_VAL_MAX)
        return;
    pthread_mutex_lock(&f->lock);
    if (!f->decided) {
        int i = 0;
        while (i < f->n_opts && !(f->opts[i].level == level && f->opts[i].name == name))
            i++;
        if (i < FILE_MAX_OPTS) {
            f->opts[i] = (struct opt_rec){ .level = level, .name = name, .len = len };
            memcpy(f->opts[i].val, val, len);
            if (i == f->n_opts)
                f->n_opts++;
        } else {
            LOG_WAR("setsockopt(level %d, name %d): more than %d options before routing; not replayed on a module",
                    level, name, FILE_MAX_OPTS);
        }
    }
    pthread_mutex_unlock(&f->lock);
}

void sock_replay_opts(struct file *kf, struct file *nf)
{
    for (int i = 0; i < kf->n_opts; i++) {
        const struct opt_rec *o = &kf->opts[i];
        /* WAR: an option the application set (TCP_USER_TIMEOUT, keepalive)
         * silently lost on the module would change its behaviour */
        if (MCALL(nf, setsockopt, o->level, o->name, o->val, o->len) < 0)
            LOG_WAR("%s: option level %d name %d not taken over by the module: %s", nf->mod->name,
                    o->level, o->name, strerror(errno));
    }
}

static void module_sock_close(struct file *nf)
{
    int saved = errno;
    MCALL(nf, close);
    file_free(nf);
    errno = saved;
}

/* A wildcard-bound kernel socket holds its port until it is closed, so the
 * module socket (which may be a kernel socket underneath, or share the port
 * space) is bound to that address and port only after the app fd moved
 * onto the module (the move closes the kernel socket). */
static int wild_addr(int fd, struct file *kf, struct sockaddr_storage *ss, socklen_t *len)
{
    *len = 0;
    if (!kf->bound_wild)
        return 0;
    *len = sizeof(*ss);
    return LIBC(getsockname)(fd, (struct sockaddr *)ss, len);
}

/* After a failed bind/op on the module socket, the app fd gets a fresh
 * kernel socket again, bound to the same wildcard address, with the logged
 * options and epoll registrations, so the app may retry as before. */
static void restore_kernel_socket(int fd, struct file *kf, const struct sockaddr_storage *ss, socklen_t len)
{
    int err = errno;
    int fdflags = LIBC(fcntl)(fd, F_GETFD);
    int nb = __atomic_load_n(&kf->nonblock, __ATOMIC_RELAXED);
    int k = LIBC(socket)(kf->domain, kf->type | SOCK_CLOEXEC | (nb ? SOCK_NONBLOCK : 0), kf->protocol);
    if (k >= 0) {
        for (int i = 0; i < kf->n_opts; i++)
            (void)LIBC(setsockopt)(k, kf->opts[i].level, kf->opts[i].name, kf->opts[i].val, kf->opts[i].len);
        if (LIBC(bind)(k, (const struct sockaddr *)ss, len) < 0 ||
            LIBC(dup3)(k, fd, (fdflags >= 0 && (fdflags & FD_CLOEXEC)) ? O_CLOEXEC : 0) < 0) {
            LIBC(close)(k);
            k = -1;
        } else {
            LIBC(close)(k);
            for (int i = 0; i < kf->n_pregs; i++)
                if (kf->pregs[i].fd == fd)
                    (void)LIBC(epoll_ctl)(kf->pregs[i].epfd, EPOLL_CTL_ADD, fd, &kf->pregs[i].ev);
        }
    }
    if (k < 0)
        LOG_ERR("fd %d: cannot restore its kernel socket after the module failed: %s; the fd is unusable",
                fd, strerror(errno));
    errno = err;
}

struct file *open_module_socket(int fd, struct file *kf, int st, int *wfd)
{
    const struct nstack_module *m = g_stacks[st].mod;
    nstack_sock *s = NULL;
    int nb = __atomic_load_n(&kf->nonblock, __ATOMIC_RELAXED);
    MOD_ENTER();
    *wfd = m->socket(kf->domain, kf->type | (nb ? SOCK_NONBLOCK : 0), kf->protocol, &s);
    int err = errno;
    MOD_LEAVE();
    if (*wfd < 0) {
        LOG_WAR("fd %d: %s: socket() failed: %s; staying on the kernel stack", fd, m->name, strerror(err));
        errno = err;
        return NULL;
    }
    struct file *nf = sock_new_module(st, kf->domain, kf->type, kf->protocol, s, nb);
    if (nf == NULL) {
        MOD_ENTER();
        m->close(s);
        MOD_LEAVE();
        errno = ENOMEM;
        return NULL;
    }
    sock_replay_opts(kf, nf);
    return nf;
}

/* A wildcard-bound socket: the app fd moves first (closing the kernel
 * socket, which frees the port), then the module socket takes the address. */
static int move_and_bind_wild(int fd, struct file *nf, int wfd, const struct sockaddr_storage *wild,
                              socklen_t wild_len, int *moved)
{
    if (fd_migrate_one(fd, wfd) < 0)
        return -1;
    *moved = 1;
    if (MCALL(nf, bind, (const struct sockaddr *)wild, wild_len) < 0) {
        LOG_WAR("fd %d: %s: cannot bind to the wildcard address the socket had: %s", fd, nf->mod->name,
                strerror(errno));
        return -1;
    }
    return 0;
}

static int build_module_socket(int fd, struct file *kf, int st, sock_first_op op, const void *arg,
                               struct file **out, int *op_ret)
{
    struct sockaddr_storage wild;
    socklen_t wild_len;
    if (wild_addr(fd, kf, &wild, &wild_len) < 0)
        return -1;
    if (wild_len > 0 && !MODULE_IMPLEMENTS(g_stacks[st].mod, bind)) {
        errno = EOPNOTSUPP;
        return -1;
    }
    int wfd;
    struct file *nf = open_module_socket(fd, kf, st, &wfd);
    if (nf == NULL)
        return -1;
    int moved = 0;
    if (wild_len > 0 && move_and_bind_wild(fd, nf, wfd, &wild, wild_len, &moved) < 0)
        goto fail;
    *op_ret = op ? op(nf, arg) : 0;
    if (*op_ret < 0 && errno != EINPROGRESS)
        goto fail;
    int err = errno;
    if (!moved && fd_migrate_one(fd, wfd) < 0) {
        LOG_ERR("fd %d: cannot move onto the %s socket: %s", fd, nf->mod->name, strerror(errno));
        goto fail;
    }
    errno = err;
    *out = nf;
    return 0;
fail:
    module_sock_close(nf);
    if (moved)
        restore_kernel_socket(fd, kf, &wild, wild_len);
    return -1;
}

/* dup()s made before the decision share the kernel socket's file: every fd
 * number holding it follows the socket to the module (as all fds of one
 * open file would in the kernel). Each table entry holds a reference, so
 * with only the caller's and fd's references there is nothing to scan.
 * A dup racing with the decision on another thread may keep the kernel
 * socket (the app then raced its own connect). */
void sock_move_dups(int fd, struct file *kf, struct file *nf)
{
    if (__atomic_load_n(&kf->ref, __ATOMIC_ACQUIRE) <= 2)
        return;
    /* an anchored socket keeps the kernel socket at every number */
    fd_migrate(kf, nf, nf->anchored ? -1 : fd, fd, nf->mod->name);
}

void sock_mark_kernel(struct file *kf, int st)
{
    __atomic_store_n(&kf->defer_stack, 0, __ATOMIC_RELAXED);
    /* stack before decided: the kernel fast path reads stack (atomic, no
     * lock) once its acquire load of decided saw 1. */
    __atomic_store_n(&kf->stack, st, __ATOMIC_RELAXED);
    __atomic_store_n(&kf->decided, 1, __ATOMIC_RELEASE);
    stats_add(st, NSTAT_SOCKETS, 1);
}

int sock_decide(int fd, struct file *kf, const struct sockaddr *key, socklen_t keylen,
                sock_first_op op, const void *arg, int *op_ret)
{
    fw_start();
    pthread_mutex_lock(&kf->lock);
    if (kf->decided || fd_table_get(fd) != kf) {
        pthread_mutex_unlock(&kf->lock);
        return 1;              /* someone else decided meanwhile: use what is there */
    }
    if (__atomic_load_n(&kf->defer_stack, __ATOMIC_ACQUIRE)) {
        pthread_mutex_unlock(&kf->lock);
        return 1;              /* an anchored bind already deferred it to the module */
    }
    (void)keylen;
    struct route r = fw_route_ex(kf, key);
    int st = r.stack;
    if (r.anchor && key != NULL) {
        anchor_defer(kf, st);  /* TCP-anchored: kernel TCP, the module beside it at first use */
        kf->ll_code = r.ll;    /* the long-lived policy (anchor_ll.c) */
        pthread_mutex_unlock(&kf->lock);
        return 1;
    }
    if (r.anchor || g_stacks[st].is_kernel) {
        sock_mark_kernel(kf, r.anchor ? g_kernel_stack : st);   /* anchored: a kernel listener */
        pthread_mutex_unlock(&kf->lock);
        return 1;
    }
    struct file *nf = NULL;
    if (build_module_socket(fd, kf, st, op, arg, &nf, op_ret) < 0) {
        pthread_mutex_unlock(&kf->lock);
        return -1;
    }
    int err = errno;
    sock_publish(fd, kf, nf);
    pthread_mutex_unlock(&kf->lock);
    LOG_DBG("fd %d: moved to stack %s", fd, g_stacks[st].name);
    errno = err;
    return 0;
}

void sock_publish(int fd, struct file *kf, struct file *nf)
{
    __atomic_store_n(&kf->decided, 1, __ATOMIC_RELEASE);
    fd_table_set(fd, nf);            /* the table takes nf's first reference */
    conn_stats_move(fd, kf, nf);
    sock_move_dups(fd, kf, nf);
    ev_follow_migration(nf, kf->pregs, kf->n_pregs);
    file_put(kf);                    /* the table's reference to the kernel socket */
}

int sock_accept_module(int st, const struct file *lf, nstack_sock *s,
                       struct sockaddr *addr, socklen_t *len, int flags)
{
    const struct nstack_module *m = g_stacks[st].mod;
    nstack_sock *ns = NULL;
    MOD_ENTER();
    int wfd = m->accept(s, addr, len, flags, &ns);
    int err = errno;
    MOD_LEAVE();
    if (wfd < 0) {
        errno = err;
        return -1;
    }
    struct file *nf = sock_new_module(st, lf->domain, lf->type, lf->protocol, ns,
                                      (flags & SOCK_NONBLOCK) != 0);
    int fd = nf ? LIBC(fcntl)(wfd, (flags & SOCK_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 0) : -1;
    if (fd < 0 || fd_table_set(fd, nf) < 0) {
        err = nf ? errno : ENOMEM;
        if (fd >= 0)
            LIBC(close)(fd);
        if (nf != NULL) {
            file_put(nf);          /* closes the module socket */
        } else {
            MOD_ENTER();
            m->close(ns);
            MOD_LEAVE();
        }
        errno = err;
        return -1;
    }
    stats_add(st, NSTAT_CONN_IN, 1);
    return fd;
}

/* ---- TCP-anchored connections: the one way back to TCP ------------------ */

struct file *sock_file_like(int kind, const struct file *f, int stack)
{
    struct file *kf = file_alloc(kind);
    if (kf == NULL)
        return NULL;
    kf->domain = f->domain;
    kf->type = f->type;
    kf->protocol = f->protocol;
    kf->nonblock = __atomic_load_n(&f->nonblock, __ATOMIC_RELAXED);
    kf->stack = stack;
    kf->decided = 1;
    return kf;
}

/* sock_fallback() of f gave way to df, the module's direct connection:
 * df takes f's place in the table and f's epoll registrations (on df's
 * wait fd). f->lock held. */
static void direct_instead(struct file *f, struct file *df)
{
    fd_migrate(f, df, -1, -1, NULL);
    conn_stats_move(-1, f, df);      /* the record follows: state direct */
    struct pre_reg *regs = NULL;
    int n = ev_take_regs(f, &regs);
    if (n > 0)
        ev_follow_migration(df, regs, n);
    free(regs);
    file_put(df);                /* the table entries hold it now */
    stats_add(f->stack, NSTAT_ANCHORED, (uint64_t)-1);
}

void sock_fallback(struct file *f)
{
    int up = ANCHOR_UP;
    if (!f->anchored ||
        !__atomic_compare_exchange_n(&f->anchor_state, &up, ANCHOR_DOWN, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&f->lock);
    /* A refused TCP connect (a plain rsockets server there): the module
     * connects directly, in a module file beside the dead TCP socket. */
    int err = 0;
    struct file *df = anchor_direct_instead(f, &err);
    if (df != NULL) {
        direct_instead(f, df);
        pthread_mutex_unlock(&f->lock);
        return;
    }
    /* returned to TCP before a fork/exec (anchor_fork.c), not a fallback */
    int released = anchor_released(f);
    /* The table first: an epoll_ctl the app makes from now on reaches the
     * TCP fd itself; then the registrations made so far follow. */
    struct file *kf = sock_file_like(FILE_KSOCK, f, g_kernel_stack);
    if (kf != NULL && !released)     /* the handshake ended on TCP: late urgent bytes */
        anchor_urgent_watch(kf, f->anchor_fd, __atomic_load_n(&f->stack, __ATOMIC_RELAXED) + 1);
    if (kf != NULL && err != 0)
        __atomic_store_n(&kf->fb_err, err, __ATOMIC_RELEASE);   /* read by the check: SO_ERROR gives it */
    if (kf != NULL) {
        fd_migrate(f, kf, -1, -1, NULL);
        stats_add(g_kernel_stack, NSTAT_SOCKETS, 1);
    } else {
        /* f stays in the table, marked down: its data calls get ENOPROTOOPT
         * from the module and are retried on the TCP socket. */
        LOG_WAR("%s: out of memory: a connection falling back to TCP keeps its module file", f->mod->name);
    }
    struct pre_reg *regs = NULL;
    int n = kf != NULL ? ev_take_regs(f, &regs) : 0;
    if (n < 0)
        LOG_WAR("%s: out of memory: the epoll registrations of a connection falling back to TCP are lost",
                f->mod->name);
    if (n > 0)
        ev_reregister(kf, regs, n);
    if (kf != NULL)
        file_put(kf);            /* the table entries hold it now */
    pthread_mutex_unlock(&f->lock);
    free(regs);
    conn_stats_fallback(f, kf, released);
    stats_add(f->stack, NSTAT_ANCHORED, (uint64_t)-1);   /* no longer on the module (sums wrap back) */
    if (released) {
        LOG_DBG("%s: a connection is on TCP again (fork/exec)", f->mod->name);
        return;
    }
    stats_add(f->stack, NSTAT_ANCHOR_TCP, 1);
    LOG_INF("%s: a connection stays on TCP (nstack-stat -c: its reason)", f->mod->name);
}

int sock_rcv_timed(int kfd)
{
    struct timeval tv = { 0, 0 };
    socklen_t l = sizeof(tv);
    int saved = errno;
    if (LIBC(getsockopt)(kfd, SOL_SOCKET, SO_RCVTIMEO, &tv, &l) < 0)
        tv.tv_sec = 0;
    errno = saved;
    return tv.tv_sec || tv.tv_usec;
}
