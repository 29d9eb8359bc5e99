/* stats.c - the counters segment /dev/shm/nstack-stat.<pid>.
 * NSTACK_STATS=1 also prints the totals to the log at exit. */
#include "stats.h"

#include "conn_stats.h"
#include "stats_settings.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"

__thread struct nstat_slot *t_stat_slot;
/* Set once in stats_start() (under fw_start's pthread_once) and replaced
 * only in a fork child (single-threaded there); read lock-free. */
struct nstat_shm *g_stat_shm;

static char g_stat_path[64];
static int g_stat_exit_registered;

static struct nstat_shm *stats_map(void)
{
    snprintf(g_stat_path, sizeof(g_stat_path), NSTAT_PATH_FMT, (int)getpid());
    int fd = open(g_stat_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    void *mem = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, sizeof(struct nstat_shm)) == 0)
        mem = mmap(NULL, sizeof(struct nstat_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd >= 0)
        LIBC(close)(fd);
    if (mem == MAP_FAILED) {
        fw_log(NSTACK_LOG_WAR, NULL, "%s: %s; counters kept in private memory", g_stat_path, strerror(errno));
        if (fd >= 0)
            unlink(g_stat_path);
        g_stat_path[0] = '\0';
        mem = mmap(NULL, sizeof(struct nstat_shm), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
            return NULL;
    }
    return mem;
}

static void stats_fill_header(struct nstat_shm *s)
{
    s->version = NSTAT_VERSION;
    s->pid = (int32_t)getpid();
    s->n_stacks = g_n_stacks < NSTAT_STACKS ? g_n_stacks : NSTAT_STACKS;
    for (int i = 0; i < s->n_stacks; i++)
        snprintf(s->names[i], NSTAT_NAME, "%.31s", g_stacks[i].name);
    FILE *f = fopen("/proc/self/comm", "re");
    if (f != NULL) {
        if (fgets(s->comm, NSTAT_NAME, f) != NULL)
            s->comm[strcspn(s->comm, "\n")] = '\0';
        fclose(f);
    }
    __atomic_store_n(&s->magic, NSTAT_MAGIC, __ATOMIC_RELEASE);
}

static void stats_dump(void)
{
    struct nstat_shm *s = g_stat_shm;
    for (int st = 0; st < s->n_stacks; st++) {
        uint64_t t[NSTAT_N] = { 0 };
        for (int i = 0; i < NSTAT_SLOTS; i++)
            for (int c = 0; c < NSTAT_N; c++)
                t[c] += __atomic_load_n(&s->slots[i].c[st][c], __ATOMIC_RELAXED);
        char line[256];
        int n = snprintf(line, sizeof(line),
                         "nstack[%d]: stats: stack %s: sockets %llu connect %llu accept %llu tx_bytes %llu rx_bytes %llu\n",
                         (int)getpid(), s->names[st], (unsigned long long)t[NSTAT_SOCKETS],
                         (unsigned long long)t[NSTAT_CONN_OUT], (unsigned long long)t[NSTAT_CONN_IN],
                         (unsigned long long)t[NSTAT_TX_BYTES], (unsigned long long)t[NSTAT_RX_BYTES]);
        (void)!LIBC(write)(2, line, (size_t)n);
        /* A line of its own: the line above keeps its format for scripts. */
        if (t[NSTAT_FALLBACK] > 0) {
            n = snprintf(line, sizeof(line), "nstack[%d]: stats: connect fallbacks to %s: %llu\n",
                         (int)getpid(), s->names[st], (unsigned long long)t[NSTAT_FALLBACK]);
            (void)!LIBC(write)(2, line, (size_t)n);
        }
        if (t[NSTAT_ANCHORED] + t[NSTAT_ANCHOR_TCP] > 0) {
            n = snprintf(line, sizeof(line),
                         "nstack[%d]: stats: anchored on %s: %lld, stayed on TCP: %llu\n",
                         (int)getpid(), s->names[st], (long long)(int64_t)t[NSTAT_ANCHORED],
                         (unsigned long long)t[NSTAT_ANCHOR_TCP]);
            (void)!LIBC(write)(2, line, (size_t)n);
        }
    }
}

static void stats_at_exit(void)
{
    if (g_stat_shm == NULL)
        return;
    const char *e = getenv("NSTACK_STATS");
    int verbose = e != NULL && strcmp(e, "1") == 0;
    if (verbose) {
        stats_dump();
        stats_settings_report();
    }
    conn_stats_report(verbose);
    if (g_stat_path[0] != '\0' && g_stat_shm->pid == (int32_t)getpid())
        unlink(g_stat_path);
}

/* Segments of processes that were killed (no atexit) would pile up in
 * /dev/shm: remove those whose pid no longer exists. Runs once per process,
 * at framework start. */
static void stats_sweep_stale(void)
{
    DIR *d = opendir("/dev/shm");
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int pid;
        char tail;
        if (sscanf(e->d_name, "nstack-stat.%d%c", &pid, &tail) != 1 || pid <= 0 || pid == (int)getpid())
            continue;
        if (kill(pid, 0) < 0 && errno == ESRCH && unlinkat(dirfd(d), e->d_name, 0) == 0)
            LOG_DBG("removed the counters of dead process %d", pid);
    }
    closedir(d);
}

void stats_start(void)
{
    stats_sweep_stale();
    struct nstat_shm *s = stats_map();
    if (s == NULL)
        return;
    stats_fill_header(s);
    stats_settings_attach(s, 0);
    __atomic_store_n(&g_stat_shm, s, __ATOMIC_RELEASE);
    if (!g_stat_exit_registered) {
        g_stat_exit_registered = 1;
        atexit(stats_at_exit);
    }
}

struct nstat_slot *stats_slot_claim(void)
{
    struct nstat_shm *s = __atomic_load_n(&g_stat_shm, __ATOMIC_ACQUIRE);
    if (s == NULL)
        return NULL;
    uint64_t tid = (uint64_t)syscall(SYS_gettid);
    for (int i = 1; i < NSTAT_SLOTS; i++) {
        uint64_t zero = 0;
        if (__atomic_compare_exchange_n(&s->slots[i].owner, &zero, tid, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            t_stat_slot = &s->slots[i];
            return t_stat_slot;
        }
    }
    t_stat_slot = &s->slots[0];       /* shared overflow slot */
    return t_stat_slot;
}

void stats_confine(void)
{
    struct nstat_shm *s = __atomic_load_n(&g_stat_shm, __ATOMIC_ACQUIRE);
    if (s == NULL || g_stat_path[0] == '\0' || s->pid != (int32_t)getpid())
        return;
    unlink(g_stat_path);
    g_stat_path[0] = '\0';
}

void stats_fork_child(void)
{
    if (g_stat_shm == NULL)
        return;
    struct nstat_shm *old = g_stat_shm;
    struct nstat_shm *s = stats_map();
    if (s == NULL)
        return;
    stats_fill_header(s);
    conn_stats_fork_child(old, s);
    stats_settings_attach(s, 1);
    g_stat_shm = s;
    /* Only the forking thread exists in the child: its slot is re-claimed. */
    t_stat_slot = NULL;
    munmap(old, sizeof(*old));
}
