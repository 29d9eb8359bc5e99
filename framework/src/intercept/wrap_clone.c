/* wrap_clone.c - a fork made with the raw clone system call.
 *
 * vsftpd starts each session with syscall(SYS_clone, CLONE_NEWIPC |
 * SIGCHLD, NULL): a fork into new namespaces that glibc never sees, so no
 * atfork handler runs - not the dispatcher's, not the module's, not the
 * RDMA device's. Each process then took the other's sockets for its own:
 * the parent's close() of the accepted connection ended it (the child's
 * too), and the child's close() of the listener removed the parent's
 * rdma_cm side listener.
 *
 * Such a call is made as fork() (wrap_fork.c: every handler runs) plus
 * the namespaces: the child unshares IPC, network, mount, UTS, cgroup and
 * user namespaces itself (it is single-threaded there, as unshare wants
 * for a user namespace); a new PID namespace must exist before the child
 * does, so the forking thread unshares it for its children only and sets
 * its own back after the fork. When the child cannot unshare (no
 * privilege), the call fails with that errno, as clone would, and the
 * child is reaped. Any other clone - a thread, a vfork-like CLONE_VM, a
 * new stack, other flags or exit signals - goes to the kernel unchanged. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wrap_clone.h"

#define CHILD_NS (CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_NEWUSER)
#define FORK_NS (CHILD_NS | CLONE_NEWPID)

int wrap_clone_fork_like(unsigned long flags, unsigned long stack)
{
    return stack == 0 && (flags & CSIGNAL) == SIGCHLD && !(flags & ~(CSIGNAL | FORK_NS));
}

/* The child's namespaces: errno 0 (or why not) goes to the parent. */
static void child_unshare(unsigned long ns, int report)
{
    int err = unshare((int)ns) ? errno : 0;
    while (write(report, &err, sizeof(err)) < 0 && errno == EINTR)
        ;
    close(report);
    if (err)
        _exit(127);
}

static int child_verdict(pid_t pid, int report)
{
    int err = 0;
    ssize_t n;
    while ((n = read(report, &err, sizeof(err))) < 0 && errno == EINTR)
        ;
    close(report);
    if (n != (ssize_t)sizeof(err))
        err = ECHILD;           /* it died before it could say */
    if (!err)
        return 0;
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    errno = err;
    return -1;
}

/* A new PID namespace for this thread's children (undone by pidns_back). */
static int pidns_for_children(void)
{
    int own = open("/proc/thread-self/ns/pid_for_children", O_RDONLY | O_CLOEXEC);
    if (own < 0)
        return -1;
    if (unshare(CLONE_NEWPID)) {
        int e = errno;
        close(own);
        errno = e;
        return -1;
    }
    return own;
}

static void pidns_back(int own)
{
    int e = errno;
    setns(own, CLONE_NEWPID);   /* our own namespace: always allowed */
    close(own);
    errno = e;
}

long wrap_clone_as_fork(unsigned long flags)
{
    unsigned long ns = flags & CHILD_NS;
    int own_pidns = -1, report[2] = { -1, -1 };
    if ((flags & CLONE_NEWPID) && (own_pidns = pidns_for_children()) < 0)
        return -1;
    if (ns && pipe2(report, O_CLOEXEC)) {
        if (own_pidns >= 0)
            pidns_back(own_pidns);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (ns) {
            close(report[0]);
            child_unshare(ns, report[1]);
        }
        if (own_pidns >= 0)
            close(own_pidns);
        return 0;
    }
    if (own_pidns >= 0)
        pidns_back(own_pidns);
    if (!ns)
        return pid;
    int e = errno;
    close(report[1]);
    if (pid < 0) {
        close(report[0]);
        errno = e;
        return -1;
    }
    return child_verdict(pid, report[0]) ? -1 : pid;
}
