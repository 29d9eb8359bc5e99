/* anchor_direct.c - see anchor_direct.h.
 *
 * The destination of a nonblocking connect is kept in fb_dest (the late
 * connect fallback's field, unused on a kernel candidate): once the TCP
 * connect failed, getpeername() no longer tells it. */
#include "anchor_direct.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>

#include "anchor.h"
#include "fd_high.h"
#include "fd_table.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"
#include "module_load.h"
#include "sock.h"
#include "stats.h"

/* The module's connection to addr as a file beside TCP socket fd; NULL
 * with errno when it cannot be made. Caller holds kf->lock. */
static struct file *module_connect(int fd, struct file *kf, int st, const struct sockaddr *addr, socklen_t len)
{
    const struct nstack_module *m = g_stacks[st].mod;
    int wfd;
    struct file *nf = open_module_socket(fd, kf, st, &wfd);
    if (nf == NULL)
        return NULL;
    MOD_ENTER();
    int r = m->connect(nf->sock, addr, len);
    int err = errno;
    MOD_LEAVE();
    int kfd = r == 0 || err == EINPROGRESS ? fd_dup_high(fd) : -1;
    if (kfd < 0) {
        file_put(nf);                 /* closes the module socket */
        errno = r == 0 || err == EINPROGRESS ? EMFILE : err;
        return NULL;
    }
    nf->anchored = 1;
    nf->anchor_direct = 1;
    nf->ops = file_ops_get(FOPS_ANCHORED_DIRECT);
    nf->anchor_fd = kfd;
    nf->anchor_fd_own = 1;
    nf->wait_fd = wfd;
    nf->anchor_state = ANCHOR_UP;
    return nf;
}

/* Publishes nf at fd in place of candidate kf (kf->lock held). */
static void publish(int fd, struct file *kf, struct file *nf, int st)
{
    __atomic_store_n(&kf->defer_role, AR_NONE, __ATOMIC_RELEASE);
    __atomic_store_n(&kf->defer_anchor, 0, __ATOMIC_RELAXED);
    sock_publish(fd, kf, nf);
    LOG_INF("fd %d: TCP connect refused (no TCP listener there): connected on %s directly", fd,
            g_stacks[st].name);
}

int anchor_direct_connect(int fd, struct file *kf, const struct sockaddr *addr, socklen_t len)
{
    int st = __atomic_load_n(&kf->defer_stack, __ATOMIC_ACQUIRE) - 1;
    if (st < 0 || kf->kind != FILE_KSOCK || !__atomic_load_n(&kf->defer_anchor, __ATOMIC_ACQUIRE)) {
        errno = ECONNREFUSED;
        return -1;
    }
    pthread_mutex_lock(&kf->lock);
    struct file *nf = fd_table_get(fd) == kf ? module_connect(fd, kf, st, addr, len) : NULL;
    if (nf != NULL)
        publish(fd, kf, nf, st);
    pthread_mutex_unlock(&kf->lock);
    if (nf == NULL) {
        LOG_DBG("fd %d: TCP connect refused; %s cannot connect directly either: %s", fd, g_stacks[st].name,
                strerror(errno));
        errno = ECONNREFUSED;
        return -1;
    }
    return 0;
}

void anchor_direct_note(struct file *kf, const struct sockaddr *addr, socklen_t len)
{
    if (len > sizeof(kf->fb_dest))
        return;
    pthread_mutex_lock(&kf->lock);
    memcpy(&kf->fb_dest, addr, len);
    kf->fb_dest_len = len;
    pthread_mutex_unlock(&kf->lock);
}

/* The error of fd's failed TCP connect (read: SO_ERROR is then 0), or 0.
 * Only a connect that never got the peer's SYN-ACK (closed with no TCP
 * option negotiated): an established connection's later error (a reset)
 * stays where the application's next call reads it. */
static int connect_failed(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    if (LIBC(poll)(&p, 1, 0) <= 0 || !(p.revents & POLLERR) ||
        LIBC(getsockopt)(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0 || ti.tcpi_state != TCP_CLOSE ||
        ti.tcpi_options != 0)
        return 0;
    int err = 0;
    socklen_t el = sizeof(err);
    if (LIBC(getsockopt)(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        return 0;
    return err;
}

void anchor_direct_keep_dest(struct file *nf, const struct file *kf)
{
    nf->fb_dest = kf->fb_dest;
    nf->fb_dest_len = kf->fb_dest_len;
}

struct file *anchor_direct_instead(struct file *f, int *err)
{
    if (f->anchor_direct || f->fb_dest_len == 0 || (*err = connect_failed(f->anchor_fd)) != ECONNREFUSED)
        return NULL;
    struct file *nf = module_connect(f->anchor_fd, f, f->stack, (const struct sockaddr *)&f->fb_dest,
                                     f->fb_dest_len);
    if (nf != NULL)
        LOG_INF("fd %d: TCP connect refused (no TCP listener there): connecting on %s directly",
                f->anchor_fd, f->mod->name);
    return nf;
}

int anchor_direct_late(int fd, struct file *kf, int st)
{
    int err = connect_failed(fd);
    if (err == 0)
        return 0;
    struct file *nf = NULL;
    if (err == ECONNREFUSED && kf->fb_dest_len > 0)
        nf = module_connect(fd, kf, st, (const struct sockaddr *)&kf->fb_dest, kf->fb_dest_len);
    if (nf != NULL) {
        publish(fd, kf, nf, st);
        return 1;
    }
    /* stays on TCP; SO_ERROR was read here: the app gets it from fb_err */
    __atomic_store_n(&kf->fb_err, err, __ATOMIC_RELEASE);
    return 2;
}
