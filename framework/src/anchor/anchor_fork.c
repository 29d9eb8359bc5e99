/* anchor_fork.c - upgraded anchored connections go back to TCP before a
 * fork() or an exec*() (doc/fork.md "fork after the upgrade").
 *
 * RDMA resources do not cross fork or exec, but an anchored connection's
 * app fd (the TCP socket) does. So the process about to fork or exec asks
 * the module to return each upgraded connection it holds to TCP
 * (anchor_release, module ABI 1.2), bounded per connection: afterwards
 * parent and child (or the new image) carry it on the kernel socket, with
 * the bytes RDMA delivered but nobody read yet served first, once, from a
 * buffer the module shares between the processes. Nothing happens when
 * the process holds no upgraded connection (one walk of the fd table, no
 * message to any peer). The same for one connection handed to another
 * process in SCM_RIGHTS, which also gets just the TCP socket. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "anchor.h"
#include "anchor_fork.h"
#include "fd_table.h"
#include "fw.h"
#include "fw_log.h"
#include "libc_api.h"
#include "module_load.h"
#include "sock.h"
#include "timeutil.h"

#define RELEASE_MAX 1024

struct release_list {
    int exec, n, skipped;
    anchor_fdmap_fn *map;           /* exec: which fds survive; NULL: no FD_CLOEXEC */
    void *map_arg;
    struct file *f[RELEASE_MAX];
};

static int releasable(const struct file *f)
{
    return file_is_anchored(f) && __atomic_load_n(&f->anchor_state, __ATOMIC_ACQUIRE) == ANCHOR_UP &&
           MODULE_HAS_OP(f->mod, anchor_release);
}

/* One reference per connection (a file appears once per fd number). */
static void collect(int fd, struct file *f, void *arg)
{
    struct release_list *l = arg;
    if (!releasable(f))
        return;
    if (l->exec && l->map != NULL) {
        int to;
        if (l->map(fd, &to, 1, l->map_arg) <= 0)
            return;                    /* the new image does not get it */
    } else if (l->exec) {
        int fl = LIBC(fcntl)(fd, F_GETFD);
        if (fl < 0 || (fl & FD_CLOEXEC))
            return;
    }
    for (int i = 0; i < l->n; i++)
        if (l->f[i] == f)
            return;
    if (l->n == RELEASE_MAX) {
        l->skipped++;
        return;
    }
    struct file *g = file_get(fd);
    if (g == NULL)
        return;
    if (g != f) {
        file_put(g);
        return;
    }
    l->f[l->n++] = g;
}

/* What a release comes before: its log lines name it. */
enum release_why { BEFORE_FORK, BEFORE_EXEC, BEFORE_PASS, BEFORE_STDIO };

static const char *const g_before[] = { "fork", "exec", "passing it to another process",
                                        "giving it to stdio (fdopen)" };
static const char *const g_timeout_cost[] = {
    "the child cannot use it", "the new image gets it on TCP and its peer may fail",
    "the receiver gets it on TCP and its peer may fail", "stdio writes it on TCP and its peer may fail" };

/* The module's release of f, waiting at most ms for the peer's answer:
 * 1 or 0 as release_done takes them, -1 with *err (ETIMEDOUT: the peer
 * has not answered yet; the release goes on at f's later calls). */
static int release_call(struct file *f, int ms, int *err)
{
    MOD_ENTER();
    int r = f->mod->anchor_release(f->sock, ms);
    *err = errno;
    MOD_LEAVE();
    if (r < 0 && *err != ETIMEDOUT)
        LOG_DBG("%s: anchor_release: %s", f->mod->name, strerror(*err));
    return r;
}

/* f went back to TCP (r: the module's answer). 1 when bytes RDMA
 * delivered remain unread (the module serves them). */
static int release_done(struct file *f, enum release_why why, int r)
{
    f->downgraded = 1;
    if (r == 0) {
        sock_fallback(f);               /* a kernel socket in both processes from now on */
        return 0;
    }
    /* bytes RDMA delivered remain: the module serves them, then falls back */
    if (why == BEFORE_EXEC)
        LOG_ERR("%s: bytes received over RDMA and not read yet cannot be handed to a new image; the exec "
                "fails with EBUSY (read them before exec)", f->mod->name);
    if (why == BEFORE_PASS)
        LOG_ERR("%s: bytes received over RDMA and not read yet cannot be handed to another process; the "
                "sendmsg fails with EBUSY (read them first)", f->mod->name);
    if (why == BEFORE_STDIO)
        LOG_ERR("%s: bytes received over RDMA and not read yet cannot reach stdio's own reads; fdopen for "
                "reading fails with EBUSY (read them first)", f->mod->name);
    return 1;
}

