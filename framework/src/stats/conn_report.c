/* conn_report.c - the exit report: connections that were not accelerated,
 * counted per (state, reason, rule) as they end up so (conn_stats.c), the
 * connections whose bytes went mostly over the kernel on a module's route,
 * each by name, and all printed at exit with the setting that changes each
 * (stats.c calls conn_stats_report from its exit handler). */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conn_stats.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"

/* ---- the exit report's tally (private memory) ----------------------------
 * One line per (state, reason, rule); guarded by g_tally_lock, taken only
 * when a connection ends up not accelerated. */

#define TALLY_MAX 32
struct tally {
    int state, reason;
    char rule[NSTAT_RULE];
    unsigned long long n;
};
static struct tally g_tally[TALLY_MAX];
static int g_n_tally;
static unsigned long long g_tally_lost;
static pthread_mutex_t g_tally_lock = PTHREAD_MUTEX_INITIALIZER;

/* Connections named in the report (bulk over the kernel on a module's
 * route): the first NAMED_MAX lines, then a count; under g_tally_lock. */
#define NAMED_MAX 8
#define NAMED_LEN 320
static struct named {
    int state, reason;
    char text[NAMED_LEN];
} g_named[NAMED_MAX];
static int g_n_named;
static unsigned long long g_named_more;

void conn_report_add(int state, int reason, const char *rule)
{
    if (reason == NSTAT_R_NONE)
        return;
    pthread_mutex_lock(&g_tally_lock);
    int i = 0;
    while (i < g_n_tally && !(g_tally[i].state == state && g_tally[i].reason == reason &&
                              strcmp(g_tally[i].rule, rule) == 0))
        i++;
    if (i == g_n_tally && g_n_tally < TALLY_MAX) {
        g_tally[i].state = state;
        g_tally[i].reason = reason;
        snprintf(g_tally[i].rule, sizeof(g_tally[i].rule), "%s", rule);
        g_n_tally++;
    }
    if (i < g_n_tally)
        g_tally[i].n++;
    else
        g_tally_lost++;
    pthread_mutex_unlock(&g_tally_lock);
}

static void addr_text(const struct nstat_conn *c, int peer, char *out, size_t n)
{
    char a[INET6_ADDRSTRLEN] = "?";
    const uint8_t *raw = peer ? c->raddr : c->laddr;
    unsigned port = peer ? c->rport : c->lport;
    int v6 = c->family == AF_INET6;
    inet_ntop(v6 ? AF_INET6 : AF_INET, raw, a, sizeof(a));
    snprintf(out, n, v6 ? "[%s]:%u" : "%s:%u", a, port);
}

static uint64_t path_bytes(const struct nstat_conn *c, int p)
{
    return c->path[p].tx_bytes + c->path[p].rx_bytes;
}

/* A stream whose route names a module, with more bytes over the kernel
 * than over the module: the user expected RDMA and got TCP. */
static int bulk_over_kernel(const struct nstat_conn *c)
{
    int st = c->route_stack;
    return c->type == SOCK_STREAM && st >= 0 && st < g_n_stacks && !g_stacks[st].is_kernel &&
           path_bytes(c, NSTAT_PATH_KERNEL) > path_bytes(c, NSTAT_PATH_MODULE);
}

void conn_report_conn(const struct nstat_conn *c)
{
    if (!bulk_over_kernel(c))
        return;
    char l[64], r[64];
    addr_text(c, 0, l, sizeof(l));
    addr_text(c, 1, r, sizeof(r));
    uint64_t k = path_bytes(c, NSTAT_PATH_KERNEL), m = path_bytes(c, NSTAT_PATH_MODULE);
    pthread_mutex_lock(&g_tally_lock);
    if (g_n_named < NAMED_MAX) {
        struct named *e = &g_named[g_n_named++];
        e->state = c->state;
        e->reason = c->reason;
        snprintf(e->text, sizeof(e->text), "connection %s %s %s (%s): %llu of %llu bytes over kernel TCP, %llu over %s",
                 l, c->inbound ? "<-" : "->", r, c->rule, (unsigned long long)k, (unsigned long long)(k + m),
                 (unsigned long long)m, g_stacks[c->route_stack].name);
    } else {
        g_named_more++;
    }
    pthread_mutex_unlock(&g_tally_lock);
}

void conn_report_fork_child(void)
{
    pthread_mutex_init(&g_tally_lock, NULL);
    g_n_tally = 0;
    g_tally_lost = 0;
    g_n_named = 0;
    g_named_more = 0;
}

/* ---- exit report -------------------------------------------------------- */

/* What changes it. A connection that stayed on TCP for a fork/exec was
 * upgraded and returned to TCP (anchor_fork.c); other fork/exec cases are
 * module sockets a child cannot use. */
