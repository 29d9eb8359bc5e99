/* shadow_stats.c - what the shadow carried, so tests can prove that traffic
 * really went through the module. At exit each process appends one line
 * "<pid> <sockets> <bytes sent> <bytes received>" to $SHADOW_STATS_FILE. */
#include "shadow.h"
#include "shadow_sys.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

/* Process-wide counters; relaxed atomics, no lock (they are only summed). */
static _Atomic uint64_t n_sockets, n_sent, n_received;

void shadow_count_socket(void) { atomic_fetch_add_explicit(&n_sockets, 1, memory_order_relaxed); }
void shadow_count_sent(size_t n) { atomic_fetch_add_explicit(&n_sent, n, memory_order_relaxed); }
void shadow_count_received(size_t n) { atomic_fetch_add_explicit(&n_received, n, memory_order_relaxed); }

/* A forked child reports only its own traffic. */
void shadow_stats_reset(void)
{
    atomic_store(&n_sockets, 0);
    atomic_store(&n_sent, 0);
    atomic_store(&n_received, 0);
}

__attribute__((destructor)) static void shadow_stats_write(void)
{
    const char *path = getenv("SHADOW_STATS_FILE");
    uint64_t socks = atomic_load(&n_sockets);
    if (!path || !*path || socks == 0)
        return;
    char line[128];
    int len = snprintf(line, sizeof(line), "%ld %llu %llu %llu\n", (long)getpid(),
                       (unsigned long long)socks, (unsigned long long)atomic_load(&n_sent),
                       (unsigned long long)atomic_load(&n_received));
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    /* one write with O_APPEND: lines of concurrent processes do not mix */
    (void)!syscall(SYS_write, fd, line, (size_t)len);
    sys_close(fd);
}