static int release_bound_ms(enum release_why why)
{
    return why == BEFORE_FORK ? ANCHOR_RELEASE_FORK_MS : ANCHOR_RELEASE_MS;
}

static void log_unanswered(const struct file *f, int n, enum release_why why)
{
    LOG_WAR("%s: %d connection(s) upgraded to RDMA could not return to TCP before %s (the peer did not "
            "answer within %d ms): %s", f->mod->name, n, g_before[why], release_bound_ms(why),
            g_timeout_cost[why]);
}

/* One connection (a pass, stdio): up to ANCHOR_RELEASE_MS for its peer. */
static int release_one(struct file *f, enum release_why why)
{
    int err;
    int r = release_call(f, ANCHOR_RELEASE_MS, &err);
    if (r < 0) {
        if (err == ETIMEDOUT)
            log_unanswered(f, 1, why);
        return 0;
    }
    return release_done(f, why, r);
}

/* Every connection of a fork or exec: each release starts with a short
 * wait (an active peer answers at once), then the unanswered ones are
 * waited for together, release_bound_ms in all. An idle peer (a pooled
 * client between requests, which answers only at its next call) so costs
 * the fork that bound once - not once per connection: redis's BGSAVE
 * fork with idle clients took 2 s for each of them. */
static int release_list(struct file **fs, int n, enum release_why why)
{
    int64_t deadline = now_ns() + (int64_t)release_bound_ms(why) * 1000000;
    int left = 0, unanswered = 0, err;
    unsigned char wait[RELEASE_MAX];
    for (int i = 0; i < n; i++) {
        int r = release_call(fs[i], ANCHOR_RELEASE_FIRST_MS, &err);
        wait[i] = r < 0 && err == ETIMEDOUT;
        if (r >= 0)
            left += release_done(fs[i], why, r);
    }
    for (int i = 0; i < n; i++) {
        if (!wait[i])
            continue;
        int ms = ms_left(deadline);
        int r = ms > 0 ? release_call(fs[i], ms, &err) : -1;
        if (r >= 0)
            left += release_done(fs[i], why, r);
        else
            unanswered++;
    }
    if (unanswered)
        log_unanswered(fs[0], unanswered, why);
    return left;
}

static int release_fd(int fd, enum release_why why)
{
    struct file *f = file_get(fd);
    if (f == NULL)
        return 0;
    int left = 0;
    if (releasable(f)) {
        LOG_INF("fd %d: an upgraded connection returns to TCP before %s", fd, g_before[why]);
        left = release_one(f, why);
    }
    file_put(f);
    return left;
}

int anchor_release_passed(int fd)
{
    return release_fd(fd, BEFORE_PASS);
}

int anchor_release_stdio(int fd)
{
    return release_fd(fd, BEFORE_STDIO);
}

int anchor_release_all(int exec)
{
    return anchor_release_map(exec, NULL, NULL);
}

int anchor_release_map(int exec, anchor_fdmap_fn *map, void *arg)
{
    if (t_in_module)
        return 0;
    struct release_list *l = malloc(sizeof(*l));
    if (l == NULL)
        return 0;
    int left = 0;
    l->exec = exec;
    l->map = map;
    l->map_arg = arg;
    l->n = l->skipped = 0;
    fd_table_each(0, -1, collect, l);
    if (l->n > 0)
        LOG_INF("returning %d upgraded connection(s) to TCP before %s", l->n, exec ? "exec" : "fork");
    left = release_list(l->f, l->n, exec ? BEFORE_EXEC : BEFORE_FORK);
    for (int i = 0; i < l->n; i++)
        file_put(l->f[i]);
    if (l->skipped)
        LOG_WAR("%d upgraded connections beyond %d stay on RDMA across %s", l->skipped, RELEASE_MAX,
                exec ? "exec" : "fork");
    free(l);
    return left;
}

int anchor_released(struct file *f)
{
    if (f->downgraded)
        return 1;
    if (!MODULE_HAS_OP(f->mod, anchor_release))
        return 0;
    MOD_ENTER();
    int r = f->mod->anchor_release(f->sock, 0);   /* 0 ms: a question, starts nothing */
    MOD_LEAVE();
    return r >= 0;
}
