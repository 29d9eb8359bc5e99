/* spawn_fa.c - a shadow of the fd actions of each
 * posix_spawn_file_actions_t, recorded as the program adds them through
 * the public calls (the type is opaque: glibc's action layout is
 * private), so that posix_spawn() knows which of our connections its
 * child gets and at which numbers (wrap_spawn.c). chdir/fchdir/tcsetpgrp
 * actions do not touch fds and are not recorded. A list this library did
 * not see made (copied with memcpy, or more lists alive than
 * SPAWN_FA_SLOTS) is "not known": wrap_spawn.c then assumes the worst.
 *
 * Locking: g_fa and every record are guarded by g_fa_mu (spawn setup
 * only, never the data path). */
#include "spawn_fa.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "libc_api.h"

#define EXPORT __attribute__((visibility("default")))
#define SPAWN_FA_SLOTS 64

enum { SPAWN_FA_CLOSE, SPAWN_FA_DUP2, SPAWN_FA_OPEN, SPAWN_FA_CLOSEFROM };

struct fa_rec {
    const void *key;              /* the list's address; NULL: free slot */
    int over;                     /* more actions than remembered */
    struct spawn_fa_snap s;
};

static pthread_mutex_t g_fa_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fa_rec g_fa[SPAWN_FA_SLOTS];

/* g_fa_mu held. */
static struct fa_rec *rec_of(const void *key)
{
    for (int i = 0; i < SPAWN_FA_SLOTS; i++)
        if (g_fa[i].key == key)
            return &g_fa[i];
    return NULL;
}

static void rec_reset(const void *key)
{
    pthread_mutex_lock(&g_fa_mu);
    struct fa_rec *r = rec_of(key);
    if (r == NULL)
        r = rec_of(NULL);
    if (r != NULL) {
        r->key = key;
        r->over = 0;
        r->s.n = 0;
    }
    pthread_mutex_unlock(&g_fa_mu);
}

static void rec_drop(const void *key)
{
    pthread_mutex_lock(&g_fa_mu);
    struct fa_rec *r = rec_of(key);
    if (r != NULL)
        r->key = NULL;
    pthread_mutex_unlock(&g_fa_mu);
}

static void rec_add(const void *key, int op, int fd, int newfd)
{
    pthread_mutex_lock(&g_fa_mu);
    struct fa_rec *r = rec_of(key);
    if (r != NULL && r->s.n == SPAWN_FA_MAX)
        r->over = 1;
    else if (r != NULL)
        r->s.a[r->s.n++] = (struct spawn_fa_act){ op, fd, newfd };
    pthread_mutex_unlock(&g_fa_mu);
}

int spawn_fa_snapshot(const posix_spawn_file_actions_t *fa, struct spawn_fa_snap *out)
{
    out->n = 0;
    if (fa == NULL)
        return 0;
    pthread_mutex_lock(&g_fa_mu);
    struct fa_rec *r = rec_of(fa);
    int ok = r != NULL && !r->over;
    if (ok)
        memcpy(out, &r->s, sizeof(*out));
    pthread_mutex_unlock(&g_fa_mu);
    return ok ? 0 : -1;
}

/* ---- the simulation: which child numbers refer to fd ----------------- */

#define TRACK_MAX 16

struct track {
    int n;
    int fd[TRACK_MAX], cloexec[TRACK_MAX];
};

static int track_find(const struct track *t, int fd)
{
    for (int i = 0; i < t->n; i++)
        if (t->fd[i] == fd)
            return i;
    return -1;
}

static void track_del(struct track *t, int i)
{
    t->n--;
    t->fd[i] = t->fd[t->n];
    t->cloexec[i] = t->cloexec[t->n];
}

static void track_apply(struct track *t, const struct spawn_fa_act *a)
{
    int i;
    switch (a->op) {
    case SPAWN_FA_CLOSE:
    case SPAWN_FA_OPEN:               /* the number now names another file */
        if ((i = track_find(t, a->fd)) >= 0)
            track_del(t, i);
        break;
    case SPAWN_FA_CLOSEFROM:
        for (i = t->n - 1; i >= 0; i--)
            if (t->fd[i] >= a->fd)
                track_del(t, i);
        break;
    case SPAWN_FA_DUP2:
        if (a->fd == a->newfd) {      /* glibc (POSIX 2017): clears FD_CLOEXEC */
            if ((i = track_find(t, a->fd)) >= 0)
                t->cloexec[i] = 0;
            break;
        }
        int from = track_find(t, a->fd) >= 0;
        if ((i = track_find(t, a->newfd)) >= 0)
            track_del(t, i);
        if (from && t->n < TRACK_MAX) {
            t->fd[t->n] = a->newfd;
            t->cloexec[t->n++] = 0;
        }
        break;
    }
}

int spawn_fa_child_fds(const struct spawn_fa_snap *s, int fd, int cloexec, int *out, int max)
{
    struct track t = { .n = 1, .fd = { fd }, .cloexec = { cloexec } };
    for (int i = 0; i < s->n; i++)
        track_apply(&t, &s->a[i]);
    int n = 0;
    for (int i = 0; i < t.n && n < max; i++)
        if (!t.cloexec[i])
            out[n++] = t.fd[i];
    return n;
}

/* ---- the public calls: libc's, then the record ------------------------- */

EXPORT int posix_spawn_file_actions_init(posix_spawn_file_actions_t *fa)
{
    int r = LIBC(posix_spawn_file_actions_init)(fa);
    if (r == 0)
        rec_reset(fa);
    return r;
}

EXPORT int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *fa)
{
    rec_drop(fa);
    return LIBC(posix_spawn_file_actions_destroy)(fa);
}

EXPORT int posix_spawn_file_actions_addclose(posix_spawn_file_actions_t *fa, int fd)
{
    int r = LIBC(posix_spawn_file_actions_addclose)(fa, fd);
    if (r == 0)
        rec_add(fa, SPAWN_FA_CLOSE, fd, -1);
    return r;
}

EXPORT int posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa, int fd, int newfd)
{
    int r = LIBC(posix_spawn_file_actions_adddup2)(fa, fd, newfd);
    if (r == 0)
        rec_add(fa, SPAWN_FA_DUP2, fd, newfd);
    return r;
}

EXPORT int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *fa, int fd, const char *path, int oflag,
                                            mode_t mode)
{
    int r = LIBC(posix_spawn_file_actions_addopen)(fa, fd, path, oflag, mode);
    if (r == 0)
        rec_add(fa, SPAWN_FA_OPEN, fd, -1);
    return r;
}

EXPORT int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *fa, int from)
{
    int r = LIBC(posix_spawn_file_actions_addclosefrom_np)(fa, from);
    if (r == 0)
        rec_add(fa, SPAWN_FA_CLOSEFROM, from, -1);
    return r;
}
