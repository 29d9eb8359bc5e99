/*
 * srv_forkdown.c - fork after an upgraded connection carried data, against
 * an echo server (srv_mtaccept); every byte checked against the pattern of
 * test/rsocket-fw/rsfw_io.h (connection 0, one offset per stream byte).
 *
 *   srv_forkdown IP PORT leftover
 *       send 64 KiB, read the first 1000 echoed bytes, wait until the rest
 *       of the echo has arrived but is unread (FIONREAD), fork: the child
 *       reads the next 20000 bytes and exits, then the parent reads the
 *       rest (each byte read once, in order, by one of them; FIONREAD and
 *       a new epoll set say it is there), then 1 MiB
 *       more round trip (on TCP after the leftover), shutdown, EOF
 *   srv_forkdown IP PORT childwrites
 *       4 KiB round trip, fork: the child writes 1 MiB and exits, the
 *       parent keeps reading the echo of all of it, shutdown, EOF
 *   srv_forkdown IP PORT exec
 *       4 KiB round trip, then exec this program again ("execd FD"): the
 *       new image carries the inherited connection, 1 MiB round trip in
 *       64 KiB steps, shutdown, EOF
 *   srv_forkdown IP PORT nodown
 *       connect but do not use the connection (not upgraded), fork: the
 *       child makes a 4 KiB round trip on it (upgraded there), the parent
 *       closes its copy
 *   srv_forkdown IP PORT clonenodown|clonechildwrites
 *       nodown and childwrites with the fork made by the raw clone system
 *       call into a new IPC namespace, as vsftpd starts its sessions
 *       (glibc runs no atfork handler: the dispatcher must see the fork
 *       all the same - the parent's close must not end the child's
 *       connection)
 *
 * Prints "fork: N us" (the fork() call in the parent). Every wait is
 * bounded (SRV_TIMEOUT_S, default 60 s). Exit 0 pass, 1 fail (one line),
 * 2 bad arguments.
 */
#include "../rsocket-fw/rsfw_io.h"
#include "srv_pattern.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LO_TOTAL 65536      /* leftover: the first round trip */
#define LO_FIRST 1000       /* ... read before the fork */
#define LO_CHILD 20000      /* ... read by the child */
#define MORE (1 << 20)

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int use_clone;        /* clone* scenarios */

static pid_t timed_fork(void)
{
    fflush(stdout);
    int64_t t0 = now_us();
    pid_t pid = use_clone ? (pid_t)syscall(SYS_clone, CLONE_NEWIPC | SIGCHLD, 0) : fork();
    if (pid < 0)
        RSFW_FAIL("fork: %s", strerror(errno));
    if (pid > 0)
        printf("fork: %lld us\n", (long long)(now_us() - t0));
    return pid;
}

static void reap(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (rsfw_now_ms() > deadline_ms)
            RSFW_FAIL("timeout: the child did not finish");
        poll(NULL, 0, 10);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        RSFW_FAIL("the child ended with status 0x%x", st);
}

static void leftover(int fd)
{
    send_pattern(fd, 0, LO_TOTAL);
    recv_pattern(fd, 0, LO_FIRST, "before fork");
    wait_unread(fd, LO_TOTAL - LO_FIRST);
    pid_t pid = timed_fork();
    if (pid == 0) {
        recv_pattern(fd, LO_FIRST, LO_FIRST + LO_CHILD, "child");
        printf("child: read [%d, %d), all checked\n", LO_FIRST, LO_FIRST + LO_CHILD);
        exit(0);
    }
    reap(pid);
    /* all of the rest is here already: the child took exactly its part */
    wait_unread(fd, LO_TOTAL - LO_FIRST - LO_CHILD);
    /* and an epoll set made now reports it readable (level-triggered) */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN }, got;
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
        RSFW_FAIL("epoll: %s", strerror(errno));
    for (int i = 0; i < 2; i++)
        if (epoll_wait(ep, &got, 1, 1000) != 1 || !(got.events & EPOLLIN))
            RSFW_FAIL("epoll_wait #%d: the unread bytes are not readable", i + 1);
    close(ep);
    recv_pattern(fd, LO_FIRST + LO_CHILD, LO_TOTAL, "parent");
    send_pattern(fd, LO_TOTAL, LO_TOTAL + MORE);
    recv_pattern(fd, LO_TOTAL, LO_TOTAL + MORE, "parent after the leftover");
    finish(fd, LO_TOTAL + MORE);
    printf("PASS: leftover read once: child %d bytes, parent %d, then %d more\n", LO_CHILD,
           LO_TOTAL - LO_FIRST - LO_CHILD, MORE);
}

static void childwrites(int fd)
{
    send_pattern(fd, 0, 4096);
    recv_pattern(fd, 0, 4096, "before fork");
    pid_t pid = timed_fork();
    if (pid == 0) {
        send_pattern(fd, 4096, 4096 + MORE);
        exit(0);
    }
    recv_pattern(fd, 4096, 4096 + MORE, "parent");
    reap(pid);
    finish(fd, 4096 + MORE);
    printf("PASS: the child wrote %d bytes after fork, the parent read their echo\n", MORE);
}

static void exec_self(int fd)
{
    send_pattern(fd, 0, 4096);
    recv_pattern(fd, 0, 4096, "before exec");
    char fds[16];
    snprintf(fds, sizeof(fds), "%d", fd);
    fflush(stdout);
    execl("/proc/self/exe", "srv_forkdown", "-", "-", "execd", fds, (char *)NULL);
    RSFW_FAIL("exec: %s", strerror(errno));
}

static void execd(int fd)
{
    for (uint64_t at = 4096; at < 4096 + MORE; at += CHUNK) {
        send_pattern(fd, at, at + CHUNK);
        recv_pattern(fd, at, at + CHUNK, "exec'd image");
    }
    finish(fd, 4096 + MORE);
    printf("PASS: the exec'd image carried the inherited connection: %d more bytes each way\n", MORE);
}

static void nodown(int fd)
{
    pid_t pid = timed_fork();
    if (pid == 0) {
        send_pattern(fd, 0, 4096);
        recv_pattern(fd, 0, 4096, "child");
        finish(fd, 4096);
        exit(0);
    }
    close(fd);
    reap(pid);
    printf("PASS: the child used a connection not upgraded at fork\n");
}

int main(int argc, char **argv)
{
    srv_deadline();
    if (argc == 5 && strcmp(argv[3], "execd") == 0) {
        execd(atoi(argv[4]));
        return 0;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: srv_forkdown IP PORT leftover|childwrites|exec|nodown|clonenodown|clonechildwrites\n");
        return 2;
    }
    const char *sc = argv[3];
    if (strncmp(sc, "clone", 5) == 0) {
        use_clone = 1;
        sc += 5;
    }
    int fd = srv_connect(argv[1], argv[2]);
    if (use_clone && strcmp(sc, "nodown") != 0 && strcmp(sc, "childwrites") != 0)
        RSFW_FAIL("unknown scenario %s", argv[3]);
    if (strcmp(sc, "leftover") == 0)
        leftover(fd);
    else if (strcmp(sc, "childwrites") == 0)
        childwrites(fd);
    else if (strcmp(sc, "exec") == 0)
        exec_self(fd);
    else if (strcmp(sc, "nodown") == 0)
        nodown(fd);
    else
        RSFW_FAIL("unknown scenario %s", argv[3]);
    return 0;
}