static const char *advice(int state, int reason)
{
    if (reason == NSTAT_R_FORK && state == NSTAT_ST_STAYED_TCP)
        return "an upgraded connection returns to TCP when its process forks or execs; fork before the "
               "first data call to keep it on RDMA in the process that uses it";
    switch (reason) {
    case NSTAT_R_NO_ROUTE: return "add an ip_route for the subnet to carry it on a module";
    case NSTAT_R_ROUTE_KERNEL: return "the rule in rd_config.json says kernel";
    case NSTAT_R_TYPE: return "the module does not carry this socket type; route it to kernel to silence this";
    case NSTAT_R_PEER: return "run the framework on the peer, or route the subnet to kernel";
    case NSTAT_R_NO_DEVICE: return "check the RDMA device (ibv_devices) and the module's libraries; NSTACK_LOG_ON=INF shows the module's error";
    case NSTAT_R_NOT_RDMA_ADDR: return "use an address of an RDMA port, or route it to kernel";
    case NSTAT_R_MEMLOCK: return "raise the locked-memory limit (ulimit -l, LimitMEMLOCK=)";
    case NSTAT_R_FD_LIMIT: return "raise the descriptor limit (ulimit -n)";
    case NSTAT_R_CONNECT_FB: return "the peer's RDMA side refused or is unreachable; remove \"fallback\" from the route to make it an error";
    case NSTAT_R_FORK: return "anchored connections (the default) survive fork";
    case NSTAT_R_CONFIG: return "check the files with nstack-route --check";
    case NSTAT_R_UNUSED: return "no data call was made: nothing to accelerate";
    default: return "NSTACK_LOG_ON=INF shows the module's error";
    }
}

/* "ip_route[0] 192.168.21.0/24 -> rsocket" -> "to 192.168.21.0/24"; other
 * rules -> "(rule: ...)". */
static void rule_target(const char *rule, char *out, size_t n)
{
    const char *sp = strchr(rule, ' ');
    const char *arrow = strstr(rule, " -> ");
    if (strncmp(rule, "ip_route[", 9) == 0 && sp != NULL && arrow != NULL && arrow > sp)
        snprintf(out, n, "to %.*s", (int)(arrow - sp - 1), sp + 1);
    else
        snprintf(out, n, "(rule: %.*s)", (int)n - 10, rule);
}

static int notable(int reason)
{
    return reason != NSTAT_R_NONE && reason != NSTAT_R_NO_ROUTE && reason != NSTAT_R_ROUTE_KERNEL &&
           reason != NSTAT_R_UNUSED;
}

static const char *outcome(int state, int reason)
{
    if (reason == NSTAT_R_UNUSED)
        return "never used";
    if (state == NSTAT_ST_FAILED)
        return "failed to move to the module";
    return state == NSTAT_ST_STAYED_TCP ? "stayed on TCP" : "used the kernel";
}

/* NSTACK_STATS=1: every line on stderr, beside the per-stack totals;
 * otherwise only the notable ones, as warnings. */
static void report_line(int verbose, int is_notable, const char *text)
{
    if (verbose) {
        char line[1024];
        int n = snprintf(line, sizeof(line), "nstack[%d]: stats: %s\n", (int)getpid(), text);
        if (n > (int)sizeof(line) - 1)
            n = (int)sizeof(line) - 1;
        (void)!LIBC(write)(2, line, (size_t)n);
    } else if (is_notable) {
        fw_log(NSTACK_LOG_WAR, NULL, "%s", text);
    }
}

/* The named connections; caller holds g_tally_lock. */
static void report_named(int verbose)
{
    char text[NAMED_LEN + 300];
    for (int i = 0; i < g_n_named; i++) {
        const struct named *e = &g_named[i];
        if (e->reason != NSTAT_R_NONE)
            snprintf(text, sizeof(text), "report: %s: %s (%s)", e->text, nstat_reason_text((unsigned)e->reason),
                     advice(e->state, e->reason));
        else
            snprintf(text, sizeof(text), "report: %s", e->text);
        report_line(verbose, e->reason == NSTAT_R_NONE || notable(e->reason), text);
    }
    if (g_named_more > 0) {
        snprintf(text, sizeof(text), "report: %llu more connections moved most of their bytes over kernel TCP "
                 "on a module's route (nstack-stat -c shows each)", g_named_more);
        report_line(verbose, 1, text);
    }
}

void conn_stats_report(int verbose)
{
    char text[600];
    conn_stats_finish_all();
    pthread_mutex_lock(&g_tally_lock);
    for (int i = 0; i < g_n_tally; i++) {
        const struct tally *t = &g_tally[i];
        char target[NSTAT_RULE + 16];
        rule_target(t->rule, target, sizeof(target));
        snprintf(text, sizeof(text), "report: %llu connection%s %s %s: %s (%s)", t->n, t->n == 1 ? "" : "s",
                 target, outcome(t->state, t->reason), nstat_reason_text((unsigned)t->reason),
                 advice(t->state, t->reason));
        report_line(verbose, notable(t->reason), text);
    }
    if (g_tally_lost > 0) {
        snprintf(text, sizeof(text), "report: %llu more connections not accelerated (report table full)",
                 g_tally_lost);
        report_line(verbose, 1, text);
    }
    report_named(verbose);
    pthread_mutex_unlock(&g_tally_lock);
    struct nstat_shm *s = g_stat_shm;
    if (s != NULL && s->conn_overflow > 0) {
        snprintf(text, sizeof(text), "report: %llu connections were not recorded: all %d records in use",
                 (unsigned long long)s->conn_overflow, NSTAT_CONNS);
        report_line(verbose, 0, text);   /* a busy process, not an anomaly: NSTACK_STATS=1 only */
    }
}
