/* nstack-check - open a real connection under the current configuration,
 * move a pattern both ways, and say which stack carried it and why (as
 * smc_chk does for SMC). Manual: doc/man/nstack-check.1.
 *
 *   nstack-check [--config DIR] [--bytes N] [--timeout SECONDS] HOST:PORT
 *   nstack-check [--config DIR] [--count N] --serve PORT
 *
 * Not under the preload, it runs itself under it through nstack-run (next
 * to it, or $NSTACK_RUN). The verdict comes from the process's own
 * connection record in its stats segment (include/nstack/nstack_stats.h).
 *
 * Exit status: 0 carried by a module (accelerated); 1 carried by kernel
 * TCP (fallback, or the route says so) - the line says why; 2 error
 * (usage, name lookup, connect refused/unreachable, data mismatch,
 * timeout, the framework not loaded). */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#define EX_OK 0
#define EX_TCP 1
#define EX_ERR 2

static void usage(FILE *f)
{
    fprintf(f, "usage: nstack-check [--config DIR] [--bytes N] [--timeout SECONDS] HOST:PORT\n"
               "       nstack-check [--config DIR] [--count N] --serve PORT\n"
               "Exit status: 0 accelerated, 1 carried by kernel TCP (the reason is printed), 2 error.\n");
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char m[] = "nstack-check: timed out\n";
    (void)!write(2, m, sizeof(m) - 1);
    _exit(EX_ERR);
}

static int parse_num(const char *opt, const char *a, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(a, &end, 10);
    if (*a == '\0' || *end != '\0' || errno || v < lo || v > hi) {
        fprintf(stderr, "nstack-check: %s %s: expected a number from %ld to %ld\n", opt, a, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* Options; returns -1 on a usage error. */
static int parse(int argc, char **argv, struct check_opts *o, int *optend)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        long v;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(EX_OK);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "nstack-check: %s needs an argument\n", a);
            return -1;
        }
        const char *arg = argv[++i];
        if (strcmp(a, "--config") == 0)
            o->config = arg;
        else if (strcmp(a, "--serve") == 0 && parse_num(a, arg, 1, 65535, &v) == 0)
            o->serve_port = (int)v;
        else if (strcmp(a, "--count") == 0 && parse_num(a, arg, 1, INT_MAX, &v) == 0)
            o->count = (int)v;
        else if (strcmp(a, "--bytes") == 0 && parse_num(a, arg, 1, 1L << 30, &v) == 0)
            o->bytes = v;
        else if (strcmp(a, "--timeout") == 0 && parse_num(a, arg, 1, 3600, &v) == 0)
            o->timeout = (int)v;
        else {
            if (strcmp(a, "--config") && strcmp(a, "--serve") && strcmp(a, "--count") && strcmp(a, "--bytes") &&
                strcmp(a, "--timeout"))
                fprintf(stderr, "nstack-check: unknown option '%s'\n", a);
            return -1;
        }
    }
    *optend = i;
    if (o->serve_port == 0 && i != argc - 1) {
        fprintf(stderr, "nstack-check: expected one HOST:PORT (or --serve PORT)\n");
        return -1;
    }
    if (o->serve_port != 0 && i != argc) {
        fprintf(stderr, "nstack-check: --serve takes no HOST:PORT\n");
        return -1;
    }
    o->target = o->serve_port ? NULL : argv[i];
    return 0;
}

int main(int argc, char **argv)
{
    struct check_opts o = { .bytes = 65536, .timeout = 20 };
    int optend;
    if (parse(argc, argv, &o, &optend) < 0) {
        usage(stderr);
        return EX_ERR;
    }
    if (!check_under_preload())
        return check_reexec(argc, argv, o.config);   /* returns only on failure */
    if (o.config != NULL)
        check_config_env(o.config);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    if (o.serve_port)
        return check_serve(&o);
    alarm((unsigned)o.timeout);
    return check_client(&o);
}
