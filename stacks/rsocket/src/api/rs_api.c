/*
 * rs_api.c - the standard rsocket API (<rdma/rsocket.h>), exported at
 * symbol version RDMACM_1.0 so unmodified rsocket programs (rstream,
 * riostream) can run on this engine with LD_PRELOAD. An rsocket "fd" is the
 * socket's wait fd, a real pollable descriptor.
 */
#include "ds_api.h"
#include "ds_sock.h"
#include "rs_sock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <rdma/rsocket.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define RS_FD_MAX 65536

/* fd -> socket. Readers load without a lock; writers (rsocket, raccept,
 * rclose) serialise on rs_fd_lock. A slot is cleared before its socket is
 * freed; using an fd while closing it is the caller's race, as with libc. */
static struct rsock *rs_fds[RS_FD_MAX];
static pthread_mutex_t rs_fd_lock = PTHREAD_MUTEX_INITIALIZER;

static struct rsock *fd_sock(int fd)
{
    struct rsock *s = NULL;
    if (fd >= 0 && fd < RS_FD_MAX)
        s = __atomic_load_n(&rs_fds[fd], __ATOMIC_ACQUIRE);
    if (!s)
        errno = EBADF;
    return s;
}

static int fd_install(int fd, struct rsock *s)
{
    if (fd < 0)
        return -1;
    if (fd >= RS_FD_MAX) {
        rs_e_close(s);
        errno = EMFILE;
        return -1;
    }
    pthread_mutex_lock(&rs_fd_lock);
    __atomic_store_n(&rs_fds[fd], s, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&rs_fd_lock);
    return fd;
}

#define SOCK_OR_FAIL(fd, s) struct rsock *s = fd_sock(fd); if (!s) return -1

