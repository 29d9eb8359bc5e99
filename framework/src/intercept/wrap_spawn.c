/* wrap_spawn.c - posix_spawn(), posix_spawnp(): glibc's child execs
 * internally (not through wrap_exec.c), so the exec rules are applied
 * here, in the parent, before the real call: upgraded anchored
 * connections the new image gets go back to TCP (anchor_fork.c), and the
 * candidates it gets are named in its environment (NSTACK_ANCHOR_INHERIT,
 * a malloc'd copy of envp) at their numbers there. Which fds the image
 * gets: the file actions (spawn_fa.c) applied to our fds, then
 * FD_CLOEXEC. A list whose actions are not known: every upgraded
 * connection goes back to TCP (any fd may be dup2'd), and candidates are
 * named at their own numbers unless FD_CLOEXEC (doc/fork.md). Without
 * such connections the call is exactly libc's. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "anchor.h"
#include "anchor_fork.h"
#include "fd_table.h"
#include "file.h"
#include "fw.h"
#include "libc_api.h"
#include "spawn_fa.h"
#include "wrap_spawn.h"

#define EXPORT __attribute__((visibility("default")))

typedef int spawn_fn(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
                     char *const[], char *const[]);

struct spawn_map {
    int known;                    /* the file actions are known */
    struct spawn_fa_snap snap;
};

/* anchor_fdmap_fn: fd's numbers in the child. */
static int map_child(int fd, int *out, int max, void *arg)
{
    const struct spawn_map *m = arg;
    int fl = LIBC(fcntl)(fd, F_GETFD);
    if (fl < 0 || max < 1)
        return 0;
    if (m->known)
        return spawn_fa_child_fds(&m->snap, fd, fl & FD_CLOEXEC, out, max);
    if (fl & FD_CLOEXEC)
        return 0;
    out[0] = fd;
    return 1;
}

/* ---- both ends in this process ---------------------------------------
 * Its release cannot be answered while this thread waits in it (the
 * other end's module runs in this process: 2 s lost per end, and both
 * would then be broken), so such a connection is left on RDMA: the
 * started program gets a silent TCP socket for it, as before these
 * wrappers (doc/fork.md). Checked only for a connection whose peer has
 * its own IP address (a connection to another host costs nothing). */

struct pair_arg {
    int self, found;
    struct sockaddr_storage local, peer;
};

static int same_ep(const struct sockaddr_storage *a, const struct sockaddr_storage *b, int with_port)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_addr.s_addr == y->sin_addr.s_addr && (!with_port || x->sin_port == y->sin_port);
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return a->ss_family == AF_INET6 && !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) &&
           (!with_port || x->sin6_port == y->sin6_port);
}

static void pair_one(int fd, struct file *f, void *arg)
{
    struct pair_arg *p = arg;
    struct sockaddr_storage l, r;
    socklen_t ll = sizeof(l), rl = sizeof(r);
    (void)f;
    if (p->found || fd == p->self || LIBC(getsockname)(fd, (struct sockaddr *)&l, &ll) < 0 ||
        !same_ep(&l, &p->peer, 1) || LIBC(getpeername)(fd, (struct sockaddr *)&r, &rl) < 0)
        return;
    p->found = same_ep(&r, &p->local, 1);
}

static int local_pair(int fd)
{
    struct pair_arg p = { .self = fd };
    socklen_t ll = sizeof(p.local), rl = sizeof(p.peer);
    if (LIBC(getsockname)(fd, (struct sockaddr *)&p.local, &ll) < 0 ||
        LIBC(getpeername)(fd, (struct sockaddr *)&p.peer, &rl) < 0 || !same_ep(&p.local, &p.peer, 0))
        return 0;
    fd_table_each(0, -1, pair_one, &p);
    return p.found;
}

/* anchor_fdmap_fn for the release: unknown actions may dup2 any fd. */
static int map_release(int fd, int *out, int max, void *arg)
{
    const struct spawn_map *m = arg;
    int n = 1;
    if (m->known || max < 1)
        n = map_child(fd, out, max, arg);
    else
        out[0] = fd;
    return n > 0 && local_pair(fd) ? 0 : n;
}

int spawn_release_map(int fd, int *out, int max, void *arg)
{
    (void)arg;
    int fl = LIBC(fcntl)(fd, F_GETFD);
    if (fl < 0 || (fl & FD_CLOEXEC) || max < 1 || local_pair(fd))
        return 0;
    out[0] = fd;
    return 1;
}

struct note_arg {
    anchor_fdmap_fn *map;
    void *arg;
};

static void note_one(int fd, struct file *f, void *arg)
{
    const struct note_arg *n = arg;
    int to;
    if (n->map != NULL ? n->map(fd, &to, 1, n->arg) > 0 : !(LIBC(fcntl)(fd, F_GETFD) & FD_CLOEXEC))
        __atomic_store_n(&f->passed, 1, __ATOMIC_RELAXED);
}

void spawn_note_inherited(anchor_fdmap_fn *map, void *arg)
{
    struct note_arg n = { map, arg };
    fd_table_each(0, -1, note_one, &n);
}

static int spawn_with(spawn_fn *fn, pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                      const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    if (t_in_module)
        return fn(pid, path, fa, attr, argv, envp);
    struct spawn_map *m = malloc(sizeof(*m));
    if (m == NULL)
        return ENOMEM;
    m->known = spawn_fa_snapshot(fa, &m->snap) == 0;
    /* bytes RDMA delivered and unread cannot follow (as at exec) */
    if (anchor_release_map(1, map_release, m) > 0) {
        free(m);
        return EBUSY;
    }
    char **env = anchor_exec_env_map(envp, map_child, m);
    int r = fn(pid, path, fa, attr, argv, env ? env : envp);
    int err = errno;
    if (r == 0)
        spawn_note_inherited(map_child, m);
    free(env);
    free(m);
    errno = err;
    return r;
}

EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                       const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    return spawn_with(LIBC(posix_spawn), pid, path, fa, attr, argv, envp);
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    return spawn_with(LIBC(posix_spawnp), pid, file, fa, attr, argv, envp);
}
