/*
 * srv_inetd.c - an inetd-style server: accept, fork, and in the child make
 * the connection its stdin and stdout and exec a program that serves it
 * (the connection crosses fork and exec; the exec'd image never called
 * socket() or accept()).
 *
 *   srv_inetd IP PORT N PROGRAM [ARG...]
 *       serve N connections, then wait for every child; pass when each
 *       child exited 0
 *
 * Every wait is bounded (SRV_TIMEOUT_S, default 60 s). Exit 0 pass, 1 fail
 * (one line), 2 bad arguments.
 */
#include "../rsocket-fw/rsfw_io.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void child(int fd, char **prog)
{
    if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0) {
        perror("srv_inetd: dup2");
        _exit(126);
    }
    if (fd > 1)
        close(fd);
    execv(prog[0], prog);
    perror("srv_inetd: execv");
    _exit(127);
}

/* Reaps one child within the deadline; fails on a nonzero status. */
static void reap(int64_t deadline)
{
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0) {
            if (!WIFEXITED(st) || WEXITSTATUS(st))
                RSFW_FAIL("child %d ended with status 0x%x", (int)p, st);
            return;
        }
        if (p < 0)
            RSFW_FAIL("waitpid: %s", strerror(errno));
        if (rsfw_now_ms() > deadline)
            RSFW_FAIL("timeout: a child did not finish");
        poll(NULL, 0, 10);
    }
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: srv_inetd IP PORT N PROGRAM [ARG...]\n");
        return 2;
    }
    long n = rsfw_count("connection count", argv[3], 4096);
    const char *t = getenv("SRV_TIMEOUT_S");
    int64_t deadline = rsfw_now_ms() + (t && atol(t) > 0 ? atol(t) : 60) * 1000;
    struct sockaddr_storage ss;
    socklen_t len = rsfw_addr(argv[1], argv[2], &ss);
    int one = 1, lfd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(lfd, (struct sockaddr *)&ss, len) || listen(lfd, 64))
        RSFW_FAIL("listen on %s:%s: %s", argv[1], argv[2], strerror(errno));
    printf("listening on %s:%s\n", argv[1], argv[2]);
    fflush(stdout);
    for (long i = 0; i < n; i++) {
        struct pollfd p = { .fd = lfd, .events = POLLIN };
        int64_t left = deadline - rsfw_now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) != 1)
            RSFW_FAIL("timeout: %ld of %ld connections accepted", i, n);
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            RSFW_FAIL("accept after %ld connections: %s", i, strerror(errno));
        pid_t pid = fork();
        if (pid < 0)
            RSFW_FAIL("fork: %s", strerror(errno));
        if (pid == 0) {
            close(lfd);
            child(fd, argv + 4);
        }
        close(fd);       /* the child holds the connection now */
    }
    close(lfd);
    for (long i = 0; i < n; i++)
        reap(deadline);
    printf("server: %ld connections served by %s, every child exited 0\n", n, argv[4]);
    return 0;
}
