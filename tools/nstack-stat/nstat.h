/* nstat.h - nstack-stat's snapshot of one process's stats segment
 * (include/nstack/nstack_stats.h) and its outputs. */
#ifndef NSTAT_TOOL_H
#define NSTAT_TOOL_H

#include <stdint.h>
#include <stdio.h>

#include "nstack/nstack_stats.h"

struct snap_stack {
    char name[NSTAT_NAME + 1];
    uint64_t t[NSTAT_N];
};

struct snapshot {
    int pid;
    char comm[NSTAT_NAME + 1];
    int n_stacks;
    struct snap_stack stacks[NSTAT_STACKS];
    uint64_t conn_overflow, conn_recorded;
    int n_conns;
    struct nstat_conn conns[NSTAT_CONNS];   /* in_use records, consistent copies */
    int n_settings;
    uint32_t settings_lost;
    struct nstat_setting settings[NSTAT_SETTINGS];   /* tunables that differ from their defaults */
    double when;                            /* CLOCK_MONOTONIC seconds */
};

/* Reads pid's segment. 0 ok; -1 with one line on stderr unless quiet. */
int snap_read(int pid, struct snapshot *s, int quiet);

struct view {
    int conns;                  /* -c */
    int json;                   /* -j */
    const struct snapshot *prev;/* -w: the previous sample of the same pid, or NULL */
};

/* A record's traffic summed over its paths. */
struct nstat_traffic conn_total(const struct nstat_conn *c);

void print_text(FILE *out, const struct snapshot *s, const struct view *v);
/* One JSON object for the process (no trailing newline). */
void print_json(FILE *out, const struct snapshot *s, const struct view *v);

#endif
