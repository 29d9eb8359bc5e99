/* file_ops.c - the pass-through defaults of the per-kind operation tables,
 * and the one-time fill of each kind's gaps (see file_ops.h).
 *
 * A default does what the app's call would do without the framework: the
 * libc call on the app fd. An epoll fd thus answers a socket call as the
 * kernel does (ENOTSOCK, after the kernel's own argument checks), and no
 * kind has to spell out the calls it leaves alone. */
#include "file_ops.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>

#include "file.h"
#include "libc_api.h"

/* A file of no kind owns nothing but itself. */
static void libc_release(struct file *f)
{
    (void)f;
}

static int libc_bind(struct file *f, int fd, const struct sockaddr *addr, socklen_t len)
{
    (void)f;
    return LIBC(bind)(fd, addr, len);
}

static int libc_listen(struct file *f, int fd, int backlog)
{
    (void)f;
    return LIBC(listen)(fd, backlog);
}

static int libc_connect(struct file *f, int fd, const struct sockaddr *addr, socklen_t len)
{
    (void)f;
    return LIBC(connect)(fd, addr, len);
}

static int libc_accept(struct file *f, int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    (void)f;
    return LIBC(accept4)(fd, addr, len, flags);
}

static int libc_shutdown(struct file *f, int fd, int how)
{
    (void)f;
    return LIBC(shutdown)(fd, how);
}

static int libc_getsockname(struct file *f, int fd, struct sockaddr *addr, socklen_t *len)
{
    (void)f;
    return LIBC(getsockname)(fd, addr, len);
}

static int libc_getpeername(struct file *f, int fd, struct sockaddr *addr, socklen_t *len)
{
    (void)f;
    return LIBC(getpeername)(fd, addr, len);
}

static int libc_getsockopt(struct file *f, int fd, int level, int name, void *val, socklen_t *len)
{
    (void)f;
    return LIBC(getsockopt)(fd, level, name, val, len);
}

static int libc_setsockopt(struct file *f, int fd, int level, int name, const void *val, socklen_t len)
{
    (void)f;
    return LIBC(setsockopt)(fd, level, name, val, len);
}

/* Nothing of the file outlives the fd but the file itself. */
static int libc_closing(struct file *f, int fd)
{
    (void)f;
    (void)fd;
    return 0;
}

static void libc_replacing(struct file *f, int fd)
{
    (void)f;
    (void)fd;
}

/* The kernel file's flag, and the app's view of it. */
static int libc_set_nonblock(struct file *f, int fd, int on)
{
    int fl = LIBC(fcntl)(fd, F_GETFL);
    if (fl < 0 || LIBC(fcntl)(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) < 0)
        return -1;
    __atomic_store_n(&f->nonblock, on, __ATOMIC_RELAXED);
    return 0;
}

static int libc_getfl(struct file *f, int fd)
{
    (void)f;
    return LIBC(fcntl)(fd, F_GETFL);
}

static int libc_setfl(struct file *f, int fd, long arg)
{
    (void)f;
    return LIBC(fcntl)(fd, F_SETFL, arg);
}

static int libc_fionbio(struct file *f, int fd, void *arg)
{
    (void)f;
    return LIBC(ioctl)(fd, FIONBIO, arg);
}

static int libc_ioctl(struct file *f, int fd, unsigned long req, void *arg)
{
    (void)f;
    return LIBC(ioctl)(fd, req, arg);
}

static int libc_io_module(const struct file *f)
{
    (void)f;
    return 0;
}

static int libc_ep_ctl(struct file *f, int epfd, int op, int fd, struct epoll_event *ev)
{
    (void)f;
    return LIBC(epoll_ctl)(epfd, op, fd, ev);
}

