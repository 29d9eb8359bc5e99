/* nstat_read.c - a consistent snapshot of /dev/shm/nstack-stat.<pid>:
 * counters summed over the thread slots, connection records copied under
 * their sequence counters (nstack_stats.h). Read-only: never writes. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nstat.h"

static int pid_alive(int pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}

/* 1 and *out when the record is in use and was copied between two equal,
 * even sequence values; retries a record being written (bounded). */
static int copy_conn(const struct nstat_conn *c, struct nstat_conn *out)
{
    for (int tries = 0; tries < 1000; tries++) {
        uint32_t q1 = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
        if (q1 & 1)
            continue;
        memcpy(out, (const void *)c, sizeof(*out));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&c->seq, __ATOMIC_RELAXED) != q1)
            continue;
        for (int p = 0; p < NSTAT_PATHS; p++) {
            out->path[p].tx_bytes = __atomic_load_n(&c->path[p].tx_bytes, __ATOMIC_RELAXED);
            out->path[p].rx_bytes = __atomic_load_n(&c->path[p].rx_bytes, __ATOMIC_RELAXED);
            out->path[p].tx_msgs = __atomic_load_n(&c->path[p].tx_msgs, __ATOMIC_RELAXED);
            out->path[p].rx_msgs = __atomic_load_n(&c->path[p].rx_msgs, __ATOMIC_RELAXED);
        }
        out->rule[NSTAT_RULE - 1] = '\0';
        return out->in_use && out->state != NSTAT_ST_FREE;
    }
    return 0;
}

/* Entries are written before n_settings (release) and never change. */
static void copy_settings(struct snapshot *s, const struct nstat_shm *m)
{
    uint32_t n = __atomic_load_n(&m->n_settings, __ATOMIC_ACQUIRE);
    s->n_settings = n < NSTAT_SETTINGS ? (int)n : NSTAT_SETTINGS;
    s->settings_lost = __atomic_load_n(&m->settings_lost, __ATOMIC_RELAXED);
    for (int i = 0; i < s->n_settings; i++) {
        struct nstat_setting *e = &s->settings[i];
        memcpy(e, &m->settings[i], sizeof(*e));
        e->module[NSTAT_NAME - 1] = e->key[NSTAT_KEY - 1] = '\0';
        e->value[NSTAT_VALUE - 1] = e->dflt[NSTAT_VALUE - 1] = e->source[NSTAT_SOURCE - 1] = '\0';
    }
}

static void fill(struct snapshot *s, const struct nstat_shm *m)
{
    memset(s, 0, sizeof(*s));
    s->pid = m->pid;
    memcpy(s->comm, m->comm, NSTAT_NAME);
    s->n_stacks = m->n_stacks < NSTAT_STACKS && m->n_stacks > 0 ? m->n_stacks : (m->n_stacks > 0 ? NSTAT_STACKS : 0);
    for (int st = 0; st < s->n_stacks; st++) {
        memcpy(s->stacks[st].name, m->names[st], NSTAT_NAME);
        for (int i = 0; i < NSTAT_SLOTS; i++)
            for (int c = 0; c < NSTAT_N; c++)
                s->stacks[st].t[c] += __atomic_load_n(&m->slots[i].c[st][c], __ATOMIC_RELAXED);
    }
    s->conn_overflow = __atomic_load_n(&m->conn_overflow, __ATOMIC_RELAXED);
    s->conn_recorded = __atomic_load_n(&m->conn_recorded, __ATOMIC_RELAXED);
    for (int i = 0; i < NSTAT_CONNS; i++)
        if (copy_conn(&m->conns[i], &s->conns[s->n_conns]))
            s->n_conns++;
    copy_settings(s, m);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    s->when = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int snap_read(int pid, struct snapshot *s, int quiet)
{
    char path[64];
    snprintf(path, sizeof(path), NSTAT_PATH_FMT, pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (!quiet)
            fprintf(stderr, "nstack-stat: pid %d does not run the framework (%s: %s)\n", pid, path,
                    strerror(errno));
        return -1;
    }
    /* Map what the file holds (at most our layout): the header says which
     * version wrote it, so an older or newer library gets a clear line. */
    struct stat st;
    size_t len = fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size : 0;
    if (len > sizeof(struct nstat_shm))
        len = sizeof(struct nstat_shm);
    if (len < offsetof(struct nstat_shm, names)) {
        if (!quiet)
            fprintf(stderr, "nstack-stat: %s: not a counter segment (%zu bytes); skipped\n", path, len);
        close(fd);
        return -1;
    }
    const struct nstat_shm *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        if (!quiet)
            fprintf(stderr, "nstack-stat: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = -1;
    if (__atomic_load_n(&m->magic, __ATOMIC_ACQUIRE) != NSTAT_MAGIC) {
        if (!quiet)
            fprintf(stderr, "nstack-stat: %s: not a counter segment (magic); skipped\n", path);
    } else if (m->version != NSTAT_VERSION) {
        if (!quiet)
            fprintf(stderr, "nstack-stat: %s: layout version %u, this nstack-stat reads version %d: the process "
                    "runs another build of libnStackAPI.so (use the nstack-stat installed with it); skipped\n",
                    path, m->version, NSTAT_VERSION);
    } else if (len < sizeof(struct nstat_shm)) {
        if (!quiet)
            fprintf(stderr, "nstack-stat: %s: version %d segment of %zu bytes, expected %zu; skipped\n", path,
                    NSTAT_VERSION, len, sizeof(struct nstat_shm));
    } else if (!pid_alive(pid)) {
        if (!quiet)
            fprintf(stderr, "nstack-stat: %s: process %d is gone (stale segment; remove it)\n", path, pid);
    } else {
        fill(s, m);
        rc = 0;
    }
    munmap((void *)m, len);
    return rc;
}
