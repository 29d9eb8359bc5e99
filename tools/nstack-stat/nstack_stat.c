/* nstack-stat - print the per-stack counters of processes running under
 * libnStackAPI.so (from /dev/shm/nstack-stat.<pid>).
 *
 *   nstack-stat            every live process
 *   nstack-stat PID...     those processes
 *
 * Exit status: 0 if at least one process was shown, 1 otherwise, 2 on a
 * usage error. Segments of dead processes are reported as stale and
 * skipped. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stats_shm.h"

static int pid_alive(int pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}

static void sum_stack(const struct nstat_shm *s, int st, uint64_t t[NSTAT_N])
{
    memset(t, 0, NSTAT_N * sizeof(uint64_t));
    for (int i = 0; i < NSTAT_SLOTS; i++)
        for (int c = 0; c < NSTAT_N; c++)
            t[c] += __atomic_load_n(&s->slots[i].c[st][c], __ATOMIC_RELAXED);
}

static void print_process(const struct nstat_shm *s)
{
    printf("pid %d (%.*s)\n", s->pid, NSTAT_NAME, s->comm);
    printf("  %-16s %10s %10s %10s %16s %16s %10s\n", "stack", "sockets", "connect", "accept", "tx_bytes",
           "rx_bytes", "fallback");
    int n = s->n_stacks < NSTAT_STACKS ? s->n_stacks : NSTAT_STACKS;
    for (int st = 0; st < n; st++) {
        uint64_t t[NSTAT_N];
        sum_stack(s, st, t);
        printf("  %-16.*s %10llu %10llu %10llu %16llu %16llu %10llu\n", NSTAT_NAME, s->names[st],
               (unsigned long long)t[NSTAT_SOCKETS], (unsigned long long)t[NSTAT_CONN_OUT],
               (unsigned long long)t[NSTAT_CONN_IN], (unsigned long long)t[NSTAT_TX_BYTES],
               (unsigned long long)t[NSTAT_RX_BYTES], (unsigned long long)t[NSTAT_FALLBACK]);
    }
}

/* 0 shown, 1 missing/stale/invalid (reported on stderr). */
static int show_pid(int pid, int quiet_missing)
{
    char path[64];
    snprintf(path, sizeof(path), NSTAT_PATH_FMT, pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (!quiet_missing)
            fprintf(stderr, "nstack-stat: %s: %s (is pid %d running under libnStackAPI.so and using sockets?)\n",
                    path, strerror(errno), pid);
        return 1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(struct nstat_shm)) {
        fprintf(stderr, "nstack-stat: %s: unexpected size; skipped\n", path);
        close(fd);
        return 1;
    }
    const struct nstat_shm *s = mmap(NULL, sizeof(*s), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (s == MAP_FAILED) {
        fprintf(stderr, "nstack-stat: %s: %s\n", path, strerror(errno));
        return 1;
    }
    int rc = 1;
    if (s->magic != NSTAT_MAGIC || s->version != NSTAT_VERSION)
        fprintf(stderr, "nstack-stat: %s: not a version %d counter segment; skipped\n", path, NSTAT_VERSION);
    else if (!pid_alive(pid))
        fprintf(stderr, "nstack-stat: %s: process %d is gone (stale segment; remove it)\n", path, pid);
    else {
        print_process(s);
        rc = 0;
    }
    munmap((void *)s, sizeof(*s));
    return rc;
}

static int show_all(void)
{
    DIR *d = opendir("/dev/shm");
    if (d == NULL) {
        fprintf(stderr, "nstack-stat: /dev/shm: %s\n", strerror(errno));
        return 1;
    }
    int shown = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int pid;
        char tail;
        if (sscanf(e->d_name, "nstack-stat.%d%c", &pid, &tail) == 1 && pid > 0)
            shown += show_pid(pid, 1) == 0;
    }
    closedir(d);
    if (shown == 0)
        fprintf(stderr, "nstack-stat: no live process is using libnStackAPI.so sockets\n");
    return shown ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("usage: nstack-stat [PID...]\n"
               "Prints per-stack socket, connection and byte counters of processes using libnStackAPI.so.\n");
        return 0;
    }
    if (argc == 1)
        return show_all();
    int shown = 0;
    for (int i = 1; i < argc; i++) {
        char *end;
        long pid = strtol(argv[i], &end, 10);
        if (*argv[i] == '\0' || *end != '\0' || pid <= 0 || pid > 0x7fffffff) {
            fprintf(stderr, "nstack-stat: argument %d: \"%s\" is not a pid\n", i, argv[i]);
            return 2;
        }
        shown += show_pid((int)pid, 0) == 0;
    }
    return shown ? 0 : 1;
}
