/*
 * srv_spawn.c - a connection handed to a program that posix_spawn(),
 * posix_spawnp(), system() or popen() starts, against the echo server
 * srv_mtaccept; every byte checked against the pattern of
 * test/rsocket-fw/rsfw_io.h (connection 0, one offset per stream byte).
 *
 *   srv_spawn IP PORT spawn|spawnp|system|popen
 *       4 KiB round trip (upgraded on an rsocket route), then start this
 *       program ("child FD 4096") on the connection: posix_spawn(p) with
 *       file actions that dup2 it to 0 and close the original (the child
 *       serves it on stdin), system()/popen() through /bin/sh at its own
 *       number (popen: the child's output read from the pipe). The child
 *       makes a 1 MiB round trip in 64 KiB steps, shutdown, EOF; the
 *       parent waits for it (exit status 0) and closes its copy.
 *   srv_spawn IP PORT cand|candsystem|candpopen|candfexec
 *       connect, no data (a candidate), then start the child as above
 *       (cand: posix_spawn on stdin; candfexec: fexecve of this program,
 *       which replaces the process): it upgrades the connection itself;
 *       1 MiB round trip from offset 0
 *   srv_spawn IP PORT candkeep
 *       connect, no data, system() of helpers that leave the inherited
 *       connection alone (true; this program, preloaded, exiting at
 *       once), then the parent itself makes the 1 MiB round trip: the
 *       helpers' exits took no byte and sent no FIN
 *   srv_spawn IP PORT left
 *       send 64 KiB, read 1000 bytes of the echo, wait until the rest
 *       arrived unread, posix_spawn "childleft 0": where the unread bytes
 *       cannot follow (they came over RDMA) the spawn must fail with EBUSY
 *       and the parent reads them; else the child reads them. Then the
 *       parent makes 1 MiB more round trip, shutdown, EOF.
 *   srv_spawn IP PORT leftexec
 *       the same with an exec of this program on the connection: EBUSY
 *       and the process goes on, or the new image reads the unread part
 *       and makes the 1 MiB round trip itself.
 *   srv_spawn nosock
 *       no socket at all: posix_spawnp with file actions, system (exit
 *       status, NULL), popen (output), a missing program (ENOENT), as
 *       without the preload.
 *
 * Prints "PASS: ..." on success. Every wait bounded (SRV_TIMEOUT_S,
 * default 60 s). Exit 0 pass, 1 fail (one line), 2 bad arguments.
 */
#include "../rsocket-fw/rsfw_io.h"
#include "srv_pattern.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define LO_TOTAL 65536
#define LO_FIRST 1000
#define MORE (1 << 20)

extern char **environ;

static char self[4096];

static void reap(pid_t pid, int want)
{
    int st = 0;
    pid_t r;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0) {
        if (rsfw_now_ms() > deadline_ms)
            RSFW_FAIL("timeout: the child did not finish");
        poll(NULL, 0, 10);
    }
    if (r != pid || !WIFEXITED(st) || WEXITSTATUS(st) != want)
        RSFW_FAIL("the child ended with status 0x%x, want exit %d", st, want);
}

/* The started program: 1 MiB round trip from `from`. */
static void child(int fd, uint64_t from)
{
    for (uint64_t at = from; at < from + MORE; at += CHUNK) {
        send_pattern(fd, at, at + CHUNK);
        recv_pattern(fd, at, at + CHUNK, "child");
    }
    finish(fd, from + MORE);
    printf("PASS: the started program carried the inherited connection: %d bytes each way\n", MORE);
}

/* posix_spawn(p) of "child" or "childleft" with fd on stdin; returns the
 * spawn's error number. */
static int spawn_on_stdin(int fd, int use_p, const char *mode, const char *from, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) || posix_spawn_file_actions_adddup2(&fa, fd, 0) ||
        posix_spawn_file_actions_addclose(&fa, fd))
        RSFW_FAIL("posix_spawn_file_actions: %s", strerror(errno));
    char *argv[] = { "srv_spawn", "-", "-", (char *)mode, "0", (char *)from, NULL };
    fflush(stdout);
    int r = use_p ? posix_spawnp(pid, self, &fa, NULL, argv, environ)
                  : posix_spawn(pid, self, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return r;
}

/* from: the stream offset the child starts at (0: a candidate). */
static void handover(int fd, const char *how, const char *from)
{
    pid_t pid = 0;
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "'%s' - - child %d %s", self, fd, from);
    fflush(stdout);
    if (strcmp(how, "spawn") == 0 || strcmp(how, "spawnp") == 0) {
        int r = spawn_on_stdin(fd, how[5] == 'p', "child", from, &pid);
        if (r)
            RSFW_FAIL("%s: %s", how, strerror(r));
        reap(pid, 0);
    } else if (strcmp(how, "system") == 0) {
        int st = system(cmd);
        if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st))
            RSFW_FAIL("system: status 0x%x (%s)", st, strerror(errno));
    } else if (strcmp(how, "fexec") == 0) {
        char fds[16];
        snprintf(fds, sizeof(fds), "%d", fd);
        char *argv[] = { "srv_spawn", "-", "-", "child", fds, (char *)from, NULL };
        int ex = open(self, O_RDONLY | O_CLOEXEC);
        fflush(stdout);
        if (ex >= 0)
            fexecve(ex, argv, environ);
        RSFW_FAIL("fexecve %s: %s", self, strerror(errno));
    } else {
        FILE *p = popen(cmd, "r");
        if (p == NULL)
            RSFW_FAIL("popen: %s", strerror(errno));
        char out[512] = "";
        size_t n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        int st = pclose(p);
        if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) || strstr(out, "PASS: the started") == NULL)
            RSFW_FAIL("popen: status 0x%x, output \"%s\"", st, out);
        printf("popen read: %s", out);
    }
    close(fd);
    printf("PASS: %s handed over %s connection: the program carried %d bytes each way\n", how,
           strcmp(from, "0") ? "an upgraded" : "a not yet used", MORE);
}