static const struct file_ops libc_file_ops = {
    .release = libc_release,
    .bind = libc_bind,
    .listen = libc_listen,
    .connect = libc_connect,
    .accept = libc_accept,
    .shutdown = libc_shutdown,
    .getsockname = libc_getsockname,
    .getpeername = libc_getpeername,
    .getsockopt = libc_getsockopt,
    .setsockopt = libc_setsockopt,
    .closing = libc_closing,
    .replacing = libc_replacing,
    .set_nonblock = libc_set_nonblock,
    .getfl = libc_getfl,
    .setfl = libc_setfl,
    .fionbio = libc_fionbio,
    .ioctl = libc_ioctl,
    .io_module = libc_io_module,
    .ep_ctl = libc_ep_ctl,
};

static const struct file_ops *const g_declared[FOPS_N] = {
    [FOPS_LIBC] = &libc_file_ops,
    [FOPS_SOCK] = &sock_file_ops,
    [FOPS_KSOCK] = &ksock_file_ops,
    [FOPS_MSOCK] = &msock_file_ops,
    [FOPS_ANCHORED] = &anchored_file_ops,
    [FOPS_ANCHORED_DIRECT] = &anchored_direct_file_ops,
    [FOPS_EPOLL] = &epoll_file_ops,
    [FOPS_MLISTEN] = &mlisten_file_ops,
};

/* Whose slots fill a table's gaps (FOPS_LIBC, the root, is its own). */
static const enum file_ops_id g_parent[FOPS_N] = {
    [FOPS_LIBC] = FOPS_LIBC,
    [FOPS_SOCK] = FOPS_LIBC,
    [FOPS_KSOCK] = FOPS_SOCK,
    [FOPS_MSOCK] = FOPS_SOCK,
    [FOPS_ANCHORED] = FOPS_SOCK,
    [FOPS_ANCHORED_DIRECT] = FOPS_ANCHORED,
    [FOPS_EPOLL] = FOPS_LIBC,
    [FOPS_MLISTEN] = FOPS_SOCK,
};

/* Written once, at load (fill_at_load) or by the first file made before
 * it (another library's constructor may make a socket first: g_once), and
 * read-only afterwards. Not at the first file_alloc of a running program:
 * a fork() in another thread inside pthread_once would leave the child's
 * g_once taken for good. g_ready: the tables are complete. */
static struct file_ops g_filled[FOPS_N];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_ready;

/* Every slot of `from` that t leaves NULL. The struct is all function
 * pointers, so it is walked as an array of them. */
static void fill_gaps(struct file_ops *t, const struct file_ops *from)
{
    typedef void (*slot_fn)(void);
    for (size_t off = 0; off < sizeof(*t); off += sizeof(slot_fn)) {
        slot_fn s, d;
        memcpy(&d, (char *)t + off, sizeof(d));
        memcpy(&s, (const char *)from + off, sizeof(s));
        if (d == NULL)
            memcpy((char *)t + off, &s, sizeof(s));
    }
}

static void fill_all(void)
{
    for (int id = 0; id < FOPS_N; id++) {
        g_filled[id] = *g_declared[id];
        for (int p = g_parent[id]; ; p = g_parent[p]) {
            fill_gaps(&g_filled[id], g_declared[p]);
            if (p == FOPS_LIBC)
                break;
        }
    }
}

static void fill_once(void)
{
    fill_all();
    __atomic_store_n(&g_ready, 1, __ATOMIC_RELEASE);
}

/* Before anchor_inherit (constructor 102), which already makes files. */
__attribute__((constructor(101))) static void fill_at_load(void)
{
    pthread_once(&g_once, fill_once);
}

const struct file_ops *file_ops_get(enum file_ops_id id)
{
    if (__builtin_expect(!__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE), 0))
        pthread_once(&g_once, fill_once);
    return &g_filled[id];
}

const struct file_ops *file_ops_of_kind(int kind)
{
    switch (kind) {
    case FILE_KSOCK:
        return file_ops_get(FOPS_KSOCK);
    case FILE_MSOCK:
        return file_ops_get(FOPS_MSOCK);
    case FILE_EPOLL:
        return file_ops_get(FOPS_EPOLL);
    case FILE_MLISTEN:
        return file_ops_get(FOPS_MLISTEN);
    default:
        return file_ops_get(FOPS_LIBC);
    }
}