RS_VISIBLE int rsocket(int domain, int type, int protocol)
{
    struct rsock *s;
    if ((type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == SOCK_DGRAM)
        return ds_api_socket(domain, type, protocol);
    int fd = rs_e_socket(domain, type, protocol, &s);
    return fd < 0 ? -1 : fd_install(fd, s);
}

RS_VISIBLE int rbind(int socket, const struct sockaddr *addr, socklen_t addrlen)
{
    DS_API_ROUTE(socket, ds_bind(d, addr, addrlen));
    SOCK_OR_FAIL(socket, s);
    return rs_e_bind(s, addr, addrlen);
}

RS_VISIBLE int rlisten(int socket, int backlog)
{
    SOCK_OR_FAIL(socket, s);
    return rs_e_listen(s, backlog);
}

RS_VISIBLE int raccept(int socket, struct sockaddr *addr, socklen_t *addrlen)
{
    struct rsock *c;
    SOCK_OR_FAIL(socket, s);
    int fd = rs_e_accept(s, addr, addrlen, 0, &c);
    return fd < 0 ? -1 : fd_install(fd, c);
}

RS_VISIBLE int rconnect(int socket, const struct sockaddr *addr, socklen_t addrlen)
{
    DS_API_ROUTE(socket, ds_connect(d, addr, addrlen));
    SOCK_OR_FAIL(socket, s);
    return rs_e_connect(s, addr, addrlen);
}

RS_VISIBLE int rshutdown(int socket, int how)
{
    DS_API_ROUTE(socket, 0);   /* no datagram effect, as librdmacm */
    SOCK_OR_FAIL(socket, s);
    return rs_e_shutdown(s, how);
}

/* The slot is taken with an exchange: of two threads closing one fd at
 * once, exactly one gets the socket and frees it, the other EBADF (a
 * load-then-clear let both free it). */
RS_VISIBLE int rclose(int socket)
{
    DS_API_ROUTE(socket, ds_api_close(socket));
    if (socket < 0 || socket >= RS_FD_MAX) {
        errno = EBADF;
        return -1;
    }
    pthread_mutex_lock(&rs_fd_lock);
    struct rsock *s = __atomic_exchange_n(&rs_fds[socket], NULL, __ATOMIC_ACQ_REL);
    pthread_mutex_unlock(&rs_fd_lock);
    if (!s) {
        errno = EBADF;
        return -1;
    }
    return rs_e_close(s);
}

RS_VISIBLE ssize_t rrecv(int socket, void *buf, size_t len, int flags)
{
    DS_API_ROUTE(socket, ds_api_recvfrom(d, buf, len, flags, NULL, NULL));
    struct iovec iov = { buf, len };
    SOCK_OR_FAIL(socket, s);
    return rs_e_recvv(s, &iov, 1, flags);
}

RS_VISIBLE ssize_t rrecvfrom(int socket, void *buf, size_t len, int flags,
                             struct sockaddr *src_addr, socklen_t *addrlen)
{
    DS_API_ROUTE(socket, ds_api_recvfrom(d, buf, len, flags, src_addr, addrlen));
    SOCK_OR_FAIL(socket, s);
    ssize_t r = rrecv(socket, buf, len, flags);
    if (r >= 0 && src_addr && addrlen)
        rs_e_name(s, 1, src_addr, addrlen);
    return r;
}

RS_VISIBLE ssize_t rrecvmsg(int socket, struct msghdr *msg, int flags)
{
    DS_API_ROUTE(socket, msg ? ds_recvmsg(d, msg, flags) : (errno = EFAULT, -1));
    SOCK_OR_FAIL(socket, s);
    if (!msg) {
        errno = EFAULT;
        return -1;
    }
    ssize_t r = rs_e_recvv(s, msg->msg_iov, (int)msg->msg_iovlen, flags);
    if (r >= 0) {
        msg->msg_controllen = 0;
        msg->msg_flags = 0;
        if (msg->msg_name && msg->msg_namelen)
            rs_e_name(s, 1, msg->msg_name, &msg->msg_namelen);
    }
    return r;
}

RS_VISIBLE ssize_t rread(int socket, void *buf, size_t count)
{
    return rrecv(socket, buf, count, 0);
}

RS_VISIBLE ssize_t rreadv(int socket, const struct iovec *iov, int iovcnt)
{
    DS_API_ROUTE(socket, ds_api_vec(d, iov, iovcnt, 0, 1));
    SOCK_OR_FAIL(socket, s);
    return rs_e_recvv(s, iov, iovcnt, 0);
}

/* librdmacm's semantics, not the socket API's: a send on a connection that
 * can no longer carry data fails with ECONNRESET and never raises SIGPIPE
 * (the framework's send keeps the kernel's EPIPE + SIGPIPE). */
static ssize_t api_sendv(struct rsock *s, const struct iovec *iov, int iovcnt, int flags)
{
    ssize_t r = rs_e_sendv(s, iov, iovcnt, (flags & ~RS_MSG_TCP) | MSG_NOSIGNAL);
    if (r < 0 && errno == EPIPE)
        errno = ECONNRESET;
    return r;
}

RS_VISIBLE ssize_t rsend(int socket, const void *buf, size_t len, int flags)
{
    DS_API_ROUTE(socket, ds_api_sendto(d, buf, len, flags, NULL, 0));
    struct iovec iov = { (void *)buf, len };
    SOCK_OR_FAIL(socket, s);
    return api_sendv(s, &iov, 1, flags);
}

/* On a stream socket the address is ignored, as TCP does once connected. */
RS_VISIBLE ssize_t rsendto(int socket, const void *buf, size_t len, int flags,
                           const struct sockaddr *dest_addr, socklen_t addrlen)
{
    DS_API_ROUTE(socket, ds_api_sendto(d, buf, len, flags, dest_addr, addrlen));
    (void)dest_addr;
    (void)addrlen;
    return rsend(socket, buf, len, flags);
}

RS_VISIBLE ssize_t rsendmsg(int socket, const struct msghdr *msg, int flags)
{
    DS_API_ROUTE(socket, msg ? ds_sendmsg(d, msg, flags) : (errno = EFAULT, -1));
    SOCK_OR_FAIL(socket, s);
    if (!msg) {
        errno = EFAULT;
        return -1;
    }
    return api_sendv(s, msg->msg_iov, (int)msg->msg_iovlen, flags);
}

RS_VISIBLE ssize_t rwrite(int socket, const void *buf, size_t count)
{
    return rsend(socket, buf, count, 0);
}

RS_VISIBLE ssize_t rwritev(int socket, const struct iovec *iov, int iovcnt)
{
    DS_API_ROUTE(socket, ds_api_vec(d, iov, iovcnt, 0, 0));
    SOCK_OR_FAIL(socket, s);
    return api_sendv(s, iov, iovcnt, 0);
}

RS_VISIBLE int rgetpeername(int socket, struct sockaddr *addr, socklen_t *addrlen)
{
    DS_API_ROUTE(socket, ds_name(d, 1, addr, addrlen));
    SOCK_OR_FAIL(socket, s);
    return rs_e_name(s, 1, addr, addrlen);
}

RS_VISIBLE int rgetsockname(int socket, struct sockaddr *addr, socklen_t *addrlen)
{
    DS_API_ROUTE(socket, ds_name(d, 0, addr, addrlen));
    SOCK_OR_FAIL(socket, s);
    return rs_e_name(s, 0, addr, addrlen);
}

RS_VISIBLE int rsetsockopt(int socket, int level, int optname, const void *optval,
                           socklen_t optlen)
{
    DS_API_ROUTE(socket, ds_setsockopt(d, level, optname, optval, optlen));
    SOCK_OR_FAIL(socket, s);
    return rs_e_setsockopt(s, level, optname, optval, optlen);
}

RS_VISIBLE int rgetsockopt(int socket, int level, int optname, void *optval,
                           socklen_t *optlen)
{
    DS_API_ROUTE(socket, ds_getsockopt(d, level, optname, optval, optlen));
    SOCK_OR_FAIL(socket, s);
    return rs_e_getsockopt(s, level, optname, optval, optlen);
}

RS_VISIBLE int rfcntl(int socket, int cmd, ...)
{
    va_list ap;
    long arg;
    va_start(ap, cmd);
    arg = va_arg(ap, long);
    va_end(ap);
    DS_API_ROUTE(socket, ds_api_fcntl(d, socket, cmd, arg));
    SOCK_OR_FAIL(socket, s);
    switch (cmd) {
    case F_GETFL:
        return O_RDWR | (s->nonblock ? O_NONBLOCK : 0);
    case F_SETFL:
        return rs_e_set_nonblock(s, !!(arg & O_NONBLOCK));
    case F_GETFD:
    case F_SETFD:
        return fcntl(socket, cmd, (int)arg);
    }
    errno = ENOTSUP;
    return -1;
}

RS_VISIBLE off_t riomap(int socket, void *buf, size_t len, int prot, int flags, off_t offset)
{
    SOCK_OR_FAIL(socket, s);
    return rs_e_iomap(s, buf, len, prot, flags, offset);
}

RS_VISIBLE int riounmap(int socket, void *buf, size_t len)
{
    SOCK_OR_FAIL(socket, s);
    return rs_e_iounmap(s, buf, len);
}

RS_VISIBLE size_t riowrite(int socket, const void *buf, size_t count, off_t offset, int flags)
{
    SOCK_OR_FAIL(socket, s);
    return (size_t)rs_e_iowrite(s, buf, count, offset, flags);
}

/* ---- rpoll / rselect ---------------------------------------------------- */

/* One non-blocking pass; the real fds' results come from `shadow`. */
static int poll_pass(struct pollfd *fds, const struct pollfd *shadow, nfds_t n, int fresh)
{
    int ready = 0;
    for (nfds_t i = 0; i < n; i++) {
        struct rsock *s = fds[i].fd >= 0 && fds[i].fd < RS_FD_MAX
                          ? __atomic_load_n(&rs_fds[fds[i].fd], __ATOMIC_ACQUIRE) : NULL;
        struct dsock *d = s ? NULL : ds_api_sock(fds[i].fd);
        if (s)
            fds[i].revents = (short)(rs_poll_events(s, NULL) &
                                     (uint32_t)(fds[i].events | POLLERR | POLLHUP));
        else if (d)
            fds[i].revents = ds_api_revents(d, fds[i].events);
        else
            fds[i].revents = fresh ? shadow[i].revents : 0;
        if (fds[i].revents)
            ready++;
    }
    return ready;
}

/*
 * While it sleeps, rpoll is a registered sleeper of each rsocket it polls
 * and polls the socket's kick eventfd too: another thread's call on the
 * socket may consume the event that made the wait fd readable (a blocking
 * rrecv processing the credit update an rpoll(POLLOUT) waits for), and
 * rs_event then kicks instead. A socket closed meanwhile is recognised by
 * its serial and left alone.
 */
struct rpoll_reg {
    struct rsock *s;
    uint64_t serial;
};

/* Register on every rsocket of fds; fills kicks, returns how many.
 * *unkicked: an rsocket could not get a kick fd (out of descriptors), so
 * the sleep must be sliced. */
static nfds_t rpoll_register(const struct pollfd *fds, nfds_t n, struct rpoll_reg *reg,
                             struct pollfd *kicks, int *unkicked)
{
    nfds_t nk = 0;
    pthread_mutex_lock(&rs_fd_lock);   /* a slot's socket is live while held */
    for (nfds_t i = 0; i < n; i++) {
        struct rsock *s = fds[i].fd >= 0 && fds[i].fd < RS_FD_MAX ? rs_fds[fds[i].fd] : NULL;
        reg[i].s = NULL;
        if (!s)
            continue;
        pthread_mutex_lock(&s->lock);
        int kfd = rs_kick_ensure(s) ? -1 : s->kick_fd;
        if (kfd >= 0)
            s->rpoll_sleepers++;
        pthread_mutex_unlock(&s->lock);
        if (kfd < 0) {
            *unkicked = 1;     /* out of descriptors: not kicked, re-polled */
            continue;
        }
        reg[i] = (struct rpoll_reg){ s, s->serial };
        kicks[nk++] = (struct pollfd){ .fd = kfd, .events = POLLIN };
    }
    pthread_mutex_unlock(&rs_fd_lock);
    return nk;
}

static void rpoll_unregister(const struct pollfd *fds, nfds_t n, const struct rpoll_reg *reg)
{
    pthread_mutex_lock(&rs_fd_lock);
    for (nfds_t i = 0; i < n; i++) {
        struct rsock *s = reg[i].s;
        if (!s || rs_fds[fds[i].fd] != s || s->serial != reg[i].serial)
            continue;                  /* closed while we slept */
        pthread_mutex_lock(&s->lock);
        s->rpoll_sleepers--;
        rs_kick_drain(s);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&rs_fd_lock);
}

RS_VISIBLE int rpoll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    /* shadow[0..nfds) mirrors fds (an rsocket's wait fd in its place),
     * shadow[nfds..) holds the kick fds while sleeping */
    struct pollfd local[128], *shadow = local;
    struct rpoll_reg local_reg[64], *reg = local_reg;
    int64_t deadline = timeout < 0 ? -1 : rs_now_ms() + timeout;
    int ready = 0;

    if (nfds > 64) {
        shadow = calloc(2 * nfds, sizeof(*shadow));
        reg = calloc(nfds, sizeof(*reg));
        if (!shadow || !reg) {
            free(shadow);
            free(reg);
            errno = ENOMEM;
            return -1;
        }
    }
    for (nfds_t i = 0; i < nfds; i++) {
        struct rsock *s = fd_sock(fds[i].fd);
        shadow[i] = (struct pollfd){ .fd = s ? s->wait_fd : fds[i].fd,
                                     .events = s ? POLLIN : fds[i].events };
    }
    for (;;) {
        int n = poll(shadow, nfds, 0);
        ready = n < 0 ? -1 : poll_pass(fds, shadow, nfds, 1);
        int wait = rs_poll_timeout(deadline);
        if (ready || wait == 0)
            break;
        int unkicked = 0;
        nfds_t nk = rpoll_register(fds, nfds, reg, shadow + nfds, &unkicked);
        if (unkicked && (wait < 0 || wait > 10))
            wait = 10;
        /* a change between the check above and the registration kicked
         * nobody: check once more, registered, before sleeping */
        n = poll(shadow, nfds, 0);
        ready = n < 0 ? -1 : poll_pass(fds, shadow, nfds, 1);
        if (!ready && poll(shadow, nfds + nk, wait) < 0)
            ready = -1;
        int err = errno;
        rpoll_unregister(fds, nfds, reg);
        errno = err;
        if (ready)
            break;
    }
    if (shadow != local) {
        free(shadow);
        free(reg);
    }
    return ready;
}

