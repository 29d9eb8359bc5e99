/*
 * srv_forkclient.c - an rsync-style client: connect, exchange data, then
 * fork; from then on the child only reads and the parent only writes the
 * same connection (each process holds a copy of the socket).
 *
 *   srv_forkclient IP PORT BYTES
 *       against an echo server: 4 KiB round trip first, then the parent
 *       sends BYTES more and shuts down its sending side, the child reads
 *       every echoed byte until EOF; all of it is checked against the
 *       pattern of test/rsocket-fw/rsfw_io.h (connection 0)
 *
 * SRV_FORK_GATE=PATH (optional): right before fork() the client creates
 * PATH.ready and waits (bounded) until PATH.go exists, so that the test
 * can look at the wire up to the fork (test/servers/forkclient.sh).
 *
 * Every wait is bounded (SRV_TIMEOUT_S, default 60 s). Exit 0 pass, 1 fail
 * (one line naming the offset), 2 bad arguments.
 */
#include "../rsocket-fw/rsfw_io.h"
#include "srv_pattern.h"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#define HELLO 4096

/* SRV_FORK_GATE: tell the test we are about to fork, wait for its go. */
static void fork_gate(void)
{
    const char *g = getenv("SRV_FORK_GATE");
    if (!g)
        return;
    char path[4096];
    snprintf(path, sizeof(path), "%s.ready", g);
    FILE *f = fopen(path, "w");
    if (!f || fclose(f))
        RSFW_FAIL("cannot create %s", path);
    snprintf(path, sizeof(path), "%s.go", g);
    while (access(path, F_OK) != 0) {
        if (rsfw_now_ms() > deadline_ms)
            RSFW_FAIL("timeout: no %s", path);
        poll(NULL, 0, 10);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: srv_forkclient IP PORT BYTES\n");
        return 2;
    }
    uint64_t bytes = (uint64_t)rsfw_count("byte count", argv[3], 1L << 34);
    const char *t = getenv("SRV_TIMEOUT_S");
    deadline_ms = rsfw_now_ms() + (t && atol(t) > 0 ? atol(t) : 60) * 1000;
    struct sockaddr_storage ss;
    socklen_t len = rsfw_addr(argv[1], argv[2], &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len))
        RSFW_FAIL("connect %s:%s: %s", argv[1], argv[2], strerror(errno));
    send_pattern(fd, 0, HELLO);
    recv_pattern(fd, 0, HELLO, "before fork");
    fflush(stdout);
    fork_gate();
    pid_t pid = fork();
    if (pid < 0)
        RSFW_FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        uint64_t end = recv_pattern(fd, HELLO, 0, "child");
        if (end != HELLO + bytes)
            RSFW_FAIL("child: EOF after %llu bytes, want %llu", (unsigned long long)end,
                      (unsigned long long)(HELLO + bytes));
        printf("child: read %llu bytes after fork, all checked\n", (unsigned long long)bytes);
        exit(0);
    }
    send_pattern(fd, HELLO, HELLO + bytes);
    if (shutdown(fd, SHUT_WR))
        RSFW_FAIL("shutdown: %s", strerror(errno));
    close(fd);
    int st;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (rsfw_now_ms() > deadline_ms)
            RSFW_FAIL("timeout: the reading child did not finish");
        poll(NULL, 0, 10);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        RSFW_FAIL("the reading child ended with status 0x%x", st);
    printf("PASS: parent wrote %llu bytes after fork, child read them back\n",
           (unsigned long long)bytes);
    return 0;
}
