/*
 * ds_api.c - the rsocket API (<rdma/rsocket.h>) on datagram sockets:
 * rsocket(AF_INET[6], SOCK_DGRAM, 0) gives an fd (the socket's wait fd)
 * that rs_api.c's entry points hand here (DS_API_ROUTE). Unlike
 * librdmacm, rsend/rsendmsg/rwritev work on it, rrecvmsg fills msg_name,
 * and nothing here can be made to crash by a missing address.
 */
#include "ds_api.h"
#include "ds_sock.h"
#include "rs_sock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/epoll.h>

#define DS_FD_MAX 65536

/* fd -> socket; readers load without a lock, writers hold fd_lock (as
 * rs_api.c's table) */
static struct dsock *ds_fds[DS_FD_MAX];
static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;

struct dsock *ds_api_sock(int fd)
{
    return fd >= 0 && fd < DS_FD_MAX ? __atomic_load_n(&ds_fds[fd], __ATOMIC_ACQUIRE) : NULL;
}

int ds_api_socket(int domain, int type, int protocol)
{
    struct dsock *d;
    int fd = ds_socket(domain, type, protocol, &d);
    if (fd < 0)
        return -1;
    if (fd >= DS_FD_MAX) {
        ds_close(d);
        errno = EMFILE;
        return -1;
    }
    __atomic_store_n(&ds_fds[fd], d, __ATOMIC_RELEASE);
    return fd;
}

int ds_api_close(int fd)
{
    pthread_mutex_lock(&fd_lock);
    struct dsock *d = __atomic_exchange_n(&ds_fds[fd], NULL, __ATOMIC_ACQ_REL);
    pthread_mutex_unlock(&fd_lock);
    if (!d) {
        errno = EBADF;
        return -1;
    }
    return ds_close(d);
}

ssize_t ds_api_sendto(struct dsock *d, const void *buf, size_t len, int flags,
                      const struct sockaddr *to, socklen_t tl)
{
    struct iovec iov = { (void *)buf, len };
    struct msghdr m = { .msg_name = (void *)to, .msg_namelen = to ? tl : 0,
                        .msg_iov = &iov, .msg_iovlen = 1 };
    return ds_sendmsg(d, &m, flags);
}

ssize_t ds_api_recvfrom(struct dsock *d, void *buf, size_t len, int flags,
                        struct sockaddr *from, socklen_t *fl)
{
    struct iovec iov = { buf, len };
    struct msghdr m = { .msg_name = from && fl ? from : NULL, .msg_namelen = from && fl ? *fl : 0,
                        .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t r = ds_recvmsg(d, &m, flags);
    if (r >= 0 && from && fl)
        *fl = m.msg_namelen;
    return r;
}

ssize_t ds_api_vec(struct dsock *d, const struct iovec *iov, int n, int flags, int rx)
{
    if (n < 0 || (n > 0 && !iov)) {
        errno = EINVAL;
        return -1;
    }
    struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
    return rx ? ds_recvmsg(d, &m, flags) : ds_sendmsg(d, &m, flags);
}

int ds_api_fcntl(struct dsock *d, int fd, int cmd, long arg)
{
    switch (cmd) {
    case F_GETFL:
        return O_RDWR | (d->nonblock ? O_NONBLOCK : 0);
    case F_SETFL:
        return ds_set_nonblock(d, !!(arg & O_NONBLOCK));
    case F_GETFD:
    case F_SETFD:
        return fcntl(fd, cmd, (int)arg);
    }
    errno = ENOTSUP;
    return -1;
}

short ds_api_revents(struct dsock *d, short events)
{
    uint64_t gen;
    return (short)(ds_poll_events(d, &gen) & (uint32_t)(events | POLLERR | POLLHUP));
}
