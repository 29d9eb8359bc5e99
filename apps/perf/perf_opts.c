/* perf_opts.c - DMM perf-test command line (see perf_opts.h). */
#include "perf_opts.h"

#include "app_fail.h"
#include "app_opts.h"
#include "app_timeout.h"
#include "num_parse.h"

#include <stdio.h>
#include <stdlib.h>

#define PERF_SHORT_OPTS "p:d:s:a:l:t:e:i:f:r:n:w:u:x:"

static void usage_line(void)
{
    fprintf(stderr,
            "usage: %s -p dst_port -d dst_ip -s bind_ip -a src_port_base "
            "-l msg_len -t count -i usleep_us -e every -f fds -r srv_port "
            "-n conns -w unused -u print_every -x print_flag [--timeout=SEC]\n",
            app_name);
}

static long want_long(int flag, const char *text, long min, long max)
{
    long v;
    if (!num_parse_long(text, min, max, &v)) {
        usage_line();
        app_die_bad_number(flag, text, min, max);
    }
    return v;
}

static void set_defaults(struct perf_opts *o)
{
    *o = (struct perf_opts){
        .dst_port = 20000, .src_port_base = 0, .msg_len = 200,
        .count = 1000, .sleep_every = 1, .sleep_us = 0, .fds = 1,
        .srv_port = 20000, .accept_n = 1, .print_every = 0, .print = false,
    };
}

/* One short option; false when the flag is not one of ours. */
static bool apply_flag(int c, const char *arg, struct perf_opts *o)
{
    switch (c) {
    case 'p': o->dst_port = (int)want_long(c, arg, 1, 65535); break;
    case 'd': o->dst_ip = arg; break;
    case 's': o->bind_ip = arg; break;
    case 'a': o->src_port_base = (int)want_long(c, arg, 0, 65535); break;
    case 'l': o->msg_len = (size_t)want_long(c, arg, 1, PERF_MSG_MAX); break;
    case 't': o->count = want_long(c, arg, 0, 1000000000L); break;
    case 'e': o->sleep_every = want_long(c, arg, 0, 1000000000L); break;
    case 'i': o->sleep_us = want_long(c, arg, 0, 10000000L); break;
    case 'f': o->fds = (int)want_long(c, arg, 1, PERF_FDS_MAX); break;
    case 'r': o->srv_port = (int)want_long(c, arg, 1, 65535); break;
    case 'n': o->accept_n = (int)want_long(c, arg, 1, PERF_FDS_MAX); break;
    case 'w': o->unused_w = want_long(c, arg, 0, 1000000000L); break;
    case 'u': o->print_every = want_long(c, arg, 0, 1000000000L); break;
    case 'x': o->print = want_long(c, arg, 0, 1000000000L) != 0; break;
    default: return false;
    }
    return true;
}

static void check_role(enum perf_role role, const struct perf_opts *o)
{
    if (role == PERF_CLIENT && o->dst_ip == NULL)
        app_die(APP_EXIT_USAGE, "-d: destination IP is required");
    if (role == PERF_CLIENT && o->count < 1)
        app_die(APP_EXIT_USAGE, "-t: the client needs at least 1 message");
    if (role == PERF_CLIENT && o->src_port_base > 0 &&
        o->src_port_base + o->fds - 1 > 65535)
        app_die(APP_EXIT_USAGE, "-a %d with -f %d: source ports pass 65535",
                o->src_port_base, o->fds);
}

void perf_opts_parse(int argc, char **argv, enum perf_role role,
                     struct perf_opts *o)
{
    const char *timeout = NULL;
    int c;
    set_defaults(o);
    while ((c = getopt_long(argc, argv, PERF_SHORT_OPTS, app_long_opts,
                            NULL)) != -1) {
        if (c == APP_OPT_TIMEOUT) {
            timeout = optarg;
        } else if (!apply_flag(c, optarg, o)) {
            usage_line();
            exit(APP_EXIT_USAGE);   /* getopt already named the bad flag */
        }
    }
    if (optind < argc)
        app_die(APP_EXIT_USAGE, "unexpected argument \"%s\"", argv[optind]);
    app_timeout_init(timeout);
    check_role(role, o);
}
