/*
 * route_args.c - parsing nstack-route's command line and endpoints.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route_args.h"

void route_usage(FILE *f)
{
    fputs("usage: nstack-route [-m module_config.json] [-r rd_config.json]\n"
          "                    [--check] [--dump] [bind|connect] ADDR[:PORT] [tcp|udp]\n"
          "                    [--check] [--dump] listen [ADDR[:PORT]] [tcp]\n"
          "       bind to a wildcard address (0.0.0.0, ::) decides nothing: at\n"
          "       listen the socket listens on its prot_route/default stack and on\n"
          "       every module an ip_route sends a local address to (unless\n"
          "       \"multi_stack_listen\": false); at connect/sendto the destination\n"
          "       decides - exactly as libnStackAPI.so does.\n"
          "       ADDR is IPv4 or IPv6; with a port, IPv6 is written [ADDR]:PORT.\n"
          "       Without -m/-r: $NSTACK_MOD_CFG_FILE / $NSTACK_MOD_CFG_RD, then\n"
          "       ./module_config.json and ./rd_config.json, as libnStackAPI.so does.\n"
          "       --check reads both files as libnStackAPI.so does; their format is\n"
          "       described by the JSON Schemas module_config.schema.json and\n"
          "       rd_config.schema.json (config/ in the source tree, share/nstack/\n"
          "       when installed), for editors and CI; see doc/configuration.md.\n"
          "exit status: 0 valid configuration, 1 invalid configuration, 2 usage error\n",
          f);
}

/* "20000" → 20000; -1 unless 0..65535 written in decimal digits. */
static int route_parse_port(const char *s)
{
    long v = 0;

    if (!*s || strlen(s) > 5)
        return -1;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v > 65535 ? -1 : (int)v;
}

static int route_fill(const char *host, int port, struct sockaddr_storage *out)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;

    memset(out, 0, sizeof(*out));
    if (port < 0)
        return -1;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    return -1;
}

int route_parse_endpoint(const char *text, struct sockaddr_storage *out)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon, *close;
    size_t n;

    if (text[0] == '[') {                      /* [v6] or [v6]:port */
        close = strchr(text, ']');
        if (!close || (size_t)(close - text - 1) >= sizeof(host))
            return -1;
        n = (size_t)(close - text - 1);
        memcpy(host, text + 1, n);
        host[n] = '\0';
        if (close[1] == '\0')
            return route_fill(host, 0, out);
        if (close[1] != ':')
            return -1;
        return route_fill(host, route_parse_port(close + 2), out);
    }
    colon = strchr(text, ':');
    if (!colon || strchr(colon + 1, ':'))    /* v4, or a bare v6 */
        return strlen(text) < sizeof(host) ? route_fill(text, 0, out) : -1;
    n = (size_t)(colon - text);
    if (n >= sizeof(host))
        return -1;
    memcpy(host, text, n);
    host[n] = '\0';
    return route_fill(host, route_parse_port(colon + 1), out);
}

static int route_usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "nstack-route: %s%s%s%s (try --help)\n", what,
            arg ? " \"" : "", arg ? arg : "", arg ? "\"" : "");
    return -1;
}

static int route_is_verb(const char *w)
{
    return !strcmp(w, "bind") || !strcmp(w, "connect") || !strcmp(w, "listen");
}

/* The positional words: [bind|connect] ADDR [tcp|udp], listen [ADDR] [tcp]. */
static int route_positional(struct route_args *a, const char *w)
{
    if (!a->addr_text && !a->verb && route_is_verb(w)) {
        a->verb = w;
        return 0;
    }
    if (!a->addr_text && a->sock_type == 0) {
        if (route_parse_endpoint(w, &a->addr) < 0)
            return route_usage_error("not an address (ADDR, ADDR:PORT, [IPV6]:PORT):", w);
        a->addr_text = w;
        return 0;
    }
    if (a->sock_type == 0 && (!strcmp(w, "tcp") || !strcmp(w, "udp"))) {
        a->sock_type = strcmp(w, "tcp") == 0 ? SOCK_STREAM : SOCK_DGRAM;
        return 0;
    }
    return route_usage_error("unexpected argument", w);
}

int route_args_parse(int argc, char **argv, struct route_args *a)
{
    int i;

    memset(a, 0, sizeof(*a));
    for (i = 1; i < argc; i++) {
        const char *w = argv[i];

        if (!strcmp(w, "-h") || !strcmp(w, "--help")) {
            route_usage(stdout);
            exit(0);
        } else if (!strcmp(w, "-m") || !strcmp(w, "-r")) {
            if (i + 1 >= argc)
                return route_usage_error("missing file after", w);
            *(w[1] == 'm' ? &a->module_file : &a->rd_file) = argv[++i];
        } else if (!strcmp(w, "--check")) {
            a->check = 1;
        } else if (!strcmp(w, "--dump")) {
            a->dump = 1;
        } else if (w[0] == '-' && w[1] != '\0') {
            return route_usage_error("unknown option", w);
        } else if (route_positional(a, w) < 0) {
            return -1;
        }
    }
    if (a->verb && !strcmp(a->verb, "listen") && !a->addr_text) {
        route_parse_endpoint("0.0.0.0", &a->addr);   /* listen without bind */
        a->addr_text = "0.0.0.0";
    }
    if (a->verb && !a->addr_text)
        return route_usage_error("missing ADDR after", a->verb);
    if (a->verb && !strcmp(a->verb, "listen") && a->sock_type == SOCK_DGRAM)
        return route_usage_error("listen is for tcp sockets, not", "udp");
    if (!a->addr_text && !a->check && !a->dump)
        return route_usage_error("nothing to do: give ADDR, --check or --dump", NULL);
    if (!a->verb)
        a->verb = "connect";
    if (!a->sock_type)
        a->sock_type = SOCK_STREAM;
    return 0;
}
