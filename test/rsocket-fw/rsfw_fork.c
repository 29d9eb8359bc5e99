/*
 * rsfw_fork.c - fork with rsocket sockets, against `rsfw_conns server IP
 * PORT 2 262144` (ROUND = 64 KiB: three rounds on the parent's connection,
 * one on the child's).
 *
 *   rsfw_fork IP PORT
 *
 * 1. the parent connects and echoes a round;
 * 2. fork; the child touches the inherited socket: send, recv and poll must
 *    each return at once with an error (no hang), close must succeed;
 *    then the child opens its own connection and echoes a round on it;
 * 3. meanwhile the parent echoes a second round on its socket, waits for
 *    the child, and echoes a third round (the child's close did not hurt
 *    the parent's connection).
 * Every byte is checked against the pattern. A watchdog turns a hang into
 * a failure naming the step. Exit 0 pass, 1 fail, 2 bad arguments.
 */
#include "rsfw_io.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUND 65536
#define CHUNK 16384
#define STEP_TIMEOUT_S 60

static const char *volatile step = "start";

static void on_alarm(int sig)
{
    (void)sig;
    char msg[200];
    int n = snprintf(msg, sizeof(msg), "%s: FAIL: [%d] hang: no progress in %d s at step: %s\n",
                     program_invocation_short_name, (int)getpid(), STEP_TIMEOUT_S, step);
    if (write(2, msg, (size_t)n) < 0)
        _exit(1);
    _exit(1);
}

static void set_step(const char *s)
{
    step = s;
    alarm(STEP_TIMEOUT_S);
}

static int connect_to(const struct sockaddr_storage *ss, socklen_t sl)
{
    int fd = socket(ss->ss_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)ss, sl))
        RSFW_FAIL("[%d] %s: connect: %s", (int)getpid(), step, strerror(errno));
    return fd;
}

/* One round: ROUND bytes of conn's pattern from offset `off`, sent in
 * chunks, each chunk's echo read back and checked before the next. */
static void echo_round(int fd, uint32_t conn, uint64_t off)
{
    uint8_t buf[CHUNK];
    for (uint64_t done = 0; done < ROUND; done += CHUNK) {
        rsfw_fill(conn, off + done, buf, CHUNK);
        if (send(fd, buf, CHUNK, MSG_NOSIGNAL) != CHUNK)
            RSFW_FAIL("[%d] %s: send: %s", (int)getpid(), step, strerror(errno));
        ssize_t r = recv(fd, buf, CHUNK, MSG_WAITALL);
        if (r != CHUNK)
            RSFW_FAIL("[%d] %s: recv returned %zd: %s", (int)getpid(), step, r,
                      r < 0 ? strerror(errno) : "short echo");
        long bad = rsfw_check(conn, off + done, buf, CHUNK);
        if (bad >= 0)
            RSFW_FAIL("[%d] %s: echo mismatch at byte %lu", (int)getpid(), step,
                      (unsigned long)(off + done + (uint64_t)bad));
    }
}

/* The child's view of the parent's socket: every call fails at once. */
static void child_touch_inherited(int fd)
{
    char b[16] = "inherited";
    set_step("child: send on the inherited socket");
    ssize_t r = send(fd, b, sizeof(b), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r >= 0)
        RSFW_FAIL("[child] send on the inherited socket succeeded (%zd): expected an error", r);
    printf("child: send on inherited socket: %s\n", strerrorname_np(errno));

    set_step("child: recv on the inherited socket");
    r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
    if (r >= 0)
        RSFW_FAIL("[child] recv on the inherited socket returned %zd: expected an error", r);
    printf("child: recv on inherited socket: %s\n", strerrorname_np(errno));

    set_step("child: poll on the inherited socket");
    struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
    int n = poll(&p, 1, 10000);
    if (n != 1 || !(p.revents & (POLLERR | POLLHUP)))
        RSFW_FAIL("[child] poll on the inherited socket: returned %d revents 0x%x: expected POLLERR/POLLHUP at once",
                  n, p.revents);
    printf("child: poll on inherited socket: revents 0x%x\n", p.revents);

    set_step("child: close the inherited socket");
    if (close(fd))
        RSFW_FAIL("[child] close of the inherited socket: %s", strerror(errno));
}

static void run_child(int inherited, const struct sockaddr_storage *ss, socklen_t sl)
{
    child_touch_inherited(inherited);
    set_step("child: connect a new socket");
    int fd = connect_to(ss, sl);
    set_step("child: echo on its own socket");
    echo_round(fd, 1, 0);
    close(fd);
    printf("child: own connection echoed %d bytes\n", ROUND);
    fflush(stdout);
    exit(0);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: rsfw_fork IP PORT\n");
        return 2;
    }
    struct sockaddr_storage ss;
    socklen_t sl = rsfw_addr(argv[1], argv[2], &ss);
    signal(SIGALRM, on_alarm);

    set_step("parent: connect");
    int fd = connect_to(&ss, sl);
    set_step("parent: round 1 (before fork)");
    echo_round(fd, 0, 0);
    fflush(stdout);

    pid_t pid = fork();
    if (pid < 0)
        RSFW_FAIL("fork: %s", strerror(errno));
    if (pid == 0)
        run_child(fd, &ss, sl);

    set_step("parent: round 2 (child running)");
    echo_round(fd, 0, ROUND);
    set_step("parent: wait for the child");
    int st;
    if (waitpid(pid, &st, 0) != pid)
        RSFW_FAIL("waitpid: %s", strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        RSFW_FAIL("child failed (status 0x%x)", st);
    set_step("parent: round 3 (after the child closed its copy)");
    echo_round(fd, 0, 2 * ROUND);
    close(fd);
    alarm(0);
    printf("rsfw_fork: PASS: parent 3 rounds, child 1 round on its own socket, inherited socket refused in the child\n");
    return 0;
}
