/*
 * fork_client - client of fork_server (DMM's func-test/fork client): sends
 * -t random 50-byte strings, reads each echo back and compares it, then
 * sends "#exit" and waits for the server's child to close.
 *
 *   fork_client -d SERVER_IP -p PORT [-s BIND_IP] [-a SRC_PORT] [-t COUNT]
 *               [--timeout=SEC]
 * Prints "Result = Success" (exit 0) or "Result = Fail" (exit 1, with the
 * reason on stderr). Usage errors exit 2.
 */
#include "app_fail.h"
#include "app_opts.h"
#include "app_timeout.h"
#include "client_addr.h"
#include "fork_proto.h"
#include "net_addr.h"
#include "sock_io.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STRING_LEN 50

struct fork_client_opts {
    const char *dst_ip, *bind_ip;
    int port, src_port;
    long count;
};

static void parse_opts(int argc, char **argv, struct fork_client_opts *o)
{
    const char *timeout = NULL;
    int c;
    *o = (struct fork_client_opts){ .port = 20000, .count = 100 };
    while ((c = getopt_long(argc, argv, "p:d:s:a:t:", app_long_opts,
                            NULL)) != -1) {
        switch (c) {
        case 'p': o->port = (int)app_opt_num(c, optarg, 1, 65535); break;
        case 'd': o->dst_ip = optarg; break;
        case 's': o->bind_ip = optarg; break;
        case 'a': o->src_port = (int)app_opt_num(c, optarg, 0, 65535); break;
        case 't': o->count = app_opt_num(c, optarg, 1, 100000000L); break;
        case APP_OPT_TIMEOUT: timeout = optarg; break;
        default:
            app_die(APP_EXIT_USAGE, "usage: fork_client -d SERVER_IP -p PORT "
                    "[-s BIND_IP] [-a SRC_PORT] [-t COUNT] [--timeout=SEC]");
        }
    }
    if (o->dst_ip == NULL)
        app_die(APP_EXIT_USAGE, "-d: server IP is required");
    app_timeout_init(timeout);
}

static int connect_server(const struct fork_client_opts *o)
{
    struct net_addr peer, local;
    bool bind_local = client_addr_resolve(o->dst_ip, o->port, o->bind_ip,
                                          o->src_port, &peer, &local);
    struct io_error err;
    int fd = sock_connect_tcp(bind_local ? &local : NULL, &peer,
                              app_timeout_ms, &err);
    if (fd < 0)
        app_fail_result("%s", err.text);
    return fd;
}

static void random_string(char *s, unsigned int *seed)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < STRING_LEN; i++)
        s[i] = alphabet[rand_r(seed) % (sizeof(alphabet) - 1)];
}

static void exchange(int fd, long count)
{
    unsigned int seed = (unsigned int)time(NULL) ^ (unsigned int)getpid();
    char sent[STRING_LEN], got[STRING_LEN];
    struct io_error err;
    for (long i = 0; i < count; i++) {
        random_string(sent, &seed);
        if (!io_send_all(fd, sent, STRING_LEN, app_timeout_ms, &err) ||
            !io_recv_all(fd, got, STRING_LEN, app_timeout_ms, &err))
            app_fail_result("string %ld: %s", i, err.text);
        if (memcmp(sent, got, STRING_LEN) != 0)
            app_fail_result("string %ld: echo differs from what was sent", i);
    }
}

/* Send the marker and wait (bounded) for the child to close; bytes after
 * the last echo are ignored (the child may echo a split marker prefix). */
static void say_exit(int fd)
{
    struct io_error err;
    if (!io_send_all(fd, FORK_EXIT_MARKER, strlen(FORK_EXIT_MARKER), app_timeout_ms, &err))
        app_fail_result("sending #exit: %s", err.text);
    char sink[64];
    for (int rounds = 0; rounds < 1000; rounds++) {
        ssize_t n = recv(fd, sink, sizeof(sink), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return;   /* closed (a reset after #exit is a close too) */
        if (n < 0 && !sock_wait(fd, POLLIN, app_timeout_ms,
                                "see the server close", &err))
            app_fail_result("after #exit: %s", err.text);
    }
    app_fail_result("after #exit: the server kept sending");
}

int main(int argc, char **argv)
{
    struct fork_client_opts o;
    app_start(argv[0]);
    parse_opts(argc, argv, &o);
    int fd = connect_server(&o);
    exchange(fd, o.count);
    say_exit(fd);
    close(fd);
    printf("%ld strings of %d bytes echoed correctly\n", o.count, STRING_LEN);
    printf("Result = Success\n");
    return APP_EXIT_OK;
}
