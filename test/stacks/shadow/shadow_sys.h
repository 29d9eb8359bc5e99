/*
 * shadow_sys.h - raw system calls for the shadow module's private fds.
 * syscall(2) bypasses every libc symbol the dispatcher interposes, whatever
 * the loader's symbol lookup order; it sets errno and returns -1 on failure
 * like the libc wrappers. Blocking calls block in the kernel as usual.
 */
#ifndef SHADOW_SYS_H
#define SHADOW_SYS_H

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#define sys_socket(d, t, p)        ((int)syscall(SYS_socket, (d), (t), (p)))
#define sys_bind(fd, a, l)         ((int)syscall(SYS_bind, (fd), (a), (l)))
#define sys_listen(fd, b)          ((int)syscall(SYS_listen, (fd), (b)))
#define sys_accept4(fd, a, l, f)   ((int)syscall(SYS_accept4, (fd), (a), (l), (f)))
#define sys_connect(fd, a, l)      ((int)syscall(SYS_connect, (fd), (a), (l)))
#define sys_shutdown(fd, h)        ((int)syscall(SYS_shutdown, (fd), (h)))
static inline int sys_close(int fd) { return (int)syscall(SYS_close, fd); }
#define sys_sendto(fd, b, n, f)    ((ssize_t)syscall(SYS_sendto, (fd), (b), (n), (f), NULL, 0))
#define sys_recvfrom(fd, b, n, f)  ((ssize_t)syscall(SYS_recvfrom, (fd), (b), (n), (f), NULL, NULL))
#define sys_sendmsg(fd, m, f)      ((ssize_t)syscall(SYS_sendmsg, (fd), (m), (f)))
#define sys_recvmsg(fd, m, f)      ((ssize_t)syscall(SYS_recvmsg, (fd), (m), (f)))
#define sys_getsockname(fd, a, l)  ((int)syscall(SYS_getsockname, (fd), (a), (l)))
#define sys_getpeername(fd, a, l)  ((int)syscall(SYS_getpeername, (fd), (a), (l)))
#define sys_getsockopt(fd, lv, n, v, l) ((int)syscall(SYS_getsockopt, (fd), (lv), (n), (v), (l)))
#define sys_setsockopt(fd, lv, n, v, l) ((int)syscall(SYS_setsockopt, (fd), (lv), (n), (v), (l)))
#define sys_fcntl(fd, c, a)        ((int)syscall(SYS_fcntl, (fd), (c), (a)))
#define sys_ioctl(fd, r, a)        ((int)syscall(SYS_ioctl, (fd), (r), (a)))
#define sys_epoll_create1(f)       ((int)syscall(SYS_epoll_create1, (f)))
#define sys_epoll_ctl(ep, op, fd, e) ((int)syscall(SYS_epoll_ctl, (ep), (op), (fd), (e)))
/* epoll_pwait/ppoll exist on every architecture (epoll_wait/poll do not). */
#define sys_epoll_drain(ep, e, n)  ((int)syscall(SYS_epoll_pwait, (ep), (e), (n), 0, NULL, _NSIG / 8))
#define sys_ppoll0(p, n)           ((int)syscall(SYS_ppoll, (p), (n), &(struct timespec){ 0, 0 }, NULL, _NSIG / 8))

#endif /* SHADOW_SYS_H */
