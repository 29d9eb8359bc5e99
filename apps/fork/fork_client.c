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
#include "app_timeout.h"
#include "net_addr.h"
#include "num_parse.h"
#include "sock_io.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STRING_LEN 50
#define EXIT_MARKER "#exit"

struct fork_client_opts {
    const char *dst_ip, *bind_ip;
    int port, src_port;
    long count;
};

static long want_num(int flag, const char *text, long min, long max)
{
    long v;
    if (!num_parse_long(text, min, max, &v))
        app_die(APP_EXIT_USAGE, "-%c: \"%s\": expected a number in %ld..%ld",
                flag, text, min, max);
    return v;
}

static void parse_opts(int argc, char **argv, struct fork_client_opts *o)
{
    static const struct option longs[] = {
        { "timeout", required_argument, NULL, 'T' }, { NULL, 0, NULL, 0 },
    };
    const char *timeout = NULL;
    int c;
    *o = (struct fork_client_opts){ .port = 20000, .count = 100 };
    while ((c = getopt_long(argc, argv, "p:d:s:a:t:", longs, NULL)) != -1) {
        switch (c) {
        case 'p': o->port = (int)want_num(c, optarg, 1, 65535); break;
        case 'd': o->dst_ip = optarg; break;
        case 's': o->bind_ip = optarg; break;
        case 'a': o->src_port = (int)want_num(c, optarg, 0, 65535); break;
        case 't': o->count = want_num(c, optarg, 1, 100000000L); break;
        case 'T': timeout = optarg; break;
        default:
            app_die(APP_EXIT_USAGE, "usage: fork_client -d SERVER_IP -p PORT "
                    "[-s BIND_IP] [-a SRC_PORT] [-t COUNT] [--timeout=SEC]");
        }
    }
    if (o->dst_ip == NULL)
        app_die(APP_EXIT_USAGE, "-d: server IP is required");
    if (!(timeout ? app_timeout_set(timeout, "--timeout") : app_timeout_from_env()))
        exit(APP_EXIT_USAGE);
}

/* Print the reason on stderr and "Result = Fail" on stdout, exit 1. */
static void fail_result(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void fail_result(const char *fmt, ...)
{
    char line[IO_REASON_LEN + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    app_warn("FAIL: %s", line);
    printf("Result = Fail\n");
    exit(APP_EXIT_FAIL);
}

static int connect_server(const struct fork_client_opts *o)
{
    struct net_addr peer, local;
    if (!net_addr_parse(o->dst_ip, o->port, &peer))
        app_die(APP_EXIT_USAGE, "-d: \"%s\": not an IPv4 or IPv6 address",
                o->dst_ip);
    bool bind_local = o->bind_ip != NULL || o->src_port > 0;
    if (o->bind_ip == NULL)
        net_addr_any(net_addr_family(&peer), o->src_port, &local);
    else if (!net_addr_parse(o->bind_ip, o->src_port, &local))
        app_die(APP_EXIT_USAGE, "-s: \"%s\": not an IPv4 or IPv6 address",
                o->bind_ip);
    struct io_error err;
    int fd = sock_connect_tcp(bind_local ? &local : NULL, &peer,
                              app_timeout_ms, &err);
    if (fd < 0)
        fail_result("%s", err.text);
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
            fail_result("string %ld: %s", i, err.text);
        if (memcmp(sent, got, STRING_LEN) != 0)
            fail_result("string %ld: echo differs from what was sent", i);
    }
}

/* Send the marker and wait (bounded) for the child to close; bytes after
 * the last echo are ignored (the child may echo a split marker prefix). */
static void say_exit(int fd)
{
    struct io_error err;
    if (!io_send_all(fd, EXIT_MARKER, strlen(EXIT_MARKER), app_timeout_ms, &err))
        fail_result("sending #exit: %s", err.text);
    char sink[64];
    for (int rounds = 0; rounds < 1000; rounds++) {
        ssize_t n = recv(fd, sink, sizeof(sink), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return;   /* closed (a reset after #exit is a close too) */
        if (n < 0 && !sock_wait(fd, POLLIN, app_timeout_ms,
                                "see the server close", &err))
            fail_result("after #exit: %s", err.text);
    }
    fail_result("after #exit: the server kept sending");
}

int main(int argc, char **argv)
{
    struct fork_client_opts o;
    app_set_name(argv[0]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    parse_opts(argc, argv, &o);
    int fd = connect_server(&o);
    exchange(fd, o.count);
    say_exit(fd);
    close(fd);
    printf("%ld strings of %d bytes echoed correctly\n", o.count, STRING_LEN);
    printf("Result = Success\n");
    return APP_EXIT_OK;
}
