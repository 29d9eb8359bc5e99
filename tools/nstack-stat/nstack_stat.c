/* nstack-stat - counters and per-connection records of processes running
 * under libnStackAPI.so (from /dev/shm/nstack-stat.<pid>, layout in
 * include/nstack/nstack_stats.h). Manual: doc/man/nstack-stat.1.
 *
 *   nstack-stat [-c] [-j] [-w SECONDS [-n COUNT]] [PID...]
 *
 * Without PID: every live process using the framework. Exit status: 0 if
 * at least one process was shown (every named PID, when PIDs are given),
 * 1 if none / a named PID does not run the framework, 2 on a usage error. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nstat.h"

#define MAX_PIDS 256

struct opts {
    int conns, json;
    double wait;            /* -w seconds, 0: one sample */
    long count;             /* -n samples, 0: until interrupted */
    int n_pids;
    int pids[MAX_PIDS];
    int named;              /* PIDs given on the command line */
};

static void usage(FILE *f)
{
    fprintf(f, "usage: nstack-stat [-c] [-j] [-w SECONDS [-n COUNT]] [PID...]\n"
               "  (no PID)     every process using libnStackAPI.so\n"
               "  -c           per-connection list: stack, state, why not accelerated\n"
               "  -j           JSON (one document per sample)\n"
               "  -w SECONDS   refresh every SECONDS, with rates and deltas since the last sample\n"
               "  -n COUNT     stop after COUNT samples (with -w)\n");
}

static int parse_pid(const char *a, int *pid)
{
    char *end;
    errno = 0;
    long v = strtol(a, &end, 10);
    if (*a == '\0' || *end != '\0' || errno || v <= 0 || v > 0x7fffffff)
        return -1;
    *pid = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    int c;
    while ((c = getopt(argc, argv, "cjw:n:h")) != -1) {
        char *end;
        switch (c) {
        case 'c': o->conns = 1; break;
        case 'j': o->json = 1; break;
        case 'w':
            o->wait = strtod(optarg, &end);
            if (*optarg == '\0' || *end != '\0' || !(o->wait > 0) || o->wait > 86400) {
                fprintf(stderr, "nstack-stat: -w %s: expected seconds between 0 and 86400\n", optarg);
                return -1;
            }
            break;
        case 'n':
            o->count = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || o->count <= 0) {
                fprintf(stderr, "nstack-stat: -n %s: expected a positive count\n", optarg);
                return -1;
            }
            break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    for (int i = optind; i < argc; i++) {
        if (o->n_pids == MAX_PIDS || parse_pid(argv[i], &o->pids[o->n_pids]) < 0) {
            fprintf(stderr, "nstack-stat: \"%s\" is not a pid (or more than %d pids)\n", argv[i], MAX_PIDS);
            return -1;
        }
        o->n_pids++;
    }
    o->named = o->n_pids > 0;
    if (o->count && !o->wait)
        o->wait = 1;
    return 0;
}

/* Every pid with a segment in /dev/shm. */
static int find_pids(int *pids, int max)
{
    DIR *d = opendir("/dev/shm");
    if (d == NULL) {
        fprintf(stderr, "nstack-stat: /dev/shm: %s\n", strerror(errno));
        return 0;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        int pid;
        char tail;
        if (sscanf(e->d_name, "nstack-stat.%d%c", &pid, &tail) == 1 && pid > 0)
            pids[n++] = pid;
    }
    closedir(d);
    return n;
}

/* One sample of every process; prev[] holds the last sample per index. */
static int sample(const struct opts *o, struct snapshot *cur, struct snapshot *prev, int *have_prev, int round)
{
    int pids[MAX_PIDS];
    int n = o->named ? o->n_pids : find_pids(pids, MAX_PIDS);
    const int *list = o->named ? o->pids : pids;
    int shown = 0, missing = 0;
    if (o->json)
        printf("{\"sample\":%d,\"processes\":[", round);
    for (int i = 0; i < n; i++) {
        if (snap_read(list[i], cur, !o->named) < 0) {
            missing++;
            continue;
        }
        /* deltas only against the same process in the same position */
        int p = -1;
        for (int k = 0; k < MAX_PIDS && have_prev; k++)
            if (have_prev[k] && prev[k].pid == cur->pid)
                p = k;
        struct view v = { .conns = o->conns, .json = o->json, .prev = p >= 0 ? &prev[p] : NULL };
        if (o->json) {
            if (shown)
                putchar(',');
            print_json(stdout, cur, &v);
        } else {
            print_text(stdout, cur, &v);
        }
        shown++;
        if (have_prev != NULL) {
            int slot = p >= 0 ? p : i;
            prev[slot] = *cur;
            have_prev[slot] = 1;
        }
    }
    if (o->json)
        printf("]}\n");
    fflush(stdout);
    if (shown == 0 && !o->named)
        fprintf(stderr, "nstack-stat: no live process is using libnStackAPI.so sockets\n");
    return shown > 0 && (!o->named || missing == 0) ? 0 : 1;
}

static void nap(double s)
{
    struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int main(int argc, char **argv)
{
    static struct opts o;
    if (parse_args(argc, argv, &o) < 0)
        return 2;
    struct snapshot *cur = malloc(sizeof(*cur));
    /* the previous samples, for -w only (untouched pages cost nothing) */
    struct snapshot *prev = o.wait ? calloc(MAX_PIDS, sizeof(*prev)) : NULL;
    int *have_prev = o.wait ? calloc(MAX_PIDS, sizeof(int)) : NULL;
    if (cur == NULL || (o.wait && (prev == NULL || have_prev == NULL))) {
        fprintf(stderr, "nstack-stat: out of memory\n");
        return 2;
    }
    int rc = 0;
    for (long round = 1;; round++) {
        rc = sample(&o, cur, prev, have_prev, (int)round);
        if (!o.wait || (o.count && round >= o.count))
            break;
        nap(o.wait);
        if (!o.json)
            putchar('\n');
    }
    free(cur);
    free(prev);
    free(have_prev);
    return rc;
}
