/* softrdma: process-wide state, logging, environment, fork handling. */
#include "sr_internal.h"
#include "sr_sys.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

pthread_mutex_t sr_lock;
unsigned sr_epoch = 1;
struct sr_knobs sr_knobs;

void sr_log(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    struct stat st;
    if (fstat(2, &st) == 0 && S_ISSOCK(st.st_mode))
        return;
    fprintf(stderr, "softrdma[%d]: %s\n", (int)getpid(), line);
}

int sr_env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    long n = strtol(v, &end, 0);
    if (*end) {
        sr_log("ignoring %s=%s: not a number", name, v);
        return dflt;
    }
    return (int)n;
}

/* Where device-internal fds go: from half the fd limit (at least 256,
 * at most 65536 so that a huge limit does not blow up the fd table). An
 * application's fds count up from 0, so the two rarely meet; when the
 * range is full (or the limit is below 256) the fd stays where it is. */
static int sr_fd_base_read(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl))
        return 256;
    rlim_t half = rl.rlim_cur / 2;
    if (half > 65536)
        half = 65536;
    return half < 256 ? 256 : (int)half;
}

/* The limit is read at most every SR_FD_BASE_MS, as the dispatcher does
 * (framework fd_high.c): a connection moves about ten internal fds, and a
 * prlimit64 for each was paid on both ends. A limit raised later is seen
 * that much later (a new fd lands lower than it could: never wrong); one
 * lowered below the base makes the move fail (EINVAL) and the fd stays.
 * One 64-bit word (base << 32 | coarse ms): threads read it atomically. */
#define SR_FD_BASE_MS 100
static uint64_t sr_fd_base_cached;

static int sr_fd_base(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint32_t now = (uint32_t)((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
    uint64_t c = __atomic_load_n(&sr_fd_base_cached, __ATOMIC_RELAXED);
    if (c && now - (uint32_t)c < SR_FD_BASE_MS)
        return (int)(c >> 32);
    int base = sr_fd_base_read();
    __atomic_store_n(&sr_fd_base_cached, (uint64_t)(uint32_t)base << 32 | now, __ATOMIC_RELAXED);
    return base;
}

int sr_fd_internal(int fd)
{
    int base = sr_fd_base();
    if (fd < 0 || fd >= base)
        return fd;
    int high = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, base);
    if (high < 0)
        return fd;
    sr_sys_close(fd);
    return high;
}

int sr_stale(unsigned epoch, const char *what)
{
    if (epoch == sr_epoch)
        return 0;
    sr_log("%s: object belongs to the parent process; RDMA resources do not "
           "survive fork (no fork support)", what);
    errno = EPERM;
    return 1;
}

/* The device thread may hold sr_lock at fork time: take it around fork so
 * the child gets a consistent, unlocked copy; the child then starts a new
 * epoch (its own device thread is started on first use). */
static void sr_fork_prepare(void) { pthread_mutex_lock(&sr_lock); }
static void sr_fork_parent(void) { pthread_mutex_unlock(&sr_lock); }
extern void sr_nic_forget(void);
static void sr_fork_child(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&sr_lock, &a);
    sr_epoch++;
    sr_nic_forget();
    sr_req_forget();
    sr_shm_forget();
}

__attribute__((constructor)) static void sr_init(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&sr_lock, &a);
    pthread_atfork(sr_fork_prepare, sr_fork_parent, sr_fork_child);
}
