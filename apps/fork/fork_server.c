/*
 * fork_server - echo server that forks a child per connection (DMM's
 * func-test/fork server). The child echoes everything until it reads the
 * marker "#exit", then exits 0; EOF before the marker, an I/O error or the
 * idle timeout make it exit 1. The parent serves -n connections, reaps the
 * children and exits 0 only if every child succeeded.
 *
 *   fork_server -s BIND_IP -p PORT [-n CONNS] [--timeout=SEC]
 * Output: "listening on IP:PORT", "conn I accepted from IP:PORT (child PID)",
 * per child "child PID conn I: echoed N bytes, got #exit" and finally
 * "fork_server: served N connections, M ok, result=PASS|FAIL".
 */
#include "app_fail.h"
#include "app_timeout.h"
#include "net_addr.h"
#include "num_parse.h"
#include "sock_io.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_MARKER "#exit"
#define MARKER_LEN 5
#define MAX_CONNS 1024

struct fork_server_opts {
    const char *bind_ip;
    int port;
    int conns;
};

static long want_num(int flag, const char *text, long min, long max)
{
    long v;
    if (!num_parse_long(text, min, max, &v))
        app_die(APP_EXIT_USAGE, "-%c: \"%s\": expected a number in %ld..%ld",
                flag, text, min, max);
    return v;
}

static void parse_opts(int argc, char **argv, struct fork_server_opts *o)
{
    static const struct option longs[] = {
        { "timeout", required_argument, NULL, 'T' }, { NULL, 0, NULL, 0 },
    };
    const char *timeout = NULL;
    int c;
    *o = (struct fork_server_opts){ .bind_ip = "0.0.0.0", .port = 20000,
                                    .conns = 1 };
    while ((c = getopt_long(argc, argv, "p:s:n:d:a:t:", longs, NULL)) != -1) {
        switch (c) {
        case 'p': o->port = (int)want_num(c, optarg, 1, 65535); break;
        case 's': o->bind_ip = optarg; break;
        case 'n': o->conns = (int)want_num(c, optarg, 1, MAX_CONNS); break;
        case 'd': case 'a': case 't': break;   /* client flags, accepted */
        case 'T': timeout = optarg; break;
        default:
            app_die(APP_EXIT_USAGE, "usage: fork_server -s BIND_IP -p PORT "
                    "[-n CONNS] [--timeout=SEC]");
        }
    }
    if (!(timeout ? app_timeout_set(timeout, "--timeout") : app_timeout_from_env()))
        exit(APP_EXIT_USAGE);
}

/* Index just past the marker in tail+chunk, or -1. `tail` holds the last
 * MARKER_LEN-1 bytes of the stream before this chunk (the marker may be
 * split across reads). Returns the count of chunk bytes before the marker
 * in *before. */
static bool find_marker(char *tail, size_t *tail_len, const char *chunk,
                        size_t n, size_t *before)
{
    char window[MARKER_LEN - 1 + 4096];
    memcpy(window, tail, *tail_len);
    memcpy(window + *tail_len, chunk, n);
    size_t total = *tail_len + n;
    char *hit = memmem(window, total, EXIT_MARKER, MARKER_LEN);
    if (hit != NULL) {
        size_t at = (size_t)(hit - window);
        *before = at > *tail_len ? at - *tail_len : 0;
        return true;
    }
    size_t keep = total < MARKER_LEN - 1 ? total : MARKER_LEN - 1;
    memcpy(tail, window + total - keep, keep);
    *tail_len = keep;
    return false;
}

/* The child: echo until the marker. Returns the exit status. */
static int child_echo(int fd, int index)
{
    char buf[4096], tail[MARKER_LEN];
    size_t tail_len = 0, echoed = 0;
    struct io_error err;
    sock_set_nonblock(fd, true);
    for (;;) {
        if (!sock_wait(fd, POLLIN, app_timeout_ms, "receive", &err))
            break;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            snprintf(err.text, sizeof(err.text), "%s before \"#exit\"",
                     n == 0 ? "peer closed" : strerror(errno));
            break;
        }
        size_t before = (size_t)n;
        bool done = find_marker(tail, &tail_len, buf, (size_t)n, &before);
        if (!io_send_all(fd, buf, before, app_timeout_ms, &err))
            break;
        echoed += before;
        if (done) {
            printf("child %d conn %d: echoed %zu bytes, got #exit\n",
                   (int)getpid(), index, echoed);
            return APP_EXIT_OK;
        }
    }
    app_warn("FAIL: child %d conn %d: %s", (int)getpid(), index, err.text);
    return APP_EXIT_FAIL;
}

static pid_t fork_child(int lfd, int fd, int index)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(lfd);
        int rc = child_echo(fd, index);
        close(fd);
        fflush(stdout);
        _exit(rc);
    }
    if (pid < 0)
        app_warn("FAIL: fork for conn %d: %s", index, strerror(errno));
    close(fd);
    return pid;
}

/* Accept the next connection within the idle timeout; -1 on failure. */
static int accept_next(int lfd, char *peer, size_t size)
{
    struct io_error err;
    if (!sock_wait(lfd, POLLIN, app_timeout_ms, "accept a connection", &err)) {
        app_warn("FAIL: %s", err.text);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd;
    do {
        fd = accept(lfd, (struct sockaddr *)&ss, &len);
    } while (fd < 0 && (errno == EINTR || errno == ECONNABORTED));
    if (fd < 0)
        app_warn("FAIL: accept: %s", strerror(errno));
    else
        net_sockaddr_str((struct sockaddr *)&ss, peer, size);
    return fd;
}

static int reap(const pid_t *pids, int n)
{
    int ok = 0;
    for (int i = 0; i < n; i++) {
        int status;
        if (pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i] &&
            WIFEXITED(status) && WEXITSTATUS(status) == 0)
            ok++;
    }
    return ok;
}

int main(int argc, char **argv)
{
    struct fork_server_opts o;
    app_set_name(argv[0]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    parse_opts(argc, argv, &o);
    struct net_addr local;
    if (!net_addr_parse(o.bind_ip, o.port, &local))
        app_die(APP_EXIT_USAGE, "-s: \"%s\": not an IPv4 or IPv6 address",
                o.bind_ip);
    struct io_error err;
    int lfd = sock_listen_tcp(&local, false, &err);
    if (lfd < 0)
        app_die(APP_EXIT_FAIL, "FAIL: %s", err.text);
    char a[NET_ADDR_STRLEN];
    printf("listening on %s\n", net_addr_str(&local, a, sizeof(a)));

    pid_t pids[MAX_CONNS];
    int served = 0;
    while (served < o.conns) {
        int fd = accept_next(lfd, a, sizeof(a));
        if (fd < 0)
            break;
        pids[served] = fork_child(lfd, fd, served);
        printf("conn %d accepted from %s (child %d)\n", served, a,
               (int)pids[served]);
        served++;
    }
    close(lfd);
    int ok = reap(pids, served);
    bool pass = ok == o.conns;
    printf("%s: served %d connections, %d ok, result=%s\n", app_name, served,
           ok, pass ? "PASS" : "FAIL");
    return pass ? APP_EXIT_OK : APP_EXIT_FAIL;
}