RS_VISIBLE int rselect(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds,
                       struct timeval *timeout)
{
    struct pollfd *p;
    int n = 0, ready;

    if (nfds < 0 || nfds > FD_SETSIZE) {
        errno = EINVAL;
        return -1;
    }
    p = calloc((size_t)nfds + 1, sizeof(*p));
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    for (int fd = 0; fd < nfds; fd++) {
        short ev = (short)((readfds && FD_ISSET(fd, readfds) ? POLLIN : 0) |
                           (writefds && FD_ISSET(fd, writefds) ? POLLOUT : 0) |
                           (exceptfds && FD_ISSET(fd, exceptfds) ? POLLPRI : 0));
        if (ev)
            p[n++] = (struct pollfd){ .fd = fd, .events = ev };
    }
    ready = rpoll(p, (nfds_t)n, timeout ? (int)(timeout->tv_sec * 1000 + timeout->tv_usec / 1000) : -1);
    if (ready >= 0) {
        if (readfds) FD_ZERO(readfds);
        if (writefds) FD_ZERO(writefds);
        if (exceptfds) FD_ZERO(exceptfds);
        ready = 0;
        /* select(2) counts set bits, not descriptors: an fd ready in
         * two sets counts twice. */
        for (int i = 0; i < n; i++) {
            if (readfds && (p[i].revents & (POLLIN | POLLHUP | POLLERR)) && (p[i].events & POLLIN))
                FD_SET(p[i].fd, readfds), ready++;
            if (writefds && (p[i].revents & (POLLOUT | POLLERR)) && (p[i].events & POLLOUT))
                FD_SET(p[i].fd, writefds), ready++;
            if (exceptfds && (p[i].revents & POLLPRI))
                FD_SET(p[i].fd, exceptfds), ready++;
        }
    }
    free(p);
    return ready;
}
