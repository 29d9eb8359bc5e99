/* libc_api.h - the libc originals of every interposed entry point.
 *
 * Resolved with dlsym(RTLD_NEXT) in a constructor and again lazily on first
 * use, because a wrapper can be called (by another library's constructor)
 * before ours has run. The framework itself must only ever call libc
 * through LIBC(name), never the interposed name. */
#ifndef LIBC_API_H
#define LIBC_API_H

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <unistd.h>

int fcntl64(int fd, int cmd, ...);
/* glibc's _FORTIFY_SOURCE entry of vdprintf (declared only in fortified builds). */
int __vdprintf_chk(int fd, int flag, const char *fmt, __gnuc_va_list ap);
/* Not declared under _GNU_SOURCE (X/Open before 2008); glibc exports it. */
__sighandler_t bsd_signal(int sig, __sighandler_t handler);

#define LIBC_FUNCS(X) \
    X(socket) X(socketpair) X(bind) X(listen) X(accept) X(accept4) X(connect) \
    X(send) X(sendto) X(sendmsg) X(sendmmsg) X(recv) X(recvfrom) X(recvmsg) \
    X(recvmmsg) X(read) X(write) X(readv) X(writev) X(close) X(shutdown) \
    X(getsockopt) X(setsockopt) X(getsockname) X(getpeername) X(fcntl) \
    X(fcntl64) X(ioctl) X(select) X(pselect) X(poll) X(ppoll) \
    X(epoll_create) X(epoll_create1) X(epoll_ctl) X(epoll_wait) \
    X(epoll_pwait) X(epoll_pwait2) X(dup) X(dup2) X(dup3) X(close_range) \
    X(fork) X(sendfile) X(sendfile64) X(execve) X(execvpe) X(fexecve) X(execveat) \
    X(pipe) X(pipe2) X(eventfd) X(timerfd_create) X(chroot) X(splice) \
    X(fdopen) X(vdprintf) X(__vdprintf_chk) \
    X(posix_spawn) X(posix_spawnp) X(system) X(popen) \
    X(posix_spawn_file_actions_init) X(posix_spawn_file_actions_destroy) \
    X(posix_spawn_file_actions_addclose) X(posix_spawn_file_actions_adddup2) \
    X(posix_spawn_file_actions_addopen) X(posix_spawn_file_actions_addclosefrom_np) \
    X(sigaction) X(signal) X(bsd_signal) X(ssignal) X(sysv_signal) X(sigset) X(siginterrupt) \
    X(syscall)

/* glibc declares sigset and siginterrupt deprecated; the dispatcher only
 * interposes them (wrap_signal.c), so their types are taken quietly. */
#define LIBC_QUIET_BEGIN _Pragma("GCC diagnostic push") \
    _Pragma("GCC diagnostic ignored \"-Wdeprecated-declarations\"")
#define LIBC_QUIET_END _Pragma("GCC diagnostic pop")

LIBC_QUIET_BEGIN
struct libc_api {
#define LIBC_FIELD(name) __typeof__(name) *name;
    LIBC_FUNCS(LIBC_FIELD)
#undef LIBC_FIELD
};
LIBC_QUIET_END

/* Written by libc_resolve_all() (idempotent: every writer stores the same
 * value, with atomic stores), read lock-free. */
extern struct libc_api g_libc;

void libc_resolve_all(void);

#define LIBC(name) \
    (__builtin_expect(__atomic_load_n(&g_libc.name, __ATOMIC_RELAXED) != NULL, 1) \
         ? g_libc.name : (libc_resolve_all(), g_libc.name))

#endif
