/*
 * route_args.h - the command line of nstack-route.
 */
#ifndef NSTACK_ROUTE_ARGS_H
#define NSTACK_ROUTE_ARGS_H

#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

struct route_args {
    const char *module_file;        /* -m, NULL: environment/default */
    const char *rd_file;            /* -r */
    int check;                      /* --check */
    int dump;                       /* --dump */
    const char *verb;               /* "bind" or "connect" */
    const char *addr_text;          /* as typed, NULL: no lookup */
    struct sockaddr_storage addr;
    int sock_type;                  /* SOCK_STREAM or SOCK_DGRAM */
};

/* Fills `a`; on a usage error prints one line to stderr and returns -1. */
int route_args_parse(int argc, char **argv, struct route_args *a);

/* ADDR, ADDR:PORT, [IPV6] or [IPV6]:PORT into a sockaddr; 0 or -1. */
int route_parse_endpoint(const char *text, struct sockaddr_storage *out);

void route_usage(FILE *f);

#endif
