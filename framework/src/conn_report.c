/* conn_report.c - the exit report: connections that were not accelerated,
 * counted per (state, reason, rule) as they end up so (conn_stats.c), and
 * printed at exit with the setting that changes each (stats.c calls
 * conn_stats_report from its exit handler). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conn_stats.h"
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

void conn_report_fork_child(void)
{
    pthread_mutex_init(&g_tally_lock, NULL);
    g_n_tally = 0;
    g_tally_lost = 0;
}

/* ---- exit report -------------------------------------------------------- */

static const char *advice(int reason)
{
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
    case NSTAT_R_FORK: return "anchored connections (the default) or NSTACK_FORK_SUPPORT=1 survive fork";
    case NSTAT_R_CONFIG: return "check the files with nstack-route --check";
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
    return reason != NSTAT_R_NONE && reason != NSTAT_R_NO_ROUTE && reason != NSTAT_R_ROUTE_KERNEL;
}

/* NSTACK_STATS=1: every line on stderr, beside the per-stack totals;
 * otherwise only the notable ones, as warnings. */
static void report_line(int verbose, int is_notable, const char *text)
{
    if (verbose) {
        char line[512];
        int n = snprintf(line, sizeof(line), "nstack[%d]: stats: %s\n", (int)getpid(), text);
        if (n > (int)sizeof(line) - 1)
            n = (int)sizeof(line) - 1;
        (void)!LIBC(write)(2, line, (size_t)n);
    } else if (is_notable) {
        fw_log(NSTACK_LOG_WAR, NULL, "%s", text);
    }
}

void conn_stats_report(int verbose)
{
    char text[400];
    pthread_mutex_lock(&g_tally_lock);
    for (int i = 0; i < g_n_tally; i++) {
        const struct tally *t = &g_tally[i];
        char target[NSTAT_RULE + 16];
        rule_target(t->rule, target, sizeof(target));
        snprintf(text, sizeof(text), "report: %llu connection%s %s %s: %s (%s)", t->n, t->n == 1 ? "" : "s",
                 target, t->state == NSTAT_ST_STAYED_TCP ? "stayed on TCP" : "used the kernel",
                 nstat_reason_text((unsigned)t->reason), advice(t->reason));
        report_line(verbose, notable(t->reason), text);
    }
    if (g_tally_lost > 0) {
        snprintf(text, sizeof(text), "report: %llu more connections not accelerated (report table full)",
                 g_tally_lost);
        report_line(verbose, 1, text);
    }
    pthread_mutex_unlock(&g_tally_lock);
    struct nstat_shm *s = g_stat_shm;
    if (s != NULL && s->conn_overflow > 0) {
        snprintf(text, sizeof(text), "report: %llu connections were not recorded: all %d records in use",
                 (unsigned long long)s->conn_overflow, NSTAT_CONNS);
        report_line(verbose, 0, text);   /* a busy process, not an anomaly: NSTACK_STATS=1 only */
    }
}
