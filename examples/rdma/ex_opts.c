/* Command line options and failure reporting for the RDMA examples. */
#include "ex_common.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void print_reason(const char *fmt, va_list ap, int err)
{
    fprintf(stderr, "%s: ", program_invocation_short_name);
    vfprintf(stderr, fmt, ap);
    if (err)
        fprintf(stderr, ": %s", strerror(err));
    fputc('\n', stderr);
}

void ex_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_reason(fmt, ap, 0);
    va_end(ap);
    exit(1);
}

void ex_fail_errno(const char *fmt, ...)
{
    int err = errno;   /* saved before anything else can change it */
    va_list ap;
    va_start(ap, fmt);
    print_reason(fmt, ap, err ? err : EIO);
    va_end(ap);
    exit(1);
}

static void usage_error(const char *usage, const char *reason, const char *arg)
{
    if (arg)
        fprintf(stderr, "%s: %s '%s'\n%s", program_invocation_short_name, reason, arg, usage);
    else
        fprintf(stderr, "%s: %s\n%s", program_invocation_short_name, reason, usage);
    exit(2);
}

/* Parses a decimal number in [min, max]; anything else is a usage error. */
static long parse_number(const char *usage, char opt, const char *arg, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < min || v > max) {
        char what[64];
        snprintf(what, sizeof(what), "option -%c: expected %ld..%ld, got", opt, min, max);
        usage_error(usage, what, arg);
    }
    return v;
}

void ex_parse_opts(int argc, char **argv, const struct ex_opts *defaults,
                   const char *usage, struct ex_opts *out)
{
    bool mode_given = false;
    int c;

    *out = *defaults;
    opterr = 0;   /* we print our own one-line reason */
    while ((c = getopt(argc, argv, "sc:a:p:n:S:t:k:w:h")) != -1) {
        switch (c) {
        case 's': out->server = true; mode_given = true; break;
        case 'c': out->server = false; out->addr = optarg; mode_given = true; break;
        case 'a': out->addr = optarg; break;
        case 'p': parse_number(usage, 'p', optarg, 1, 65535); out->port = optarg; break;
        case 'n': out->iterations = (int)parse_number(usage, 'n', optarg, 1, 10000000); break;
        case 'S': out->size = (size_t)parse_number(usage, 'S', optarg, 16, 64L << 20); break;
        case 't': out->timeout_s = (int)parse_number(usage, 't', optarg, 1, 3600); break;
        case 'k': out->clients = (int)parse_number(usage, 'k', optarg, 1, 1000); break;
        case 'w': out->window = (int)parse_number(usage, 'w', optarg, 1, 1000); break;
        case 'h': fputs(usage, stdout); exit(0);
        default: {
            char opt[3] = { '-', (char)optopt, 0 };
            usage_error(usage, "unknown option or missing argument:", opt);
        }
        }
    }
    if (optind < argc)
        usage_error(usage, "unexpected argument", argv[optind]);
    if (!mode_given)
        usage_error(usage, "choose a mode: -s (server) or -c ADDR (client)", NULL);
    if (!out->server && !out->addr)
        usage_error(usage, "client mode needs the server address", "-c");
    struct sockaddr_storage check;   /* bad addresses fail here, before any device work */
    ex_sockaddr(out->addr, out->port, &check);
}

void ex_sockaddr(const char *addr, const char *port, struct sockaddr_storage *ss)
{
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                              .ai_socktype = SOCK_STREAM };
    struct addrinfo *res;
    int rc = getaddrinfo(addr ? addr : "0.0.0.0", port, &hints, &res);
    if (rc)
        ex_fail("address '%s' port '%s': %s", addr ? addr : "0.0.0.0", port, gai_strerror(rc));
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
}
