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
#include "app_listen.h"
#include "app_opts.h"
#include "app_timeout.h"
#include "fork_proto.h"
#include "net_addr.h"
#include "sock_io.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define CHUNK 4096          /* bytes per recv() in the child */

struct fork_server_opts {
    const char *bind_ip;
    int port;
    int conns;
};

static void parse_opts(int argc, char **argv, struct fork_server_opts *o)
{
    const char *timeout = NULL;
    int c;
    *o = (struct fork_server_opts){ .bind_ip = "0.0.0.0", .port = 20000,
                                    .conns = 1 };
    while ((c = getopt_long(argc, argv, "p:s:n:d:a:t:", app_long_opts,
                            NULL)) != -1) {
        switch (c) {
        case 'p': o->port = (int)app_opt_num(c, optarg, 1, 65535); break;
        case 's': o->bind_ip = optarg; break;
        case 'n': o->conns = (int)app_opt_num(c, optarg, 1, MAX_CONNS); break;
        case 'd': case 'a': case 't': break;   /* client flags, accepted */
        case APP_OPT_TIMEOUT: timeout = optarg; break;
        default:
            app_die(APP_EXIT_USAGE, "usage: fork_server -s BIND_IP -p PORT "
                    "[-n CONNS] [--timeout=SEC]");
        }
    }
    app_timeout_init(timeout);
}

/* Look for the marker in the stream: `tail` holds the last
 * FORK_MARKER_LEN-1 bytes before this chunk, since the marker may be split
 * across reads. True when the marker ends in this chunk; *before is then
 * the count of chunk bytes in front of it (the bytes to echo). */
static bool find_marker(char *tail, size_t *tail_len, const char *chunk,
                        size_t n, size_t *before)
{
    char window[FORK_MARKER_LEN - 1 + CHUNK];
    memcpy(window, tail, *tail_len);
    memcpy(window + *tail_len, chunk, n);
    size_t total = *tail_len + n;
    char *hit = memmem(window, total, FORK_EXIT_MARKER, FORK_MARKER_LEN);
    if (hit != NULL) {
        size_t at = (size_t)(hit - window);
        *before = at > *tail_len ? at - *tail_len : 0;
        return true;
    }
    size_t keep = total < FORK_MARKER_LEN - 1 ? total : FORK_MARKER_LEN - 1;
    memcpy(tail, window + total - keep, keep);
    *tail_len = keep;
    return false;
}

/* The next chunk, waiting within the idle timeout: its length, or 0 with
 * the reason in *err (peer closed, error, timeout). */
static size_t recv_chunk(int fd, char *buf, struct io_error *err)
{
    for (;;) {
        if (!sock_wait(fd, POLLIN, app_timeout_ms, "receive", err))
            return 0;
        ssize_t n = recv(fd, buf, CHUNK, 0);
        if (n > 0)
            return (size_t)n;
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;   /* the next wait is bounded again */
        snprintf(err->text, sizeof(err->text), "%s before \"#exit\"",
                 n == 0 ? "peer closed" : strerror(errno));
        return 0;
    }
}

/* The child: echo until the marker. Returns the exit status. */
static int child_echo(int fd, int index)
{
    char buf[CHUNK], tail[FORK_MARKER_LEN];
    size_t n, tail_len = 0, echoed = 0;
    struct io_error err;
    sock_set_nonblock(fd, true);
    while ((n = recv_chunk(fd, buf, &err)) > 0) {
        size_t before = n;
        bool done = find_marker(tail, &tail_len, buf, n, &before);
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
    struct sockaddr_storage ss;
    struct io_error err;
    int fd = sock_accept_within(lfd, 0, app_timeout_ms, "accept a connection",
                                &ss, &err);
    if (fd < 0)
        app_warn("FAIL: %s", err.text);
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

static int open_listener(const struct fork_server_opts *o)
{
    struct net_addr local;
    if (!net_addr_parse(o->bind_ip, o->port, &local))
        app_die(APP_EXIT_USAGE, "-s: \"%s\": not an IPv4 or IPv6 address",
                o->bind_ip);
    struct io_error err;
    int lfd = app_listen_announce(&local, false, &err);
    if (lfd < 0)
        app_die(APP_EXIT_FAIL, "FAIL: %s", err.text);
    /* A client that gives up between poll() and accept() must not leave
     * the blocking accept() waiting for ever. */
    sock_bound_blocking(lfd, app_timeout_ms);
    return lfd;
}

/* Accept up to `conns` connections, a child each; returns how many were
 * served, their pids in pids[] (-1 where fork failed). Stops early when
 * accepting fails (timeout), so the parent still reaps what it started. */
static int serve_all(int lfd, int conns, pid_t *pids)
{
    char peer[NET_ADDR_STRLEN];
    int served = 0;
    while (served < conns) {
        int fd = accept_next(lfd, peer, sizeof(peer));
        if (fd < 0)
            break;
        pids[served] = fork_child(lfd, fd, served);
        printf("conn %d accepted from %s (child %d)\n", served, peer,
               (int)pids[served]);
        served++;
    }
    return served;
}

int main(int argc, char **argv)
{
    struct fork_server_opts o;
    app_start(argv[0]);
    parse_opts(argc, argv, &o);
    int lfd = open_listener(&o);
    pid_t pids[MAX_CONNS];
    int served = serve_all(lfd, o.conns, pids);
    close(lfd);
    int ok = reap(pids, served);
    bool pass = ok == o.conns;
    printf("%s: served %d connections, %d ok, result=%s\n", app_name, served,
           ok, pass ? "PASS" : "FAIL");
    return pass ? APP_EXIT_OK : APP_EXIT_FAIL;
}