/* After the unread part: 1 MiB more round trip, shutdown, EOF. */
static void left_rest(int fd, const char *at)
{
    send_pattern(fd, LO_TOTAL, LO_TOTAL + MORE);
    recv_pattern(fd, LO_TOTAL, LO_TOTAL + MORE, at);
    finish(fd, LO_TOTAL + MORE);
    printf("PASS: no byte lost at a spawn or exec with %d bytes unread\n", LO_TOTAL - LO_FIRST);
}

/* use_exec: exec this program on the connection ("childleft FD all":
 * it reads the unread part and the rest); else posix_spawn it on stdin
 * ("childleft 0 part": the unread part only). */
static void left(int fd, int use_exec)
{
    pid_t pid = 0;
    int r;
    send_pattern(fd, 0, LO_TOTAL);
    recv_pattern(fd, 0, LO_FIRST, "before spawn");
    wait_unread(fd, LO_TOTAL - LO_FIRST);
    if (use_exec) {
        char fds[16];
        snprintf(fds, sizeof(fds), "%d", fd);
        fflush(stdout);
        execl(self, "srv_spawn", "-", "-", "childleft", fds, "all", (char *)NULL);
        r = errno;
    } else {
        r = spawn_on_stdin(fd, 0, "childleft", "part", &pid);
    }
    if (r == EBUSY) {
        printf("%s: EBUSY\n", use_exec ? "exec" : "spawn");
        recv_pattern(fd, LO_FIRST, LO_TOTAL, "parent after EBUSY");
    } else if (r == 0 && !use_exec) {
        printf("spawn: started\n");
        reap(pid, 0);
    } else {
        RSFW_FAIL("%s: %s", use_exec ? "exec" : "posix_spawn", strerror(r));
    }
    left_rest(fd, "parent after the spawn");
}

/* No socket: the wrapped calls answer as libc's. */
static void nosock(void)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    /* exit 3: stdin is /dev/null (the open action ran) */
    char *argv[] = { "sh", "-c", "if read x; then exit 4; else exit 3; fi", NULL };
    if (posix_spawn_file_actions_init(&fa) || posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) ||
        posix_spawn_file_actions_adddup2(&fa, 2, 2) || posix_spawn_file_actions_addclosefrom_np(&fa, 3))
        RSFW_FAIL("file actions: %s", strerror(errno));
    int r = posix_spawnp(&pid, "sh", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r)
        RSFW_FAIL("posix_spawnp sh: %s", strerror(r));
    reap(pid, 3);
    char *argv2[] = { "no-such-program-nstack", NULL };
    if ((r = posix_spawnp(&pid, argv2[0], NULL, NULL, argv2, environ)) != ENOENT)
        RSFW_FAIL("posix_spawnp of a missing program: %d, want ENOENT", r);
    int st = system("exit 5");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 5)
        RSFW_FAIL("system(\"exit 5\"): 0x%x", st);
    if (system(NULL) == 0)
        RSFW_FAIL("system(NULL): no shell");
    FILE *p = popen("echo hello", "r");
    char out[64] = "";
    if (p == NULL || fgets(out, sizeof(out), p) == NULL || strcmp(out, "hello\n") || pclose(p) != 0)
        RSFW_FAIL("popen echo: \"%s\"", out);
    printf("PASS: spawn, system, popen without sockets behave as libc's\n");
}

int main(int argc, char **argv)
{
    srv_deadline();
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0)
        RSFW_FAIL("readlink /proc/self/exe: %s", strerror(errno));
    self[sl] = '\0';
    if (argc == 6 && strcmp(argv[3], "child") == 0) {
        child(atoi(argv[4]), strtoull(argv[5], NULL, 10));
        return 0;
    }
    if (argc == 6 && strcmp(argv[3], "idle") == 0)
        return 0;
    if (argc == 6 && strcmp(argv[3], "childleft") == 0) {
        recv_pattern(atoi(argv[4]), LO_FIRST, LO_TOTAL, "child");
        if (strcmp(argv[5], "all") == 0)
            left_rest(atoi(argv[4]), "exec'd image");
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "nosock") == 0) {
        nosock();
        return 0;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: srv_spawn IP PORT spawn|spawnp|system|popen|cand|candsystem|candpopen|candfexec|candkeep|left|leftexec | srv_spawn nosock\n");
        return 2;
    }
    int fd = srv_connect(argv[1], argv[2]);
    if (strcmp(argv[3], "candkeep") == 0) {
        /* a helper that gets the connection and leaves it alone: the
         * parent's stream must be untouched (no FIN, no byte taken) */
        int st = system("exec true");
        if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st))
            RSFW_FAIL("system: status 0x%x", st);
        char cmd[4200];
        snprintf(cmd, sizeof(cmd), "'%s' - - idle 0 0", self);
        if ((st = system(cmd)) == -1 || !WIFEXITED(st) || WEXITSTATUS(st))
            RSFW_FAIL("system idle: status 0x%x", st);
        child(fd, 0);
    } else if (strncmp(argv[3], "cand", 4) == 0) {
        handover(fd, argv[3][4] ? argv[3] + 4 : "spawn", "0");
    } else if (strncmp(argv[3], "left", 4) == 0) {
        left(fd, strcmp(argv[3], "leftexec") == 0);
    } else {
        send_pattern(fd, 0, 4096);
        recv_pattern(fd, 0, 4096, "before the spawn");
        handover(fd, argv[3], "4096");
    }
    return 0;
}
