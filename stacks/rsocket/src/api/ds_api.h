/*
 * ds_api.h - rs_api.c's hand-off to datagram sockets: every rsocket API
 * entry first asks whether the fd is a datagram rsocket (DS_API_ROUTE).
 */
#ifndef DS_API_H
#define DS_API_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

struct dsock;
struct dsock *ds_api_sock(int fd);
int ds_api_socket(int domain, int type, int protocol);
int ds_api_close(int fd);
ssize_t ds_api_sendto(struct dsock *d, const void *buf, size_t len, int flags,
                      const struct sockaddr *to, socklen_t tl);
ssize_t ds_api_recvfrom(struct dsock *d, void *buf, size_t len, int flags,
                        struct sockaddr *from, socklen_t *fl);
ssize_t ds_api_vec(struct dsock *d, const struct iovec *iov, int n, int flags, int rx);
int ds_api_fcntl(struct dsock *d, int fd, int cmd, long arg);
short ds_api_revents(struct dsock *d, short events);

/* `if the fd is a datagram rsocket, return <expr using d>` */
#define DS_API_ROUTE(fd, expr)                                   \
    do {                                                         \
        struct dsock *d = ds_api_sock(fd);                       \
        if (d)                                                   \
            return (expr);                                       \
    } while (0)

#endif /* DS_API_H */
