/* softrdma: direct system calls for the device's internal descriptors.
 * Other libraries preloaded into the same process (librspreload, the
 * framework's libnStackAPI) interpose epoll, read, write, sendmsg, close...
 * and would take the device's own streams, eventfds and epoll set for
 * theirs. The device therefore never calls those through libc: it enters
 * the kernel directly, so nothing can intercept it. */
#ifndef SR_SYS_H
#define SR_SYS_H
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static inline ssize_t sr_sys_read(int fd, void *b, size_t n)
{ return syscall(SYS_read, fd, b, n); }
static inline ssize_t sr_sys_write(int fd, const void *b, size_t n)
{ return syscall(SYS_write, fd, b, n); }
static inline ssize_t sr_sys_readv(int fd, const struct iovec *v, int n)
{ return syscall(SYS_readv, fd, v, n); }
static inline ssize_t sr_sys_sendmsg(int fd, const struct msghdr *m, int fl)
{ return syscall(SYS_sendmsg, fd, m, fl); }
static inline ssize_t sr_sys_recvmsg(int fd, struct msghdr *m, int fl)
{ return syscall(SYS_recvmsg, fd, m, fl); }
static inline int sr_sys_close(int fd)
{ return (int)syscall(SYS_close, fd); }
static inline int sr_sys_epoll_create1(int fl)
{ return (int)syscall(SYS_epoll_create1, fl); }
static inline int sr_sys_epoll_ctl(int ep, int op, int fd, struct epoll_event *ev)
{ return (int)syscall(SYS_epoll_ctl, ep, op, fd, ev); }
/* epoll_pwait with no mask: SYS_epoll_wait does not exist on every arch */
static inline int sr_sys_epoll_wait(int ep, struct epoll_event *ev, int n, int ms)
{ return (int)syscall(SYS_epoll_pwait, ep, ev, n, ms, NULL, 8); }
static inline int sr_sys_socket(int dom, int type, int proto)
{ return (int)syscall(SYS_socket, dom, type, proto); }
static inline int sr_sys_connect(int fd, const struct sockaddr *sa, socklen_t l)
{ return (int)syscall(SYS_connect, fd, sa, l); }
static inline int sr_sys_accept4(int fd, int fl)
{ return (int)syscall(SYS_accept4, fd, NULL, NULL, fl); }
#endif
