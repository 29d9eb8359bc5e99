/*
 * perf_opts.h - the DMM perf-test command line shared by vc_common and the
 * vs_* servers: getopt "p:d:s:a:l:t:e:i:f:r:n:w:u:x:" with DMM's meanings,
 * plus --timeout=SEC (see app_timeout.h). Every app accepts every flag;
 * the ones a side does not use are accepted and ignored, so the same
 * command line works on both machines as in DMM's docs.
 */
#ifndef PERF_OPTS_H
#define PERF_OPTS_H

#include <stdbool.h>
#include <stddef.h>

#define PERF_MSG_MAX   65536   /* largest -l */
#define PERF_FDS_MAX   1024    /* largest -f / -n */

struct perf_opts {
    const char *dst_ip;     /* -d destination IP (client) */
    int dst_port;           /* -p destination port (client) */
    const char *bind_ip;    /* -s own IP to bind (NULL: wildcard/none) */
    int src_port_base;      /* -a client source port base, a+i per fd (0: any) */
    size_t msg_len;         /* -l message length in bytes */
    long count;             /* -t messages per connection (server: 0 = until EOF) */
    long sleep_every;       /* -e apply -i every e iterations */
    long sleep_us;          /* -i usleep microseconds (0: never) */
    int fds;                /* -f client connections */
    int srv_port;           /* -r server listen port */
    int accept_n;           /* -n connections the server serves */
    long unused_w;          /* -w accepted for compatibility, unused */
    long print_every;       /* -u report every u messages (0: never) */
    bool print;             /* -x print flag: periodic reports on */
};

enum perf_role { PERF_CLIENT, PERF_SERVER };

/* Parse argv into *o (defaults first). Exits with APP_EXIT_USAGE and one
 * line on any invalid flag or value; also applies --timeout/VS_TIMEOUT. */
void perf_opts_parse(int argc, char **argv, enum perf_role role,
                     struct perf_opts *o);

#endif /* PERF_OPTS_H */
