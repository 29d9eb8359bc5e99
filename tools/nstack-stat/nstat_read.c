/* nstat_read.c - a consistent snapshot of /dev/shm/nstack-stat.<pid>:
 * counters summed over the thread slots, connection records copied under
 * their sequence counters (nstack_stats.h). Read-only: never writes. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
        out->tx_bytes = __atomic_load_n(&c->tx_bytes, __ATOMIC_RELAXED);
        out->rx_bytes = __atomic_load_n(&c->rx_bytes, __ATOMIC_RELAXED);
        out->tx_msgs = __atomic_load_n(&c->tx_msgs, __ATOMIC_RELAXED);
        out->rx_msgs = __atomic_load_n(&c->rx_msgs, __ATOMIC_RELAXED);
        out->rule[NSTAT_RULE - 1] = '\0';
        return out->in_use && out->state != NSTAT_ST_FREE;
    }
    return 0;
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
    struct stat st;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(struct nstat_shm)) {
        if (!quiet)
            fprintf(stderr, "nstack-stat: %s: not a version %d counter segment (size); skipped\n", path,
                    NSTAT_VERSION);
        close(fd);
        return -1;
    }
    const struct nstat_shm *m = mmap(NULL, sizeof(*m), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        if (!quiet)
            fprintf(stderr, "nstack-stat: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = -1;
    if (__atomic_load_n(&m->magic, __ATOMIC_ACQUIRE) != NSTAT_MAGIC || m->version != NSTAT_VERSION) {
        if (!quiet)
            fprintf(stderr, "nstack-stat: %s: not a version %d counter segment; skipped\n", path, NSTAT_VERSION);
    } else if (!pid_alive(pid)) {
        if (!quiet)
            fprintf(stderr, "nstack-stat: %s: process %d is gone (stale segment; remove it)\n", path, pid);
    } else {
        fill(s, m);
        rc = 0;
    }
    munmap((void *)m, sizeof(*m));
    return rc;
}
